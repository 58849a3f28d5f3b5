//! `libcpuid_mask.so`: shows every library in a process a narrower x86 CPU, so that the speed of
//! an AVX2 machine's code paths, ours and the anchors' alike, can be measured on an AVX-512 one.
//!
//! Loaded with `LD_PRELOAD`, its constructor turns on Linux's CPUID faulting for the process
//! (`arch_prctl(ARCH_SET_CPUID, 0)`, kept by every thread and child process, reset by `execve`,
//! which is why the variable must stay in the environment). From then on each `cpuid`
//! instruction traps; the `SIGSEGV` handler runs the real instruction with faulting briefly
//! off, clears the feature bits the chosen class lacks ([`mask`]) and resumes after the
//! instruction. Rust's `is_x86_feature_detected!`, the `gemm` crate, XNNPACK's `cpuinfo` and
//! oneDNN all read the CPU through `cpuid`, so all of them take the narrower path.
//!
//! Environment:
//! - `CPUID_MASK`: `avx2` (default: no AVX-512, no AVX-VNNI, no AMX; a Zen 3 or Haswell-class
//!   CPU) or `avx-vnni` (no AVX-512, no AMX, AVX-VNNI kept; an Alder Lake-class client CPU).
//! - `CPUID_MASK_VERBOSE=1`: say at exit how many `cpuid` instructions were answered.
//!
//! A program that installs its own `SIGSEGV` handler afterwards (Rust's stack-overflow report,
//! Python's `faulthandler`, `perf`) would take the trapped instructions from it, so this library
//! also defines `sigaction` and `signal`: for `SIGSEGV` they record the program's action (and
//! report it back) without installing it, and a fault that is not a `cpuid` is handed to that
//! action, which then runs as it would have.
//!
//! What it cannot hide: `xgetbv` still reports the AVX-512 register state as enabled (software
//! checks the `cpuid` bits as well, and those are cleared), a statically linked program ignores
//! `LD_PRELOAD`, and glibc chooses its string functions before any preloaded constructor runs
//! (`GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,...` narrows those; `cargo xtask speed-report`
//! sets it). The core underneath stays the one it is: its caches, clocks and execution ports
//! are not those of an AVX2-only CPU. Where the kernel or CPU has no CPUID faulting, the
//! constructor says so on stderr and exits with status 97 rather than let a measurement run on
//! the unmasked CPU.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]
// The unit tests are built without the constructor (it would mask the test binary itself).
#![cfg_attr(test, allow(dead_code))]

use core::arch::x86_64::{__cpuid_count, CpuidResult};
use core::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The CPU class a masked process sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// AVX2 and FMA, no VNNI of any width, no AVX-512, no AMX.
    Avx2,
    /// AVX2 and FMA with AVX-VNNI (256-bit), no AVX-512, no AMX.
    AvxVnni,
}

impl Class {
    /// The class named by `CPUID_MASK` (`None`: an unknown name).
    pub fn parse(name: &[u8]) -> Option<Class> {
        match name {
            b"avx2" => Some(Class::Avx2),
            b"avx-vnni" => Some(Class::AvxVnni),
            _ => None,
        }
    }
}

/// Bit `n` set.
const fn bit(n: u32) -> u32 {
    1 << n
}

/// CPUID.(EAX=7, ECX=0):EBX: AVX512F, DQ, IFMA, PF, ER, CD, BW, VL.
const LEAF7_EBX_AVX512: u32 =
    bit(16) | bit(17) | bit(21) | bit(26) | bit(27) | bit(28) | bit(30) | bit(31);
/// CPUID.(EAX=7, ECX=0):ECX: AVX512_VBMI, AVX512_VBMI2, AVX512_VNNI, AVX512_BITALG,
/// AVX512_VPOPCNTDQ.
const LEAF7_ECX_AVX512: u32 = bit(1) | bit(6) | bit(11) | bit(12) | bit(14);
/// CPUID.(EAX=7, ECX=0):EDX: AVX512_4VNNIW, AVX512_4FMAPS, AVX512_VP2INTERSECT, AMX-BF16,
/// AVX512_FP16, AMX-TILE, AMX-INT8.
const LEAF7_EDX_AVX512_AMX: u32 = bit(2) | bit(3) | bit(8) | bit(22) | bit(23) | bit(24) | bit(25);
/// CPUID.(EAX=7, ECX=1):EAX: AVX512_BF16, AMX-FP16, AVX-IFMA (AVX-VNNI, bit 4, is per class).
const LEAF7_1_EAX_WIDE: u32 = bit(5) | bit(21) | bit(23);
/// CPUID.(EAX=7, ECX=1):EAX: AVX-VNNI.
const LEAF7_1_EAX_AVX_VNNI: u32 = bit(4);
/// CPUID.(EAX=7, ECX=1):EDX: AVX-VNNI-INT8, AVX-NE-CONVERT, AMX-COMPLEX, AVX-VNNI-INT16, AVX10.
const LEAF7_1_EDX_NEWER: u32 = bit(4) | bit(5) | bit(8) | bit(10) | bit(19);
/// CPUID.(EAX=0xD, ECX=0):EAX, the XSAVE state components: opmask, ZMM_Hi256, Hi16_ZMM,
/// XTILECFG, XTILEDATA.
const LEAF_D_EAX_AVX512_AMX: u32 = bit(5) | bit(6) | bit(7) | bit(17) | bit(18);

/// What `cpuid` with `leaf` and `subleaf` answers a process of `class`, given the CPU's own
/// answer `real`: the same registers with the class's missing features cleared.
pub fn mask(class: Class, leaf: u32, subleaf: u32, real: CpuidResult) -> CpuidResult {
    let mut r = real;
    match (leaf, subleaf) {
        (7, 0) => {
            r.ebx &= !LEAF7_EBX_AVX512;
            r.ecx &= !LEAF7_ECX_AVX512;
            r.edx &= !LEAF7_EDX_AVX512_AMX;
        }
        (7, 1) => {
            r.eax &= !LEAF7_1_EAX_WIDE;
            if class == Class::Avx2 {
                r.eax &= !LEAF7_1_EAX_AVX_VNNI;
            }
            r.edx &= !LEAF7_1_EDX_NEWER;
        }
        (0xD, 0) => r.eax &= !LEAF_D_EAX_AVX512_AMX,
        // AVX10's own leaf, and AMX's tile and TMUL leaves: nothing to report.
        (0x24, _) | (0x1D, _) | (0x1E, _) => {
            r = CpuidResult {
                eax: 0,
                ebx: 0,
                ecx: 0,
                edx: 0,
            }
        }
        _ => {}
    }
    r
}

/// `arch_prctl` codes (`asm/prctl.h`).
const ARCH_SET_CPUID: c_int = 0x1012;

/// Turns `cpuid` faulting on (`true`) or off for the calling thread.
fn cpuid_faulting(on: bool) -> c_int {
    // SAFETY: ARCH_SET_CPUID takes an integer argument and changes only this thread's flag.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, c_int::from(!on)) as c_int }
}

static AVX_VNNI_CLASS: AtomicBool = AtomicBool::new(false);
static ANSWERED: AtomicU64 = AtomicU64::new(0);
static VERBOSE: AtomicBool = AtomicBool::new(false);
/// The `SIGSEGV` action the program sees as its own: the one in place before ours, then
/// whatever the program installs later (kept here, not installed, so that a program with its
/// own `SIGSEGV` handler — Rust's stack-overflow report, Python's `faulthandler`, `perf` —
/// does not take the trapped `cpuid` instructions from us).
static mut PREVIOUS: Option<libc::sigaction> = None;
/// Set while our handler is the installed one.
static OWNS_SIGSEGV: AtomicBool = AtomicBool::new(false);

/// The C library's `sigaction`, past our own definition (`dlsym(RTLD_NEXT)`).
type SigactionFn =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
/// The C library's `signal`.
type SignalFn = unsafe extern "C" fn(c_int, libc::sighandler_t) -> libc::sighandler_t;

/// The next definition of `name` after this library's (null when there is none).
fn next_symbol(name: &core::ffi::CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) }
}

/// The C library's `sigaction`, looked up once by the constructor (`dlsym` is not
/// async-signal-safe, and the handler needs it).
static REAL_SIGACTION: AtomicUsize = AtomicUsize::new(0);

/// The C library's `sigaction`, or an error code where it cannot be found.
unsafe fn real_sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    let mut f = REAL_SIGACTION.load(Ordering::Acquire) as *mut c_void;
    if f.is_null() {
        f = next_symbol(c"sigaction");
        REAL_SIGACTION.store(f as usize, Ordering::Release);
    }
    if f.is_null() {
        return -1;
    }
    // SAFETY: `f` is the C library's `sigaction`, whose type this is.
    unsafe { core::mem::transmute::<*mut c_void, SigactionFn>(f)(sig, act, old) }
}

/// Gives `SIGSEGV` back to the program's own action (or the default) for good.
unsafe fn hand_back_sigsegv() {
    OWNS_SIGSEGV.store(false, Ordering::Release);
    // SAFETY: reading the saved action; installing it through the C library.
    unsafe {
        let mut act: libc::sigaction = core::mem::zeroed();
        if let Some(previous) = core::ptr::addr_of!(PREVIOUS).read() {
            act = previous;
        } else {
            act.sa_sigaction = libc::SIG_DFL;
        }
        real_sigaction(libc::SIGSEGV, &act, core::ptr::null_mut());
    }
}

/// Records `act` (when given) as the program's own `SIGSEGV` action without installing it, and
/// returns the action the program had before (the default when it had none).
///
/// # Safety
/// Not re-entrant: called from the program's `sigaction`/`signal`, as those are.
#[cfg(not(test))]
unsafe fn record_program_action(act: Option<libc::sigaction>) -> libc::sigaction {
    // SAFETY: the saved action is only written here and read by the handler.
    unsafe {
        let saved = core::ptr::addr_of_mut!(PREVIOUS);
        let mut shown: libc::sigaction = core::mem::zeroed();
        shown.sa_sigaction = libc::SIG_DFL;
        let before = (*saved).unwrap_or(shown);
        if act.is_some() {
            *saved = act;
        }
        before
    }
}

/// `sigaction` as the program sees it: for `SIGSEGV` while the mask owns it, the program's own
/// action is recorded (and reported back) instead of installed; everything else is passed on.
///
/// # Safety
/// The C library's contract for `sigaction`.
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if sig == libc::SIGSEGV && OWNS_SIGSEGV.load(Ordering::Acquire) {
        // SAFETY: `old` and `act` are null or valid (the caller's contract).
        unsafe {
            let shown = record_program_action(act.as_ref().copied());
            if !old.is_null() {
                *old = shown;
            }
        }
        return 0;
    }
    // SAFETY: forwarded unchanged.
    unsafe { real_sigaction(sig, act, old) }
}

/// `signal` as the program sees it, with the same rule for `SIGSEGV` as [`sigaction`].
///
/// # Safety
/// The C library's contract for `signal`.
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if sig == libc::SIGSEGV && OWNS_SIGSEGV.load(Ordering::Acquire) {
        // SAFETY: a zeroed sigaction filled in; glibc's `signal` has BSD semantics (SA_RESTART).
        unsafe {
            let mut act: libc::sigaction = core::mem::zeroed();
            act.sa_sigaction = handler;
            act.sa_flags = libc::SA_RESTART;
            return record_program_action(Some(act)).sa_sigaction;
        }
    }
    let f = next_symbol(c"signal");
    if f.is_null() {
        return libc::SIG_ERR;
    }
    // SAFETY: `f` is the C library's `signal`, whose type this is.
    unsafe { core::mem::transmute::<*mut c_void, SignalFn>(f)(sig, handler) }
}

/// Writes `msg` to stderr without allocating (also safe in a signal handler).
fn say(msg: &[u8]) {
    // SAFETY: writing a valid buffer to fd 2.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// The `SIGSEGV` handler: answers a trapped `cpuid`, hands any other fault back.
extern "C" fn on_segv(_sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler. A trapped
    // `cpuid` is a general-protection fault: si_code SI_KERNEL, and RIP points at the
    // instruction, whose two bytes are readable because they were just fetched.
    unsafe {
        let uc = &mut *(context as *mut libc::ucontext_t);
        let gregs = &mut uc.uc_mcontext.gregs;
        let rip = gregs[libc::REG_RIP as usize] as *const u8;
        let is_cpuid = (*info).si_code == libc::SI_KERNEL && *rip == 0x0F && *rip.add(1) == 0xA2;
        if !is_cpuid {
            // Not ours: put the program's action back and let the instruction fault again.
            hand_back_sigsegv();
            return;
        }
        let leaf = gregs[libc::REG_RAX as usize] as u32;
        let subleaf = gregs[libc::REG_RCX as usize] as u32;
        cpuid_faulting(false);
        let real = __cpuid_count(leaf, subleaf);
        cpuid_faulting(true);
        let class = if AVX_VNNI_CLASS.load(Ordering::Relaxed) {
            Class::AvxVnni
        } else {
            Class::Avx2
        };
        let r = mask(class, leaf, subleaf, real);
        // `cpuid` writes the four registers zero-extended to 64 bits.
        gregs[libc::REG_RAX as usize] = i64::from(r.eax);
        gregs[libc::REG_RBX as usize] = i64::from(r.ebx);
        gregs[libc::REG_RCX as usize] = i64::from(r.ecx);
        gregs[libc::REG_RDX as usize] = i64::from(r.edx);
        gregs[libc::REG_RIP as usize] += 2;
        ANSWERED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Decimal digits of `n` into `buf`, returning the used tail.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The constructor: reads the class, installs the handler, turns faulting on.
extern "C" fn install() {
    // SAFETY: getenv, sigaction and _exit are called with valid arguments before any thread of
    // the program exists (constructors run before `main`).
    unsafe {
        let name = libc::getenv(c"CPUID_MASK".as_ptr());
        let class = if name.is_null() {
            Some(Class::Avx2)
        } else {
            Class::parse(std::ffi::CStr::from_ptr(name).to_bytes())
        };
        let Some(class) = class else {
            say(b"cpuid-mask: CPUID_MASK must be `avx2` or `avx-vnni`\n");
            libc::_exit(2);
        };
        AVX_VNNI_CLASS.store(class == Class::AvxVnni, Ordering::Relaxed);
        let verbose = libc::getenv(c"CPUID_MASK_VERBOSE".as_ptr());
        VERBOSE.store(
            !verbose.is_null() && *verbose != 0 && *verbose != b'0' as libc::c_char,
            Ordering::Relaxed,
        );
        REAL_SIGACTION.store(next_symbol(c"sigaction") as usize, Ordering::Release);
        let mut previous: libc::sigaction = core::mem::zeroed();
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = on_segv as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        if real_sigaction(libc::SIGSEGV, &action, &mut previous) != 0 {
            say(b"cpuid-mask: cannot install the SIGSEGV handler\n");
            libc::_exit(97);
        }
        core::ptr::addr_of_mut!(PREVIOUS).write(Some(previous));
        OWNS_SIGSEGV.store(true, Ordering::Release);
        if cpuid_faulting(true) != 0 {
            say(
                b"cpuid-mask: this CPU or kernel has no CPUID faulting (arch_prctl ARCH_SET_CPUID \
                  failed), so the process would see the real CPU; stopping\n",
            );
            libc::_exit(97);
        }
    }
}

/// The destructor: with `CPUID_MASK_VERBOSE`, how many `cpuid` were answered.
extern "C" fn report() {
    if VERBOSE.load(Ordering::Relaxed) {
        let mut buf = [0u8; 20];
        say(b"cpuid-mask: answered ");
        say(decimal(ANSWERED.load(Ordering::Relaxed), &mut buf));
        say(b" cpuid instructions\n");
    }
}

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static INSTALL: extern "C" fn() = install;

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".fini_array")]
static REPORT: extern "C" fn() = report;

#[cfg(test)]
mod tests {
    use super::*;

    /// A CPU that answers every bit set (every AVX-512 and AMX feature among them).
    fn all() -> CpuidResult {
        CpuidResult {
            eax: u32::MAX,
            ebx: u32::MAX,
            ecx: u32::MAX,
            edx: u32::MAX,
        }
    }

    #[test]
    fn avx2_class_clears_avx512_vnni_and_amx_and_keeps_avx2() {
        let r = mask(Class::Avx2, 7, 0, all());
        assert_eq!(r.ebx & bit(5), bit(5), "AVX2 kept");
        assert_eq!(r.ebx & bit(3), bit(3), "BMI1 kept");
        assert_eq!(r.ebx & bit(8), bit(8), "BMI2 kept");
        for b in [16, 17, 21, 26, 27, 28, 30, 31] {
            assert_eq!(r.ebx & bit(b), 0, "leaf 7 EBX bit {b}");
        }
        for b in [1, 6, 11, 12, 14] {
            assert_eq!(r.ecx & bit(b), 0, "leaf 7 ECX bit {b}");
        }
        assert_eq!(r.ecx & bit(9), bit(9), "VAES kept (Zen 3 has it)");
        for b in [22, 23, 24, 25] {
            assert_eq!(r.edx & bit(b), 0, "leaf 7 EDX bit {b}");
        }
        let r1 = mask(Class::Avx2, 7, 1, all());
        assert_eq!(
            r1.eax & (bit(4) | bit(5)),
            0,
            "AVX-VNNI and AVX512_BF16 gone"
        );
        let d = mask(Class::Avx2, 0xD, 0, all());
        assert_eq!(d.eax & 0b1110_0111, 0b0000_0111, "x87, SSE, AVX state kept");
        assert_eq!(mask(Class::Avx2, 0x24, 0, all()).ebx, 0);
    }

    #[test]
    fn avx_vnni_class_keeps_avx_vnni_only() {
        let r1 = mask(Class::AvxVnni, 7, 1, all());
        assert_eq!(r1.eax & bit(4), bit(4), "AVX-VNNI kept");
        assert_eq!(r1.eax & bit(5), 0, "AVX512_BF16 gone");
        let r = mask(Class::AvxVnni, 7, 0, all());
        assert_eq!(r.ecx & bit(11), 0, "AVX512_VNNI gone");
    }

    #[test]
    fn other_leaves_pass_through() {
        let real = CpuidResult {
            eax: 0x806F8,
            ebx: 0x1234,
            ecx: 0xFEDA_3203,
            edx: 0x178B_FBFF,
        };
        for class in [Class::Avx2, Class::AvxVnni] {
            let r = mask(class, 1, 0, real);
            assert_eq!(
                (r.eax, r.ebx, r.ecx, r.edx),
                (real.eax, real.ebx, real.ecx, real.edx)
            );
            let r = mask(class, 7, 2, real);
            assert_eq!(
                r.ebx, real.ebx,
                "only subleaves 0 and 1 of leaf 7 are masked"
            );
        }
    }

    #[test]
    fn class_names() {
        assert_eq!(Class::parse(b"avx2"), Some(Class::Avx2));
        assert_eq!(Class::parse(b"avx-vnni"), Some(Class::AvxVnni));
        assert_eq!(Class::parse(b"avx512"), None);
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(
            decimal(18_446_744_073_709_551_615, &mut buf),
            b"18446744073709551615"
        );
    }
}

//! The library preloaded into a real process (this test binary, run again as a child): what
//! `cpuid` answers there, that other segmentation faults still end the process, and that an
//! unknown class is refused.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The child's job, when this binary runs as one.
const CHILD_VAR: &str = "CPUID_MASK_TEST_CHILD";

/// `libcpuid_mask.so`, built from the current sources by `cargo build` in its own target
/// directory: `cargo test` builds a cdylib-only crate's tests without the library itself, and
/// a separate directory cannot wait on the lock of the build that runs these tests.
fn library() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cpuid-mask-build");
            let status = Command::new(env!("CARGO"))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["build", "--release", "--locked", "--package", "cpuid-mask"])
                .arg("--target-dir")
                .arg(&dir)
                .status()
                .expect("cargo runs");
            assert!(status.success(), "cargo build --package cpuid-mask failed");
            dir.join("release").join("libcpuid_mask.so")
        })
        .clone()
}

/// Why the masking cannot work here, if it cannot (no CPUID faulting).
fn cannot_mask() -> Option<String> {
    const ARCH_SET_CPUID: libc::c_int = 0x1012;
    // SAFETY: turning faulting on and straight off again for this thread; no `cpuid` runs
    // between the two calls.
    let on = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, 0) };
    if on != 0 {
        return Some(format!(
            "this CPU or kernel has no CPUID faulting (arch_prctl: {})",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, 1) };
    None
}

/// Runs this binary's `child` test with the library preloaded, `job` in the environment and
/// `class` as `CPUID_MASK`; kills it after 60 s (a fault loop would never end).
fn run_child(job: &str, class: &str) -> Output {
    let lib = library();
    assert!(lib.is_file(), "{} was not built", lib.display());
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("LD_PRELOAD", &lib)
        .env("CPUID_MASK", class)
        .env("CPUID_MASK_VERBOSE", "1")
        .env(CHILD_VAR, job)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("child starts");
    let start = Instant::now();
    while child.try_wait().expect("child status").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("the masked child ({job}) did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("child output")
}

/// What the child reports: `name=0|1` for the features and leaf 7's raw registers.
fn features() -> String {
    let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
    let leaf7_1 = core::arch::x86_64::__cpuid_count(7, 1);
    format!(
        "avx2={} fma={} avx512f={} avx512bw={} avx512vnni={} avxvnni={} leaf7.ebx={:#010x} leaf7.ecx={:#010x} leaf7_1.eax={:#010x}",
        u8::from(std::arch::is_x86_feature_detected!("avx2")),
        u8::from(std::arch::is_x86_feature_detected!("fma")),
        u8::from(std::arch::is_x86_feature_detected!("avx512f")),
        u8::from(std::arch::is_x86_feature_detected!("avx512bw")),
        u8::from(std::arch::is_x86_feature_detected!("avx512vnni")),
        u8::from(std::arch::is_x86_feature_detected!("avxvnni")),
        leaf7.ebx,
        leaf7.ecx,
        leaf7_1.eax,
    )
}

/// The child's `features()` line (the test harness prints it after "test child ... ").
fn probe_line(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .find_map(|l| l.split_once("PROBE ").map(|(_, rest)| rest))
}

/// The value of `key=` in a `features()` line.
fn field(line: &str, key: &str) -> u32 {
    let value = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing from {line}"));
    match value.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).expect("hex"),
        None => value.parse().expect("number"),
    }
}

/// The child's side: does what `CPUID_MASK_TEST_CHILD` says (nothing in a normal test run).
#[test]
fn child() {
    match std::env::var(CHILD_VAR).as_deref() {
        Ok("probe") => println!("PROBE {}", features()),
        Ok("own-handler") => {
            // A program's own SIGSEGV handler (as Rust's runtime, Python's faulthandler and
            // perf install): cpuid must still be answered, and a real fault must reach it.
            extern "C" fn own(_: libc::c_int) {
                // SAFETY: async-signal-safe exit.
                unsafe { libc::_exit(42) };
            }
            // SAFETY: installing a plain handler with a zeroed, then filled, sigaction.
            unsafe {
                let mut act: libc::sigaction = core::mem::zeroed();
                act.sa_sigaction = own as *const () as usize;
                libc::sigemptyset(&mut act.sa_mask);
                assert_eq!(
                    libc::sigaction(libc::SIGSEGV, &act, core::ptr::null_mut()),
                    0
                );
                let mut back: libc::sigaction = core::mem::zeroed();
                libc::sigaction(libc::SIGSEGV, core::ptr::null(), &mut back);
                assert_eq!(
                    back.sa_sigaction, act.sa_sigaction,
                    "the program sees its own handler"
                );
            }
            println!("PROBE {}", features());
            let null = std::hint::black_box(core::ptr::null_mut::<u8>());
            // SAFETY: deliberately not: the write must fault and reach `own`.
            unsafe { null.write_volatile(1) };
            println!("still alive");
        }
        Ok("segv") => {
            let null = std::hint::black_box(core::ptr::null_mut::<u8>());
            // SAFETY: deliberately not: the write must fault and end this process.
            unsafe { null.write_volatile(1) };
            println!("still alive");
        }
        _ => {}
    }
}

#[test]
fn a_masked_process_sees_the_class_features_only() {
    if let Some(why) = cannot_mask() {
        eprintln!("skipped: {why}");
        return;
    }
    let real = features();
    for class in ["avx2", "avx-vnni"] {
        let out = run_child("probe", class);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{class}: {stdout}{stderr}");
        let line =
            probe_line(&stdout).unwrap_or_else(|| panic!("{class}: no PROBE line in {stdout}"));
        // Kept as the CPU has them.
        for key in ["avx2", "fma"] {
            assert_eq!(field(line, key), field(&real, key), "{class} {key}: {line}");
        }
        // AVX-512 gone, in the detection and in the raw bits.
        for key in ["avx512f", "avx512bw", "avx512vnni"] {
            assert_eq!(field(line, key), 0, "{class} {key}: {line}");
        }
        let ebx = field(line, "leaf7.ebx");
        assert_eq!(ebx & (1 << 16 | 1 << 30 | 1 << 31), 0, "{class}: {line}");
        assert_eq!(
            ebx & (1 << 5 | 1 << 3 | 1 << 8),
            field(&real, "leaf7.ebx") & (1 << 5 | 1 << 3 | 1 << 8),
            "AVX2, BMI1, BMI2 as on the CPU: {line}"
        );
        assert_eq!(field(line, "leaf7.ecx") & (1 << 11), 0, "{class}: {line}");
        // AVX-VNNI only in its own class, and only where the CPU has it.
        let vnni = if class == "avx-vnni" {
            field(&real, "avxvnni")
        } else {
            0
        };
        assert_eq!(field(line, "avxvnni"), vnni, "{class}: {line}");
        assert_eq!(field(line, "leaf7_1.eax") >> 4 & 1, vnni, "{class}: {line}");
        // The instructions really trapped and were answered.
        let answered: u64 = stderr
            .lines()
            .find_map(|l| l.strip_prefix("cpuid-mask: answered "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{class}: no count in {stderr}"));
        assert!(answered >= 2, "{class}: {answered} answered");
    }
}

#[test]
fn other_segmentation_faults_still_end_the_process() {
    if let Some(why) = cannot_mask() {
        eprintln!("skipped: {why}");
        return;
    }
    let out = run_child("segv", "avx2");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("still alive"), "{stdout}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{:?}: {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unknown_class_is_refused() {
    let out = run_child("probe", "avx512");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CPUID_MASK must be `avx2` or `avx-vnni`"),
        "{stderr}"
    );
}

#[test]
fn a_program_with_its_own_segv_handler_keeps_both() {
    if let Some(why) = cannot_mask() {
        eprintln!("skipped: {why}");
        return;
    }
    let out = run_child("own-handler", "avx2");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = probe_line(&stdout).unwrap_or_else(|| panic!("no PROBE line: {stdout}{stderr}"));
    assert_eq!(field(line, "leaf7.ebx") & 1 << 16, 0, "{line}");
    assert!(!stdout.contains("still alive"), "{stdout}");
    assert_eq!(
        out.status.code(),
        Some(42),
        "{:?}: {stdout}{stderr}",
        out.status
    );
}

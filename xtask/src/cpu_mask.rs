//! `cargo xtask --cpu-class avx2|avx-vnni <command>`: runs a command as if on a narrower x86
//! CPU, to measure an AVX2 (or AVX-VNNI) machine's code paths, ours and the anchors', on an
//! AVX-512 one.
//!
//! The process re-executes itself with the workspace's `cpuid-mask` library preloaded: every
//! `cpuid` in it and in its children (the Keras anchor's Python) is answered without the
//! features the class lacks, so our runtime, `gemm`, LiteRT's XNNPACK and oneDNN all choose
//! their narrower kernels. After the re-execution the detected features are checked against
//! the class. The core underneath is unchanged (caches, clocks, execution ports), which every
//! report made this way says.

use anyhow::{Context, bail};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use unet_bench::sys::MachineInfo;

/// The CPU class a command runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuClass {
    /// This CPU as it is.
    Native,
    /// AVX2 and FMA only: no AVX-512, no VNNI (an AMD Zen 3 or Intel Haswell-class CPU).
    Avx2,
    /// AVX2 with AVX-VNNI, no AVX-512 (an Intel Alder Lake-class client CPU).
    AvxVnni,
}

impl CpuClass {
    /// The name `cpuid-mask` takes in `CPUID_MASK`.
    fn mask_name(self) -> Option<&'static str> {
        match self {
            CpuClass::Native => None,
            CpuClass::Avx2 => Some("avx2"),
            CpuClass::AvxVnni => Some("avx-vnni"),
        }
    }

    /// The features a CPU of this class has, and those it lacks (none for `Native`).
    fn features(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            CpuClass::Native => (&[], &[]),
            CpuClass::Avx2 => (&["avx2", "fma"], &["avx512f", "avxvnni"]),
            CpuClass::AvxVnni => (&["avx2", "fma", "avxvnni"], &["avx512f"]),
        }
    }

    /// Whether the detected `features` are those of this class: `None` if so, else what is wrong.
    fn mismatch(self, features: &[String]) -> Option<String> {
        let has = |f: &str| features.iter().any(|x| x == f);
        let (needed, absent) = self.features();
        let missing: Vec<&str> = needed.iter().copied().filter(|f| !has(f)).collect();
        let extra: Vec<&str> = absent.iter().copied().filter(|f| has(f)).collect();
        match (missing.is_empty(), extra.is_empty()) {
            (true, true) => None,
            _ => Some(format!(
                "missing [{}], present but masked away [{}]",
                missing.join(" "),
                extra.join(" ")
            )),
        }
    }
}

/// The environment variable that names the class of a masked process (read by `cpuid-mask`).
const CLASS_VAR: &str = "CPUID_MASK";
/// Where the library is taken from instead of building it (the tests set it).
const LIBRARY_VAR: &str = "CPUID_MASK_LIB";
/// glibc picks its string functions before a preloaded constructor runs; this narrows them too.
const GLIBC_TUNABLES: &str =
    "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-AVX512_VNNI";

/// Makes this process run as `class`: nothing for [`CpuClass::Native`] or when the CPU already
/// is of that class; otherwise re-executes it under `cpuid-mask` (this call then does not
/// return) or, once re-executed, checks that the features are the class's.
pub fn enter(class: CpuClass) -> anyhow::Result<()> {
    let Some(name) = class.mask_name() else {
        return Ok(());
    };
    let features = MachineInfo::detect().features;
    if unet_bench::sys::cpuid_mask().as_deref() == Some(name) {
        if let Some(wrong) = class.mismatch(&features) {
            bail!(
                "--cpu-class {name}: the masked process still sees the wrong CPU features ({wrong}); \
                 detected: {}",
                features.join(" ")
            );
        }
        return Ok(());
    }
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        bail!("--cpu-class {name} needs x86-64 Linux (CPUID faulting)");
    }
    if class.mismatch(&features).is_none() {
        println!("--cpu-class {name}: this CPU already is of that class; nothing to mask");
        return Ok(());
    }
    // Only narrowing is possible: every feature the class needs must be real.
    let lacking: Vec<&str> = class
        .features()
        .0
        .iter()
        .copied()
        .filter(|f| !features.iter().any(|x| x == f))
        .collect();
    if !lacking.is_empty() {
        bail!(
            "--cpu-class {name}: this CPU lacks {} (masking can only take features away)",
            lacking.join(" ")
        );
    }
    let library = library()?;
    let mut preload = OsString::from(&library);
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(" ");
        preload.push(old);
    }
    let exe = std::env::current_exe().context("path of the running xtask")?;
    println!(
        "--cpu-class {name}: running again with {} preloaded (every cpuid answered without {})",
        library.display(),
        match class {
            CpuClass::AvxVnni => "AVX-512 and AMX",
            _ => "AVX-512, AVX-VNNI and AMX",
        }
    );
    let err = Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env("LD_PRELOAD", preload)
        .env(CLASS_VAR, name)
        .env("GLIBC_TUNABLES", GLIBC_TUNABLES)
        .exec();
    Err(err).with_context(|| format!("re-executing {}", exe.display()))
}

/// `libcpuid_mask.so`: `$CPUID_MASK_LIB`, or built by cargo (release profile).
fn library() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(LIBRARY_VAR) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{LIBRARY_VAR}={}: no such file", path.display());
        }
        return Ok(path);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(crate::project_root())
        .args([
            "build",
            "--release",
            "--package",
            "cpuid-mask",
            "--message-format=json-render-diagnostics",
        ])
        .output()
        .context("running cargo build --package cpuid-mask")?;
    if !output.status.success() {
        bail!(
            "cargo build --package cpuid-mask failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "cpuid_mask")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
        })
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|p| p.extension().is_some_and(|e| e == "so"))
        .context("cargo built cpuid-mask but named no .so")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn classes_check_the_features_they_promise() {
        let xeon = f(&["avx2", "fma", "avx512f", "avx512vnni", "avxvnni"]);
        let masked_avx2 = f(&["avx2", "fma"]);
        let masked_vnni = f(&["avx2", "fma", "avxvnni"]);
        assert!(CpuClass::Native.mismatch(&xeon).is_none());
        assert!(CpuClass::Avx2.mismatch(&masked_avx2).is_none());
        assert!(CpuClass::AvxVnni.mismatch(&masked_vnni).is_none());
        let wrong = CpuClass::Avx2
            .mismatch(&xeon)
            .expect("AVX-512 is not AVX2-only");
        assert!(wrong.contains("avx512f avxvnni"), "{wrong}");
        let wrong = CpuClass::AvxVnni
            .mismatch(&masked_avx2)
            .expect("no AVX-VNNI");
        assert!(wrong.contains("missing [avxvnni]"), "{wrong}");
        assert_eq!(CpuClass::AvxVnni.mask_name(), Some("avx-vnni"));
        assert_eq!(CpuClass::Native.mask_name(), None);
    }
}

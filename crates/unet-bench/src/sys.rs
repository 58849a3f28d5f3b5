//! Facts about the machine and the process: CPU model and features, peak RSS, the git commit.

use std::path::Path;

use serde::Serialize;

/// Resets the kernel's peak-RSS counter of this process (Linux: `5` into `/proc/self/clear_refs`),
/// so that [`peak_rss_mib`] then measures one backend. Silently does nothing elsewhere.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process in MiB (`VmHWM`), where the OS reports it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// What the report records about the machine.
#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo {
    /// CPU model name.
    pub cpu_model: String,
    /// x86 family and model numbers (`family 6 model 167`), which tell apart CPUs that report
    /// the same model name (virtual machines often do); `None` elsewhere.
    pub cpu_id: Option<String>,
    /// `std::env::consts::ARCH`.
    pub arch: String,
    /// Logical CPUs available to this process.
    pub logical_cpus: usize,
    /// SIMD features that matter for int8 inference, as detected at run time.
    pub features: Vec<String>,
    /// `uname -r`-like kernel release, where readable.
    pub kernel: Option<String>,
    /// The class this process was narrowed to by the `cpuid-mask` library (`cargo xtask
    /// --cpu-class avx2`), if any: `features` are then the masked ones, while `cpu_model` and
    /// the core underneath are still the real CPU's.
    pub cpuid_mask: Option<String>,
}

impl MachineInfo {
    /// Detects the current machine.
    pub fn detect() -> Self {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Self {
            cpu_model: cpu_model(&info),
            cpu_id: cpu_id(&info),
            arch: std::env::consts::ARCH.to_string(),
            logical_cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            features: cpu_features(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_string()),
            cpuid_mask: cpuid_mask(),
        }
    }
}

impl MachineInfo {
    /// One line for a report: "CPU: name (family/model), N logical CPUs, features `…`." and,
    /// for a process narrowed by `--cpu-class`, what that means for the figures.
    pub fn summary(&self) -> String {
        let masked = match &self.cpuid_mask {
            Some(class) => format!(
                " CPUID-masked (`--cpu-class {class}`): every library in the process saw these \
                 features and ran their code paths, on this CPU's cores, caches and clocks (not a \
                 CPU of that class)."
            ),
            None => String::new(),
        };
        format!(
            "CPU: {} ({}), {} logical CPUs, features `{}`.{masked}",
            self.cpu_model,
            self.cpu_id.as_deref().unwrap_or("no family/model"),
            self.logical_cpus,
            self.features.join(" ")
        )
    }
}

/// The class `cpuid-mask` shows this process (`CPUID_MASK`, `avx2` when unset), when
/// `libcpuid_mask` is preloaded.
pub fn cpuid_mask() -> Option<String> {
    let preloaded = std::env::var("LD_PRELOAD").unwrap_or_default();
    if !preloaded.contains("libcpuid_mask") {
        return None;
    }
    Some(std::env::var("CPUID_MASK").unwrap_or_else(|_| "avx2".into()))
}

/// The value of the first `key : value` line of `/proc/cpuinfo` text.
fn cpuinfo_field(info: &str, key: &str) -> Option<String> {
    info.lines()
        .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
        .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
}

fn cpu_model(info: &str) -> String {
    for key in ["model name", "Hardware", "Model", "CPU part"] {
        if let Some(value) = cpuinfo_field(info, key) {
            return if key == "CPU part" {
                format!("ARM CPU part {value}")
            } else {
                value
            };
        }
    }
    "unknown".into()
}

fn cpu_id(info: &str) -> Option<String> {
    Some(format!(
        "family {} model {}",
        cpuinfo_field(info, "cpu family")?,
        cpuinfo_field(info, "model")?
    ))
}

/// The 1-, 5- and 15-minute load averages as `/proc/loadavg` gives them, or `unknown`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut found: Vec<String> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => {$(
                if std::arch::is_x86_feature_detected!($f) { found.push($f.to_string()); }
            )*};
        }
        probe!(
            "sse4.1",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512vnni",
            "avxvnni"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => {$(
                if std::arch::is_aarch64_feature_detected!($f) { found.push($f.to_string()); }
            )*};
        }
        probe!("neon", "dotprod", "i8mm", "fp16", "sve", "sve2", "bf16");
    }
    found
}

/// The git commit of the working tree at `dir` (with `-dirty` when it has changes), if git is
/// available.
pub fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_cpu_and_a_mask() {
        let mut m = MachineInfo {
            cpu_model: "Some CPU".into(),
            cpu_id: Some("family 6 model 167".into()),
            arch: "x86_64".into(),
            logical_cpus: 2,
            features: vec!["avx2".into(), "fma".into()],
            kernel: None,
            cpuid_mask: None,
        };
        assert_eq!(
            m.summary(),
            "CPU: Some CPU (family 6 model 167), 2 logical CPUs, features `avx2 fma`."
        );
        m.cpuid_mask = Some("avx2".into());
        let masked = m.summary();
        assert!(
            masked.contains("features `avx2 fma`. CPUID-masked (`--cpu-class avx2`)"),
            "{masked}"
        );
        assert!(masked.contains("not a CPU of that class"), "{masked}");
    }
}

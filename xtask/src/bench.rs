//! `cargo xtask bench`: the NPU-vs-CPU benchmark (crates/unet-bench) on this machine, a
//! cross-built standalone `unet-bench` binary for the board (`--target … --build-only`), or a
//! run on the board over ssh (`--remote user@host`) that brings the report back.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::project_root;

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub bench: unet_bench::cli::BenchArgs,
    /// Cross-build the standalone `unet-bench` for this Rust target (e.g.
    /// aarch64-unknown-linux-gnu) instead of benchmarking here.
    #[arg(long)]
    pub target: Option<String>,
    /// Only build (with --target): print how to copy and run the binary.
    #[arg(long)]
    pub build_only: bool,
    /// Run on a board over ssh: copy the binary and the model, run, fetch the report.
    #[arg(long, value_name = "USER@HOST")]
    pub remote: Option<String>,
    /// ssh port for --remote.
    #[arg(long, default_value_t = 22)]
    pub ssh_port: u16,
    /// ssh identity file for --remote.
    #[arg(long)]
    pub ssh_identity: Option<PathBuf>,
    /// Extra ssh option for --remote (repeatable), e.g. `--ssh-option UserKnownHostsFile=/tmp/kh`.
    #[arg(long = "ssh-option")]
    pub ssh_options: Vec<String>,
    /// Working directory on the board.
    #[arg(long, default_value = "/tmp/unet-bench")]
    pub remote_dir: String,
    /// Command put in front of the binary on the remote side, e.g.
    /// `qemu-aarch64 -L /usr/aarch64-linux-gnu` to try an aarch64 build on an x86 host.
    #[arg(long)]
    pub remote_wrapper: Option<String>,
}

/// Runs `cargo xtask bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(remote) = &args.remote {
        return run_remote(args, remote);
    }
    if args.build_only || args.target.is_some() {
        let target = args.target.clone().unwrap_or_else(host_target);
        let Some(binary) = cross_build(&target)? else {
            return Ok(());
        };
        print_instructions(&binary, &target);
        if !args.build_only {
            println!(
                "(--target without --remote only builds; add --remote user@host to run it on the board)"
            );
        }
        return Ok(());
    }
    run_local(&args.bench)
}

/// Runs the suite here and prints the table and the artifact paths.
pub fn run_local(bench: &unet_bench::cli::BenchArgs) -> anyhow::Result<()> {
    let command: Vec<String> = std::iter::once("cargo xtask bench".to_string())
        .chain(std::env::args().skip(2))
        .collect();
    if bench.model.len() > 1 {
        let (report, paths) =
            unet_bench::cli::run_models(bench, command).context("bench failed")?;
        println!("\n{}", report.markdown_table());
        for p in paths {
            println!("wrote {}", p.display());
        }
        return Ok(());
    }
    let (report, paths) = unet_bench::cli::run(bench, command).context("bench failed")?;
    println!("\n{}", report.markdown_table());
    for p in paths {
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn host_target() -> String {
    let out = Command::new("rustc").arg("-vV").output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        })
        .unwrap_or_else(|| "x86_64-unknown-linux-gnu".into())
}

fn installed_targets() -> Vec<String> {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The cross linker for a `<arch>-unknown-linux-gnu` target (Debian's `gcc-<arch>-linux-gnu`).
fn linker_for(target: &str) -> Option<String> {
    let arch = target.split('-').next()?;
    Some(format!("{arch}-linux-gnu-gcc"))
}

/// Builds the standalone binary (without the burn backend, which needs a checkpoint and a big
/// build) for `target`. Returns `None`, after printing why, when the toolchain is missing.
pub fn cross_build(target: &str) -> anyhow::Result<Option<PathBuf>> {
    let host = host_target();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(project_root()).args([
        "build",
        "--release",
        "-p",
        "unet-bench",
        "--bin",
        "unet-bench",
        "--no-default-features",
        "--target",
        target,
    ]);
    // The binary reports this commit even where the source tree is absent (on the board).
    if let Some(commit) = unet_bench::sys::git_commit(&project_root()) {
        cmd.env("UNET_BENCH_COMMIT", commit);
    }
    if target != host {
        if !installed_targets().iter().any(|t| t == target) {
            println!("skipped: Rust target {target} is not installed (rustup target add {target})");
            return Ok(None);
        }
        if let Some(linker) = linker_for(target) {
            if which(&linker).is_none() {
                println!(
                    "skipped: cross linker {linker} not found (apt-get install gcc-{}-linux-gnu)",
                    target.split('-').next().unwrap_or("aarch64")
                );
                return Ok(None);
            }
            let var = format!(
                "CARGO_TARGET_{}_LINKER",
                target.to_uppercase().replace('-', "_")
            );
            if std::env::var_os(&var).is_none() {
                cmd.env(var, linker);
            }
        }
    }
    println!(
        "building: cargo build --release -p unet-bench --bin unet-bench --no-default-features --target {target}"
    );
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        bail!("cross-build for {target} failed ({status})");
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    let binary = target_dir.join(target).join("release").join("unet-bench");
    if !binary.is_file() {
        bail!("the build succeeded but {} is missing", binary.display());
    }
    Ok(Some(binary))
}

fn print_instructions(binary: &Path, target: &str) {
    println!("\nbuilt {} ({target})", binary.display());
    println!("copy it and the int8 model to the board and run it there:");
    println!(
        "  scp {} artifacts/unet_int8.tflite artifacts/unet_fp32.tflite user@board:/tmp/",
        binary.display()
    );
    println!(
        "  ssh user@board 'cd /tmp && ./unet-bench --model unet_int8.tflite --float-model unet_fp32.tflite \\"
    );
    println!("      --litert-lib /path/to/libLiteRt.so \\");
    println!(
        "      --backends rust-int8,rust-f32,litert:cpu,litert:npu,benchmark-model:/usr/bin/benchmark_model \\"
    );
    println!(
        "      --benchmark-model-arg=--external_delegate_path=/usr/lib/libvx_delegate.so --out bench'"
    );
    println!("  scp -r user@board:/tmp/bench artifacts/bench-board");
    println!("or let `cargo xtask bench --remote user@board --target {target}` do all of that.");
}

struct Ssh<'a> {
    args: &'a BenchArgs,
    host: &'a str,
}

impl Ssh<'_> {
    fn common(&self, cmd: &mut Command, port_flag: &str) {
        cmd.arg(port_flag).arg(self.args.ssh_port.to_string());
        cmd.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
        ]);
        if let Some(id) = &self.args.ssh_identity {
            cmd.arg("-i").arg(id);
        }
        for o in &self.args.ssh_options {
            cmd.arg("-o").arg(o);
        }
    }

    fn run(&self, remote_command: &str) -> anyhow::Result<()> {
        let mut cmd = Command::new("ssh");
        self.common(&mut cmd, "-p");
        cmd.arg(self.host).arg(remote_command);
        let status = cmd.status().context("running ssh")?;
        if !status.success() {
            bail!("ssh {} '{remote_command}' failed ({status})", self.host);
        }
        Ok(())
    }

    fn copy(&self, from: &[String], to: &str, recursive: bool) -> anyhow::Result<()> {
        let mut cmd = Command::new("scp");
        self.common(&mut cmd, "-P");
        if recursive {
            cmd.arg("-r");
        }
        cmd.args(from).arg(to);
        let status = cmd.status().context("running scp")?;
        if !status.success() {
            bail!("scp {} {to} failed ({status})", from.join(" "));
        }
        Ok(())
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn run_remote(args: &BenchArgs, host: &str) -> anyhow::Result<()> {
    let target = args
        .target
        .clone()
        .unwrap_or_else(|| "aarch64-unknown-linux-gnu".into());
    let Some(binary) = cross_build(&target)? else {
        bail!("cannot run on {host}: no binary for {target} (see the message above)");
    };
    let b = &args.bench;
    let (model, float_model) = if b.synth {
        unet_bench::cli::write_synth_models(
            &b.out.join("synth"),
            b.synth_fms,
            b.synth_size,
            b.seed,
        )?
    } else {
        let [model] = b.model.as_slice() else {
            bail!("--remote runs one --model at a time");
        };
        (model.clone(), b.float_model.clone())
    };
    if !model.is_file() {
        bail!(
            "{}: no such model (run `cargo xtask quantize`, pass --model, or use --synth)",
            model.display()
        );
    }
    let ssh = Ssh { args, host };
    let dir = &args.remote_dir;
    ssh.run(&format!("mkdir -p {}", shell_quote(dir)))?;
    let mut files = vec![binary.display().to_string(), model.display().to_string()];
    let mut remote_args: Vec<String> = vec![
        "./unet-bench".into(),
        "--model".into(),
        file_name(&model),
        "--out".into(),
        "bench".into(),
        "--no-progress".into(),
    ];
    if float_model.is_file() {
        files.push(float_model.display().to_string());
        remote_args.extend(["--float-model".into(), file_name(&float_model)]);
    }
    if let Some(inputs) = &b.inputs {
        files.push(inputs.display().to_string());
        remote_args.extend(["--inputs".into(), file_name(inputs)]);
        if let Some(masks) = &b.masks {
            files.push(masks.display().to_string());
            remote_args.extend(["--masks".into(), file_name(masks)]);
        }
    }
    remote_args.extend([
        format!("--backends={}", b.backends),
        format!("--warmup={}", b.warmup),
        format!("--runs={}", b.runs),
        format!("--threads={}", b.threads),
        format!("--slices={}", b.slices),
        format!("--seed={}", b.seed),
        format!("--baseline={}", b.baseline),
        format!("--vela={}", b.vela.display()),
        format!("--layer-runs={}", b.layer_runs),
    ]);
    if b.vela_sweep {
        remote_args.push("--vela-sweep".into());
    }
    if let Some(s) = b.max_secs {
        remote_args.push(format!("--max-secs={s}"));
    }
    if let Some(p) = &b.litert_lib {
        remote_args.push(format!("--litert-lib={}", p.display()));
    }
    if let Some(p) = &b.litert_dispatch_dir {
        remote_args.push(format!("--litert-dispatch-dir={}", p.display()));
    }
    remote_args.extend(b.vela_args.iter().map(|a| format!("--vela-arg={a}")));
    remote_args.extend(
        b.benchmark_model_args
            .iter()
            .map(|a| format!("--benchmark-model-arg={a}")),
    );

    println!("copying {} file(s) to {host}:{dir}", files.len());
    ssh.copy(&files, &format!("{host}:{dir}/"), false)?;
    let quoted: Vec<String> = remote_args.iter().map(|a| shell_quote(a)).collect();
    println!("running on {host}: {}", remote_args.join(" "));
    let wrapper = args
        .remote_wrapper
        .as_deref()
        .map(|w| format!("{w} "))
        .unwrap_or_default();
    ssh.run(&format!(
        "cd {} && {wrapper}{}",
        shell_quote(dir),
        quoted.join(" ")
    ))?;
    let local = b.out.clone();
    std::fs::create_dir_all(&local).with_context(|| format!("creating {}", local.display()))?;
    let fetched =
        ["report.json", "report.md", "latency.svg"].map(|f| format!("{host}:{dir}/bench/{f}"));
    ssh.copy(&fetched, &format!("{}/", local.display()), false)?;
    // The charts that exist only when the report has their section.
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(local.join("report.json"))
            .with_context(|| format!("reading {}/report.json", local.display()))?,
    )
    .with_context(|| format!("parsing {}/report.json", local.display()))?;
    let optional: Vec<String> = [("layers", "layers.svg"), ("vela_sweep", "vela_sweep.svg")]
        .into_iter()
        .filter(|(key, _)| !report[*key].is_null())
        .map(|(_, f)| format!("{host}:{dir}/bench/{f}"))
        .collect();
    if !optional.is_empty() {
        ssh.copy(&optional, &format!("{}/", local.display()), false)?;
    }
    let md = std::fs::read_to_string(local.join("report.md"))
        .with_context(|| format!("reading {}/report.md", local.display()))?;
    println!("\n{md}");
    println!("report from {host} in {}", local.display());
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

//! Helpers of the xtask integration tests: the built binary and a tiny training run.

#![allow(dead_code)]

use std::process::Command;

/// `train` flags of a tiny run: 32×32, fms 4, one epoch of one step, no time budget.
pub const TINY_TRAIN: [&str; 18] = [
    "--size",
    "32",
    "--fms",
    "4",
    "--epochs",
    "1",
    "--steps-per-epoch",
    "1",
    "--batch-size",
    "2",
    "--slices",
    "8",
    "--val-slices",
    "4",
    "--max-minutes",
    "0",
    "--progress",
    "none",
];

/// The xtask binary, without colour and with the default log level.
pub fn xtask() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

/// Runs xtask with `args` and panics with its output unless it succeeds.
pub fn ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) {
    let out = xtask().args(args).output().expect("xtask runs");
    assert!(
        out.status.success(),
        "{:?} failed:\n{}{}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `base` with `extra` applied: `--flag value` pairs replace the base's value of that flag,
/// everything else is appended.
pub fn with(base: &[&str], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    let mut i = 0;
    while i < extra.len() {
        let flag = extra[i];
        if let Some((name, _)) = flag.split_once('=')
            && let Some(at) = args.iter().position(|a| a == name)
        {
            // `--flag=value` replaces a base `--flag value`.
            let end = (at + 2).min(args.len());
            args.splice(at..end, [flag.to_string()]);
            i += 1;
            continue;
        }
        let value = extra.get(i + 1).filter(|v| !v.starts_with("--"));
        match (args.iter().position(|a| a == flag), value) {
            (Some(at), Some(value)) if at + 1 < args.len() && !args[at + 1].starts_with("--") => {
                args[at + 1] = value.to_string();
                i += 2;
            }
            (_, Some(value)) => {
                args.push(flag.to_string());
                args.push(value.to_string());
                i += 2;
            }
            (_, None) => {
                args.push(flag.to_string());
                i += 1;
            }
        }
    }
    args
}

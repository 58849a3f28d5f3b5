//! The one door to outside tools that may be missing: LiteRT's Python interpreter (the
//! correctness oracle) and the skip rule of every test that needs LiteRT or Vela.
//!
//! LiteRT is reached through `python3` and the pip package `ai-edge-litert`, running the one
//! oracle script shipped in this crate ([`SCRIPT`], commands `run`, `batch`, `signature`, `time`,
//! `describe`, `compare`; see its docstring) through [`command`] or [`run`]. Where a tool is
//! missing a test goes through [`require`]: it prints why it skips, or fails when `.ci/run` sets
//! `REQUIRE_LITERT`, so that CI can never pass by skipping.

#![warn(missing_docs)]

use std::ffi::OsStr;
use std::process::Command;

/// The oracle script (Python), shipped inside the crate and run with `python3 -c`.
pub const SCRIPT: &str = include_str!("../scripts/litert_oracle.py");

/// `python3 -c SCRIPT <args>`: the oracle, ready to run (the first argument is its command).
pub fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(SCRIPT).args(args);
    cmd
}

/// Runs the oracle with `args`: `Ok(stdout)`, or `Err` with the command and its stderr.
pub fn run<I, S>(args: I) -> Result<String, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = command(&args)
        .output()
        .map_err(|e| format!("cannot run python3 (LiteRT oracle {shown}): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "LiteRT oracle `{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The import that proves the oracle is usable.
const PROBE: &str = "import ai_edge_litert.interpreter, numpy";

/// The environment variable that turns every missing external tool (LiteRT, Vela) into a test
/// failure instead of a skip. `.ci/run` sets it.
pub const REQUIRE_VAR: &str = "REQUIRE_LITERT";

/// Whether [`REQUIRE_VAR`] is set (to anything but an empty string or `0`).
pub fn required() -> bool {
    std::env::var_os(REQUIRE_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The one door every test goes through when an external tool may be missing.
///
/// `probe` says whether `tool` is usable: `Ok(value)` passes the value through as `Some`; an
/// `Err(reason)` prints `skipped: <tool>: <reason>` and returns `None`, or panics when
/// [`REQUIRE_VAR`] is set, so that CI can never pass by skipping.
pub fn require<T>(tool: &str, probe: Result<T, String>) -> Option<T> {
    match probe {
        Ok(value) => Some(value),
        Err(reason) => {
            if required() {
                panic!("{REQUIRE_VAR} is set but {tool} is unavailable: {reason}");
            }
            eprintln!("skipped: {tool}: {reason}");
            None
        }
    }
}

/// Whether `python3` can import LiteRT and numpy: `Err` holds the reason when not.
pub fn probe_litert() -> Result<(), String> {
    python_import(PROBE)
}

/// Whether `python3 -c <code>` succeeds: `Err` holds the reason when not.
pub fn python_import(code: &str) -> Result<(), String> {
    match Command::new("python3").args(["-c", code]).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "python3 -c '{code}' failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Err(format!("cannot run python3: {err}")),
    }
}

/// `Ok(())` when `python3` can import LiteRT and numpy. Otherwise prints `skipped: <reason>` and
/// returns the reason, or panics when the `REQUIRE_LITERT` environment variable is set.
pub fn litert() -> Result<(), String> {
    let probe = probe_litert();
    let reason = probe.clone().err();
    match require("LiteRT (pip ai-edge-litert)", probe) {
        Some(()) => Ok(()),
        None => Err(reason.unwrap_or_default()),
    }
}

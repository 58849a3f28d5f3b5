//! Test support shared by the crates whose tests compare against LiteRT.
//!
//! LiteRT is reached through `python3` and the pip package `ai-edge-litert`. Where it is missing a
//! test prints why it skips; `.ci/run` sets `REQUIRE_LITERT`, which turns a missing oracle into a
//! failure so that CI can never pass by skipping.

#![warn(missing_docs)]

use std::process::Command;

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

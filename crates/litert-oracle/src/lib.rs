//! Test support shared by the crates whose tests compare against LiteRT.
//!
//! LiteRT is reached through `python3` and the pip package `ai-edge-litert`. Where it is missing a
//! test prints why it skips; `.ci/run` sets `REQUIRE_LITERT`, which turns a missing oracle into a
//! failure so that CI can never pass by skipping.

#![warn(missing_docs)]

use std::process::Command;

/// The import that proves the oracle is usable.
const PROBE: &str = "import ai_edge_litert.interpreter, numpy";

/// `Ok(())` when `python3` can import LiteRT and numpy. Otherwise prints `skipped: <reason>` and
/// returns the reason, or panics when the `REQUIRE_LITERT` environment variable is set.
pub fn litert() -> Result<(), String> {
    let out = Command::new("python3").args(["-c", PROBE]).output();
    let reason = match out {
        Ok(out) if out.status.success() => return Ok(()),
        Ok(out) => format!(
            "python3 -c '{PROBE}' failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => format!("cannot run python3: {err}"),
    };
    if std::env::var_os("REQUIRE_LITERT").is_some() {
        panic!("REQUIRE_LITERT is set but LiteRT is unavailable: {reason}");
    }
    eprintln!("skipped: {reason}");
    Err(reason)
}

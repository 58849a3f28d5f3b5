//! Logs written to a pipe (CI logs, `2>file`, `| tee`) carry no ANSI colour codes.

use std::process::{Command, Stdio};

/// Runs the built `xtask` binary with a command that logs at debug level (`-vv`: unet-data's
/// "opened slice source") and returns its stderr, read through a pipe.
fn stderr_of_a_logging_command(no_color: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args([
        "-vv", "data", "stats", "--source", "noise", "--size", "16", "--limit", "2",
    ])
    .env_remove("RUST_LOG")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    match no_color {
        Some(v) => cmd.env("NO_COLOR", v),
        None => cmd.env_remove("NO_COLOR"),
    };
    let out = cmd.output().expect("xtask runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "xtask data stats failed: {stderr}");
    stderr
}

#[test]
fn logs_to_a_pipe_have_no_ansi_colour_codes() {
    for no_color in [None, Some(""), Some("1")] {
        let stderr = stderr_of_a_logging_command(no_color);
        // The command must really log, or the check below would pass vacuously.
        assert!(
            stderr.contains("opened slice source"),
            "NO_COLOR={no_color:?}: expected a debug line on stderr, got: {stderr}"
        );
        assert!(
            !stderr.contains("\x1b["),
            "NO_COLOR={no_color:?}: ANSI escape codes in piped stderr: {stderr:?}"
        );
    }
}

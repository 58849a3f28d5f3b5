//! `cargo xtask inspect MODEL.tflite [--json]`: print a TFLite model's operators, tensors,
//! quantization and size totals.

use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `cargo xtask inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The `.tflite` file.
    pub model: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand: a malformed file is an error naming the file and the problem.
pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let model = tflite_writer::read_model_file(&args.model)?;
    let summary = tflite_writer::summary::summary(&model);
    let text = if args.json {
        let mut text =
            serde_json::to_string_pretty(&summary).context("cannot serialise the summary")?;
        text.push('\n');
        text
    } else {
        summary.to_text()
    };
    // A closed pipe (`| head`) ends the output quietly instead of panicking in `print!`.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

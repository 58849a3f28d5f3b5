//! `unet-bench`: the standalone benchmark binary (for the board; `cargo xtask bench` runs the
//! same code on the host).

use clap::Parser;

/// Benchmark the U-Net on every available backend and write artifacts/bench/report.{json,md}
/// and latency.svg.
#[derive(Debug, Parser)]
#[command(name = "unet-bench", version, about)]
struct Cli {
    #[command(flatten)]
    bench: unet_bench::cli::BenchArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let command: Vec<String> = std::env::args().collect();
    match unet_bench::cli::run(&cli.bench, command) {
        Ok((report, paths)) => {
            println!("{}", report.markdown_table());
            for p in paths {
                println!("wrote {}", p.display());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! `cargo xtask speed-report`: the speed goals of this machine's CPU class in one table.
//!
//! Runs `runtime-bench --threads N` (ours and LiteRT XNNPACK, alone and round by round) a few
//! times and `train --bench-steps` (burn against Keras, in turns), then writes one table: what
//! was measured, ours and the anchor from the same runs, the ratio, the goal and in how many
//! runs it held, under the CPU's name, family/model and features and the commit. The README's
//! per-CPU-class tables are this command's output.

use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};
use std::path::PathBuf;

use crate::runtime_bench::{self, RuntimeBenchArgs, median};
use crate::train::{self, TrainArgs};
use artifact_io::write_atomic;
use unet_bench::sys::MachineInfo;

/// Arguments of `cargo xtask speed-report`.
#[derive(Debug, clap::Args)]
pub struct SpeedReportArgs {
    /// Output directory: `speed_report.{md,json}` and each run's own report below it.
    #[arg(long, default_value = "artifacts/speed")]
    pub out: PathBuf,
    /// Input height and width of the U-Nets (divisible by 16).
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Feature maps of the first U-Net level.
    #[arg(long, default_value_t = 16)]
    pub fms: usize,
    /// Threads of the multi-threaded rows (the goals are stated for 2).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..=256))]
    pub threads: u16,
    /// `runtime-bench` runs (each times both engines, alone and round by round).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub runtime_repeats: u16,
    /// Timed invokes per engine and run of `runtime-bench`.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..))]
    pub runtime_runs: u16,
    /// Rounds of the training comparison (burn, then Keras, each round).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub train_rounds: u16,
    /// Timed training steps per round.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub train_steps: u16,
    /// Training batch size.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub batch_size: u16,
    /// Leave out the training rows.
    #[arg(long)]
    pub skip_train: bool,
}

/// A speed goal: the ratio ours / anchor must stay at or below `max`, or (for a speedup) at or
/// above `min`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// `ratio ≤ max`.
    AtMost(f64),
    /// `value ≥ min`.
    AtLeast(f64),
}

impl Goal {
    fn holds(self, value: f64) -> bool {
        match self {
            Goal::AtMost(max) => value <= max,
            Goal::AtLeast(min) => value >= min,
        }
    }

    fn text(self) -> String {
        match self {
            Goal::AtMost(max) => format!("≤ {max:.1}×"),
            Goal::AtLeast(min) => format!("≥ {min:.1}×"),
        }
    }
}

/// "met in all 3", "met in 2 of 3", "not met (0 of 3)" or "not measured" for `values` against
/// `goal` (NaN values, from a skipped side, do not count as runs).
pub fn verdict(goal: Goal, values: &[f64]) -> String {
    let runs: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let met = runs.iter().filter(|&&v| goal.holds(v)).count();
    match (met, runs.len()) {
        (_, 0) => "not measured".into(),
        (m, n) if m == n && n == 1 => "met".into(),
        (m, n) if m == n => format!("met in all {n}"),
        (0, n) => format!("not met (0 of {n})"),
        (m, n) => format!("met in {m} of {n}"),
    }
}

/// `lo–hi` of the finite `values` with `digits` decimals and `unit` (one value when they agree
/// at that precision), or `—` when there are none.
pub fn range(values: &[f64], digits: usize, unit: &str) -> String {
    let v: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return "—".into();
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (a, b) = (format!("{lo:.digits$}"), format!("{hi:.digits$}"));
    if a == b {
        format!("{a}{unit}")
    } else {
        format!("{a}–{b}{unit}")
    }
}

/// The CPU class a speed table belongs to, from the features the runtime detects.
pub fn cpu_class(arch: &str, features: &[String]) -> &'static str {
    let has = |f: &str| features.iter().any(|x| x == f);
    match arch {
        "x86_64" if has("avx512f") && has("avx512vnni") => "x86 with AVX-512 VNNI",
        "x86_64" if has("avxvnni") => "x86 with AVX-VNNI (256-bit, no AVX-512 VNNI)",
        "x86_64" if has("avx2") && has("fma") => "x86 with AVX2 (no VNNI)",
        "x86_64" => "x86 without AVX2",
        "aarch64" if has("dotprod") => "ARM with the dot product",
        "aarch64" => "ARM without the dot product",
        _ => "other",
    }
}

/// One row of the table: a measure, its values per run (ours, anchor, ratio alone, ratio round
/// by round) and its goal.
struct Row {
    what: String,
    command: String,
    ours: String,
    anchor: String,
    ratios: Vec<f64>,
    round_ratios: Vec<f64>,
    goal: Option<Goal>,
}

impl Row {
    fn markdown(&self) -> String {
        let ratio = if self.round_ratios.is_empty() {
            range(&self.ratios, 2, "×")
        } else {
            format!(
                "{} (round by round {})",
                range(&self.ratios, 2, "×"),
                range(&self.round_ratios, 2, "×")
            )
        };
        let goal = match self.goal {
            None => String::new(),
            Some(g) if self.round_ratios.is_empty() => {
                format!("{}: {}", g.text(), verdict(g, &self.ratios))
            }
            Some(g) => format!(
                "{}: {} alone, {} round by round",
                g.text(),
                verdict(g, &self.ratios),
                verdict(g, &self.round_ratios)
            ),
        };
        format!(
            "| {} | {} | {} | {} | {} | {} |",
            self.what, self.command, self.ours, self.anchor, ratio, goal
        )
    }

    fn json(&self) -> Value {
        json!({
            "what": self.what,
            "ours": self.ours,
            "anchor": self.anchor,
            "ratios": self.ratios,
            "round_by_round_ratios": self.round_ratios,
            "goal": self.goal.map(Goal::text),
            "verdict_alone": self.goal.map(|g| verdict(g, &self.ratios)),
            "verdict_round_by_round": self
                .goal
                .filter(|_| !self.round_ratios.is_empty())
                .map(|g| verdict(g, &self.round_ratios)),
        })
    }
}

/// `v[key…]` as f64 (NaN when absent).
fn num(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_f64()
        .unwrap_or(f64::NAN)
}

/// The runtime rows of one model kind (`int8` or `f32`) over every `runtime-bench` run.
fn runtime_rows(runs: &[Value], kind: &str, threads: u16, goal: Goal, command: &str) -> Vec<Row> {
    let results: Vec<&Value> = runs
        .iter()
        .filter_map(|r| r["results"].as_array()?.iter().find(|m| m["model"] == kind))
        .collect();
    let col = |f: &dyn Fn(&Value) -> f64| results.iter().map(|r| f(r)).collect::<Vec<f64>>();
    let xnn_n = format!("xnnpack_{threads}threads");
    let ours1 = col(&|r| num(r, &["tflite_runtime", "median_ms"]));
    let oursn = col(&|r| num(r, &["tflite_runtime_threads", "median_ms"]));
    let xnn1 = col(&|r| num(r, &["litert", "xnnpack_1thread", "median_ms"]));
    let xnnn = col(&|r| num(r, &["litert", &xnn_n, "median_ms"]));
    let ratio = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a / b).collect::<Vec<f64>>();
    let path = results
        .first()
        .and_then(|r| r["tflite_runtime"]["kernels"].as_str())
        .unwrap_or("?");
    let anchor_missing = results
        .first()
        .map(|r| r["litert"].is_null())
        .unwrap_or(true);
    // Why LiteRT did not run, as `runtime-bench` said it.
    let why = runs
        .iter()
        .find_map(|r| r["litert_skipped"].as_str())
        .unwrap_or("no LiteRT result");
    let anchor = |ms: &[f64]| {
        if anchor_missing {
            format!("skipped: {why}")
        } else {
            format!("LiteRT XNNPACK {}", range(ms, 2, " ms"))
        }
    };
    let interleaved = |key: &str| col(&|r| num(r, &["interleaved", key]));
    let command = format!("`{command}`");
    vec![
        Row {
            what: format!("{kind} inference, 1 thread"),
            command: command.clone(),
            ours: format!("{} (`{path}`)", range(&ours1, 2, " ms")),
            anchor: anchor(&xnn1),
            ratios: ratio(&ours1, &xnn1),
            round_ratios: interleaved("ours_to_xnnpack_1thread"),
            goal: Some(goal),
        },
        Row {
            what: format!("{kind} inference, {threads} threads"),
            command: command.clone(),
            ours: range(&oursn, 2, " ms"),
            anchor: anchor(&xnnn),
            ratios: ratio(&oursn, &xnnn),
            round_ratios: interleaved("ours_to_xnnpack_threads"),
            goal: Some(goal),
        },
        Row {
            what: format!("{kind}, speedup of {threads} threads over 1"),
            command: command.clone(),
            ours: format!("{} → {}", range(&ours1, 2, " ms"), range(&oursn, 2, " ms")),
            anchor: if anchor_missing {
                anchor(&xnn1)
            } else {
                format!("XNNPACK's speedup {}", range(&ratio(&xnn1, &xnnn), 2, "×"))
            },
            // The goal is on our own speedup, so the "ratio" columns carry it.
            ratios: ratio(&ours1, &oursn),
            round_ratios: interleaved("ours_speedup"),
            goal: (kind == "int8" && threads == 2).then_some(Goal::AtLeast(1.8)),
        },
    ]
}

/// The training rows over every round of `train --bench-steps --bench-rounds`.
fn train_rows(report: &Value, command: &str) -> Vec<Row> {
    let rounds: Vec<&Value> = report["rounds"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    // One value per round of `side` ("burn" or "keras").
    let per_side = |side: &str, key: &str| {
        rounds
            .iter()
            .map(|r| num(r, &[side, key]))
            .collect::<Vec<_>>()
    };
    let burn = |key: &str| per_side("burn", key);
    let keras = |key: &str| per_side("keras", key);
    let keras_missing = rounds.iter().all(|r| r["keras"].is_null());
    let per_round =
        |a: Vec<f64>, b: Vec<f64>| -> Vec<f64> { a.iter().zip(&b).map(|(a, b)| a / b).collect() };
    let why = report["keras_skipped"]
        .as_str()
        .unwrap_or("no Keras result");
    // TensorFlow's oneDNN custom operations: on by default only where the CPU has VNNI, BF16 or
    // AMX, so an AVX2 CPU's Keras runs Eigen unless TF_ENABLE_ONEDNN_OPTS=1.
    let onednn = match rounds.iter().find_map(|r| r["keras"]["onednn"].as_bool()) {
        Some(true) => " (oneDNN ops on)",
        Some(false) => " (oneDNN ops off)",
        None => "",
    };
    let anchor = |v: &[f64], digits: usize, unit: &str| {
        if keras_missing {
            format!("skipped: {why} (python3 -m pip install tensorflow-cpu)")
        } else {
            format!("Keras{onednn} {}", range(v, digits, unit))
        }
    };
    let ms = |v: Vec<f64>| v.iter().map(|s| s * 1e3).collect::<Vec<f64>>();
    let command = format!("`{command}`");
    vec![
        Row {
            what: "training step".into(),
            command: command.clone(),
            ours: range(&burn("median_step_seconds"), 3, " s"),
            anchor: anchor(&keras("median_step_seconds"), 3, " s"),
            ratios: per_round(burn("median_step_seconds"), keras("median_step_seconds")),
            round_ratios: Vec::new(),
            goal: Some(Goal::AtMost(1.0)),
        },
        Row {
            what: "batch-1 inference, burn".into(),
            command: command.clone(),
            ours: range(&ms(burn("inference_batch1_seconds")), 1, " ms"),
            anchor: anchor(&ms(keras("inference_batch1_seconds")), 1, " ms"),
            ratios: per_round(
                burn("inference_batch1_seconds"),
                keras("inference_batch1_seconds"),
            ),
            round_ratios: Vec::new(),
            goal: Some(Goal::AtMost(1.0)),
        },
    ]
}

/// Parses `argv` into a subcommand's arguments with that subcommand's own defaults.
fn parse_args<A: clap::Args>(argv: &[String]) -> anyhow::Result<A> {
    #[derive(Parser)]
    struct Wrap<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    Ok(Wrap::<A>::try_parse_from(argv)?.args)
}

/// `argv` as the `cargo xtask` command a user would type, without the `--out` this report chose.
fn shown_command(argv: &[String]) -> String {
    let kept: Vec<&str> = argv
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--out="))
        .collect();
    format!("cargo xtask {}", kept.join(" "))
}

/// Runs `cargo xtask speed-report`.
pub fn run(args: &SpeedReportArgs) -> anyhow::Result<()> {
    let machine = MachineInfo::detect();
    let class = cpu_class(&machine.arch, &machine.features);
    println!("{} Class \"{class}\".", machine.summary());
    let runtime_argv: Vec<String> = [
        "runtime-bench".to_string(),
        format!("--size={}", args.size),
        format!("--fms={}", args.fms),
        format!("--runs={}", args.runtime_runs),
        format!("--threads={}", args.threads),
    ]
    .into();
    let runtime_command = shown_command(&runtime_argv);
    let mut runtime_runs = Vec::new();
    for k in 1..=args.runtime_repeats {
        println!("\n==> runtime-bench, run {k} of {}", args.runtime_repeats);
        let mut argv = runtime_argv.clone();
        argv.push(format!(
            "--out={}",
            args.out.join(format!("runtime_{k}")).display()
        ));
        let rb: RuntimeBenchArgs = parse_args(&argv)?;
        runtime_runs
            .push(runtime_bench::measure(&rb).with_context(|| format!("runtime-bench run {k}"))?);
    }
    let mut rows = runtime_rows(
        &runtime_runs,
        "int8",
        args.threads,
        Goal::AtMost(1.0),
        &runtime_command,
    );
    rows.extend(runtime_rows(
        &runtime_runs,
        "f32",
        args.threads,
        Goal::AtMost(0.8),
        &runtime_command,
    ));
    let mut training_medians: Vec<String> = Vec::new();
    let train_report = if args.skip_train {
        println!("\ntraining rows skipped: --skip-train");
        None
    } else {
        println!(
            "\n==> train --bench-steps {} --bench-rounds {}",
            args.train_steps, args.train_rounds
        );
        let argv: Vec<String> = [
            "train".to_string(),
            format!("--out={}", args.out.join("train").display()),
            format!("--size={}", args.size),
            format!("--fms={}", args.fms),
            format!("--batch-size={}", args.batch_size),
            format!("--bench-steps={}", args.train_steps),
            format!("--bench-rounds={}", args.train_rounds),
        ]
        .into();
        let ta: TrainArgs = parse_args(&argv)?;
        let report = train::bench_report(&ta).context("train --bench-steps")?;
        let train = train_rows(&report, &shown_command(&argv));
        training_medians = train
            .iter()
            .map(|r| format!("{} {:.2}×", r.what, median(r.ratios.clone())))
            .collect();
        rows.extend(train);
        Some(report)
    };
    let commit =
        unet_bench::sys::git_commit(&crate::project_root()).unwrap_or_else(|| "unknown".into());
    let load = unet_bench::sys::load_average();
    let command: Vec<String> = std::env::args().collect();
    let train_line = match &train_report {
        Some(_) => format!(
            "; training: {} rounds of {} steps, batch {}",
            args.train_rounds, args.train_steps, args.batch_size
        ),
        None => "; training rows skipped (--skip-train)".into(),
    };
    let title = match &machine.cpuid_mask {
        Some(mask) => format!(
            "{class}, CPUID-masked (`--cpu-class {mask}`) on {}",
            machine.cpu_model
        ),
        None => class.to_string(),
    };
    let md = format!(
        "# Speed against the anchors: {title}\n\n\
         {} Commit {commit}; load average at the end {load}.\n\
         U-Net fms={} {}×{} (random weights for inference); `runtime-bench`: {} runs of {} timed invokes per engine{train_line}.\n\
         Ratios are ours / the anchor (a speedup row: our own {}-thread speedup), one value per run; \
         \"round by round\": the engines take turns and each ratio comes from invokes timed in the same round.\n\n\
         | what | command | ours | anchor | ours / anchor | goal |\n|---|---|---|---|---|---|\n{}\n\n{}\
         command: `{}`\n",
        machine.summary(),
        args.fms,
        args.size,
        args.size,
        args.runtime_repeats,
        args.runtime_runs,
        args.threads,
        rows.iter()
            .map(Row::markdown)
            .collect::<Vec<_>>()
            .join("\n"),
        if training_medians.is_empty() {
            String::new()
        } else {
            format!(
                "Median over the rounds: {}.\n\n",
                training_medians.join(", ")
            )
        },
        command.join(" "),
    );
    let doc = json!({
        "class": class,
        "cpuid_mask": machine.cpuid_mask,
        "machine": machine,
        "commit": commit,
        "load_average": load,
        "command": command,
        "size": args.size,
        "fms": args.fms,
        "threads": args.threads,
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "runtime_bench": runtime_runs,
        "train_bench": train_report,
    });
    write_atomic(
        &args.out.join("speed_report.json"),
        serde_json::to_string_pretty(&doc)?.as_bytes(),
    )?;
    write_atomic(&args.out.join("speed_report.md"), md.as_bytes())?;
    println!("\n{md}");
    println!("wrote {}/speed_report.{{md,json}}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_count_the_runs_that_meet_the_goal() {
        let at_most = Goal::AtMost(1.0);
        assert_eq!(verdict(at_most, &[0.9]), "met");
        assert_eq!(verdict(at_most, &[0.9, 1.0, 0.5]), "met in all 3");
        assert_eq!(verdict(at_most, &[0.9, 1.01, 0.5]), "met in 2 of 3");
        assert_eq!(verdict(at_most, &[1.2, 1.01]), "not met (0 of 2)");
        assert_eq!(verdict(at_most, &[f64::NAN, f64::NAN]), "not measured");
        assert_eq!(verdict(at_most, &[]), "not measured");
        let at_least = Goal::AtLeast(1.8);
        assert_eq!(verdict(at_least, &[1.77, 1.84, 1.93]), "met in 2 of 3");
        assert_eq!(verdict(at_least, &[1.8]), "met");
        assert_eq!(at_least.text(), "≥ 1.8×");
        assert_eq!(Goal::AtMost(0.8).text(), "≤ 0.8×");
    }

    #[test]
    fn ranges_collapse_when_the_runs_agree() {
        assert_eq!(range(&[3.51, 3.8, 3.77], 1, " ms"), "3.5–3.8 ms");
        assert_eq!(range(&[0.511, 0.514], 2, "×"), "0.51×");
        assert_eq!(range(&[f64::NAN, 2.0], 1, ""), "2.0");
        assert_eq!(range(&[], 1, ""), "—");
    }

    #[test]
    fn cpu_classes_follow_the_runtime_paths() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            cpu_class(
                "x86_64",
                &f(&["avx2", "fma", "avx512f", "avx512vnni", "avxvnni"])
            ),
            "x86 with AVX-512 VNNI"
        );
        assert_eq!(
            cpu_class("x86_64", &f(&["avx2", "fma", "avxvnni"])),
            "x86 with AVX-VNNI (256-bit, no AVX-512 VNNI)"
        );
        assert_eq!(
            cpu_class("x86_64", &f(&["avx2", "fma", "avx512f"])),
            "x86 with AVX2 (no VNNI)"
        );
        assert_eq!(cpu_class("x86_64", &f(&["avx"])), "x86 without AVX2");
        assert_eq!(
            cpu_class("aarch64", &f(&["neon", "dotprod"])),
            "ARM with the dot product"
        );
        assert_eq!(
            cpu_class("aarch64", &f(&["neon"])),
            "ARM without the dot product"
        );
    }

    #[test]
    fn runtime_rows_take_each_run_and_both_ratios() {
        let run = |ours: f64, xnn: f64, rr: f64| {
            json!({"results": [{
                "model": "int8",
                "tflite_runtime": {"median_ms": ours, "kernels": "avx2"},
                "tflite_runtime_threads": {"median_ms": ours / 1.9},
                "litert": {"xnnpack_1thread": {"median_ms": xnn}, "xnnpack_2threads": {"median_ms": xnn / 1.8}},
                "interleaved": {"ours_to_xnnpack_1thread": rr, "ours_to_xnnpack_threads": rr, "ours_speedup": 1.7},
            }]})
        };
        let runs = [run(4.0, 5.0, 0.9), run(6.0, 5.0, 1.1)];
        let rows = runtime_rows(
            &runs,
            "int8",
            2,
            Goal::AtMost(1.0),
            "cargo xtask runtime-bench",
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].ratios, vec![0.8, 1.2]);
        assert_eq!(rows[0].ours, "4.00–6.00 ms (`avx2`)");
        let line = rows[0].markdown();
        assert!(
            line.contains("met in 1 of 2 alone, met in 1 of 2 round by round"),
            "{line}"
        );
        // The speedup row judges our own speedup: 1.9 alone, 1.7 round by round.
        let speedup = rows[2].markdown();
        assert!(
            speedup.contains("≥ 1.8×: met in all 2 alone, not met (0 of 2) round by round"),
            "{speedup}"
        );
        // No f32 results: every value is missing, nothing is judged.
        let f32_rows = runtime_rows(
            &runs,
            "f32",
            2,
            Goal::AtMost(0.8),
            "cargo xtask runtime-bench",
        );
        assert!(f32_rows[0].markdown().contains("not measured"));
    }

    #[test]
    fn a_missing_anchor_is_named_not_judged() {
        let report = json!({"keras_skipped": "No module named 'tensorflow'", "rounds": [
            {"burn": {"median_step_seconds": 0.2, "inference_batch1_seconds": 0.01}, "keras": null},
        ]});
        let rows = train_rows(&report, "cargo xtask train --bench-steps 1");
        let line = rows[0].markdown();
        assert!(
            line.contains("skipped: No module named 'tensorflow'"),
            "{line}"
        );
        assert!(line.contains("not measured"), "{line}");
        assert!(line.contains("0.200 s"), "{line}");
    }

    #[test]
    fn the_keras_anchor_says_whether_onednn_was_on() {
        let rounds = |onednn: Value| {
            json!({"rounds": [{
                "burn": {"median_step_seconds": 0.2, "inference_batch1_seconds": 0.01},
                "keras": {"median_step_seconds": 0.4, "inference_batch1_seconds": 0.02, "onednn": onednn},
            }]})
        };
        let line = |onednn| train_rows(&rounds(onednn), "cargo xtask train")[0].markdown();
        assert!(line(json!(false)).contains("Keras (oneDNN ops off) 0.400 s"));
        assert!(line(json!(true)).contains("Keras (oneDNN ops on) 0.400 s"));
        let unknown = line(Value::Null);
        assert!(unknown.contains("Keras 0.400 s"), "{unknown}");
        assert!(unknown.contains("0.50×"), "{unknown}");
    }
}

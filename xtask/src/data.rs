//! `cargo xtask data`: look at the slices a source produces (`preview`), summarise them
//! (`stats`), and write them out as `.npy` for other tools (`export`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use unet_data::{DataConfig, SourceKind, Split, open_source};

/// `cargo xtask data <command>`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write a PNG grid of slices with their tumour masks overlaid (red fill, yellow outline).
    Preview(PreviewArgs),
    /// Print intensity statistics and the tumour-pixel fraction of a source.
    Stats(StatsArgs),
    /// Write slices and their masks as float32 `.npy` arrays `[N,H,W,1]` (e.g. to train or
    /// calibrate a model in TensorFlow on exactly the slices this toolchain uses).
    Export(ExportArgs),
}

/// A source on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// Seeded brain phantoms (built in, no files needed).
    Synthetic,
    /// Uniform random images and masks (the seed project's dummy data).
    Noise,
    /// Medical Segmentation Decathlon Task01_BrainTumour (needs --data-path).
    Decathlon,
}

impl From<SourceArg> for SourceKind {
    fn from(arg: SourceArg) -> Self {
        match arg {
            SourceArg::Synthetic => SourceKind::Synthetic,
            SourceArg::Noise => SourceKind::Noise,
            SourceArg::Decathlon => SourceKind::Decathlon,
        }
    }
}

/// A split on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// Training split.
    Train,
    /// Validation split.
    Validation,
    /// Test split.
    Test,
}

impl From<SplitArg> for Split {
    fn from(arg: SplitArg) -> Self {
        match arg {
            SplitArg::Train => Split::Train,
            SplitArg::Validation => Split::Validation,
            SplitArg::Test => Split::Test,
        }
    }
}

/// Options shared by the data subcommands.
#[derive(Debug, Args)]
pub struct SourceOptions {
    /// Which data.
    #[arg(long, value_enum, default_value_t = SourceArg::Synthetic)]
    source: SourceArg,
    /// The Task01_BrainTumour directory (holding dataset.json); decathlon only.
    #[arg(long, value_name = "P")]
    data_path: Option<PathBuf>,
    /// Slice height and width; a multiple of 16.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Seed of phantoms, noise, split and augmentation.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Which split.
    #[arg(long, value_enum, default_value_t = SplitArg::Train)]
    split: SplitArg,
    /// Apply the training augmentation (flips, rot90, random crop offset).
    #[arg(long)]
    augment: bool,
}

impl SourceOptions {
    fn config(&self) -> DataConfig {
        DataConfig {
            source: self.source.into(),
            size: self.size,
            seed: self.seed,
            data_path: self.data_path.clone(),
            augment: self.augment,
            ..DataConfig::default()
        }
    }
}

/// `cargo xtask data preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    source: SourceOptions,
    /// Output directory; the PNG is `<out>/preview_<source>.png`.
    #[arg(long, value_name = "DIR", default_value = "artifacts/data")]
    out: PathBuf,
    /// Number of slices shown.
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Slices per grid row (each shown plain and with its mask overlay).
    #[arg(long, default_value_t = 4)]
    columns: usize,
    /// Index of the first slice; decathlon previews stride across the split to show many volumes.
    #[arg(long, default_value_t = 0)]
    start: usize,
}

/// `cargo xtask data export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    source: SourceOptions,
    /// Output prefix: writes `<prefix>_images.npy` and `<prefix>_masks.npy`.
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
    /// Number of slices (consecutive from --start).
    #[arg(long)]
    count: usize,
    /// Index of the first slice.
    #[arg(long, default_value_t = 0)]
    start: usize,
}

/// `cargo xtask data stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Sources to summarise; repeat the flag for several (default: synthetic and noise, plus
    /// decathlon when --data-path is given).
    #[arg(long, value_enum)]
    source: Vec<SourceArg>,
    /// The Task01_BrainTumour directory (holding dataset.json).
    #[arg(long, value_name = "P")]
    data_path: Option<PathBuf>,
    /// Slice height and width; a multiple of 16.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Which split.
    #[arg(long, value_enum, default_value_t = SplitArg::Train)]
    split: SplitArg,
    /// At most this many slices per source (evenly strided for decathlon).
    #[arg(long, default_value_t = 512)]
    limit: usize,
}

/// Runs a `data` subcommand.
pub fn run(command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Preview(args) => preview(args),
        DataCommand::Stats(args) => stats(args),
        DataCommand::Export(args) => export(args),
    }
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    use tflite_runtime::npy::{NpyArray, NpyData, write_npy};
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    let cfg = args.source.config();
    let split: Split = args.source.split.into();
    let source = open_source(&cfg, split)
        .with_context(|| format!("cannot open the {} source", cfg.source))?;
    let end = args.start.saturating_add(args.count);
    anyhow::ensure!(
        end <= source.len(),
        "--start {} --count {} runs past the end of the {} slices of {}",
        args.start,
        args.count,
        source.len(),
        source.describe()
    );
    let (mut images, mut masks) = (Vec::new(), Vec::new());
    let (mut height, mut width) = (0, 0);
    for index in args.start..end {
        let slice = source
            .get(index)
            .with_context(|| format!("cannot read slice {index}"))?;
        (height, width) = (slice.height, slice.width);
        images.extend_from_slice(&slice.image);
        masks.extend_from_slice(&slice.mask);
    }
    let shape = vec![args.count, height, width, 1];
    let prefix = args.out.to_string_lossy().into_owned();
    let paths = [
        PathBuf::from(format!("{prefix}_images.npy")),
        PathBuf::from(format!("{prefix}_masks.npy")),
    ];
    for (path, data) in paths.iter().zip([images, masks]) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let bytes = write_npy(&NpyArray {
            shape: shape.clone(),
            data: NpyData::F32(data),
        });
        artifact_io::write_atomic(path, &bytes)?;
    }
    println!(
        "wrote {} and {}: slices {}..{} of {} ({}x{})",
        paths[0].display(),
        paths[1].display(),
        args.start,
        end,
        source.describe(),
        height,
        width
    );
    Ok(())
}

fn preview(args: PreviewArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    let cfg = args.source.config();
    let split: Split = args.source.split.into();
    let source = open_source(&cfg, split)
        .with_context(|| format!("cannot open the {} source", cfg.source))?;
    let len = source.len();
    anyhow::ensure!(
        args.start < len,
        "--start {} is past the end of the {} slices",
        args.start,
        len
    );
    let count = args.count.min(len - args.start);
    // Synthetic and noise slices are independent draws: show consecutive ones. Decathlon slices
    // run through volumes in order: stride so the sheet spans many volumes and depths.
    let stride = match cfg.source {
        SourceKind::Decathlon => ((len - args.start) / count).max(1),
        _ => 1,
    };
    let mut slices = Vec::with_capacity(count);
    for k in 0..count {
        let index = args.start + k * stride;
        slices.push(
            source
                .get(index)
                .with_context(|| format!("cannot read slice {index}"))?,
        );
    }
    let sheet = unet_data::preview::render_grid(&slices, args.columns);
    let path = args.out.join(format!("preview_{}.png", cfg.source));
    unet_data::preview::write_png(&path, &sheet)?;
    let with_tumour = slices.iter().filter(|s| s.tumour_pixels() > 0).count();
    println!(
        "wrote {} ({}x{} px): {} slices of {} ({} with tumour), each shown plain and with its mask",
        path.display(),
        sheet.width,
        sheet.height,
        slices.len(),
        source.describe(),
        with_tumour
    );
    Ok(())
}

fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let mut sources: Vec<SourceKind> = args.source.iter().map(|&s| s.into()).collect();
    if sources.is_empty() {
        sources = vec![SourceKind::Synthetic, SourceKind::Noise];
        if args.data_path.is_some() {
            sources.push(SourceKind::Decathlon);
        }
    }
    sources.dedup();
    let split: Split = args.split.into();
    println!(
        "{:<10} {:>7} {:>9} {:>8} {:>9} {:>8} {:>10} {:>10} {:>11} {:>10}",
        "source",
        "slices",
        "mean",
        "std",
        "min",
        "max",
        "tumour px",
        "no-tumour",
        "tumour mean",
        "bg mean"
    );
    for kind in sources {
        let cfg = DataConfig {
            source: kind,
            size: args.size,
            seed: args.seed,
            data_path: args.data_path.clone(),
            slices_per_split: match kind {
                SourceKind::Decathlon => Some(args.limit),
                _ => None,
            },
            ..DataConfig::default()
        };
        let source =
            open_source(&cfg, split).with_context(|| format!("cannot open the {kind} source"))?;
        let s = unet_data::stats::source_stats(source.as_ref(), Some(args.limit))
            .with_context(|| format!("cannot read the {kind} source"))?;
        println!(
            "{:<10} {:>7} {:>9.4} {:>8.4} {:>9.3} {:>8.3} {:>9.3}% {:>9.1}% {:>11.3} {:>10.3}",
            kind.name(),
            s.slices,
            s.mean,
            s.std,
            s.min,
            s.max,
            100.0 * s.tumour_pixel_fraction,
            100.0 * s.tumour_free_slice_fraction,
            s.tumour_mean,
            s.background_mean
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview_args(size: usize, out: PathBuf) -> PreviewArgs {
        PreviewArgs {
            source: SourceOptions {
                source: SourceArg::Synthetic,
                data_path: None,
                size,
                seed: 1,
                split: SplitArg::Train,
                augment: false,
            },
            out,
            count: 4,
            columns: 2,
            start: 0,
        }
    }

    #[test]
    fn preview_writes_a_png_grid() {
        let out = std::env::temp_dir().join(format!("xtask-data-preview-{}", std::process::id()));
        preview(preview_args(32, out.clone())).unwrap();
        let bytes = std::fs::read(out.join("preview_synthetic.png")).unwrap();
        let _ = std::fs::remove_dir_all(&out);
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        // 2 columns of (plain + overlay) 32-pixel tiles, 2 rows, 4-pixel gaps.
        assert_eq!((width, height), (2 * (2 * 32 + 4) + 4, 2 * (32 + 4) + 4));
    }

    #[test]
    fn preview_rejects_a_bad_size_without_writing() {
        let out = std::env::temp_dir().join(format!("xtask-data-bad-{}", std::process::id()));
        let err = preview(preview_args(40, out.clone())).unwrap_err();
        assert!(
            format!("{err:#}").contains("size 40 is not a positive multiple of 16"),
            "{err:#}"
        );
        assert!(!out.exists(), "nothing may be written on bad input");
    }

    fn export_args(start: usize, count: usize, out: PathBuf) -> ExportArgs {
        ExportArgs {
            source: SourceOptions {
                source: SourceArg::Synthetic,
                data_path: None,
                size: 32,
                seed: 3,
                split: SplitArg::Test,
                augment: false,
            },
            out,
            count,
            start,
        }
    }

    #[test]
    fn export_writes_the_slices_and_masks_the_source_gives() {
        use tflite_runtime::npy::{NpyData, read_npy};
        let dir = std::env::temp_dir().join(format!("xtask-data-export-{}", std::process::id()));
        export(export_args(2, 3, dir.join("held_out"))).unwrap();
        let read = |name: &str| read_npy(&std::fs::read(dir.join(name)).unwrap()).unwrap();
        let (images, masks) = (read("held_out_images.npy"), read("held_out_masks.npy"));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(images.shape, vec![3, 32, 32, 1]);
        assert_eq!(masks.shape, vec![3, 32, 32, 1]);
        let source = open_source(
            &export_args(0, 1, PathBuf::new()).source.config(),
            Split::Test,
        )
        .unwrap();
        let (NpyData::F32(images), NpyData::F32(masks)) = (images.data, masks.data) else {
            panic!("float32 arrays expected");
        };
        for k in 0..3 {
            let slice = source.get(2 + k).unwrap();
            assert_eq!(&images[k * 1024..(k + 1) * 1024], slice.image.as_slice());
            assert_eq!(&masks[k * 1024..(k + 1) * 1024], slice.mask.as_slice());
        }
    }

    #[test]
    fn export_past_the_end_of_the_split_is_refused_without_writing() {
        let dir =
            std::env::temp_dir().join(format!("xtask-data-export-bad-{}", std::process::id()));
        let len = open_source(
            &export_args(0, 1, PathBuf::new()).source.config(),
            Split::Test,
        )
        .unwrap()
        .len();
        let err = export(export_args(len - 1, 2, dir.join("x"))).unwrap_err();
        assert!(format!("{err:#}").contains("runs past the end"), "{err:#}");
        let err = export(export_args(0, 0, dir.join("x"))).unwrap_err();
        assert!(format!("{err:#}").contains("--count"), "{err:#}");
        assert!(!dir.exists(), "nothing may be written on bad input");
    }
}

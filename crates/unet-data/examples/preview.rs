//! Renders a contact sheet of synthetic phantoms without the xtask (handy while tuning the
//! phantom): `cargo run --release -p unet-data --no-default-features --example preview -- OUT.png [SEED] [SIZE]`.

use std::path::PathBuf;

use unet_data::{DataConfig, Split, open_source};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "preview.png".into()));
    let seed = args.next().map(|s| s.parse()).transpose()?.unwrap_or(42);
    let size = args.next().map(|s| s.parse()).transpose()?.unwrap_or(128);
    let cfg = DataConfig {
        seed,
        size,
        ..DataConfig::default()
    };
    let source = open_source(&cfg, Split::Train)?;
    let slices = (0..16)
        .map(|i| source.get(i))
        .collect::<Result<Vec<_>, _>>()?;
    unet_data::preview::write_png(&out, &unet_data::preview::render_grid(&slices, 4))?;
    println!("wrote {}", out.display());
    Ok(())
}

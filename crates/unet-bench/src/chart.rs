//! `latency.svg`: one horizontal bar per row with a median (the bar), whiskers from p10 to p90
//! (measured rows) and Vela's estimates in their own colour, drawn with plotters' SVG backend.
//! The latency axis has round ticks (1-2-5 steps) and starts at zero; each row's label carries
//! its median; the legend sits in its own column right of the plot.

use unet_charts::plotters::coord::Shift;
use unet_charts::plotters::coord::types::RangedCoordf64;
use unet_charts::plotters::element::DynElement;
use unet_charts::plotters::prelude::*;
use unet_charts::{Axis, FONT, LABEL_SIZE, LegendEntry, PLOT_BACKGROUND, Swatch, TickedCoord};

use crate::backend::{BackendResult, RowStatus};
use crate::layers::{ColumnKind, LayerTable};

const MEASURED: RGBColor = RGBColor(0x4a, 0x78, 0xb5);
const ESTIMATED: RGBColor = RGBColor(0xe0, 0xa4, 0x3a);
const PLOT_W: u32 = 460;
const ROW_H: u32 = 30;
const LEGEND_W: u32 = 290;
const TITLE: &str = "U-Net latency per inference";
const MEASURED_LABEL: &str = "measured: median, whiskers p10–p90";
const ESTIMATED_LABEL: &str = "Vela estimate (not measured)";

/// One bar.
struct Bar<'a> {
    label: String,
    median: f64,
    whiskers: Option<(f64, f64)>,
    row: &'a BackendResult,
}

type DrawResult<T> = Result<T, DrawingAreaErrorKind<std::io::Error>>;

/// A horizontal-bar chart on `area` in the house style: `labels` on the y axis top to bottom
/// (row `i` spans `i..i + 1`, labelled at its middle), `x` the value axis with `x_desc`.
pub(crate) type BarChart<'a, 'b, R> = ChartContext<
    'a,
    SVGBackend<'b>,
    unet_charts::plotters::coord::cartesian::Cartesian2d<
        TickedCoord<R>,
        TickedCoord<RangedCoordf64>,
    >,
>;

/// Builds a [`BarChart`] and draws its background and mesh.
pub(crate) fn bar_chart<'a, 'b, R: Ranged<ValueType = f64>>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    label_w: u32,
    x: TickedCoord<R>,
    labels: impl IntoIterator<Item = String>,
    x_desc: &str,
) -> DrawResult<BarChart<'a, 'b, R>> {
    let labels: Vec<String> = labels.into_iter().collect();
    let n = labels.len().max(1) as f64;
    let rows = labels
        .into_iter()
        .enumerate()
        .map(|(i, l)| (i as f64 + 0.5, l));
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(label_w)
        .build_cartesian_2d(x, TickedCoord::<RangedCoordf64>::new(n..0.0, rows))?;
    chart.plotting_area().fill(&PLOT_BACKGROUND)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(x_desc)
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE))
        .bold_line_style(RGBColor(0xe0, 0xe0, 0xe0))
        .draw()?;
    Ok(chart)
}

fn bars(rows: &[BackendResult]) -> Vec<Bar<'_>> {
    rows.iter()
        .filter_map(|r| {
            let stats = r.stats.as_ref()?;
            let median = stats.central();
            if !median.is_finite() {
                return None;
            }
            let estimate = r.status == RowStatus::Estimated;
            let whiskers = match (stats.p10, stats.p90) {
                (Some(lo), Some(hi)) if !estimate && lo.is_finite() && hi.is_finite() => {
                    Some((lo, hi))
                }
                _ => None,
            };
            let label = format!(
                "{} ({median:.2} ms{})",
                r.backend,
                if estimate { ", estimate" } else { "" }
            );
            Some(Bar {
                label,
                median,
                whiskers,
                row: r,
            })
        })
        .collect()
}

fn size(bars: &[Bar<'_>]) -> (u32, u32, u32) {
    let longest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let label_w = unet_charts::text_width(longest, LABEL_SIZE) + 16;
    let width = label_w + PLOT_W + 30 + LEGEND_W;
    let height = 90 + ROW_H * bars.len().max(1) as u32;
    (width, height, label_w)
}

fn draw(rows: &[BackendResult], svg: &mut String) -> DrawResult<()> {
    let bars = bars(rows);
    let (width, height, label_w) = size(&bars);
    let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot_area, legend) = root.split_horizontally(width - LEGEND_W);
    let max = bars
        .iter()
        .map(|b| b.whiskers.map_or(b.median, |(_, hi)| hi.max(b.median)))
        .fold(0.0_f64, f64::max);
    let x = Axis::linear(0.0, if max > 0.0 { max } else { 1.0 }, 5, 0.0);
    let mut chart = bar_chart(
        &plot_area,
        TITLE,
        label_w,
        x.linear_coord(),
        bars.iter().map(|b| b.label.clone()),
        "milliseconds",
    )?;
    for (i, bar) in bars.iter().enumerate() {
        let y = i as f64;
        let colour = if bar.row.status == RowStatus::Estimated {
            ESTIMATED
        } else {
            MEASURED
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y + 0.2), (bar.median, y + 0.8)],
            colour.filled(),
        )))?;
        if let Some((lo, hi)) = bar.whiskers {
            let style = BLACK.stroke_width(1);
            let c = y + 0.5;
            for line in [
                vec![(lo, c), (hi, c)],
                vec![(lo, c - 0.2), (lo, c + 0.2)],
                vec![(hi, c - 0.2), (hi, c + 0.2)],
            ] {
                chart.draw_series(std::iter::once(PathElement::new(line, style)))?;
            }
        }
    }
    if bars.is_empty() {
        chart.draw_series(std::iter::once(Text::new(
            "no measured or estimated rows",
            (x.lo, 0.5),
            (FONT, LABEL_SIZE),
        )))?;
    }
    draw_legend(&legend)?;
    root.present()?;
    Ok(())
}

fn draw_legend(area: &DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult<()> {
    let area = area.margin(36, 0, 0, 0);
    unet_charts::draw_legend(
        &area,
        &[
            LegendEntry {
                label: MEASURED_LABEL,
                swatch: Swatch::Fill(MEASURED),
            },
            LegendEntry {
                label: ESTIMATED_LABEL,
                swatch: Swatch::Fill(ESTIMATED),
            },
        ],
    )?;
    Ok(())
}

/// The latency chart of `rows` as a standalone SVG document (rows without statistics are left
/// out; they are in the table with their reason).
pub(crate) fn latency_svg(rows: &[BackendResult]) -> String {
    let mut svg = String::new();
    match draw(rows, &mut svg) {
        Ok(()) => svg,
        Err(e) => {
            let (width, height, _) = size(&bars(rows));
            unet_charts::message_svg(
                width,
                height,
                &format!("the latency chart could not be drawn: {e}"),
            )
        }
    }
}

/// Colours of the per-layer chart's columns: measured ones in blues, estimates in oranges.
const MEASURED_SHADES: [RGBColor; 4] = [
    RGBColor(0x4a, 0x78, 0xb5),
    RGBColor(0x2c, 0xa0, 0x8c),
    RGBColor(0x7b, 0x5e, 0xa7),
    RGBColor(0x1b, 0x3a, 0x66),
];
const ESTIMATED_SHADES: [RGBColor; 4] = [
    RGBColor(0xe0, 0xa4, 0x3a),
    RGBColor(0xc8, 0x5a, 0x2c),
    RGBColor(0xe8, 0xc8, 0x6a),
    RGBColor(0x9c, 0x4a, 0x12),
];
const LAYER_BAR_H: u32 = 7;

/// The colour of column `j` of the per-layer chart.
pub(crate) fn layer_colour(table: &LayerTable, j: usize) -> RGBColor {
    let kind = table.columns[j].kind;
    let rank = table.columns[..j].iter().filter(|c| c.kind == kind).count();
    match kind {
        ColumnKind::Measured => MEASURED_SHADES[rank % MEASURED_SHADES.len()],
        ColumnKind::Estimated => ESTIMATED_SHADES[rank % ESTIMATED_SHADES.len()],
    }
}

fn layer_label(row: &crate::layers::LayerRow) -> String {
    format!(
        "#{} {} ({})",
        row.layer.index, row.layer.output, row.layer.op
    )
}

fn layers_size(table: &LayerTable) -> (u32, u32, u32, u32) {
    let longest = table
        .rows
        .iter()
        .map(|r| layer_label(r).chars().count())
        .max()
        .unwrap_or(0);
    let label_w = unet_charts::text_width(longest, LABEL_SIZE) + 16;
    let legend_longest = table
        .columns
        .iter()
        .map(|c| c.backend.chars().count() + 12)
        .max()
        .unwrap_or(0);
    let legend_w = unet_charts::text_width(legend_longest, LABEL_SIZE) + 70;
    let band = LAYER_BAR_H * table.columns.len().max(1) as u32 + 6;
    let width = label_w + PLOT_W + 30 + legend_w;
    let height = 90 + band * table.rows.len().max(1) as u32;
    (width, height, label_w, legend_w)
}

fn draw_layers(table: &LayerTable, svg: &mut String) -> DrawResult<()> {
    let (width, height, label_w, legend_w) = layers_size(table);
    let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot_area, legend) = root.split_horizontally(width - legend_w);
    let max = table
        .rows
        .iter()
        .flat_map(|r| r.cells.iter().flatten().map(|c| c.ms))
        .fold(0.0_f64, f64::max);
    let x = Axis::linear(0.0, if max > 0.0 { max } else { 1.0 }, 5, 0.0);
    let mut chart = bar_chart(
        &plot_area,
        "Time per layer: CPU measured, NPU estimated",
        label_w,
        x.linear_coord(),
        table.rows.iter().map(layer_label),
        "milliseconds per inference",
    )?;
    let k = table.columns.len().max(1) as f64;
    for (i, row) in table.rows.iter().enumerate() {
        for (j, cell) in row.cells.iter().enumerate() {
            let Some(cell) = cell else { continue };
            let y0 = i as f64 + 0.1 + 0.8 * j as f64 / k;
            let y1 = y0 + 0.8 / k;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y0), (cell.ms, y1)],
                layer_colour(table, j).filled(),
            )))?;
        }
    }
    let labels: Vec<String> = table
        .columns
        .iter()
        .map(|c| match c.kind {
            ColumnKind::Measured => format!("{} (measured)", c.backend),
            ColumnKind::Estimated => format!("{} (Vela estimate)", c.backend),
        })
        .collect();
    let entries: Vec<LegendEntry<'_>> = labels
        .iter()
        .enumerate()
        .map(|(j, label)| LegendEntry {
            label,
            swatch: Swatch::Fill(layer_colour(table, j)),
        })
        .collect();
    unet_charts::draw_legend(&legend.margin(36, 0, 0, 0), &entries)?;
    root.present()?;
    Ok(())
}

/// `layers.svg`: one band per operator of the model, one bar per column (measured CPU
/// backends and Vela estimates), a round millisecond axis from zero and the legend beside it.
pub(crate) fn layers_svg(table: &LayerTable) -> String {
    let mut svg = String::new();
    match draw_layers(table, &mut svg) {
        Ok(()) => svg,
        Err(e) => {
            let (width, height, _, _) = layers_size(table);
            unet_charts::message_svg(
                width,
                height,
                &format!("the per-layer chart could not be drawn: {e}"),
            )
        }
    }
}

const MODE_COLOURS: [RGBColor; 8] = [
    RGBColor(0x4a, 0x78, 0xb5),
    RGBColor(0xe0, 0xa4, 0x3a),
    RGBColor(0x2c, 0xa0, 0x8c),
    RGBColor(0xc8, 0x5a, 0x2c),
    RGBColor(0x7b, 0x5e, 0xa7),
    RGBColor(0x8c, 0x8c, 0x8c),
    RGBColor(0x1b, 0x3a, 0x66),
    RGBColor(0x9c, 0x4a, 0x12),
];
/// Colours of the measured CPU reference lines of the sweep chart.
const CPU_LINES: [RGBColor; 4] = [
    RGBColor(0x22, 0x22, 0x22),
    RGBColor(0xb0, 0x20, 0x20),
    RGBColor(0x20, 0x80, 0x30),
    RGBColor(0x20, 0x40, 0xb0),
];
const SWEEP_W: u32 = 620;
const SWEEP_PANEL_H: u32 = 300;

fn draw_sweep(sweep: &crate::sweep::VelaSweep, svg: &mut String, legend_w: u32) -> DrawResult<()> {
    let width = SWEEP_W + legend_w;
    let height = 2 * SWEEP_PANEL_H + 40;
    let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plots, legend) = root.split_horizontally(SWEEP_W);
    let (top, bottom) = plots.split_vertically(SWEEP_PANEL_H + 20);
    let ok: Vec<&crate::sweep::SweepPoint> = sweep
        .points
        .iter()
        .filter(|p| p.inference_ms.is_some_and(|v| v > 0.0) && p.macs_per_cycle > 0)
        .collect();
    let modes: Vec<&str> = {
        let mut m: Vec<&str> = ok.iter().map(|p| p.memory_mode.as_str()).collect();
        m.sort_unstable();
        m.dedup();
        m
    };
    let colour = |mode: &str| {
        let k = modes.iter().position(|m| *m == mode).unwrap_or(0);
        MODE_COLOURS[k % MODE_COLOURS.len()]
    };
    let mut macs: Vec<u32> = sweep
        .points
        .iter()
        .map(|p| p.macs_per_cycle)
        .filter(|&m| m > 0)
        .collect();
    macs.sort_unstable();
    macs.dedup();
    let (xlo, xhi) = (
        f64::from(*macs.first().unwrap_or(&32)) / 1.4,
        f64::from(*macs.last().unwrap_or(&2048)) * 1.4,
    );
    let x_ticks: Vec<(f64, String)> = macs
        .iter()
        .map(|&m| (f64::from(m), m.to_string()))
        .collect();
    let ms = ok
        .iter()
        .filter_map(|p| p.inference_ms)
        .chain(sweep.cpu_lines.iter().map(|(_, v)| *v));
    let (lo, hi) = ms.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let y = Axis::log(lo, hi);
    let mut chart = ChartBuilder::on(&top)
        .caption("Vela estimate per Ethos-U configuration", (FONT, 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(
            TickedCoord::<LogCoord<f64>>::new((xlo..xhi).log_scale(), x_ticks.clone()),
            y.log_coord(),
        )?;
    chart.plotting_area().fill(&PLOT_BACKGROUND)?;
    chart
        .configure_mesh()
        .x_desc("MACs per cycle")
        .y_desc("ms per inference (estimate)")
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE))
        .bold_line_style(RGBColor(0xe0, 0xe0, 0xe0))
        .draw()?;
    for (k, (_, v)) in sweep.cpu_lines.iter().enumerate() {
        chart.draw_series(DashedLineSeries::new(
            vec![(xlo, *v), (xhi, *v)],
            6,
            4,
            CPU_LINES[k % CPU_LINES.len()].stroke_width(1),
        ))?;
    }
    let marker =
        |p: &crate::sweep::SweepPoint, y: f64| -> DynElement<'static, SVGBackend<'_>, (f64, f64)> {
            // The families share MACs per cycle (U55-256, U65-256, U85-256): nudge them apart.
            let nudge = match p.accelerator.get(..9) {
                Some("ethos-u55") => 0.93,
                Some("ethos-u85") => 1.07,
                _ => 1.0,
            };
            let at = (f64::from(p.macs_per_cycle) * nudge, y);
            let c = colour(&p.memory_mode);
            if p.optimise == crate::sweep::OPTIMISE[0] {
                Circle::new(at, 4, c.filled()).into_dyn()
            } else {
                TriangleMarker::new(at, 5, c.stroke_width(2)).into_dyn()
            }
        };
    chart.draw_series(ok.iter().map(|p| marker(p, p.inference_ms.unwrap_or(1.0))))?;

    let sram: Vec<f64> = ok.iter().filter_map(|p| p.sram_kib).collect();
    let s_hi = sram.iter().copied().fold(0.0_f64, f64::max);
    let ys = Axis::linear(0.0, if s_hi > 0.0 { s_hi } else { 1.0 }, 5, 0.0);
    let mut chart = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(
            TickedCoord::<LogCoord<f64>>::new((xlo..xhi).log_scale(), x_ticks),
            ys.linear_coord(),
        )?;
    chart.plotting_area().fill(&PLOT_BACKGROUND)?;
    chart
        .configure_mesh()
        .x_desc("MACs per cycle")
        .y_desc("SRAM used, KiB (estimate)")
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE))
        .bold_line_style(RGBColor(0xe0, 0xe0, 0xe0))
        .draw()?;
    chart.draw_series(ok.iter().filter_map(|p| Some(marker(p, p.sram_kib?))))?;

    let mut labels: Vec<(String, Swatch)> = modes
        .iter()
        .map(|m| {
            (
                format!("{m} (● Performance, △ Size)"),
                Swatch::Fill(colour(m)),
            )
        })
        .collect();
    for (k, (name, v)) in sweep.cpu_lines.iter().enumerate() {
        labels.push((
            format!("{name}: {v:.2} ms measured"),
            Swatch::Line {
                colour: CPU_LINES[k % CPU_LINES.len()],
                dashed: true,
            },
        ));
    }
    let entries: Vec<LegendEntry<'_>> = labels
        .iter()
        .map(|(label, swatch)| LegendEntry {
            label,
            swatch: *swatch,
        })
        .collect();
    unet_charts::draw_legend(&legend.margin(36, 0, 0, 0), &entries)?;
    root.present()?;
    Ok(())
}

fn sweep_legend_w(sweep: &crate::sweep::VelaSweep) -> u32 {
    let longest = sweep
        .points
        .iter()
        .map(|p| p.memory_mode.chars().count() + 26)
        .chain(sweep.cpu_lines.iter().map(|(n, _)| n.chars().count() + 22))
        .max()
        .unwrap_or(20);
    unet_charts::text_width(longest, LABEL_SIZE) + 70
}

/// `vela_sweep.svg`: estimated latency (log axis) and SRAM against MACs per cycle, a colour
/// per memory mode, a marker per `--optimise`, the measured CPU rows as dashed lines.
pub(crate) fn sweep_svg(sweep: &crate::sweep::VelaSweep) -> String {
    let mut svg = String::new();
    let legend_w = sweep_legend_w(sweep);
    match draw_sweep(sweep, &mut svg, legend_w) {
        Ok(()) => svg,
        Err(e) => unet_charts::message_svg(
            SWEEP_W + legend_w,
            2 * SWEEP_PANEL_H + 40,
            &format!("the Vela sweep chart could not be drawn: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Stats;
    use unet_charts::LEGEND_BACKGROUND;
    use unet_charts::svg::{rects_filled, texts};

    fn row(name: &str, status: RowStatus, samples: &[f64]) -> BackendResult {
        let mut r = BackendResult::new(name, "cpu", status);
        r.stats = Stats::from_samples(samples);
        r
    }

    fn rows() -> Vec<BackendResult> {
        vec![
            row(
                "rust-int8",
                RowStatus::Measured,
                &[10.1, 10.9, 11.3, 12.0, 16.4],
            ),
            row(
                "litert:cpu",
                RowStatus::Measured,
                &[13.2, 13.9, 14.1, 14.8, 15.0],
            ),
            row("vela:ethos-u55-256", RowStatus::Estimated, &[5.47]),
            BackendResult::skipped("litert:gpu", "gpu", "no GPU adapter"),
        ]
    }

    #[test]
    fn latency_ticks_are_round_and_start_at_zero() {
        let svg = latency_svg(&rows());
        let plots = rects_filled(&svg, PLOT_BACKGROUND);
        assert_eq!(plots.len(), 1, "{plots:?}");
        let plot = &plots[0];
        let texts = texts(&svg);
        let mut ticks: Vec<(f64, f64)> = texts
            .iter()
            .filter(|t| t.y > plot.bottom() && t.x >= plot.x - 1.0 && t.x <= plot.right() + 1.0)
            .filter_map(|t| Some((t.content.parse::<f64>().ok()?, t.x)))
            .collect();
        ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(ticks.len() >= 3, "{ticks:?}");
        assert_eq!(ticks[0].0, 0.0, "the latency axis starts at 0: {ticks:?}");
        let step = ticks[1].0 - ticks[0].0;
        let p = 10f64.powf(step.log10().floor());
        assert!(
            [1.0, 2.0, 5.0].iter().any(|m| (step / p - m).abs() < 1e-9),
            "step {step} is not 1, 2 or 5 × 10^k: {ticks:?}"
        );
        for w in ticks.windows(2) {
            assert!(
                (w[1].0 - w[0].0 - step).abs() < 1e-9,
                "uneven ticks {ticks:?}"
            );
        }
        // The axis reaches the slowest p90.
        let slowest = rows()
            .iter()
            .filter_map(|r| r.stats.as_ref()?.p90)
            .fold(0.0, f64::max);
        assert!(slowest > 14.0, "{slowest}");
        assert!(ticks.last().is_some_and(|t| t.0 >= slowest), "{ticks:?}");
        // Rows with statistics are labelled with their median; the skipped one is not drawn.
        for name in ["rust-int8 (", "litert:cpu (", "vela:ethos-u55-256 ("] {
            assert!(texts.iter().any(|t| t.content.starts_with(name)), "{name}");
        }
        assert!(texts.iter().any(|t| t.content.contains("estimate")));
        assert!(!texts.iter().any(|t| t.content.starts_with("litert:gpu")));
    }

    #[test]
    fn legend_is_beside_the_plot() {
        for rows in [rows(), rows()[..1].to_vec(), Vec::new()] {
            let svg = latency_svg(&rows);
            let plots = rects_filled(&svg, PLOT_BACKGROUND);
            let legends = rects_filled(&svg, LEGEND_BACKGROUND);
            assert_eq!((plots.len(), legends.len()), (1, 1), "{svg}");
            assert!(
                !legends[0].overlaps(&plots[0]),
                "{legends:?} over {plots:?}"
            );
            let texts = texts(&svg);
            for label in [MEASURED_LABEL, ESTIMATED_LABEL] {
                let t = texts
                    .iter()
                    .find(|t| t.content == label)
                    .unwrap_or_else(|| panic!("no legend text {label}"));
                assert!(legends[0].contains(t.x, t.y), "{label} outside the legend");
                assert!(!plots[0].contains(t.x, t.y), "{label} on the plot");
            }
        }
    }

    fn layer_table() -> LayerTable {
        use crate::layers::{LayerProfile, LayerTime, ModelLayer};
        let layers: Vec<ModelLayer> = ["conv_a", "pool_b", "conv_c"]
            .iter()
            .enumerate()
            .map(|(index, name)| ModelLayer {
                index,
                op: if index == 1 { "MAX_POOL_2D" } else { "CONV_2D" }.into(),
                output: (*name).into(),
                output_shape: vec![1, 8, 8, 4],
                macs: if index == 1 { 0 } else { 1000 },
                in_channels: None,
                inputs: Vec::new(),
            })
            .collect();
        let profile = |ms: [f64; 3]| LayerProfile::Measured {
            source: "test".into(),
            runs: 1,
            layers: layers
                .iter()
                .zip(ms)
                .map(|(l, ms)| LayerTime {
                    index: Some(l.index),
                    output: l.output.clone(),
                    op: l.op.clone(),
                    ms,
                })
                .collect(),
        };
        let mut a = row("rust-int8", RowStatus::Measured, &[1.0]);
        a.layer_profile = Some(profile([0.4, 0.05, 1.3]));
        let mut b = row("litert:cpu", RowStatus::Measured, &[1.0]);
        b.layer_profile = Some(profile([0.5, 0.02, 1.1]));
        LayerTable::build(&layers, &[a, b]).expect("table")
    }

    #[test]
    fn layer_chart_has_a_bar_per_cell_round_ticks_and_the_legend_beside_it() {
        let table = layer_table();
        let svg = layers_svg(&table);
        let plots = rects_filled(&svg, PLOT_BACKGROUND);
        let legends = rects_filled(&svg, LEGEND_BACKGROUND);
        assert_eq!((plots.len(), legends.len()), (1, 1), "{svg}");
        assert!(!legends[0].overlaps(&plots[0]));
        // One bar per (layer, column), in the column's colour.
        for j in 0..table.columns.len() {
            let bars = rects_filled(&svg, layer_colour(&table, j));
            let bars: Vec<_> = bars
                .iter()
                .filter(|r| plots[0].contains(r.x + 0.5, r.y + 0.5))
                .collect();
            assert_eq!(bars.len(), table.rows.len(), "column {j}");
        }
        let texts = texts(&svg);
        let ticks: Vec<f64> = texts
            .iter()
            .filter(|t| t.y > plots[0].bottom())
            .filter_map(|t| t.content.parse::<f64>().ok())
            .collect();
        assert!(ticks.len() >= 3 && ticks[0] == 0.0, "{ticks:?}");
        let step = ticks[1] - ticks[0];
        assert!(unet_charts::is_125(step), "{ticks:?}");
        assert!(
            ticks.windows(2).all(|w| (w[1] - w[0] - step).abs() < 1e-9),
            "{ticks:?}"
        );
        for label in [
            "rust-int8 (measured)",
            "litert:cpu (measured)",
            "#2 conv_c (CONV_2D)",
        ] {
            assert!(texts.iter().any(|t| t.content == label), "{label}");
        }
    }
}

//! `curves.svg`: loss (left panel, logarithmic axis) and Dice (right panel) per epoch, train
//! and validation, drawn with plotters' SVG backend. Ticks are round (1-2-5 steps, decades on
//! the loss axis) and the legend sits in its own column right of both panels.

use unet_charts::plotters::coord::Shift;
use unet_charts::plotters::prelude::*;
use unet_charts::{Axis, FONT, LABEL_SIZE, LegendEntry, PLOT_BACKGROUND, Swatch};

use crate::training::History;

const PANEL_W: u32 = 380;
const HEIGHT: u32 = 320;
const LEGEND_W: u32 = 150;
const TRAIN: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const VALIDATION: RGBColor = RGBColor(0xd6, 0x27, 0x28);

/// One line of a panel.
struct Series<'a> {
    colour: RGBColor,
    dashed: bool,
    /// Per epoch (epoch i + 1 at index i); non-finite values are left out.
    values: &'a [f64],
}

type DrawResult<T> = Result<T, DrawingAreaErrorKind<std::io::Error>>;

/// Draws one panel: title, axes with the given ticks, the series.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    y_desc: &str,
    y: Axis,
    log_y: bool,
    epochs: usize,
    series: &[Series<'_>],
) -> DrawResult<()> {
    let x = Axis::linear(1.0, epochs.max(1) as f64, 6, 1.0);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, (FONT, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(56);
    let points = |s: &Series<'_>| -> Vec<(f64, f64)> {
        s.values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite() && (!log_y || **v > 0.0))
            .map(|(i, &v)| ((i + 1) as f64, v))
            .collect()
    };
    // The two coordinate types differ, so each branch draws on its own chart.
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart.plotting_area().fill(&PLOT_BACKGROUND)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(y_desc)
                .label_style((FONT, LABEL_SIZE))
                .axis_desc_style((FONT, LABEL_SIZE))
                .bold_line_style(RGBColor(0xe0, 0xe0, 0xe0))
                .draw()?;
            for s in series {
                let pts = points(s);
                let style = s.colour.stroke_width(2);
                if s.dashed {
                    chart.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))?;
                } else {
                    chart.draw_series(LineSeries::new(pts.clone(), style))?;
                }
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, s.colour.filled())))?;
            }
        }};
    }
    if log_y {
        draw!(builder.build_cartesian_2d(x.linear_coord(), y.log_coord())?);
    } else {
        draw!(builder.build_cartesian_2d(x.linear_coord(), y.linear_coord())?);
    }
    Ok(())
}

/// The smallest and largest positive finite value of the series (for the log axis).
fn positive_range(series: &[Series<'_>]) -> (f64, f64) {
    series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

fn draw(history: &History, svg: &mut String) -> DrawResult<()> {
    let epochs = &history.epochs;
    let column = |f: fn(&crate::EpochRecord) -> f64| epochs.iter().map(f).collect::<Vec<_>>();
    let (train_loss, val_loss) = (column(|e| e.train_loss), column(|e| e.val_loss));
    let (train_dice, val_dice) = (column(|e| e.train_dice), column(|e| e.val_dice));
    let line = |colour, dashed, values| Series {
        colour,
        dashed,
        values,
    };
    let loss = [
        line(TRAIN, false, &train_loss[..]),
        line(VALIDATION, true, &val_loss[..]),
    ];
    let dice = [
        line(TRAIN, false, &train_dice[..]),
        line(VALIDATION, true, &val_dice[..]),
    ];

    let root = SVGBackend::with_string(svg, (2 * PANEL_W + LEGEND_W, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (panels, legend) = root.split_horizontally(2 * PANEL_W);
    let (left, right) = panels.split_horizontally(PANEL_W);
    let (lo, hi) = positive_range(&loss);
    panel(
        &left,
        "loss (log scale)",
        "loss",
        Axis::log(lo, hi),
        true,
        epochs.len(),
        &loss,
    )?;
    panel(
        &right,
        "Dice (rounded predictions)",
        "Dice",
        Axis::linear(0.0, 1.0, 5, 0.0),
        false,
        epochs.len(),
        &dice,
    )?;
    let legend = legend.margin(36, 0, 0, 0);
    unet_charts::draw_legend(
        &legend,
        &[
            LegendEntry {
                label: "train",
                swatch: Swatch::Line {
                    colour: TRAIN,
                    dashed: false,
                },
            },
            LegendEntry {
                label: "validation",
                swatch: Swatch::Line {
                    colour: VALIDATION,
                    dashed: true,
                },
            },
        ],
    )?;
    root.present()?;
    Ok(())
}

/// Renders the history as a standalone SVG document.
pub(crate) fn render(history: &History) -> String {
    let mut svg = String::new();
    match draw(history, &mut svg) {
        Ok(()) => svg,
        Err(e) => unet_charts::message_svg(
            2 * PANEL_W + LEGEND_W,
            HEIGHT,
            &format!("the training curves could not be drawn: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EpochRecord;
    use unet_charts::svg::{Rect, Text, rects_filled, texts};
    use unet_charts::{LEGEND_BACKGROUND, PLOT_BACKGROUND, is_125};

    fn history(n: usize) -> History {
        History {
            epochs: (1..=n)
                .map(|epoch| {
                    let t = epoch as f64;
                    EpochRecord {
                        epoch,
                        steps: 10,
                        train_loss: 1.3 * (-0.45 * t).exp(),
                        train_dice: 1.0 - 0.8 * (-0.3 * t).exp(),
                        train_soft_dice: 0.5,
                        val_loss: 1.1 * (-0.35 * t).exp() + 0.01,
                        val_dice: 1.0 - 0.85 * (-0.25 * t).exp(),
                        val_soft_dice: 0.5,
                        seconds_per_step: 0.5,
                        train_seconds: 5.0 * t,
                        best: true,
                    }
                })
                .collect(),
            stop_reason: "test".into(),
        }
    }

    /// Tick labels (texts that are numbers) left of `plot`, within its height.
    fn y_ticks(texts: &[Text], plot: &Rect, left_of: f64) -> Vec<(f64, f64)> {
        let mut ticks: Vec<(f64, f64)> = texts
            .iter()
            .filter(|t| t.x < plot.x && t.x > left_of && t.y >= plot.y - 1.0)
            .filter(|t| t.y <= plot.bottom() + 1.0)
            .filter_map(|t| Some((t.content.parse::<f64>().ok()?, t.y)))
            .collect();
        ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
        ticks
    }

    /// x tick labels under `plot`.
    fn x_ticks(texts: &[Text], plot: &Rect) -> Vec<f64> {
        texts
            .iter()
            .filter(|t| t.x >= plot.x - 1.0 && t.x <= plot.right() + 1.0 && t.y > plot.bottom())
            .filter_map(|t| t.content.parse::<f64>().ok())
            .collect()
    }

    #[test]
    fn loss_axis_is_logarithmic_with_125_ticks_and_dice_ticks_are_round() {
        let svg = render(&history(12));
        let plots = rects_filled(&svg, PLOT_BACKGROUND);
        assert_eq!(plots.len(), 2, "two plotting areas: {plots:?}");
        let (loss, dice) = if plots[0].x < plots[1].x {
            (&plots[0], &plots[1])
        } else {
            (&plots[1], &plots[0])
        };
        let texts = texts(&svg);

        let ticks = y_ticks(&texts, loss, f64::NEG_INFINITY);
        assert!(ticks.len() >= 3, "loss ticks: {ticks:?}");
        for &(v, _) in &ticks {
            assert!(
                v > 0.0 && is_125(v),
                "loss tick {v} is not 1, 2 or 5 × 10^k"
            );
        }
        // Logarithmic: the pixel distance between two ticks is proportional to the log of
        // their ratio (a linear axis would put 0.1, 0.2, 0.5 and 1 at 1:3:5 spacing instead).
        let (v0, y0) = ticks[0];
        let (vn, yn) = ticks[ticks.len() - 1];
        let px_per_decade = (y0 - yn) / (vn / v0).log10();
        assert!(px_per_decade > 20.0, "{ticks:?}");
        for &(v, y) in &ticks {
            let expected = y0 - px_per_decade * (v / v0).log10();
            assert!(
                (y - expected).abs() <= 2.0,
                "tick {v} at y={y}, a log axis puts it at {expected:.1}: {ticks:?}"
            );
        }

        let ticks = y_ticks(&texts, dice, loss.right());
        let values: Vec<f64> = ticks.iter().map(|t| t.0).collect();
        assert_eq!(values, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        for plot in [loss, dice] {
            let xs = x_ticks(&texts, plot);
            assert!(xs.len() >= 3, "{xs:?}");
            let step = xs[1] - xs[0];
            assert!(is_125(step), "epoch tick step {step}");
            assert!(
                xs.iter()
                    .all(|&v| v.fract() == 0.0 && (0.0..12.0 + step).contains(&v)),
                "epoch ticks must be whole epochs around 1..=12: {xs:?}"
            );
        }
    }

    #[test]
    fn legend_is_beside_the_plots_not_over_them() {
        for n in [1, 2, 12, 60] {
            let svg = render(&history(n));
            assert!(
                svg.starts_with("<svg") && svg.contains("polyline"),
                "{n}: {svg}"
            );
            let plots = rects_filled(&svg, PLOT_BACKGROUND);
            let legends = rects_filled(&svg, LEGEND_BACKGROUND);
            assert_eq!((plots.len(), legends.len()), (2, 1), "{n} epochs");
            for plot in &plots {
                assert!(
                    !legends[0].overlaps(plot),
                    "{n}: {:?} over {plot:?}",
                    legends[0]
                );
            }
            let texts = texts(&svg);
            for label in ["train", "validation"] {
                let t = texts
                    .iter()
                    .find(|t| t.content == label)
                    .unwrap_or_else(|| panic!("no legend text {label}"));
                assert!(
                    legends[0].contains(t.x, t.y),
                    "{label} outside the legend box"
                );
            }
        }
    }

    #[test]
    fn non_finite_values_are_left_out() {
        let mut h = history(5);
        h.epochs[2].val_loss = f64::NAN;
        h.epochs[3].train_dice = f64::INFINITY;
        let svg = render(&h);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert_eq!(rects_filled(&svg, PLOT_BACKGROUND).len(), 2);
    }
}

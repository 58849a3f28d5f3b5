//! `curves.svg`: loss (left panel) and Dice (right panel) per epoch, train and validation.

use std::fmt::Write;

use crate::training::History;

const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 240.0;
const MARGIN: f64 = 48.0;

fn polyline(points: &[(f64, f64)], colour: &str, dashed: bool, svg: &mut String) {
    if points.is_empty() {
        return;
    }
    let coords: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let dash = if dashed {
        " stroke-dasharray=\"6 3\""
    } else {
        ""
    };
    let _ = writeln!(
        svg,
        "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
        coords.join(" ")
    );
    for (x, y) in points {
        let _ = writeln!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{colour}\"/>"
        );
    }
}

fn panel(
    svg: &mut String,
    x0: f64,
    title: &str,
    series: &[(&str, &str, bool, Vec<f64>)],
    fixed_range: Option<(f64, f64)>,
) {
    let n = series.iter().map(|s| s.3.len()).max().unwrap_or(0);
    let values = series
        .iter()
        .flat_map(|s| s.3.iter().copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = fixed_range.unwrap_or_else(|| {
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
    });
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let top = MARGIN;
    let _ = writeln!(
        svg,
        "<rect x=\"{x0}\" y=\"{top}\" width=\"{PANEL_W}\" height=\"{PANEL_H}\" fill=\"none\" stroke=\"#888\"/>"
    );
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"14\">{title}</text>",
        x0 + PANEL_W / 2.0,
        top - 10.0
    );
    for i in 0..=4 {
        let v = lo + (hi - lo) * i as f64 / 4.0;
        let y = top + PANEL_H - PANEL_H * i as f64 / 4.0;
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">{v:.3}</text>",
            x0 - 4.0,
            y + 3.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">epoch (1..{n})</text>",
        x0 + PANEL_W / 2.0,
        top + PANEL_H + 20.0
    );
    let x_of = |i: usize| {
        if n <= 1 {
            x0 + PANEL_W / 2.0
        } else {
            x0 + PANEL_W * i as f64 / (n - 1) as f64
        }
    };
    let y_of = |v: f64| top + PANEL_H - PANEL_H * ((v.clamp(lo, hi) - lo) / (hi - lo));
    for (k, (label, colour, dashed, values)) in series.iter().enumerate() {
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| (x_of(i), y_of(v)))
            .collect();
        polyline(&points, colour, *dashed, svg);
        let ly = top + 14.0 + 14.0 * k as f64;
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{ly:.1}\" font-size=\"11\" fill=\"{colour}\">{label}</text>",
            x0 + PANEL_W - 90.0
        );
    }
}

/// Renders the history as a standalone SVG document.
pub(crate) fn render(history: &History) -> String {
    let epochs = &history.epochs;
    let pick = |f: fn(&crate::EpochRecord) -> f64| epochs.iter().map(f).collect::<Vec<_>>();
    let width = 2.0 * PANEL_W + 3.0 * MARGIN + 20.0;
    let height = PANEL_H + 2.0 * MARGIN + 20.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\">"
    );
    let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    panel(
        &mut svg,
        MARGIN + 10.0,
        "loss",
        &[
            ("train", "#1f77b4", false, pick(|e| e.train_loss)),
            ("validation", "#d62728", true, pick(|e| e.val_loss)),
        ],
        None,
    );
    panel(
        &mut svg,
        2.0 * MARGIN + PANEL_W + 10.0,
        "Dice (rounded)",
        &[
            ("train", "#1f77b4", false, pick(|e| e.train_dice)),
            ("validation", "#d62728", true, pick(|e| e.val_dice)),
        ],
        Some((0.0, 1.0)),
    );
    svg.push_str("</svg>\n");
    svg
}

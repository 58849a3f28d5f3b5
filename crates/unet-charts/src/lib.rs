//! Shared pieces of the project's SVG charts, drawn with `plotters`' SVG backend:
//! unet-train's `curves.svg` and unet-bench's `latency.svg`.
//!
//! - [`Axis`]: axis ranges with round tick values, linear ([`Axis::linear`], steps of 1, 2 or
//!   5 × 10ᵏ) or logarithmic ([`Axis::log`], ticks at 1, 2, 5 × 10ᵏ or at powers of ten).
//! - [`draw_legend`]: a framed legend in its own drawing area, so it never covers the data.
//! - [`PLOT_BACKGROUND`] / [`LEGEND_BACKGROUND`]: the fills that mark the plotting areas and
//!   the legend box in the SVG; [`svg`] reads them (and the text) back for tests.
//!
//! No font files are involved: without plotters' `ttf` feature, text is written as SVG
//! `<text>` elements and the viewer's sans-serif font draws it.

#![warn(missing_docs)]

pub mod svg;

pub use plotters;

use plotters::coord::Shift;
use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Fill of every plotting area (the region inside the axes).
pub const PLOT_BACKGROUND: RGBColor = RGBColor(0xfa, 0xfa, 0xfa);
/// Fill of the legend box.
pub const LEGEND_BACKGROUND: RGBColor = RGBColor(0xff, 0xff, 0xfe);
/// Frame colour of the legend box.
pub const LEGEND_FRAME: RGBColor = RGBColor(0x99, 0x99, 0x99);
/// Font family of all chart text.
pub const FONT: &str = "sans-serif";

/// An axis: its drawn range and the tick values on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Lower end of the drawn range.
    pub lo: f64,
    /// Upper end of the drawn range.
    pub hi: f64,
    /// Tick values, ascending, all within `lo..=hi`.
    pub ticks: Vec<f64>,
    /// Decimal places that print every tick exactly (see [`Axis::label`]).
    pub decimals: usize,
    /// Labels in exponent form (`1e-6`): a logarithmic axis reaching below 10⁻³ or above 10⁵.
    pub exponent_labels: bool,
}

/// The most tick labels a wide logarithmic axis gets (it then labels every 2nd, 5th, ...
/// decade).
const MAX_DECADE_TICKS: f64 = 8.0;

/// The 1-2-5 multiple of a power of ten nearest above `x` (`x > 0`): 0.3 → 0.5, 7 → 10.
fn round_up_125(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&v| v >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * p)
}

/// The 1-2-5 multiple of a power of ten nearest below `x` (`x > 0`): 0.3 → 0.2, 7 → 5.
fn round_down_125(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&v| v <= x * (1.0 + 1e-12))
        .unwrap_or(p)
}

/// Decimal places needed to print multiples of `step` (a 1-2-5 × 10ᵏ value) exactly.
fn decimals_for(step: f64) -> usize {
    let k = step.log10().floor() as i32;
    usize::try_from(-k).unwrap_or(0)
}

/// Snaps `v` to the nearest multiple of `step` counted in whole steps, so that printed ticks do
/// not carry binary rounding noise (0.30000000000000004).
fn snap(v: f64, step: f64, decimals: usize) -> f64 {
    let scale = 10f64.powi(decimals as i32);
    ((v / step).round() * step * scale).round() / scale
}

impl Axis {
    /// A linear axis covering `lo..=hi` with about `target` ticks at multiples of a step of
    /// 1, 2 or 5 × 10ᵏ (never below `min_step`, e.g. 1 for epoch numbers); the range is widened
    /// to the ticks just outside the data. Non-finite or empty input gives `0..=1`.
    pub fn linear(lo: f64, hi: f64, target: usize, min_step: f64) -> Self {
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() && lo <= hi {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        if hi - lo < 1e-12 {
            let pad = if lo.abs() > 1e-12 {
                lo.abs() * 0.1
            } else {
                1.0
            };
            lo -= pad;
            hi += pad;
        }
        let target = target.max(2) as f64;
        let step = round_up_125(((hi - lo) / target).max(min_step).max(1e-300));
        let decimals = decimals_for(step);
        let first = (lo / step + 1e-9).floor();
        let last = (hi / step - 1e-9).ceil();
        let count = (last - first) as usize;
        let ticks: Vec<f64> = (0..=count)
            .map(|i| snap((first + i as f64) * step, step, decimals))
            .collect();
        Self {
            lo: ticks[0],
            hi: ticks[count],
            ticks,
            decimals,
            exponent_labels: false,
        }
    }

    /// A logarithmic axis covering the positive range `lo..=hi`, widened to 1-2-5 values. Up to
    /// three decades get ticks at 1, 2 and 5 × 10ᵏ; wider ranges are widened to whole decades
    /// and get ticks at powers of ten, every 1, 2, 5 or 10 decades so that there are at most
    /// eight. Non-positive or non-finite input gives `0.1..=1`.
    pub fn log(lo: f64, hi: f64) -> Self {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi {
            (lo, hi)
        } else {
            (0.1, 1.0)
        };
        let (mut lo, mut hi) = (round_down_125(lo), round_up_125(hi));
        if hi <= lo * (1.0 + 1e-12) {
            hi = round_up_125(lo * 1.5);
        }
        let decades = (hi / lo).log10();
        let (multiples, every): (&[f64], i32) = if decades <= 3.0 {
            (&[1.0, 2.0, 5.0], 1)
        } else {
            let every = round_up_125((decades.ceil() / MAX_DECADE_TICKS).max(1.0)) as i32;
            let k_lo = (lo.log10() + 1e-9).floor() as i32;
            let k_hi = (hi.log10() - 1e-9).ceil() as i32;
            lo = 10f64.powi(k_lo.div_euclid(every) * every);
            hi = 10f64.powi(-((-k_hi).div_euclid(every)) * every);
            (&[1.0], every)
        };
        let mut ticks = Vec::new();
        let mut k = (lo.log10() + 1e-9).floor() as i32;
        while 10f64.powi(k) <= hi * (1.0 + 1e-12) {
            for &m in multiples {
                let decimals = usize::try_from(-k).unwrap_or(0);
                let v = snap(m * 10f64.powi(k), 10f64.powi(k), decimals);
                if v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12) {
                    ticks.push(v);
                }
            }
            k += every;
        }
        let decimals = ticks
            .first()
            .map_or(0, |&v| decimals_for(round_down_125(v)));
        Self {
            lo,
            hi,
            ticks,
            decimals,
            exponent_labels: lo < 1e-3 * (1.0 - 1e-9) || hi > 1e5 * (1.0 + 1e-9),
        }
    }

    /// The label of a tick value: just the digits the axis needs (`0.05`, `2`, `150`), or
    /// `2e-5` on a logarithmic axis with [`Axis::exponent_labels`].
    pub fn label(&self, v: f64) -> String {
        if self.exponent_labels && v > 0.0 {
            let k = (v.log10() + 1e-9).floor() as i32;
            let m = (v / 10f64.powi(k)).round();
            format!("{m}e{k}")
        } else if self.decimals == 0 {
            format!("{v:.0}")
        } else {
            // Trailing zeros of a finer-stepped neighbour (0.50 beside 0.05) are dropped.
            let s = format!("{v:.*}", self.decimals);
            let s = s.trim_end_matches('0').trim_end_matches('.');
            s.to_string()
        }
    }
}

/// A plotters coordinate with exactly the given ticks, each with its own label (plotters'
/// `with_key_points` cannot carry labels on `f64` axes). Light mesh lines are not drawn.
pub struct TickedCoord<R> {
    inner: R,
    ticks: Vec<f64>,
    labels: Vec<String>,
}

impl<R: Ranged<ValueType = f64>> TickedCoord<R> {
    /// `inner` (the mapping, linear or logarithmic) with ticks at the given values and labels.
    pub fn new(inner: impl Into<R>, ticks: impl IntoIterator<Item = (f64, String)>) -> Self {
        let (ticks, labels) = ticks.into_iter().unzip();
        Self {
            inner: inner.into(),
            ticks,
            labels,
        }
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for TickedCoord<R> {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> std::ops::Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

impl<R: Ranged<ValueType = f64>> ValueFormatter<f64> for TickedCoord<R> {
    fn format_ext(&self, value: &f64) -> String {
        self.ticks
            .iter()
            .zip(&self.labels)
            .min_by(|a, b| (a.0 - value).abs().total_cmp(&(b.0 - value).abs()))
            .map(|(_, label)| label.clone())
            .unwrap_or_default()
    }
}

impl Axis {
    /// The axis as a linear plotters coordinate labelled with [`Axis::label`].
    pub fn linear_coord(&self) -> TickedCoord<RangedCoordf64> {
        TickedCoord::new(self.lo..self.hi, self.labelled_ticks())
    }

    /// The axis as a logarithmic plotters coordinate labelled with [`Axis::label`].
    pub fn log_coord(&self) -> TickedCoord<LogCoord<f64>> {
        TickedCoord::new((self.lo..self.hi).log_scale(), self.labelled_ticks())
    }

    fn labelled_ticks(&self) -> Vec<(f64, String)> {
        self.ticks.iter().map(|&t| (t, self.label(t))).collect()
    }
}

/// How an entry of the legend is drawn.
#[derive(Debug, Clone, Copy)]
pub enum Swatch {
    /// A line sample, solid or dashed, with a dot in the middle (a line series).
    Line {
        /// Colour of the series.
        colour: RGBColor,
        /// Dashed, as drawn with `DashedLineSeries`.
        dashed: bool,
    },
    /// A filled box (bars).
    Fill(RGBColor),
}

/// One legend entry.
#[derive(Debug, Clone, Copy)]
pub struct LegendEntry<'a> {
    /// The text.
    pub label: &'a str,
    /// The sample drawn before it.
    pub swatch: Swatch,
}

/// Line height of a legend entry in pixels.
const LEGEND_ROW: i32 = 20;
/// Font size of the legend and the axis labels.
pub const LABEL_SIZE: u32 = 13;

/// Width in pixels that a text of `chars` characters takes at `size` (an upper estimate for a
/// sans-serif font; plotters' SVG backend cannot measure text).
pub fn text_width(chars: usize, size: u32) -> u32 {
    (chars as f64 * f64::from(size) * 0.62).ceil() as u32
}

/// Draws a framed legend, one entry per line, into the top-left corner of `area`, which should
/// be a region of its own beside the charts (then it cannot cover data). Returns the box as
/// `(left, top, right, bottom)` in `area`'s pixels.
pub fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry<'_>],
) -> Result<(i32, i32, i32, i32), DrawingAreaErrorKind<DB::ErrorType>> {
    let longest = entries
        .iter()
        .map(|e| e.label.chars().count())
        .max()
        .unwrap_or(0);
    let (x0, y0) = (8, 8);
    let x1 = x0 + 44 + text_width(longest, LABEL_SIZE) as i32;
    let y1 = y0 + 8 + LEGEND_ROW * entries.len() as i32;
    area.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        LEGEND_BACKGROUND.filled(),
    ))?;
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], LEGEND_FRAME))?;
    for (i, entry) in entries.iter().enumerate() {
        let cy = y0 + 4 + LEGEND_ROW * i as i32 + LEGEND_ROW / 2;
        let (sx0, sx1) = (x0 + 8, x0 + 34);
        match entry.swatch {
            Swatch::Line { colour, dashed } => {
                let style = colour.stroke_width(2);
                if dashed {
                    for (a, b) in [(sx0, sx0 + 7), (sx0 + 10, sx0 + 16), (sx0 + 19, sx1)] {
                        area.draw(&PathElement::new(vec![(a, cy), (b, cy)], style))?;
                    }
                } else {
                    area.draw(&PathElement::new(vec![(sx0, cy), (sx1, cy)], style))?;
                }
                area.draw(&Circle::new(((sx0 + sx1) / 2, cy), 3, colour.filled()))?;
            }
            Swatch::Fill(colour) => {
                area.draw(&Rectangle::new(
                    [(sx0, cy - 6), (sx1, cy + 6)],
                    colour.filled(),
                ))?;
            }
        }
        area.draw(&Text::new(
            entry.label.to_string(),
            (x0 + 42, cy),
            (FONT, LABEL_SIZE).into_font().color(&BLACK).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                ),
            ),
        ))?;
    }
    Ok((x0, y0, x1, y1))
}

/// An SVG document of the given size that only says `message` (the chart could not be drawn).
pub fn message_svg(width: u32, height: u32, message: &str) -> String {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"10\" y=\"24\" font-family=\"{FONT}\" font-size=\"13\">{escaped}</text></svg>\n"
    )
}

/// Whether `v` is a round 1-2-5 value, m × 10ᵏ with m in {1, 2, 5}: what every tick step of
/// these axes is (for the chart tests of the crates that draw with them).
pub fn is_125(v: f64) -> bool {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| ((v / p) - m).abs() < 1e-9)
}

#[cfg(test)]
mod tests {
    use super::{Axis, is_125};

    #[test]
    fn linear_ticks_are_round_and_cover_the_data() {
        for (lo, hi) in [
            (0.0, 21.8),
            (0.0, 16.4),
            (0.0, 1.0),
            (0.013, 0.0871),
            (1.0, 37.0),
            (-3.2, 7.7),
            (5.0, 5.0),
            (0.0, 1234.5),
        ] {
            let axis = Axis::linear(lo, hi, 5, 0.0);
            assert!(axis.lo <= lo && axis.hi >= hi, "{lo}..{hi}: {axis:?}");
            assert!((3..=12).contains(&axis.ticks.len()), "{lo}..{hi}: {axis:?}");
            let step = axis.ticks[1] - axis.ticks[0];
            assert!(is_125(step), "{lo}..{hi}: step {step}");
            for w in axis.ticks.windows(2) {
                assert!(((w[1] - w[0]) - step).abs() < step * 1e-9, "{axis:?}");
            }
            for &t in &axis.ticks {
                assert!(
                    ((t / step) - (t / step).round()).abs() < 1e-9,
                    "{t} in {axis:?}"
                );
                let label = axis.label(t);
                let digits = label.trim_start_matches('-').replace('.', "");
                assert!(digits.trim_start_matches('0').len() <= 4, "{label}");
                assert_eq!(label.parse::<f64>().ok(), Some(t), "{label}");
            }
        }
        assert_eq!(
            Axis::linear(0.0, 16.4, 4, 0.0).ticks,
            vec![0.0, 5.0, 10.0, 15.0, 20.0]
        );
        assert_eq!(Axis::linear(1.0, 3.0, 5, 1.0).ticks, vec![1.0, 2.0, 3.0]);
        assert_eq!(
            Axis::linear(0.0, 1.0, 5, 0.0)
                .ticks
                .iter()
                .map(|&t| Axis::linear(0.0, 1.0, 5, 0.0).label(t))
                .collect::<Vec<_>>(),
            ["0", "0.2", "0.4", "0.6", "0.8", "1"]
        );
    }

    #[test]
    fn log_ticks_are_125_or_decades() {
        let axis = Axis::log(0.13, 0.92);
        assert_eq!(axis.ticks, vec![0.1, 0.2, 0.5, 1.0]);
        assert_eq!(
            axis.ticks
                .iter()
                .map(|&t| axis.label(t))
                .collect::<Vec<_>>(),
            ["0.1", "0.2", "0.5", "1"]
        );
        let axis = Axis::log(0.031, 0.4);
        assert_eq!(axis.ticks, vec![0.02, 0.05, 0.1, 0.2, 0.5]);
        assert_eq!(axis.lo, 0.02);
        let axis = Axis::log(2e-5, 3.0);
        assert_eq!(axis.ticks, vec![1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0]);
        assert_eq!(axis.label(1e-5), "1e-5");
        assert_eq!(axis.label(0.1), "1e-1");
        assert_eq!(axis.label(1e-5).parse::<f64>().ok(), Some(1e-5));
        let axis = Axis::log(0.002, 3.0);
        assert_eq!(axis.ticks, vec![1e-3, 1e-2, 0.1, 1.0, 10.0]);
        assert_eq!(axis.label(1e-3), "0.001");
        // Twelve decades: every second one is labelled.
        let axis = Axis::log(3e-11, 1.2);
        assert_eq!(
            axis.ticks,
            [1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1.0, 100.0]
        );
        assert!(axis.ticks.len() as f64 <= super::MAX_DECADE_TICKS);
        // Degenerate input still gives a usable axis.
        for (lo, hi) in [(0.0, 1.0), (f64::NAN, 1.0), (0.5, 0.5)] {
            let axis = Axis::log(lo, hi);
            assert!(axis.ticks.len() >= 2, "{lo}..{hi}: {axis:?}");
            assert!(axis.ticks.iter().all(|&t| is_125(t)), "{axis:?}");
        }
    }
}

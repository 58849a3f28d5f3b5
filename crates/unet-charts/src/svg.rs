//! Reads back the pieces of a chart that tests check: rectangles (plotting areas and legend
//! boxes, told apart by their fill) and texts (tick labels). It understands the SVG that
//! plotters' SVG backend writes (one element per tag, attributes in double quotes), not SVG
//! in general.

use plotters::style::RGBColor;

/// A `<rect>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// The `fill` attribute as written (`#RRGGBB` or `none`).
    pub fill: String,
}

impl Rect {
    /// Right edge.
    pub fn right(&self) -> f64 {
        self.x + self.width
    }

    /// Bottom edge.
    pub fn bottom(&self) -> f64 {
        self.y + self.height
    }

    /// Whether the two rectangles share any area (touching edges do not count).
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }

    /// Whether the point lies inside or on the edge.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.x && x <= self.right() && y >= self.y && y <= self.bottom()
    }
}

/// A `<text>` element.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    /// The anchor's x.
    pub x: f64,
    /// The anchor's y.
    pub y: f64,
    /// `text-anchor` (`start`, `middle`, `end`).
    pub anchor: String,
    /// The text, trimmed, with XML entities decoded.
    pub content: String,
}

/// The value of `name="…"` in the attributes of one tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    loop {
        let i = rest.find(name)?;
        let before = rest[..i].chars().last();
        let after = &rest[i + name.len()..];
        if before.is_some_and(char::is_whitespace)
            && let Some(value) = after.strip_prefix("=\"")
        {
            return value.split('"').next();
        }
        rest = after;
    }
}

fn number(tag: &str, name: &str) -> Option<f64> {
    attr(tag, name)?.trim().parse().ok()
}

/// Every `<rect>` with numeric `x`, `y`, `width` and `height`.
pub fn rects(svg: &str) -> Vec<Rect> {
    svg.split("<rect")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            Some(Rect {
                x: number(tag, "x")?,
                y: number(tag, "y")?,
                width: number(tag, "width")?,
                height: number(tag, "height")?,
                fill: attr(tag, "fill").unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// The rectangles filled with `colour`.
pub fn rects_filled(svg: &str, colour: RGBColor) -> Vec<Rect> {
    let hex = hex(colour);
    rects(svg)
        .into_iter()
        .filter(|r| r.fill.eq_ignore_ascii_case(&hex))
        .collect()
}

/// `#RRGGBB`, as plotters writes a colour.
pub fn hex(colour: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2)
}

/// Every `<text>` element.
pub fn texts(svg: &str) -> Vec<Text> {
    svg.split("<text")
        .skip(1)
        .filter_map(|rest| {
            let end_tag = rest.find('>')?;
            let tag = &rest[..end_tag];
            let body = &rest[end_tag + 1..];
            let content = &body[..body.find("</text>")?];
            Some(Text {
                x: number(tag, "x")?,
                y: number(tag, "y")?,
                anchor: attr(tag, "text-anchor").unwrap_or("start").to_string(),
                content: content
                    .trim()
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plotters_style_elements() {
        let svg = r##"<svg width="10" height="10">
<rect x="5" y="6" width="7" height="8" opacity="1" fill="#FAFAFA" stroke="none"/>
<rect width="100%" height="100%" fill="white"/>
<text x="3" y="4" dy="0.5ex" text-anchor="end" font-family="sans-serif" font-size="10" opacity="1" fill="#000000">
0.5 &amp; more
</text>
</svg>"##;
        let r = rects(svg);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            (r[0].x, r[0].y, r[0].right(), r[0].bottom()),
            (5.0, 6.0, 12.0, 14.0)
        );
        assert_eq!(
            rects_filled(svg, RGBColor(0xfa, 0xfa, 0xfa)).len(),
            1,
            "fill matched by colour"
        );
        let t = texts(svg);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].x, t[0].y), (3.0, 4.0));
        assert_eq!(t[0].anchor, "end");
        assert_eq!(t[0].content, "0.5 & more");
    }

    #[test]
    fn overlap_and_containment() {
        let a = Rect {
            x: 0.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
            fill: String::new(),
        };
        let b = Rect {
            x: 10.0,
            ..a.clone()
        };
        let c = Rect {
            x: 9.0,
            y: 9.0,
            ..a.clone()
        };
        assert!(!a.overlaps(&b), "touching edges");
        assert!(a.overlaps(&c) && c.overlaps(&a));
        assert!(a.contains(10.0, 0.0) && !a.contains(10.5, 0.0));
    }
}

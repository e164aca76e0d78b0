//! SVG charts with plotters' SVG backend (no font or image libraries: text is SVG text).
//!
//! One [`Chart`] description, rendered by [`render`] to an SVG string: line, dashed, step
//! and point series with a legend, optional log axes, and an optional vertical band with a
//! line (the bootstrap range of the best models). Colors are pycls's default palette.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::error::{Error, Result};

/// pycls's default colors (`plotting.py`), as RGB bytes.
pub const COLORS: [(u8, u8, u8); 10] = [
    (0, 114, 189),
    (217, 83, 25),
    (237, 177, 32),
    (126, 47, 142),
    (119, 172, 48),
    (77, 190, 238),
    (162, 20, 47),
    (77, 77, 77),
    (153, 153, 153),
    (255, 0, 0),
];

/// The names of [`COLORS`], for the report's prose.
pub const COLOR_NAMES: [&str; 10] = [
    "blue",
    "orange",
    "yellow",
    "purple",
    "green",
    "light blue",
    "dark red",
    "dark gray",
    "gray",
    "red",
];

/// The name of the `i`-th palette color.
pub fn color_name(i: usize) -> &'static str {
    COLOR_NAMES[i % COLOR_NAMES.len()]
}

/// The `i`-th palette color.
pub fn color(i: usize) -> RGBColor {
    let (r, g, b) = COLORS[i % COLORS.len()];
    RGBColor(r, g, b)
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Solid line.
    Line,
    /// Dashed line.
    Dashed,
    /// Markers only.
    Points,
    /// Solid line with markers.
    LinePoints,
    /// Hollow black markers (stage starts).
    Rings,
}

/// A data series.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend label (empty: not in the legend).
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Palette index.
    pub color: usize,
    /// Drawing style.
    pub style: Style,
}

/// A vertical band `[low, high]` with a line at `mid`.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// Left edge.
    pub low: f64,
    /// Line.
    pub mid: f64,
    /// Right edge.
    pub high: f64,
    /// Legend label of the band.
    pub label: String,
    /// Legend label of the line.
    pub mid_label: String,
}

/// Where the legend goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Legend {
    /// Upper left.
    UpperLeft,
    /// Upper right.
    UpperRight,
    /// Lower right.
    LowerRight,
    /// No legend.
    None,
}

/// A chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// Log x axis (base 10).
    pub x_log: bool,
    /// Log y axis (base 2).
    pub y_log2: bool,
    /// X range; `None`: from the data.
    pub x_range: Option<(f64, f64)>,
    /// Y range; `None`: from the data.
    pub y_range: Option<(f64, f64)>,
    /// Series, drawn in order.
    pub series: Vec<Series>,
    /// Optional band.
    pub band: Option<Band>,
    /// Legend position.
    pub legend: Legend,
    /// Size in pixels.
    pub size: (u32, u32),
}

impl Default for Chart {
    fn default() -> Self {
        Chart {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            x_log: false,
            y_log2: false,
            x_range: None,
            y_range: None,
            series: Vec::new(),
            band: None,
            legend: Legend::UpperRight,
            size: (480, 320),
        }
    }
}

/// The data range of the chart's points (and band) along one axis, padded.
fn range(c: &Chart, axis: usize, log: bool) -> (f64, f64) {
    let mut vals: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(move |p| if axis == 0 { p.0 } else { p.1 })
        })
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .collect();
    if axis == 0
        && let Some(b) = &c.band
    {
        vals.extend([b.low, b.high].into_iter().filter(|v| !log || *v > 0.0));
    }
    let (mut lo, mut hi) = vals
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let (l, h) = (lo.ln(), hi.ln());
        let pad = ((h - l) * 0.05).max(0.05);
        (lo, hi) = ((l - pad).exp(), (h + pad).exp());
    } else {
        let pad = ((hi - lo) * 0.05).max(hi.abs().max(1e-9) * 0.01);
        (lo, hi) = (lo - pad, hi + pad);
    }
    (lo, hi)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A tick label without needless digits (`16`, `0.25`, `1.5e9`).
fn tick(v: &f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        return format!("{v:.2e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn plot_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::other(format!("plot: {e:?}"))
}

fn draw_in<X, Y>(root: &Area<'_>, c: &Chart, x: X, y: Y) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(x, y)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .label_style(("sans-serif", 11))
        .axis_desc_style(("sans-serif", 12))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(plot_err)?;
    if let Some(b) = &c.band {
        draw_band(&mut chart, b)?;
    }
    for s in &c.series {
        draw_series(&mut chart, s)?;
    }
    draw_legend(&mut chart, c)
}

/// The chart being drawn, with `f64` coordinates on both axes.
type Plot<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

/// A vertical band over the whole height, with its middle line.
fn draw_band<X, Y>(chart: &mut Plot<'_, '_, X, Y>, b: &Band) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (y_lo, y_hi) = {
        let r = chart.y_range();
        (r.start, r.end)
    };
    let fill = color(0).mix(0.15).filled();
    let s = chart
        .draw_series(std::iter::once(Rectangle::new(
            [(b.low, y_lo), (b.high, y_hi)],
            fill,
        )))
        .map_err(plot_err)?;
    if !b.label.is_empty() {
        s.label(&b.label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], fill));
    }
    let s = chart
        .draw_series(LineSeries::new(
            vec![(b.mid, y_lo), (b.mid, y_hi)],
            BLACK.stroke_width(2),
        ))
        .map_err(plot_err)?;
    if !b.mid_label.is_empty() {
        s.label(&b.mid_label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK.stroke_width(2)));
    }
    Ok(())
}

/// One series in its style, with its legend entry.
fn draw_series<X, Y>(chart: &mut Plot<'_, '_, X, Y>, s: &Series) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let col = color(s.color);
    let pts = s.points.clone();
    let ann = match s.style {
        Style::Line => chart.draw_series(LineSeries::new(pts, col.stroke_width(2))),
        Style::Dashed => chart.draw_series(DashedLineSeries::new(pts, 6, 4, col.stroke_width(2))),
        Style::Points => chart.draw_series(
            pts.into_iter()
                .map(move |p| Circle::new(p, 3, col.mix(0.8).filled())),
        ),
        Style::LinePoints => {
            chart.draw_series(LineSeries::new(pts, col.stroke_width(2)).point_size(3))
        }
        Style::Rings => chart.draw_series(
            pts.into_iter()
                .map(|p| Circle::new(p, 5, BLACK.stroke_width(1))),
        ),
    }
    .map_err(plot_err)?;
    if !s.label.is_empty() {
        let ann = ann.label(&s.label);
        match s.style {
            Style::Points | Style::Rings => {
                ann.legend(move |(x, y)| Circle::new((x + 7, y), 3, col.filled()));
            }
            _ => {
                ann.legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], col.stroke_width(2))
                });
            }
        }
    }
    Ok(())
}

/// The legend box, where the chart wants one and something is labelled.
fn draw_legend<'a, 'b: 'a, X, Y>(chart: &mut Plot<'a, 'b, X, Y>, c: &Chart) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let pos = match c.legend {
        Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
        Legend::UpperRight => SeriesLabelPosition::UpperRight,
        Legend::LowerRight => SeriesLabelPosition::LowerRight,
        Legend::None => return Ok(()),
    };
    let labelled = c.series.iter().any(|s| !s.label.is_empty())
        || c.band.as_ref().is_some_and(|b| !b.label.is_empty());
    if labelled {
        chart
            .configure_series_labels()
            .position(pos)
            .label_font(("sans-serif", 11))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(80, 80, 80))
            .draw()
            .map_err(plot_err)?;
    }
    Ok(())
}

/// Renders a chart to an SVG document.
pub fn render(c: &Chart) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, c.size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (x0, x1) = c.x_range.unwrap_or_else(|| range(c, 0, c.x_log));
        let (y0, y1) = c.y_range.unwrap_or_else(|| range(c, 1, c.y_log2));
        match (c.x_log, c.y_log2) {
            (false, false) => draw_in(&root, c, x0..x1, y0..y1)?,
            (true, false) => draw_in(&root, c, (x0..x1).log_scale(), y0..y1)?,
            (false, true) => draw_in(&root, c, x0..x1, (y0..y1).log_scale().base(2.0))?,
            (true, true) => draw_in(
                &root,
                c,
                (x0..x1).log_scale(),
                (y0..y1).log_scale().base(2.0),
            )?,
        }
        root.present().map_err(plot_err)?;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_svg_with_labels() {
        let c = Chart {
            title: "t".into(),
            x_label: "error".into(),
            y_label: "cumulative prob.".into(),
            series: vec![Series {
                label: "sweep  n=2".into(),
                points: vec![(1.0, 0.5), (2.0, 1.0)],
                color: 0,
                style: Style::Line,
            }],
            band: Some(Band {
                low: 1.2,
                mid: 1.5,
                high: 1.8,
                label: "[1.2, 1.8]".into(),
                mid_label: "best: 1.5".into(),
            }),
            ..Chart::default()
        };
        let svg = render(&c).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
        assert!(svg.contains("cumulative prob.") && svg.contains("sweep  n=2"));
        assert!(svg.contains("best: 1.5"));
        let log = Chart {
            x_log: true,
            y_log2: true,
            ..c
        };
        assert!(render(&log).unwrap().contains("</svg>"));
    }
}

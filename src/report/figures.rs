//! Figures drawn with plotters from plain data (no engine types): a generic line chart and
//! Figures 1–3 of GMS. Each figure is drawn twice by the same code: as SVG text and as a PNG.
//! The PNG's text is rasterised from the embedded DejaVu Sans font (no system font libraries),
//! by a small bitmap backend wrapper that places glyphs correctly (plotters' own `ab_glyph`
//! text drawing ignores glyph bearings). Output is deterministic: the same input gives
//! byte-identical SVG and PNG. Legends sit in a strip above each plot, so they never hide data.

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _, point};
use anyhow::{Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};
use std::sync::OnceLock;

/// One labelled line: `y[i]` against `x[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// x values.
    pub x: Vec<f64>,
    /// y values (same length as `x`).
    pub y: Vec<f64>,
}

/// One panel of Figure 2: an empirical density (bars) against a stationary density (line).
#[derive(Debug, Clone, PartialEq)]
pub struct DensityPanel {
    /// Panel title (the cost model).
    pub label: String,
    /// Bin centres, strictly increasing.
    pub bin_centers: Vec<f64>,
    /// Empirical density per bin.
    pub empirical: Vec<f64>,
    /// Stationary density per bin (at or averaged over each bin).
    pub stationary: Vec<f64>,
}

/// A rendered figure, in two formats.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// SVG document.
    pub svg: String,
    /// PNG file bytes (8-bit RGB).
    pub png: Vec<u8>,
}

/// A generic line chart: title, axis labels, labelled series, optional labelled horizontal line.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    hline: Option<(f64, &str)>,
) -> Result<Figure> {
    check_series(series)?;
    let lines = styled(series, &[]);
    render(1000, 600, |root| {
        let body = title_strip(root, title)?;
        line_panel(
            &body,
            x_label,
            y_label,
            &lines,
            hline.map(|(v, l)| (v, l, true)),
        )
    })
}

/// A scatter of `cloud` (translucent dots, drawn first) under labelled `lines`.
pub fn scatter_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    cloud: &Series,
    lines: &[Series],
) -> Result<Figure> {
    check_series(std::slice::from_ref(cloud))?;
    check_series(lines)?;
    let all: Vec<Series> = std::iter::once(cloud.clone())
        .chain(lines.iter().cloned())
        .collect();
    let mut styles = styled(&all, &[]);
    styles[0].dots = true;
    for s in &mut styles[1..] {
        s.width = 3;
    }
    render(1000, 600, |root| {
        let body = title_strip(root, title)?;
        line_panel(&body, x_label, y_label, &styles, None)
    })
}

/// Figure 1: expected-return paths μ_t per cost model against the constant frictionless drift.
pub fn figure1(days: &[f64], returns: &[Series], mu_bar: f64) -> Result<Figure> {
    check_series(returns)?;
    if days.is_empty() {
        bail!("Figure 1: no days");
    }
    if !mu_bar.is_finite() {
        bail!("Figure 1: the frictionless drift is not finite ({mu_bar})");
    }
    let lines = styled(returns, &[]);
    let reference = format!("frictionless μ̄ = {}", format_value(mu_bar));
    render(1000, 600, |root| {
        let body = title_strip(
            root,
            "Figure 1: equilibrium expected returns along one Brownian path",
        )?;
        line_panel(
            &body,
            "time (trading days)",
            "expected return μ_t ($ per share per day)",
            &lines,
            Some((mu_bar, &reference, true)),
        )
    })
}

/// Figure 2: one panel per cost model, empirical density (bars) against stationary density (line).
pub fn figure2(panels: &[DensityPanel]) -> Result<Figure> {
    if panels.is_empty() {
        bail!("Figure 2: no panels");
    }
    let mut edges = Vec::with_capacity(panels.len());
    for p in panels {
        let n = p.bin_centers.len();
        if n < 2 || p.empirical.len() != n || p.stationary.len() != n {
            bail!(
                "Figure 2: panel '{}' needs at least 2 bins and one empirical and one \
                 stationary value per bin ({} centres, {} empirical, {} stationary)",
                p.label,
                n,
                p.empirical.len(),
                p.stationary.len()
            );
        }
        edges.push(
            bin_edges(&p.bin_centers).map_err(|e| anyhow!("Figure 2: panel '{}': {e}", p.label))?,
        );
    }
    let cols = if panels.len() == 1 { 1 } else { 2 };
    let rows = panels.len().div_ceil(cols);
    let height = u32::try_from(rows)
        .unwrap_or(u32::MAX)
        .saturating_mul(340)
        .saturating_add(100);
    let bars = BAR_COLOR.mix(0.45);
    let legend = [
        LegendEntry {
            label: "simulated path (histogram)".into(),
            swatch: Swatch::Bar(bars),
        },
        LegendEntry {
            label: "stationary density".into(),
            swatch: Swatch::Line(DENSITY_COLOR, 2, false),
        },
    ];
    render(1000, height, |root| {
        let body = title_strip(
            root,
            "Figure 2: empirical vs stationary density of the state X",
        )?;
        let (head, grid) = body.split_vertically(legend_height(&legend, body.dim_in_pixel().0));
        draw_legend(&head, &legend)?;
        for ((p, e), area) in panels
            .iter()
            .zip(&edges)
            .zip(grid.split_evenly((rows, cols)).iter())
        {
            let x0 = e[0];
            let x1 = e[e.len() - 1];
            let (_, top) = padded_range(p.empirical.iter().chain(&p.stationary).chain([&0.0]))?;
            let mut chart = pe(ChartBuilder::on(area)
                .caption(p.label.as_str(), (FAMILY, 17))
                .margin(8)
                .margin_right(20)
                .x_label_area_size(42)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, 0.0..top))?;
            mesh(
                &mut chart,
                "state X (shares)",
                "density (1/share)",
                x1 - x0,
                top,
                6,
            )?;
            let rects = p
                .empirical
                .iter()
                .enumerate()
                .filter(|(_, d)| d.is_finite())
                .map(|(i, &d)| {
                    Rectangle::new([(e[i], 0.0), (e[i + 1], d.max(0.0))], bars.filled())
                });
            pe(chart.draw_series(rects))?;
            let line = finite_points(&p.bin_centers, &p.stationary);
            pe(chart.draw_series(LineSeries::new(line, DENSITY_COLOR.stroke_width(2))))?;
        }
        Ok(())
    })
}

/// Figure 3: (a) simulated daily turnover of some models against the historical volume (already
/// scaled, x = trading day); (b) the autocorrelation functions of these series by lag.
pub fn figure3(turnover: &[Series], data: &Series, acf: &[Series]) -> Result<Figure> {
    check_series(turnover)?;
    check_series(std::slice::from_ref(data))?;
    check_series(acf)?;
    // Models keep their palette colour in both panels; the data is drawn in black, on top.
    let mut a = styled(turnover, &[]);
    a.push(Styled {
        series: data,
        color: DATA_COLOR,
        width: 2,
        dots: false,
    });
    let known: Vec<(&str, RGBColor)> = a
        .iter()
        .map(|s| (s.series.label.as_str(), s.color))
        .collect();
    let b = styled(acf, &known);
    render(1000, 900, |root| {
        let body = title_strip(root, "Figure 3: daily share turnover, model vs data")?;
        let (top, bottom) = body.split_vertically(body.dim_in_pixel().1 * 55 / 100);
        let (top_title, top) = top.split_vertically(28);
        pe(top_title.titled("(a) daily turnover", (FAMILY, 17)))?;
        line_panel(
            &top,
            "time (trading days)",
            "turnover (shares per day)",
            &a,
            None,
        )?;
        let (bottom_title, bottom) = bottom.split_vertically(28);
        pe(bottom_title.titled("(b) autocorrelation of daily turnover", (FAMILY, 17)))?;
        line_panel(
            &bottom,
            "lag (trading days)",
            "autocorrelation",
            &b,
            Some((0.0, "", false)),
        )
    })
}

// ------------------------------------------------------------------------------------------
// Style
// ------------------------------------------------------------------------------------------

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
/// Colour-blind-friendly categorical palette (Okabe–Ito, without yellow and black).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
];
const DATA_COLOR: RGBColor = RGBColor(0, 0, 0);
const BAR_COLOR: RGBColor = RGBColor(0, 114, 178);
const DENSITY_COLOR: RGBColor = RGBColor(0, 0, 0);
const REF_COLOR: RGBColor = RGBColor(60, 60, 60);
const GRID_COLOR: RGBColor = RGBColor(225, 225, 225);

/// A series with its colour and stroke width.
struct Styled<'a> {
    series: &'a Series,
    color: RGBColor,
    width: u32,
    /// Draw as a cloud of translucent dots instead of a line.
    dots: bool,
}

/// Palette colours in order, except that a label already in `known` keeps its colour.
fn styled<'a>(series: &'a [Series], known: &[(&str, RGBColor)]) -> Vec<Styled<'a>> {
    let mut next = 0;
    series
        .iter()
        .map(|s| {
            // Same label, or the known label extends this one after a space ("volume × 2").
            let hit = known.iter().find(|(l, _)| *l == s.label).or_else(|| {
                known.iter().find(|(l, _)| {
                    l.strip_prefix(s.label.as_str())
                        .is_some_and(|rest| rest.starts_with(' '))
                })
            });
            let color = match hit {
                Some(&(_, c)) => c,
                None => {
                    next += 1;
                    PALETTE[(next - 1) % PALETTE.len()]
                }
            };
            let width = if color == DATA_COLOR { 2 } else { 1 };
            Styled {
                series: s,
                color,
                width,
                dots: false,
            }
        })
        .collect()
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Swatch {
    /// A line: colour, width, dashed.
    Line(RGBColor, u32, bool),
    /// A filled box.
    Bar(RGBAColor),
}

/// One legend entry.
struct LegendEntry {
    label: String,
    swatch: Swatch,
}

const LEGEND_FONT: u32 = 14;
const LEGEND_ROW: u32 = 22;
const SWATCH_W: i32 = 26;

/// Text width in pixels of `text` in the legend font.
fn text_width(text: &str) -> u32 {
    let font = FontRef::try_from_slice(FONT).ok();
    font.map_or(text.len() as u32 * LEGEND_FONT / 2, |f| {
        let f = f.into_scaled(PxScale::from(LEGEND_FONT as f32));
        let mut w = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                w += f.kern(p, id);
            }
            w += f.h_advance(id);
            prev = Some(id);
        }
        w.ceil() as u32
    })
}

/// Legend entries flowed into centred rows of at most `width` pixels: (row, x offset) per entry.
fn legend_layout(entries: &[LegendEntry], width: u32) -> (Vec<(u32, i32)>, Vec<u32>) {
    let gap = 28;
    let mut pos = Vec::with_capacity(entries.len());
    let mut row_widths = vec![0u32];
    for e in entries {
        let w = SWATCH_W as u32 + 6 + text_width(&e.label);
        let row = row_widths.len() - 1;
        let cur = row_widths[row];
        if cur > 0 && cur + gap + w > width.saturating_sub(40) {
            row_widths.push(w);
            pos.push((row as u32 + 1, 0));
        } else {
            let x = if cur == 0 { 0 } else { cur + gap };
            pos.push((row as u32, x as i32));
            row_widths[row] = x + w;
        }
    }
    (pos, row_widths)
}

/// Height of the legend strip for `entries` in an area `width` pixels wide.
fn legend_height(entries: &[LegendEntry], width: u32) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    let (_, rows) = legend_layout(entries, width);
    rows.len() as u32 * LEGEND_ROW + 6
}

/// Draws a legend strip (rows of centred entries).
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> Result<()> {
    let (w, _) = area.dim_in_pixel();
    let (pos, rows) = legend_layout(entries, w);
    let style = TextStyle::from((FAMILY, LEGEND_FONT)).pos(Pos::new(HPos::Left, VPos::Center));
    for (e, &(row, x)) in entries.iter().zip(&pos) {
        let left = (w as i32 - rows[row as usize] as i32) / 2 + x;
        let y = 3 + (row * LEGEND_ROW + LEGEND_ROW / 2) as i32;
        match e.swatch {
            Swatch::Line(c, width, dashed) => {
                if dashed {
                    for k in 0..3 {
                        let s = left + k * 10;
                        pe(area.draw(&PathElement::new(
                            vec![(s, y), (s + 6, y)],
                            c.stroke_width(width),
                        )))?;
                    }
                } else {
                    pe(area.draw(&PathElement::new(
                        vec![(left, y), (left + SWATCH_W, y)],
                        c.stroke_width(width + 1),
                    )))?;
                }
            }
            Swatch::Bar(c) => {
                pe(area.draw(&Rectangle::new(
                    [(left, y - 6), (left + SWATCH_W, y + 6)],
                    c.filled(),
                )))?;
            }
        }
        pe(area.draw(&Text::new(
            e.label.clone(),
            (left + SWATCH_W + 6, y),
            style.clone(),
        )))?;
    }
    Ok(())
}

/// Draws `title` in a strip at the top of `root`; returns the area below it.
fn title_strip<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>> {
    let (head, body) = root.split_vertically(44);
    pe(head.titled(title, (FAMILY, 22)))?;
    Ok(body)
}

/// Grid, axis labels and tick labels (about `x_ticks` on the x axis) of a chart.
fn mesh<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    x_label: &str,
    y_label: &str,
    x_span: f64,
    y_span: f64,
    x_ticks: usize,
) -> Result<()> {
    let fx = move |v: &f64| format_tick(*v, x_span);
    let fy = move |v: &f64| format_tick(*v, y_span);
    pe(chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_labels(x_ticks)
        .y_labels(8)
        .bold_line_style(GRID_COLOR)
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK.mix(0.8))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 15))
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .draw())?;
    Ok(())
}

/// Lines on one set of axes with a legend strip above; `hline` = (value, label, in legend).
fn line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x_label: &str,
    y_label: &str,
    lines: &[Styled<'_>],
    hline: Option<(f64, &str, bool)>,
) -> Result<()> {
    let mut legend: Vec<LegendEntry> = lines
        .iter()
        .map(|s| LegendEntry {
            label: s.series.label.clone(),
            swatch: Swatch::Line(s.color, s.width, false),
        })
        .collect();
    if let Some((_, label, true)) = hline {
        legend.push(LegendEntry {
            label: label.to_owned(),
            swatch: Swatch::Line(REF_COLOR, 2, true),
        });
    }
    let (head, plot) = area.split_vertically(legend_height(&legend, area.dim_in_pixel().0));
    draw_legend(&head, &legend)?;
    let (x0, x1) = padded_range(lines.iter().flat_map(|s| s.series.x.iter()))?;
    let href = hline.map(|h| h.0);
    let (y0, y1) = padded_range(
        lines
            .iter()
            .flat_map(|s| s.series.y.iter())
            .chain(href.iter()),
    )?;
    let mut chart = pe(ChartBuilder::on(&plot)
        .margin(8)
        .margin_right(24)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(x0..x1, y0..y1))?;
    mesh(&mut chart, x_label, y_label, x1 - x0, y1 - y0, 8)?;
    // The zero line goes under the data; a reference in the legend goes on top of it.
    if let Some((v, _, false)) = hline {
        dashed_hline(&mut chart, (x0, x1), v, REF_COLOR.mix(0.6).stroke_width(1))?;
    }
    // Black (data) series go last so that they are drawn on top.
    let data_last = lines
        .iter()
        .filter(|s| s.color != DATA_COLOR)
        .chain(lines.iter().filter(|s| s.color == DATA_COLOR));
    for s in data_last {
        let pts = finite_points(&s.series.x, &s.series.y);
        if s.dots {
            pe(chart.draw_series(
                pts.into_iter()
                    .map(|p| Circle::new(p, 2, s.color.mix(0.35).filled())),
            ))?;
            continue;
        }
        // Sparse series (parameter sweeps) get point markers and a thicker line.
        let sparse = pts.len() <= 40;
        let width = if sparse { s.width.max(2) } else { s.width };
        let markers: Vec<(f64, f64)> = if sparse { pts.clone() } else { Vec::new() };
        pe(chart.draw_series(LineSeries::new(pts, s.color.stroke_width(width))))?;
        pe(chart.draw_series(
            markers
                .into_iter()
                .map(|p| Circle::new(p, 4, s.color.filled())),
        ))?;
    }
    if let Some((v, _, true)) = hline {
        dashed_hline(&mut chart, (x0, x1), v, REF_COLOR.stroke_width(2))?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Numbers
// ------------------------------------------------------------------------------------------

/// A dashed horizontal line at `y` across `x`.
fn dashed_hline<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    x: (f64, f64),
    y: f64,
    style: ShapeStyle,
) -> Result<()> {
    let dash = (x.1 - x.0) / 150.0;
    let segments = (0..150).step_by(2).map(|k| {
        let a = x.0 + f64::from(k) * dash;
        PathElement::new(vec![(a, y), (a + dash, y)], style)
    });
    pe(chart.draw_series(segments))?;
    Ok(())
}

/// Errors unless every series is non-empty with matching x and y lengths and a finite point.
fn check_series(series: &[Series]) -> Result<()> {
    if series.is_empty() {
        bail!("nothing to plot: no series");
    }
    for s in series {
        if s.x.is_empty() || s.x.len() != s.y.len() {
            bail!(
                "series '{}' is empty or its x and y differ in length ({} vs {})",
                s.label,
                s.x.len(),
                s.y.len()
            );
        }
        if finite_points(&s.x, &s.y).is_empty() {
            bail!("series '{}' has no finite point", s.label);
        }
    }
    Ok(())
}

/// The (x, y) pairs with both coordinates finite.
fn finite_points(x: &[f64], y: &[f64]) -> Vec<(f64, f64)> {
    x.iter()
        .copied()
        .zip(y.iter().copied())
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect()
}

/// (min, max) of the finite values, padded by 4 % (or by 5 % of the magnitude when flat).
fn padded_range<'a>(values: impl Iterator<Item = &'a f64>) -> Result<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        bail!("nothing to plot: no finite values");
    }
    let pad = if hi > lo {
        0.04 * (hi - lo)
    } else {
        lo.abs().max(1.0) * 0.05
    };
    Ok((lo - pad, hi + pad))
}

/// Bin edges from strictly increasing centres (midpoints, half a bin beyond each end).
fn bin_edges(c: &[f64]) -> Result<Vec<f64>> {
    if c.iter().any(|v| !v.is_finite()) || c.windows(2).any(|w| w[1] <= w[0]) {
        bail!("bin centres must be finite and strictly increasing");
    }
    let n = c.len();
    let mut e = Vec::with_capacity(n + 1);
    e.push(c[0] - 0.5 * (c[1] - c[0]));
    e.extend(c.windows(2).map(|w| 0.5 * (w[0] + w[1])));
    e.push(c[n - 1] + 0.5 * (c[n - 1] - c[n - 2]));
    Ok(e)
}

/// A tick label: `span` (the axis length) decides when a value counts as zero.
fn format_tick(v: f64, span: f64) -> String {
    if v.abs() <= span.abs() * 1e-9 {
        return "0".to_owned();
    }
    format_value(v)
}

/// A short label for a number: k, M, B, T suffixes for large values, exponents for tiny ones.
fn format_value(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if a == 0.0 {
        "0".to_owned()
    } else if !(1e-3..1e15).contains(&a) {
        let s = format!("{v:.3e}");
        match s.split_once('e') {
            Some((m, e)) => format!("{}e{e}", trim(m.to_owned())),
            None => s,
        }
    } else if a >= 1e4 {
        let (div, suffix) = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")]
            .into_iter()
            .find(|(d, _)| a >= *d)
            .unwrap_or((1.0, ""));
        format!("{}{suffix}", trim(format!("{:.3}", v / div)))
    } else {
        trim(format!("{v:.4}"))
    }
}

// ------------------------------------------------------------------------------------------
// Rendering
// ------------------------------------------------------------------------------------------

/// Converts a plotters error (any backend) into anyhow.
fn pe<T, E: std::fmt::Debug>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| anyhow!("drawing failed: {e:?}"))
}

/// Registers the embedded font with plotters (for text layout) once.
fn init_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        bail!("the embedded font could not be loaded")
    }
}

/// The backends a figure is drawn on: SVG text, or an RGB buffer with our own text rasteriser.
enum Backend<'a> {
    /// SVG document (text stays text).
    Svg(SVGBackend<'a>),
    /// Bitmap, with the embedded font for text.
    Png(Box<(BitMapBackend<'a>, FontRef<'static>)>),
}

/// The drawing area of either backend.
type Area<'a> = DrawingArea<Backend<'a>, Shift>;

/// A backend error, as text.
#[derive(Debug)]
struct BackendError(String);

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BackendError {}

/// Maps a backend-specific error kind to ours.
fn bk<E: std::error::Error + Send + Sync>(
    r: std::result::Result<(), DrawingErrorKind<E>>,
) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
    r.map_err(|e| match e {
        DrawingErrorKind::DrawingError(e) => {
            DrawingErrorKind::DrawingError(BackendError(e.to_string()))
        }
        DrawingErrorKind::FontError(f) => DrawingErrorKind::FontError(f),
    })
}

/// Dispatches one backend call to the active backend.
macro_rules! both {
    ($self:ident, $b:ident => $call:expr) => {
        match $self {
            Backend::Svg($b) => bk($call),
            Backend::Png(png) => {
                let $b = &mut png.0;
                bk($call)
            }
        }
    };
}

impl DrawingBackend for Backend<'_> {
    type ErrorType = BackendError;

    fn get_size(&self) -> (u32, u32) {
        match self {
            Backend::Svg(b) => b.get_size(),
            Backend::Png(png) => png.0.get_size(),
        }
    }
    fn ensure_prepared(&mut self) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
        both!(self, b => b.ensure_prepared())
    }
    fn present(&mut self) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
        both!(self, b => b.present())
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
        both!(self, b => b.draw_pixel(point, color))
    }
    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
        both!(self, b => b.draw_line(from, to, style))
    }
    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
        both!(self, b => b.draw_rect(upper_left, bottom_right, style, fill))
    }
    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
        both!(self, b => b.draw_path(path, style))
    }
    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
        both!(self, b => b.draw_circle(center, radius, style, fill))
    }
    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
        both!(self, b => b.fill_polygon(vert, style))
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
        both!(self, b => b.blit_bitmap(pos, size, src))
    }
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
        match self {
            Backend::Svg(b) => bk(b.draw_text(text, style, pos)),
            Backend::Png(png) => {
                let (b, font) = &mut **png;
                raster_text(b, font, text, style, pos)
            }
        }
    }
}

/// Draws `text` on a bitmap with ab_glyph, honouring glyph bearings, anchor and rotation.
fn raster_text<T: BackendTextStyle>(
    bm: &mut BitMapBackend<'_>,
    font: &FontRef<'static>,
    text: &str,
    style: &T,
    pos: BackendCoord,
) -> std::result::Result<(), DrawingErrorKind<BackendError>> {
    let color = style.color();
    if color.alpha == 0.0 {
        return Ok(());
    }
    let scaled = font.as_scaled(PxScale::from(style.size() as f32));
    let ascent = scaled.ascent();
    let height = ascent - scaled.descent();
    let mut caret = 0.0f32;
    let mut prev = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            caret += scaled.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(scaled.scale(), point(caret, ascent)));
        caret += scaled.h_advance(id);
        prev = Some(id);
    }
    let anchor = style.anchor();
    let dx = match anchor.h_pos {
        HPos::Left => 0.0,
        HPos::Right => -caret,
        HPos::Center => -caret / 2.0,
    }
    .round() as i32;
    let dy = match anchor.v_pos {
        VPos::Top => 0.0,
        VPos::Center => -height / 2.0,
        VPos::Bottom => -height,
    }
    .round() as i32;
    let trans = style.transform();
    let (w, h) = bm.get_size();
    for g in glyphs {
        let Some(outline) = font.outline_glyph(g) else {
            continue;
        };
        let mut result = Ok(());
        let b = outline.px_bounds();
        let (bx, by) = (b.min.x as i32 + dx, b.min.y as i32 + dy);
        outline.draw(|x, y, coverage| {
            if result.is_err() || coverage <= 0.0 {
                return;
            }
            let (tx, ty) = trans.transform(bx + x as i32, by + y as i32);
            let (px, py) = (pos.0 + tx, pos.1 + ty);
            if px >= 0 && py >= 0 && px < w as i32 && py < h as i32 {
                let alpha = color.alpha * f64::from(coverage.min(1.0));
                result = bk(bm.draw_pixel(
                    (px, py),
                    BackendColor {
                        alpha,
                        rgb: color.rgb,
                    },
                ));
            }
        });
        result?;
    }
    Ok(())
}

/// Renders `draw` as SVG and as PNG at `w`×`h` pixels.
fn render<D>(w: u32, h: u32, draw: D) -> Result<Figure>
where
    D: Fn(&Area<'_>) -> Result<()>,
{
    init_font()?;
    let font = FontRef::try_from_slice(FONT).map_err(|e| anyhow!("embedded font: {e}"))?;
    let mut svg = String::new();
    {
        let root = Backend::Svg(SVGBackend::with_string(&mut svg, (w, h))).into_drawing_area();
        pe(root.fill(&WHITE))?;
        draw(&root)?;
        pe(root.present())?;
    }
    let len = usize::try_from(u64::from(w) * u64::from(h) * 3)?;
    let mut rgb = vec![0u8; len];
    {
        let root = Backend::Png(Box::new((
            BitMapBackend::with_buffer(&mut rgb, (w, h)),
            font,
        )))
        .into_drawing_area();
        pe(root.fill(&WHITE))?;
        draw(&root)?;
        pe(root.present())?;
    }
    Ok(Figure {
        svg,
        png: encode_png(&rgb, w, h)?,
    })
}

/// Encodes an 8-bit RGB buffer as PNG.
fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Default);
        enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(label: &str, n: usize, k: f64) -> Series {
        Series {
            label: label.into(),
            x: (0..n).map(|i| i as f64).collect(),
            y: (0..n).map(|i| (i as f64 * k).sin()).collect(),
        }
    }

    /// (width, height) from the IHDR chunk, after checking the PNG signature.
    fn png_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&png[12..16], b"IHDR", "first chunk is IHDR");
        let w = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        let h = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
        (w, h)
    }

    fn panel(label: &str) -> DensityPanel {
        let c: Vec<f64> = (0..20).map(|i| -2.0 + 0.2 * i as f64 + 0.1).collect();
        DensityPanel {
            label: label.into(),
            empirical: c.iter().map(|x| (-x * x).exp() * 0.6).collect(),
            stationary: c.iter().map(|x| (-x * x / 1.1).exp() * 0.55).collect(),
            bin_centers: c,
        }
    }

    #[test]
    fn line_chart_renders_title_legend_and_size() {
        let s = [wave("alpha", 30, 0.2), wave("beta", 30, 0.3)];
        let f = line_chart("A test chart", "x (days)", "y ($)", &s, Some((0.5, "half"))).unwrap();
        for text in ["A test chart", "alpha", "beta", "half", "x (days)", "y ($)"] {
            assert!(f.svg.contains(text), "SVG lacks {text}");
        }
        assert_eq!(png_size(&f.png), (1000, 600));
        let again = line_chart("A test chart", "x (days)", "y ($)", &s, Some((0.5, "half")));
        assert_eq!(f, again.unwrap(), "rendering is deterministic");
    }

    #[test]
    fn figure1_renders() {
        let days: Vec<f64> = (0..50).map(f64::from).collect();
        let r = [wave("quadratic", 50, 0.3), wave("q = 3/2", 50, 0.31)];
        let f = figure1(&days, &r, 0.0723).unwrap();
        for text in ["Figure 1", "quadratic", "q = 3/2", "frictionless", "0.0723"] {
            assert!(f.svg.contains(text), "SVG lacks {text}");
        }
        assert_eq!(png_size(&f.png), (1000, 600));
        assert_eq!(f, figure1(&days, &r, 0.0723).unwrap());
    }

    #[test]
    fn figure2_renders_one_panel_per_model() {
        let p = [panel("proportional"), panel("quadratic"), panel("q = 3/2")];
        let f = figure2(&p).unwrap();
        for text in [
            "Figure 2",
            "proportional",
            "quadratic",
            "q = 3/2",
            "stationary density",
        ] {
            assert!(f.svg.contains(text), "SVG lacks {text}");
        }
        assert_eq!(png_size(&f.png), (1000, 2 * 340 + 100));
        assert_eq!(f, figure2(&p).unwrap());
        assert_eq!(png_size(&figure2(&p[..1]).unwrap().png), (1000, 440));
    }

    #[test]
    fn figure3_renders_both_panels() {
        let t = [wave("model q = 2", 60, 0.1), wave("model q = 3/2", 60, 0.2)];
        let data = wave("S&P 500 volume × 0.5", 60, 0.05);
        let acf = [
            wave("model q = 2", 11, 0.3),
            wave("S&P 500 volume", 11, 0.1),
        ];
        let f = figure3(&t, &data, &acf).unwrap();
        for text in [
            "Figure 3",
            "(a) daily turnover",
            "model q = 3/2",
            "S&amp;P 500 volume",
        ] {
            assert!(f.svg.contains(text), "SVG lacks {text}");
        }
        assert_eq!(png_size(&f.png), (1000, 900));
        assert_eq!(f, figure3(&t, &data, &acf).unwrap());
    }

    #[test]
    fn empty_or_degenerate_inputs_are_errors() {
        let empty = Series {
            label: "a".into(),
            x: vec![],
            y: vec![],
        };
        let ragged = Series {
            label: "b".into(),
            x: vec![1.0, 2.0],
            y: vec![1.0],
        };
        let nan = Series {
            label: "c".into(),
            x: vec![1.0],
            y: vec![f64::NAN],
        };
        for bad in [&empty, &ragged, &nan] {
            assert!(line_chart("t", "x", "y", std::slice::from_ref(bad), None).is_err());
            assert!(figure1(&[0.0], std::slice::from_ref(bad), 0.07).is_err());
            assert!(figure3(&[wave("m", 3, 1.0)], bad, &[wave("m", 3, 1.0)]).is_err());
        }
        assert!(line_chart("t", "x", "y", &[], None).is_err());
        assert!(figure1(&[], &[wave("m", 3, 1.0)], 0.07).is_err());
        assert!(figure1(&[0.0], &[wave("m", 3, 1.0)], f64::NAN).is_err());
        assert!(figure2(&[]).is_err());
        let mut short = panel("p");
        short.stationary.pop();
        assert!(figure2(&[short]).is_err());
        let mut unsorted = panel("p");
        unsorted.bin_centers.swap(0, 1);
        assert!(figure2(&[unsorted]).is_err());
        assert!(figure3(&[], &wave("d", 3, 1.0), &[wave("m", 3, 1.0)]).is_err());
        assert!(figure3(&[wave("m", 3, 1.0)], &wave("d", 3, 1.0), &[]).is_err());
    }

    #[test]
    fn flat_and_single_point_series_still_render() {
        let flat = Series {
            label: "flat".into(),
            x: vec![0.0, 1.0, 2.0],
            y: vec![3.0; 3],
        };
        let one = Series {
            label: "one".into(),
            x: vec![5.0],
            y: vec![1.0],
        };
        assert!(line_chart("t", "x", "y", &[flat, one], None).is_ok());
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(format_value(0.0723), "0.0723");
        assert_eq!(format_value(2_000_000.0), "2M");
        assert_eq!(format_value(12_500.0), "12.5k");
        assert_eq!(format_value(-0.00012), "-1.2e-4");
        assert_eq!(format_value(500.0), "500");
        assert_eq!(format_tick(1e-17, 1.0), "0");
    }

    #[test]
    fn data_keeps_its_colour_across_panels() {
        let a = [wave("model q = 2", 3, 1.0)];
        let known = [
            ("model q = 2", PALETTE[0]),
            ("S&P 500 volume × 0.5", DATA_COLOR),
        ];
        let acf = [
            wave("S&P 500 volume", 3, 1.0),
            wave("model q = 2", 3, 1.0),
            wave("model q = 2.5", 3, 1.0),
        ];
        let s = styled(&acf, &known);
        assert_eq!((s[0].color, s[1].color), (DATA_COLOR, PALETTE[0]));
        assert_eq!(
            s[2].color, PALETTE[0],
            "unknown labels take palette colours in order"
        );
        assert_eq!(styled(&a, &[])[0].color, PALETTE[0]);
    }
}

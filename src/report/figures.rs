//! Figures drawn with plotters from plain data (no engine types): a generic line chart and the
//! GMS Figures 1–3. Every figure is rendered twice from the same code, as SVG text and as a PNG
//! (bitmap backend, text drawn with the embedded DejaVu Sans font), deterministically.

use anyhow::{Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::Once;

/// One labelled line.
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
    /// Bin centres.
    pub bin_centers: Vec<f64>,
    /// Empirical density per bin.
    pub empirical: Vec<f64>,
    /// Stationary density averaged over each bin.
    pub stationary: Vec<f64>,
}

/// A rendered figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// SVG document.
    pub svg: String,
    /// PNG bytes.
    pub png: Vec<u8>,
}

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

fn init_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is embedded and valid; a failure would only lose text in PNGs.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Converts a plotters error (any backend) into anyhow.
fn pe<T, E: std::fmt::Debug>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| anyhow!("drawing failed: {e:?}"))
}

/// Renders `draw` on an SVG and a bitmap backend of the same size.
macro_rules! render {
    ($w:expr, $h:expr, |$root:ident| $body:expr) => {{
        init_font();
        let (w, h): (u32, u32) = ($w, $h);
        let mut svg = String::new();
        {
            let $root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            pe($root.fill(&WHITE))?;
            $body?;
            pe($root.present())?;
        }
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        {
            let $root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            pe($root.fill(&WHITE))?;
            $body?;
            pe($root.present())?;
        }
        Ok(Figure {
            svg,
            png: encode_png(&rgb, w, h)?,
        })
    }};
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

fn check(series: &[Series]) -> Result<()> {
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
    }
    Ok(())
}

/// (min, max) of the finite values, padded by 5 % (or ±1 when flat).
fn range<'a>(values: impl Iterator<Item = &'a f64>) -> Result<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        bail!("nothing to plot: no finite values");
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        lo.abs().max(1.0) * 0.05
    };
    Ok((lo - pad, hi + pad))
}

/// Lines on one set of axes, with a legend and an optional labelled horizontal line.
fn lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    xl: &str,
    yl: &str,
    series: &[Series],
    hline: Option<(f64, &str)>,
) -> Result<()> {
    let (x0, x1) = range(series.iter().flat_map(|s| s.x.iter()))?;
    let extra = hline.map(|h| h.0);
    let (y0, y1) = range(series.iter().flat_map(|s| s.y.iter()).chain(extra.iter()))?;
    let mut chart = pe(ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1))?;
    pe(chart
        .configure_mesh()
        .x_desc(xl)
        .y_desc(yl)
        .label_style(("sans-serif", 13))
        .y_label_formatter(&|v| format_tick(*v))
        .draw())?;
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        let pts: Vec<(f64, f64)> =
            s.x.iter()
                .copied()
                .zip(s.y.iter().copied())
                .filter(|(_, y)| y.is_finite())
                .collect();
        pe(chart.draw_series(LineSeries::new(pts, c.stroke_width(1))))?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    if let Some((v, label)) = hline {
        pe(chart.draw_series(LineSeries::new(
            vec![(x0, v), (x1, v)],
            BLACK.stroke_width(2),
        )))?
        .label(label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
    }
    pe(chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw())?;
    Ok(())
}

/// Short tick labels for very large or small numbers.
fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

/// A generic line chart (sweep plots in reports).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    hline: Option<(f64, &str)>,
) -> Result<Figure> {
    check(series)?;
    render!(900, 500, |root| lines(
        &root, title, x_label, y_label, series, hline
    ))
}

/// Figure 1: expected-return paths μ_t per cost model against the frictionless drift μ̄.
pub fn figure1(days: &[f64], returns: &[Series], mu_bar: f64) -> Result<Figure> {
    check(returns)?;
    if days.is_empty() {
        bail!("Figure 1: no days");
    }
    render!(1100, 600, |root| lines(
        &root,
        "Figure 1: equilibrium expected returns on one Brownian path",
        "trading day",
        "expected return μ_t ($/share/day)",
        returns,
        Some((mu_bar, "frictionless μ̄"))
    ))
}

/// Figure 2: one panel per model, empirical density (bars) against the stationary density.
pub fn figure2(panels: &[DensityPanel]) -> Result<Figure> {
    if panels.is_empty() {
        bail!("Figure 2: no panels");
    }
    for p in panels {
        if p.bin_centers.len() < 2
            || p.empirical.len() != p.bin_centers.len()
            || p.stationary.len() != p.bin_centers.len()
        {
            bail!(
                "Figure 2: panel '{}' needs ≥ 2 bins with matching densities",
                p.label
            );
        }
    }
    let cols = panels.len().min(2);
    let rows = panels.len().div_ceil(cols);
    render!(1100, 380 * rows as u32 + 40, |root| {
        let (top, body) = root.split_vertically(40);
        pe(top.titled(
            "Figure 2: empirical vs stationary density of the state X",
            ("sans-serif", 20),
        ))?;
        let areas = body.split_evenly((rows, cols));
        for (i, (p, area)) in panels.iter().zip(areas.iter()).enumerate() {
            let w = p.bin_centers[1] - p.bin_centers[0];
            let (x0, x1) = (
                p.bin_centers[0] - w,
                p.bin_centers[p.bin_centers.len() - 1] + w,
            );
            let (_, y1) = range(p.empirical.iter().chain(p.stationary.iter()))?;
            let mut chart = pe(ChartBuilder::on(area)
                .caption(p.label.as_str(), ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, 0.0..y1))?;
            pe(chart
                .configure_mesh()
                .x_desc("X (shares)")
                .y_desc("density")
                .label_style(("sans-serif", 12))
                .x_label_formatter(&|v| format_tick(*v))
                .y_label_formatter(&|v| format_tick(*v))
                .draw())?;
            let c = color(i);
            pe(
                chart.draw_series(p.bin_centers.iter().zip(&p.empirical).map(|(&x, &d)| {
                    Rectangle::new([(x - w / 2.0, 0.0), (x + w / 2.0, d)], c.mix(0.35).filled())
                })),
            )?
            .label("simulated")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 18, y + 5)], c.mix(0.35).filled())
            });
            pe(chart.draw_series(LineSeries::new(
                p.bin_centers
                    .iter()
                    .copied()
                    .zip(p.stationary.iter().copied()),
                BLACK.stroke_width(2),
            )))?
            .label("stationary")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
            pe(chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw())?;
        }
        Ok::<(), anyhow::Error>(())
    })
}

/// Figure 3: (a) simulated daily turnover of some models against the historical volume;
/// (b) the autocorrelation functions of the same series.
pub fn figure3(turnover: &[Series], data: &Series, acf: &[Series]) -> Result<Figure> {
    check(turnover)?;
    check(std::slice::from_ref(data))?;
    check(acf)?;
    let mut all: Vec<Series> = vec![data.clone()];
    all.extend(turnover.iter().cloned());
    render!(1100, 900, |root| {
        let (a, b) = root.split_vertically(540);
        lines(
            &a,
            "Figure 3a: daily share turnover, model vs S&P 500 volume",
            "trading day",
            "shares/day",
            &all,
            None,
        )?;
        lines(
            &b,
            "Figure 3b: autocorrelation of daily turnover",
            "lag (days)",
            "ACF",
            acf,
            Some((0.0, "zero")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(label: &str, n: usize, k: f64) -> Series {
        Series {
            label: label.into(),
            x: (0..n).map(|i| i as f64).collect(),
            y: (0..n).map(|i| (i as f64 * k).sin()).collect(),
        }
    }

    fn png_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let w = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        let h = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
        (w, h)
    }

    #[test]
    fn figures_render_deterministically_as_svg_and_png() {
        let a = figure1(
            &[0.0, 1.0, 2.0],
            &[s("quadratic", 3, 0.3), s("q=1.5", 3, 0.5)],
            0.07,
        )
        .unwrap();
        assert!(
            a.svg.contains("Figure 1")
                && a.svg.contains("quadratic")
                && a.svg.contains("frictionless")
        );
        assert_eq!(png_size(&a.png), (1100, 600));
        assert_eq!(
            a,
            figure1(
                &[0.0, 1.0, 2.0],
                &[s("quadratic", 3, 0.3), s("q=1.5", 3, 0.5)],
                0.07
            )
            .unwrap()
        );
        let panel = DensityPanel {
            label: "q=2".into(),
            bin_centers: vec![-1.0, 0.0, 1.0],
            empirical: vec![0.2, 0.5, 0.2],
            stationary: vec![0.25, 0.4, 0.25],
        };
        let b = figure2(&[panel.clone(), panel]).unwrap();
        assert!(b.svg.contains("stationary"));
        assert_eq!(png_size(&b.png), (1100, 420));
        let c = figure3(
            &[s("model q=2", 50, 0.1)],
            &s("S&P 500 volume", 50, 0.2),
            &[s("model q=2", 10, 0.3)],
        )
        .unwrap();
        assert!(
            c.svg.contains("Figure 3a") && c.svg.contains("S&amp;P 500 volume"),
            "{}",
            &c.svg[..200]
        );
        assert_eq!(png_size(&c.png), (1100, 900));
    }

    #[test]
    fn empty_inputs_are_errors() {
        assert!(line_chart("t", "x", "y", &[], None).is_err());
        assert!(
            line_chart(
                "t",
                "x",
                "y",
                &[Series {
                    label: "a".into(),
                    x: vec![],
                    y: vec![]
                }],
                None
            )
            .is_err()
        );
        assert!(figure2(&[]).is_err());
    }
}

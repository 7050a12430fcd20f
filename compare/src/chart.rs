//! The `--svg` chart: prover time, verifier time and proof size of every row as a three-panel
//! grouped bar chart (one group per activation, one bar per lowering; log scales), drawn with
//! plotters' SVG backend.
//!
//! Text needs no fonts: without plotters' `ttf` feature the SVG backend writes every label as
//! an SVG `<text>` element for the viewer to render, and lays it out with a fixed size estimate.

use crate::{CompareError, Comparison, Row};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// The chart's width in pixels.
const WIDTH: u32 = 1240;
/// Height of the title and legend above the panels.
const HEADER: u32 = 80;
/// Height of a panel without the names under it: caption, plot, margins.
const PANEL: u32 = 350;
/// Longest activation name shown under a group, in characters (longer ones are cut).
const MAX_LABEL: usize = 40;
/// Bar colours, one per lowering.
const COLORS: [RGBColor; 2] = [RGBColor(0x3b, 0x6e, 0xa5), RGBColor(0xe0, 0x7b, 0x39)];
/// Grid lines at each decade.
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
/// Secondary text (the subtitle).
const GREY: RGBColor = RGBColor(0x44, 0x44, 0x44);
/// "n/a" for a row without the figure.
const MISSING: RGBColor = RGBColor(0xaa, 0x00, 0x00);

/// One panel: its title, its unit and the figure of a row it shows.
type Panel = (&'static str, &'static str, fn(&Row) -> Option<f64>);

/// The three panels, left to right.
const PANELS: [Panel; 3] = [
    ("prover time", "ms", |r| r.prove_ms),
    ("verifier time", "ms", |r| r.verify_ms),
    ("proof size", "bytes", |r| r.proof_bytes.map(|b| b as f64)),
];

/// The drawing error of the SVG backend (which writes to a string).
type DrawError = DrawingAreaErrorKind<std::io::Error>;

/// A three-panel grouped bar chart (prover time, verifier time, proof size; log scales), as an
/// SVG document.
pub fn render_svg(cmp: &Comparison) -> Result<String, CompareError> {
    let groups = Groups::of(cmp);
    let mut body = String::new();
    {
        let size = (WIDTH, HEADER + PANEL + groups.names_height());
        let root = SVGBackend::with_string(&mut body, size).into_drawing_area();
        draw(&root, cmp, &groups)
            .and_then(|()| root.present())
            .map_err(|e| CompareError::Chart(e.to_string()))?;
    }
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"
    ))
}

/// A sans-serif font of `px` pixels in the SVG (plotters writes the size divided by 1.24; the
/// sizes used here divide back exactly, e.g. `font-size="14"`).
fn font(px: f64, style: FontStyle) -> TextStyle<'static> {
    FontDesc::new(FontFamily::SansSerif, px * 1.24, style).into()
}

/// A linear axis with the ticks given: the x axis (no ticks; groups at 0, 1, ...) and the
/// y axis in log10 units (ticks at whole decades).
#[derive(Clone, Debug)]
struct Axis {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let Range { start, end } = self.range;
        let frac = (value - start) / (end - start);
        // Float-to-int casts saturate (NaN gives 0): no overflow whatever the value.
        limit
            .0
            .saturating_add((frac * (f64::from(limit.1) - f64::from(limit.0))).round() as i32)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // The ticks are the bold grid lines; there are no light ones.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Text fit for the chart: control characters (which XML cannot carry) dropped. Escaping is
/// the backend's.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// A value in a few characters: `1.2M`, `35k`, `4.5k`, `120`, `3.4`, `0.25`.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A figure that can stand on a log scale.
fn plottable(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v > 0.0)
}

/// The bar groups: the activations in row order with their labels, and the lowerings.
struct Groups<'a> {
    /// Activation names, in row order.
    acts: Vec<&'a str>,
    /// The label under each activation's group: its name and field, cleaned and cut.
    labels: Vec<String>,
    /// Lowerings, in row order: one bar (and colour) each.
    lows: Vec<&'static str>,
}

impl<'a> Groups<'a> {
    fn of(cmp: &'a Comparison) -> Self {
        let mut acts: Vec<&str> = Vec::new();
        let mut lows: Vec<&'static str> = Vec::new();
        for r in &cmp.rows {
            if !acts.contains(&r.activation.as_str()) {
                acts.push(&r.activation);
            }
            if !lows.contains(&r.lowering) {
                lows.push(r.lowering);
            }
        }
        let labels = acts
            .iter()
            .map(|act| {
                let field = cmp
                    .rows
                    .iter()
                    .find(|r| r.activation == *act)
                    .and_then(|r| r.field.as_deref());
                let label = match field {
                    Some(f) => clean(&format!("{act} [{f}]")),
                    None => clean(act),
                };
                if label.chars().count() > MAX_LABEL {
                    label.chars().take(MAX_LABEL - 1).chain(['…']).collect()
                } else {
                    label
                }
            })
            .collect();
        Groups { acts, labels, lows }
    }

    /// Room for the names under the panels, which read upwards: about 6 pixels a character
    /// at 11 pixels.
    fn names_height(&self) -> u32 {
        let chars = self.labels.iter().map(|l| l.chars().count()).max();
        20 + 6 * u32::try_from(chars.unwrap_or(0)).unwrap_or(0)
    }
}

fn draw(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    cmp: &Comparison,
    groups: &Groups<'_>,
) -> Result<(), DrawError> {
    let lows = &groups.lows;
    root.fill(&WHITE)?;
    let center = Pos::new(HPos::Center, VPos::Top);
    let width = i32::try_from(WIDTH).unwrap_or(i32::MAX);
    let runs = if cmp.repeat == 1 { "" } else { "s" };
    let title = format!(
        "verinfer compare: {} — batch {}, median of {} run{runs} (log scales)",
        cmp.arch, cmp.batch, cmp.repeat
    );
    root.draw_text(
        &clean(&title),
        &font(17.0, FontStyle::Bold).pos(center),
        (width / 2, 10),
    )?;
    let subtitle = format!(
        "{} · {} threads · input/weight/coef bits {}/{}/{} · prover time includes the witness",
        cmp.machine,
        cmp.threads,
        cmp.params.input_bits,
        cmp.params.weight_bits,
        cmp.params.coef_bits
    );
    root.draw_text(
        &clean(&subtitle),
        &font(11.0, FontStyle::Normal).color(&GREY).pos(center),
        (width / 2, 36),
    )?;
    // Legend: one colour per lowering.
    let step = 170;
    let first = width / 2 - step / 2 * i32::try_from(lows.len()).unwrap_or(0);
    for (k, low) in (0i32..).zip(lows) {
        let x = first + step * k;
        let color = COLORS[k.unsigned_abs() as usize % COLORS.len()];
        root.draw(&Rectangle::new([(x, 56), (x + 12, 68)], color.filled()))?;
        root.draw_text(
            &clean(&format!("{low} lowering")),
            &font(12.0, FontStyle::Normal).pos(Pos::new(HPos::Left, VPos::Center)),
            (x + 16, 62),
        )?;
    }
    let panels = root
        .margin(HEADER, 0, 10, 20)
        .split_evenly((1, PANELS.len()));
    for (area, panel) in panels.iter().zip(PANELS) {
        draw_panel(root, area, cmp, groups, panel)?;
    }
    Ok(())
}

/// One panel: decade grid and labels, a bar (or "n/a") per activation and lowering with its
/// value above it, and the activation names (with their field) under the axis.
fn draw_panel(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    cmp: &Comparison,
    groups: &Groups<'_>,
    (title, unit, get): Panel,
) -> Result<(), DrawError> {
    let Groups { acts, labels, lows } = groups;
    let vals: Vec<f64> = cmp.rows.iter().filter_map(|r| plottable(get(r))).collect();
    // Whole decades around the values, in log10 units.
    let (lo, mut hi) = match (
        vals.iter().copied().reduce(f64::min),
        vals.iter().copied().reduce(f64::max),
    ) {
        (Some(min), Some(max)) => (min.log10().floor(), max.log10().ceil()),
        _ => (0.0, 1.0),
    };
    if hi <= lo {
        hi = lo + 1.0;
    }
    let decades: Vec<f64> = (0..)
        .map(|d| lo + f64::from(d))
        .take_while(|d| *d <= hi)
        .collect();
    let count = acts.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title} ({unit})"), font(14.0, FontStyle::Bold))
        .margin_top(10)
        .margin_right(10)
        .x_label_area_size(groups.names_height())
        .y_label_area_size(50)
        .build_cartesian_2d(
            Axis {
                range: 0.0..count,
                ticks: Vec::new(),
            },
            Axis {
                range: lo..hi,
                ticks: decades,
            },
        )?;
    let decade_label = |d: &f64| short(10f64.powf(*d));
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(0)
        .bold_line_style(GRID)
        .axis_style(RGBColor(0x33, 0x33, 0x33))
        .y_label_style(font(10.0, FontStyle::Normal))
        .y_label_formatter(&decade_label)
        .draw()?;

    // Bars: 80% of each group, at most 40 pixels each.
    let (plot_w, _) = chart.plotting_area().dim_in_pixel();
    let group_px = f64::from(plot_w) / count;
    let bar = (0.8 / lows.len().max(1) as f64).min(40.0 / group_px.max(1.0));
    // One pixel between neighbouring bars.
    let gap = 1.0 / group_px.max(1.0);
    let value_style = font(9.0, FontStyle::Normal).pos(Pos::new(HPos::Center, VPos::Bottom));
    let missing_style = value_style.color(&MISSING);
    for (i, (act, label)) in acts.iter().zip(labels).enumerate() {
        let x0 = i as f64 + (1.0 - bar * lows.len() as f64) / 2.0;
        for (k, low) in lows.iter().enumerate() {
            let bx = x0 + k as f64 * bar;
            let mid = bx + bar / 2.0;
            let row = cmp
                .rows
                .iter()
                .find(|r| r.activation == *act && r.lowering == *low);
            match plottable(row.and_then(get)) {
                Some(v) => {
                    let top = v.log10().max(lo);
                    chart.draw_series([Rectangle::new(
                        [(bx, lo), (bx + bar - gap, top)],
                        COLORS[k % COLORS.len()].filled(),
                    )])?;
                    chart.draw_series([Text::new(short(v), (mid, top), value_style.clone())])?;
                }
                None => {
                    chart.draw_series([Text::new("n/a", (mid, lo), missing_style.clone())])?;
                }
            }
        }
        // The activation's name (and field) under its group, reading upwards.
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, lo));
        root.draw_text(
            label,
            &font(11.0, FontStyle::Normal)
                .pos(Pos::new(HPos::Right, VPos::Center))
                .transform(FontTransform::Rotate270),
            (x, y + 8),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use verinfer_circuits::circuit::QuantParams;

    fn row(activation: &str, lowering: &'static str, figures: Option<(f64, f64, usize)>) -> Row {
        Row {
            activation: activation.into(),
            coefficients: [1.0, 0.0, 0.0],
            degree: Some(2),
            checkpoints: Some(0),
            lowering,
            weights: String::new(),
            field: Some("m127".into()),
            field_reason: None,
            max_bits: None,
            layers: None,
            gates: None,
            sumcheck_rounds: None,
            witness_ms: None,
            prove_ms: figures.map(|f| f.0),
            verify_ms: figures.map(|f| f.1),
            prove_over_witness: None,
            proof_bytes: figures.map(|f| f.2),
            soundness_bits: None,
            accuracy: None,
            skipped: figures.is_none().then(|| "skipped".into()),
        }
    }

    fn comparison(rows: Vec<Row>) -> Comparison {
        Comparison {
            arch: "digits <&> \u{1}".into(),
            batch: 1,
            machine: "cpu".into(),
            repeat: 3,
            command: String::new(),
            threads: 2,
            params: QuantParams::default(),
            loadavg: [None, None],
            rows,
        }
    }

    /// Filled rectangles of one colour: the bars of one lowering.
    fn bars(svg: &str, color: RGBColor) -> usize {
        let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        svg.lines()
            .filter(|l| l.starts_with("<rect") && l.contains(&fill))
            .count()
    }

    #[test]
    fn bars_labels_and_missing_figures() {
        let cmp = comparison(vec![
            row("square", "structured", Some((12.5, 0.8, 30_000))),
            row("square", "gates", Some((250.0, 4.0, 90_000))),
            row("relu_lsq", "structured", Some((40.0, 1.5, 31_000))),
            row("relu_lsq", "gates", None),
        ]);
        let svg = render_svg(&cmp).unwrap();
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg") && svg.trim_end().ends_with("</svg>")
        );
        // One legend square per lowering, one bar per measured row and panel.
        assert_eq!(bars(&svg, COLORS[0]), 1 + 2 * 3);
        assert_eq!(bars(&svg, COLORS[1]), 1 + 3);
        // The backend writes each text on a line of its own.
        let texts: Vec<&str> = svg.lines().collect();
        for text in [
            "prover time (ms)",
            "verifier time (ms)",
            "proof size (bytes)",
            "structured lowering",
            "gates lowering",
            "square [m127]",
            "relu_lsq [m127]",
            "12",
            "250",
            "0.80",
            "90k",
            "verinfer compare: digits &lt;&amp;&gt;  — batch 1, median of 3 runs (log scales)",
        ] {
            assert!(texts.contains(&text), "{text} missing");
        }
        assert_eq!(
            texts.iter().filter(|t| **t == "n/a").count(),
            3,
            "one per panel"
        );
        assert!(!svg.contains('\u{1}'));
        assert!(!svg.contains("00000000"), "font sizes are whole numbers");
    }

    #[test]
    fn no_rows_and_odd_figures_still_draw() {
        assert!(render_svg(&comparison(Vec::new())).is_ok());
        let svg = render_svg(&comparison(vec![row(
            "square",
            "structured",
            Some((f64::NAN, f64::INFINITY, 0)),
        )]))
        .unwrap();
        assert_eq!(svg.lines().filter(|t| *t == "n/a").count(), 3);
    }

    #[test]
    fn short_values() {
        let got: Vec<String> = [2.5e6, 35_000.0, 4_500.0, 120.0, 3.44, 0.25]
            .into_iter()
            .map(short)
            .collect();
        assert_eq!(got, ["2.5M", "35k", "4.5k", "120", "3.4", "0.25"]);
    }
}

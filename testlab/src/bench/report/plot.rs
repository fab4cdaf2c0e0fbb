//! The report's two kinds of plot, drawn by plotters into SVG strings:
//! grouped horizontal bars (a figure per category, a bar per series) and
//! empirical distributions (a step line per series of samples).
//!
//! Every series has a colour of its own, and the figure says how many marks
//! of each colour it drew, so the report's check in the browser can count
//! them in the rendered SVG (`report::CHECK_SCRIPT`).

use plotters::{coord::types::RangedCoordf64, prelude::*};

/// The series' colours, in order: the measured thing first, its baseline
/// second (grey), then the rest.
pub const COLOURS: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x8c, 0x8c, 0x8c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

impl Series {
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            values,
        }
    }
}

/// One drawn plot: the SVG, and per series its colour (as the SVG writes
/// it) and the marks of that colour drawn (data marks and the legend's).
pub struct Plot {
    pub svg: String,
    pub marks: Vec<(String, usize)>,
}

fn hex(c: &RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

fn colour(j: usize) -> RGBColor {
    COLOURS[j % COLOURS.len()]
}

fn finite_max<'a>(series: impl IntoIterator<Item = &'a Series>) -> f64 {
    series
        .into_iter()
        .flat_map(|s| s.values.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The series' names in a box at the lower right.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// Grouped horizontal bars: `categories` top to bottom, a bar per series
/// in each, against a linear axis from 0 described by `unit`.
pub fn bars(categories: &[String], series: &[Series], unit: &str) -> anyhow::Result<Plot> {
    anyhow::ensure!(
        !categories.is_empty() && !series.is_empty(),
        "a bar plot needs a category and a series"
    );
    for s in series {
        anyhow::ensure!(
            s.values.len() == categories.len(),
            "series {:?} has {} values for {} categories",
            s.name,
            s.values.len(),
            categories.len()
        );
    }
    let n = categories.len();
    let label_w = categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0) as u32
        * 7
        + 16;
    let per = 10 + 12 * series.len() as u32;
    let (w, h) = (900u32, 90 + per * n as u32 + 18 * series.len() as u32);
    let xmax = finite_max(series).max(f64::MIN_POSITIVE) * 1.08;
    let band = 0.8 / series.len() as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(label_w.min(420))
            .build_cartesian_2d(0f64..xmax, -0.5f64..(n as f64 - 0.5))?;
        let name_at = |y: &f64| {
            let i = y.round();
            if (y - i).abs() > 1e-6 || i < 0.0 || i as usize >= n {
                return String::new();
            }
            categories[n - 1 - i as usize].clone()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&name_at)
            .x_desc(unit)
            .label_style(("sans-serif", 13))
            .draw()?;
        for (j, s) in series.iter().enumerate() {
            let c = colour(j);
            // Category i is drawn at y = n - 1 - i, so the first is on top;
            // the first series is the top bar of each group.
            chart
                .draw_series(s.values.iter().enumerate().map(|(i, v)| {
                    let y1 = (n - 1 - i) as f64 + 0.4 - j as f64 * band;
                    let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
                    Rectangle::new([(0.0, y1 - band), (v, y1)], c.filled())
                }))?
                .label(s.name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        }
        legend(&mut chart)?;
        root.present()?;
    }
    Ok(Plot {
        svg,
        marks: (0..series.len())
            .map(|j| (hex(&colour(j)), categories.len() + 1))
            .collect(),
    })
}

/// Empirical distributions: per series, the share of its samples at or
/// below each value (a step line from 0 to 1), against `unit`.
pub fn distribution(series: &[Series], unit: &str) -> anyhow::Result<Plot> {
    let series: Vec<&Series> = series.iter().filter(|s| !s.values.is_empty()).collect();
    anyhow::ensure!(!series.is_empty(), "a distribution needs samples");
    let xmax = finite_max(series.iter().copied()).max(f64::MIN_POSITIVE) * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..xmax, 0f64..1.0)?;
        chart
            .configure_mesh()
            .x_desc(unit)
            .y_desc("share of samples at or below")
            .label_style(("sans-serif", 13))
            .draw()?;
        for (j, s) in series.iter().enumerate() {
            let c = colour(j);
            let mut v: Vec<f64> = s.values.iter().copied().filter(|v| v.is_finite()).collect();
            v.sort_by(f64::total_cmp);
            let n = v.len() as f64;
            let mut steps = vec![(0.0, 0.0)];
            for (i, x) in v.iter().enumerate() {
                steps.push((*x, i as f64 / n));
                steps.push((*x, (i + 1) as f64 / n));
            }
            chart
                .draw_series(LineSeries::new(steps, c.stroke_width(2)))?
                .label(format!("{} ({} samples)", s.name, v.len()))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], c.stroke_width(3)));
        }
        legend(&mut chart)?;
        root.present()?;
    }
    Ok(Plot {
        svg,
        marks: (0..series.len()).map(|j| (hex(&colour(j)), 2)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(svg: &str, colour: &str) -> usize {
        svg.matches(colour).count()
    }

    #[test]
    fn bars_draw_one_mark_per_value_and_legend_in_each_colour() {
        let cats = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let p = bars(
            &cats,
            &[
                Series::new("x", vec![1.0, 2.0, 3.0]),
                Series::new("base", vec![0.5, 0.5, f64::NAN]),
            ],
            "ns",
        )
        .unwrap();
        for (c, marks) in &p.marks {
            assert_eq!(*marks, 4);
            assert_eq!(count(&p.svg, c), 4, "{c} in {}", p.svg);
        }
        for label in ["a", "b", "c"] {
            assert!(
                p.svg.contains(&format!(">\n{label}\n</text>")),
                "{label} in {}",
                p.svg
            );
        }
    }

    #[test]
    fn bars_refuse_a_series_of_the_wrong_length() {
        let e = bars(&["a".into()], &[Series::new("x", vec![1.0, 2.0])], "ns")
            .err()
            .unwrap();
        assert!(e.to_string().contains("2 values for 1 categories"), "{e}");
    }

    #[test]
    fn a_distribution_is_one_line_per_series_from_0_to_1() {
        let p = distribution(
            &[
                Series::new("x", vec![3.0, 1.0, 2.0]),
                Series::new("empty", vec![]),
                Series::new("base", vec![1.0]),
            ],
            "ms",
        )
        .unwrap();
        assert_eq!(p.marks.len(), 2, "the empty series is left out");
        for (c, _) in &p.marks {
            assert_eq!(count(&p.svg, c), 2, "{c}");
        }
        assert!(p.svg.contains("x (3 samples)"));
    }
}

//! Charts as inline SVG (plotters' SVG backend), so the report needs no network to view.
//!
//! A chart header names `x` and `y` and optionally `series`: one line, or one bar of each
//! group, per value of that column, with a legend. An `x` of dates (a date column, or text
//! that reads `YYYY-MM-DD`) is a time axis: points sit at their day, so a missing day shows
//! as a gap rather than being squeezed out.

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;
use polars::prelude::*;

use crate::checks::Outcome;
use crate::render::table::value_text;
use crate::sql::{Agg, ChartKind, ChartSpec};
use crate::values::timestamp;

const SIZE: (u32, u32) = (760, 340);
/// Distinct colours, in the order series appear (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];
/// More series than this are drawn as the first ones and `other` (their rows combined).
const MAX_SERIES: usize = 10;
const OTHER: &str = "other";

/// What a chart draws: x labels in first-seen order (or by date), and per series a value
/// for each label it has rows for.
#[derive(Debug, PartialEq)]
pub struct Plot {
    pub labels: Vec<String>,
    /// For a time axis: each label's day (days since 1970-01-01), in label order.
    pub days: Option<Vec<i64>>,
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

/// The chart a query's header asks for, over its result. Rows sharing an `x` (and series)
/// value are combined by the spec's `agg` (so `events per day and event name` without a
/// series charts as events per day). One piece: plotters' chart is generic over its
/// coordinates and borrows the SVG buffer until it is drawn, so its steps share one scope.
pub fn svg(spec: &ChartSpec, df: &DataFrame) -> Result<String> {
    let plot = plot(spec, df)?;
    if plot.labels.is_empty() {
        bail!("no rows to chart");
    }
    let values = || plot.series.iter().flat_map(|(_, v)| v.iter().flatten().copied());
    let max = values().fold(0.0f64, f64::max);
    let min = values().fold(0.0f64, f64::min);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let n = plot.labels.len();
    let position = positions(&plot.labels, plot.days.as_deref());
    let (lo, hi) = (position[0] - 0.5, position[n - 1] + 0.5);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(lo..hi, min..top)
            .map_err(|e| anyhow!("{e}"))?;
        let label_of = |x: &f64| x_label(&plot.labels, plot.days.as_deref(), *x);
        let x_labels = x_label_count(n, plot.days.is_some());
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(x_labels)
            .x_label_formatter(&label_of)
            .y_label_formatter(&|v: &f64| if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") })
            .light_line_style(WHITE.mix(0.0))
            .x_desc(spec.x.as_str())
            .y_desc(spec.y.as_str())
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let k = plot.series.len();
        for (s, (name, values)) in plot.series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let points = values.iter().zip(&position).filter_map(|(v, x)| v.map(|v| (*x, v)));
            let drawn = match spec.kind {
                ChartKind::Line => chart.draw_series(LineSeries::new(points, color.stroke_width(2))).map_err(|e| anyhow!("{e}"))?,
                ChartKind::Bar => {
                    // Each x's slot is split among the series, side by side.
                    let width = 0.8 / k as f64;
                    let bars = points.map(|(x, v)| {
                        let left = x - 0.4 + width * s as f64;
                        Rectangle::new([(left, 0.0), (left + width * 0.9, v)], color.filled())
                    });
                    chart.draw_series(bars).map_err(|e| anyhow!("{e}"))?
                }
            };
            if spec.series.is_some() {
                drawn.label(name.as_str()).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
            }
        }
        if spec.series.is_some() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(209, 213, 219))
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    // Say what is drawn, for readers (screen readers) and tests alike.
    let names: Vec<&str> = plot.series.iter().map(|(n, _)| n.as_str()).collect();
    let desc = format!("<desc>{} series: {}</desc>", names.len(), xml_escape(&names.join(", ")));
    Ok(with_desc(out, &desc))
}

/// Reduces a result to what the chart draws.
pub fn plot(spec: &ChartSpec, df: &DataFrame) -> Result<Plot> {
    let x = df.column(&spec.x).map_err(|_| anyhow!("chart: the result has no column {:?}", spec.x))?;
    let y = df
        .column(&spec.y)
        .map_err(|_| anyhow!("chart: the result has no column {:?}", spec.y))?
        .cast(&DataType::Float64)
        .map_err(|_| anyhow!("chart: column {:?} is not numeric", spec.y))?;
    let y = y.f64()?;
    let series_column = match &spec.series {
        Some(s) => Some(df.column(s).map_err(|_| anyhow!("chart: the result has no column {s:?}"))?),
        None => None,
    };
    let labels_of = |c: &Column| -> Result<Vec<String>> { (0..df.height()).map(|i| Ok(value_text(&c.get(i)?))).collect() };
    let xs = labels_of(x)?;
    // Series in first-seen order; past MAX_SERIES the rest are `other`.
    let series_of: Vec<String> = match series_column {
        Some(c) => {
            let raw = labels_of(c)?;
            let mut seen: Vec<&str> = Vec::new();
            for s in &raw {
                if !seen.contains(&s.as_str()) {
                    seen.push(s);
                }
            }
            let keep: Vec<&str> = seen.iter().take(if seen.len() > MAX_SERIES { MAX_SERIES - 1 } else { MAX_SERIES }).copied().collect();
            raw.iter().map(|s| if keep.contains(&s.as_str()) { s.clone() } else { OTHER.to_string() }).collect()
        }
        None => vec![spec.y.clone(); df.height()],
    };
    let mut labels: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut groups: std::collections::HashMap<(usize, usize), Vec<f64>> = std::collections::HashMap::new();
    for i in 0..df.height() {
        let at = position(&mut labels, &xs[i]);
        let s = position(&mut names, &series_of[i]);
        let group = groups.entry((s, at)).or_default();
        if let Some(v) = y.get(i) {
            group.push(v);
        }
    }
    // A time axis when every x is a day.
    let days: Option<Vec<i64>> = labels.iter().map(|l| timestamp::parse_date(l).map(i64::from)).collect();
    let order: Vec<usize> = match &days {
        Some(d) => {
            let mut o: Vec<usize> = (0..labels.len()).collect();
            o.sort_by_key(|i| d[*i]);
            o
        }
        None => (0..labels.len()).collect(),
    };
    let combine = |g: &Vec<f64>| match spec.agg {
        Agg::Sum => g.iter().sum(),
        Agg::Mean if g.is_empty() => 0.0,
        Agg::Mean => g.iter().sum::<f64>() / g.len() as f64,
        Agg::Max => g.iter().cloned().reduce(f64::max).unwrap_or(0.0),
    };
    let series = names
        .iter()
        .enumerate()
        .map(|(s, name)| (name.clone(), order.iter().map(|at| groups.get(&(s, *at)).map(combine)).collect()))
        .collect();
    Ok(Plot {
        labels: order.iter().map(|i| labels[*i].clone()).collect(),
        days: days.map(|d| order.iter().map(|i| d[*i]).collect()),
        series,
    })
}

/// Where each label sits on the x axis: its day on a time axis, else its index.
fn positions(labels: &[String], days: Option<&[i64]>) -> Vec<f64> {
    match days {
        Some(days) => days.iter().map(|d| *d as f64).collect(),
        None => (0..labels.len()).map(|i| i as f64).collect(),
    }
}

/// How many x labels to ask plotters for: about eight dates, or every label (thinned by
/// `x_label`).
fn x_label_count(n: usize, time_axis: bool) -> usize {
    match time_axis {
        true => 8,
        false => (n * 4).min(240),
    }
}

/// The label at `x`: its date on a time axis; else the label of that index, every
/// `n / 8`th one so that they do not overlap.
fn x_label(labels: &[String], days: Option<&[i64]>, x: f64) -> String {
    if days.is_some() {
        return timestamp::day_of_micros(x.round() as i64 * 86_400_000_000);
    }
    let n = labels.len();
    let step = n.div_ceil(8).max(1);
    let i = x.round();
    let at = i as usize;
    if (x - i).abs() < 1e-6 && i >= 0.0 && at < n && at.is_multiple_of(step) {
        labels[at].clone()
    } else {
        String::new()
    }
}

/// A declared check's values over time (`history_svg`): per label (a day, or when the
/// whole table was measured) its value and outcome, and the thresholds as (said, value).
pub struct History<'a> {
    pub check: &'a str,
    pub labels: Vec<String>,
    pub values: Vec<Option<f64>>,
    pub outcomes: Vec<Outcome>,
    pub thresholds: Vec<(String, f64)>,
}

/// Colours of outcomes and thresholds.
const PASS: RGBColor = PALETTE[0];
const WARN: RGBColor = PALETTE[1];
const FAIL: RGBColor = PALETTE[2];

/// A check's history as a chart: a line through its values, each point coloured by its
/// outcome (pass, warn, fail), each threshold a dashed line in its outcome's colour, so a
/// reader sees where the values went and how close they came. Days are a time axis.
pub fn history_svg(h: &History) -> Result<String> {
    let n = h.labels.len();
    if n == 0 {
        bail!("no evaluations to chart");
    }
    let days: Option<Vec<i64>> = h.labels.iter().map(|l| timestamp::parse_date(l).map(i64::from)).collect();
    let position = positions(&h.labels, days.as_deref());
    let all = || h.values.iter().flatten().copied().chain(h.thresholds.iter().map(|t| t.1));
    let (min, max) = (all().fold(f64::INFINITY, f64::min), all().fold(f64::NEG_INFINITY, f64::max));
    let (min, max) = if min.is_finite() { (min, max) } else { (0.0, 1.0) };
    let pad = if max > min { (max - min) * 0.1 } else { min.abs().max(1.0) * 0.1 };
    let (bottom, top) = (if min >= 0.0 { (min - pad).max(0.0) } else { min - pad }, max + pad);
    let (lo, hi) = (position[0] - 0.5, position[n - 1] + 0.5);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        // The legend beside the plot, where it hides no point.
        let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - 150);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(lo..hi, bottom..top)
            .map_err(|e| anyhow!("{e}"))?;
        let label_of = |x: &f64| x_label(&h.labels, days.as_deref(), *x);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(x_label_count(n, days.is_some()))
            .x_label_formatter(&label_of)
            .y_label_formatter(&|v: &f64| if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.3}") })
            .light_line_style(WHITE.mix(0.0))
            .x_desc(if days.is_some() { "day" } else { "evaluated (UTC)" })
            .y_desc(h.check)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let points: Vec<(f64, f64, Outcome)> =
            position.iter().zip(&h.values).zip(&h.outcomes).filter_map(|((x, v), o)| v.map(|v| (*x, v, *o))).collect();
        chart
            .draw_series(LineSeries::new(points.iter().map(|(x, v, _)| (*x, *v)), PASS.mix(0.6).stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?;
        let mut legend: Vec<(String, RGBColor, bool)> = Vec::new();
        for outcome in [Outcome::Pass, Outcome::Warn, Outcome::Fail] {
            let color = outcome_color(outcome);
            let of = points.iter().filter(|p| p.2 == outcome).map(|(x, v, _)| Circle::new((*x, *v), 4, color.filled()));
            chart.draw_series(of).map_err(|e| anyhow!("{e}"))?;
            if points.iter().any(|p| p.2 == outcome) {
                legend.push((outcome.name().to_string(), color, true));
            }
        }
        for (said, value) in &h.thresholds {
            let color = if said.starts_with("fail") { FAIL } else { WARN };
            chart
                .draw_series(DashedLineSeries::new([(lo, *value), (hi, *value)], 6, 4, color.stroke_width(2)))
                .map_err(|e| anyhow!("{e}"))?;
            legend.push((said.clone(), color, false));
        }
        let font = ("sans-serif", 13).into_font().color(&RGBColor(31, 41, 55));
        for (i, (said, color, point)) in legend.iter().enumerate() {
            let y = 24 + 22 * i as i32;
            match point {
                true => legend_area.draw(&Circle::new((18, y), 4, color.filled())),
                false => legend_area.draw(&PathElement::new([(10, y), (26, y)], color.stroke_width(2))),
            }
            .map_err(|e| anyhow!("{e}"))?;
            legend_area.draw(&Text::new(said.as_str(), (34, y - 7), font.clone())).map_err(|e| anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    let count = |o: Outcome| h.outcomes.iter().filter(|x| **x == o).count();
    let thresholds: Vec<String> = h.thresholds.iter().map(|(said, v)| format!("{said} (at {v})")).collect();
    let desc = format!(
        "<desc>{}: {} values, {} pass, {} warn, {} fail; thresholds: {}</desc>",
        xml_escape(h.check),
        points_of(&h.values),
        count(Outcome::Pass),
        count(Outcome::Warn),
        count(Outcome::Fail),
        xml_escape(&if thresholds.is_empty() { "none".to_string() } else { thresholds.join(", ") })
    );
    Ok(with_desc(out, &desc))
}

/// The SVG with a `<desc>` first inside it: what is drawn, said for readers (screen
/// readers) and tests alike.
fn with_desc(svg: String, desc: &str) -> String {
    match svg.find('>') {
        Some(end) => format!("{}{desc}{}", &svg[..=end], &svg[end + 1..]),
        None => svg,
    }
}

fn points_of(values: &[Option<f64>]) -> usize {
    values.iter().flatten().count()
}

fn outcome_color(outcome: Outcome) -> RGBColor {
    match outcome {
        Outcome::Pass => PASS,
        Outcome::Warn => WARN,
        Outcome::Fail => FAIL,
    }
}

/// The index of `value` in `list`, added at the end if new.
fn position(list: &mut Vec<String>, value: &str) -> usize {
    match list.iter().position(|l| l == value) {
        Some(i) => i,
        None => {
            list.push(value.to_string());
            list.len() - 1
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: ChartKind, x: &str, y: &str, series: Option<&str>, agg: Agg) -> ChartSpec {
        ChartSpec { kind, x: x.into(), y: y.into(), series: series.map(str::to_string), agg }
    }

    #[test]
    fn combines_per_x_and_draws_svg() {
        let df = df!("step" => ["b", "b", "a"], "events" => [1i64, 2, 5]).unwrap();
        for kind in [ChartKind::Line, ChartKind::Bar] {
            let s = spec(kind, "step", "events", None, Agg::Sum);
            let p = plot(&s, &df).unwrap();
            assert_eq!((p.labels.clone(), p.days.clone()), (vec!["b".to_string(), "a".to_string()], None));
            assert_eq!(p.series, vec![("events".to_string(), vec![Some(3.0), Some(5.0)])]);
            let svg = svg(&s, &df).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("<desc>1 series: events</desc>"), "{svg}");
        }
        assert_eq!(plot(&spec(ChartKind::Line, "step", "events", None, Agg::Max), &df).unwrap().series[0].1, vec![Some(2.0), Some(5.0)]);
        let bad = spec(ChartKind::Bar, "nope", "events", None, Agg::Sum);
        assert!(svg(&bad, &df).unwrap_err().to_string().contains("nope"));
    }

    #[test]
    fn one_line_per_series_on_a_time_axis_with_gaps() {
        let df = df!(
            "day" => ["2019-05-03", "2019-05-01", "2019-05-01", "2019-05-03"],
            "city" => ["Oslo", "Oslo", "Rome", "Rome"],
            "t" => [1.5f64, 2.5, 20.0, 21.0]
        )
        .unwrap();
        let s = spec(ChartKind::Line, "day", "t", Some("city"), Agg::Max);
        let p = plot(&s, &df).unwrap();
        // Sorted by day; the missing 2nd of May is a gap on the axis, not a slot.
        assert_eq!(p.labels, ["2019-05-01", "2019-05-03"]);
        assert_eq!(p.days, Some(vec![18017, 18019]));
        assert_eq!(p.series, vec![("Oslo".to_string(), vec![Some(2.5), Some(1.5)]), ("Rome".to_string(), vec![Some(20.0), Some(21.0)])]);
        let svg = svg(&s, &df).unwrap();
        assert!(svg.contains("<desc>2 series: Oslo, Rome</desc>"), "{svg}");
        // Named in the description and in the legend.
        assert!(svg.matches("Oslo").count() >= 2 && svg.matches("Rome").count() >= 2, "a legend names each series: {svg}");
        assert!(svg.contains("2019-05-02"), "the axis is in days");
    }

    #[test]
    fn a_history_colours_each_outcome_and_draws_each_threshold() {
        let h = History {
            check: "events per day",
            labels: vec!["2026-11-01".into(), "2026-11-02".into(), "2026-11-04".into()],
            values: vec![Some(1200.0), Some(400.0), Some(50.0)],
            outcomes: vec![Outcome::Pass, Outcome::Warn, Outcome::Fail],
            thresholds: vec![("warn < 1000".into(), 1000.0), ("fail < 100".into(), 100.0)],
        };
        let svg = history_svg(&h).unwrap();
        assert!(
            svg.contains("<desc>events per day: 3 values, 1 pass, 1 warn, 1 fail; thresholds: warn &lt; 1000 (at 1000), fail &lt; 100 (at 100)</desc>"),
            "{svg}"
        );
        assert!(svg.contains("2026-11-03"), "days are a time axis: {svg}");
        for legend in ["pass", "warn", "fail", "warn &lt; 1000", "fail &lt; 100"] {
            assert!(svg.contains(&format!(">{legend}<")) || svg.contains(&format!(">\n{legend}")), "legend {legend}: {svg}");
        }
        let whole = History {
            labels: vec!["2026-11-01 10:00:00".into()],
            values: vec![None],
            outcomes: vec![Outcome::Pass],
            thresholds: vec![],
            ..h
        };
        assert!(history_svg(&whole).unwrap().contains("0 values"));
    }

    #[test]
    fn many_series_fold_into_other() {
        let names: Vec<String> = (0..14).map(|i| format!("s{i}")).collect();
        let df = df!("x" => vec!["a"; 14], "s" => names, "y" => vec![1i64; 14]).unwrap();
        let p = plot(&spec(ChartKind::Bar, "x", "y", Some("s"), Agg::Sum), &df).unwrap();
        assert_eq!(p.series.len(), MAX_SERIES);
        assert_eq!(p.series.last().unwrap(), &(OTHER.to_string(), vec![Some(5.0)]));
    }
}

//! Charts as inline SVG (plotters' SVG backend), so the report needs no network to view.

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;
use polars::prelude::*;

use crate::render::table::value_text;
use crate::sql::{Agg, ChartKind, ChartSpec};

const SIZE: (u32, u32) = (760, 320);
const COLOR: RGBColor = RGBColor(37, 99, 235);

/// The chart a query's header asks for, over its result. Rows sharing an `x` value are
/// combined by the spec's `agg` (so `events per day and event name` charts as events per
/// day); x keeps its order.
pub fn svg(spec: &ChartSpec, df: &DataFrame) -> Result<String> {
    let (labels, values) = series(spec, df)?;
    if labels.is_empty() {
        bail!("no rows to chart");
    }
    let max = values.iter().cloned().fold(0.0f64, f64::max);
    let min = values.iter().cloned().fold(0.0f64, f64::min);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let n = labels.len();
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            // A segmented 0..k range has k + 1 slots; end at n - 1 so there is no empty one.
            .build_cartesian_2d((0..n.saturating_sub(1).max(1)).into_segmented(), min..top)
            .map_err(|e| anyhow!("{e}"))?;
        let step = n.div_ceil(8).max(1);
        let label_of = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if *i < n && i % step == 0 => labels[*i].clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(60))
            .x_label_formatter(&label_of)
            .y_label_formatter(&|v: &f64| if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") })
            .light_line_style(WHITE.mix(0.0))
            .x_desc(spec.x.as_str())
            .y_desc(spec.y.as_str())
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        match spec.kind {
            ChartKind::Bar => {
                chart
                    .draw_series(
                        Histogram::vertical(&chart).style(COLOR.filled()).margin(6).data(values.iter().enumerate().map(|(i, v)| (i, *v))),
                    )
                    .map_err(|e| anyhow!("{e}"))?;
            }
            ChartKind::Line => {
                let points = values.iter().enumerate().map(|(i, v)| (SegmentValue::CenterOf(i), *v));
                chart.draw_series(LineSeries::new(points, COLOR.stroke_width(2))).map_err(|e| anyhow!("{e}"))?;
            }
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    Ok(out)
}

/// x labels in first-seen order and y combined per label.
fn series(spec: &ChartSpec, df: &DataFrame) -> Result<(Vec<String>, Vec<f64>)> {
    let x = df.column(&spec.x).map_err(|_| anyhow!("chart: the result has no column {:?}", spec.x))?;
    let y = df
        .column(&spec.y)
        .map_err(|_| anyhow!("chart: the result has no column {:?}", spec.y))?
        .cast(&DataType::Float64)
        .map_err(|_| anyhow!("chart: column {:?} is not numeric", spec.y))?;
    let y = y.f64()?;
    let mut labels: Vec<String> = Vec::new();
    let mut groups: Vec<Vec<f64>> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for i in 0..df.height() {
        let label = value_text(&x.get(i)?);
        let at = *index.entry(label.clone()).or_insert_with(|| {
            labels.push(label);
            groups.push(Vec::new());
            groups.len() - 1
        });
        if let Some(v) = y.get(i) {
            groups[at].push(v);
        }
    }
    let values = groups
        .iter()
        .map(|g| match spec.agg {
            Agg::Sum => g.iter().sum(),
            Agg::Mean if g.is_empty() => 0.0,
            Agg::Mean => g.iter().sum::<f64>() / g.len() as f64,
            Agg::Max => g.iter().cloned().reduce(f64::max).unwrap_or(0.0),
        })
        .collect();
    Ok((labels, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_x_and_draws_svg() {
        let df = df!("day" => ["d1", "d1", "d2"], "events" => [1i64, 2, 5]).unwrap();
        for kind in [ChartKind::Line, ChartKind::Bar] {
            let spec = ChartSpec { kind, x: "day".into(), y: "events".into(), agg: Agg::Sum };
            assert_eq!(series(&spec, &df).unwrap(), (vec!["d1".to_string(), "d2".to_string()], vec![3.0, 5.0]));
            let svg = svg(&spec, &df).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("d2"), "{svg}");
        }
        let max = ChartSpec { kind: ChartKind::Line, x: "day".into(), y: "events".into(), agg: Agg::Max };
        assert_eq!(series(&max, &df).unwrap().1, vec![2.0, 5.0]);
        let bad = ChartSpec { kind: ChartKind::Bar, x: "nope".into(), y: "events".into(), agg: Agg::Sum };
        assert!(svg(&bad, &df).unwrap_err().to_string().contains("nope"));
    }
}

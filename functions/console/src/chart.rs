//! The overview's chart of the last days (takings, refunds, payouts, fees over every source), drawn as SVG by
//! plotters; the page embeds it, so it needs no JavaScript and no image request.

use plotters::prelude::*;
use shared::domain::daybook::DayFigures;

use crate::fmt::Lang;

/// One day of the chart, whole rubles (a chart's resolution; the tables show kopecks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartDay {
    pub day: String,
    pub taken: i64,
    pub refunded: i64,
    pub paid_out: i64,
    pub fee: i64,
}

/// The figures summed per day over every source, oldest first.
pub fn per_day(figures: &[DayFigures]) -> Vec<ChartDay> {
    let mut days: std::collections::BTreeMap<&str, ChartDay> = std::collections::BTreeMap::new();
    for f in figures {
        let d = days.entry(f.day.as_str()).or_insert_with(|| ChartDay {
            day: f.day.clone(),
            ..ChartDay::default()
        });
        d.taken += f.taken / 100;
        d.refunded += f.refunded / 100;
        d.paid_out += f.paid_out / 100;
        d.fee += f.fee / 100;
    }
    days.into_values().collect()
}

/// A line of the chart: its name in Russian and English, its colour, its value of a day.
type Series = (&'static str, &'static str, RGBColor, fn(&ChartDay) -> i64);

/// `dd.mm` of a `YYYY-MM-DD` day.
fn short(day: &str) -> String {
    match (day.get(8..10), day.get(5..7)) {
        (Some(d), Some(m)) => format!("{d}.{m}"),
        _ => day.to_owned(),
    }
}

/// The chart as an SVG document (`None` when plotters could not draw it; the page then shows the table only).
pub fn svg(days: &[ChartDay], lang: Lang) -> Option<String> {
    let mut out = String::new();
    draw(days, lang, &mut out).ok()?;
    Some(out)
}

fn draw<'a>(
    days: &[ChartDay],
    lang: Lang,
    out: &'a mut String,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let root = SVGBackend::with_string(out, (960, 320)).into_drawing_area();
    root.fill(&WHITE)?;
    let last = i32::try_from(days.len().saturating_sub(1))
        .unwrap_or(0)
        .max(1);
    let top = days
        .iter()
        .map(|d| d.taken.max(d.refunded).max(d.paid_out).max(d.fee))
        .max()
        .unwrap_or(0)
        .max(100);
    let top = top + top / 10;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(90)
        .build_cartesian_2d(0..last, 0i64..top)?;
    let label = |i: &i32| {
        usize::try_from(*i)
            .ok()
            .and_then(|i| days.get(i))
            .map(|d| short(&d.day))
            .unwrap_or_default()
    };
    let rubles = |v: &i64| crate::fmt::whole(lang, *v);
    chart
        .configure_mesh()
        .x_labels(10)
        .y_labels(6)
        .x_label_formatter(&label)
        .y_label_formatter(&rubles)
        .light_line_style(RGBColor(238, 240, 243))
        .draw()?;
    let series: [Series; 4] = [
        ("Оплаты", "Takings", RGBColor(26, 127, 55), |d| {
            d.taken
        }),
        ("Возвраты", "Refunds", RGBColor(180, 35, 24), |d| {
            d.refunded
        }),
        (
            "Возмещения",
            "Payouts",
            RGBColor(29, 78, 216),
            |d| d.paid_out,
        ),
        ("Комиссии", "Fees", RGBColor(161, 98, 7), |d| d.fee),
    ];
    for (ru, en, color, value) in series {
        let points = days
            .iter()
            .enumerate()
            .filter_map(|(i, d)| Some((i32::try_from(i).ok()?, value(d))));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(lang.t(ru, en))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(217, 221, 227))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::daybook::{day_figures, DayTotals};
    use shared::domain::Source;

    #[test]
    fn days_sum_over_sources_and_the_chart_draws() {
        let t = |taken| DayTotals {
            taken,
            refunded: 0,
            facts: 1,
        };
        let figures = vec![
            day_figures(Source::Tbank, "2026-11-29", t(150_000), &[]),
            day_figures(Source::Bank, "2026-11-29", t(50_000), &[]),
            day_figures(Source::Tbank, "2026-11-30", t(10_000), &[]),
        ];
        let days = per_day(&figures);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].taken, 2_000);
        let svg = svg(&days, Lang::Ru).expect("drawn");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("Оплаты") && svg.contains("29.11"));
    }
}

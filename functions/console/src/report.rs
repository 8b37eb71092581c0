//! The reconciliation report as files: CSV (the `csv` crate; UTF-8 with a byte-order mark and `;` between fields,
//! as a Russian Excel opens it; amounts as `1500.00`) and XLSX (`rust_xlsxwriter`; amounts as numbers in rubles with
//! a `# ##0.00` format). One row per source and business day that moved money, then the unmatched money by age.

use rust_xlsxwriter::{Format, Workbook};
use shared::app::console::AttentionList;
use shared::domain::attention::{Age, Kind};
use shared::domain::daybook::{DayFigures, DayStatus};
use shared::domain::money::format_minor;

use crate::fmt::Lang;

/// The report's columns.
pub fn header(lang: Lang) -> [&'static str; 8] {
    [
        lang.t("День", "Day"),
        lang.t("Источник", "Source"),
        lang.t("Оплачено", "Taken"),
        lang.t("Возвращено", "Refunded"),
        lang.t("Комиссия", "Fee"),
        lang.t("Возмещено", "Paid out"),
        lang.t("Разница", "Difference"),
        lang.t("Статус", "Status"),
    ]
}

pub fn status_name(lang: Lang, s: DayStatus) -> &'static str {
    match s {
        DayStatus::Quiet => lang.t("нет операций", "no operations"),
        DayStatus::Reconciled => lang.t("сверено", "reconciled"),
        DayStatus::Mismatch => lang.t("расхождение", "mismatch"),
        DayStatus::AwaitingPayout => lang.t("ждём возмещения", "awaiting payout"),
        DayStatus::OnAccount => lang.t("на счёте", "on the account"),
    }
}

pub fn source_name(lang: Lang, s: shared::domain::Source) -> &'static str {
    match s {
        shared::domain::Source::Bank => lang.t("Банк (переводы)", "Bank (transfers)"),
        shared::domain::Source::Sber => lang.t("Сбербанк", "Sber"),
        shared::domain::Source::Yookassa => lang.t("ЮKassa", "YooKassa"),
        other => other.display_name().unwrap_or(other.as_str()),
    }
}

/// The rows that moved money.
pub fn rows(figures: &[DayFigures]) -> impl Iterator<Item = &DayFigures> {
    figures.iter().filter(|f| f.status != DayStatus::Quiet)
}

/// The kinds "unmatched money by age" shows.
pub const UNMATCHED: [Kind; 2] = [Kind::UnmatchedBank, Kind::UnmatchedAcquirer];

pub fn age_name(lang: Lang, age: Age) -> &'static str {
    match age {
        Age::UpToOneDay => lang.t("0–1 дн.", "0–1 days"),
        Age::UpToAWeek => lang.t("2–7 дн.", "2–7 days"),
        Age::UpToAMonth => lang.t("8–30 дн.", "8–30 days"),
        Age::Older => lang.t("более 30 дн.", "over 30 days"),
    }
}

/// The report as CSV bytes.
pub fn csv(
    lang: Lang,
    figures: &[DayFigures],
    unmatched: &[AttentionList],
) -> Result<Vec<u8>, csv::Error> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut w = csv::WriterBuilder::new()
            .delimiter(b';')
            .flexible(true)
            .from_writer(&mut out);
        w.write_record(header(lang))?;
        for f in rows(figures) {
            w.write_record([
                f.day.as_str(),
                source_name(lang, f.source),
                &format_minor(f.taken),
                &format_minor(f.refunded),
                &format_minor(f.fee),
                &format_minor(f.paid_out),
                &format_minor(f.difference()),
                status_name(lang, f.status),
            ])?;
        }
        w.write_record([""])?;
        w.write_record([
            lang.t("Нераспознанные деньги", "Unmatched money"),
            lang.t("Возраст", "Age"),
            lang.t("Количество", "Count"),
            lang.t("Сумма", "Amount"),
        ])?;
        for list in unmatched.iter().filter(|l| UNMATCHED.contains(&l.kind)) {
            for (age, count, sum) in &list.buckets {
                w.write_record([
                    list.kind.as_str(),
                    age_name(lang, *age),
                    &count.to_string(),
                    &format_minor(*sum),
                ])?;
            }
        }
        w.flush()?;
    }
    Ok(out)
}

/// Rubles as a spreadsheet number. A cell is an IEEE double by the format's definition; every amount below 2^53
/// kopecks converts exactly, and the kopecks stay exact in the ledger and the CSV.
#[allow(clippy::cast_precision_loss)]
fn rubles(minor: i64) -> f64 {
    minor as f64 / 100.0
}

/// The report as an XLSX workbook: sheet 1 the days, sheet 2 the unmatched money by age.
pub fn xlsx(
    lang: Lang,
    figures: &[DayFigures],
    unmatched: &[AttentionList],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let amount = Format::new().set_num_format("# ##0.00");
    let days = book.add_worksheet();
    days.set_name(lang.t("Сверка", "Reconciliation"))?;
    for (c, title) in (0u16..).zip(header(lang)) {
        days.write_string_with_format(0, c, title, &bold)?;
    }
    for (r, f) in (1u32..).zip(rows(figures)) {
        days.write_string(r, 0, &f.day)?;
        days.write_string(r, 1, source_name(lang, f.source))?;
        for (c, v) in (2u16..).zip([f.taken, f.refunded, f.fee, f.paid_out, f.difference()]) {
            days.write_number_with_format(r, c, rubles(v), &amount)?;
        }
        days.write_string(r, 7, status_name(lang, f.status))?;
    }
    days.set_column_width(0, 12)?;
    days.set_column_width(1, 20)?;
    for c in 2..=6 {
        days.set_column_width(c, 16)?;
    }
    days.set_column_width(7, 18)?;
    let ages = book.add_worksheet();
    ages.set_name(lang.t("Нераспознанные", "Unmatched"))?;
    for (c, title) in (0u16..).zip([
        lang.t("Вид", "Kind"),
        lang.t("Возраст", "Age"),
        lang.t("Количество", "Count"),
        lang.t("Сумма", "Amount"),
    ]) {
        ages.write_string_with_format(0, c, title, &bold)?;
    }
    let mut r = 1u32;
    for list in unmatched.iter().filter(|l| UNMATCHED.contains(&l.kind)) {
        for (age, count, sum) in &list.buckets {
            ages.write_string(r, 0, list.kind.as_str())?;
            ages.write_string(r, 1, age_name(lang, *age))?;
            ages.write_number(r, 2, u32::try_from(*count).unwrap_or(u32::MAX))?;
            ages.write_number_with_format(r, 3, rubles(*sum), &amount)?;
            r += 1;
        }
    }
    ages.set_column_width(0, 20)?;
    ages.set_column_width(1, 14)?;
    ages.set_column_width(3, 16)?;
    book.save_to_buffer()
}

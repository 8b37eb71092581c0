//! How the console writes money, dates and words: Russian by default (`1 500,00 ₽`, `05.11.2026 14:30`, Moscow
//! time), English on request (`1,500.00 RUB`, `05.11.2026 14:30 MSK`).

use shared::domain::Currency;

/// Moscow is UTC+3 all year (no daylight saving since 2014).
const MOSCOW_OFFSET_MS: i64 = 3 * 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ru,
    En,
}

impl Lang {
    /// The `lang` cookie's value; anything else is Russian.
    pub fn from_cookie(value: Option<&str>) -> Lang {
        match value {
            Some("en") => Lang::En,
            _ => Lang::Ru,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// The same text in this language.
    pub fn t<'a>(self, ru: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Ru => ru,
            Lang::En => en,
        }
    }
}

fn grouped(mut units: u64, sep: &str) -> String {
    let mut groups = Vec::new();
    loop {
        groups.push(units % 1000);
        units /= 1000;
        if units == 0 {
            break;
        }
    }
    let mut out = String::new();
    for (i, g) in groups.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&g.to_string());
        } else {
            out.push_str(sep);
            out.push_str(&format!("{g:03}"));
        }
    }
    out
}

/// `minor` units of `currency` as a person reads them: `1 500,00 ₽` (no-break spaces) or `1,500.00 RUB`.
pub fn money(lang: Lang, minor: i64, currency: Currency) -> String {
    let sign = if minor < 0 { "−" } else { "" };
    let abs = minor.unsigned_abs();
    let (units, cents) = (abs / 100, abs % 100);
    match lang {
        Lang::Ru => {
            let symbol = match currency.as_str() {
                "RUB" => "₽",
                other => other,
            };
            format!(
                "{sign}{},{cents:02}\u{a0}{symbol}",
                grouped(units, "\u{a0}")
            )
        }
        Lang::En => format!(
            "{sign}{}.{cents:02} {}",
            grouped(units, ","),
            currency.as_str()
        ),
    }
}

/// Whole units grouped as the language writes them: `1 500` (no-break space) or `1,500`.
pub fn whole(lang: Lang, units: i64) -> String {
    let sign = if units < 0 { "−" } else { "" };
    let sep = match lang {
        Lang::Ru => "\u{a0}",
        Lang::En => ",",
    };
    format!("{sign}{}", grouped(units.unsigned_abs(), sep))
}

/// An amount as typed by a person (`1 500,00`, `1500.5`, `1,500.00` is refused as ambiguous) in minor units.
pub fn parse_amount(text: &str) -> Option<i64> {
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    if compact.contains(',') && compact.contains('.') {
        return None;
    }
    shared::domain::money::parse_minor(&compact.replace(',', ".")).ok()
}

fn moscow(at_ms: i64) -> Option<time::OffsetDateTime> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(at_ms.checked_add(MOSCOW_OFFSET_MS)?) * 1_000_000,
    )
    .ok()?;
    Some(at)
}

/// A `YYYY-MM-DD` day as `dd.mm.yyyy` (anything else as it is).
pub fn iso_to_ru(day: &str) -> String {
    match (day.get(0..4), day.get(5..7), day.get(8..10)) {
        (Some(y), Some(m), Some(d)) if day.len() == 10 => format!("{d}.{m}.{y}"),
        _ => day.to_owned(),
    }
}

/// `dd.mm.yyyy HH:MM`, Moscow time.
pub fn date_time(at_ms: i64) -> String {
    moscow(at_ms).map_or_else(String::new, |t| {
        format!(
            "{:02}.{:02}.{} {:02}:{:02}",
            t.day(),
            u8::from(t.month()),
            t.year(),
            t.hour(),
            t.minute()
        )
    })
}

/// `dd.mm.yyyy`, Moscow time.
pub fn date(at_ms: i64) -> String {
    moscow(at_ms).map_or_else(String::new, |t| {
        format!("{:02}.{:02}.{}", t.day(), u8::from(t.month()), t.year())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_as_an_accountant_writes_it() {
        let rub = Currency::RUB;
        assert_eq!(money(Lang::Ru, 150_000, rub), "1\u{a0}500,00\u{a0}₽");
        assert_eq!(money(Lang::Ru, 5, rub), "0,05\u{a0}₽");
        assert_eq!(
            money(Lang::Ru, 123_456_789, rub),
            "1\u{a0}234\u{a0}567,89\u{a0}₽"
        );
        assert_eq!(money(Lang::Ru, -100, rub), "−1,00\u{a0}₽");
        assert_eq!(money(Lang::En, 150_000, rub), "1,500.00 RUB");
        assert_eq!(whole(Lang::Ru, 1_500), "1\u{a0}500");
        assert_eq!(whole(Lang::En, 1_000_000), "1,000,000");
    }

    #[test]
    fn typed_amounts_are_exact() {
        assert_eq!(parse_amount("1 500,00"), Some(150_000));
        assert_eq!(parse_amount("1500.5"), Some(150_050));
        assert_eq!(parse_amount("1\u{a0}500"), Some(150_000));
        assert_eq!(parse_amount("1,500.00"), None);
        assert_eq!(parse_amount("abc"), None);
        assert_eq!(parse_amount("1,001"), None);
    }

    #[test]
    fn dates_are_moscow_dates() {
        // 2026-11-05 21:00 UTC is 00:00 on the 6th in Moscow.
        assert_eq!(date_time(1_793_912_400_000), "06.11.2026 00:00");
        assert_eq!(date(1_793_912_399_999), "05.11.2026");
    }
}

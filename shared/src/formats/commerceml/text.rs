//! Bytes → text for CommerceML files, and the value formats 1C writes (dates, sums).

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1251};

use crate::domain::money::{parse_minor, MoneyError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("file declares encoding {0:?}, which is not supported")]
    UnknownEncoding(String),
    #[error("file is not valid {0}")]
    Invalid(&'static str),
}

/// The `encoding="…"` of an XML declaration at the start of ASCII-compatible bytes.
fn declared_encoding(bytes: &[u8]) -> Option<&str> {
    let head = &bytes[..bytes.len().min(256)];
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    if !decl.trim_start().starts_with("<?xml") {
        return None;
    }
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    value.find(quote).map(|e| &value[..e])
}

/// Decode a CommerceML file: a BOM wins, then the XML declaration, then UTF-8. Returns the text (borrowed when
/// the file is UTF-8, which 1C's uploads are) and the encoding.
pub fn decode(bytes: &[u8]) -> Result<(Cow<'_, str>, &'static Encoding), TextError> {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, had_errors) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        if had_errors {
            return Err(TextError::Invalid(enc.name()));
        }
        return Ok((text, enc));
    }
    let enc = match declared_encoding(bytes) {
        Some(label) => Encoding::for_label(label.as_bytes())
            .ok_or_else(|| TextError::UnknownEncoding(label.to_owned()))?,
        None => UTF_8,
    };
    // A declaration in an ASCII-compatible file cannot truthfully say UTF-16.
    let enc = if enc == UTF_16LE || enc == UTF_16BE {
        UTF_8
    } else {
        enc
    };
    // Mislabelled files exist: Cyrillic in windows-1251 is practically never valid multi-byte UTF-8, so valid
    // UTF-8 with non-ASCII text under a single-byte label is UTF-8.
    let enc = if enc != UTF_8 && !bytes.is_ascii() && std::str::from_utf8(bytes).is_ok() {
        UTF_8
    } else {
        enc
    };
    if enc == UTF_8 {
        return std::str::from_utf8(bytes)
            .map(|s| (Cow::Borrowed(s), UTF_8))
            .map_err(|_| TextError::Invalid("UTF-8"));
    }
    let (text, had_errors) = enc.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(TextError::Invalid(enc.name()));
    }
    Ok((text, enc))
}

/// Encode text for 1C's replies (windows-1251). Characters it lacks become numeric references in XML text.
pub fn to_windows_1251(text: &str) -> Vec<u8> {
    let (bytes, _, _) = WINDOWS_1251.encode(text);
    bytes.into_owned()
}

/// A 1C sum: spaces/NBSP dropped, `,` as decimal separator, up to 4 decimals (`231.7400`). Exact: more than two
/// significant decimals is an error.
pub fn parse_sum(text: &str) -> Result<i64, MoneyError> {
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    parse_minor(&cleaned)
}

/// A 1C price, rounded half away from zero to minor units (prices per unit may carry 4 decimals).
pub fn parse_price(text: &str) -> Result<i64, MoneyError> {
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    let (head, tail) = match cleaned.split_once('.') {
        Some((h, t)) if t.len() > 2 && t.bytes().all(|b| b.is_ascii_digit()) => (h, t),
        _ => return parse_minor(&cleaned),
    };
    let kept = parse_minor(&format!("{head}.{}", &tail[..2]))?;
    let round_up = tail.as_bytes()[2] >= b'5';
    let step = if kept < 0 || head.starts_with('-') {
        -1
    } else {
        1
    };
    Ok(if round_up { kept + step } else { kept })
}

/// A 1C date-time as `YYYY-MM-DDTHH:MM:SS`, or `None` for 1C's empty values (`T`, ``, `0001-01-01`).
/// Accepts one-digit hours (`2021-02-18T9:49:02`), a space separator, fractions and zones (dropped).
pub fn normalize_datetime(text: &str) -> Option<String> {
    let t = text.trim();
    if t.len() < 8 || t.starts_with("0001-01-01") {
        return None;
    }
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, rest)) => (d, Some(rest)),
        None => (t, None),
    };
    // A zone glued to a date-only value: 2015-08-12+03:00.
    let date = date.get(..10).unwrap_or(date);
    let ymd: Vec<&str> = date.split('-').collect();
    if ymd.len() != 3
        || ymd[0].len() != 4
        || !ymd
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (y, m, d) = (
        ymd[0],
        ymd[1].parse::<u8>().ok()?,
        ymd[2].parse::<u8>().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (hh, mm, ss) = match time.map(|t| t.split(['+', 'Z', '.']).next().unwrap_or_default()) {
        Some(clock) if !clock.is_empty() => {
            let mut parts = clock.split(':').map(|p| p.parse::<u8>().ok());
            let h = parts.next().flatten()?;
            let mi = parts.next().flatten().unwrap_or(0);
            let s = parts.next().flatten().unwrap_or(0);
            if h > 23 || mi > 59 || s > 60 {
                return None;
            }
            (h, mi, s)
        }
        _ => (0, 0, 0),
    };
    Some(format!("{y}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}"))
}

/// Unix milliseconds of a normalised 1C date-time, read in the given UTC offset (1C writes local time).
pub fn datetime_ms(normalized: &str, utc_offset_minutes: i32) -> Option<i64> {
    use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};
    let b = normalized.as_bytes();
    if b.len() != 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| normalized.get(r)?.parse::<i32>().ok();
    let date = Date::from_calendar_date(
        num(0..4)?,
        Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?,
        u8::try_from(num(8..10)?).ok()?,
    )
    .ok()?;
    let clock = Time::from_hms(
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(14..16)?).ok()?,
        u8::try_from(num(17..19)?.min(59)).ok()?,
    )
    .ok()?;
    let offset = UtcOffset::from_whole_seconds(utc_offset_minutes.checked_mul(60)?).ok()?;
    let at = PrimitiveDateTime::new(date, clock).assume_offset(offset);
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_by_bom_then_declaration_then_utf8() {
        let (t, e) =
            decode("\u{feff}<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>ё</a>".as_bytes())
                .unwrap();
        assert_eq!(
            (&*t, e),
            (
                "<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>ё</a>",
                UTF_8
            )
        );
        let mut cp = b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>".to_vec();
        cp.extend(to_windows_1251("Заказ"));
        cp.extend(b"</a>");
        assert!(decode(&cp).unwrap().0.contains("Заказ"));
        assert_eq!(decode(&cp).unwrap().1, WINDOWS_1251);
        assert_eq!(decode(b"<a>\xff</a>"), Err(TextError::Invalid("UTF-8")));
        let mislabelled = "<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>Заказ</a>";
        assert_eq!(
            decode(mislabelled.as_bytes()).unwrap(),
            (Cow::Borrowed(mislabelled), UTF_8)
        );
        assert!(matches!(
            decode(b"<?xml version='1.0' encoding='klingon'?><a/>"),
            Err(TextError::UnknownEncoding(_))
        ));
    }

    #[test]
    fn one_c_dates_and_sums() {
        assert_eq!(
            normalize_datetime("2021-02-18T9:49:02").as_deref(),
            Some("2021-02-18T09:49:02")
        );
        assert_eq!(
            normalize_datetime("2007-10-16 15:44:47").as_deref(),
            Some("2007-10-16T15:44:47")
        );
        assert_eq!(
            normalize_datetime("2015-08-13T22:25:56.526+03:00").as_deref(),
            Some("2015-08-13T22:25:56")
        );
        assert_eq!(
            normalize_datetime("2015-08-12+03:00").as_deref(),
            Some("2015-08-12T00:00:00")
        );
        assert_eq!(normalize_datetime("T"), None);
        assert_eq!(normalize_datetime("0001-01-01"), None);
        assert_eq!(normalize_datetime("2021-13-01"), None);
        assert_eq!(datetime_ms("1970-01-01T03:00:00", 180), Some(0));
        assert_eq!(parse_sum("231.7400"), Ok(23_174));
        assert_eq!(parse_sum("1 500,50"), Ok(150_050));
        assert!(parse_sum("0.3333").is_err());
        assert_eq!(parse_price("0.3350"), Ok(34));
        assert_eq!(parse_price("10.994"), Ok(1099));
    }
}

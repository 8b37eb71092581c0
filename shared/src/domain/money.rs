//! Money as integer minor units (kopecks) with an ISO 4217 currency. Never floating point.

use std::fmt;

use serde::{Deserialize, Serialize};

/// ISO 4217 alphabetic currency code, three uppercase ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const RUB: Currency = Currency(*b"RUB");

    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let bytes = code.trim().as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_alphabetic) => Ok(Currency([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ])),
            _ => Err(MoneyError::BadCurrency(code.chars().take(16).collect())),
        }
    }

    /// ISO 4217 numeric code as acquirers send it (Sber: `643`). Only the currencies we can meet are mapped.
    pub fn from_numeric(code: &str) -> Result<Self, MoneyError> {
        match code.trim() {
            "643" | "810" => Ok(Currency::RUB),
            "840" => Ok(Currency(*b"USD")),
            "978" => Ok(Currency(*b"EUR")),
            "933" => Ok(Currency(*b"BYN")),
            "398" => Ok(Currency(*b"KZT")),
            "156" => Ok(Currency(*b"CNY")),
            other => Err(MoneyError::BadCurrency(other.chars().take(16).collect())),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not a decimal amount: {0:?}")]
    BadAmount(String),
    #[error("amount has more than 2 significant decimal places: {0:?}")]
    TooPrecise(String),
    #[error("amount out of range: {0:?}")]
    Overflow(String),
    #[error("not a currency code: {0:?}")]
    BadCurrency(String),
}

/// An amount of money in minor units (kopecks for RUB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn rub(minor: i64) -> Self {
        Money::new(minor, Currency::RUB)
    }

    /// Parse a decimal string of major units ("1500", "1500.5", "1 500,00", "-0.96") into minor units exactly.
    /// More than two decimals are accepted only when the extra digits are zeros ("2.000").
    pub fn parse_decimal(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        parse_minor(text).map(|minor| Money { minor, currency })
    }

    /// Major units with exactly two decimals, e.g. `1500.00` (the form YooKassa and CommerceML expect).
    pub fn to_decimal_string(&self) -> String {
        format_minor(self.minor)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_minor(self.minor), self.currency)
    }
}

/// `12345` → `"123.45"`, `-5` → `"-0.05"`.
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Exact decimal → minor units. Accepts an optional sign, digits with optional space/NBSP grouping, and a `.` or `,`
/// decimal separator.
pub fn parse_minor(text: &str) -> Result<i64, MoneyError> {
    let bad = || MoneyError::BadAmount(text.chars().take(40).collect());
    let trimmed = text.trim();
    let (negative, body) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let mut int_part: i64 = 0;
    let mut frac: i64 = 0;
    let mut frac_digits = 0usize;
    let mut seen_digit = false;
    let mut in_frac = false;
    let overflow = || MoneyError::Overflow(text.chars().take(40).collect());
    for ch in body.chars() {
        match ch {
            '0'..='9' => {
                let d = i64::from(ch as u8 - b'0');
                seen_digit = true;
                if in_frac {
                    frac_digits += 1;
                    if frac_digits <= 2 {
                        frac = frac * 10 + d;
                    } else if d != 0 {
                        return Err(MoneyError::TooPrecise(text.chars().take(40).collect()));
                    }
                } else {
                    int_part = int_part
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(d))
                        .ok_or_else(overflow)?;
                }
            }
            '.' | ',' if !in_frac && seen_digit => in_frac = true,
            ' ' | '\u{a0}' | '\u{202f}' if !in_frac && seen_digit => {}
            _ => return Err(bad()),
        }
    }
    if !seen_digit || (in_frac && frac_digits == 0) {
        return Err(bad());
    }
    if frac_digits == 1 {
        frac *= 10;
    }
    let minor = int_part
        .checked_mul(100)
        .and_then(|v| v.checked_add(frac))
        .ok_or_else(overflow)?;
    Ok(if negative { -minor } else { minor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimal_strings() {
        for (text, minor) in [
            ("1", 100),
            ("2.00", 200),
            ("0.96", 96),
            ("1500.5", 150_050),
            ("1 500,00", 150_000),
            ("-0.05", -5),
            ("+3.10", 310),
            ("2.000", 200),
            ("92233720368547758.07", i64::MAX),
        ] {
            assert_eq!(parse_minor(text), Ok(minor), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_or_too_precise_amounts() {
        for text in ["", "-", "1.", ".5", "1.2.3", "1e3", "abc", "1,5,0", "NaN"] {
            assert!(
                matches!(parse_minor(text), Err(MoneyError::BadAmount(_))),
                "{text}"
            );
        }
        assert!(matches!(
            parse_minor("1.005"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            parse_minor("92233720368547758.08"),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn formats_minor_units_round_trip() {
        for minor in [0, 5, 96, 100, 150_000, -5, -150_001] {
            assert_eq!(parse_minor(&format_minor(minor)), Ok(minor));
        }
        assert_eq!(Money::rub(150_000).to_string(), "1500.00 RUB");
    }

    #[test]
    fn currency_codes_are_normalised_and_checked() {
        assert_eq!(Currency::parse("rub"), Ok(Currency::RUB));
        assert_eq!(Currency::from_numeric("643"), Ok(Currency::RUB));
        assert!(Currency::parse("RU").is_err());
        assert!(Currency::parse("РУБ").is_err());
    }
}

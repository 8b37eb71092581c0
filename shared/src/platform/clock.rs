//! The wall clock, in the one unit the ledger keeps time in: milliseconds since the Unix epoch (UTC).

/// Now, in ms since the Unix epoch; 0 if the system clock is before 1970.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

//! Times as the auditor tools read and print them: seconds since the Unix
//! epoch shown as RFC 3339 UTC, and the times a person types on the command
//! line (`--since`, `--until`).
//!
//! Shared by the listing ([`super::show`]), the verdict ([`super::verify`]),
//! proofs and replays, so none of them needs another for a timestamp. Pure
//! text conversions: it never reads the clock.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Seconds since the Unix epoch as RFC 3339 UTC (`2026-11-25T08:30:00Z`).
pub fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{secs}"))
}

/// Parses a time given on the command line: RFC 3339
/// (`2026-11-25T08:30:00Z`), a UTC date (`2026-11-25`, its midnight) or
/// seconds since the Unix epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(text, &date_format) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    text.parse::<i64>().map_err(|_| {
        format!("{text:?} is not a time: use RFC 3339 (2026-11-25T08:30:00Z), a date (2026-11-25) or Unix seconds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_and_print_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_time("1970-01-01T00:00:10Z"), Ok(10));
        assert_eq!(parse_time("1970-01-02T01:00:00+01:00"), Ok(86_400));
        assert_eq!(parse_time("1970-01-02"), Ok(86_400));
        assert_eq!(parse_time("86400"), Ok(86_400));
        assert!(parse_time("yesterday").is_err());
    }
}

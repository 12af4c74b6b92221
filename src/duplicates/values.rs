//! Whether a value HubSpot holds is still the value the app wrote.
//!
//! The planner writes every value in one canonical notation
//! (`plan::properties`: money `171.50`, dates `2024-01-02`, date-times
//! `2024-01-02T08:30:00Z`). HubSpot need not give it back that way: a number
//! property may come back as `171.5` or `171.500`, a date as
//! `2024-01-02T00:00:00Z`, `2024-01-02T00:00:00.000Z` or epoch milliseconds,
//! an e-mail address in another case, text with surrounding spaces. So the
//! comparison is led by the shape of *our* value:
//!
//! - empty and absent are the same (an empty string clears a property);
//! - surrounding whitespace does not count;
//! - our date `YYYY-MM-DD` equals any notation of that day (in UTC, where
//!   HubSpot keeps dates);
//! - our date-time equals any notation of the same instant;
//! - a plain decimal (no leading zeros, no sign but `-`) equals the same
//!   number with more or fewer trailing zeros — compared as text, never
//!   through floating point; `0042` stays text (a patient number);
//! - an e-mail address equals the same address in any letter case;
//! - anything else must be the same text.
//!
//! Pure: no clock, no I/O.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Whether `found` (HubSpot's value, `None` when it has none) is `ours`
/// (what the app wrote) in another notation.
pub fn same_value(ours: Option<&str>, found: Option<&str>) -> bool {
    let ours = ours.map(str::trim).filter(|v| !v.is_empty());
    let found = found.map(str::trim).filter(|v| !v.is_empty());
    match (ours, found) {
        (None, None) => true,
        (Some(ours), Some(found)) => ours == found || same_rendering(ours, found),
        _ => false,
    }
}

/// Both non-empty and trimmed, not equal as text.
fn same_rendering(ours: &str, found: &str) -> bool {
    if is_plain_date(ours) {
        return date_of(ours).is_some() && date_of(ours) == date_of(found);
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(ours) {
        return instant_of(found) == Some(instant.with_timezone(&Utc));
    }
    if let (Some(ours), Some(found)) = (decimal(ours), decimal(found)) {
        return ours == found;
    }
    if is_email(ours) {
        return ours.to_lowercase() == found.to_lowercase();
    }
    false
}

/// `YYYY-MM-DD`.
fn is_plain_date(value: &str) -> bool {
    value.len() == 10 && NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
}

/// The day a date value names, in any notation HubSpot or a person uses:
/// `2024-01-02`, an ISO date-time (its day in UTC), a local ISO date-time
/// without offset (the ledger's birthdays), epoch milliseconds (UTC), or
/// `02.01.2024` as typed in Germany.
pub fn date_of(value: &str) -> Option<NaiveDate> {
    let value = value.trim();
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Some(date);
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%d.%m.%Y") {
        return Some(date);
    }
    if let Ok(local) = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(local.date());
    }
    instant_of(value).map(|instant| instant.date_naive())
}

/// The instant a date-time value names: ISO 8601 with offset, or epoch
/// milliseconds (at least nine digits: shorter numbers are a year or a
/// typed date, not a day after 1 January 1970).
fn instant_of(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Some(time.with_timezone(&Utc));
    }
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.len() < 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

/// A plain decimal in canonical form (no trailing zeros, no `-0`), or
/// `None` when `value` is not one.
fn decimal(value: &str) -> Option<String> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
        Some(_) => return None,
        None => (digits, ""),
    };
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    if whole.len() > 1 && whole.starts_with('0') {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    let zero = whole == "0" && fraction.is_empty();
    let sign = if negative && !zero { "-" } else { "" };
    Some(if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    })
}

/// Looks like an e-mail address: one `@` between non-empty parts, no space.
fn is_email(value: &str) -> bool {
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ours: Option<&str>, found: Option<&str>, same: bool) {
        assert_eq!(
            same_value(ours, found),
            same,
            "ours {ours:?} found {found:?}"
        );
    }

    #[test]
    fn values_are_compared_as_an_independent_hubspot_renders_them() {
        // Empty is absent; whitespace does not count.
        check(None, None, true);
        check(Some(""), None, true);
        check(None, Some("  "), true);
        check(Some("Müller"), Some(" Müller "), true);
        check(Some("Müller"), None, false);
        check(None, Some("Müller"), false);
        check(Some("Müller"), Some("Mueller"), false);
        check(Some("Müller"), Some("müller"), false);
        // Numbers as numbers.
        check(Some("120.50"), Some("120.5"), true);
        check(Some("120.50"), Some("120.500"), true);
        check(Some("120.00"), Some("120"), true);
        check(Some("0.00"), Some("0"), true);
        check(Some("0.00"), Some("-0.0"), true);
        check(Some("-12.30"), Some("-12.3"), true);
        check(Some("120.50"), Some("120.51"), false);
        check(Some("120.50"), Some("1205.0"), false);
        check(Some("120.50"), Some("12O.50"), false);
        // A patient number with leading zeros is text.
        check(Some("0042"), Some("42"), false);
        check(Some("42"), Some("0042"), false);
        // Dates as dates.
        check(Some("2024-01-02"), Some("2024-01-02T00:00:00Z"), true);
        check(Some("2024-01-02"), Some("2024-01-02T00:00:00.000Z"), true);
        check(Some("2024-01-02"), Some("1704153600000"), true);
        check(Some("2024-01-02"), Some("2024-01-03"), false);
        check(Some("2024-01-02"), Some("1704240000000"), false);
        check(Some("2024-01-02"), Some("kein Datum"), false);
        // Date-times as instants.
        check(
            Some("2024-01-02T08:30:00Z"),
            Some("2024-01-02T08:30:00.000Z"),
            true,
        );
        check(
            Some("2024-01-02T08:30:00Z"),
            Some("2024-01-02T09:30:00+01:00"),
            true,
        );
        check(Some("2024-01-02T08:30:00Z"), Some("1704184200000"), true);
        check(
            Some("2024-01-02T08:30:00Z"),
            Some("2024-01-02T08:31:00Z"),
            false,
        );
        // E-mail addresses in any case.
        check(
            Some("jörg.zweistandort@beispiel.test"),
            Some("JÖRG.Zweistandort@Beispiel.TEST"),
            true,
        );
        check(
            Some("anna@beispiel.test"),
            Some("anna2@beispiel.test"),
            false,
        );
        // Stage ids and other text exactly.
        check(Some("160391237"), Some("160391237"), true);
        check(Some("160391237"), Some("160391240"), false);
        check(Some("closedlost"), Some("ClosedLost"), false);
    }

    #[test]
    fn a_date_is_read_from_every_notation() {
        let day = NaiveDate::from_ymd_opt(1971, 4, 12);
        for notation in [
            "1971-04-12",
            " 1971-04-12 ",
            "1971-04-12T00:00:00",
            "1971-04-12T00:00:00Z",
            "1971-04-12T00:00:00.000Z",
            "40262400000",
            "12.04.1971",
        ] {
            assert_eq!(date_of(notation), day, "{notation}");
        }
        for nothing in ["", "1971", "19710412", "12/04/1971", "morgen", "-"] {
            assert_eq!(date_of(nothing), None, "{nothing}");
        }
    }
}

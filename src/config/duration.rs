//! Durations written as strings: "2s", "500ms", "1m", "1m30s", "1.5s".
//!
//! The grammar follows Go's `time.ParseDuration` (the tool this replaces used it), minus
//! negative values: one or more `<decimal><unit>` parts, units `ns us µs ms s m h`, and a
//! bare "0".

use std::time::Duration;

/// Why a duration string was rejected. The Display text is meant for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration (expected e.g. \"2s\", \"500ms\", \"1m30s\")")]
    Empty,
    #[error("durations cannot be negative: \"{0}\"")]
    Negative(String),
    #[error("missing unit in duration \"{0}\" (use ns, us, ms, s, m or h, e.g. \"{0}s\")")]
    MissingUnit(String),
    #[error("unknown unit \"{unit}\" in duration \"{input}\" (use ns, us, ms, s, m or h)")]
    UnknownUnit { unit: String, input: String },
    #[error("invalid duration \"{0}\" (expected e.g. \"2s\", \"500ms\", \"1m30s\")")]
    Invalid(String),
    #[error("duration \"{0}\" is too large")]
    Overflow(String),
}

const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a duration string such as "1m30s".
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(input.to_string()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }

    let overflow = || DurationError::Overflow(input.to_string());
    let mut total_ns: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(num_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(DurationError::Invalid(input.to_string()));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, tail) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(input.to_string()));
        }
        let Some(&(_, unit_ns)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(DurationError::UnknownUnit {
                unit: unit.to_string(),
                input: input.to_string(),
            });
        };
        let part = scaled(number, unit_ns).ok_or_else(overflow)?;
        total_ns = total_ns.checked_add(part).ok_or_else(overflow)?;
        rest = tail;
    }

    let secs = u64::try_from(total_ns / 1_000_000_000).map_err(|_| overflow())?;
    // The remainder is < 1e9 and so always fits.
    let nanos = u32::try_from(total_ns % 1_000_000_000).map_err(|_| overflow())?;
    Ok(Duration::new(secs, nanos))
}

/// `number` (digits with at most one '.') times `unit_ns`, truncated to whole nanoseconds.
fn scaled(number: &str, unit_ns: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let int_val: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut total = int_val.checked_mul(unit_ns)?;
    // 18 fractional digits are far below a nanosecond of any unit; ignore the rest.
    let frac = &frac[..frac.len().min(18)];
    if !frac.is_empty() {
        let frac_val: u128 = frac.parse().ok()?;
        let denom = 10u128.pow(u32::try_from(frac.len()).ok()?);
        total = total.checked_add(frac_val * unit_ns / denom)?;
    }
    Some(total)
}

/// Formats a duration compactly and losslessly: "1m30s", "500ms", "2h", "0s".
pub fn format_duration(d: Duration) -> String {
    let mut ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for &(name, unit_ns) in UNITS.iter().rev() {
        if name == "µs" {
            continue;
        }
        let n = ns / unit_ns;
        if n > 0 {
            out.push_str(&format!("{n}{name}"));
            ns -= n * unit_ns;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        match parse_duration(s) {
            Ok(d) => d,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[test]
    fn parses_single_units() {
        assert_eq!(ok("2s"), Duration::from_secs(2));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        assert_eq!(ok("250us"), Duration::from_micros(250));
        assert_eq!(ok("250µs"), Duration::from_micros(250));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
    }

    #[test]
    fn parses_compound_and_fractional() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h2m3s4ms"), Duration::from_millis(3_723_004));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("0.25m"), Duration::from_secs(15));
        assert_eq!(ok("1.001ms"), Duration::from_micros(1001));
        assert_eq!(ok(" 3s "), Duration::from_secs(3));
    }

    #[test]
    fn rejects_bad_input_with_clear_errors() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("30"),
            Err(DurationError::MissingUnit("30".into()))
        );
        assert_eq!(
            parse_duration("1m30"),
            Err(DurationError::MissingUnit("1m30".into()))
        );
        assert_eq!(
            parse_duration("2 sec"),
            Err(DurationError::UnknownUnit {
                unit: " sec".into(),
                input: "2 sec".into()
            })
        );
        assert_eq!(
            parse_duration("5d"),
            Err(DurationError::UnknownUnit {
                unit: "d".into(),
                input: "5d".into()
            })
        );
        assert_eq!(
            parse_duration("-1s"),
            Err(DurationError::Negative("-1s".into()))
        );
        assert_eq!(parse_duration("s"), Err(DurationError::Invalid("s".into())));
        assert_eq!(
            parse_duration("1.2.3s"),
            Err(DurationError::Invalid("1.2.3s".into()))
        );
        assert_eq!(
            parse_duration("99999999999999999999999999999h"),
            Err(DurationError::Overflow(
                "99999999999999999999999999999h".into()
            ))
        );
        let msg = parse_duration("30").map_err(|e| e.to_string());
        assert_eq!(
            msg,
            Err("missing unit in duration \"30\" (use ns, us, ms, s, m or h, e.g. \"30s\")".into())
        );
    }

    #[test]
    fn format_round_trips() {
        for s in ["1m30s", "500ms", "2h", "1h2m3s4ms", "7ns", "250us"] {
            assert_eq!(format_duration(ok(s)), s);
        }
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    }
}

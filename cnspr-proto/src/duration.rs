//! Durations as people write them on a command line: `90`, `1.5`, `250ms`, `30s`, `1.5m`,
//! `2h`, `7d`. One syntax for every program of the project (the CLI's `--ttl` and
//! `--timeout`, the simulator's `--duration`). A pure function of its text: no clock is read.
//!
//! The syntax: a decimal number (digits with at most one `.`, at least one digit), then at
//! once a unit, `ms`, `s`, `m`, `h` or `d`; no unit means seconds. The value is exact to
//! the nanosecond (no floating point), and one that does not fit a [`Duration`] is refused.

use std::time::Duration;

/// Fraction digits taken into account: beyond 18, a digit is worth less than a nanosecond
/// even in days, and the arithmetic stays within `u128`.
const MAX_FRACTION_DIGITS: u32 = 18;
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No number where one should be.
    #[error("{0:?} is not a duration (examples: 500ms, 30s, 1.5m, 2h, 7d)")]
    NotANumber(String),
    /// A number with a unit that is not one of ours.
    #[error("unknown unit {unit:?} in {text:?} (use ms, s, m, h or d)")]
    UnknownUnit {
        /// The unit as given.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// More than a [`Duration`] holds.
    #[error("{0:?} is too long")]
    TooLong(String),
}

/// The nanoseconds one `unit` is worth.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ms" => 1_000_000,
        "" | "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        "d" => 86_400 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// Parses a duration (see the module documentation for the syntax).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let not_a_number = || DurationError::NotANumber(text.to_owned());
    let too_long = || DurationError::TooLong(text.to_owned());
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
        return Err(not_a_number());
    }
    let per_unit = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
        unit: unit.to_owned(),
        text: text.to_owned(),
    })?;
    // The number as `digits / 10^scale`, exactly.
    let mut digits: u128 = 0;
    let mut scale: u32 = 0;
    let kept_fraction = fraction.bytes().take(MAX_FRACTION_DIGITS as usize);
    for (digit, in_fraction) in whole
        .bytes()
        .map(|d| (d, false))
        .chain(kept_fraction.map(|d| (d, true)))
    {
        digits = digits
            .checked_mul(10)
            .and_then(|d| d.checked_add(u128::from(digit - b'0')))
            .ok_or_else(too_long)?;
        scale += u32::from(in_fraction);
    }
    let nanos = digits.checked_mul(per_unit).ok_or_else(too_long)? / 10u128.pow(scale);
    let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| too_long())?;
    let subsec = u32::try_from(nanos % NANOS_PER_SEC).map_err(|_| too_long())?;
    Ok(Duration::new(secs, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_decimals_with_every_unit_are_exact() {
        let micros = |n: u64| Duration::from_micros(n);
        let cases = [
            ("45", micros(45_000_000)),
            ("0", Duration::ZERO),
            (" 5s ", micros(5_000_000)),
            ("250ms", micros(250_000)),
            ("30s", micros(30_000_000)),
            ("10m", micros(600_000_000)),
            ("24h", micros(86_400_000_000)),
            ("7d", micros(604_800_000_000)),
            ("1.5", micros(1_500_000)),
            ("0.1s", micros(100_000)),
            ("1.5m", micros(90_000_000)),
            ("2.25h", micros(8_100_000_000)),
            ("0.5d", micros(43_200_000_000)),
            ("1.5ms", micros(1_500)),
            (".5s", micros(500_000)),
            ("2.s", micros(2_000_000)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("0.0000000001s", Duration::ZERO),
            ("1.0000000000000000000000000000001s", micros(1_000_000)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn garbage_is_refused_with_a_clear_message() {
        for text in ["", "ten", "-5s", ".", "..5", "1.2.3s", "s", "ms"] {
            assert_eq!(
                parse_duration(text),
                Err(DurationError::NotANumber(text.trim().to_owned())),
                "{text:?}"
            );
        }
        for (text, unit) in [
            ("5w", "w"),
            ("1e3", "e3"),
            ("10 m", " m"),
            ("3sec", "sec"),
            ("2H", "H"),
        ] {
            assert_eq!(
                parse_duration(text),
                Err(DurationError::UnknownUnit {
                    unit: unit.to_owned(),
                    text: text.to_owned()
                }),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_duration("ten").map_err(|e| e.to_string()),
            Err("\"ten\" is not a duration (examples: 500ms, 30s, 1.5m, 2h, 7d)".to_owned())
        );
    }

    #[test]
    fn more_than_a_duration_holds_is_too_long() {
        let max_secs = u64::MAX.to_string();
        assert_eq!(parse_duration(&max_secs), Ok(Duration::from_secs(u64::MAX)));
        for text in [
            format!("{max_secs}0"),
            format!("{max_secs}d"),
            "9".repeat(60),
            format!("{}.5", "9".repeat(40)),
        ] {
            assert_eq!(
                parse_duration(&text),
                Err(DurationError::TooLong(text.clone())),
                "{text}"
            );
        }
    }
}

//! The messages whose JSON form is not an object of their fields (Go types with their own
//! `MarshalJSON`), and the Go time and duration formats they use.

use super::ProtobufError;

pub(crate) use kube_apimachinery::protobuf::schema::{Special, raw_field, special_of as of};

fn timestamp(seconds: i64, nanos: i64, path: &str) -> Result<jiff::Timestamp, ProtobufError> {
    i32::try_from(nanos)
        .ok()
        .and_then(|nanos| jiff::Timestamp::new(seconds, nanos).ok())
        .ok_or_else(|| ProtobufError::Convert {
            path: path.into(),
            message: format!("time {seconds}s {nanos}ns is out of range"),
        })
}

/// Go's `Time.MarshalJSON`: RFC 3339 in UTC, whole seconds.
pub(crate) fn format_time(seconds: i64, nanos: i64, path: &str) -> Result<String, ProtobufError> {
    timestamp(seconds, nanos, path)?;
    kube_apimachinery::protobuf::format_time(seconds).ok_or_else(|| out_of_range(seconds, path))
}

/// Go's `MicroTime.MarshalJSON`: RFC 3339 in UTC with six fractional digits.
pub(crate) fn format_micro_time(
    seconds: i64,
    nanos: i64,
    path: &str,
) -> Result<String, ProtobufError> {
    let ts = timestamp(seconds, nanos, path)?;
    kube_apimachinery::protobuf::format_micro_time(seconds, ts.subsec_nanosecond())
        .ok_or_else(|| out_of_range(seconds, path))
}

fn out_of_range(seconds: i64, path: &str) -> ProtobufError {
    ProtobufError::Convert {
        path: path.into(),
        message: format!("time {seconds}s is outside the years 0 to 9999"),
    }
}

/// Parses an RFC 3339 time into seconds and nanoseconds since the epoch (MicroTime keeps
/// microseconds, Time whole seconds, as their Go `UnmarshalJSON` and `ProtoTime` do).
pub(crate) fn parse_time(text: &str, micro: bool, path: &str) -> Result<(i64, i32), ProtobufError> {
    let ts: jiff::Timestamp = text.parse().map_err(|e| ProtobufError::Convert {
        path: path.into(),
        message: format!("{text:?} is not an RFC 3339 time: {e}"),
    })?;
    let nanos = if micro {
        ts.subsec_nanosecond() / 1000 * 1000
    } else {
        ts.subsec_nanosecond()
    };
    Ok((ts.as_second(), nanos))
}

/// Go's `time.Duration.String`.
pub(crate) use kube_apimachinery::protobuf::format_duration;

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`.
pub(crate) fn parse_duration(text: &str, path: &str) -> Result<i64, ProtobufError> {
    let invalid = || ProtobufError::Convert {
        path: path.into(),
        message: format!("time: invalid duration {text:?}"),
    };
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_end);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after) => {
                let end = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                after.split_at(end)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_end = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(invalid()),
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(invalid)?;
        // The fraction as Go computes it: its leading digits as an integer over a power of
        // ten (digits that would overflow are ignored), scaled in floating point.
        let (mut fraction, mut power, mut overflow) = (0u64, 1f64, false);
        for digit in frac_part.bytes() {
            if overflow {
                continue;
            }
            match fraction
                .checked_mul(10)
                .and_then(|f| f.checked_add(u64::from(digit - b'0')))
                .filter(|f| *f <= 1 << 63)
            {
                Some(f) => {
                    fraction = f;
                    power *= 10.0;
                }
                None => overflow = true,
            }
        }
        if fraction > 0 {
            // Truncated toward zero, as Go's int64() conversion does.
            value += (fraction as f64 * (scale as f64 / power)) as u128;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i64::MAX as u128 + u128::from(negative) {
            return Err(invalid());
        }
        rest = after;
    }
    let total = i128::try_from(total).map_err(|_| invalid())?;
    i64::try_from(if negative { -total } else { total }).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        // Formatting is kube-apimachinery's (tested there against Go's table).
        for nanos in [
            0,
            1,
            1100,
            3_300_000_000,
            8 * 60_000_000_000 + 1,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(parse_duration(&format_duration(nanos), "d").unwrap(), nanos);
        }
    }

    #[test]
    fn durations_parse_like_go() {
        // time.ParseDuration's table (go/src/time/time_test.go), a selection.
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5_000_000_000),
            ("30s", 30_000_000_000),
            ("1478s", 1_478_000_000_000),
            ("-5s", -5_000_000_000),
            ("+5s", 5_000_000_000),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5_000_000_000),
            ("5.6s", 5_600_000_000),
            ("5.s", 5_000_000_000),
            (".5s", 500_000_000),
            ("1.0s", 1_000_000_000),
            ("1.00s", 1_000_000_000),
            ("1.004s", 1_004_000_000),
            ("100.00100s", 100_001_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14_000_000_000),
            ("15m", 900_000_000_000),
            ("16h", 57_600_000_000_000),
            ("3h30m", 12_600_000_000_000),
            ("10.5s4m", 250_500_000_000),
            ("-2m3.4s", -123_400_000_000),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("39h9m14.425s", 140_954_425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
        ];
        for (text, nanos) in ok {
            assert_eq!(parse_duration(text, "d").unwrap(), *nanos, "{text}");
        }
        for bad in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "9223372036854775808ns",
            "-9223372036854775809ns",
        ] {
            assert!(parse_duration(bad, "d").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_in_go_form() {
        assert_eq!(
            format_time(1_700_000_000, 0, "t").unwrap(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            format_micro_time(1_700_000_000, 123_456_789, "t").unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", false, "t").unwrap(),
            (1_700_000_000, 0)
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20.123456789+01:00", true, "t").unwrap(),
            (1_700_000_000, 123_456_000)
        );
        assert!(parse_time("yesterday", false, "t").is_err());
    }
}

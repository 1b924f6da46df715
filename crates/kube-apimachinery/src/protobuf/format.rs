//! The JSON forms of meta/v1 Time, MicroTime and Duration, as Go writes them.

use std::fmt::Write as _;

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, or `None` outside the years 0 to 9999 (which Go's
/// `Time.MarshalJSON` refuses). Written digit by digit: objects carry many timestamps.
fn date_time(seconds: i64) -> Option<String> {
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let two = |out: &mut [u8], value: u32| {
        out[0] = b'0' + (value / 10) as u8;
        out[1] = b'0' + (value % 10) as u8;
    };
    let mut text = *b"0000-00-00T00:00:00";
    let year = year as u32;
    two(&mut text[0..2], year / 100);
    two(&mut text[2..4], year % 100);
    two(&mut text[5..7], month);
    two(&mut text[8..10], day);
    let secs = secs as u32;
    two(&mut text[11..13], secs / 3600);
    two(&mut text[14..16], secs / 60 % 60);
    two(&mut text[17..19], secs % 60);
    let mut out = String::with_capacity(28);
    // ok: ASCII digits and separators only.
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
    Some(out)
}

/// Go's `metav1.Time` JSON: RFC 3339 in UTC, whole seconds (`2023-11-14T22:13:20Z`).
pub fn format_time(seconds: i64) -> Option<String> {
    let mut text = date_time(seconds)?;
    text.push('Z');
    Some(text)
}

/// Go's `metav1.MicroTime` JSON: RFC 3339 in UTC with six fractional digits.
pub fn format_micro_time(seconds: i64, nanos: i32) -> Option<String> {
    let mut text = date_time(seconds)?;
    if !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    // ok: writing to a String cannot fail.
    let _ = write!(text, ".{:06}Z", nanos / 1000);
    Some(text)
}

/// Go's `time.Duration.String` (`1h0m0s`, `1.5s`, `300ms`).
pub fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    let fraction = |value: u64, digits: usize| -> String {
        if value == 0 {
            return String::new();
        }
        let text = format!("{value:0digits$}");
        format!(".{}", text.trim_end_matches('0'))
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}{}µs", u / 1_000, fraction(u % 1_000, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}{}ms", u / 1_000_000, fraction(u % 1_000_000, 6));
    }
    let total = u / 1_000_000_000;
    let seconds = format!("{}{}s", total % 60, fraction(u % 1_000_000_000, 9));
    let (hours, minutes) = (total / 3600, total / 60 % 60);
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}")
    } else {
        format!("{sign}{seconds}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_go_form() {
        assert_eq!(format_time(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(-1).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(
            format_time(-62_135_596_800).unwrap(),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(
            format_time(253_402_300_799).unwrap(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(format_time(253_402_300_800), None);
        assert_eq!(format_time(-62_167_219_201), None);
        assert_eq!(
            format_micro_time(1_700_000_000, 123_456_789).unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(format_micro_time(1, 1_000_000_000), None);
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // Day counts against a plain day-by-day calendar walk.
        let (mut year, mut month, mut day) = (1970i64, 1u32, 1u32);
        for days in 0..146_097i64 {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let month_len = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > month_len {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }

    #[test]
    fn durations_as_go_prints_them() {
        // time.Duration.String's table (go/src/time/time_test.go).
        let table: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (3_300_000_000, "3.3s"),
            (4 * 60_000_000_000 + 5_000_000_000, "4m5s"),
            (4 * 60_000_000_000 + 5_001_000_000, "4m5.001s"),
            (
                5 * 3_600_000_000_000 + 6 * 60_000_000_000 + 7_001_000_000,
                "5h6m7.001s",
            ),
            (8 * 60_000_000_000 + 1, "8m0.000000001s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (-1_500_000_000, "-1.5s"),
            (3_600_000_000_000, "1h0m0s"),
        ];
        for (nanos, text) in table {
            assert_eq!(format_duration(*nanos), *text, "{nanos}");
        }
    }
}

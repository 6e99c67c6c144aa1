//! `new Date(x)`, `Date.parse(x)` and `toISOString()` for the values the language has:
//! ECMAScript's date-time string format (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, optionally
//! `THH:mm`, `:ss`, `.sss`, then `Z` or `±HH:mm`; `±YYYYYY` years). A date-time without an
//! offset is read in UTC (userport's local time zone). Other strings are invalid dates
//! (JavaScript engines also guess at some other formats; userport does not).

use super::value::Value;

/// The largest time value a date can hold, in milliseconds from the epoch.
const MAX_TIME: f64 = 8.64e15;

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// TimeClip.
fn clip(t: f64) -> f64 {
    if !t.is_finite() || t.abs() > MAX_TIME {
        f64::NAN
    } else {
        t.trunc() + 0.0
    }
}

/// `Date.parse(text)`: milliseconds from the epoch, or NaN.
pub fn parse(text: &str) -> f64 {
    parse_iso(text).map_or(f64::NAN, clip)
}

fn parse_iso(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize, n: usize| -> Option<i64> {
        let s = b.get(*i..*i + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *i += n;
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let year = match b.first()? {
        b'+' | b'-' => {
            let negative = b[0] == b'-';
            i = 1;
            let y = digits(&mut i, 6)?;
            if negative && y == 0 {
                return None;
            }
            if negative { -y } else { y }
        }
        _ => digits(&mut i, 4)?,
    };
    let (mut month, mut day) = (1, 1);
    if b.get(i) == Some(&b'-') {
        i += 1;
        month = digits(&mut i, 2)?;
        if b.get(i) == Some(&b'-') {
            i += 1;
            day = digits(&mut i, 2)?;
        }
    }
    // Like V8, a day up to 31 is accepted in any month and runs over into the next one.
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut millis) = (0, 0, 0, 0.0);
    let mut offset_minutes = 0;
    if b.get(i) == Some(&b'T') {
        i += 1;
        hour = digits(&mut i, 2)?;
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        minute = digits(&mut i, 2)?;
        if b.get(i) == Some(&b':') {
            i += 1;
            second = digits(&mut i, 2)?;
            if b.get(i) == Some(&b'.') {
                i += 1;
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                let frac = &text[start..i.min(start + 3)];
                millis = format!("{frac:0<3}").parse::<f64>().ok()?;
            }
        }
        if hour > 24
            || minute > 59
            || second > 59
            || (hour == 24 && (minute, second, millis) != (0, 0, 0.0))
        {
            return None;
        }
        match b.get(i) {
            Some(b'Z') => i += 1,
            Some(&sign @ (b'+' | b'-')) => {
                i += 1;
                let h = digits(&mut i, 2)?;
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i += 1;
                let m = digits(&mut i, 2)?;
                if h > 23 || m > 59 {
                    return None;
                }
                offset_minutes = (h * 60 + m) * if sign == b'+' { 1 } else { -1 };
            }
            _ => {}
        }
    }
    if i != b.len() {
        return None;
    }
    let days = days_from_civil(year, month, day) as f64;
    Some(
        days * 86_400_000.0
            + ((hour * 60 + minute - offset_minutes) * 60 + second) as f64 * 1000.0
            + millis,
    )
}

/// The time value of `new Date(value)`.
pub fn time_value(value: &Value<'_>) -> f64 {
    match value.to_primitive() {
        Value::Str(s) => parse(&s),
        Value::Undefined => f64::NAN,
        other => clip(other.to_number()),
    }
}

/// `toISOString()`; `None` for an invalid date (JavaScript throws a RangeError).
pub fn to_iso_string(t: f64) -> Option<String> {
    if t.is_nan() {
        return None;
    }
    let t = t as i64;
    let days = t.div_euclid(86_400_000);
    let ms = t.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:06}", -y)
    } else {
        format!("+{y:06}")
    };
    Some(format!(
        "{year}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_strings_parse_and_print() {
        assert_eq!(parse("1970-01-01T00:00:00.000Z"), 0.0);
        assert_eq!(parse("2024-02-29T23:59:59.999Z"), 1_709_251_199_999.0);
        assert_eq!(parse("2024-02-29"), 1_709_164_800_000.0);
        assert_eq!(parse("2024-03-01T01:00+01:00"), 1_709_251_200_000.0);
        assert_eq!(parse("2023-02-29"), parse("2023-03-01"));
        assert!(parse("2023-02-32").is_nan());
        assert!(parse("March 7, 2020").is_nan());
        assert_eq!(
            to_iso_string(1_709_251_199_999.0).unwrap(),
            "2024-02-29T23:59:59.999Z"
        );
        assert_eq!(to_iso_string(-1.0).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            to_iso_string(8.64e15).unwrap(),
            "+275760-09-13T00:00:00.000Z"
        );
        assert_eq!(to_iso_string(f64::NAN), None);
        assert_eq!(parse("+275760-09-13T00:00:00.000Z"), 8.64e15);
        assert!(parse("+275760-09-13T00:00:00.001Z").is_nan());
    }
}

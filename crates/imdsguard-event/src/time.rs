//! Record times as the formats write them, read into milliseconds since the Unix epoch, and
//! printed back in one form: UTC RFC 3339 with milliseconds.
//!
//! Correlation needs one clock across formats: Sysmon and Winlogbeat write RFC 3339 with 7 or 3
//! fraction digits and `Z`, Sysmon's `UtcTime` `2026-11-20 09:14:07.203` (UTC, no zone written),
//! NXLog's `EventTime` `2026-11-20 09:14:07` (the collector's local time, no zone written),
//! Defender `2026-11-20T10:05:12Z` or with an offset, auditd and Zeek epoch seconds with a
//! fraction (`1623456789.123`). A time without a zone is read in the [`LocalZone`] its field is
//! known to be in (UTC for `UtcTime`; the zone the user names for local ones). Anything else is
//! `None`: the caller counts it, it is never guessed.

/// Milliseconds since 1970-01-01T00:00:00Z of a record time, or `None` when the text is not one
/// of the forms above (or names an impossible date). A time written without a zone is read as
/// UTC.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    parse_time_in(text, None)
}

/// [`parse_time_ms`], reading a time written without a zone in `zone` (UTC when `None`). A time
/// that names its zone or offset is read in it, whatever `zone` says.
pub fn parse_time_in(text: &str, zone: Option<&LocalZone>) -> Option<i64> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return epoch_ms(s);
    }
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some((b'.' | b',', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for i in 0..3 {
            millis = millis * 10
                + frac
                    .get(i)
                    .filter(|_| i < n)
                    .map_or(0, |d| (d - b'0') as i64);
        }
        rest = &frac[n..];
    }
    let offset_s = match rest {
        [] if zone.is_some() => {
            let zone = zone?;
            let dt = jiff::civil::DateTime::new(
                year as i16,
                month as i8,
                day as i8,
                hour as i8,
                minute as i8,
                second.min(59) as i8,
                0,
            )
            .ok()?;
            let ts = zone.tz.to_timestamp(dt).ok()?;
            return Some(ts.as_millisecond() + millis);
        }
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, tail @ ..] => {
            let h = digits(&[*h1, *h2])?;
            let m = match tail {
                [] => 0,
                [b':', m1, m2] | [m1, m2] => digits(&[*m1, *m2])?,
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let o = (h * 3600 + m * 60) as i64;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year as i64, month, day);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second.min(59)) as i64 - offset_s;
    Some(secs * 1000 + millis)
}

/// The zone of record times written without one: UTC, a fixed offset (`+05:30`, `-0400`) or an
/// IANA zone (`America/New_York`, read from the system's time zone database, daylight saving
/// included).
#[derive(Debug, Clone)]
pub struct LocalZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl LocalZone {
    /// The zone `text` names, or why it names none.
    pub fn parse(text: &str) -> Result<LocalZone, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") {
            return Ok(LocalZone {
                name: "UTC".into(),
                tz: jiff::tz::TimeZone::UTC,
            });
        }
        if let Some(sign) = t.strip_prefix(['+', '-']).map(|_| t.as_bytes()[0]) {
            let digits: String = t[1..].chars().filter(|c| *c != ':').collect();
            let (h, m) = match digits.len() {
                2 => (digits.parse::<i32>().ok(), Some(0)),
                4 => (
                    digits[..2].parse::<i32>().ok(),
                    digits[2..].parse::<i32>().ok(),
                ),
                _ => (None, None),
            };
            let (Some(h), Some(m)) = (h, m) else {
                return Err(format!(
                    "{t:?} is not an offset (write +HH:MM or -HHMM, such as -04:00)"
                ));
            };
            if h > 18 || m > 59 {
                return Err(format!("{t:?} is not an offset: at most ±18:00"));
            }
            let secs = (h * 3600 + m * 60) * if sign == b'-' { -1 } else { 1 };
            let offset = jiff::tz::Offset::from_seconds(secs).map_err(|e| e.to_string())?;
            return Ok(LocalZone {
                name: t.to_owned(),
                tz: jiff::tz::TimeZone::fixed(offset),
            });
        }
        match jiff::tz::TimeZone::get(t) {
            Ok(tz) => Ok(LocalZone {
                name: t.to_owned(),
                tz,
            }),
            Err(e) => Err(format!(
                "{t:?} is not a time zone: give an IANA name (America/New_York), an offset \
                 (-04:00) or UTC ({e})"
            )),
        }
    }

    /// The zone as the user named it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Where a record's time field keeps its clock, when the field writes no zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// UTC, by the field's definition (Sysmon's `UtcTime`, auditd's epoch) or by its zone.
    #[default]
    Utc,
    /// The writer's local time with no zone (NXLog's `EventTime`): read in the zone the user
    /// gives, else as UTC and counted.
    Local,
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds (`2026-11-20T09:14:07.000Z`).
/// Written digit by digit: every event's time goes through here.
pub fn format_time_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, rem) = (rem / 3_600_000, rem % 3_600_000);
    let (min, rem) = (rem / 60_000, rem % 60_000);
    if !(0..=9999).contains(&y) {
        return format!(
            "{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{:02}.{:03}Z",
            rem / 1000,
            rem % 1000
        );
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, i64::from(m));
    put(8, 2, i64::from(d));
    put(11, 2, h);
    put(14, 2, min);
    put(17, 2, rem / 1000);
    put(20, 3, rem % 1000);
    String::from_utf8(b.to_vec()).expect("ASCII digits and separators")
}

fn epoch_ms(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || whole.len() > 12 || frac.contains('.') {
        return None;
    }
    // Up to the end of the year 9999, the last time RFC 3339 writes.
    let secs: i64 = whole.parse().ok().filter(|s| *s <= 253_402_300_799)?;
    let mut millis = 0i64;
    for i in 0..3 {
        millis = millis * 10 + frac.as_bytes().get(i).map_or(0, |d| (d - b'0') as i64);
    }
    Some(secs * 1000 + millis)
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + (c - b'0') as u32)
    })
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Epoch seconds past the year 9999 are no time RFC 3339 can write back: refused, so every
    /// time a decoder keeps reads again (found by fuzzing Zeek and flow logs).
    #[test]
    fn epoch_times_stop_at_the_year_9999() {
        let last = parse_time_ms("253402300799").unwrap();
        assert_eq!(format_time_ms(last), "9999-12-31T23:59:59.000Z");
        assert_eq!(parse_time_ms("253402300800"), None);
        assert_eq!(parse_time_ms("999999999999.5"), None);
    }

    #[test]
    fn the_forms_the_decoders_write() {
        // 2026-11-20T09:14:07Z = 1795166047 s (`date -u -d 2026-11-20T09:14:07Z +%s`).
        let t = 1_795_166_047_000;
        assert_eq!(parse_time_ms("2026-11-20T09:14:07Z"), Some(t));
        assert_eq!(parse_time_ms("2026-11-20 09:14:07"), Some(t));
        assert_eq!(parse_time_ms("2026-11-20T09:14:07.2030000Z"), Some(t + 203));
        assert_eq!(parse_time_ms("2026-11-20T09:14:07.9Z"), Some(t + 900));
        assert_eq!(parse_time_ms("2026-11-20T10:14:07+01:00"), Some(t));
        assert_eq!(parse_time_ms("2026-11-20T04:14:07-0500"), Some(t));
        assert_eq!(parse_time_ms("1795166047.25"), Some(t + 250));
        assert_eq!(parse_time_ms("1795166047"), Some(t));
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time_ms("1969-12-31T23:59:59Z"), Some(-1000));
        assert_eq!(
            parse_time_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn times_without_a_zone_are_read_in_the_zone_given() {
        let ny = LocalZone::parse("America/New_York").unwrap();
        // EDT in September (UTC-4), EST in December (UTC-5).
        assert_eq!(
            parse_time_in("2020-09-04 03:08:22", Some(&ny)).map(format_time_ms),
            Some("2020-09-04T07:08:22.000Z".to_owned())
        );
        assert_eq!(
            parse_time_in("2020-12-04 03:08:22.5", Some(&ny)).map(format_time_ms),
            Some("2020-12-04T08:08:22.500Z".to_owned())
        );
        // A time that writes its zone keeps it.
        assert_eq!(
            parse_time_in("2020-09-04T03:08:22Z", Some(&ny)),
            parse_time_ms("2020-09-04T03:08:22Z")
        );
        let fixed = LocalZone::parse("+05:30").unwrap();
        assert_eq!(
            parse_time_in("2026-11-20 09:14:07", Some(&fixed)),
            parse_time_ms("2026-11-20T03:44:07Z")
        );
        assert_eq!(
            LocalZone::parse("-0400").map(|z| parse_time_in("2026-11-20 09:14:07", Some(&z))),
            Ok(parse_time_ms("2026-11-20T13:14:07Z"))
        );
        for bad in ["Mars/Olympus", "+25:00", "+5", "EDT4"] {
            assert!(LocalZone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_is_not_a_time_is_none() {
        for s in [
            "",
            "yesterday",
            "2026-11-20",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T09:14:07.Z",
            "2026-11-20T09:14:07 UTC",
            "2026-11-20T09:14:07+1",
            "1.2.3",
            "2026-11-20T09:14:07é",
        ] {
            assert_eq!(parse_time_ms(s), None, "{s}");
        }
    }

    #[test]
    fn every_instant_of_four_digit_years_round_trips() {
        // A deterministic spread over years 0001..9999 (xorshift), plus the edges.
        const YEAR_1: i64 = -62_135_596_800_000;
        const YEAR_10000: i64 = 253_402_300_800_000;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut all = vec![YEAR_1, YEAR_10000 - 1, 0, -1];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            all.push(YEAR_1 + (x % (YEAR_10000 - YEAR_1) as u64) as i64);
        }
        for ms in all {
            assert_eq!(parse_time_ms(&format_time_ms(ms)), Some(ms), "{ms}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for ms in [
            0,
            1_795_166_047_203,
            1_709_164_800_000,
            951_782_400_000,
            -1000,
        ] {
            assert_eq!(parse_time_ms(&format_time_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(
            format_time_ms(1_795_166_047_203),
            "2026-11-20T09:14:07.203Z"
        );
    }
}

//! Record times as the formats write them, read into milliseconds since the Unix epoch.
//!
//! Correlation needs one clock across formats: Sysmon and Winlogbeat write RFC 3339 with 7 or 3
//! fraction digits and `Z`, NXLog `2026-11-20 09:14:07` (no zone: read as UTC, as NXLog's
//! `EventTime` is written by the collector in UTC unless configured otherwise), Defender
//! `2026-11-20T10:05:12Z` or with an offset, auditd and Zeek epoch seconds with a fraction
//! (`1623456789.123`). Anything else is `None`: the caller counts it, it is never guessed.

/// Milliseconds since 1970-01-01T00:00:00Z of a record time, or `None` when the text is not one
/// of the forms above (or names an impossible date).
pub fn parse_time_ms(text: &str) -> Option<i64> {
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

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds (`2026-11-20T09:14:07.000Z`).
pub fn format_time_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, rem) = (rem / 3_600_000, rem % 3_600_000);
    let (min, rem) = (rem / 60_000, rem % 60_000);
    format!(
        "{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{:02}.{:03}Z",
        rem / 1000,
        rem % 1000
    )
}

fn epoch_ms(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || whole.len() > 12 || frac.contains('.') {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
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

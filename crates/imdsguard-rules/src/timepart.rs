//! Parts of a date-time value, for Sigma 2.1's time modifiers (`minute`, `hour`, `day`, `week`,
//! `month`, `year`): the value is read as an ISO 8601 date-time as it is written
//! (`2019-02-13T18:01:41.5938Z`, `2019-02-13 18:01:41`, `2019/02/13`), with no time-zone
//! conversion (the specification says the modifiers do none). `week` is the ISO 8601 week number
//! (1–53, weeks starting on Monday).

/// A part of a date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimePart {
    /// 0–59.
    Minute,
    /// 0–23.
    Hour,
    /// Day of the month, 1–31.
    Day,
    /// ISO 8601 week of the year, 1–53.
    Week,
    /// 1–12.
    Month,
    /// The year.
    Year,
}

impl TimePart {
    /// The Sigma modifier's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TimePart::Minute => "minute",
            TimePart::Hour => "hour",
            TimePart::Day => "day",
            TimePart::Week => "week",
            TimePart::Month => "month",
            TimePart::Year => "year",
        }
    }

    /// The part of `text`, when `text` reads as a date (and a time, for minutes and hours).
    pub fn of(self, text: &str) -> Option<i64> {
        let (y, mo, d, time) = parse(text.trim())?;
        Some(match self {
            TimePart::Year => y,
            TimePart::Month => mo,
            TimePart::Day => d,
            TimePart::Week => iso_week(y, mo, d),
            TimePart::Hour => time?.0,
            TimePart::Minute => time?.1,
        })
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

type Parsed = (i64, i64, i64, Option<(i64, i64)>);

fn parse(t: &str) -> Option<Parsed> {
    let b = t.as_bytes();
    if b.len() < 10 || !(b[4] == b'-' || b[4] == b'/') || b[7] != b[4] {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if !(1..=12).contains(&mo) || !(1..=days_in_month(y, mo)).contains(&d) {
        return None;
    }
    let rest = &b[10..];
    let time = if rest.len() >= 6 && (rest[0] == b'T' || rest[0] == b't' || rest[0] == b' ') {
        if rest[3] != b':' {
            return None;
        }
        let (h, mi) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
        if h > 23 || mi > 59 {
            return None;
        }
        Some((h, mi))
    } else if rest.is_empty() {
        None
    } else {
        return None;
    };
    Some((y, mo, d, time))
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if leap(y) => 29,
        _ => 28,
    }
}

/// Monday = 1 … Sunday = 7.
fn weekday(y: i64, m: i64, d: i64) -> i64 {
    // Days since 1970-01-01 (a Thursday), by Howard Hinnant's civil-date algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days + 3).rem_euclid(7) + 1
}

fn weeks_in_year(y: i64) -> i64 {
    let jan1 = weekday(y, 1, 1);
    if jan1 == 4 || (leap(y) && jan1 == 3) {
        53
    } else {
        52
    }
}

fn iso_week(y: i64, m: i64, d: i64) -> i64 {
    let ordinal = (1..m).map(|k| days_in_month(y, k)).sum::<i64>() + d;
    let w = (ordinal - weekday(y, m, d) + 10) / 7;
    if w < 1 {
        weeks_in_year(y - 1)
    } else if w > weeks_in_year(y) {
        1
    } else {
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_the_forms_logs_write() {
        let t = "2019-02-13T18:01:41.593830Z";
        assert_eq!(TimePart::Year.of(t), Some(2019));
        assert_eq!(TimePart::Month.of(t), Some(2));
        assert_eq!(TimePart::Day.of(t), Some(13));
        assert_eq!(TimePart::Hour.of(t), Some(18));
        assert_eq!(TimePart::Minute.of(t), Some(1));
        assert_eq!(TimePart::Week.of(t), Some(7));
        assert_eq!(TimePart::Hour.of(" 2026-12-03 23:59:00+05:00"), Some(23));
        assert_eq!(TimePart::Day.of("2026/12/03"), Some(3));
        // A date alone has no hour; text that is not a date has no part.
        assert_eq!(TimePart::Hour.of("2026-12-03"), None);
        for bad in [
            "",
            "13/02/2019",
            "2019-13-01",
            "2019-02-30",
            "2019-02-13X",
            "Feb 17 13:40:03",
            "2019-02-13T25:00",
        ] {
            assert_eq!(
                TimePart::Day.of(bad).or(TimePart::Hour.of(bad)),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn iso_weeks_at_the_year_ends() {
        // Known ISO 8601 weeks (e.g. 2021-01-03 is in week 53 of 2020; 2024-12-30 in week 1 of 2025).
        for (date, w) in [
            ("2021-01-03", 53),
            ("2021-01-04", 1),
            ("2024-12-29", 52),
            ("2024-12-30", 1),
            ("2026-01-01", 1),
            ("2026-12-31", 53),
            ("2027-01-03", 53),
            ("2027-01-04", 1),
            ("2000-02-29", 9),
        ] {
            assert_eq!(TimePart::Week.of(date), Some(w), "{date}");
        }
    }
}

//! Instants and durations as people read them: UTC with the offset stated, `T+mm:ss` from
//! impact start, and "4 m 12 s". No calendar crate: the journal holds Unix milliseconds
//! and alerts hold RFC 3339, and only those two shapes are needed.

/// `2026-11-22T03:00:12.345Z`: RFC 3339 in UTC with milliseconds (the `Z` is the offset).
pub fn utc(ms: u64) -> String {
    let base = medic_core::clock::rfc3339(ms);
    format!("{}.{:03}Z", &base[..19], ms % 1000)
}

/// `03:00:12`: the UTC wall-clock time of day, for timeline rows.
pub fn clock(ms: u64) -> String {
    medic_core::clock::rfc3339(ms)[11..19].to_string()
}

/// `T+04:12` (`T+1:04:12` past an hour, `T-00:05` before the origin): the offset of `ms`
/// from `origin_ms`, whole seconds rounded down.
pub fn t_plus(ms: u64, origin_ms: u64) -> String {
    let (sign, d) = if ms >= origin_ms {
        ('+', ms - origin_ms)
    } else {
        ('-', origin_ms - ms)
    };
    let s = d / 1000;
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("T{sign}{h}:{m:02}:{s:02}")
    } else {
        format!("T{sign}{m:02}:{s:02}")
    }
}

/// A duration for people: `850 ms`, `4.2 s`, `12 s`, `4 m 12 s`, `1 h 4 m`, `8 d 2 h`.
pub fn human(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..10_000 => format!("{}.{} s", ms / 1000, (ms % 1000) / 100),
        10_000..60_000 => format!("{s} s"),
        60_000..3_600_000 => format!("{} m {} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {} m", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Milliseconds since the Unix epoch from an RFC 3339 instant (`2026-11-22T03:00:00Z`,
/// fractional seconds and `±HH:MM` offsets accepted, as Alertmanager's `startsAt`).
/// `None` for anything else, and for instants before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let three: String = digits.chars().chain("000".chars()).take(3).collect();
        frac_ms = three.parse().ok()?;
    }
    let offset_min = match s.get(i..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm), the inverse of medic_core's rfc3339.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + frac_ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(clock(1_700_000_000_123), "22:13:20");
        assert_eq!(t_plus(252_999, 0), "T+04:12");
        assert_eq!(t_plus(3_852_000, 0), "T+1:04:12");
        assert_eq!(t_plus(0, 5_000), "T-00:05");
        assert_eq!(human(850), "850 ms");
        assert_eq!(human(4_250), "4.2 s");
        assert_eq!(human(12_900), "12 s");
        assert_eq!(human(252_000), "4 m 12 s");
        assert_eq!(human(3_840_000), "1 h 4 m");
        assert_eq!(human(8 * 86_400_000 + 7_200_000), "8 d 2 h");
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123456+01:00"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2023-13-14T22:13:20Z"), None);
    }
}

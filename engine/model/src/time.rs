//! Times: the one place medic reads and writes them.
//!
//! medic keeps instants as UTC RFC 3339 text (`2024-05-01T10:00:00.5Z`) in incidents and as
//! Unix milliseconds in journals and records. This module converts between the two and
//! reads the formats alert senders actually use:
//!
//! | written as | example | read as |
//! |---|---|---|
//! | RFC 3339 (Alertmanager, Grafana, PagerDuty) | `2024-05-01T12:00:00.5+02:00` | that instant |
//! | Rails / Ruby `Time#to_s` | `2026-11-30 10:02:14 +0100` | that instant |
//! | Zabbix `{EVENT.DATE} {EVENT.TIME}` | `2026.11.30 10:02:14` | UTC (no zone given) |
//! | date and time without a zone | `2026-11-30 10:02:14`, `2026-11-30T10:02:14` | UTC |
//! | Unix seconds or milliseconds | `1796032934`, `1796032934512` | that instant |
//!
//! No calendar crate: the civil-date arithmetic is Howard Hinnant's public-domain
//! `days_from_civil` / `civil_from_days`, valid for every year medic can meet.
//!
//! ```
//! use medic_model::time;
//! assert_eq!(time::to_utc("2024-05-01T12:00:00.5+02:00").as_deref(), Some("2024-05-01T10:00:00.5Z"));
//! assert_eq!(time::read("2026-11-30 10:02:14 +0100").as_deref(), Some("2026-11-30T09:02:14Z"));
//! assert_eq!(time::to_ms("2026-11-30T09:02:14.512Z"), Some(1_796_029_334_512));
//! assert_eq!(time::format_ms(1_796_029_334_512), "2026-11-30T09:02:14.512Z");
//! assert_eq!(time::format_secs(1_796_029_334_512), "2026-11-30T09:02:14Z");
//! ```

/// A strict RFC 3339 time normalised to UTC (`...Z`), fractional seconds kept as given;
/// `None` when `t` is not one (a zone is required, as RFC 3339 says).
pub fn to_utc(t: &str) -> Option<String> {
    let p = Parts::rfc3339(t)?;
    Some(p.utc_text())
}

/// A time in any of the formats in the [module table](self), normalised to UTC RFC 3339;
/// `None` when it is none of them. Alert intake falls back to the receive time then.
pub fn read(t: &str) -> Option<String> {
    let t = t.trim();
    if let Some(p) = Parts::rfc3339(t) {
        return Some(p.utc_text());
    }
    if !t.is_empty() && t.len() <= 13 && t.bytes().all(|c| c.is_ascii_digit()) {
        // Ten digits are seconds until the year 2286; thirteen are milliseconds.
        let n: i64 = t.parse().ok()?;
        return match t.len() {
            9 | 10 => Some(format_ms_i64(n.checked_mul(1000)?)),
            13 => Some(format_ms_i64(n)),
            _ => None,
        };
    }
    Parts::loose(t).map(|p| p.utc_text())
}

/// Unix milliseconds of a strict RFC 3339 time (fraction truncated to milliseconds); `None`
/// when `t` is not one.
pub fn to_ms(t: &str) -> Option<i64> {
    let p = Parts::rfc3339(t)?;
    let frac_ms = p
        .frac
        .get(1..)
        .map(|digits| {
            let mut ms = 0i64;
            for (i, c) in digits.bytes().take(3).enumerate() {
                ms += i64::from(c - b'0') * [100, 10, 1][i];
            }
            ms
        })
        .unwrap_or(0);
    Some(p.epoch_secs() * 1000 + frac_ms)
}

/// RFC 3339, UTC, millisecond precision, for a Unix-millisecond instant:
/// `2026-11-30T09:02:14.512Z`.
pub fn format_ms(ms: u64) -> String {
    format_ms_i64(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// RFC 3339, UTC, whole seconds (the milliseconds are dropped), for a Unix-millisecond
/// instant: `2026-11-30T09:02:14Z`.
pub fn format_secs(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX / 1000);
    let (date, h, m, s) = split(secs);
    format!("{date}T{h:02}:{m:02}:{s:02}Z")
}

fn format_ms_i64(ms: i64) -> String {
    let (date, h, m, s) = split(ms.div_euclid(1000));
    format!("{date}T{h:02}:{m:02}:{s:02}.{:03}Z", ms.rem_euclid(1000))
}

/// `YYYY-MM-DD` and the time of day of Unix seconds.
fn split(secs: i64) -> (String, i64, i64, i64) {
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    (
        format!("{y:04}-{mo:02}-{d:02}"),
        sod / 3_600,
        sod % 3_600 / 60,
        sod % 60,
    )
}

/// A parsed date and time with its offset from UTC.
struct Parts<'t> {
    date: (i64, i64, i64),
    time: (i64, i64, i64),
    /// `.123` as written, or empty.
    frac: &'t str,
    offset_min: i64,
}

impl<'t> Parts<'t> {
    /// `YYYY-MM-DD(T|t| )hh:mm:ss[.fff](Z|z|±hh:mm)`.
    fn rfc3339(t: &'t str) -> Option<Parts<'t>> {
        let b = t.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let (mut p, rest) = Parts::date_time(t)?;
        p.offset_min = match rest {
            "Z" | "z" => 0,
            _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => offset(rest)?,
            _ => return None,
        };
        Some(p)
    }

    /// The formats without `T` or a colon in the offset, or without a zone (read as UTC):
    /// `YYYY-MM-DD hh:mm:ss[.fff] [±hhmm|±hh:mm|UTC|Z]`, `YYYY.MM.DD hh:mm:ss`,
    /// `YYYY/MM/DD hh:mm:ss`, `YYYY-MM-DDThh:mm:ss`.
    fn loose(t: &'t str) -> Option<Parts<'t>> {
        let b = t.as_bytes();
        let sep = *b.get(4)?;
        if b.len() < 19
            || !matches!(sep, b'-' | b'.' | b'/')
            || b[7] != sep
            || !matches!(b[10], b'T' | b't' | b' ')
        {
            return None;
        }
        let (mut p, rest) = Parts::date_time(t)?;
        let zone = rest.trim_start();
        p.offset_min = match zone {
            "" | "Z" | "z" | "UTC" | "GMT" => 0,
            _ if zone.len() == 5 => {
                let with_colon = format!("{}:{}", zone.get(..3)?, zone.get(3..)?);
                offset(&with_colon)?
            }
            _ if zone.len() == 6 && zone.as_bytes()[3] == b':' => offset(zone)?,
            _ => return None,
        };
        Some(p)
    }

    /// The date and time of day at the start of `t`, checked, and what follows them.
    fn date_time(t: &'t str) -> Option<(Parts<'t>, &'t str)> {
        let b = t.as_bytes();
        if b.len() < 19 || b[13] != b':' || b[16] != b':' {
            return None;
        }
        // Every access goes through `get`: this runs on untrusted bytes and must not panic.
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let s = t.get(r)?;
            if s.bytes().all(|c| c.is_ascii_digit()) {
                s.parse().ok()
            } else {
                None
            }
        };
        let date = (num(0..4)?, num(5..7)?, num(8..10)?);
        let time = (num(11..13)?, num(14..16)?, num(17..19)?);
        let mut rest = t.get(19..)?;
        let mut frac = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            frac = t.get(19..20 + n)?;
            rest = r.get(n..)?;
        }
        let (year, month, day) = date;
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let month_ok = (1..=12).contains(&month);
        if !month_ok
            || !(1..=days_in[(month - 1) as usize]).contains(&day)
            || time.0 > 23
            || time.1 > 59
            || time.2 > 60
        {
            return None;
        }
        let p = Parts {
            date,
            time,
            frac,
            offset_min: 0,
        };
        Some((p, rest))
    }

    fn epoch_secs(&self) -> i64 {
        let (y, mo, d) = self.date;
        let (h, mi, s) = self.time;
        days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + s - self.offset_min * 60
    }

    fn utc_text(&self) -> String {
        let (date, h, m, s) = split(self.epoch_secs());
        format!("{date}T{h:02}:{m:02}:{s:02}{}Z", self.frac)
    }
}

/// `±hh:mm` in minutes.
fn offset(z: &str) -> Option<i64> {
    let sign = match z.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = |s: Option<&str>| {
        s.filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<i64>().ok())
    };
    let (h, m) = (digits(z.get(1..3))?, digits(z.get(4..6))?);
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 60 + m))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_rfc3339_normalises_to_utc() {
        assert_eq!(
            to_utc("2024-02-29T23:30:00-01:00").as_deref(),
            Some("2024-03-01T00:30:00Z")
        );
        assert_eq!(
            to_utc("2024-01-01T00:10:00+00:30").as_deref(),
            Some("2023-12-31T23:40:00Z")
        );
        assert_eq!(
            to_utc("2024-05-01t10:00:00.5z").as_deref(),
            Some("2024-05-01T10:00:00.5Z")
        );
        for bad in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T10:00:00",
            "2024-05-01",
            "2024-05-01T25:00:00Z",
            "2024-05-01T10:00:00.Z",
            "2026-11-30 10:02:14 +0100",
        ] {
            assert_eq!(to_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_the_formats_senders_use() {
        let cases = [
            ("2026-11-30T10:02:14.512Z", "2026-11-30T10:02:14.512Z"),
            ("2026-11-30 10:02:14 +0100", "2026-11-30T09:02:14Z"),
            ("2026-11-30 10:02:14 -05:30", "2026-11-30T15:32:14Z"),
            ("2026-11-30 10:02:14 UTC", "2026-11-30T10:02:14Z"),
            ("2026.11.30 10:02:14", "2026-11-30T10:02:14Z"),
            ("2026/11/30 10:02:14", "2026-11-30T10:02:14Z"),
            ("2026-11-30T10:02:14", "2026-11-30T10:02:14Z"),
            (" 2026-11-30 10:02:14.25 ", "2026-11-30T10:02:14.25Z"),
            ("1796032934", "2026-11-30T10:02:14.000Z"),
            ("1796032934512", "2026-11-30T10:02:14.512Z"),
        ];
        for (given, want) in cases {
            assert_eq!(read(given).as_deref(), Some(want), "{given}");
        }
        for bad in [
            "",
            "yesterday",
            "30/11/2026 10:02",
            "2026-11-30",
            "2026.13.30 10:02:14",
            "2026-11-30 10:02:14 +01",
            "2026-11-30 10:02:14 CET",
            "12345678901",
        ] {
            assert_eq!(read(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn milliseconds_round_trip() {
        assert_eq!(to_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(to_ms("2026-11-30T10:02:14.5129Z"), Some(1_796_032_934_512));
        assert_eq!(
            to_ms("2026-11-30T11:02:14.5+01:00"),
            Some(1_796_032_934_500)
        );
        assert_eq!(format_ms(1_796_032_934_512), "2026-11-30T10:02:14.512Z");
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_secs(1_700_000_000_999), "2023-11-14T22:13:20Z");
        assert_eq!(format_secs(951_782_400_000), "2000-02-29T00:00:00Z");
        for days in [-1_000_000, -1, 0, 1, 19_844, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

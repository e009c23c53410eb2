//! Durations (`500ms`, `30s`, `1m30s`, `2h`) and sizes (`64MiB`, `1MB`, `512`).

/// Milliseconds per duration unit, longest name first so `ms` wins over `m`.
const DURATION_UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Bytes per size unit. Binary (`KiB`) and decimal (`KB`) units both exist in the wild and
/// mean different things; accepting both exactly beats guessing.
const SIZE_UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// Parses `digits[.digits]` at the start of `s`: (whole, fraction digits, rest).
fn number_prefix(s: &str) -> Option<(u64, &str, &str)> {
    let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if int_end == 0 {
        return None;
    }
    let whole: u64 = s[..int_end].parse().ok()?;
    let rest = &s[int_end..];
    if let Some(after_dot) = rest.strip_prefix('.') {
        let frac_end = after_dot
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_dot.len());
        if frac_end == 0 {
            return None;
        }
        Some((whole, &after_dot[..frac_end], &after_dot[frac_end..]))
    } else {
        Some((whole, "", rest))
    }
}

/// `whole.frac * unit`, in integers so `0.1s` is exactly 100ms. Sub-unit remainders round down.
fn scale(whole: u64, frac: &str, unit: u64) -> Option<u64> {
    let mut total = whole.checked_mul(unit)?;
    let mut denom: u64 = 1;
    let mut num: u64 = 0;
    // Digits past 18 cannot change the result for any unit here and would overflow.
    for d in frac.bytes().take(18) {
        denom *= 10;
        num = num * 10 + u64::from(d - b'0');
    }
    if denom > 1 {
        total = total.checked_add(
            u64::try_from(u128::from(num) * u128::from(unit) / u128::from(denom)).ok()?,
        )?;
    }
    Some(total)
}

/// Parses a duration: one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`, `d`,
/// e.g. `500ms`, `1.5s`, `1m30s`. A bare number is rejected: `30` could mean seconds or
/// milliseconds, and guessing wrong makes a timeout 1000 times off.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let mut rest = s;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let (whole, frac, after) = number_prefix(rest)?;
        let (name, per) = DURATION_UNITS
            .iter()
            .find(|(name, _)| after.starts_with(name))?;
        total = total.checked_add(scale(whole, frac, *per)?)?;
        rest = &after[name.len()..];
    }
    Some(total)
}

/// Parses a size: a number of bytes, optionally with a unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`,
/// `KB`, `MB`, `GB`, `TB`), e.g. `64MiB`, `1.5GB`, `4096`.
pub fn parse_size_bytes(s: &str) -> Option<u64> {
    let (whole, frac, unit) = number_prefix(s)?;
    let per = if unit.is_empty() {
        if !frac.is_empty() {
            return None; // fractional bytes
        }
        1
    } else {
        SIZE_UNITS.iter().find(|(name, _)| *name == unit)?.1
    };
    scale(whole, frac, per)
}

/// A likely intended duration for text like `30 seconds` or `2 Min`, for error hints.
pub(crate) fn suggest_duration(s: &str) -> Option<String> {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let split = compact.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = compact.split_at(split);
    let unit = match unit {
        "ms" | "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => "ms",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "m" | "min" | "mins" | "minute" | "minutes" => "m",
        "h" | "hr" | "hrs" | "hour" | "hours" => "h",
        "d" | "day" | "days" => "d",
        _ => return None,
    };
    let fixed = format!("{num}{unit}");
    (parse_duration_ms(&fixed).is_some() && fixed != s).then_some(fixed)
}

/// Likely intended sizes for text like `64mb` (units are case-sensitive), for error hints.
pub(crate) fn suggest_size(s: &str) -> Option<String> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let split = compact.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = compact.split_at(split);
    let lower = unit.to_ascii_lowercase();
    let mut found: Vec<String> = SIZE_UNITS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| {
            let n = name.to_ascii_lowercase();
            // `mb` may mean either MB or MiB; `mib` only MiB.
            n == lower || (lower.len() == 2 && n == format!("{}ib", &lower[..1]))
        })
        .map(|name| format!("`{num}{name}`"))
        .collect();
    found.retain(|f| f.trim_matches('`') != s);
    (!found.is_empty() && parse_size_bytes(found[0].trim_matches('`')).is_some())
        .then(|| found.join(" or "))
}

/// Formats milliseconds the way a person writes them: `500ms`, `1.5s`, `2m`, `1h30m`, `1d`.
/// [`parse_duration_ms`] reads the result back exactly.
pub fn format_duration_ms(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let mut out = String::new();
    let mut rest = ms;
    for (name, per) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)] {
        if rest >= per {
            out.push_str(&format!("{}{name}", rest / per));
            rest %= per;
        }
    }
    if rest > 0 {
        let (secs, millis) = (rest / 1_000, rest % 1_000);
        if millis == 0 {
            out.push_str(&format!("{secs}s"));
        } else if secs == 0 && !out.is_empty() {
            out.push_str(&format!("{millis}ms"));
        } else {
            let frac = format!("{millis:03}");
            out.push_str(&format!("{secs}.{}s", frac.trim_end_matches('0')));
        }
    }
    out
}

/// Formats bytes with the largest binary unit that divides them exactly: `64MiB`, `1536B`.
pub fn format_size_bytes(bytes: u64) -> String {
    for (name, per) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= per && bytes.is_multiple_of(per) {
            return format!("{}{name}", bytes / per);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("2s"), Some(2_000));
        assert_eq!(parse_duration_ms("1.5s"), Some(1_500));
        assert_eq!(parse_duration_ms("0.1s"), Some(100));
        assert_eq!(parse_duration_ms("1m"), Some(60_000));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("2h"), Some(7_200_000));
        assert_eq!(parse_duration_ms("1d"), Some(86_400_000));
        assert_eq!(parse_duration_ms("0s"), Some(0));
        for bad in [
            "",
            "30",
            "s",
            "1.s",
            ".5s",
            "2 s",
            "2sec",
            "-1s",
            "1x",
            "1s ",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_duration_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn duration_round_trip() {
        for ms in [
            0, 1, 999, 1_000, 1_500, 1_001, 59_999, 60_000, 61_500, 90_000, 3_600_000, 3_600_001,
            86_400_000, 90_061_001,
        ] {
            let text = format_duration_ms(ms);
            assert_eq!(parse_duration_ms(&text), Some(ms), "{ms} -> {text}");
        }
        assert_eq!(format_duration_ms(1_500), "1.5s");
        assert_eq!(format_duration_ms(90_000), "1m30s");
        assert_eq!(format_duration_ms(3_600_001), "1h1ms");
        assert_eq!(format_duration_ms(86_400_000), "1d");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest_duration("30 seconds").as_deref(), Some("30s"));
        assert_eq!(suggest_duration("2 Min").as_deref(), Some("2m"));
        assert_eq!(suggest_duration("1.5 hours").as_deref(), Some("1.5h"));
        assert_eq!(suggest_duration("30s"), None);
        assert_eq!(suggest_duration("soon"), None);
        assert_eq!(suggest_size("64mb").as_deref(), Some("`64MiB` or `64MB`"));
        assert_eq!(suggest_size("64mib").as_deref(), Some("`64MiB`"));
        assert_eq!(suggest_size("64 MiB").as_deref(), Some("`64MiB`"));
        assert_eq!(suggest_size("64 apples"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size_bytes("64MiB"), Some(64 << 20));
        assert_eq!(parse_size_bytes("1KiB"), Some(1_024));
        assert_eq!(parse_size_bytes("1KB"), Some(1_000));
        assert_eq!(parse_size_bytes("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_size_bytes("0.5KiB"), Some(512));
        assert_eq!(parse_size_bytes("4096"), Some(4_096));
        assert_eq!(parse_size_bytes("10B"), Some(10));
        for bad in [
            "",
            "MiB",
            "64mib",
            "64 MiB",
            "1.5",
            "-1B",
            "64MiBs",
            "99999999999TiB",
        ] {
            assert_eq!(parse_size_bytes(bad), None, "{bad:?}");
        }
        assert_eq!(format_size_bytes(64 << 20), "64MiB");
        assert_eq!(format_size_bytes(1_536), "1536B");
        assert_eq!(format_size_bytes(3 << 30), "3GiB");
    }
}

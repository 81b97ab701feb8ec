//! RFC 3339 timestamps without a clock.
//!
//! Owns parsing of the timestamps found in evidence (for the
//! `modified-since` / `modified-until` selectors) and formatting of the
//! pinned build time. Never reads the wall clock: every time we write is
//! derived from `SOURCE_DATE_EPOCH` or the workspace setting.

/// Seconds since the Unix epoch plus nanoseconds, comparable across offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant {
    pub secs: i64,
    pub nanos: u32,
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn num(s: &str, range: std::ops::Range<usize>) -> Option<u32> {
    let part = s.get(range)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

/// Parse `YYYY-MM-DD` (midnight UTC) or a full RFC 3339 date-time
/// (`T` or space separator, optional fraction, `Z` or `±HH:MM`).
pub fn parse(s: &str) -> Option<Instant> {
    let s = s.trim();
    let (y, mo, d) = (num(s, 0..4)?, num(s, 5..7)?, num(s, 8..10)?);
    if s.as_bytes().get(4) != Some(&b'-') || s.as_bytes().get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y as i64, mo, d);
    if s.len() == 10 {
        return Some(Instant { secs: days * 86400, nanos: 0 });
    }
    let sep = *s.as_bytes().get(10)?;
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let (h, mi, se) = (num(s, 11..13)?, num(s, 14..16)?, num(s, 17..19)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let mut n: u64 = 0;
        for (i, b) in frac.bytes().take(digits).enumerate() {
            if i < 9 {
                n = n * 10 + (b - b'0') as u64;
            }
        }
        for _ in digits..9 {
            n *= 10;
        }
        nanos = n as u32;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0i64,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (oh, om) = (num(rest, 1..3)? as i64, num(rest, 4..6)? as i64);
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days * 86400 + h as i64 * 3600 + mi as i64 * 60 + se as i64 - offset;
    Some(Instant { secs, nanos })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_offsets_and_fractions() {
        let a = parse("2024-01-01T00:00:00Z").unwrap();
        let b = parse("2024-01-01T00:00:00.5Z").unwrap();
        let c = parse("2024-01-01T01:00:00+02:00").unwrap();
        assert!(a < b);
        assert!(c < a);
        assert_eq!(parse("2024-01-01").unwrap(), a);
        assert_eq!(parse("0001-01-01T00:00:00Z").unwrap().secs, -62135596800);
        assert!(parse("2024-13-01").is_none());
        assert!(parse("yesterday").is_none());
    }

    #[test]
    fn formats_pinned_time() {
        assert_eq!(format_utc(1735689600), "2025-01-01T00:00:00Z");
        assert_eq!(parse(&format_utc(1735689600)).unwrap().secs, 1735689600);
    }
}

//! Freshness of an export: `verify --max-age DURATION` (and `kit verify`).
//!
//! Owns the duration syntax and the two age checks; `verify` calls them
//! with what it already read (bounded) from the export:
//! - the manifest's `createdAt` (the pinned build time) must be no older
//!   than now − DURATION; an export without a `createdAt` (or one that
//!   does not parse as RFC 3339) fails under `--max-age`. A `createdAt` in
//!   the future passes: `--max-age` bounds age, and a build pinned a little
//!   ahead of this machine's clock (skew) is not stale;
//! - a TUF repository (`mirror:full`) must also have a
//!   `tuf/metadata/timestamp.json` whose `signed.expires` is still in the
//!   future: a client (python-tuf) would refuse it otherwise.
//!
//! DURATION is a whole number and one unit: `s` seconds, `m` minutes,
//! `h` hours, `d` days (86,400 s), `w` weeks (7 d); e.g. `3600s`, `90m`,
//! `36h`, `1d`, `2w`. Zero, a missing or unknown unit, a sign, a fraction,
//! spaces and anything over 100 years are refused (exit 2 at the CLI).
//!
//! The clock is the caller's: [`MaxAge::now`] reads `SystemTime::now()`,
//! tests pass a fixed instant. Nothing here reads a file.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest `--max-age` accepted (100 years).
pub const MAX_DURATION_SECS: u64 = 100 * 365 * 86_400;

/// A parsed `--max-age` and the instant it is measured from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxAge {
    /// The allowed age.
    pub limit: Duration,
    /// What the user wrote (`36h`), for messages.
    pub text: String,
    /// "Now": seconds since the Unix epoch.
    pub now: i64,
}

impl MaxAge {
    /// `text` parsed (see the module doc), measured from `now`.
    pub fn at(text: &str, now: SystemTime) -> Result<MaxAge, String> {
        let limit = parse_duration(text)?;
        let now = match now.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        };
        Ok(MaxAge { limit, text: text.to_string(), now })
    }

    /// `text` measured from the wall clock.
    pub fn now(text: &str) -> Result<MaxAge, String> {
        MaxAge::at(text, SystemTime::now())
    }

    /// The oldest `createdAt` that passes, in seconds since the epoch.
    fn oldest(&self) -> i64 {
        self.now.saturating_sub(i64::try_from(self.limit.as_secs()).unwrap_or(i64::MAX))
    }
}

/// `36h` → 36 hours; see the module doc for the syntax.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        Err(format!(
            "--max-age {}: {why} (a whole number and a unit: s, m, h, d or w, e.g. 36h, 7d, 2w)",
            crate::shown::name(text)
        ))
    };
    let Some(unit) = text.chars().last() else { return bad("empty") };
    let mult: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return bad("no unit or an unknown one"),
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return bad("not a whole number of units");
    }
    let Ok(n) = digits.parse::<u64>() else { return bad("too large") };
    match n.checked_mul(mult) {
        Some(0) => bad("must be more than zero"),
        Some(secs) if secs <= MAX_DURATION_SECS => Ok(Duration::from_secs(secs)),
        _ => bad("over 100 years"),
    }
}

/// A human age: `400d 3h`, `5h 2m`, `42s`.
fn age(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// The problem with the manifest's `createdAt` under `max`, if any.
pub fn check_created(created_at: Option<&str>, max: &MaxAge) -> Option<String> {
    let Some(text) = created_at else {
        return Some(format!("--max-age {}: the manifest has no createdAt, so its age is unknown", max.text));
    };
    let Some(t) = crate::timefmt::parse(text) else {
        return Some(format!(
            "--max-age {}: createdAt {} is not an RFC 3339 time",
            max.text,
            crate::shown::name(text)
        ));
    };
    (t.secs < max.oldest()).then(|| {
        format!(
            "--max-age {}: createdAt {} is {} old, older than allowed (stale export)",
            max.text,
            crate::shown::name(text),
            age(max.now.saturating_sub(t.secs))
        )
    })
}

#[derive(serde::Deserialize)]
struct Timestamp {
    signed: Signed,
}

#[derive(serde::Deserialize)]
struct Signed {
    expires: String,
}

/// The problem with a TUF `timestamp.json` (its bytes) at `max.now`, if any.
pub fn check_tuf_timestamp(bytes: &[u8], max: &MaxAge) -> Option<String> {
    let ts: Timestamp = match serde_json::from_slice(bytes) {
        Ok(t) => t,
        Err(e) => return Some(format!("--max-age {}: not TUF timestamp metadata: {e}", max.text)),
    };
    let Some(t) = crate::timefmt::parse(&ts.signed.expires) else {
        return Some(format!(
            "--max-age {}: signed.expires {} is not an RFC 3339 time",
            max.text,
            crate::shown::name(&ts.signed.expires)
        ));
    };
    (t.secs <= max.now).then(|| {
        format!(
            "--max-age {}: the TUF timestamp expired at {} ({} ago): clients refuse this repository",
            max.text,
            crate::shown::name(&ts.signed.expires),
            age(max.now.saturating_sub(t.secs))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let s = |t: &str| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(s("3600s"), Ok(3600));
        assert_eq!(s("90m"), Ok(5400));
        assert_eq!(s("36h"), Ok(129_600));
        assert_eq!(s("1d"), Ok(86_400));
        assert_eq!(s("7d"), Ok(604_800));
        assert_eq!(s("2w"), Ok(1_209_600));
        for bad in [
            "",
            "d",
            "1",
            "1x",
            "-1d",
            "+1d",
            "1.5d",
            " 1d",
            "1d ",
            "0s",
            "0d",
            "1D",
            "99999999999999999999d",
            "36501w",
            "1d2h",
            "１d",
        ] {
            assert!(s(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_duration("1y").unwrap_err().contains("--max-age 1y"));
    }

    fn at(text: &str, now: i64) -> MaxAge {
        MaxAge::at(text, UNIX_EPOCH + Duration::from_secs(now as u64)).unwrap()
    }

    #[test]
    fn created_at_against_the_limit() {
        let now = 1_735_689_600; // 2025-01-01T00:00:00Z
        let m = at("1d", now);
        assert_eq!(check_created(Some("2025-01-01T00:00:00Z"), &m), None);
        assert_eq!(check_created(Some("2024-12-31T00:00:00Z"), &m), None, "exactly 1d old passes");
        let p = check_created(Some("2024-12-30T23:59:59Z"), &m).unwrap();
        assert!(
            p.contains("createdAt 2024-12-30T23:59:59Z is 1d 0h old") && p.contains("--max-age 1d"),
            "{p}"
        );
        // the future passes (clock skew)
        assert_eq!(check_created(Some("2025-06-01T00:00:00Z"), &m), None);
        assert!(check_created(None, &m).unwrap().contains("no createdAt"));
        assert!(check_created(Some("yesterday"), &m).unwrap().contains("not an RFC 3339"));
    }

    #[test]
    fn tuf_timestamp_expiry() {
        let now = 1_735_689_600;
        let m = at("1w", now);
        let ts = |e: &str| format!(r#"{{"signatures":[],"signed":{{"_type":"timestamp","expires":"{e}"}}}}"#);
        assert_eq!(check_tuf_timestamp(ts("2025-01-03T00:00:00Z").as_bytes(), &m), None);
        let p = check_tuf_timestamp(ts("2024-12-31T00:00:00Z").as_bytes(), &m).unwrap();
        assert!(p.contains("expired at 2024-12-31T00:00:00Z (1d 0h ago)"), "{p}");
        assert!(
            check_tuf_timestamp(ts("2025-01-01T00:00:00Z").as_bytes(), &m).is_some(),
            "expiring now is expired"
        );
        assert!(check_tuf_timestamp(b"{}", &m).unwrap().contains("not TUF timestamp"));
        assert!(check_tuf_timestamp(ts("soon").as_bytes(), &m).unwrap().contains("not an RFC 3339"));
    }
}

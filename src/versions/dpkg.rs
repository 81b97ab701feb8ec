//! Debian and Ubuntu package versions, `[epoch:]upstream[-revision]`
//! (Debian Policy §5.6.12), ordered as `dpkg --compare-versions` orders
//! them. Trivy compares OS findings with `knqyf263/go-deb-version`, which
//! follows dpkg. We never rewrite a version: only the converter's own
//! orderings (range events, the highest fixed version of a merge) use this.
//!
//! The order: epochs numerically, then the upstream part, then the
//! revision (a missing one equals `0`). Each part alternates non-digit runs, compared
//! character by character with `~` before the end of the string, the end
//! before letters, and letters before every other character, and digit runs
//! compared as numbers.
//!
//! Validation follows dpkg (Debian Policy): a numeric epoch, an upstream
//! part that starts with a digit and holds only letters, digits and
//! `.+~-:` (`:` only with an epoch, `-` only with a revision), and a
//! non-empty revision of letters, digits and `.+~`. go-deb-version is more
//! lenient (it also takes `_` and an empty revision); such versions do not
//! occur in Debian or Ubuntu, and a document holding one is refused naming
//! it.

use std::cmp::Ordering;

struct Parts<'a> {
    epoch: u64,
    upstream: &'a str,
    revision: &'a str,
}

fn parse(v: &str) -> Result<Parts<'_>, String> {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) => {
            if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("version {v:?}: the epoch before ':' is not a number"));
            }
            (e.parse::<u64>().map_err(|_| format!("version {v:?}: the epoch is too large"))?, rest)
        }
        None => (0, v),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => {
            if r.is_empty() {
                return Err(format!("version {v:?}: empty revision after '-'"));
            }
            (u, r)
        }
        None => (rest, ""),
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("version {v:?}: the upstream version must start with a digit"));
    }
    let has_epoch = v.contains(':');
    if let Some(c) = upstream
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || ".+~-".contains(c) || (c == ':' && has_epoch)))
    {
        return Err(format!("version {v:?} contains {c:?}"));
    }
    if let Some(c) = revision.chars().find(|&c| !(c.is_ascii_alphanumeric() || ".+~".contains(c))) {
        return Err(format!("version {v:?}: the revision contains {c:?}"));
    }
    Ok(Parts { epoch, upstream, revision })
}

/// Checks a version; the error says why dpkg would not read it.
pub fn validate(v: &str) -> Result<(), String> {
    parse(v).map(|_| ())
}

/// The weight of one character of a non-digit run (`None`: the end, or a
/// digit, which ends the run).
fn weight(c: Option<&u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => *c as i32,
        Some(c) => *c as i32 + 256,
    }
}

/// dpkg's comparison of one part (upstream or revision).
fn part(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while a.get(i).is_some_and(|c| !c.is_ascii_digit()) || b.get(j).is_some_and(|c| !c.is_ascii_digit()) {
            let (x, y) = (weight(a.get(i)), weight(b.get(j)));
            if x != y {
                return x.cmp(&y);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first = Ordering::Equal;
        while a.get(i).is_some_and(u8::is_ascii_digit) && b.get(j).is_some_and(u8::is_ascii_digit) {
            if first == Ordering::Equal {
                first = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if a.get(i).is_some_and(u8::is_ascii_digit) {
            return Ordering::Greater;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            return Ordering::Less;
        }
        if first != Ordering::Equal {
            return first;
        }
    }
    Ordering::Equal
}

/// dpkg's order; a version that does not parse sorts before every one
/// that does (callers validate first).
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Ok(x), Ok(y)) => x
            .epoch
            .cmp(&y.epoch)
            .then_with(|| part(x.upstream.as_bytes(), y.upstream.as_bytes()))
            .then_with(|| part(x.revision.as_bytes(), y.revision.as_bytes())),
        (Err(_), Ok(_)) => Ordering::Less,
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_as_dpkg() {
        // each strictly below the next (checked pairwise both ways)
        let sorted = [
            "0.9",
            "1.0~rc1",
            "1.0~rc1-1",
            "1.0",
            "1.0-0.1",
            "1.0-1",
            "1.0-1ubuntu1",
            "1.0-1ubuntu1.1~18.04.3",
            "1.0-1ubuntu1.1~18.04.4",
            "1.0-1ubuntu1.1",
            "1.0-2",
            "1.0a",
            "1.0+dfsg-1",
            "1.0.1",
            "1.2",
            "1.10",
            "1:0.1",
            "2:0.1",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for b in &sorted[i + 1..] {
                assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
                assert_eq!(compare(b, a), Ordering::Greater, "{b} > {a}");
            }
        }
        for (a, b) in [("1.0", "1.0-0"), ("1.01", "1.1"), ("0:1.0", "1.0"), ("1.0-1", "1.0-01")] {
            assert_eq!(compare(a, b), Ordering::Equal, "{a} == {b}");
        }
        // the real ones of the reference values
        assert_eq!(compare("1.16.0-1ubuntu1.1~18.04.3", "1.16.0-1ubuntu1.1~18.04.4"), Ordering::Less);
        assert_eq!(compare("1.18.25", "1.18.26"), Ordering::Less);
        assert_eq!(compare("1.1.1-1ubuntu2.1~18.04.20", "1.1.1-1ubuntu2.1~18.04.21"), Ordering::Less);
    }

    #[test]
    fn validates_as_dpkg() {
        for ok in ["1.0", "1:2.3-4", "2.30-0ubuntu2~18.04", "1.2.3+dfsg-1~bpo9+1", "1:2.0-1-2", "0"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a1.0", "x:1.0", "1.0-", "1.0_1", "1.0-a_b", "1.0 2", "1:", ":1"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}

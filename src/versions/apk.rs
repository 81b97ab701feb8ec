//! Alpine package versions (`1.2.3`, `8.0.0-r0`, `2.4.2_rc1-r7`,
//! `1.0_p20230101-r1`), ordered as apk-tools orders them. Trivy compares
//! Alpine findings with `knqyf263/go-apk-version`, which follows apk-tools.
//! We never rewrite a version: only the converter's own orderings (range
//! events, the highest fixed version of a merge) use this.
//!
//! A version is read as tokens: numbers separated by `.`, then one optional
//! lowercase letter, then `_suffix[number]` parts, then `-r<number>`.
//! Tokens are compared pairwise by value while their kinds agree.
//! - A number after a `.` that starts with `0` is compared as a decimal
//!   fraction: its leading zeros count against it, so `1.02` < `1.1`.
//! - The pre-release suffixes `_alpha` < `_beta` < `_pre` < `_rc` sort
//!   before the release they qualify. The post-release ones `_cvs` < `_svn`
//!   < `_git` < `_hg` < `_p` sort after it.
//! - When one version ends and the other goes on, the longer one is greater
//!   unless it goes on with a pre-release suffix (`1.1_rc1` < `1.1` <
//!   `1.1-r1` < `1.1.1`). A `.0` is a token of its own (a run of zeros),
//!   so whatever follows it makes the version greater, a pre-release too:
//!   `1.0_rc1` > `1.0` for apk-tools and go-apk-version alike, and for us.
//!
//! Anything else is invalid (apk's `apk_version_validate`), for example
//! upper-case letters, two letters, or a `-` not followed by `r`.

use std::cmp::Ordering;

/// What the next token is; the order matters, as in apk-tools. A kind may only
/// follow one of a lower or equal rank, with three exceptions (see
/// [`Tokens::advance`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

const PRE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

struct Tokens<'a> {
    rest: &'a [u8],
    kind: Kind,
}

impl<'a> Tokens<'a> {
    fn new(v: &'a str) -> Self {
        Tokens { rest: v.as_bytes(), kind: if v.is_empty() { Kind::End } else { Kind::Digit } }
    }

    /// Reads the separator after a token and sets the next token's kind.
    fn advance(&mut self) {
        let prev = self.kind;
        let c = self.rest[0];
        let next = if matches!(prev, Kind::Digit | Kind::DigitOrZero) && c.is_ascii_lowercase() {
            Kind::Letter
        } else if prev == Kind::Letter && c.is_ascii_digit() {
            Kind::Digit
        } else if prev == Kind::Suffix && c.is_ascii_digit() {
            Kind::SuffixNo
        } else {
            let k = match c {
                b'.' => Kind::DigitOrZero,
                b'_' => Kind::Suffix,
                b'-' if self.rest.get(1) == Some(&b'r') => {
                    self.rest = &self.rest[1..];
                    Kind::RevisionNo
                }
                _ => Kind::Invalid,
            };
            self.rest = &self.rest[1..];
            k
        };
        let allowed = next >= prev
            || (next == Kind::DigitOrZero && prev == Kind::Digit)
            || (next == Kind::Suffix && prev == Kind::SuffixNo)
            || (next == Kind::Digit && prev == Kind::Letter);
        self.kind = if allowed { next } else { Kind::Invalid };
    }

    /// The value of the current token, moving past it; `None` and kind
    /// `Invalid` for a token apk cannot read.
    fn take(&mut self) -> Option<i64> {
        if self.rest.is_empty() {
            // a `_` must name a suffix (`1.2_` is not a version)
            if self.kind == Kind::Suffix {
                self.kind = Kind::Invalid;
                return None;
            }
            self.kind = Kind::End;
            return Some(0);
        }
        let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut then = None;
        let (value, used) = match self.kind {
            Kind::DigitOrZero if self.rest[0] == b'0' => {
                let zeros = self.rest.iter().take_while(|&&c| c == b'0').count();
                then = Some(Kind::Digit);
                (-(zeros as i64), zeros)
            }
            Kind::DigitOrZero | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
                let n = digits(self.rest);
                let mut v: i64 = 0;
                for &c in &self.rest[..n] {
                    v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
                }
                (v, n)
            }
            Kind::Letter => (i64::from(self.rest[0]), 1),
            Kind::Suffix => {
                let starts = |w: &str| self.rest.starts_with(w.as_bytes());
                if let Some(i) = PRE.iter().position(|w| starts(w)) {
                    (i as i64 - PRE.len() as i64, PRE[i].len())
                } else if let Some(i) = POST.iter().position(|w| starts(w)) {
                    (i as i64, POST[i].len())
                } else {
                    self.kind = Kind::Invalid;
                    return None;
                }
            }
            Kind::Invalid | Kind::End => {
                self.kind = Kind::Invalid;
                return None;
            }
        };
        self.rest = &self.rest[used..];
        if self.rest.is_empty() {
            self.kind = Kind::End;
        } else if let Some(k) = then {
            self.kind = k;
        } else {
            self.advance();
        }
        Some(value)
    }
}

/// Checks a version; the error says why apk would not read it.
pub fn validate(v: &str) -> Result<(), String> {
    let mut t = Tokens::new(v);
    if v.is_empty() {
        return Err("empty version".into());
    }
    while t.kind != Kind::End {
        if t.take().is_none() || t.kind == Kind::Invalid {
            return Err(format!("version {v:?} is not an apk version"));
        }
    }
    Ok(())
}

/// apk-tools' order (module doc). Invalid versions are compared as far as
/// they read, as apk does; callers validate first.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (Tokens::new(a), Tokens::new(b));
    let (mut xv, mut yv) = (0i64, 0i64);
    while x.kind == y.kind && x.kind != Kind::End && x.kind != Kind::Invalid && xv == yv {
        xv = x.take().unwrap_or(0);
        yv = y.take().unwrap_or(0);
    }
    match xv.cmp(&yv) {
        Ordering::Equal => {}
        o => return o,
    }
    if x.kind == y.kind {
        return Ordering::Equal;
    }
    // the one that goes on is greater, unless it goes on with a pre-release
    let pre = |t: &Tokens<'_>| {
        let mut probe = Tokens { rest: t.rest, kind: t.kind };
        t.kind == Kind::Suffix && probe.take().is_some_and(|v| v < 0)
    };
    if pre(&x) {
        return Ordering::Less;
    }
    if pre(&y) {
        return Ordering::Greater;
    }
    // a later kind (the end, a revision) means "less goes on here"
    y.kind.cmp(&x.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_as_apk_tools() {
        let sorted = [
            "0.9",
            "1.02",
            "1.1_alpha",
            "1.1_alpha2",
            "1.1_beta",
            "1.1_pre1",
            "1.1_rc1",
            "1.1",
            "1.1-r1",
            "1.1-r10",
            "1.1_p1",
            "1.1a",
            "1.1b-r2",
            "1.1.1",
            "1.10",
            "2.4.2-r0",
            "2.4.2-r7",
            "8.0.0-r0",
            "8.1.0-r0",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for b in &sorted[i + 1..] {
                assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
                assert_eq!(compare(b, a), Ordering::Greater, "{b} > {a}");
            }
        }
        for (a, b) in [("1.0", "1.0"), ("1.0-r0", "1.0-r0"), ("1.0_p1", "1.0_p1")] {
            assert_eq!(compare(a, b), Ordering::Equal, "{a} == {b}");
        }
        // apk's quirk, kept: a ".0" is a zero-run token, so what follows it
        // makes the version greater even when it is a pre-release suffix
        assert_eq!(compare("1.0_rc1", "1.0"), Ordering::Greater);
        assert_eq!(compare("0.10.0", "0.10.1_rc1"), Ordering::Less);
        // the secdb "0": below every real version
        assert_eq!(compare("0", "0.0.1-r0"), Ordering::Less);
        assert_eq!(compare("0", "1.0"), Ordering::Less);
    }

    #[test]
    fn validates_as_apk() {
        for ok in ["0", "1.2.3", "8.0.0-r0", "2.4.2_rc1-r7", "1.0_p20230101-r1", "1.0a", "3.1.4_git20230101"]
        {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1.0A", "1.0-1", "1.0_foo", "1.0ab", "1.0 ", "1.0~abc", "1.2_"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}

//! Version strings for the Trivy DB: validation per ecosystem, and a
//! generic ordering used only to put OSV range events in order and to
//! prune patched versions that another range still covers.
//!
//! Trivy compares versions itself with each ecosystem's comparer; we never
//! rewrite a version. The generic order splits a version into numeric and
//! alphabetic runs, compares numbers numerically, and sorts pre-release
//! words (`a`, `alpha`, `b`, `beta`, `rc`, `pre`, `dev`, `-`…) before the
//! release they precede. It agrees with PEP 440, SemVer and Maven on the
//! versions advisories use; where it could disagree the only effect is a
//! patched version kept or dropped, never a vulnerable range changed.

use std::cmp::Ordering;

/// How strictly versions of an ecosystem are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// SemVer-like (`1.2.3`, `1.2.3-rc.1`, Go's `v1.2.3`).
    Semver,
    /// PEP 440.
    Pep440,
    /// Anything a package manager accepts as one token (Maven, RubyGems).
    Token,
}

/// Check one version string; the error says why it cannot be used.
pub fn validate(v: &str, scheme: Scheme) -> Result<(), String> {
    if v.is_empty() {
        return Err("empty version".into());
    }
    if let Some(c) = v.chars().find(|c| c.is_whitespace() || ",<>=|^~*\"'\\".contains(*c) || c.is_control()) {
        return Err(format!("version {v:?} contains {c:?}"));
    }
    let body = match scheme {
        Scheme::Semver => v.strip_prefix('v').unwrap_or(v),
        Scheme::Pep440 => {
            v.split_once('!').map_or(
                v,
                |(epoch, rest)| {
                    if epoch.chars().all(|c| c.is_ascii_digit()) {
                        rest
                    } else {
                        v
                    }
                },
            )
        }
        Scheme::Token => v,
    };
    let ok_chars = body.chars().all(|c| c.is_ascii_alphanumeric() || ".-+_".contains(c));
    let starts_digit = body.chars().next().is_some_and(|c| c.is_ascii_digit());
    match scheme {
        Scheme::Token if ok_chars => Ok(()),
        Scheme::Semver | Scheme::Pep440 if ok_chars && starts_digit => Ok(()),
        _ => Err(format!("version {v:?} is not a valid {scheme:?} version")),
    }
}

/// True for versions meaning "the beginning of time" in OSV (`0`, `0.0.0-0`).
pub fn is_zero(v: &str) -> bool {
    matches!(v, "0" | "0.0" | "0.0.0" | "0.0.0-0" | "v0.0.0" | "v0.0.0-0")
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    /// A pre-release word: sorts before the end of a version.
    Pre(u8, String),
    /// The end of a version.
    End,
    Num(u128),
    /// Other words (post releases, qualifiers): after the end.
    Word(String),
}

fn parts(v: &str) -> Vec<Part> {
    let v = v.strip_prefix('v').unwrap_or(v).to_ascii_lowercase();
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Part::Num(v[s..i].parse().unwrap_or(u128::MAX)));
        } else if c.is_ascii_alphabetic() {
            let s = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let w = &v[s..i];
            let rank = match w {
                "dev" => Some(0),
                "a" | "alpha" => Some(1),
                "b" | "beta" => Some(2),
                "m" | "milestone" => Some(3),
                "c" | "rc" | "cr" | "pre" | "preview" => Some(4),
                "snapshot" => Some(5),
                _ => None,
            };
            out.push(match rank {
                Some(r) => Part::Pre(r, w.to_string()),
                None if matches!(w, "final" | "ga" | "release") => continue,
                None => Part::Word(w.to_string()),
            });
        } else {
            // a '-' directly followed by a word marks a SemVer pre-release
            if c == b'-' && b.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic()) {
                let s = i + 1;
                let mut j = s;
                while j < b.len() && b[j].is_ascii_alphabetic() {
                    j += 1;
                }
                if !matches!(&v[s..j], "dev" | "a" | "alpha" | "b" | "beta" | "rc" | "pre" | "m" | "c") {
                    out.push(Part::Pre(0, v[s..j].to_string()));
                    i = j;
                    continue;
                }
            }
            i += 1;
        }
    }
    // trailing zeros do not matter: 1.0 == 1.0.0
    while matches!(out.last(), Some(Part::Num(0))) && out.len() > 1 {
        out.pop();
    }
    out
}

/// The generic version order (see the module doc).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (pa, pb) = (parts(a), parts(b));
    let n = pa.len().max(pb.len());
    for i in 0..n {
        let x = pa.get(i).unwrap_or(&Part::End);
        let y = pb.get(i).unwrap_or(&Part::End);
        // a missing numeric part equals 0
        let o = match (x, y) {
            (Part::End, Part::Num(0)) | (Part::Num(0), Part::End) => Ordering::Equal,
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Does `v` satisfy one Trivy constraint entry (`">=1.0, <2.0"`, `"=1.2"`,
/// `""` = always)? Used only to prune patched versions.
pub fn satisfies(v: &str, entry: &str) -> bool {
    entry.split(',').map(str::trim).filter(|c| !c.is_empty()).all(|c| {
        let (op, ver) = if let Some(r) = c.strip_prefix(">=") {
            (">=", r)
        } else if let Some(r) = c.strip_prefix("<=") {
            ("<=", r)
        } else if let Some(r) = c.strip_prefix('>') {
            (">", r)
        } else if let Some(r) = c.strip_prefix('<') {
            ("<", r)
        } else if let Some(r) = c.strip_prefix('=') {
            ("=", r)
        } else {
            ("=", c)
        };
        let o = compare(v, ver.trim());
        match op {
            ">=" => o != Ordering::Less,
            "<=" => o != Ordering::Greater,
            ">" => o == Ordering::Greater,
            "<" => o == Ordering::Less,
            _ => o == Ordering::Equal,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_order_handles_common_schemes() {
        let sorted = [
            "0",
            "0.9",
            "1.0.0-alpha",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2",
            "1.10",
            "2.0.0a1",
            "2.0.0b2",
            "2.0.0rc1",
            "2.0.0",
            "2.0.0.post1",
            "10.0",
        ];
        for w in sorted.windows(2) {
            assert_eq!(compare(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(compare("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(compare("v1.2.3", "1.2.3"), Ordering::Equal);
        assert_eq!(compare("1.0.0.Final", "1.0.0"), Ordering::Equal);
    }

    #[test]
    fn validation_and_constraints() {
        assert!(validate("1.2.3", Scheme::Semver).is_ok());
        assert!(validate("v0.3.5", Scheme::Semver).is_ok());
        assert!(validate("1!2.0.post1", Scheme::Pep440).is_ok());
        assert!(validate("1.0 beta", Scheme::Token).is_err());
        assert!(validate(">=1.0", Scheme::Semver).is_err());
        assert!(validate("abc", Scheme::Semver).is_err());
        assert!(validate("", Scheme::Token).is_err());
        assert!(satisfies("1.5", ">=1.0, <2.0"));
        assert!(!satisfies("2.0", ">=1.0, <2.0"));
        assert!(satisfies("2.0", "<=2.0"));
        assert!(satisfies("3", ""));
        assert!(satisfies("1.2", "=1.2"));
    }
}

//! `github.com/aquasecurity/go-version/pkg/part` (v0.0.1, commit 22b0116)
//! and its `prerelease.Compare`: the version components that go-version,
//! go-npm-version, go-gem-version, go-pep440-version and bitnami/go-version
//! all compare with (Trivy 0.76.0 links that one go-version for all five).
//!
//! Each Go type's `Compare` dispatches on the receiver and then on the
//! argument's type; [`Part::compare`] keeps that asymmetry (`String`
//! against `Any` is 0, `Any(false)` against anything is -1, …). `None`
//! stands for Go's nil part of a shorter list. Combinations the libraries
//! never build (a number against ±infinity, which panics in Go) compare
//! equal here.

use std::cmp::Ordering;

/// One component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// `part.Uint64`.
    Uint(u64),
    /// `part.String`: after numbers.
    Str(String),
    /// `part.PreString`: before numbers.
    PreStr(String),
    /// `part.Any` (`*`, `x`, `X`): equal to everything when true.
    Any(bool),
    /// `part.Empty`: a missing component, a wildcard when `any`.
    Empty(bool),
    Infinity,
    NegInfinity,
    /// `part.Parts`.
    List(Vec<Part>),
}

fn sign(o: Ordering) -> i32 {
    o as i32
}

impl Part {
    /// `part.NewPart`: a number (`strconv.ParseUint`, so leading zeros are
    /// fine and overflow is not a number), a wildcard, or a string.
    pub fn new(s: &str) -> Part {
        if let Some(n) = parse_u64(s) {
            Part::Uint(n)
        } else if matches!(s, "*" | "x" | "X") {
            Part::Any(true)
        } else {
            Part::Str(s.to_string())
        }
    }

    pub fn is_null(&self) -> bool {
        match self {
            Part::Uint(n) => *n == 0,
            Part::Str(s) | Part::PreStr(s) => s.is_empty(),
            Part::List(l) => self.is_any() || l.is_empty(),
            _ => false,
        }
    }

    pub fn is_any(&self) -> bool {
        match self {
            Part::Any(b) | Part::Empty(b) => *b,
            Part::List(l) => l.iter().any(Part::is_any),
            _ => false,
        }
    }

    pub fn is_empty_part(&self) -> bool {
        matches!(self, Part::Empty(_))
    }

    /// The receiver's `Compare(other)`: -1, 0 or 1.
    pub fn compare(&self, other: Option<&Part>) -> i32 {
        use Part::*;
        let Some(o) = other else {
            return match self {
                Any(true) | Empty(true) => 0,
                Any(false) | NegInfinity => -1,
                Empty(false) => Uint(0).compare(None),
                _ => 1,
            };
        };
        match self {
            Uint(n) => match o {
                Uint(m) => sign(n.cmp(m)),
                Str(_) => -1,
                PreStr(_) => 1,
                Any(_) => 0,
                Empty(true) => 0,
                Empty(false) => self.compare(Some(&Uint(0))),
                _ => 0,
            },
            Str(s) | PreStr(s) => {
                if self == o {
                    return 0;
                }
                match o {
                    Uint(_) => {
                        if matches!(self, Str(_)) {
                            1
                        } else {
                            -1
                        }
                    }
                    Str(t) | PreStr(t) => sign(s.as_bytes().cmp(t.as_bytes())),
                    Any(_) => 0,
                    Empty(true) => 0,
                    Empty(false) => self.compare(Some(&Uint(0))),
                    _ => 0,
                }
            }
            Any(b) => {
                if *b {
                    0
                } else {
                    -1
                }
            }
            Empty(b) => {
                if *b {
                    0
                } else {
                    Uint(0).compare(Some(o))
                }
            }
            Infinity => i32::from(!matches!(o, Infinity)),
            NegInfinity => -i32::from(!matches!(o, NegInfinity)),
            List(l) => {
                if o.is_any() {
                    return 0;
                }
                match o {
                    Infinity => -1,
                    NegInfinity => 1,
                    List(r) => compare_lists(l, r),
                    _ => -1,
                }
            }
        }
    }
}

/// `Parts.Compare(Parts)`: 0 if the other list holds a wildcard, then
/// element by element, a missing element first, 0 at the first wildcard.
pub fn compare_lists(l: &[Part], r: &[Part]) -> i32 {
    if l == r || r.iter().any(Part::is_any) {
        return 0;
    }
    for i in 0..l.len().max(r.len()) {
        let (Some(a), b) = (l.get(i), r.get(i)) else { return -1 };
        let Some(b) = b else { return 1 };
        if a.is_any() || b.is_any() {
            return 0;
        }
        let c = a.compare(Some(b));
        if c != 0 {
            return c;
        }
    }
    0
}

/// `part.NewParts`: `.`-separated [`Part::new`]s; empty for "".
pub fn new_parts(s: &str) -> Vec<Part> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split('.').map(Part::new).collect()
}

/// `Parts.Normalize`: trailing null parts dropped.
pub fn normalize(mut parts: Vec<Part>) -> Vec<Part> {
    while parts.last().is_some_and(Part::is_null) {
        parts.pop();
    }
    parts
}

/// `Parts.Padding`: extended with `pad` to `size`.
pub fn padding(mut parts: Vec<Part>, size: usize, pad: &Part) -> Vec<Part> {
    while parts.len() < size {
        parts.push(pad.clone());
    }
    parts
}

/// `Parts.IsNull` of a list.
pub fn list_is_null(parts: &[Part]) -> bool {
    parts.is_empty() || parts.iter().any(Part::is_any)
}

/// `prerelease.Compare`: equal lists or a wildcard are equal, no
/// pre-release comes after any pre-release, then `Parts.Compare`.
pub fn compare_prerelease(a: &[Part], b: &[Part]) -> i32 {
    if a == b || a.iter().any(Part::is_any) || b.iter().any(Part::is_any) {
        0
    } else if list_is_null(a) {
        1
    } else if list_is_null(b) {
        -1
    } else {
        compare_lists(a, b)
    }
}

/// `strconv.ParseUint(s, 10, 64)`: ASCII digits only (no sign), no
/// overflow.
pub fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go's `fmt.Sprint` of a part, for the libraries' `String()` forms.
pub fn show(p: &Part) -> String {
    match p {
        Part::Uint(n) => n.to_string(),
        Part::Str(s) | Part::PreStr(s) => s.clone(),
        Part::Any(b) => b.to_string(),
        Part::Empty(b) => format!("{{{b}}}"),
        Part::Infinity | Part::NegInfinity => "{}".to_string(),
        Part::List(l) => l.iter().map(show).collect::<Vec<_>>().join("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_version_part_semantics() {
        assert_eq!(Part::new("01"), Part::Uint(1));
        assert_eq!(Part::new("x"), Part::Any(true));
        assert_eq!(Part::new("99999999999999999999"), Part::Str("99999999999999999999".into()));
        assert_eq!(Part::Uint(1).compare(Some(&Part::Str("a".into()))), -1);
        assert_eq!(Part::PreStr("a".into()).compare(Some(&Part::Uint(0))), -1);
        assert_eq!(compare_prerelease(&[], &new_parts("rc.1")), 1);
        assert_eq!(compare_prerelease(&new_parts("rc.1"), &new_parts("rc.1.0")), -1);
        assert_eq!(compare_prerelease(&new_parts("a.x"), &new_parts("b")), 0);
    }
}

//! Trivy's npm comparer: `github.com/aquasecurity/go-npm-version/pkg` at
//! commit 1f16ed7 (v0.0.3-0.20261005070944, what Trivy 0.76.0 links; its
//! `constraint.go` read from the code index at that commit, since the
//! GitHub mirror stops at 2020) with `WithPreRelease(true)` and no
//! `WithBuildMetadata`, on go-version v0.0.1's `pkg/semver` version.
//!
//! Installed versions: strict SemVer 2.0 (`MAJOR.MINOR.PATCH`, no `v`, no
//! leading zeros, `uint64` numbers); a pre-release identifier `x`/`X`/`*`
//! is a wildcard (so `1.0.0-x` is no pre-release at all).
//!
//! Constraints: `||` alternatives of items `op X[.Y[.Z]][-pre][+build]`
//! with `x`, `X`, `*` or a missing part a wildcard (the part class also
//! admits `|`, making `1|2` a string part, as in Go). Operators: none/`=`/
//! `==`, `<`, `<=`/`=<`, `>`, `>=`/`=>`, `~`, `^`. With pre-releases
//! included, a pre-release satisfies plain ranges (`1.0.0-rc.1` < `1.0.0`
//! is in `<1.0.0`, unlike node-semver) and the only special rule left is
//! that a wildcard constraint with a pre-release never matches. Build
//! metadata is ignored. An empty alternative matches every version.
//! `~`/`^` of a constraint whose numeric part is not a number panics in Go
//! (Trivy crashes); we return an error there.
//!
//! Why our own: the `semver` crate implements Cargo's requirement syntax
//! and node-semver's pre-release exclusion, neither of which Trivy uses.

use super::part::{self, Part};
use super::regex::Regex;
use std::sync::OnceLock;

const SEMVER: &str = r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+(?P<buildmetadata>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$";
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const OPS: &str = r"==|>=|=>|<=|=<|=|>|<|~|\^|";

pub(super) struct Res {
    pub(super) semver: Regex,
    item: Regex,
    valid: Regex,
}

pub(super) fn res() -> &'static Res {
    static R: OnceLock<Res> = OnceLock::new();
    R.get_or_init(|| Res {
        semver: Regex::new(SEMVER),
        item: Regex::new(&format!(r"({OPS})\s*({CV})")),
        valid: Regex::new(&format!(r"^\s*(\s*({OPS})\s*({CV})\s*\,?)*\s*$")),
    })
}

/// go-version's `semver.Version` (and bitnami's, whose pre-release is a
/// revision).
#[derive(Clone, Debug)]
pub struct Semver {
    pub major: Part,
    pub minor: Part,
    pub patch: Part,
    pub pre: Vec<Part>,
}

/// `semver.Parse`.
pub fn parse_semver(v: &str) -> Result<Semver, String> {
    let r = res();
    let m = r.semver.captures(v).ok_or("invalid semantic version")?;
    let num = |name: &str| {
        let s = m[r.semver.group(name)].unwrap_or("");
        part::parse_u64(s).map(Part::Uint).ok_or_else(|| format!("invalid {name} version: {s}"))
    };
    Ok(Semver {
        major: num("major")?,
        minor: num("minor")?,
        patch: num("patch")?,
        pre: part::new_parts(m[r.semver.group("prerelease")].unwrap_or("")),
    })
}

impl Semver {
    pub fn is_any(&self) -> bool {
        self.major.is_any() || self.minor.is_any() || self.patch.is_any()
    }

    pub fn is_prerelease(&self) -> bool {
        !part::list_is_null(&self.pre)
    }

    /// The release numbers' `Compare` with go-version's early exit at a
    /// wildcard; `None` when they tie.
    pub fn compare_release(&self, o: &Semver) -> Option<i32> {
        for (a, b) in [(&self.major, &o.major), (&self.minor, &o.minor), (&self.patch, &o.patch)] {
            let r = a.compare(Some(b));
            if r != 0 || a.is_any() || b.is_any() {
                return Some(r);
            }
        }
        None
    }

    /// `semver.Version.Compare`.
    pub fn compare(&self, o: &Semver) -> i32 {
        self.compare_release(o).unwrap_or_else(|| part::compare_prerelease(&self.pre, &o.pre))
    }

    fn uint(p: &Part) -> Result<u64, String> {
        match p {
            Part::Uint(n) => Ok(*n),
            other => Err(format!("Go panics: interface conversion, {other:?} is not part.Uint64")),
        }
    }

    pub fn inc_major(&self) -> Result<Semver, String> {
        let major = Semver::uint(&self.major)?.wrapping_add(1);
        Ok(Semver { major: Part::Uint(major), minor: Part::Uint(0), patch: Part::Uint(0), pre: Vec::new() })
    }

    pub fn inc_minor(&self) -> Result<Semver, String> {
        let minor = Semver::uint(&self.minor)?.wrapping_add(1);
        Ok(Semver { minor: Part::Uint(minor), patch: Part::Uint(0), pre: Vec::new(), ..self.clone() })
    }

    pub fn inc_patch(&self) -> Result<Semver, String> {
        let patch = Semver::uint(&self.patch)?.wrapping_add(1);
        Ok(Semver { patch: Part::Uint(patch), pre: Vec::new(), ..self.clone() })
    }

    fn wild(p: &Part) -> bool {
        p.is_any() || p.is_empty_part()
    }

    /// `TildeBump`.
    pub fn tilde_bump(&self) -> Result<Semver, String> {
        if Semver::wild(&self.major) {
            Ok(Semver { major: Part::Uint(u64::MAX), ..self.clone() })
        } else if Semver::wild(&self.minor) {
            self.inc_major()
        } else {
            self.inc_minor()
        }
    }

    /// `CaretBump`.
    pub fn caret_bump(&self) -> Result<Semver, String> {
        if Semver::wild(&self.major) {
            return Ok(Semver { major: Part::Uint(u64::MAX), ..self.clone() });
        }
        if Semver::uint(&self.major)? != 0 || Semver::wild(&self.minor) {
            return self.inc_major();
        }
        if Semver::uint(&self.minor)? != 0 || Semver::wild(&self.patch) {
            return self.inc_minor();
        }
        self.inc_patch()
    }
}

struct Item {
    op: String,
    version: Semver,
}

impl Item {
    fn check(&self, v: &Semver) -> Result<bool, String> {
        let c = &self.version;
        // preCheck, with pre-releases included
        if c.is_prerelease() && c.is_any() {
            return Ok(false);
        }
        let o = v.compare(c);
        Ok(match self.op.as_str() {
            ">" => o > 0,
            "<" => o < 0,
            ">=" | "=>" => o >= 0,
            "<=" | "=<" => o <= 0,
            "~" => o >= 0 && v.compare(&c.tilde_bump()?) < 0,
            "^" => o >= 0 && v.compare(&c.caret_bump()?) < 0,
            _ => o == 0,
        })
    }
}

fn new_part(p: &str) -> Part {
    Part::new(if p.is_empty() { "*" } else { p })
}

/// `npm.NewConstraints(s, WithPreRelease(true))`, checked against `v`.
fn check(s: &str, v: &Semver) -> Result<bool, String> {
    let r = res();
    let alts = super::alternatives(s, &r.valid, &r.item, |single| {
        if single.is_empty() {
            let any = Semver {
                major: Part::Any(true),
                minor: Part::Any(true),
                patch: Part::Any(true),
                pre: part::new_parts("*"),
            };
            return Ok(Item { op: String::new(), version: any });
        }
        let m = r.item.captures(single).ok_or_else(|| format!("improper constraint: {single}"))?;
        let trim1 = |i: usize, p: char| {
            let s = m[i].unwrap_or("");
            s.strip_prefix(p).unwrap_or(s)
        };
        let version = Semver {
            major: new_part(m[3].unwrap_or("")),
            minor: new_part(trim1(4, '.')),
            patch: new_part(trim1(5, '.')),
            pre: part::new_parts(trim1(6, '-')),
        };
        Ok(Item { op: m[1].unwrap_or("").to_string(), version })
    })?;
    // Go parses every alternative first, then checks in order.
    super::any_all(&alts, |c| c.check(v))
}

/// Trivy's npm `MatchVersion`.
pub fn matches(installed: &str, constraint: &str) -> Result<bool, String> {
    let v = parse_semver(installed).map_err(|e| format!("npm version error ({installed}): {e}"))?;
    check(constraint, &v).map_err(|e| format!("npm constraint error ({constraint}): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str, c: &str) -> bool {
        matches(v, c).unwrap()
    }

    #[test]
    fn go_npm_version_table() {
        // a sample of go-npm-version's constraint_test.go (with pre-releases)
        assert!(ok("1.2.3", "1.2.3"));
        assert!(ok("1.2.3", "1.2"));
        assert!(ok("1.2.3", "1.x"));
        assert!(ok("1.2.3", ">=1.2.3 <2"));
        assert!(ok("1.2.3-alpha.1", "<1.2.3"));
        assert!(ok("1.2.4-alpha.1", ">1.2.3"));
        assert!(ok("1.2.3", "~1.2.1"));
        assert!(!ok("1.3.0", "~1.2.1"));
        assert!(ok("0.2.5", "^0.2.3"));
        assert!(!ok("0.3.0", "^0.2.3"));
        assert!(ok("1.2.3+build", "1.2.3"));
        assert!(!ok("1.2.3-beta", "1.x-beta"));
        assert!(ok("5.0.0", "<1.0.0 ||"));
        assert!(matches("v1.2.3", "1.2.3").is_err());
        assert!(matches("1.2", "1.2").is_err());
        assert!(matches("01.2.3", "1.2.3").is_err());
        assert!(!ok("1.2.3", "~1|2"));
        assert!(matches("1.0.0", "~0.1|2").is_err());
    }
}

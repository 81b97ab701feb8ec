//! Trivy's Bitnami comparer: `github.com/bitnami/go-version/pkg/version`
//! at commit bb00604 (what Trivy 0.76.0 links, go.sum `h1:` recomputed
//! from the mirror), on go-version v0.0.1's parts, without
//! `WithZeroPadding`.
//!
//! Versions: strict SemVer (`MAJOR.MINOR.PATCH[-rev][+build]`, no `v`),
//! where the `-` part is a Bitnami *revision*: a version with a revision
//! sorts **after** the same version without one (`1.2.3-1` > `1.2.3`).
//!
//! Constraints: like npm's (`X[.Y[.Z]]` with `x`/`*` wildcards, `||`,
//! `,`/space), operators none/`=`/`==`, `!=`, `<`, `<=`/`=<`, `>`,
//! `>=`/`=>`, `~`, `^`. A missing part is a wildcard, and a wildcard
//! constraint without a revision gets a wildcard revision, so `=1.2`
//! matches every `1.2.*` and its revisions; `<` compares with the
//! constraint's minimum (wildcards as 0, no revision). `~`/`^` of a
//! non-numeric part panics in Go (an error here).
//!
//! Why our own: Bitnami's revision order is not SemVer's, so `semver`
//! gets `1.2.3-1` vs `1.2.3` backwards.

use super::npm::{parse_semver, Semver};
use super::part::{self, Part};
use super::regex::Regex;
use std::sync::OnceLock;

const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const OPS: &str = r"==|!=|>=|=>|<=|=<|=|>|<|~|\^|";

struct Res {
    item: Regex,
    valid: Regex,
}

fn res() -> &'static Res {
    static R: OnceLock<Res> = OnceLock::new();
    R.get_or_init(|| Res {
        item: Regex::new(&format!(r"({OPS})\s*({CV})")),
        valid: Regex::new(&format!(r"^\s*(\s*({OPS})\s*({CV})\s*\,?)*\s*$")),
    })
}

/// bitnami `Version.Compare`: release, then revision presence, then the
/// revisions' pre-release order.
fn compare(v: &Semver, o: &Semver) -> i32 {
    if let Some(r) = v.compare_release(o) {
        return r;
    }
    match (v.is_prerelease(), o.is_prerelease()) {
        (true, false) => 1,
        (false, true) => -1,
        _ => part::compare_prerelease(&v.pre, &o.pre),
    }
}

fn min(c: &Semver) -> Semver {
    let zero = |p: &Part| if p.is_any() { Part::Uint(0) } else { p.clone() };
    Semver {
        major: zero(&c.major),
        minor: zero(&c.minor),
        patch: zero(&c.patch),
        pre: if c.pre.iter().any(Part::is_any) { Vec::new() } else { c.pre.clone() },
    }
}

struct Item {
    op: String,
    version: Semver,
}

impl Item {
    fn check(&self, v: &Semver) -> Result<bool, String> {
        let c = &self.version;
        let o = compare(v, c);
        Ok(match self.op.as_str() {
            "!=" => o != 0,
            ">" => o > 0,
            "<" => compare(v, &min(c)) < 0,
            ">=" | "=>" => o >= 0,
            "<=" | "=<" => o <= 0,
            "~" => o >= 0 && compare(v, &c.tilde_bump()?) < 0,
            "^" => o >= 0 && compare(v, &c.caret_bump()?) < 0,
            _ => o == 0,
        })
    }
}

fn new_part(p: &str) -> Part {
    if p.is_empty() {
        Part::Empty(true)
    } else {
        Part::new(p)
    }
}

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
        let mut version = Semver {
            major: new_part(m[3].unwrap_or("")),
            minor: new_part(trim1(4, '.')),
            patch: new_part(trim1(5, '.')),
            pre: part::new_parts(trim1(6, '-')),
        };
        if part::list_is_null(&version.pre) && version.is_any() {
            version.pre.push(Part::Any(true));
        }
        Ok(Item { op: m[1].unwrap_or("").to_string(), version })
    })?;
    super::any_all(&alts, |c| c.check(v))
}

/// Trivy's bitnami `matchVersion`.
pub fn matches(installed: &str, constraint: &str) -> Result<bool, String> {
    let v = parse_semver(installed).map_err(|e| format!("bitnami version error ({installed}): {e}"))?;
    check(constraint, &v).map_err(|e| format!("bitnami constraint error ({constraint}): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str, c: &str) -> bool {
        matches(v, c).unwrap()
    }

    #[test]
    fn bitnami_go_version_table() {
        // a sample of bitnami/go-version's constraint_test.go
        assert!(ok("1.2.3-1", ">1.2.3"));
        assert!(!ok("1.2.3-1", "<=1.2.3"));
        assert!(ok("1.2.3-2", ">1.2.3-1"));
        assert!(ok("1.2.3-5", "=1.2"));
        assert!(ok("1.2.3-5", "1.2.x"));
        assert!(ok("1.1.9", "<1.2"));
        assert!(!ok("1.2.0", "<1.2"));
        assert!(ok("1.2.9", "~1.2.3"));
        assert!(ok("1.9.0", "^1.2.3"));
        assert!(ok("2.0.0", ">=1.0.0, <3.0.0 || >4"));
        assert!(matches("1.2", "1.2").is_err());
    }
}

//! Trivy's `GenericComparer` (go, cargo, nuget, composer, erlang, pub,
//! swift, conan, k8s, julia): `github.com/aquasecurity/go-version/pkg/version`
//! v0.0.1 (commit 22b0116, the version the Trivy 0.76.0 binary links;
//! checked by recomputing its go.sum `h1:` hash from the mirror).
//!
//! Versions: `v?N(.N)*`, then an optional pre-release (`-` + a digit-led
//! identifier list, or an optional `-` + a letter/`-`/`~`-led one), then
//! an optional `+build`. Numbers are `uint64`: a larger one is a parse
//! error. Order: release numbers with trailing zeros ignored (`1.0` ==
//! `1`), then SemVer pre-release precedence (numeric identifiers before
//! words, a release after its pre-releases, `x`/`X`/`*` identifiers equal
//! to anything); build metadata never counts.
//!
//! Constraints: `||` separates alternatives, each a list of
//! `op version` items (`,` or spaces between them, the whole list checked
//! against the library's validity pattern first). Operators: none/`=`/`==`,
//! `!=`, `<`, `<=`/`=<`, `>`, `>=`/`=>`, `~>` (RubyGems pessimistic), `~`
//! (npm tilde), `^` (npm caret); no pre-release exclusion rules. Bumps
//! wrap on `uint64` overflow as Go does.
//!
//! Why our own: the `semver` crate rejects `1.2`, `v1.2.3`, `1.2.3.4` and
//! pre-releases without `-` that this library accepts, orders `1.0` and
//! `1.0.0` apart, and has no `~>` or this `,`/space syntax.

use super::part::{self, Part};
use super::regex::Regex;
use std::sync::OnceLock;

const VERSION: &str = r"v?([0-9]+(\.[0-9]+)*)(-([0-9]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)|(-?([A-Za-z\-~]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)))?(\+([0-9A-Za-z\-~]+(\.[0-9A-Za-z\-~]+)*))?";
// Go builds the alternation from a map (random order); for inputs that
// pass the validity pattern only one operator can match at a position.
const OPS: &str = r"==|!=|>=|=>|<=|=<|~>|=|>|<|~|\^|";

struct Res {
    version: Regex,
    item: Regex,
    valid: Regex,
}

fn res() -> &'static Res {
    static R: OnceLock<Res> = OnceLock::new();
    R.get_or_init(|| Res {
        version: Regex::new(&format!("^{VERSION}$")),
        item: Regex::new(&format!(r"({OPS})\s*({VERSION})")),
        valid: Regex::new(&format!(r"^\s*(\s*({OPS})\s*({VERSION})\s*\,?)*\s*$")),
    })
}

/// A parsed version.
#[derive(Clone, Debug)]
pub struct Version {
    segments: Vec<u64>,
    pre: Vec<Part>,
}

/// `version.Parse`.
pub fn parse(v: &str) -> Result<Version, String> {
    let m = res().version.captures(v).ok_or_else(|| format!("malformed version: {v}"))?;
    let mut segments = Vec::new();
    for s in m[1].unwrap_or("").split('.') {
        segments.push(part::parse_u64(s).ok_or_else(|| format!("error parsing version: {s} out of range"))?);
    }
    let pre = m[7].filter(|p| !p.is_empty()).or(m[4]).unwrap_or("");
    Ok(Version { segments, pre: part::new_parts(pre) })
}

/// `Version.Compare`: -1, 0 or 1.
pub fn compare(a: &Version, b: &Version) -> i32 {
    let norm = |s: &[u64]| {
        let mut s = s.to_vec();
        while s.last() == Some(&0) {
            s.pop();
        }
        s
    };
    let (x, y) = (norm(&a.segments), norm(&b.segments));
    for i in 0..x.len().max(y.len()) {
        let (p, q) = (x.get(i).copied().unwrap_or(0), y.get(i).copied().unwrap_or(0));
        if p != q {
            return if p < q { -1 } else { 1 };
        }
    }
    part::compare_prerelease(&a.pre, &b.pre)
}

impl Version {
    fn pessimistic_bump(&self) -> Version {
        let mut v = self.clone();
        let n = v.segments.len();
        if n == 1 {
            v.segments[0] = v.segments[0].wrapping_add(1);
            return v;
        }
        v.segments[n - 1] = 0;
        v.segments[n - 2] = v.segments[n - 2].wrapping_add(1);
        v.pre.clear();
        v
    }

    fn tilde_bump(&self) -> Version {
        if self.segments.len() == 2 {
            let mut v = self.clone();
            v.segments[1] = v.segments[1].wrapping_add(1);
            return v;
        }
        self.pessimistic_bump()
    }

    fn caret_bump(&self) -> Version {
        let mut v = self.clone();
        match v.segments.iter().position(|&s| s != 0) {
            Some(i) => {
                v.segments[i] = v.segments[i].wrapping_add(1);
                v.segments[i + 1..].iter_mut().for_each(|s| *s = 0);
            }
            None => {
                let last = v.segments.len() - 1;
                v.segments[last] = v.segments[last].wrapping_add(1);
            }
        }
        v.pre.clear();
        v
    }
}

/// One `op version` item.
struct Item {
    op: String,
    version: Version,
}

impl Item {
    fn check(&self, v: &Version) -> bool {
        let c = &self.version;
        let o = compare(v, c);
        match self.op.as_str() {
            "!=" => o != 0,
            ">" => o > 0,
            "<" => o < 0,
            ">=" | "=>" => o >= 0,
            "<=" | "=<" => o <= 0,
            "~>" => o >= 0 && compare(v, &c.pessimistic_bump()) < 0,
            "~" => o >= 0 && compare(v, &c.tilde_bump()) < 0,
            "^" => o >= 0 && compare(v, &c.caret_bump()) < 0,
            _ => o == 0,
        }
    }
}

/// `version.NewConstraints`: alternatives of all-of item lists.
pub struct Constraints(Vec<Vec<Item>>);

/// `version.NewConstraints`.
pub fn constraints(s: &str) -> Result<Constraints, String> {
    let r = res();
    let alts = super::alternatives(s, &r.valid, &r.item, |single| {
        let m = r.item.captures(single).ok_or_else(|| format!("improper constraint: {single}"))?;
        let ver = m[2].unwrap_or("");
        let version = parse(ver).map_err(|e| format!("version parse error ({ver}): {e}"))?;
        Ok(Item { op: m[1].unwrap_or("").to_string(), version })
    })?;
    Ok(Constraints(alts))
}

impl Constraints {
    /// `Constraints.Check`.
    pub fn check(&self, v: &Version) -> bool {
        self.0.iter().any(|all| all.iter().all(|c| c.check(v)))
    }
}

/// Trivy's `GenericComparer.matchVersion`.
pub fn matches(installed: &str, constraint: &str) -> Result<bool, String> {
    let v = parse(installed).map_err(|e| format!("version error ({installed}): {e}"))?;
    let c = constraints(constraint).map_err(|e| format!("constraint error ({installed}): {e}"))?;
    Ok(c.check(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str, c: &str) -> bool {
        matches(v, c).unwrap()
    }

    #[test]
    fn parse_accepts_what_go_version_accepts() {
        for v in [
            "1",
            "v1.2",
            "1.2.3.4",
            "1.2.3-rc.1",
            "1.2.3rc1",
            "1.2.3-",
            "1.0~1",
            "1.0+b.1",
            "0.0.0-20201125-abc",
        ] {
            assert!(parse(v).is_ok(), "{v}");
        }
        for v in ["", "v", "1.", ".1", "1..2", "1.0+", "1.0-a..b", "18446744073709551616", " 1.0", "V1"] {
            assert!(parse(v).is_err(), "{v}");
        }
        assert!(parse("18446744073709551615").is_ok());
    }

    #[test]
    fn order_and_operators() {
        // go-version's own test table (constraint_test.go), a sample
        assert!(ok("1.0", "1.0.0"));
        assert!(ok("1.2.3", ">= 1.0, < 1.4 || > 2.0"));
        assert!(!ok("1.5.0", ">= 1.0, < 1.4 || > 2.0"));
        assert!(ok("2.1.0", ">= 1.0, < 1.4 || > 2.0"));
        assert!(ok("1.2.3-beta", "< 1.2.3"));
        assert!(ok("1.2.3-beta", ">1.2.3-alpha"));
        assert!(ok("1.2.3-1", "<1.2.3-a"));
        assert!(ok("1.2.3+build", "=1.2.3"));
        assert!(ok("1.3", "~>1.2"));
        assert!(!ok("2.0", "~>1.2"));
        assert!(ok("1.2.9", "~1.2.3"));
        assert!(!ok("1.3.0", "~1.2.3"));
        assert!(ok("1.9", "^1.2"));
        assert!(!ok("0.3.0", "^0.2.3"));
        assert!(ok("1.0.0", ">=0.9 <2"));
        assert!(ok("1.2.3-x", "=1.2.3-beta"));
        assert!(ok("v0.3.5-0.20201125200606-c27b9fd57aec", "<0.3.8"));
        assert!(matches("1.0", "1.0 ||").is_err());
        assert!(matches("1.0", ">=1.0,,<2").is_err());
        assert!(matches("a", "1.0").is_err());
    }
}

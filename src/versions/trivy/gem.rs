//! Trivy's RubyGems comparer (also CocoaPods):
//! `github.com/aquasecurity/go-gem-version` at commit 8eed6fe (what Trivy
//! 0.76.0 links, go.sum `h1:` recomputed from the mirror), on go-version
//! v0.0.1's parts.
//!
//! Versions: `N(.[0-9A-Za-z]+)*(-id(.id)*)?` with surrounding ASCII
//! spaces; empty means `0`. Each `-` becomes `.pre.`; segments are digit
//! runs and *single letters* (so `beta` is `b`,`e`,`t`,`a`); everything
//! from the first letter on (or a number too large for `uint64`) is a
//! string segment that sorts before numbers. Trailing zero segments of
//! the numeric and of the string part are ignored.
//!
//! Constraints: `||` alternatives of items with operators none/`=`/`==`,
//! `!=`, `<`, `<=`/`=<`, `>`, `>=`/`=>`, `~>` (>= version and release <
//! `bump`: drop the last numeric segment, increment the new last). A `~>`
//! whose version has no numeric segment panics in Go; we return an error.
//!
//! Why our own: no Rust crate implements Gem::Version, and this library
//! differs from Ruby's (single-letter segments, no canonical prerelease
//! rules), which is what Trivy uses.

use super::part::{self, Part};
use super::regex::{trim_space, Regex};
use std::sync::OnceLock;

const VERSION: &str = r"[0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?";
const OPS: &str = r"==|!=|>=|=>|<=|=<|~>|=|>|<|";

struct Res {
    version: Regex,
    segment: Regex,
    item: Regex,
    valid: Regex,
}

fn res() -> &'static Res {
    static R: OnceLock<Res> = OnceLock::new();
    R.get_or_init(|| Res {
        version: Regex::new(&format!(r"^\s*({VERSION})?\s*$")),
        segment: Regex::new("[0-9]+|[a-zA-Z]"),
        item: Regex::new(&format!(r"({OPS})\s*({VERSION})")),
        valid: Regex::new(&format!(r"^\s*(\s*({OPS})\s*({VERSION})\s*\,?)*\s*$")),
    })
}

/// A parsed gem version.
#[derive(Clone, Debug)]
pub struct Version {
    numeric: Vec<Part>,
    strings: Vec<Part>,
}

/// `gem.NewVersion`.
pub fn parse(v: &str) -> Result<Version, String> {
    let r = res();
    if !r.version.is_match(v) {
        return Err("invalid gem version".into());
    }
    let mut v = trim_space(v).to_string();
    if v.is_empty() {
        v = "0".into();
    }
    let v = v.replace('-', ".pre.");
    let (mut numeric, mut strings) = (Vec::new(), Vec::new());
    let mut is_numeric = true;
    for seg in r.segment.find_all(&v) {
        let p = match part::parse_u64(seg) {
            Some(n) => Part::Uint(n),
            None => {
                is_numeric = false;
                Part::PreStr(seg.to_string())
            }
        };
        if is_numeric {
            numeric.push(p);
        } else {
            strings.push(p);
        }
    }
    Ok(Version { numeric, strings })
}

/// `Version.Compare`: -1, 0 or 1.
pub fn compare(a: &Version, b: &Version) -> i32 {
    let canon = |v: &Version| {
        let mut c = part::normalize(v.numeric.clone());
        c.extend(part::normalize(v.strings.clone()));
        c
    };
    let (x, y) = (canon(a), canon(b));
    let (nx, ny) = (x.len(), y.len());
    part::compare_lists(&part::padding(x, ny, &Part::Uint(0)), &part::padding(y, nx, &Part::Uint(0)))
}

impl Version {
    fn release(&self) -> Version {
        Version { numeric: self.numeric.clone(), strings: Vec::new() }
    }

    fn bump(&self) -> Result<Version, String> {
        let last = self.numeric.len().max(2);
        if self.numeric.len() < last - 1 {
            return Err("Go panics: slice bounds out of range in Version.Bump".into());
        }
        let mut numeric = self.numeric[..last - 1].to_vec();
        let Part::Uint(n) = numeric[last - 2] else { unreachable!("numeric segments are numbers") };
        numeric[last - 2] = Part::Uint(n.wrapping_add(1));
        Ok(Version { numeric, strings: Vec::new() })
    }
}

struct Item {
    op: String,
    version: Version,
}

impl Item {
    fn check(&self, v: &Version) -> Result<bool, String> {
        let c = &self.version;
        let o = compare(v, c);
        Ok(match self.op.as_str() {
            "!=" => o != 0,
            ">" => o > 0,
            "<" => o < 0,
            ">=" | "=>" => o >= 0,
            "<=" | "=<" => o <= 0,
            "~>" => o >= 0 && compare(&v.release(), &c.bump()?) < 0,
            _ => o == 0,
        })
    }
}

/// `gem.NewConstraints(s)`, checked against `v`.
fn check(s: &str, v: &Version) -> Result<bool, String> {
    let r = res();
    let alts = super::alternatives(s, &r.valid, &r.item, |single| {
        let m = r.item.captures(single).ok_or_else(|| format!("improper constraint: {single}"))?;
        let ver = m[2].unwrap_or("");
        let version = parse(ver).map_err(|e| format!("version parse error ({ver}): {e}"))?;
        Ok(Item { op: m[1].unwrap_or("").to_string(), version })
    })?;
    super::any_all(&alts, |c| c.check(v))
}

/// Trivy's RubyGems `matchVersion`.
pub fn matches(installed: &str, constraint: &str) -> Result<bool, String> {
    let v = parse(installed).map_err(|e| format!("RubyGems version error ({installed}): {e}"))?;
    check(constraint, &v).map_err(|e| format!("RubyGems constraint error ({constraint}): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str, c: &str) -> bool {
        matches(v, c).unwrap()
    }

    #[test]
    fn go_gem_version_table() {
        // a sample of go-gem-version's constraint_test.go and version_test.go
        assert!(ok("1.0.0", "= 1.0"));
        assert!(ok("1.0.0.a", "< 1.0"));
        assert!(ok("1.0.b1", "> 1.0.a1"));
        assert!(ok("1.2.3", "~> 1.2"));
        assert!(!ok("2.0", "~> 1.2"));
        assert!(ok("1.2.9", "~> 1.2.3"));
        assert!(!ok("1.3", "~> 1.2.3"));
        assert!(ok("1.0.0-rc1", "< 1.0.0"));
        assert!(ok("1.9.3", ">= 1.9, < 2 || > 3"));
        assert!(ok("", "= 0"));
        assert!(ok(" 1.0 ", "1"));
        assert!(matches("1.0 beta", "1").is_err());
        assert!(matches("v1.0", "1").is_err());
        assert!(matches("1", "~> 99999999999999999999").is_err());
    }
}

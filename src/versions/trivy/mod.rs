//! Trivy 0.76.0's library vulnerability check, exactly: which comparer an
//! advisory bucket uses and `IsVulnerable` for one advisory row
//! (`pkg/detector/library/compare/compare.go` and its per-ecosystem
//! `matchVersion`s, read at trivy main@dc3c56e, the same code as the
//! 0.76.0 binary's).
//!
//! One submodule per Go library Trivy calls, each a port of that
//! library's parsing, order and constraint semantics at the commit the
//! 0.76.0 binary links (its module doc says which, and how it was
//! checked). [`regex`] runs the libraries' own patterns with Go's
//! leftmost-first semantics; [`part`] is go-version's shared component
//! type. Maven reuses [`crate::versions::maven::compare`] (one
//! implementation of go-mvn-version's order).
//!
//! Invariants: no I/O, no environment; every function terminates in time
//! linear in its input (times the fixed size of a pattern), numbers are
//! bounded as in Go (`uint64` parse errors, wrap-around bumps, saturating
//! Maven integers). Where Go would panic (a few malformed constraints),
//! we return an error: Trivy itself would crash on that row.
//!
//! Checked against: samples of the libraries' own test tables (unit tests
//! here), and the real Trivy 0.76.0 binary on synthetic OSV advisories
//! built into a trivy.db by export-center (`tests/versions_trivy.rs`:
//! 1966 cases over Go, cargo, npm, PyPI, Maven, RubyGems and Bitnami, all
//! agreeing, 2026-12). No Go-library differential oracle was run: the
//! local toolchain is Go 1.19 and the modules need 1.22+ with the proxy
//! offline. Not covered by the real-Trivy test: the `~`, `^`, `~>`, `!=`
//! operators and `||`-joined advisory strings other than what OSV ranges
//! produce (the converter writes only `<`, `<=`, `>=`, `=` items), which
//! rest on the ported unit tables alone.

pub mod bitnami;
pub mod gem;
pub mod gover;
pub mod maven;
pub mod npm;
pub mod part;
pub mod pep440;
pub mod regex;

/// Trivy's comparer for an ecosystem (pkg/detector/library/compare).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Comparer {
    Generic,
    Npm,
    Pep440,
    Maven,
    RubyGems,
    Bitnami,
}

impl Comparer {
    /// The comparer Trivy uses for a DB advisory bucket prefix ("pip", "npm", "maven", "go", "cargo", "rubygems", "cocoapods", "bitnami", "nuget", "composer", "erlang", "pub", "swift", "conan", "k8s", "julia"); None for others.
    pub fn for_prefix(prefix: &str) -> Option<Comparer> {
        Some(match prefix {
            "pip" => Comparer::Pep440,
            "npm" => Comparer::Npm,
            "maven" => Comparer::Maven,
            "rubygems" | "cocoapods" => Comparer::RubyGems,
            "bitnami" => Comparer::Bitnami,
            "go" | "cargo" | "nuget" | "composer" | "erlang" | "pub" | "swift" | "conan" | "k8s"
            | "julia" => Comparer::Generic,
            _ => return None,
        })
    }

    /// The comparer's `matchVersion(installed, constraint)`.
    pub fn matches(self, installed: &str, constraint: &str) -> Result<bool, String> {
        match self {
            Comparer::Generic => gover::matches(installed, constraint),
            Comparer::Npm => npm::matches(installed, constraint),
            Comparer::Pep440 => pep440::matches(installed, constraint),
            Comparer::Maven => maven::matches(installed, constraint),
            Comparer::RubyGems => gem::matches(installed, constraint),
            Comparer::Bitnami => bitnami::matches(installed, constraint),
        }
    }
}

/// The `NewConstraints` shape these libraries share: `||` alternatives,
/// each segment checked whole against `valid`, its items those `item`
/// finds (the trimmed segment when it finds none), each made by `each`.
fn alternatives<T>(
    s: &str,
    valid: &regex::Regex,
    item: &regex::Regex,
    mut each: impl FnMut(&str) -> Result<T, String>,
) -> Result<Vec<Vec<T>>, String> {
    let mut alts = Vec::new();
    for seg in regex::split_or(s) {
        if !valid.is_match(seg) {
            return Err(format!("improper constraint: {seg}"));
        }
        let mut found = item.find_all(seg);
        if found.is_empty() {
            found.push(regex::trim_space(seg));
        }
        alts.push(found.into_iter().map(&mut each).collect::<Result<Vec<T>, String>>()?);
    }
    Ok(alts)
}

/// Go's `Constraints.Check` shape shared by these libraries: `||`
/// alternatives, each a conjunction of items, all parsed before any is
/// checked; true for the first alternative whose every item holds (a
/// failing check is an error, as in Go).
fn any_all<T>(alts: &[Vec<T>], mut check: impl FnMut(&T) -> Result<bool, String>) -> Result<bool, String> {
    for items in alts {
        let mut all = true;
        for c in items {
            if !check(c)? {
                all = false;
                break;
            }
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Trivy's IsVulnerable for one advisory row: Ok(true/false), or Err(message) where Trivy logs a warning and treats the package as not vulnerable (a parse error of the version or a constraint).
pub fn is_vulnerable(
    c: Comparer,
    installed: &str,
    vulnerable: &[String],
    patched: &[String],
    unaffected: &[String],
) -> Result<bool, String> {
    // an empty vulnerable or patched entry: detected whatever the version
    if vulnerable.iter().chain(patched).any(String::is_empty) {
        return Ok(true);
    }
    let mut matched = false;
    if !vulnerable.is_empty() {
        matched = c.matches(installed, &vulnerable.join(" || "))?;
        if !matched {
            return Ok(false);
        }
    }
    let secure: Vec<&str> = patched.iter().chain(unaffected).map(String::as_str).collect();
    if secure.is_empty() {
        return Ok(matched);
    }
    Ok(!c.matches(installed, &secure.join(" || "))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn is_vulnerable_follows_compare_go() {
        let g = Comparer::Generic;
        assert_eq!(is_vulnerable(g, "junk", &s(&[""]), &[], &[]), Ok(true));
        assert_eq!(is_vulnerable(g, "junk", &[], &s(&[""]), &[]), Ok(true));
        assert_eq!(is_vulnerable(g, "1.0", &[], &[], &[]), Ok(false));
        assert_eq!(is_vulnerable(g, "1.0", &s(&["<2.0"]), &[], &[]), Ok(true));
        assert_eq!(is_vulnerable(g, "1.0", &s(&["<2.0"]), &s(&["1.0"]), &[]), Ok(false));
        assert_eq!(is_vulnerable(g, "1.0", &[], &s(&[">=2.0"]), &[]), Ok(true));
        assert_eq!(is_vulnerable(g, "3.0", &[], &s(&[">=2.0"]), &s(&["<0.5"])), Ok(false));
        assert!(is_vulnerable(g, "junk", &s(&["<2.0"]), &[], &[]).is_err());
        assert!(is_vulnerable(g, "1.0", &[], &s(&["junk!"]), &[]).is_err());
        // unaffected "" is not the early exit; it is a constraint error
        assert!(is_vulnerable(g, "1.0", &[], &[], &s(&[""])).is_err());
    }

    #[test]
    fn prefixes() {
        assert_eq!(Comparer::for_prefix("cocoapods"), Some(Comparer::RubyGems));
        assert_eq!(Comparer::for_prefix("erlang"), Some(Comparer::Generic));
        assert_eq!(Comparer::for_prefix("conda"), None);
        assert_eq!(Comparer::for_prefix("hex"), None);
    }

    #[test]
    fn hostile_inputs_stay_bounded() {
        let long = "1.".repeat(50_000) + "0";
        let many: Vec<String> = (0..5_000).map(|i| format!(">={i}.0, <{i}.5")).collect();
        for c in [
            Comparer::Generic,
            Comparer::Npm,
            Comparer::Pep440,
            Comparer::Maven,
            Comparer::RubyGems,
            Comparer::Bitnami,
        ] {
            let _ = is_vulnerable(c, &long, &many, &s(&[&long]), &[]);
            let _ = is_vulnerable(
                c,
                "99999999999999999999999.0.0",
                &s(&["<99999999999999999999999.1"]),
                &[],
                &[],
            );
        }
    }
}

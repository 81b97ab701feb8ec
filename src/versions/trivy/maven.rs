//! Trivy's Maven comparer: `github.com/masahiro331/go-mvn-version` at
//! commit d21fcd2 (what Trivy 0.76.0 links, go.sum `h1:` recomputed from
//! the mirror): `NewVersion` (never fails) and `NewComparer`, i.e. its
//! constraint syntax, else its Maven range ("requirement") syntax. The
//! order is [`crate::versions::maven::compare`], the one port of its
//! `version.go`.
//!
//! Constraints: `||` alternatives of `op version` items (`,`/spaces
//! between), version characters `[0-9A-Za-z-~_.+]`, operators none/`=`/
//! `==`, `!=`, `<`, `<=`/`=<`, `>`, `>=`/`=>`. If the whole string is no
//! valid constraint, it is read as Maven ranges after removing all white
//! space: a string of `[0-9A-Za-z-~.]` alone is a "soft requirement"
//! that matches **every** version; otherwise each `[..]`/`(..)` group is
//! an alternative (`[a,b)`, `(,b]`, `[a,)`, with open ends `-----1` and
//! `99999999999999999999`), and a group without a comma is an equality
//! whose version drops the last **two** characters (`[1.0]` means `1.`),
//! as the library does.
//!
//! Why our own: no Rust crate reproduces go-mvn-version's order (which
//! differs from Maven's own in places, see `crate::versions`).

use super::regex::{split_or, trim_space, Regex};
use crate::versions::maven::compare;
use std::cmp::Ordering;
use std::sync::OnceLock;

const RUN: &str = r"([0-9A-Za-z\-~_\.\+]+)";
const OPS: &str = r"==|!=|>=|=>|<=|=<|=|>|<|";
const MIN_VERSION: &str = "-----1";
const MAX_VERSION: &str = "99999999999999999999";

struct Res {
    item: Regex,
    valid: Regex,
    requirement: Regex,
    soft: Regex,
}

fn res() -> &'static Res {
    static R: OnceLock<Res> = OnceLock::new();
    R.get_or_init(|| Res {
        item: Regex::new(&format!(r"({OPS})\s*{RUN}")),
        valid: Regex::new(&format!(r"^\s*(\s*({OPS})\s*{RUN}\s*\,?)*\s*$")),
        requirement: Regex::new(r"([\[\(][0-9A-Za-z\-\.,]+[\]\)])"),
        soft: Regex::new(r"^[0-9A-Za-z\-~\.]+$"),
    })
}

type Alternatives = Vec<Vec<(String, String)>>;

/// `NewConstraints`: (operator, version) lists.
fn constraints(s: &str) -> Result<Alternatives, String> {
    let r = res();
    let mut alts = Vec::new();
    for seg in split_or(s) {
        if !r.valid.is_match(seg) {
            return Err(format!("improper constraint: {seg}"));
        }
        let mut found = r.item.find_all(seg);
        if found.is_empty() {
            found.push(trim_space(seg));
        }
        let mut items = Vec::new();
        for single in found {
            let m = r.item.captures(single).ok_or_else(|| format!("improper constraint: {single}"))?;
            items.push((m[1].unwrap_or("").to_string(), m[2].unwrap_or("").to_string()));
        }
        alts.push(items);
    }
    Ok(alts)
}

fn brackets(r: &str) -> bool {
    (r.starts_with('[') || r.starts_with('(')) && (r.ends_with(']') || r.ends_with(')'))
}

/// One requirement bound as (operator, version).
fn requirement(r: &str) -> (String, String) {
    let (op, v) = if brackets(r) {
        ("=", r.get(1..r.len().saturating_sub(2)).unwrap_or(""))
    } else if let Some(v) = r.strip_prefix('[') {
        (">=", v)
    } else if let Some(v) = r.strip_prefix('(') {
        (">", v)
    } else if let Some(v) = r.strip_suffix(']') {
        ("<=", v)
    } else if let Some(v) = r.strip_suffix(')') {
        ("<", v)
    } else {
        ("soft", r)
    };
    (op.to_string(), v.to_string())
}

/// `NewRequirements`.
fn requirements(s: &str) -> Result<Alternatives, String> {
    let r = res();
    let v: String = s.split_whitespace().collect();
    if r.soft.is_match(&v) {
        return Ok(vec![vec![requirement(&v)]]);
    }
    let found = r.requirement.find_all(&v);
    if found.is_empty() {
        return Err("improper requirements: []".into());
    }
    let mut alts = Vec::new();
    for req in found {
        let mut ss: Vec<String> = req.split(',').map(str::to_string).collect();
        if ss.len() > 2 {
            return Err(format!("improper requirement length: {req}"));
        }
        if ss.len() == 1 && brackets(&ss[0]) {
            alts.push(vec![requirement(&ss[0])]);
            continue;
        }
        if ss[0].len() == 1 {
            ss[0] = format!("{}{MIN_VERSION}", ss[0]);
        }
        if ss[1].len() == 1 {
            ss[1] = format!("{MAX_VERSION}{}", ss[1]);
        }
        alts.push(ss.iter().map(|x| requirement(x)).collect());
    }
    Ok(alts)
}

fn holds(v: &str, op: &str, c: &str) -> bool {
    let o = compare(v, c);
    match op {
        "soft" => true,
        "!=" => o != Ordering::Equal,
        ">" => o == Ordering::Greater,
        "<" => o == Ordering::Less,
        ">=" | "=>" => o != Ordering::Less,
        "<=" | "=<" => o != Ordering::Greater,
        _ => o == Ordering::Equal,
    }
}

/// Trivy's maven `matchVersion`.
pub fn matches(installed: &str, constraint: &str) -> Result<bool, String> {
    let alts = match constraints(constraint) {
        Ok(a) => a,
        Err(e1) => requirements(constraint)
            .map_err(|e2| format!("maven constraint error ({constraint}): failed to new comparer: 2 errors occurred: {e1}; {e2}"))?,
    };
    Ok(alts.iter().any(|all| all.iter().all(|(op, c)| holds(installed, op, c))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str, c: &str) -> bool {
        matches(v, c).unwrap()
    }

    #[test]
    fn go_mvn_version_table() {
        // a sample of go-mvn-version's constraint_test.go / requirement_test.go
        assert!(ok("1.0", ">= 1.0, < 2.0"));
        assert!(ok("1.0.0-SNAPSHOT", "< 1.0"));
        assert!(ok("2.0.0.Final", "= 2.0.0"));
        assert!(ok("1.2.3+sp1", "1.2.3+sp1"));
        assert!(ok("1.5", "[1.0,2.0)"));
        assert!(!ok("2.0", "[1.0,2.0)"));
        assert!(ok("0.1", "(,1.0]"));
        assert!(ok("3.0", "(,1.0],[1.2,)"));
        assert!(!ok("1.1", "(,1.0],[1.2,)"));
        assert!(ok("1", "[1.0]"));
        assert!(matches("1.0", "[1,2,3]").is_err());
        assert!(matches("1.0", "=1.0:x").is_err());
    }
}

//! Trivy's pip comparer: `github.com/aquasecurity/go-pep440-version`
//! with `WithPreRelease(true)` and no `AllowLocalSpecifier`, on go-version
//! v0.0.1's parts. Trivy 0.76.0 links commit f9bba28 (2026-02-24), which
//! is not in the mirror; this ports the tree of the pull request it merged
//! ("add AllowLocalSpecifier", head bf83aa4 / merge 051f684), the newest
//! code available. The real-Trivy test (`tests/versions_trivy.rs`) is the
//! check that they agree.
//!
//! Versions: PEP 440 with case-insensitive spelling (`v`, `!` epoch,
//! release, `a|b|c|rc|alpha|beta|pre|preview` pre-releases, `-N` or
//! `post|rev|r` post-releases, `dev`, `+local`), ordered by the
//! packaging key (dev-only before pre-releases, local after public).
//! Numbers are `uint64`: larger ones are a parse error.
//!
//! Specifiers: `||` alternatives of items (`,`/spaces between) with
//! `==`, `!=` (both with `.*` prefix matching), `<`, `<=`, `>`, `>=`,
//! `~=`, `===`, and the non-PEP `=` and bare version; a lone `*` is
//! `>=0.0.0`. The validity pattern is case-sensitive, the item pattern is
//! not, and items are split leftmost-first, so `1.0alpha1` in a
//! specifier reads as `==1.0a0, ==1` (as in Go). Local labels are not
//! allowed in specifiers (except `==`/`!=`), and the installed version's
//! local label is dropped before comparing, unless an equality specifier
//! has one. With pre-releases included, `<V` excludes V's own
//! pre-releases only for an installed version that had a local label
//! (the re-parsed version forgets the option, as in Go); `>V` never
//! admits V's post-releases. Prefix matching keeps the library's quirks
//! (`padVersion` pads half the difference and takes the tail of the
//! wrong side).
//!
//! Why our own: `pep440_rs` implements PEP 440 itself (pre-releases
//! excluded by default, proper prefix matching, `1.0alpha1` read as one
//! version, arbitrary-size numbers), not this library's behaviour.

use super::part::{self, Part};
use super::regex::{split_or, trim_space, Regex};
use std::sync::OnceLock;

const VERSION: &str = concat!(
    r"v?(?:(?:(?P<epoch>[0-9]+)!)?(?P<release>[0-9]+(?:\.[0-9]+)*)",
    r"(?P<pre>[-_\.]?(?P<pre_l>(a|b|c|rc|alpha|beta|pre|preview))[-_\.]?(?P<pre_n>[0-9]+)?)?",
    r"(?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_\.]?(?P<post_l>post|rev|r)[-_\.]?(?P<post_n2>[0-9]+)?))?",
    r"(?P<dev>[-_\.]?(?P<dev_l>dev)[-_\.]?(?P<dev_n>[0-9]+)?)?)",
    r"(?:\+(?P<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?"
);
const OPS: &str = r"===|==|!=|>=|<=|~=|=|>|<|";

struct Res {
    version: Regex,
    item: Regex,
    valid: Regex,
}

fn res() -> &'static Res {
    static R: OnceLock<Res> = OnceLock::new();
    R.get_or_init(|| Res {
        version: Regex::new(&format!(r"(?i)^\s*{VERSION}\s*$")),
        item: Regex::new(&format!(r"(?i)(?P<operator>({OPS}))\s*(?P<version>{VERSION}(\.\*)?)")),
        valid: Regex::new(&format!(r"^\s*(\s*({OPS})\s*({VERSION}(\.\*)?)\s*\,?)*\s*$")),
    })
}

/// A letter with a number; null when both are empty.
#[derive(Clone, Debug, Default, PartialEq)]
struct LetterNumber {
    letter: String,
    number: u64,
}

impl LetterNumber {
    fn is_null(&self) -> bool {
        self.letter.is_empty() && self.number == 0
    }

    fn key(&self) -> Part {
        Part::List(vec![Part::Str(self.letter.clone()), Part::Uint(self.number)])
    }
}

/// A parsed version.
#[derive(Clone, Debug)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    pre: LetterNumber,
    post: LetterNumber,
    dev: LetterNumber,
    local: String,
    pre_release_included: bool,
}

fn num(s: &str) -> Result<u64, String> {
    part::parse_u64(s).ok_or_else(|| format!("{s}: value out of range"))
}

/// Go's `strings.ToLower` on what the (?i) pattern admits.
fn lower(s: &str) -> String {
    s.chars().map(|c| if c == '\u{212A}' { 'k' } else { c.to_ascii_lowercase() }).collect()
}

/// `version.Parse`.
pub fn parse(v: &str) -> Result<Version, String> {
    let r = &res().version;
    let m = r.captures(v).ok_or_else(|| format!("malformed version: {v}"))?;
    let g = |name: &str| m[r.group(name)].filter(|s| !s.is_empty());
    let mut release = Vec::new();
    for s in g("release").unwrap_or("").split('.') {
        release.push(num(s).map_err(|e| format!("error parsing version: {e}"))?);
    }
    let err = |e: String| format!("failed to parse version ({v}): {e}");
    let alias = |l: &str| {
        match lower(l).as_str() {
            "a" | "alpha" => "a",
            "b" | "beta" => "b",
            "rc" | "c" | "pre" | "preview" => "rc",
            "post" | "rev" | "r" => "post",
            "dev" => "dev",
            _ => "",
        }
        .to_string()
    };
    let opt_num = |name: &str| g(name).map(num).transpose().map(Option::unwrap_or_default);
    let mut post = LetterNumber { letter: g("post_l").map(alias).unwrap_or_default(), number: 0 };
    if let Some(n) = g("post_n1").or(g("post_n2")) {
        if post.letter.is_empty() {
            post.letter = "post".into();
        }
        post.number = num(n).map_err(err)?;
    }
    Ok(Version {
        epoch: opt_num("epoch").map_err(err)?,
        release,
        pre: LetterNumber {
            letter: g("pre_l").map(alias).unwrap_or_default(),
            number: opt_num("pre_n").map_err(err)?,
        },
        post,
        dev: LetterNumber {
            letter: g("dev_l").map(lower).unwrap_or_default(),
            number: opt_num("dev_n").map_err(err)?,
        },
        local: g("local").map(lower).unwrap_or_default(),
        pre_release_included: false,
    })
}

/// `MustParse` of a string this library built: Go panics if it fails.
fn must(v: &str) -> Result<Version, String> {
    parse(v).map_err(|e| format!("Go panics in MustParse: {e}"))
}

impl Version {
    fn base(&self) -> String {
        let mut s = if self.epoch != 0 { format!("{}!", self.epoch) } else { String::new() };
        s += &self.release.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
        s
    }

    /// `Version.String`.
    pub fn to_go_string(&self) -> String {
        let mut s = self.base();
        if !self.pre.is_null() {
            s += &format!("{}{}", self.pre.letter, self.pre.number);
        }
        if !self.post.is_null() {
            s += &format!(".post{}", self.post.number);
        }
        if !self.dev.is_null() {
            s += &format!(".dev{}", self.dev.number);
        }
        if !self.local.is_empty() {
            s += &format!("+{}", self.local);
        }
        s
    }

    fn public(&self) -> String {
        let s = self.to_go_string();
        s.split('+').next().unwrap_or("").to_string()
    }

    fn is_prerelease(&self) -> bool {
        !self.pre_release_included && (!self.pre.is_null() || !self.dev.is_null())
    }

    fn key(&self, release_len: usize) -> Vec<Part> {
        let release = part::normalize(self.release.iter().map(|&n| Part::Uint(n)).collect());
        let release = part::padding(release, release_len, &Part::Uint(0));
        let pre = if self.pre.is_null() && self.post.is_null() && !self.dev.is_null() {
            Part::NegInfinity
        } else if self.pre.is_null() {
            Part::Infinity
        } else {
            self.pre.key()
        };
        let post = if self.post.is_null() { Part::NegInfinity } else { self.post.key() };
        let dev = if self.dev.is_null() { Part::Infinity } else { self.dev.key() };
        let local = if self.local.is_empty() {
            Part::NegInfinity
        } else {
            Part::List(
                self.local
                    .split('.')
                    .map(|l| part::parse_u64(l).map_or_else(|| Part::PreStr(l.to_string()), Part::Uint))
                    .collect(),
            )
        };
        vec![Part::Uint(self.epoch), Part::List(release), pre, post, dev, local]
    }

    fn normalized_release_len(&self) -> usize {
        part::normalize(self.release.iter().map(|&n| Part::Uint(n)).collect()).len()
    }

    /// `Version.Compare`: -1, 0 or 1 (only the receiver's release is
    /// padded, as in Go; the result is the same).
    pub fn compare(&self, o: &Version) -> i32 {
        if self.to_go_string() == o.to_go_string() {
            return 0;
        }
        part::compare_lists(&self.key(o.normalized_release_len()), &o.key(0))
    }
}

/// `versionSplit`: `.` pieces, `5a1`-like ones split in two.
fn version_split(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in v.split('.') {
        let digits = piece.bytes().take_while(u8::is_ascii_digit).count();
        let rest = &piece[digits..];
        let letters = ["rc", "a", "b", "c"].iter().find(|l| rest.starts_with(**l)).map(|l| l.len());
        match letters {
            Some(l) if digits > 0 && rest.len() > l && rest[l..].bytes().all(|b| b.is_ascii_digit()) => {
                out.push(piece[..digits].to_string());
                out.push(rest.to_string());
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

/// `strconv.Atoi` succeeds.
fn is_digits(s: &str) -> bool {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && s.parse::<i64>().is_ok()
}

/// `padVersion`, quirks included.
fn pad_version(left: &[String], right: &[String]) -> (Vec<String>, Vec<String>) {
    let mut lr: Vec<String> = left.iter().filter(|s| is_digits(s)).cloned().collect();
    let mut rr: Vec<String> = right.iter().filter(|s| is_digits(s)).cloned().collect();
    let left_rest = left.get(lr.len()..).unwrap_or(&[]).to_vec();
    let right_rest = left.get(rr.len()..).unwrap_or(&[]).to_vec();
    let mut i = 0;
    while (i as isize) < lr.len() as isize - rr.len() as isize {
        rr.push("0".into());
        i += 1;
    }
    let mut i = 0;
    while (i as isize) < rr.len() as isize - lr.len() as isize {
        lr.push("0".into());
        i += 1;
    }
    lr.extend(left_rest);
    rr.extend(right_rest);
    (lr, rr)
}

fn equal(p: &Version, spec: &str) -> Result<bool, String> {
    if let Some(prefix) = spec.strip_suffix(".*") {
        let p = must(&p.public())?;
        let split_spec = version_split(prefix);
        let mut split_p = version_split(&p.to_go_string());
        split_p.truncate(split_spec.len());
        let (a, b) = pad_version(&split_spec, &split_p);
        return Ok(a == b);
    }
    Ok(must(spec)?.compare(p) == 0)
}

fn compatible(p: &Version, spec: &str) -> Result<bool, String> {
    let public = must(spec)?.public();
    let elements: Vec<String> = version_split(&public)
        .into_iter()
        .take_while(|s| !s.starts_with("post") && !s.starts_with("dev"))
        .collect();
    let Some((_, init)) = elements.split_last() else {
        return Err("Go panics: slice bounds out of range in specifierCompatible".into());
    };
    let prefix = init.join(".") + ".*";
    Ok(p.compare(&must(spec)?) >= 0 && equal(p, &prefix)?)
}

struct Item {
    op: String,
    version: String,
}

impl Item {
    fn check(&self, v: &Version) -> Result<bool, String> {
        let p = if v.local.is_empty() {
            v.clone()
        } else {
            match self.op.as_str() {
                "==" | "!=" | "=" | "" => {
                    let spec = self.version.strip_suffix(".*").unwrap_or(&self.version);
                    if must(spec)?.local.is_empty() {
                        must(&v.public())?
                    } else {
                        v.clone()
                    }
                }
                "===" => v.clone(),
                _ => must(&v.public())?,
            }
        };
        let spec = self.version.as_str();
        Ok(match self.op.as_str() {
            "!=" => !equal(&p, spec)?,
            "<" => {
                let s = must(spec)?;
                p.compare(&s) < 0
                    && !(!s.is_prerelease()
                        && p.is_prerelease()
                        && must(&p.base())?.compare(&must(&s.base())?) == 0)
            }
            ">" => {
                let s = must(spec)?;
                p.compare(&s) > 0
                    && !(s.post.is_null()
                        && !p.post.is_null()
                        && must(&p.base())?.compare(&must(&s.base())?) == 0)
            }
            "<=" => p.compare(&must(spec)?) <= 0,
            ">=" => p.compare(&must(spec)?) >= 0,
            "~=" => compatible(&p, spec)?,
            "===" => p.to_go_string().eq_ignore_ascii_case(spec),
            _ => equal(&p, spec)?,
        })
    }
}

fn validate(op: &str, version: &str) -> Result<(), String> {
    let (version, wildcard) = match version.strip_suffix(".*") {
        Some(v) => (v, true),
        None => (version, false),
    };
    let v = parse(version).map_err(|e| format!("version parse error: {e}"))?;
    match op {
        "" | "=" | "==" | "!=" if wildcard && (!v.dev.is_null() || !v.local.is_empty()) => {
            return Err("the (non)equality operators don't allow to use a wild card and a dev or local version together".into());
        }
        "" | "=" | "==" | "!=" => {}
        "~=" if wildcard => return Err("a wild card is not allowed".into()),
        "~=" if v.release.len() < 2 => {
            return Err("the compatible operator requires at least two digits in the release segment".into())
        }
        _ if wildcard => return Err("a wild card is not allowed".into()),
        _ if !v.local.is_empty() => return Err("local versions cannot be specified".into()),
        _ => {}
    }
    Ok(())
}

/// `NewSpecifiers(s, WithPreRelease(true))`, checked against `v`.
fn check(s: &str, v: &Version) -> Result<bool, String> {
    let r = res();
    let mut alts = Vec::new();
    for seg in split_or(s) {
        let seg = if trim_space(seg) == "*" { ">=0.0.0" } else { seg };
        if !r.valid.is_match(seg) {
            return Err(format!("improper constraint: {seg}"));
        }
        let mut found = r.item.find_all(seg);
        if found.is_empty() {
            found.push(trim_space(seg));
        }
        let mut items = Vec::new();
        for single in found {
            let m = r.item.captures(single).ok_or_else(|| format!("improper specifier: {single}"))?;
            let op = m[r.item.group("operator")].unwrap_or("").to_string();
            let version = m[r.item.group("version")].unwrap_or("").to_string();
            if op != "===" {
                validate(&op, &version)?;
            }
            items.push(Item { op, version });
        }
        alts.push(items);
    }
    let mut v = v.clone();
    v.pre_release_included = true;
    super::any_all(&alts, |c| c.check(&v))
}

/// Trivy's pep440 `matchVersion` (no `AllowLocalSpecifier`).
pub fn matches(installed: &str, constraint: &str) -> Result<bool, String> {
    let v = parse(installed).map_err(|e| format!("python version error ({installed}): {e}"))?;
    check(constraint, &v).map_err(|e| format!("python constraint error ({constraint}): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str, c: &str) -> bool {
        matches(v, c).unwrap()
    }

    #[test]
    fn order() {
        let sorted = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.1.dev1",
            "1!0.1",
        ];
        for w in sorted.windows(2) {
            assert_eq!(parse(w[0]).unwrap().compare(&parse(w[1]).unwrap()), -1, "{w:?}");
        }
        assert_eq!(parse("1.0").unwrap().compare(&parse("1.0.0").unwrap()), 0);
        assert_eq!(parse("V1.0-ALPHA_1").unwrap().to_go_string(), "1.0a1");
    }

    #[test]
    fn go_pep440_version_table() {
        // a sample of go-pep440-version's specifier_test.go (pre-releases on)
        assert!(ok("2.0", "==2"));
        assert!(ok("2.1.3", "==2.1.*"));
        assert!(!ok("2.2", "==2.1.*"));
        assert!(ok("1.0+local", "==1.0"));
        assert!(ok("1.0a1", "<1.0"));
        assert!(!ok("1.0a1+l", "<1.0"));
        assert!(!ok("1.0.post1", ">1.0"));
        assert!(ok("1.1.post1", ">1.0"));
        assert!(ok("2.2", "~=2.2"));
        assert!(ok("2.9", "~=2.2"));
        assert!(!ok("3.0", "~=2.2"));
        assert!(ok("1.4.5", "~=1.4.5a4"));
        assert!(ok("0.9", "*"));
        assert!(ok("1.0", "===1.0"));
        assert!(ok("1.5", ">=1.0, <2.0 || ==3"));
        // leftmost-first: "1.0alpha1" is "==1.0a0, ==1"
        assert!(!ok("1.0a1", "==1.0alpha1"));
        assert!(matches("1.0", "<1.0+local").is_err());
        assert!(matches("1.0", "~=1").is_err());
        assert!(matches("1.0", "<1.0RC1").is_err());
        assert!(matches("1.0 beta", "1").is_err());
        assert!(matches("1.0", "==1.0.dev1.*").is_err());
    }
}

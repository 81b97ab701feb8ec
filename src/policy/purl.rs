//! Package URLs (<https://github.com/package-url/purl-spec>): parsed, and
//! printed back in the canonical form Trivy 0.76.0 reports
//! (`PkgIdentifier.PURL`), so json:policy's evaluation lines name
//! components exactly as Trivy does.
//!
//! Follows packageurl-go v0.1.7 (the version Trivy 0.76.0 is built with),
//! `FromString`, `Normalize` and `ToString`: `pkg:` in any case and the
//! slashes after it ignored; `#subpath` then `?qualifiers` split off; the
//! type up to the first `/`, lowercased; the version after the last `@`
//! (not a leading one: npm scopes); the name the last `/` segment, the
//! namespace the non-empty segments before it; each part percent-decoded
//! (`+` stays `+`). Namespaces are lowercased for alpm, apk, bitbucket,
//! brew, composer, debian, github, golang, rpm, qpkg; names for alpm, apk,
//! bitbucket, bitnami, brew, chrome-extension, composer, debian, github,
//! golang, and PyPI names lowercased with `_` → `-`. Qualifier keys are
//! lowercased, empty values dropped, a repeated key refused; printed
//! sorted by key. Printing percent-encodes every byte but ASCII letters,
//! digits, `-._~:` (upper-case hex), `/` kept between subpath segments.
//! Checked against Trivy: the purl of every package Trivy lists for the
//! samples' and the real corpus's SBOMs (`tests/sbom_packages.rs`).

use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purl {
    /// Lowercase (`pypi`, `npm`, `golang`, `maven`, …).
    pub ty: String,
    /// Decoded, `/`-joined segments; empty when absent.
    pub namespace: String,
    pub name: String,
    /// Decoded; empty when absent.
    pub version: String,
    pub qualifiers: BTreeMap<String, String>,
    pub subpath: String,
}

fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(|| format!("bad percent-escape in {s:?}"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad percent-escape in {s:?}"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} decodes to invalid UTF-8"))
}

/// Percent-encode all but ASCII letters, digits and `-._~:`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~:".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

fn valid_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b".-_".contains(&b[0]))
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b".-_".contains(c))
}

impl Purl {
    pub fn parse(s: &str) -> Result<Purl, String> {
        if s.len() < 4 || !s[..4].eq_ignore_ascii_case("pkg:") {
            return Err(format!("{s:?} is not a purl (the scheme is not pkg:)"));
        }
        let rest = s[4..].trim_start_matches('/');
        let (rest, subpath) = match rest.split_once('#') {
            Some((r, sp)) => (r, sp.split('/').map(decode).collect::<Result<Vec<_>, _>>()?.join("/")),
            None => (rest, String::new()),
        };
        let subpath = subpath.trim_matches('/').to_string();
        if subpath.split('/').skip(1).any(|c| c == "." || c == "..") {
            return Err(format!("{s:?}: invalid subpath"));
        }
        let (rest, raw_query) = rest.split_once('?').unwrap_or((rest, ""));
        let (ty, remainder) = rest.split_once('/').ok_or_else(|| format!("{s:?}: no type or no name"))?;
        let ty = ty.to_ascii_lowercase();
        let tb = ty.as_bytes();
        if tb.is_empty()
            || !(tb[0].is_ascii_alphabetic() || b".-+".contains(&tb[0]))
            || !tb.iter().all(|c| c.is_ascii_alphanumeric() || b".-+".contains(c))
        {
            return Err(format!("{s:?}: invalid type {ty:?}"));
        }
        let mut qualifiers = BTreeMap::new();
        for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
            if pair.contains(';') {
                return Err(format!("{s:?}: a semicolon in the qualifiers"));
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = k.to_ascii_lowercase();
            if !valid_key(&k) {
                return Err(format!("{s:?}: invalid qualifier key {k:?}"));
            }
            let v = decode(v)?;
            if !v.is_empty() && qualifiers.insert(k.clone(), v).is_some() {
                return Err(format!("{s:?}: qualifier {k:?} twice"));
            }
        }
        if ty != "npm" && remainder.starts_with('@')
            || ty == "npm" && remainder.starts_with('@') && !remainder.contains('/')
        {
            return Err(format!("{s:?}: no name"));
        }
        let (remainder, version) = match remainder.rfind('@') {
            Some(at) if at > 0 => (&remainder[..at], decode(&remainder[at + 1..])?),
            _ => (remainder, String::new()),
        };
        let (ns, name) = match remainder.rfind('/') {
            Some(i) => (&remainder[..i], &remainder[i + 1..]),
            None => ("", remainder),
        };
        let name = decode(name)?;
        if name.is_empty() {
            return Err(format!("{s:?}: no name"));
        }
        let namespace =
            ns.split('/').filter(|c| !c.is_empty()).map(decode).collect::<Result<Vec<_>, _>>()?.join("/");
        let namespace = match ty.as_str() {
            "alpm" | "apk" | "bitbucket" | "brew" | "composer" | "debian" | "github" | "golang" | "rpm"
            | "qpkg" => namespace.to_lowercase(),
            _ => namespace,
        };
        let name = match ty.as_str() {
            "alpm" | "apk" | "bitbucket" | "bitnami" | "brew" | "chrome-extension" | "composer"
            | "debian" | "github" | "golang" => name.to_lowercase(),
            "pypi" => name.to_lowercase().replace('_', "-"),
            _ => name,
        };
        Ok(Purl { ty, namespace, name, version, qualifiers, subpath })
    }
}

impl fmt::Display for Purl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkg:{}", self.ty)?;
        for seg in self.namespace.split('/').filter(|s| !s.is_empty()) {
            write!(f, "/{}", escape(seg))?;
        }
        write!(f, "/{}", escape(&self.name))?;
        if !self.version.is_empty() {
            write!(f, "@{}", escape(&self.version))?;
        }
        if !self.qualifiers.is_empty() {
            let q: Vec<String> =
                self.qualifiers.iter().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect();
            write!(f, "?{}", q.join("&"))?;
        }
        if !self.subpath.is_empty() {
            let sp: Vec<String> = self.subpath.split('/').map(escape).collect();
            write!(f, "#{}", sp.join("/"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_parse_and_print_canonically() {
        let p = Purl::parse("pkg:pypi/Jinja_2@2.11.2").unwrap();
        assert_eq!((p.ty.as_str(), p.name.as_str(), p.version.as_str()), ("pypi", "jinja-2", "2.11.2"));
        assert_eq!(p.to_string(), "pkg:pypi/jinja-2@2.11.2");
        let p = Purl::parse("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar").unwrap();
        assert_eq!(p.namespace, "org.apache.logging.log4j");
        assert_eq!(p.to_string(), "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar");
        let p = Purl::parse("pkg:npm/%40angular/core@12.0.0").unwrap();
        assert_eq!((p.namespace.as_str(), p.name.as_str()), ("@angular", "core"));
        assert_eq!(p.to_string(), "pkg:npm/%40angular/core@12.0.0");
        assert_eq!(
            Purl::parse("pkg:npm/@angular/Core@12").unwrap().name,
            "Core",
            "npm names keep their case"
        );
        let q = Purl::parse("pkg:npm/x@1?vcs_url=git%2Bhttps://g.example/x.git&A=").unwrap();
        assert_eq!(q.to_string(), "pkg:npm/x@1?vcs_url=git%2Bhttps:%2F%2Fg.example%2Fx.git");
        let p = Purl::parse("pkg:golang/github.com/gin-gonic/gin@v1.4.0").unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.name.as_str(), p.version.as_str()),
            ("github.com/gin-gonic", "gin", "v1.4.0")
        );
        assert_eq!(Purl::parse("pkg:cargo/regex").unwrap().version, "");
        for bad in
            ["regex", "http://x/y", "pkg:/x", "pkg:npm", "pkg:npm/a@1%zz", "pkg:pypi/@x", "pkg:npm/a?k=1&k=2"]
        {
            assert!(Purl::parse(bad).is_err(), "{bad}");
        }
    }
}

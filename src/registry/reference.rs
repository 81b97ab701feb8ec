//! Registry references: `[oci://]REGISTRY/REPO[:TAG][@sha256:HEX]`.
//!
//! The registry part is always explicit (`host[:port]`, with a dot, a
//! colon or `localhost`): there is no implied Docker Hub, so a typo never
//! pushes evidence to a public registry. Repository names follow the OCI
//! distribution spec's grammar (lowercase path components joined by `.`,
//! `_`, `__` or `-`); tags are `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.

use std::fmt;

use crate::digest::Sha256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Sha256>,
}

impl Reference {
    /// Parse `[oci://]REGISTRY/REPO[:TAG][@sha256:HEX]`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Reference, String> {
        let rest = s.strip_prefix("oci://").unwrap_or(s);
        let (registry, path) = rest.split_once('/').ok_or_else(|| {
            format!("{s:?}: expected REGISTRY/REPO[:TAG] (e.g. registry.example:5000/trivy-db:2)")
        })?;
        if registry.is_empty()
            || !(registry.contains('.') || registry.contains(':') || registry == "localhost")
            || !registry.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        {
            return Err(format!(
                "{s:?}: {registry:?} is not a registry host (host[:port]; give it explicitly, e.g. 127.0.0.1:5000)"
            ));
        }
        let (name_tag, digest) = match path.split_once('@') {
            Some((n, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| format!("{s:?}: only sha256 digests are supported"))?;
                (
                    n,
                    Some(
                        Sha256::parse_hex(hex)
                            .ok_or_else(|| format!("{s:?}: the digest is not 64 hex digits"))?,
                    ),
                )
            }
            None => (path, None),
        };
        let (repository, tag) = match name_tag.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_string())),
            _ => (name_tag, None),
        };
        if !valid_repository(repository) {
            return Err(format!(
                "{s:?}: {repository:?} is not a repository name (lowercase letters, digits, and . _ - / between them)"
            ));
        }
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(format!("{s:?}: {t:?} is not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})"));
            }
        }
        Ok(Reference { registry: registry.to_string(), repository: repository.to_string(), tag, digest })
    }

    /// This reference with another tag.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }

    /// The tag or digest the manifest API is asked for.
    pub fn manifest_ref(&self) -> Option<String> {
        self.digest.map(|d| format!("sha256:{d}")).or_else(|| self.tag.clone())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@sha256:{d}")?;
        }
        Ok(())
    }
}

pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
}

fn valid_repository(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|comp| {
            let b = comp.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_back() {
        let r = Reference::parse("oci://127.0.0.1:5000/a/trivy-db:2").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "a/trivy-db", Some("2"))
        );
        assert_eq!(r.to_string(), "127.0.0.1:5000/a/trivy-db:2");
        let hex = "a".repeat(64);
        let r = Reference::parse(&format!("reg.example/x@sha256:{hex}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref().unwrap(), format!("sha256:{hex}"));
        assert_eq!(Reference::parse("localhost:5000/x").unwrap().tag, None);
        for bad in [
            "trivy-db:2",
            "ubuntu/x",
            "reg.example/",
            "reg.example/X",
            "reg.example/a//b",
            "reg.example/a:-x",
            "reg.example/a@md5:00",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}

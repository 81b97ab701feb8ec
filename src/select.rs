//! Scope selectors of a profile (`[profiles.X.select]`).
//!
//! Owns matching a record's [`RecordMeta`] against the selectors. Selectors
//! narrow advisories only: `ecosystems` (exact, case-insensitive), `packages`
//! (globs over package names), `ids` (globs over the id and its aliases),
//! `modified-since` / `modified-until` (inclusive, RFC 3339 or a date).
//! VEX statements and SBOMs are carried whole: they describe products, not
//! advisories, and dropping them would change their meaning.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::timefmt::{self, Instant};

/// What a selector can see of a record, computed once at parse time.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RecordMeta {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecosystems: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Selectors {
    pub ecosystems: Vec<String>,
    pub packages: Vec<String>,
    pub ids: Vec<String>,
    pub modified_since: Option<String>,
    pub modified_until: Option<String>,
    packages_set: Option<GlobSet>,
    ids_set: Option<GlobSet>,
    since: Option<Instant>,
    until: Option<Instant>,
}

fn globs(list: &[String], what: &str) -> Result<Option<GlobSet>, String> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for g in list {
        b.add(Glob::new(g).map_err(|e| format!("{what}: bad glob {g:?}: {e}"))?);
    }
    b.build().map(Some).map_err(|e| format!("{what}: {e}"))
}

fn date(v: &Option<String>, what: &str) -> Result<Option<Instant>, String> {
    match v {
        None => Ok(None),
        Some(s) => timefmt::parse(s)
            .map(Some)
            .ok_or_else(|| format!("{what}: {s:?} is not a date (YYYY-MM-DD) or RFC 3339 time")),
    }
}

impl Selectors {
    pub fn new(
        ecosystems: Vec<String>,
        packages: Vec<String>,
        ids: Vec<String>,
        modified_since: Option<String>,
        modified_until: Option<String>,
    ) -> Result<Self, String> {
        Ok(Selectors {
            packages_set: globs(&packages, "packages")?,
            ids_set: globs(&ids, "ids")?,
            since: date(&modified_since, "modified-since")?,
            until: date(&modified_until, "modified-until")?,
            ecosystems,
            packages,
            ids,
            modified_since,
            modified_until,
        })
    }

    /// True when no selector is set: every record passes.
    pub fn is_empty(&self) -> bool {
        self.ecosystems.is_empty()
            && self.packages.is_empty()
            && self.ids.is_empty()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// The selectors as canonical JSON (step parameters, manifest).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        let list = |v: &Vec<String>| serde_json::Value::from(v.clone());
        if !self.ecosystems.is_empty() {
            m.insert("ecosystems".into(), list(&self.ecosystems));
        }
        if !self.packages.is_empty() {
            m.insert("packages".into(), list(&self.packages));
        }
        if !self.ids.is_empty() {
            m.insert("ids".into(), list(&self.ids));
        }
        if let Some(s) = &self.modified_since {
            m.insert("modified-since".into(), s.clone().into());
        }
        if let Some(s) = &self.modified_until {
            m.insert("modified-until".into(), s.clone().into());
        }
        serde_json::Value::Object(m)
    }

    pub fn from_json(v: &serde_json::Value) -> Result<Self, String> {
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(|x| x.as_array())
                .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
        Selectors::new(
            list("ecosystems"),
            list("packages"),
            list("ids"),
            s("modified-since"),
            s("modified-until"),
        )
    }

    /// Does an advisory with this meta belong to the export?
    pub fn matches(&self, m: &RecordMeta) -> bool {
        if !self.ecosystems.is_empty()
            && !m.ecosystems.iter().any(|e| self.ecosystems.iter().any(|s| s.eq_ignore_ascii_case(e)))
        {
            return false;
        }
        if let Some(set) = &self.packages_set {
            if !m.packages.iter().any(|p| set.is_match(p)) {
                return false;
            }
        }
        if let Some(set) = &self.ids_set {
            if !std::iter::once(&m.id).chain(&m.aliases).any(|i| set.is_match(i)) {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(t) = m.modified.as_deref().and_then(timefmt::parse) else {
                return false;
            };
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RecordMeta {
        RecordMeta {
            id: "PYSEC-2024-1".into(),
            aliases: vec!["CVE-2024-1".into()],
            ecosystems: vec!["PyPI".into()],
            packages: vec!["requests".into()],
            modified: Some("2024-05-01T10:00:00Z".into()),
        }
    }

    fn sel(e: &[&str], p: &[&str], i: &[&str], since: Option<&str>, until: Option<&str>) -> Selectors {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        Selectors::new(v(e), v(p), v(i), since.map(String::from), until.map(String::from)).unwrap()
    }

    #[test]
    fn each_selector_filters() {
        let m = meta();
        assert!(sel(&[], &[], &[], None, None).matches(&m));
        assert!(sel(&["pypi"], &[], &[], None, None).matches(&m));
        assert!(!sel(&["npm"], &[], &[], None, None).matches(&m));
        assert!(sel(&[], &["req*"], &[], None, None).matches(&m));
        assert!(!sel(&[], &["flask"], &[], None, None).matches(&m));
        assert!(sel(&[], &[], &["CVE-2024-*"], None, None).matches(&m));
        assert!(!sel(&[], &[], &["GHSA-*"], None, None).matches(&m));
        assert!(sel(&[], &[], &[], Some("2024-05-01"), Some("2024-05-02")).matches(&m));
        assert!(!sel(&[], &[], &[], Some("2024-06-01"), None).matches(&m));
        assert!(!sel(&[], &[], &[], None, Some("2024-04-30")).matches(&m));
    }
}

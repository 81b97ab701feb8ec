//! Matching packages against Trivy DB rows as Trivy 0.76.0's library
//! detector does (docs/research/json-policy-trivy.md §2, §4), over the
//! *advisory index*: the lines json:policy's index step keeps of the rows
//! its trivy:db conversion writes (one implementation of advisories → rows).
//!
//! Index lines (tab-separated, no field holds a tab or newline; the rows'
//! own invariants):
//! - `A <prefix> <package> <bucket> <vuln id> <value>`: an advisory row of
//!   bucket `<prefix>::<data source>`, `value` its JSON
//!   (`VulnerableVersions`, `PatchedVersions`, `UnaffectedVersions`, `VendorIDs`);
//! - `S <bucket> <data source id>`: the data source of a bucket;
//! - `V <vuln id> <value>`: the severity part of a vulnerability row
//!   (`Severity`, `VendorSeverity`).
//!
//! Matching one package (its lookup name already normalised as the DB's
//! keys are): every bucket of its ecosystem is read; per vulnerability id
//! the bucket that sorts last (by bytes) wins alone (not a union); the
//! installed version is checked with Trivy's `IsVulnerable` and the
//! ecosystem's comparer ([`crate::versions::trivy`]). Severity: the
//! winning bucket's data source's vendor severity, then GitHub's for
//! `GHSA-` ids, then NVD's, then the vulnerability's own, else UNKNOWN.
//! `FixedVersion` as Trivy builds it: the patched versions, else the `<X`
//! bounds of the vulnerable ranges, unique, joined by `", "`.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::versions::trivy::{self as cmp, Comparer};

/// Severity names by Trivy's number (0 = UNKNOWN).
pub const SEVERITY_NAMES: &[&str] = &["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

/// One advisory row of a package.
#[derive(Clone, Debug, PartialEq)]
pub struct AdvisoryRow {
    pub bucket: String,
    pub vuln: String,
    pub value: Value,
}

/// What an index (or a slice of one) holds, ready to match.
#[derive(Default, Debug)]
pub struct Index {
    /// (prefix, package) → its advisory rows.
    pub advisories: HashMap<(String, String), Vec<AdvisoryRow>>,
    /// bucket → data source id.
    pub sources: HashMap<String, String>,
    /// vuln id → `{Severity, VendorSeverity}`.
    pub vulns: HashMap<String, Value>,
}

/// One line of an index, split; `None` for a line of another shape.
pub enum Line<'a> {
    Advisory { prefix: &'a str, package: &'a str, bucket: &'a str, vuln: &'a str, value: &'a str },
    Source { bucket: &'a str, id: &'a str },
    Vuln { vuln: &'a str, value: &'a str },
}

impl<'a> Line<'a> {
    pub fn split(line: &'a str) -> Option<Line<'a>> {
        let mut f = line.splitn(6, '\t');
        match f.next()? {
            "A" => Some(Line::Advisory {
                prefix: f.next()?,
                package: f.next()?,
                bucket: f.next()?,
                vuln: f.next()?,
                value: f.next()?,
            }),
            "S" => Some(Line::Source { bucket: f.next()?, id: f.next()? }),
            "V" => Some(Line::Vuln { vuln: f.next()?, value: f.next()? }),
            _ => None,
        }
    }
}

/// The index line of an advisory row (`bucket` = `<prefix>::<name>`).
pub fn advisory_line(
    out: &mut Vec<u8>,
    prefix: &str,
    package: &str,
    bucket: &str,
    vuln: &str,
    value: &Value,
) {
    let keep: serde_json::Map<String, Value> =
        ["VulnerableVersions", "PatchedVersions", "UnaffectedVersions", "VendorIDs"]
            .iter()
            .filter_map(|k| value.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
    line(
        out,
        &[
            "A",
            prefix,
            package,
            bucket,
            vuln,
            &String::from_utf8_lossy(&crate::canon::to_vec(&Value::Object(keep))),
        ],
    );
}

/// The index line of a vulnerability row (its severity fields only).
pub fn vuln_line(out: &mut Vec<u8>, vuln: &str, value: &Value) {
    let keep: serde_json::Map<String, Value> = ["Severity", "VendorSeverity"]
        .iter()
        .filter_map(|k| value.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    line(out, &["V", vuln, &String::from_utf8_lossy(&crate::canon::to_vec(&Value::Object(keep)))]);
}

/// The index line of a data-source row.
pub fn source_line(out: &mut Vec<u8>, bucket: &str, id: &str) {
    line(out, &["S", bucket, id]);
}

fn line(out: &mut Vec<u8>, fields: &[&str]) {
    out.extend_from_slice(fields.join("\t").as_bytes());
    out.push(b'\n');
}

impl Index {
    /// Add one index line; errors name what is malformed.
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        let bad = |e: serde_json::Error| format!("index line {:?}: {e}", &text[..text.len().min(80)]);
        match Line::split(text)
            .ok_or_else(|| format!("malformed index line {:?}", &text[..text.len().min(80)]))?
        {
            Line::Advisory { prefix, package, bucket, vuln, value } => {
                self.advisories.entry((prefix.to_string(), package.to_string())).or_default().push(
                    AdvisoryRow {
                        bucket: bucket.to_string(),
                        vuln: vuln.to_string(),
                        value: serde_json::from_str(value).map_err(bad)?,
                    },
                )
            }
            Line::Source { bucket, id } => {
                self.sources.insert(bucket.to_string(), id.to_string());
            }
            Line::Vuln { vuln, value } => {
                self.vulns.insert(vuln.to_string(), serde_json::from_str(value).map_err(bad)?);
            }
        }
        Ok(())
    }
}

/// Whether `version` ends in `+sp<N>` or `+sp<N>p<M>`.
fn plus_seal_suffix(version: &str) -> bool {
    let Some((_, tail)) = version.rsplit_once("+sp") else { return false };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match tail.split_once('p') {
        Some((n, m)) => digits(n) && digits(m),
        None => digits(tail),
    }
}

/// Whether Trivy looks a package up in Seal Security's advisory buckets
/// only (`pkg/detector/library/seal`, a "matched" supplier): Maven names
/// `seal.sp<N>…` and pip or Maven versions ending `+sp<N>[p<M>]`, pip and
/// RubyGems names `seal-*`, npm `@seal-security/*`, Go `sealsecurity.io/*`.
/// Our DBs hold no such buckets, so Trivy reports nothing for them. (Its
/// "candidate" suffixes, `-sp<N>` on npm, Go and RubyGems versions, fall
/// back to the usual buckets when the Seal ones are empty, as ours are.)
pub fn seal_routed(prefix: &str, name: &str, version: &str) -> bool {
    match prefix {
        "maven" => {
            name.strip_prefix("seal.sp").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
                || plus_seal_suffix(version)
        }
        "pip" => name.starts_with("seal-") || plus_seal_suffix(version),
        "npm" => name.starts_with("@seal-security/"),
        "go" => name.starts_with("sealsecurity.io/"),
        "rubygems" => name.starts_with("seal-"),
        _ => false,
    }
}

/// One match, as Trivy reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub vuln: String,
    /// The winning advisory bucket and its data source id.
    pub bucket: String,
    pub data_source: String,
    /// The advisories' own ids (`VendorIDs`).
    pub vendor_ids: Vec<String>,
    pub fixed: String,
    pub severity: &'static str,
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

/// Trivy's `FixedVersion` of an advisory value.
pub fn fixed_version(value: &Value) -> String {
    let patched = strings(value, "PatchedVersions");
    let list: Vec<String> = if !patched.is_empty() {
        patched
    } else {
        strings(value, "VulnerableVersions")
            .iter()
            .flat_map(|v| v.split(',').map(str::trim).map(String::from).collect::<Vec<_>>())
            .filter(|s| !s.starts_with("<=") && s.starts_with('<'))
            .map(|s| s[1..].trim().to_string())
            .collect()
    };
    let mut seen = std::collections::HashSet::new();
    let uniq: Vec<String> = list.into_iter().filter(|v| seen.insert(v.clone())).collect();
    uniq.join(", ")
}

/// The severity Trivy shows for `vuln` found through `data_source`.
pub fn severity(vuln: &str, info: Option<&Value>, data_source: &str) -> &'static str {
    let Some(info) = info else { return SEVERITY_NAMES[0] };
    let vendor = |id: &str| info.pointer(&format!("/VendorSeverity/{id}")).and_then(Value::as_u64);
    let name = |n: u64| SEVERITY_NAMES.get(n as usize).copied().unwrap_or(SEVERITY_NAMES[0]);
    if let Some(n) = vendor(data_source) {
        return name(n);
    }
    let mut order = vec![data_source];
    if vuln.starts_with("GHSA-") {
        order.push("ghsa");
    }
    order.push("nvd");
    if let Some(n) = order.iter().find_map(|id| vendor(id)) {
        if n != 0 {
            return name(n);
        }
    }
    match info.get("Severity").and_then(Value::as_str) {
        Some(s) => SEVERITY_NAMES.iter().find(|n| **n == s).copied().unwrap_or(SEVERITY_NAMES[0]),
        None => SEVERITY_NAMES[0],
    }
}

/// The matches of one package (`prefix` its ecosystem's bucket prefix,
/// `package` its normalised lookup name), and Trivy's warnings (versions or
/// constraints its comparer cannot parse: not vulnerable).
pub fn matches(index: &Index, prefix: &str, package: &str, installed: &str) -> (Vec<Match>, Vec<String>) {
    let Some(comparer) = Comparer::for_prefix(prefix) else { return (Vec::new(), Vec::new()) };
    let Some(rows) = index.advisories.get(&(prefix.to_string(), package.to_string())) else {
        return (Vec::new(), Vec::new());
    };
    // per vulnerability id, the bucket sorting last wins alone
    let mut winners: BTreeMap<&str, &AdvisoryRow> = BTreeMap::new();
    for r in rows {
        match winners.get(r.vuln.as_str()) {
            Some(w) if w.bucket.as_bytes() >= r.bucket.as_bytes() => {}
            _ => {
                winners.insert(&r.vuln, r);
            }
        }
    }
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for (vuln, r) in winners {
        let v = &r.value;
        let hit = cmp::is_vulnerable(
            comparer,
            installed,
            &strings(v, "VulnerableVersions"),
            &strings(v, "PatchedVersions"),
            &strings(v, "UnaffectedVersions"),
        );
        match hit {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                warnings
                    .push(format!("{vuln} on {package}@{installed}: {e} (not vulnerable, as Trivy decides)"));
                continue;
            }
        }
        let data_source = index.sources.get(&r.bucket).cloned().unwrap_or_default();
        out.push(Match {
            vuln: vuln.to_string(),
            bucket: r.bucket.clone(),
            severity: severity(vuln, index.vulns.get(vuln), &data_source),
            data_source,
            vendor_ids: strings(v, "VendorIDs"),
            fixed: fixed_version(v),
        });
    }
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index(lines: &[u8]) -> Index {
        let mut i = Index::default();
        for l in std::str::from_utf8(lines).unwrap().lines() {
            i.add(l).unwrap();
        }
        i
    }

    #[test]
    fn the_bucket_sorting_last_wins_alone() {
        let mut b = Vec::new();
        advisory_line(
            &mut b,
            "pip",
            "a",
            "pip::A src",
            "CVE-1",
            &json!({"VulnerableVersions": ["<1.0.0"], "VendorIDs": ["X-1"]}),
        );
        advisory_line(
            &mut b,
            "pip",
            "a",
            "pip::B src",
            "CVE-1",
            &json!({"VulnerableVersions": ["<0.5.0"], "VendorIDs": ["Y-1"]}),
        );
        source_line(&mut b, "pip::B src", "b");
        vuln_line(&mut b, "CVE-1", &json!({"Severity": "LOW", "VendorSeverity": {"b": 3}, "Title": "t"}));
        let i = index(&b);
        assert!(matches(&i, "pip", "a", "0.7").0.is_empty());
        let (m, _) = matches(&i, "pip", "a", "0.4");
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].severity, m[0].fixed.as_str(), m[0].vendor_ids.clone()),
            ("HIGH", "0.5.0", vec!["Y-1".to_string()])
        );
    }

    #[test]
    fn severity_falls_back_as_trivy_does() {
        let v = json!({"Severity": "MEDIUM", "VendorSeverity": {"ghsa": 4, "nvd": 2}});
        assert_eq!(severity("GHSA-x", Some(&v), "osv"), "CRITICAL");
        assert_eq!(severity("CVE-1", Some(&v), "osv"), "MEDIUM");
        assert_eq!(severity("CVE-1", Some(&json!({"Severity": "LOW"})), "osv"), "LOW");
        assert_eq!(severity("CVE-1", Some(&json!({})), "osv"), "UNKNOWN");
        assert_eq!(fixed_version(&json!({"VulnerableVersions": [">=1, <2", "<=3", "<2"]})), "2");
        assert_eq!(
            fixed_version(&json!({"VulnerableVersions": ["<2"], "PatchedVersions": ["2.1", "2.1"]})),
            "2.1"
        );
    }
}

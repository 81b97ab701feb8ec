//! Node.js security-wg npm advisories (`vuln/npm/<id>.json`) → Trivy rows.
//!
//! `vulnerable_versions` / `patched_versions` are node-semver ranges
//! (`<= 2.4.2 || >= 3.0.0 <=3.0.1`, `^1.1.7`, `*`). Each `||` alternative
//! becomes one `VulnerableVersions` entry with its comparators joined by
//! `, ` (and operators glued to their versions); `*` means every version.
//! `PatchedVersions` holds the patched alternatives the same way
//! (`>=1.5.2`, `^3.0.16`): Trivy subtracts them from the vulnerable range
//! and shows them as the fixed version, as trivy-db's Node.js converter did.
//! The advisory is filed under its CVEs, or `NSWG-ECO-<id>` without one.

use serde_json::{json, Map, Value};

use super::{cvss, go_time, vuln_ids, DataSource, Row, VulnDetails, VULNERABILITY_BUCKET};
use crate::versions::{self, Scheme};

const OPS: [&str; 7] = [">=", "<=", ">", "<", "=", "^", "~"];

/// One `||` alternative as comparators (`[">=1.0.0", "<2.0.0"]`).
fn comparators(alt: &str, field: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending_op: Option<&str> = None;
    for tok in alt.split_whitespace() {
        if OPS.contains(&tok) {
            pending_op = Some(tok);
            continue;
        }
        let tok = match pending_op.take() {
            Some(op) => format!("{op}{tok}"),
            None => tok.to_string(),
        };
        let op = OPS.iter().find(|o| tok.starts_with(**o)).copied().unwrap_or("");
        let ver = &tok[op.len()..];
        let ver_ok = ver.trim_end_matches(".x").trim_end_matches(".x");
        versions::validate(ver_ok, Scheme::Semver).map_err(|e| format!("{field}: {alt:?}: {e}"))?;
        out.push(if op.is_empty() { format!("={ver}") } else { tok.clone() });
    }
    if pending_op.is_some() {
        return Err(format!("{field}: {alt:?}: an operator without a version"));
    }
    Ok(out)
}

/// The constraint entries of a node-semver range, one per `||` alternative.
fn range(s: &str, field: &str) -> Result<Vec<String>, String> {
    let mut entries = Vec::new();
    for alt in s.split("||").map(str::trim) {
        if alt == "*" || alt.is_empty() && s.trim() == "*" {
            entries.push(String::new());
            continue;
        }
        if alt.is_empty() {
            return Err(format!("{field}: {s:?}: an empty alternative"));
        }
        entries.push(comparators(alt, field)?.join(", "));
    }
    Ok(entries)
}

/// Rows of one advisory; they may take at most `budget` bytes (see [`super::row_budget`]).
pub fn rows(doc: &Value, source: &str, ds: &DataSource, budget: usize) -> Result<Vec<Row>, String> {
    let num =
        doc.get("id").and_then(|v| v.as_u64().map(|n| n.to_string()).or(v.as_str().map(str::to_string)));
    let num = num.ok_or("$.id: missing or not a number")?;
    let own = format!("NSWG-ECO-{num}");
    super::check_ids(&own, doc.get("cves"), "$.cves")?;
    let mut budget = super::Budget::new(budget);
    let module = doc.get("module_name").and_then(Value::as_str).ok_or("$.module_name: missing")?;
    let eco = super::ecosystem("npm").expect("npm is known");
    let package = super::normalise_name(eco, module).map_err(|e| format!("$.module_name: {e}"))?;
    let vulnerable = doc.get("vulnerable_versions").and_then(Value::as_str).unwrap_or("*");
    let mut entries = range(vulnerable, "$.vulnerable_versions")?;
    entries.sort();
    entries.dedup();
    // patched alternatives stay constraints (`^3.0.16`, `~1.6.5`): Trivy
    // subtracts them from the vulnerable range, as the advisory means
    let patched = match doc.get("patched_versions").and_then(Value::as_str) {
        Some(p) if p.trim() != "<0.0.0" && !p.trim().is_empty() => range(p, "$.patched_versions")?,
        _ => Vec::new(),
    };
    let cves: Vec<String> = doc
        .get("cves")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let ids = vuln_ids(&own, &cves);
    let origin = format!("{source}/{own}");
    let bucket = format!("npm::{}", ds.name);
    let value = super::advisory_value(entries, patched, vec![own.clone()], Scheme::Semver);
    let mut cvss_map = Map::new();
    let mut severity = None;
    if let Some(v) = doc.get("cvss_vector").and_then(Value::as_str).filter(|v| v.starts_with("CVSS:3")) {
        cvss_map.insert("V3Vector".into(), json!(v));
    }
    if let Some(score) = doc.get("cvss_score").and_then(Value::as_f64) {
        cvss_map.insert("V3Score".into(), json!(score));
        severity = Some(cvss::severity_of_score(score));
    }
    let details = VulnDetails {
        title: doc.get("title").and_then(Value::as_str).map(str::to_string),
        description: doc.get("overview").and_then(Value::as_str).map(str::to_string),
        severity,
        cvss: cvss_map,
        cwe_ids: Vec::new(),
        references: doc
            .get("references")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect(),
        published: go_time(doc.get("publish_date").and_then(Value::as_str)),
        modified: go_time(doc.get("updated_at").and_then(Value::as_str)),
    };
    let details = details.to_json(&ds.id);
    let longest = ids.iter().map(String::len).max().unwrap_or(0);
    let names = bucket.len() + package.len() + longest + origin.len();
    budget.take(ids.len(), names, &value)?;
    budget.take(ids.len(), VULNERABILITY_BUCKET.len() + longest + origin.len(), &details)?;
    let mut out = vec![super::data_source_row(&bucket, &origin, ds)];
    for id in ids {
        out.push(Row {
            bucket: bucket.clone(),
            package: package.clone(),
            key: id.clone(),
            origin: origin.clone(),
            value: value.clone(),
        });
        out.push(Row {
            bucket: VULNERABILITY_BUCKET.into(),
            package: String::new(),
            key: id,
            origin: origin.clone(),
            value: details.clone(),
        });
    }
    for r in &out {
        super::check_names(r)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_semver_ranges_become_entries() {
        let e = range("<= 2.4.2 || >= 3.0.0 <=3.0.1", "f").unwrap();
        assert_eq!(e, vec!["<=2.4.2", ">=3.0.0, <=3.0.1"]);
        assert_eq!(range("*", "f").unwrap(), vec![""]);
        assert_eq!(range("2.1.0-M1 || 2.1.0-M2", "f").unwrap(), vec!["=2.1.0-M1", "=2.1.0-M2"]);
        assert!(range("<= banana", "f").is_err());
        assert!(range(">=", "f").is_err());
    }

    #[test]
    fn advisory_rows() {
        let doc = json!({"id": 1, "module_name": "Bassmaster", "cves": ["CVE-2014-7205"],
            "vulnerable_versions": "<=1.5.1", "patched_versions": ">=1.5.2", "title": "t", "overview": "o",
            "cvss_score": 6.5, "cvss_vector": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N",
            "publish_date": "2014-09-27", "updated_at": "2016-04-28", "references": ["https://a"]});
        let ds = DataSource { id: "nswg".into(), name: "Node.js".into(), url: String::new() };
        let rows = rows(&doc, "node", &ds, usize::MAX).unwrap();
        let a = rows.iter().find(|r| r.bucket == "npm::Node.js").unwrap();
        assert_eq!((a.package.as_str(), a.key.as_str()), ("bassmaster", "CVE-2014-7205"));
        assert_eq!(
            a.value,
            json!({"VulnerableVersions": ["<=1.5.1"], "PatchedVersions": [">=1.5.2"], "VendorIDs": ["NSWG-ECO-1"]})
        );
        let v = rows.iter().find(|r| r.bucket == "vulnerability").unwrap();
        assert_eq!(v.value["VendorSeverity"], json!({"nswg": 2}));
        assert_eq!(v.value["PublishedDate"], json!("2014-09-27T00:00:00Z"));
    }
}

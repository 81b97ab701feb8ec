//! Alpine secdb documents → Trivy DB rows, as trivy-db's own Alpine source
//! writes them (docs/FORMATS.md §6).
//!
//! The bucket is `alpine <release>`, from the document's `distroversion`
//! (`v3.18`) when it has one, else from its path in the source,
//! `<release>/<repository>/<package>.json` (`v` optional; `edge` too). Each
//! `secfixes` key is a fixed version, compared with apk's order; `"0"` lists
//! vulnerabilities that never affected the package, and is kept as the
//! fixed version `0`, which is below every version, so Trivy never reports them. Each listed
//! string gives one vulnerability id: its first `CVE-` token (`CVE_` read
//! as `CVE-`), else its last `GHSA-` token, as trivy-db reads
//! `"CVE-2017-2616 (+ regression fix)"`. A string with neither
//! (`XSA-…`) is left out with a warning. The value is `{"FixedVersion"}`;
//! when an id is listed under two versions, the highest wins. secdb carries no
//! severity and no details: no `vulnerability` row is written, and Trivy
//! shows UNKNOWN unless another source rates the id.
//!
//! Errors (the document is rejected, naming the reason): no release in the
//! path or `distroversion`, a package name that cannot be a key, nothing
//! usable listed. A fixed version apk cannot read, or an id that cannot be a
//! key, is left out with a warning, as trivy-db skips it.

use serde_json::Value;

use super::{check_names, os_advisory_value, os_package_key, Budget, DataSource, Row};
use crate::versions::{self, Scheme};

/// The release of a document at `path` (source-relative) or with this `distroversion`.
fn release(doc: &Value, path: &str) -> Result<String, String> {
    let ok = |r: &str| {
        let r = r.strip_prefix('v').unwrap_or(r);
        let mut it = r.split('.');
        let num = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        (r == "edge" || (num(it.next()) && num(it.next()) && it.next().is_none())).then(|| r.to_string())
    };
    if let Some(d) = doc.get("distroversion").and_then(Value::as_str) {
        return ok(d).ok_or_else(|| {
            format!("$.distroversion: {} is not an Alpine release (v<x.y> or edge)", super::short(d))
        });
    }
    let parts: Vec<&str> = path.split('/').collect();
    parts.len().checked_sub(3).and_then(|i| ok(parts[i])).ok_or_else(|| {
        format!(
            "{}: an Alpine secdb document must be at <release>/<repository>/<package>.json \
                 (release v3.18, 3.18 or edge) or name its release in $.distroversion",
            super::short(path)
        )
    })
}

/// The vulnerability id of one secfixes string (module doc).
fn id_of(s: &str) -> Option<String> {
    let tokens: Vec<String> = s.split_whitespace().map(|t| t.replace("CVE_", "CVE-")).collect();
    tokens
        .iter()
        .find(|t| t.starts_with("CVE-"))
        .or_else(|| tokens.iter().rev().find(|t| t.starts_with("GHSA-")))
        .cloned()
}

/// Rows of one secdb document at `path`.
pub fn rows(
    doc: &Value,
    path: &str,
    source: &str,
    ds: &DataSource,
    budget: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<Row>, String> {
    let name = doc.get("name").and_then(Value::as_str).ok_or("$.name: missing")?;
    let package = os_package_key(name).map_err(|e| format!("$.name: {e}"))?;
    let bucket = format!("alpine {}", release(doc, path)?);
    let origin = format!("{source}/ALPINE-SECDB-{package}");
    let mut budget = Budget::new(budget);
    // id → the highest fixed version it is listed under
    let mut fixed_of: std::collections::BTreeMap<String, String> = Default::default();
    let fixes = doc.get("secfixes").and_then(Value::as_object).ok_or("$.secfixes: missing")?;
    for (fixed, ids) in fixes {
        if fixed != "0" {
            // one bad key does not cost the package its other fixes
            if let Err(e) = versions::validate(fixed, Scheme::Apk) {
                warnings.push(format!(
                    "$.secfixes[{}]: {}; left out",
                    crate::shown::name(fixed),
                    crate::shown::name(&e)
                ));
                continue;
            }
        }
        for (i, s) in ids.as_array().into_iter().flatten().enumerate() {
            let s = s.as_str().unwrap_or_default();
            let Some(id) = id_of(s) else {
                warnings.push(format!(
                    "$.secfixes[{}][{i}]: {} names no CVE or GHSA id; left out",
                    crate::shown::name(fixed),
                    crate::shown::name(s)
                ));
                continue;
            };
            if let Err(e) = super::check_key(&format!("$.secfixes[{fixed:?}][{i}]"), &id) {
                warnings.push(format!("{}; left out", crate::shown::name(&e)));
                continue;
            }
            let slot = fixed_of.entry(id).or_insert_with(|| fixed.clone());
            if versions::compare(fixed, slot, Scheme::Apk) == std::cmp::Ordering::Greater {
                *slot = fixed.clone();
            }
        }
    }
    if fixed_of.is_empty() {
        return Err(match warnings.first() {
            Some(w) => format!("$.secfixes: nothing Trivy can match ({w})"),
            None => "$.secfixes: no CVE or GHSA id listed: nothing Trivy can match".into(),
        });
    }
    let mut out = vec![super::data_source_row(&bucket, &origin, ds)];
    for (id, fixed) in fixed_of {
        let value = os_advisory_value(Some(fixed), Vec::new());
        budget.take(1, bucket.len() + package.len() + id.len() + origin.len(), &value)?;
        out.push(Row {
            bucket: bucket.clone(),
            package: package.clone(),
            key: id,
            origin: origin.clone(),
            value,
        });
    }
    for r in &out {
        check_names(r)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds() -> DataSource {
        DataSource { id: "alpine".into(), name: "Alpine Secdb".into(), url: String::new() }
    }

    #[test]
    fn secfixes_become_fixed_versions() {
        let doc = json!({"name": "curl", "secfixes": {
            "8.1.0-r0": ["CVE-2023-28319", "CVE-2023-28320 (+ regression fix)", "XSA-1"],
            "8.0.1-r0": ["CVE-2023-28320"],
            "0": ["CVE_2021-22897"],
            "7.0.0-r0": ["GHSA-aaaa GHSA-bbbb"]}});
        let mut w = Vec::new();
        let rows = rows(&doc, "3.18/main/curl.json", "secdb", &ds(), usize::MAX, &mut w).unwrap();
        let got: Vec<(&str, &str, &str, String)> = rows
            .iter()
            .map(|r| (r.bucket.as_str(), r.package.as_str(), r.key.as_str(), r.value.to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "data-source",
                    "",
                    "alpine 3.18",
                    json!({"ID": "alpine", "Name": "Alpine Secdb", "URL": ""}).to_string()
                ),
                ("alpine 3.18", "curl", "CVE-2021-22897", json!({"FixedVersion": "0"}).to_string()),
                ("alpine 3.18", "curl", "CVE-2023-28319", json!({"FixedVersion": "8.1.0-r0"}).to_string()),
                ("alpine 3.18", "curl", "CVE-2023-28320", json!({"FixedVersion": "8.1.0-r0"}).to_string()),
                ("alpine 3.18", "curl", "GHSA-bbbb", json!({"FixedVersion": "7.0.0-r0"}).to_string()),
            ]
        );
        assert!(w.len() == 1 && w[0].contains("XSA-1"), "{w:?}");
        // the release: distroversion first, else the path; v optional
        let r = |d: Value, p: &str| {
            super::rows(&d, p, "s", &ds(), usize::MAX, &mut Vec::new()).map(|r| r[0].key.clone())
        };
        assert_eq!(
            r(json!({"name": "a", "secfixes": {"1-r0": ["CVE-1"]}}), "x/v3.17/community/a.json").unwrap(),
            "alpine 3.17"
        );
        assert_eq!(
            r(json!({"name": "a", "distroversion": "edge", "secfixes": {"1-r0": ["CVE-1"]}}), "a.json")
                .unwrap(),
            "alpine edge"
        );
        assert!(r(json!({"name": "a", "secfixes": {"1-r0": ["CVE-1"]}}), "main/a.json")
            .unwrap_err()
            .contains("<release>/<repository>"));
        let e = r(json!({"name": "a", "secfixes": {"1.0-1": ["CVE-1"]}}), "3.18/main/a.json").unwrap_err();
        assert!(e.contains("$.secfixes[1.0-1]") && e.contains("nothing Trivy can match"), "{e}");
        // one bad key is left out; the good one stays
        let mut w = Vec::new();
        let doc = json!({"name": "a", "secfixes": {"1.0-1": ["CVE-1"], "1.0-r1": ["CVE-2"]}});
        let ok = super::rows(&doc, "3.18/main/a.json", "s", &ds(), usize::MAX, &mut w).unwrap();
        assert_eq!(ok.len(), 2, "{ok:?}");
        assert!(w.len() == 1 && w[0].contains("$.secfixes[1.0-1]"), "{w:?}");
        assert!(r(json!({"name": "a", "secfixes": {"1-r0": ["XSA-1"]}}), "3.18/main/a.json")
            .unwrap_err()
            .contains("nothing Trivy can match"));
    }
}

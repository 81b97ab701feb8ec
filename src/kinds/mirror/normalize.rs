//! Normalised advisory rows: one per advisory and affected package.
//!
//! A row is `{id, aliases, ecosystem, package, purl, ranges, severity,
//! published, modified}`, read from the record's document as its format
//! says: OSV (`affected[]`: `package.{ecosystem,name,purl}`, `ranges`
//! as written, severities of the package or else of the advisory, and
//! `database_specific.severity` as `level`); Node.js security-wg
//! advisories (`module_name`, `vulnerable_versions` as one `SEMVER`
//! range text); Alpine secdb (one row per package and fixed version).
//! A purl is the package's own when it names one, else built for the
//! ecosystems with a purl type (PyPI, npm, Go, crates.io, Maven, RubyGems,
//! NuGet, Packagist, Hex, Pub); others get none. Rows are sorted; the
//! action that writes them decides nothing else.

use serde_json::{json, Value};

/// The purl of `name` in `ecosystem`, when that ecosystem has a purl type.
pub fn purl(ecosystem: &str, name: &str) -> Option<String> {
    let enc = |s: &str| s.replace('%', "%25").replace('@', "%40").replace('?', "%3F").replace('#', "%23");
    let ty = match ecosystem {
        "PyPI" => return Some(format!("pkg:pypi/{}", enc(&name.to_lowercase().replace('_', "-")))),
        "npm" => "npm",
        "Go" => "golang",
        "crates.io" => "cargo",
        "RubyGems" => "gem",
        "NuGet" => "nuget",
        "Packagist" => "composer",
        "Hex" => "hex",
        "Pub" => "pub",
        "Maven" => {
            let (g, a) = name.split_once(':')?;
            return Some(format!("pkg:maven/{}/{}", enc(g), enc(a)));
        }
        _ => return None,
    };
    Some(format!("pkg:{ty}/{}", enc(name)))
}

fn strings(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter(|x| x.is_string()).cloned().collect())
        .unwrap_or_default()
}

/// The rows of one record (`{document, format, id, ...}`).
pub fn rows(record: &Value) -> Vec<Value> {
    let id = record.get("id").cloned().unwrap_or(Value::Null);
    let doc = record.get("document").cloned().unwrap_or(Value::Null);
    let format = record.get("format").and_then(Value::as_str).unwrap_or("");
    let mut out = Vec::new();
    match format {
        "osv" => {
            let level = doc.pointer("/database_specific/severity").cloned().unwrap_or(Value::Null);
            let top = doc.get("severity").cloned().unwrap_or(json!([]));
            for a in doc.get("affected").and_then(Value::as_array).into_iter().flatten() {
                let eco = a.pointer("/package/ecosystem").and_then(Value::as_str).unwrap_or("");
                let name = a.pointer("/package/name").and_then(Value::as_str).unwrap_or("");
                let purl = a
                    .pointer("/package/purl")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| purl(eco.split(':').next().unwrap_or(""), name));
                let sev = a.get("severity").filter(|s| s.as_array().is_some_and(|l| !l.is_empty()));
                out.push(json!({
                    "id": id, "aliases": strings(doc.get("aliases")), "ecosystem": eco, "package": name,
                    "purl": purl, "ranges": a.get("ranges").cloned().unwrap_or(json!([])),
                    "severity": {"scores": sev.cloned().unwrap_or_else(|| top.clone()), "level": level},
                    "published": doc.get("published").cloned().unwrap_or(Value::Null),
                    "modified": doc.get("modified").cloned().unwrap_or(Value::Null),
                }));
            }
        }
        "nodejs-advisory" => {
            let name = doc.get("module_name").and_then(Value::as_str).unwrap_or("");
            out.push(json!({
                "id": id, "aliases": strings(doc.get("cves")), "ecosystem": "npm", "package": name,
                "purl": purl("npm", name),
                "ranges": [{"type": "SEMVER", "vulnerable": doc.get("vulnerable_versions").cloned().unwrap_or(Value::Null),
                            "patched": doc.get("patched_versions").cloned().unwrap_or(Value::Null)}],
                "severity": {"scores": doc.get("cvss_vector").map(|v| json!([{"type": "CVSS_V3", "score": v}])).unwrap_or(json!([])),
                             "level": doc.get("severity").cloned().unwrap_or(Value::Null)},
                "published": doc.get("created_at").cloned().unwrap_or(Value::Null),
                "modified": doc.get("updated_at").cloned().unwrap_or(Value::Null),
            }));
        }
        "alpine-secdb" => {
            let release = doc.get("distroversion").cloned().unwrap_or(Value::Null);
            for p in doc.get("packages").and_then(Value::as_array).into_iter().flatten() {
                let pkg = p.get("pkg").unwrap_or(&Value::Null);
                let name = pkg.get("name").and_then(Value::as_str).unwrap_or("");
                let fixes = pkg.get("secfixes").and_then(Value::as_object);
                for (fixed, ids) in fixes.into_iter().flatten() {
                    out.push(json!({
                        "id": id, "aliases": strings(Some(ids)), "ecosystem": format!("Alpine:{}", release.as_str().unwrap_or("")),
                        "package": name, "purl": format!("pkg:apk/alpine/{name}"),
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                        "severity": {"scores": [], "level": null}, "published": null, "modified": null,
                    }));
                }
            }
        }
        _ => {}
    }
    out.sort_by_cached_key(crate::canon::to_vec);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osv_rows_per_package_with_purls() {
        let rec = json!({"id": "GHSA-1", "format": "osv", "document": {
            "id": "GHSA-1", "aliases": ["CVE-1"], "modified": "2024-01-01T00:00:00Z",
            "database_specific": {"severity": "HIGH"},
            "affected": [
                {"package": {"ecosystem": "PyPI", "name": "Foo_Bar"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}]},
                {"package": {"ecosystem": "Maven", "name": "org.x:y"}},
                {"package": {"ecosystem": "Debian:12", "name": "z"}}]}});
        let r = rows(&rec);
        assert_eq!(r.len(), 3);
        let purls: Vec<&Value> = r.iter().map(|x| &x["purl"]).collect();
        assert!(purls.contains(&&json!("pkg:pypi/foo-bar")));
        assert!(purls.contains(&&json!("pkg:maven/org.x/y")));
        assert!(purls.contains(&&Value::Null), "no purl type for Debian here");
        assert!(r.iter().all(|x| x["severity"]["level"] == "HIGH" && x["aliases"] == json!(["CVE-1"])));
    }
}

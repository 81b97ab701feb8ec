//! OSV advisories → Trivy DB rows (docs/FORMATS.md §6).
//!
//! Per advisory: withdrawn advisories give no rows (skipped on purpose);
//! every `affected[]` entry of one package is merged first (Go's stdlib
//! often lists a package several times); ECOSYSTEM and SEMVER ranges map
//! to constraints (introduced 0 + fixed F → `<F`, introduced I + fixed F →
//! `>=I, <F`, last_affected L → `<=L`, an open introduced I → `>=I`, or
//! `""` (every version) when I is 0); events are put in version order
//! first, since sources do not always sort them; GIT ranges carry no
//! package versions and are ignored; an explicit `versions` list is used
//! (`=v` each, and only then validated) when no range is usable. `PatchedVersions` are the
//! fixed versions that no vulnerable range still covers.
//!
//! Errors (the whole document is rejected, naming the reason): an unknown
//! ecosystem, a name that cannot be normalised, an unparseable version or
//! range event, an affected package with nothing usable.

use serde_json::{json, Map, Value};

use super::VULNERABILITY_BUCKET;
use super::{
    cvss, ecosystem, go_time, normalise_name, os_bucket, vuln_ids, Budget, DataSource, Row, VulnDetails,
};
use crate::versions::{self, Scheme};

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// True when events alternate introduced / end (fixed, last_affected,
/// limit), with at most a final open introduced: such a list means what it
/// says in the order given (even when the pairs themselves are not in
/// version order, as in PYSEC-2023-192).
fn well_formed(evs: &[(&str, &str)]) -> bool {
    evs.iter().enumerate().all(|(i, (kind, _))| (*kind == "introduced") == (i % 2 == 0))
}

/// Events that do not alternate introduced / end are put in OSV's
/// evaluation order: by version, "introduced 0" first, and at equal
/// versions the end of one range before the start of the next.
fn put_in_order(evs: &mut [(&str, &str)], scheme: Scheme) {
    if !well_formed(evs) {
        evs.sort_by(|a, b| {
            let za = a.0 == "introduced" && versions::is_zero(a.1);
            let zb = b.0 == "introduced" && versions::is_zero(b.1);
            zb.cmp(&za)
                .then_with(|| versions::compare(a.1, b.1, scheme))
                .then_with(|| (a.0 == "introduced").cmp(&(b.0 == "introduced")))
        });
    }
}

/// One range's events as `(kind, version)`, each version checked in
/// `scheme` (placeholders `introduced 0` and `limit *` aside), in OSV's
/// order ([`put_in_order`]).
fn ordered_events<'a>(
    events: &'a [Value],
    scheme: Scheme,
    at: &str,
) -> Result<Vec<(&'a str, &'a str)>, String> {
    if events.is_empty() {
        return Err(format!("{at}.events: empty"));
    }
    let mut evs: Vec<(&str, &str)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let o = e.as_object().ok_or_else(|| format!("{at}.events[{i}]: not an object"))?;
        let (kind, v) = o
            .iter()
            .find_map(|(k, v)| {
                Some((k.as_str(), v.as_str()?))
                    .filter(|(k, _)| matches!(*k, "introduced" | "fixed" | "last_affected" | "limit"))
            })
            .ok_or_else(|| format!("{at}.events[{i}]: no introduced, fixed, last_affected or limit"))?;
        let placeholder = (kind == "introduced" && versions::is_zero(v)) || (kind == "limit" && v == "*");
        if !placeholder {
            versions::validate(v, scheme).map_err(|e| format!("{at}.events[{i}].{kind}: {e}"))?;
        }
        evs.push((kind, v));
    }
    put_in_order(&mut evs, scheme);
    Ok(evs)
}

/// Constraint entries and fixed versions of one range's events.
fn range_entries(events: &[Value], scheme: Scheme, at: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let evs = ordered_events(events, scheme, at)?;
    let mut entries = Vec::new();
    let mut fixed = Vec::new();
    let mut open: Option<&str> = None;
    for (kind, v) in evs {
        let lower = |o: Option<&str>| match o {
            Some(i) if !versions::is_zero(i) => format!(">={i}, "),
            _ => String::new(),
        };
        match kind {
            "introduced" => {
                if open.is_none() {
                    open = Some(v);
                }
            }
            "limit" if v == "*" => {}
            "fixed" => {
                entries.push(format!("{}<{v}", lower(open)));
                fixed.push(v.to_string());
                open = None;
            }
            // limit: versions from here on are not affected, and nothing is fixed by it
            "limit" => {
                entries.push(format!("{}<{v}", lower(open)));
                open = None;
            }
            _ => {
                entries.push(format!("{}<={v}", lower(open)));
                open = None;
            }
        }
    }
    if let Some(i) = open {
        entries.push(if versions::is_zero(i) { String::new() } else { format!(">={i}") });
    }
    Ok((entries, fixed))
}

/// What one advisory says about one package, merged over its `affected[]` entries.
struct Affected {
    vulnerable: Vec<String>,
    fixed: Vec<String>,
    /// (JSON path, version) of the explicit `versions` list
    explicit: Vec<(String, String)>,
    /// at least one ECOSYSTEM/SEMVER range gave a constraint
    ranged: bool,
    scheme: Scheme,
}

/// What one advisory says about one source package of one distribution
/// release (an OS bucket), merged over its `affected[]` entries.
struct OsAffected {
    fixed: Vec<String>,
    /// a range with no end: affected, no fix yet
    open: bool,
    scheme: Scheme,
}

/// The fixed versions and whether the range stays open at its end, of one
/// OS range, its events read in OSV's order ([`put_in_order`]); ends
/// Trivy's OS advisories cannot say (`last_affected`, `limit`) are reported
/// in `warnings` and left out.
fn os_range(
    events: &[Value],
    scheme: Scheme,
    at: &str,
    warnings: &mut Vec<String>,
) -> Result<(Vec<String>, bool), String> {
    let evs = ordered_events(events, scheme, at)?;
    let mut fixed = Vec::new();
    let mut open = false;
    for (kind, v) in evs {
        match kind {
            "introduced" => open = true,
            "fixed" => {
                fixed.push(v.to_string());
                open = false;
            }
            _ => {
                if !(kind == "limit" && v == "*") {
                    warnings.push(format!(
                        "{at}: {kind} {}: Trivy's OS advisories hold only a fixed version; left out",
                        crate::shown::name(v)
                    ));
                }
                open = false;
            }
        }
    }
    Ok((fixed, open))
}

/// The vulnerability ids an OSV document names besides its own: `aliases`,
/// `upstream` (trivy-db reads both), and the CVEs of Ubuntu's
/// `database_specific.cves_map`; `UBUNTU-CVE-…` is Ubuntu's record of
/// `CVE-…` and stands for it.
fn alias_ids(doc: &Value) -> Vec<String> {
    let own = doc.get("id").and_then(Value::as_str).unwrap_or_default();
    let mut out = strs(doc.get("aliases"));
    out.extend(strs(doc.get("upstream")));
    let cves = doc.pointer("/database_specific/cves_map/cves").and_then(Value::as_array);
    out.extend(
        cves.into_iter().flatten().filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_string)),
    );
    out.push(own.to_string());
    out.iter().map(|a| ubuntu_cve(a).to_string()).filter(|a| a != own).collect()
}

/// Ratings read from OSV `severity` lists: the first vector of each CVSS
/// version, the v3 base score's band, and Ubuntu's priority word.
#[derive(Default)]
struct Ratings {
    cvss: Map<String, Value>,
    score: Option<u8>,
    ubuntu: Option<u8>,
}

impl Ratings {
    fn read(&mut self, list: Option<&Value>) {
        for s in list.and_then(Value::as_array).into_iter().flatten() {
            let (Some(ty), Some(v)) =
                (s.get("type").and_then(Value::as_str), s.get("score").and_then(Value::as_str))
            else {
                continue;
            };
            let key = match ty {
                "CVSS_V3" => "V3Vector",
                "CVSS_V4" => "V40Vector",
                "CVSS_V2" => "V2Vector",
                "Ubuntu" => {
                    self.ubuntu = self.ubuntu.or(ubuntu_priority(v));
                    continue;
                }
                _ => continue,
            };
            if self.cvss.contains_key(key) {
                continue;
            }
            self.cvss.insert(key.into(), json!(v));
            if let Some(n) = (key == "V3Vector").then(|| cvss::v3_base_score(v)).flatten() {
                self.cvss.insert("V3Score".into(), json!(n));
                self.score = Some(cvss::severity_of_score(n));
            }
        }
    }
}

/// `UBUNTU-CVE-X` is Ubuntu's record of `CVE-X` and stands for it.
fn ubuntu_cve(id: &str) -> &str {
    id.strip_prefix("UBUNTU-").filter(|c| c.starts_with("CVE-")).unwrap_or(id)
}

/// The rating of each CVE of an Ubuntu notice's `database_specific.cves_map`
/// (`{"cves": [{"id", "severity": [{"type": "Ubuntu"|"CVSS_V3", "score"}]}]}`):
/// the priority word first, else the CVSS v3 base score; and the vectors.
fn cves_map_ratings(doc: &Value) -> std::collections::BTreeMap<String, (Option<u8>, Map<String, Value>)> {
    let cves = doc.pointer("/database_specific/cves_map/cves").and_then(Value::as_array);
    cves.into_iter()
        .flatten()
        .filter_map(|c| {
            let id = c.get("id").and_then(Value::as_str)?;
            let mut r = Ratings::default();
            r.read(c.get("severity"));
            Some((ubuntu_cve(id).to_string(), (r.ubuntu.or(r.score), r.cvss)))
        })
        .collect()
}

/// Ubuntu's priority words (`negligible` … `critical`) as Trivy reads
/// them (`untriaged` and unknown words: no rating).
fn ubuntu_priority(word: &str) -> Option<u8> {
    match word.to_ascii_lowercase().as_str() {
        "negligible" | "low" => Some(1),
        "medium" => Some(2),
        "high" => Some(3),
        "critical" => Some(4),
        _ => None,
    }
}

/// Rows of one OSV document. `source` names our source (for `origin`);
/// the rows may take at most `budget` bytes (see [`super::row_budget`]).
pub fn rows(doc: &Value, source: &str, ds: &DataSource, budget: usize) -> Result<Vec<Row>, String> {
    rows_warned(doc, source, ds, budget, &mut Vec::new())
}

/// [`rows`], also pushing to `warnings` each part of the advisory left out
/// while the rest still became rows (a package with no usable range or
/// version, junk in a versions list the ranges cover), with the names from
/// the document in it escaped (`crate::shown::name`).
pub fn rows_warned(
    doc: &Value,
    source: &str,
    ds: &DataSource,
    budget: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<Row>, String> {
    if doc.get("withdrawn").is_some_and(|w| !w.is_null()) {
        return Ok(Vec::new());
    }
    let id = doc.get("id").and_then(Value::as_str).ok_or("$.id: missing")?;
    super::check_ids(id, doc.get("aliases"), "$.aliases")?;
    super::check_ids(id, doc.get("upstream"), "$.upstream")?;
    let mut budget = Budget::new(budget);
    let origin = format!("{source}/{id}");
    let ids = vuln_ids(id, &alias_ids(doc));
    for vid in &ids {
        super::check_key(
            "vulnerability id (from $.aliases, $.upstream or $.database_specific.cves_map)",
            vid,
        )?;
    }
    let mut os_pkgs: std::collections::BTreeMap<(String, String), OsAffected> = Default::default();
    // entries of releases Trivy has no bucket for, with why
    let mut skipped: Vec<String> = Vec::new();
    // (bucket, package) → (vulnerable entries, fixed versions, explicit versions, had a usable range)
    let mut pkgs: std::collections::BTreeMap<(String, String), Affected> = Default::default();
    // CVSS and Ubuntu's priority (or, in older records,
    // `ecosystem_specific.ubuntu_priority`)
    let mut ratings = Ratings::default();
    let mut eco_priority: Option<u8> = None;
    // a severity word (GHSA, Bitnami) wins over a computed score
    let word = |v: Option<&Value>| {
        v.and_then(|d| d.get("severity")).and_then(Value::as_str).and_then(cvss::severity_of_word)
    };
    let mut word_severity = word(doc.get("database_specific"));
    ratings.read(doc.get("severity"));
    let affected = doc.get("affected").and_then(Value::as_array).cloned().unwrap_or_default();
    for (ai, aff) in affected.iter().enumerate() {
        let at = format!("$.affected[{ai}]");
        let Some(pkg) = aff.get("package") else { continue };
        let eco_name = pkg.get("ecosystem").and_then(Value::as_str).unwrap_or_default();
        if let Some(os) = os_bucket(eco_name) {
            // a release Trivy has no bucket for: the other entries still count
            let (bucket, scheme) = match os {
                Ok(b) => b,
                Err(e) => {
                    skipped.push(format!("{at}.package.ecosystem: {e}"));
                    continue;
                }
            };
            let name = pkg.get("name").and_then(Value::as_str).unwrap_or_default();
            let key = super::os_package_key(name).map_err(|e| format!("{at}.package.name: {e}"))?;
            ratings.read(aff.get("severity"));
            let priority = aff.pointer("/ecosystem_specific/ubuntu_priority").and_then(Value::as_str);
            eco_priority = eco_priority.or(priority.and_then(ubuntu_priority));
            let slot = os_pkgs.entry((bucket, key)).or_insert_with(|| OsAffected {
                fixed: Vec::new(),
                open: false,
                scheme,
            });
            for (ri, r) in aff.get("ranges").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let ty = r.get("type").and_then(Value::as_str).unwrap_or_default();
                match ty {
                    "ECOSYSTEM" => {}
                    "GIT" => continue,
                    other => {
                        return Err(format!(
                            "{at}.ranges[{ri}].type: range type {other:?} is not one of a distribution's"
                        ))
                    }
                }
                let events = r.get("events").and_then(Value::as_array).cloned().unwrap_or_default();
                let (fixed, open) = os_range(&events, scheme, &format!("{at}.ranges[{ri}]"), warnings)?;
                slot.fixed.extend(fixed);
                slot.open |= open;
            }
            continue;
        }
        let eco = ecosystem(eco_name)
            .ok_or_else(|| format!("{at}.package.ecosystem: {eco_name:?} is not an ecosystem Trivy knows"))?;
        let name = pkg.get("name").and_then(Value::as_str).unwrap_or_default();
        let key = normalise_name(eco, name).map_err(|e| format!("{at}.package.name: {e}"))?;
        word_severity = word_severity.or(word(aff.get("database_specific")));
        ratings.read(aff.get("severity"));
        let slot = pkgs.entry((format!("{}::{}", eco.prefix, ds.name), key)).or_insert_with(|| Affected {
            vulnerable: Vec::new(),
            fixed: Vec::new(),
            explicit: Vec::new(),
            ranged: false,
            scheme: eco.scheme,
        });
        for (ri, r) in aff.get("ranges").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let ty = r.get("type").and_then(Value::as_str).unwrap_or_default();
            match ty {
                "ECOSYSTEM" | "SEMVER" => {}
                "GIT" => continue, // commits, not package versions
                other => return Err(format!("{at}.ranges[{ri}].type: unknown range type {other:?}")),
            }
            let events = r.get("events").and_then(Value::as_array).cloned().unwrap_or_default();
            let (entries, fixed) = range_entries(&events, eco.scheme, &format!("{at}.ranges[{ri}]"))?;
            slot.ranged |= !entries.is_empty();
            slot.vulnerable.extend(entries);
            slot.fixed.extend(fixed);
        }
        // explicit versions matter only without a usable range: validated then
        for (vi, v) in strs(aff.get("versions")).into_iter().enumerate() {
            slot.explicit.push((format!("{at}.versions[{vi}]"), v));
        }
    }
    let mut out = Vec::new();
    let mut unusable = Vec::new();
    // one advisory value filed under every id, with its bucket's data source
    let longest = ids.iter().map(String::len).max().unwrap_or(0);
    let mut sourced = std::collections::BTreeSet::new();
    let mut file = |out: &mut Vec<Row>, budget: &mut Budget, bucket: &str, package: &str, value: Value| {
        budget.take(ids.len(), bucket.len() + package.len() + longest + origin.len(), &value)?;
        if sourced.insert(bucket.to_string()) {
            out.push(super::data_source_row(bucket, &origin, ds));
        }
        for vid in &ids {
            let (bucket, package) = (bucket.to_string(), package.to_string());
            out.push(Row { bucket, package, key: vid.clone(), origin: origin.clone(), value: value.clone() });
        }
        Ok::<(), String>(())
    };
    for ((bucket, package), a) in os_pkgs {
        let OsAffected { mut fixed, open, scheme } = a;
        fixed.sort_by(|p, q| versions::compare(p, q, scheme).then_with(|| p.cmp(q)));
        fixed.dedup();
        // a fix wins over a range left open, as when documents disagree
        // (`super::merge`): the one rule whatever the file layout
        let value = match (fixed.last(), open) {
            (Some(f), _) => super::os_advisory_value(Some(f.clone()), vec![id.to_string()]),
            (None, true) => super::os_advisory_value(None, vec![id.to_string()]),
            (None, false) => {
                unusable.push(package.clone());
                continue;
            }
        };
        if fixed.len() > 1 || (open && !fixed.is_empty()) {
            warnings.push(format!(
                "{bucket}/{}: several ranges; Trivy's OS advisories hold one fixed version, so the highest \
                 fix ({}) is kept",
                crate::shown::name(&package),
                crate::shown::name(fixed.last().expect("one at least"))
            ));
        }
        file(&mut out, &mut budget, &bucket, &package, value)?;
    }
    for ((bucket, package), a) in pkgs {
        let Affected { mut vulnerable, fixed, explicit, ranged, scheme } = a;
        // OSV: a version is affected if a range or the versions list says so
        for (at, v) in &explicit {
            match versions::validate(v, scheme) {
                Err(e) if !ranged => return Err(format!("{at}: {e}")),
                // junk in a list the ranges already cover ("trunk", a date): Trivy could not read it
                Err(e) => {
                    warnings.push(format!("{at}: {}; left out (the ranges are used)", crate::shown::name(&e)))
                }
                Ok(()) if vulnerable.iter().any(|e| versions::satisfies(v, e, scheme)) => {}
                Ok(()) => vulnerable.push(format!("={v}")),
            }
        }
        if vulnerable.is_empty() {
            unusable.push(package.clone());
            continue;
        }
        let value = super::advisory_value(vulnerable, fixed, vec![id.to_string()], scheme);
        file(&mut out, &mut budget, &bucket, &package, value)?;
    }
    if out.is_empty() {
        return Err(if let Some(first) = skipped.first() {
            format!("{first}; nothing Trivy can match")
        } else if unusable.is_empty() {
            "no affected package: nothing Trivy can match".to_string()
        } else {
            format!("no usable range or versions for {}: nothing Trivy can match", unusable.join(", "))
        });
    }
    for why in &skipped {
        warnings.push(format!("{why}; left out"));
    }
    for package in &unusable {
        warnings.push(format!(
            "package {}: no usable range or versions; left out (Trivy cannot match it)",
            crate::shown::name(package)
        ));
    }
    let references: Vec<String> = doc
        .get("references")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("url").and_then(Value::as_str).map(str::to_string))
        .collect();
    let details = VulnDetails {
        title: doc.get("summary").and_then(Value::as_str).map(str::to_string),
        description: doc.get("details").and_then(Value::as_str).map(str::to_string),
        severity: ratings.ubuntu.or(eco_priority).or(word_severity).or(ratings.score),
        cvss: ratings.cvss,
        cwe_ids: strs(doc.get("database_specific").and_then(|d| d.get("cwe_ids"))),
        references,
        published: go_time(doc.get("published").and_then(Value::as_str)),
        modified: go_time(doc.get("modified").and_then(Value::as_str)),
    };
    let v = details.to_json(&ds.id);
    // an Ubuntu notice rates each of its CVEs in `database_specific.cves_map`
    let per_cve = cves_map_ratings(doc);
    let own_rating = |vid: &String| per_cve.get(vid).filter(|(sev, cv)| sev.is_some() || !cv.is_empty());
    let shared: Vec<&String> = ids.iter().filter(|vid| own_rating(vid).is_none()).collect();
    let longest = shared.iter().map(|s| s.len()).max().unwrap_or(0);
    budget.take(shared.len(), VULNERABILITY_BUCKET.len() + longest + origin.len(), &v)?;
    for vid in ids {
        let value = match own_rating(&vid) {
            Some((sev, cv)) => {
                let own = VulnDetails {
                    severity: sev.or(details.severity),
                    cvss: if cv.is_empty() { details.cvss.clone() } else { cv.clone() },
                    title: details.title.clone(),
                    description: details.description.clone(),
                    cwe_ids: details.cwe_ids.clone(),
                    references: details.references.clone(),
                    published: details.published.clone(),
                    modified: details.modified.clone(),
                };
                let own = own.to_json(&ds.id);
                budget.take(1, VULNERABILITY_BUCKET.len() + vid.len() + origin.len(), &own)?;
                own
            }
            None => v.clone(),
        };
        out.push(Row {
            bucket: VULNERABILITY_BUCKET.into(),
            package: String::new(),
            key: vid,
            origin: origin.clone(),
            value,
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

    fn ds() -> DataSource {
        DataSource { id: "src".into(), name: "Src".into(), url: "https://x".into() }
    }

    fn adv(rows: &[Row], bucket: &str, pkg: &str) -> Value {
        rows.iter().find(|r| r.bucket == bucket && r.package == pkg).map(|r| r.value.clone()).unwrap()
    }

    #[test]
    fn ranges_map_to_constraints() {
        let doc = json!({"id": "PYSEC-1", "aliases": ["CVE-2020-1"], "modified": "2021-07-16T01:31:33.917972Z",
        "summary": "s", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [
            {"package": {"ecosystem": "PyPI", "name": "Foo_Bar"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "2.0"}, {"introduced": "1.5"}, {"introduced": "0"}, {"fixed": "1.2"}]},
                        {"type": "GIT", "repo": "r", "events": [{"introduced": "abc"}]}],
             "versions": ["1.0"]},
            {"package": {"ecosystem": "PyPI", "name": "foo-bar"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "3.0"}, {"last_affected": "3.1"}]}]},
            {"package": {"ecosystem": "PyPI", "name": "only-versions"},
             "ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "abc"}]}], "versions": ["0.1", "0.2"]}
        ]});
        let rows = rows(&doc, "s", &ds(), usize::MAX).unwrap();
        let a = adv(&rows, "pip::Src", "foo-bar");
        assert_eq!(a["VulnerableVersions"], json!(["<1.2", ">=1.5, <2.0", ">=3.0, <=3.1"]));
        assert_eq!(a["PatchedVersions"], json!(["1.2", "2.0"]));
        assert_eq!(a["VendorIDs"], json!(["PYSEC-1"]));
        assert_eq!(adv(&rows, "pip::Src", "only-versions")["VulnerableVersions"], json!(["=0.1", "=0.2"]));
        let v = rows.iter().find(|r| r.bucket == "vulnerability").unwrap();
        assert_eq!(v.key, "CVE-2020-1");
        assert_eq!(v.value["VendorSeverity"], json!({"src": 4}));
        assert_eq!(v.value["CVSS"]["src"]["V3Score"], json!(9.8));
        assert_eq!(v.value["LastModifiedDate"], json!("2021-07-16T01:31:33Z"));
        assert!(rows.iter().any(|r| r.bucket == "data-source" && r.key == "pip::Src"));
    }

    #[test]
    fn os_releases_become_os_buckets() {
        let doc = json!({"id": "USN-1-1", "upstream": ["UBUNTU-CVE-2021-3782"], "modified": "2024-01-01T00:00:00Z",
            "affected": [
                {"package": {"ecosystem": "Ubuntu:18.04:LTS", "name": "wayland"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.16.0-1ubuntu1.1~18.04.4"}]}]},
                {"package": {"ecosystem": "Ubuntu:Pro:16.04:LTS", "name": "wayland"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]},
                {"package": {"ecosystem": "Alpine:v3.18", "name": "musl"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.4-r2"}, {"introduced": "1.2.5-r0"}, {"last_affected": "1.2.5-r1"}]}]}],
            "database_specific": {"cves_map": {"cves": [{"id": "CVE-2021-3782", "severity": [
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:H"}, {"type": "Ubuntu", "score": "high"}]}]}}});
        let mut warnings = Vec::new();
        let rows = rows_warned(&doc, "s", &ds(), usize::MAX, &mut warnings).unwrap();
        assert_eq!(
            adv(&rows, "ubuntu 18.04", "wayland"),
            json!({"FixedVersion": "1.16.0-1ubuntu1.1~18.04.4", "VendorIDs": ["USN-1-1"]})
        );
        assert_eq!(adv(&rows, "ubuntu 16.04-ESM", "wayland"), json!({"Status": 2, "VendorIDs": ["USN-1-1"]}));
        assert_eq!(adv(&rows, "alpine 3.18", "musl")["FixedVersion"], "1.2.4-r2");
        assert!(warnings.iter().any(|w| w.contains("last_affected")), "{warnings:?}");
        let v = rows.iter().find(|r| r.bucket == "vulnerability").unwrap();
        assert_eq!(v.key, "CVE-2021-3782", "filed under the CVE the UBUNTU-CVE upstream id stands for");
        assert_eq!(v.value["VendorSeverity"], json!({"src": 3}), "the Ubuntu priority, not the CVSS score");
        assert!(rows.iter().all(|r| r.bucket != "ubuntu 18.04" || r.key == "CVE-2021-3782"));
        // events out of order read as OSV orders them; a release without a
        // bucket is left out with a warning while the rest still counts
        let doc = json!({"id": "X-2", "affected": [
            {"package": {"ecosystem": "Debian:9", "name": "dpkg"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1.18.26"}, {"introduced": "0"}]}]},
            {"package": {"ecosystem": "Debian:sid", "name": "dpkg"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]});
        let mut warnings = Vec::new();
        let rows = rows_warned(&doc, "s", &ds(), usize::MAX, &mut warnings).unwrap();
        assert_eq!(adv(&rows, "debian 9", "dpkg"), json!({"FixedVersion": "1.18.26", "VendorIDs": ["X-2"]}));
        assert!(warnings.iter().any(|w| w.contains("Debian:sid") && w.contains("left out")), "{warnings:?}");
        // a fix and a range left open in one document: the fix, as across documents
        let doc = json!({"id": "X-3", "affected": [{"package": {"ecosystem": "Alpine:v3.18", "name": "musl"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.4-r2"}, {"introduced": "1.2.5-r0"}]}]}]});
        let rows = super::rows(&doc, "s", &ds(), usize::MAX).unwrap();
        assert_eq!(adv(&rows, "alpine 3.18", "musl")["FixedVersion"], "1.2.4-r2");
        // versions are checked in the distribution's own syntax
        let bad = json!({"id": "X", "affected": [{"package": {"ecosystem": "Debian:9", "name": "dpkg"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "x1.0"}]}]}]});
        assert!(super::rows(&bad, "s", &ds(), usize::MAX)
            .unwrap_err()
            .contains("$.affected[0].ranges[0].events[1].fixed"));
    }

    #[test]
    fn patched_versions_still_vulnerable_elsewhere_are_dropped() {
        // a second entry re-introduces 1.2 after the first fixes it (Go stdlib style)
        let doc = json!({"id": "GO-1", "modified": "2024-01-01T00:00:00Z", "affected": [
            {"package": {"ecosystem": "Go", "name": "stdlib"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]},
            {"package": {"ecosystem": "Go", "name": "stdlib"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.2.0"}, {"fixed": "1.3.1"}]}]}]});
        let rows = rows(&doc, "s", &ds(), usize::MAX).unwrap();
        let a = adv(&rows, "go::Src", "stdlib");
        assert_eq!(a["VulnerableVersions"], json!(["<1.2.0", ">=1.2.0, <1.3.1"]));
        assert_eq!(a["PatchedVersions"], json!(["1.3.1"]));
        assert_eq!(rows.iter().find(|r| r.bucket == "vulnerability").unwrap().key, "GO-1");
    }

    #[test]
    fn event_orders_and_limits() {
        let e = |v: Value| range_entries(v.as_array().unwrap(), Scheme::Semver, "$").unwrap();
        // pairs out of version order but well formed (PYSEC-2023-192): read as given
        let (v, f) = e(
            json!([{"introduced": "2.0.0"}, {"fixed": "2.0.6"}, {"introduced": "0"}, {"fixed": "1.26.17"}]),
        );
        assert_eq!(
            (v, f),
            (
                vec![">=2.0.0, <2.0.6".to_string(), "<1.26.17".into()],
                vec!["2.0.6".to_string(), "1.26.17".into()]
            )
        );
        // back to back: the fix of one range starts the next
        let (v, _) =
            e(json!([{"introduced": "1.0"}, {"fixed": "1.1"}, {"introduced": "1.1"}, {"fixed": "1.2"}]));
        assert_eq!(v, vec![">=1.0, <1.1", ">=1.1, <1.2"]);
        // not alternating: sorted, ends before starts at equal versions
        let (v, _) = e(json!([{"fixed": "2.0.0"}, {"introduced": "0"}]));
        assert_eq!(v, vec!["<2.0.0"]);
        // limit bounds the range and patches nothing
        let (v, f) = e(json!([{"introduced": "1.0"}, {"limit": "2.0"}]));
        assert_eq!((v, f.len()), (vec![">=1.0, <2.0".to_string()], 0));
        assert!(range_entries(&[], Scheme::Semver, "$.r").unwrap_err().contains("$.r.events: empty"));
    }

    #[test]
    fn bad_input_is_named_and_withdrawn_is_skipped() {
        let base = |aff: Value| json!({"id": "X-1", "modified": "2024-01-01T00:00:00Z", "affected": [aff]});
        let e =
            rows(&base(json!({"package": {"ecosystem": "Fedora:40", "name": "a"}})), "s", &ds(), usize::MAX)
                .unwrap_err();
        assert!(e.contains("Fedora:40") && e.contains("$.affected[0]"), "{e}");
        let e = rows(
            &base(json!({"package": {"ecosystem": "Ubuntu:Pro:FIPS:18.04:LTS", "name": "a"}})),
            "s",
            &ds(),
            usize::MAX,
        )
        .unwrap_err();
        assert!(e.contains("not a release Trivy has a bucket for"), "{e}");
        let e = rows(&base(json!({"package": {"ecosystem": "npm", "name": "a"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0 beta"}]}]})), "s", &ds(), usize::MAX).unwrap_err();
        assert!(e.contains("$.affected[0].ranges[0].events[1].fixed"), "{e}");
        let e = rows(
            &base(json!({"package": {"ecosystem": "Maven", "name": "nogroup"}, "versions": ["1"]})),
            "s",
            &ds(),
            usize::MAX,
        )
        .unwrap_err();
        assert!(e.contains("groupId:artifactId"), "{e}");
        let mut w = base(json!({"package": {"ecosystem": "npm", "name": "a"}, "versions": ["1.0.0"]}));
        w["withdrawn"] = json!("2024-02-01T00:00:00Z");
        assert!(rows(&w, "s", &ds(), usize::MAX).unwrap().is_empty());
    }

    #[test]
    fn names_that_cannot_be_db_keys_and_row_floods_are_refused() {
        let doc = |id: &str, aliases: Value, name: &str| {
            json!({"id": id, "aliases": aliases, "affected": [{"package": {"ecosystem": "npm", "name": name},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]})
        };
        let huge = "x".repeat(super::super::MAX_KEY_BYTES + 1);
        let cve = format!("CVE-{huge}");
        for (d, at) in [
            (doc(&huge, json!([]), "a"), "$.id"),
            (doc("", json!([]), "a"), "$.id"),
            (doc("X\tY", json!(["CVE-1"]), "a"), "$.id"),
            (doc("X", json!(["GHSA-1", cve]), "a"), "$.aliases[1]"),
            (doc("X", json!([]), &huge), "$.affected[0].package.name"),
        ] {
            let e = rows(&d, "s", &ds(), usize::MAX).unwrap_err();
            assert!(e.starts_with(at) && e.len() < 300, "{at}: {e}");
        }
        // exactly at the key limit is fine
        let ok = "x".repeat(super::super::MAX_KEY_BYTES);
        assert!(rows(&doc(&ok, json!([]), &ok), "s", &ds(), usize::MAX).is_ok());
        // one value copied under many CVE aliases is counted before it is copied
        let many: Vec<String> = (0..1000).map(|i| format!("CVE-{i}")).collect();
        let mut d = doc("X", json!(many), "a");
        d["details"] = json!("d".repeat(10_000));
        let e = rows(&d, "s", &ds(), 1 << 20).unwrap_err();
        assert!(e.contains("would take more than 1048576 bytes"), "{e}");
        assert!(rows(&d, "s", &ds(), 16 << 20).is_ok());
    }
}

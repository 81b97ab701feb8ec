//! `policy::vex` (OpenVEX, CSAF and CycloneDX VEX applied to findings)
//! against the real Trivy 0.76.0: for every SBOM × VEX document of
//! `tests/fixtures/vex-trivy` and of the real corpus
//! (and orderings of two documents), Trivy scans the SBOM without VEX
//! (the findings) and with it (`--show-suppressed`: what VEX removed), and
//! our VEX engine, given the same findings, the SBOM's packages and edges
//! and the documents, suppresses exactly the same (vulnerability, purl)
//! pairs with the same status; a document Trivy cannot load is one we refuse. The advisories
//! are the real corpus's (Go, PyPI, GitHub, RustSec), built into a
//! trivy.db by export-center.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use export_center::policy::{sbom, vex};

/// `(vulnerability, purl, status)` of a suppressed finding.
type Pair = (String, String, String);

fn trivy_cache(data: &Path, dir: &Path) -> PathBuf {
    let ws = dir.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let mut toml = String::from("[workspace]\nsource-date-epoch = 1735689600\n");
    for (name, file, id, title) in [
        ("go", "osv/go-vulndb.tar.zst", "govulndb", "The Go Vulnerability Database"),
        ("pypa", "osv/pypa.tar.zst", "pypa", "PyPA Advisory Database"),
        ("ghsa", "osv/ghsa.tar.zst", "ghsa", "GitHub Security Advisory"),
        ("rustsec", "osv/rustsec.tar.zst", "rustsec", "RustSec Advisory Database"),
    ] {
        toml += &format!(
            "[sources.{name}]\nformat = \"osv\"\npath = \"{}\"\ndata-source = {{ id = \"{id}\", name = \"{title}\", url = \"https://example.invalid/{id}\" }}\n",
            data.join(file).display()
        );
    }
    toml += "[profiles.trivy]\nkind = \"trivy:db\"\ninputs = [\"go\", \"pypa\", \"ghsa\", \"rustsec\"]\n";
    std::fs::write(ws.join("profiles.toml"), toml).unwrap();
    build_ok(&ws, &[]);
    let cache = dir.join("cache");
    std::fs::create_dir_all(cache.join("db")).unwrap();
    let f = std::fs::File::open(ws.join("out/trivy/db.tar.gz")).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(f)).unpack(cache.join("db")).unwrap();
    cache
}

/// Trivy's report of `sbom` with `vex` documents, or `Err` when it fails.
fn scan(trivy: &Path, cache: &Path, sbom: &Path, vex: &[&Path]) -> Result<serde_json::Value, String> {
    let mut c = Command::new(trivy);
    c.args(["sbom", "--offline-scan", "--skip-db-update", "--skip-version-check", "--disable-telemetry"])
        .arg("--cache-dir")
        .arg(cache)
        .args(["--format", "json", "--show-suppressed", "--quiet"]);
    for v in vex {
        c.arg("--vex").arg(v);
    }
    let o = c.arg(sbom).output().unwrap();
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&o.stdout).unwrap())
}

/// `(vulnerability, purl, PkgID, BOMRef)` of every finding in a report.
fn findings(report: &serde_json::Value) -> Vec<(String, String, String, String)> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    report["Results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Vulnerabilities"].as_array().cloned().unwrap_or_default())
        .map(|v| {
            (
                s(&v["VulnerabilityID"]),
                s(&v["PkgIdentifier"]["PURL"]),
                s(&v["PkgID"]),
                s(&v["PkgIdentifier"]["BOMRef"]),
            )
        })
        .collect()
}

fn suppressed_by_trivy(report: &serde_json::Value) -> BTreeSet<Pair> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    report["Results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["ExperimentalModifiedFindings"].as_array().cloned().unwrap_or_default())
        .map(|m| {
            (s(&m["Finding"]["VulnerabilityID"]), s(&m["Finding"]["PkgIdentifier"]["PURL"]), s(&m["Status"]))
        })
        .collect()
}

/// What our engine suppresses among `found`, or `Err` when a document does not load.
fn suppressed_by_us(
    sbom_path: &Path,
    vex_paths: &[&Path],
    found: &[(String, String, String, String)],
) -> Result<BTreeSet<Pair>, String> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(sbom_path).unwrap()).unwrap();
    let packages = sbom::packages(&doc)?;
    let index = |r: &str| packages.iter().position(|p| p.reference.as_deref() == Some(r));
    let edges: Vec<(usize, usize)> =
        sbom::edges(&doc).iter().filter_map(|(a, b)| Some((index(a)?, index(b)?))).collect();
    let graph = vex::Graph::new(packages.len(), &edges);
    let mut docs = Vec::new();
    for v in vex_paths {
        let d: serde_json::Value =
            serde_json::from_slice(&std::fs::read(v).unwrap()).map_err(|e| e.to_string())?;
        docs.push(vex::load(&d, &v.display().to_string(), &doc)?);
    }
    let mut out = BTreeSet::new();
    for (vuln, purl, pkg_id, bom_ref) in found {
        let leaf = index(bom_ref)
            .or_else(|| packages.iter().position(|p| &p.trivy_id() == pkg_id && &p.purl.to_string() == purl))
            .ok_or_else(|| format!("finding {vuln} on {pkg_id} ({bom_ref}) names no package we read"))?;
        if let Some(d) = vex::suppressed(&docs, vuln, &packages, &graph, leaf) {
            out.insert((vuln.clone(), purl.clone(), d.status.as_str().to_string()));
        }
    }
    Ok(out)
}

#[test]
fn vex_suppresses_what_trivy_suppresses() {
    let Some(trivy) = tool("EXPORT_CENTER_TRIVY", None, "Trivy 0.76.0") else { return };
    let Some(data) = corpus("vex_suppresses_what_trivy_suppresses") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cache = trivy_cache(&data, tmp.path());
    let dir = repo().join("tests/fixtures/vex-trivy");
    let mut sboms = Vec::new();
    let mut vexes = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        match p.file_name().unwrap().to_str().unwrap() {
            n if n.ends_with(".cdx.json") => sboms.push(p),
            n if n.ends_with(".json") => vexes.push(p),
            _ => {}
        }
    }
    sboms.sort();
    vexes.sort();
    // the real vexhub documents too (wharfie's marks CVE-2023-47108 not_affected
    // for otelgrpc under it: suppressed only where the SBOM has that edge)
    // and real CSAF and CycloneDX VEX documents: they must load (or fail) as in Trivy
    for d in ["vex/openvex/vexhub-sample", "vex/csaf", "vex/cyclonedx/bom-examples-vex-sample"] {
        let mut found: Vec<PathBuf> = walkdir::WalkDir::new(data.join(d))
            .into_iter()
            .map(|e| e.unwrap().into_path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        found.sort();
        vexes.extend(found);
    }
    let mut cases: Vec<Vec<&Path>> = vexes.iter().map(|v| vec![v.as_path()]).collect();
    let by = |n: &str| dir.join(n);
    let (af, fx) = (by("v_affected.json"), by("v_fixed.json"));
    cases.push(vec![&af, &fx]);
    cases.push(vec![&fx, &af]);
    let mut problems = Vec::new();
    let (mut compared, mut suppressed) = (0, 0);
    for s in &sboms {
        let base = scan(&trivy, &cache, s, &[]).unwrap_or_else(|e| panic!("trivy {}: {e}", s.display()));
        let found = findings(&base);
        for case in &cases {
            let names: Vec<String> =
                case.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
            let what = format!("{} with {}", s.file_name().unwrap().to_string_lossy(), names.join(" + "));
            match (scan(&trivy, &cache, s, case), suppressed_by_us(s, case, &found)) {
                (Ok(r), Ok(ours)) => {
                    let theirs = suppressed_by_trivy(&r);
                    compared += 1;
                    suppressed += theirs.len();
                    if theirs != ours {
                        problems.push(format!("{what}: Trivy suppresses {theirs:?}, we {ours:?}"));
                    }
                }
                (Err(_), Err(_)) => compared += 1,
                (Err(e), Ok(_)) => problems
                    .push(format!("{what}: Trivy fails ({}) but we load it", e.lines().last().unwrap_or(""))),
                (Ok(_), Err(e)) => problems.push(format!("{what}: we refuse it ({e}) but Trivy applies it")),
            }
        }
    }
    assert!(problems.is_empty(), "{} of {compared} cases differ:\n{}", problems.len(), problems.join("\n"));
    assert!(suppressed > 0, "some cases suppress something ({compared} compared)");
    // the documented cross-document case, through the real vexhub document
    let wharfie = data.join("vex/openvex/vexhub-sample/golang/github.com/rancher/wharfie/scan.openvex.json");
    let sbom = dir.join("A_meta_deps.cdx.json");
    let base = findings(&scan(&trivy, &cache, &sbom, &[]).unwrap());
    let ours = suppressed_by_us(&sbom, &[&wharfie], &base).unwrap();
    assert!(
        ours.iter()
            .any(|(v, p, st)| v == "CVE-2023-47108" && p.contains("/otelgrpc@") && st == "not_affected"),
        "wharfie's otelgrpc CVE-2023-47108 is not_affected: {ours:?}"
    );
}

//! json:policy against the real Trivy 0.76.0, the matcher users run.
//!
//! One workspace holds the real corpus's advisories (Go, PyPI, GitHub,
//! RustSec), every SBOM of the samples, of `tests/fixtures/vex-trivy` and
//! of the real corpus (`sbom/`), and VEX documents (the samples', the
//! fixtures', the real vexhub sample, CSAF and CycloneDX VEX). It builds a
//! `trivy:db` and a `json:policy` profile of the same inputs. For each SBOM
//! the policy evaluated, Trivy scans it offline with our DB and
//! `--vex` for every VEX document the evaluation applied, in the same
//! order (CycloneDX VEX with CycloneDX SBOMs only, as Trivy requires):
//! the (purl, vulnerability) pairs we mark affected after VEX are exactly
//! the ones Trivy reports, and every pair Trivy's VEX suppressed has the
//! same status (`not_affected` or `fixed`) in ours. Plus the documented
//! cross-document case (vexhub `rancher/wharfie`, CVE-2023-47108).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// `(purl, vulnerability)`.
type Pair = (String, String);

fn workspace(data: &Path, dir: &Path) -> PathBuf {
    let ws = dir.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let repo = repo();
    let mut toml = String::from("[workspace]\nsource-date-epoch = 1735689600\n");
    let mut inputs = Vec::new();
    let mut source = |name: &str, format: &str, path: PathBuf, extra: &str| {
        toml += &format!("[sources.{name}]\nformat = \"{format}\"\npath = \"{}\"\n{extra}", path.display());
        inputs.push(format!("\"{name}\""));
    };
    // SBOMs (and CycloneDX VEX, which a cyclonedx source may hold)
    source("samples-cdx", "cyclonedx", repo.join("samples/sbom/cyclonedx"), "");
    source("samples-spdx", "spdx", repo.join("samples/sbom/spdx"), "");
    source(
        "fixtures",
        "cyclonedx",
        repo.join("tests/fixtures/vex-trivy"),
        "include = [\"*.cdx.json\", \"x_*.json\"]\n",
    );
    source("cdx", "cyclonedx", data.join("sbom/cyclonedx/bom-examples-sbom.tar.zst"), "");
    source("cdx-spec", "cyclonedx", data.join("sbom/cyclonedx/spec-tests"), "");
    source("spdx", "spdx", data.join("sbom/spdx/spdx-examples.tar.zst"), "");
    source("cdx-vex", "cyclonedx", data.join("vex/cyclonedx/bom-examples-vex-sample"), "");
    // advisories
    for (name, file, id, title) in [
        ("go", "osv/go-vulndb.tar.zst", "govulndb", "The Go Vulnerability Database"),
        ("pypa", "osv/pypa.tar.zst", "pypa", "PyPA Advisory Database"),
        ("ghsa", "osv/ghsa.tar.zst", "ghsa", "GitHub Security Advisory"),
        ("rustsec", "osv/rustsec.tar.zst", "rustsec", "RustSec Advisory Database"),
    ] {
        let ds = format!(
            "data-source = {{ id = \"{id}\", name = \"{title}\", url = \"https://example.invalid/{id}\" }}\n"
        );
        source(name, "osv", data.join(file), &ds);
    }
    for d in ["pypi", "npm", "go", "maven", "crates"] {
        source(&format!("samples-{d}"), "osv", repo.join(format!("samples/osv/{d}")), "");
    }
    // VEX
    source("samples-openvex", "openvex", repo.join("samples/vex/openvex"), "");
    source("samples-csaf", "csaf", repo.join("samples/vex/csaf"), "");
    source(
        "fixtures-openvex",
        "openvex",
        repo.join("tests/fixtures/vex-trivy"),
        "include = [\"v_*.json\", \"vp_*.json\", \"names_*.json\", \"tie_*.json\", \"s_*.json\"]\n",
    );
    source("fixtures-csaf", "csaf", repo.join("tests/fixtures/vex-trivy"), "include = [\"c_*.json\"]\n");
    source("vexhub", "openvex", data.join("vex/openvex/vexhub-sample"), "");
    source("csaf", "csaf", data.join("vex/csaf"), "");
    let list = inputs.join(", ");
    let db_inputs: Vec<&String> = inputs
        .iter()
        .filter(|i| {
            ["\"go\"", "\"pypa\"", "\"ghsa\"", "\"rustsec\""].contains(&i.as_str())
                || i.starts_with("\"samples-")
                    && !i.contains("cdx")
                    && !i.contains("spdx")
                    && !i.contains("vex")
                    && !i.contains("csaf")
        })
        .collect();
    let db_list: Vec<String> = db_inputs.iter().map(|s| s.to_string()).collect();
    toml += &format!("[profiles.verdicts]\nkind = \"json:policy\"\ninputs = [{list}]\n");
    toml += &format!("[profiles.trivy]\nkind = \"trivy:db\"\ninputs = [{}]\n", db_list.join(", "));
    // the same inputs under a policy trusting only vexhub's issuer, with waivers
    toml += &format!(
        "[profiles.trusted]\nkind = \"json:policy\"\ninputs = [{list}]\npolicy = \"policies/trusted.toml\"\n"
    );
    std::fs::create_dir_all(ws.join("policies")).unwrap();
    std::fs::write(
        ws.join("policies/trusted.toml"),
        r#"version = 1
[vex]
trust = ["Rancher Security team"]
[[waivers]]
advisory = "CVE-2024-91007"
purl = "pkg:pypi/httpmux@*"
reason = "expired the day before the pinned time"
expires = "2024-12-31"
[[waivers]]
advisory = "PYSEC-2025-11"
purl = "pkg:pypi/cronparse@*"
reason = "by an alias, until the end of the pinned day"
expires = "2025-01-01"
"#,
    )
    .unwrap();
    std::fs::write(ws.join("profiles.toml"), toml).unwrap();
    ws
}

/// The bundle's members by path.
fn members(bundle: &Path) -> BTreeMap<String, Vec<u8>> {
    let f = std::fs::File::open(bundle).unwrap();
    let mut ar = tar::Archive::new(zstd::Decoder::new(f).unwrap());
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        out.insert(path, b);
    }
    out
}

fn jsonl(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn scan(trivy: &Path, cache: &Path, sbom: &Path, vex: &[PathBuf]) -> Result<Value, String> {
    let mut c = Command::new(trivy);
    c.args(["sbom", "--offline-scan", "--skip-db-update", "--skip-version-check", "--disable-telemetry"])
        .arg("--cache-dir")
        .arg(cache)
        .args(["--format", "json", "--show-suppressed", "--quiet"]);
    for v in vex {
        c.arg("--vex").arg(v);
    }
    let o = c.arg(sbom).env("TRIVY_NO_PROGRESS", "true").output().unwrap();
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&o.stdout).unwrap())
}

#[test]
fn our_verdicts_affect_and_suppress_what_trivy_does_for_every_sbom() {
    let Some(trivy) = tool("EXPORT_CENTER_TRIVY", None, "Trivy 0.76.0") else { return };
    let Some(data) = corpus("our_verdicts_affect_and_suppress_what_trivy_does_for_every_sbom") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(&data, tmp.path());
    // documents neither side reads (an SPDX 3 file, a BOM that is not CycloneDX JSON) are rejected
    build_ok(&ws, &["--allow-invalid"]);
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join("db")).unwrap();
    let f = std::fs::File::open(ws.join("out/trivy/db.tar.gz")).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(f)).unpack(cache.join("db")).unwrap();
    let m = members(&ws.join("out/verdicts/verdicts.tar.zst"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(ws.join("out/verdicts/manifest.json")).unwrap()).unwrap();
    let order: Vec<String> = manifest["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    // every SBOM and VEX document the evaluation read, written out for Trivy, in input order
    let files = tmp.path().join("docs");
    let (mut sboms, mut vex_all, mut vex_openvex_csaf) = (Vec::new(), Vec::new(), Vec::new());
    let mut n = 0;
    let mut names: BTreeMap<PathBuf, String> = BTreeMap::new();
    let profile_inputs: Vec<String> = {
        let text = std::fs::read_to_string(ws.join("profiles.toml")).unwrap();
        let t: toml::Table = toml::from_str(&text).unwrap();
        t["profiles"]["verdicts"]["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(order.len(), profile_inputs.len());
    for src in &profile_inputs {
        for (path, bytes) in m.range(String::new()..) {
            let parts: Vec<&str> = path.split('/').collect();
            if parts.len() != 3 || parts[1] != src || !path.ends_with(".jsonl") {
                continue;
            }
            for rec in jsonl(bytes) {
                let path = rec["path"].as_str().unwrap();
                // a document the build refused (with --allow-invalid) is carried raw but not applied
                let refused = manifest["rejected"].as_array().unwrap().iter().any(|r| {
                    let shown = r["path"].as_str().unwrap();
                    r["source"] == src.as_str()
                        && (shown.ends_with(&format!("/{path}")) || shown.ends_with(&format!(" {path}")))
                });
                if refused {
                    continue;
                }
                n += 1;
                let doc = &rec["document"];
                let file = files.join(format!("{n:05}.json"));
                std::fs::create_dir_all(&files).unwrap();
                std::fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
                let subject = format!("{src}/{path}");
                let cdx_vex = doc["bomFormat"] == "CycloneDX"
                    && doc["vulnerabilities"].as_array().is_some_and(|v| !v.is_empty());
                names.insert(file.clone(), subject.clone());
                match parts[0] {
                    "vex" => {
                        vex_all.push(file.clone());
                        vex_openvex_csaf.push(file.clone());
                    }
                    "sboms" => {
                        if cdx_vex {
                            vex_all.push(file.clone());
                        }
                        sboms.push((subject, file, doc["bomFormat"] == "CycloneDX"));
                    }
                    _ => {}
                }
            }
        }
    }
    let evaluations = jsonl(&zstd::decode_all(&m["policy/evaluations.jsonl.zst"][..]).unwrap());
    let summaries = jsonl(&m["policy/summary.jsonl"]);
    let evaluated: BTreeSet<&str> = summaries.iter().map(|s| s["subject"].as_str().unwrap()).collect();
    let mut ours_affected: BTreeMap<&str, BTreeSet<Pair>> = BTreeMap::new();
    let mut ours_status: BTreeMap<(&str, String, String), &str> = BTreeMap::new();
    for e in &evaluations {
        let s = e["subject"].as_str().unwrap();
        let pair =
            (e["purl"].as_str().unwrap().to_string(), e["vulnerability"].as_str().unwrap().to_string());
        let st = e["vexStatus"].as_str().unwrap();
        if st != "not_affected" && st != "fixed" {
            ours_affected.entry(s).or_default().insert(pair.clone());
        }
        ours_status.insert((s, pair.0, pair.1), st);
    }
    let mut problems = Vec::new();
    let (mut compared, mut affected, mut suppressed) = (0, 0, 0);
    for (subject, file, is_cdx) in &sboms {
        if !evaluated.contains(subject.as_str()) {
            // not an SBOM we evaluate (a CycloneDX VEX document alone): Trivy finds no package either
            continue;
        }
        let vex = if *is_cdx { &vex_all } else { &vex_openvex_csaf };
        let r = match scan(&trivy, &cache, file, vex) {
            Ok(r) => r,
            Err(e) => {
                // name the document Trivy cannot load, if it is one
                let culprit =
                    vex.iter().find(|v| scan(&trivy, &cache, file, std::slice::from_ref(v)).is_err());
                let culprit = culprit.map(|c| names[c].clone()).unwrap_or_else(|| "the SBOM".into());
                problems.push(format!(
                    "{subject}: Trivy fails on {culprit} ({}) but we use it",
                    e.lines().last().unwrap_or("")
                ));
                continue;
            }
        };
        compared += 1;
        let results = r["Results"].as_array().cloned().unwrap_or_default();
        let theirs: BTreeSet<Pair> = results
            .iter()
            .flat_map(|r| r["Vulnerabilities"].as_array().cloned().unwrap_or_default())
            .map(|v| {
                (
                    v["PkgIdentifier"]["PURL"].as_str().unwrap_or("").to_string(),
                    v["VulnerabilityID"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let ours = ours_affected.get(subject.as_str()).cloned().unwrap_or_default();
        affected += theirs.len();
        if theirs != ours {
            problems.push(format!(
                "{subject}: affected pairs differ\n  only Trivy: {:?}\n  only ours: {:?}",
                theirs.difference(&ours).take(8).collect::<Vec<_>>(),
                ours.difference(&theirs).take(8).collect::<Vec<_>>()
            ));
        }
        for f in results
            .iter()
            .flat_map(|r| r["ExperimentalModifiedFindings"].as_array().cloned().unwrap_or_default())
        {
            let purl = f["Finding"]["PkgIdentifier"]["PURL"].as_str().unwrap_or("").to_string();
            let id = f["Finding"]["VulnerabilityID"].as_str().unwrap().to_string();
            let status = f["Status"].as_str().unwrap();
            suppressed += 1;
            let mine = ours_status.get(&(subject.as_str(), purl.clone(), id.clone())).copied();
            if mine != Some(status) {
                problems.push(format!("{subject}: Trivy's VEX makes ({purl}, {id}) {status}, ours {mine:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) over {compared} SBOMs:\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!("policy_trivy: {compared} SBOMs agree with Trivy: {affected} affected pairs, {suppressed} suppressed by VEX");
    assert!(compared >= 45, "every SBOM of the fixtures and the corpus is compared ({compared})");
    assert!(
        affected > 100 && suppressed > 0,
        "the comparison sees findings ({affected}) and suppressions ({suppressed})"
    );
    // the documented cross-document case: vexhub's wharfie statement marks
    // otelgrpc's CVE-2023-47108 not_affected where the SBOM has the edge
    // (trusting vexhub's issuer alone: a fixture document decides it first otherwise)
    let trusted = members(&ws.join("out/trusted/trusted.tar.zst"));
    let evaluations = jsonl(&zstd::decode_all(&trusted["policy/evaluations.jsonl.zst"][..]).unwrap());
    let wharfie = evaluations.iter().find(|e| {
        e["subject"] == "fixtures/A_meta_deps.cdx.json"
            && e["vulnerability"] == "CVE-2023-47108"
            && e["purl"].as_str().unwrap().contains("/otelgrpc@")
    });
    let w = wharfie.expect("A_meta_deps has otelgrpc's CVE-2023-47108");
    assert_eq!(w["vexStatus"], "not_affected", "{w}");
    assert!(w["vexSource"].as_str().unwrap().starts_with("vexhub/golang/github.com/rancher/wharfie/"), "{w}");
    assert_eq!(w["verdict"], "pass", "{w}");
    // an untrusted issuer's not_affected does not suppress
    let find = |subject: &str, id: &str| {
        evaluations
            .iter()
            .find(|e| e["subject"] == subject && e["vulnerability"] == id)
            .unwrap_or_else(|| panic!("{subject} {id}"))
    };
    let y = find("samples-cdx/app.cdx.json", "CVE-2024-91001");
    assert_eq!((&y["vexStatus"], &y["verdict"]), (&Value::from("affected"), &Value::from("fail")), "{y}");
    assert!(
        y["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("not trusted")),
        "{y}"
    );
    // waivers: one expired the day before the pinned time, one (by alias) lasting through its day
    let h = find("samples-cdx/app.cdx.json", "CVE-2024-91007");
    assert_eq!(h["verdict"], "fail", "{h}");
    assert!(
        h["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("expired on 2024-12-31")),
        "{h}"
    );
    let c = find("samples-cdx/app.cdx.json", "CVE-2025-91008");
    assert_eq!(c["verdict"], "pass", "{c}");
    assert!(
        c["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("waived until 2025-01-01")),
        "{c}"
    );
    // the policy's digest is in the manifest and the provenance
    let text = std::fs::read(ws.join("policies/trusted.toml")).unwrap();
    let m: Value =
        serde_json::from_slice(&std::fs::read(ws.join("out/trusted/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["policy"]["sha256"], sha256_hex(&text));
    let prov = std::fs::read_to_string(ws.join("out/trusted/provenance.json")).unwrap();
    assert!(prov.contains(&sha256_hex(&text)), "provenance names the policy");
}

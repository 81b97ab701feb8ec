//! `policy::sbom::packages` (the packages json:policy will match) against
//! the real Trivy 0.76.0: for every SBOM of the samples and of the real
//! corpus (`../shared/data/sbom`, CycloneDX 1.2–1.4 and SPDX 2.2/2.3/3.0),
//! the set of (type, name, version, purl) we read equals what
//! `trivy sbom --list-all-pkgs` lists as language packages, our
//! dependency edges between them are Trivy's `DependsOn`, and an SBOM
//! Trivy cannot read is one we refuse.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use export_center::policy::sbom;

type Row = (String, String, String, String);

/// A Trivy cache holding a trivy.db (any: the listing does not depend on it).
fn trivy_cache(dir: &Path) -> PathBuf {
    let ws = dir.join("ws");
    copy_dir(&repo().join("tests/fixtures/trivy"), &ws);
    build_ok(&ws, &["trivy-db"]);
    let cache = dir.join("cache");
    std::fs::create_dir_all(cache.join("db")).unwrap();
    let f = std::fs::File::open(ws.join("out/trivy-db/db.tar.gz")).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(f)).unpack(cache.join("db")).unwrap();
    cache
}

type Edges = BTreeSet<(String, String)>;

/// Trivy's language packages of `sbom` and the dependency edges between
/// them (by package ID), or `Err` when it cannot read it.
fn trivy_rows(trivy: &Path, cache: &Path, sbom: &Path) -> Result<(BTreeSet<Row>, Edges), String> {
    let o = Command::new(trivy)
        .args(["sbom", "--offline-scan", "--skip-db-update", "--skip-version-check", "--disable-telemetry"])
        .arg("--cache-dir")
        .arg(cache)
        .args(["--format", "json", "--list-all-pkgs", "--quiet"])
        .arg(sbom)
        .env("TRIVY_NO_PROGRESS", "true")
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (mut rows, mut edges) = (BTreeSet::new(), BTreeSet::new());
    for res in r["Results"].as_array().into_iter().flatten().filter(|r| r["Class"] == "lang-pkgs") {
        for p in res["Packages"].as_array().into_iter().flatten() {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            rows.insert((s(&res["Type"]), s(&p["Name"]), s(&p["Version"]), s(&p["Identifier"]["PURL"])));
            for d in p["DependsOn"].as_array().into_iter().flatten() {
                edges.insert((s(&p["ID"]), s(d)));
            }
        }
    }
    Ok((rows, edges))
}

/// Our edges between packages, by Trivy's package ID.
fn our_edges(sbom: &Path) -> Edges {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(sbom).unwrap()).unwrap();
    let pkgs = sbom::packages(&doc).unwrap_or_default();
    let id = |r: &str| pkgs.iter().find(|p| p.reference.as_deref() == Some(r)).map(|p| p.trivy_id());
    sbom::edges(&doc).iter().filter_map(|(a, b)| Some((id(a)?, id(b)?))).collect()
}

fn our_rows(sbom: &Path) -> Result<BTreeSet<Row>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sbom).unwrap()).map_err(|e| e.to_string())?;
    Ok(sbom::packages(&doc)?
        .into_iter()
        .map(|p| (p.trivy_type.to_string(), p.name, p.version, p.purl.to_string()))
        .collect())
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

fn unpack_zst(archive: &Path, to: &Path) {
    let f = std::fs::File::open(archive).unwrap();
    tar::Archive::new(zstd::Decoder::new(f).unwrap()).unpack(to).unwrap();
}

#[test]
fn the_packages_we_read_are_the_ones_trivy_scans() {
    let Some(trivy) = tool("EXPORT_CENTER_TRIVY", None, "Trivy 0.76.0") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cache = trivy_cache(tmp.path());
    let mut files = json_files(&repo().join("samples/sbom"));
    if let Some(data) = corpus("the_packages_we_read_are_the_ones_trivy_scans") {
        let c = tmp.path().join("corpus");
        unpack_zst(&data.join("sbom/cyclonedx/bom-examples-sbom.tar.zst"), &c.join("cdx"));
        unpack_zst(&data.join("sbom/spdx/spdx-examples.tar.zst"), &c.join("spdx"));
        files.extend(json_files(&c));
    }
    let mut mismatches = Vec::new();
    let (mut compared, mut packages, mut edges) = (0, 0, 0);
    for f in &files {
        let theirs = trivy_rows(&trivy, &cache, f);
        let ours = our_rows(f);
        match (&theirs, &ours) {
            (Ok((t, te)), Ok(o)) if t == o => {
                compared += 1;
                packages += t.len();
                let oe = our_edges(f);
                if *te != oe {
                    mismatches.push(format!(
                        "{}: dependency edges differ:\n  only Trivy: {:?}\n  only ours: {:?}",
                        f.display(),
                        te.difference(&oe).take(6).collect::<Vec<_>>(),
                        oe.difference(te).take(6).collect::<Vec<_>>()
                    ));
                }
                edges += te.len();
            }
            (Ok((t, _)), Ok(o)) => mismatches.push(format!(
                "{}:\n  only Trivy: {:?}\n  only ours: {:?}",
                f.display(),
                t.difference(o).take(8).collect::<Vec<_>>(),
                o.difference(t).take(8).collect::<Vec<_>>()
            )),
            (Err(_), Err(_)) => compared += 1,
            (Err(e), Ok(o)) => mismatches.push(format!(
                "{}: Trivy refuses it ({}) but we read {} packages",
                f.display(),
                e.lines().last().unwrap_or(""),
                o.len()
            )),
            (Ok((t, _)), Err(e)) => mismatches.push(format!(
                "{}: we refuse it ({e}) but Trivy lists {} packages",
                f.display(),
                t.len()
            )),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} SBOMs differ:\n{}",
        mismatches.len(),
        files.len(),
        mismatches.join("\n")
    );
    assert!(packages > 0 && edges > 0, "the SBOMs hold packages and edges ({compared} compared)");
}

//! `versions::trivy::is_vulnerable` (Trivy's per-ecosystem comparers)
//! against the real Trivy 0.76.0: a table of (ecosystem, installed
//! version, OSV ranges) cases, one package per case, is written as
//! synthetic OSV advisories, built into a trivy.db by export-center, and
//! scanned from one CycloneDX SBOM per ecosystem holding every case's
//! component. The packages Trivy reports vulnerable must be exactly those
//! for which `is_vulnerable`, given the rows the converter writes
//! (`model::osv::rows`), says true.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;
use export_center::kinds::trivy_db::model::{osv, DataSource};
use export_center::versions::trivy::{is_vulnerable, Comparer};
use serde_json::{json, Value};

/// An OSV range: `(event, version)` pairs, and explicit versions.
type Range = (&'static [(&'static str, &'static str)], &'static [&'static str]);

struct Eco {
    osv: &'static str,
    prefix: &'static str,
    purl_type: &'static str,
    installed: &'static [&'static str],
    ranges: &'static [Range],
}

const SEMVER_RANGES: &[Range] = &[
    (&[("introduced", "0"), ("fixed", "1.2.3")], &[]),
    (&[("introduced", "1.2.0"), ("fixed", "1.3.0")], &[]),
    (&[("introduced", "0"), ("fixed", "0.3.8")], &[]),
    (&[("introduced", "1.2.3-rc.1"), ("fixed", "1.2.3")], &[]),
    (&[("introduced", "0"), ("last_affected", "1.2.3")], &[]),
    (&[("introduced", "1.10.0")], &[]),
    (&[("introduced", "0"), ("fixed", "1.2.3-alpha.10")], &[]),
    (&[("introduced", "1.2.3-beta"), ("fixed", "2.0.0")], &[]),
    (&[], &["1.2.3", "2.0.0"]),
    (&[("introduced", "0"), ("fixed", "1.2.3"), ("introduced", "1.5.0"), ("fixed", "1.10.1")], &[]),
    (&[("introduced", "1.2.3+build.1"), ("fixed", "1.2.4")], &[]),
    (
        &[
            ("introduced", "0.0.0-20200101000000-abcdefabcdef"),
            ("fixed", "0.0.0-20210101000000-abcdefabcdef"),
        ],
        &[],
    ),
];

const SEMVER_VERSIONS: &[&str] = &[
    "1.2.3",
    "1.2.2",
    "1.2.4",
    "1.3.0",
    "2.0.0",
    "0.3.7",
    "0.3.8",
    "1.10.0",
    "1.9.9",
    "1.2.3-rc.1",
    "1.2.3-rc.2",
    "1.2.3-beta",
    "1.2.3-alpha.9",
    "1.2.3-alpha.10",
    "1.2.3-alpha",
    "1.2.3+build.1",
    "1.2.3+build.2",
    "1.2.3-1",
    "1.2.3-x",
    "0.0.0-20201125200606-c27b9fd57aec",
    "0.3.5-0.20201125200606-c27b9fd57aec",
    "1.2",
    "1",
    "1.2.3.4",
    "01.2.3",
    "junk",
    "1.2.3-",
    "18446744073709551616.0.0",
    "1.2.3-rc.1+b",
    "1.5.0-pre",
    "v1.2.3",
];

const GO_VERSIONS: &[&str] = &[
    "v1.2.3",
    "1.2.3",
    "v1.2.2",
    "v1.2.4",
    "v1.3.0",
    "v2.0.0",
    "v0.3.7",
    "v0.3.8",
    "v1.10.0",
    "v1.2.3-rc.1",
    "v1.2.3-beta",
    "v1.2.3-alpha.9",
    "v1.2.3-alpha.10",
    "v1.2.3+incompatible",
    "v0.0.0-20201125200606-c27b9fd57aec",
    "v0.3.5-0.20201125200606-c27b9fd57aec",
    "v1.2",
    "v1",
    "v1.2.3.4",
    "junk",
    "v1.2.3-1",
    "v1.2.3rc1",
    "v1.2.3~1",
    "V1.2.3",
    "v1.2.3-x",
];

const PEP440_RANGES: &[Range] = &[
    (&[("introduced", "0"), ("fixed", "1.2.3")], &[]),
    (&[("introduced", "1.0"), ("fixed", "2.0")], &[]),
    (&[("introduced", "1.0a1"), ("fixed", "1.0")], &[]),
    (&[("introduced", "0"), ("last_affected", "1.0.post1")], &[]),
    (&[("introduced", "1!0")], &[]),
    (&[("introduced", "0"), ("fixed", "1.0rc1")], &[]),
    (&[("introduced", "0"), ("fixed", "1.0.dev1")], &[]),
    (&[], &["1.0", "2.0.post1"]),
    (&[("introduced", "1.0.post1"), ("fixed", "1.1")], &[]),
    (&[("introduced", "0"), ("fixed", "1.0alpha2")], &[]),
    (&[("introduced", "2.0b1"), ("fixed", "2.0")], &[]),
];

const PEP440_VERSIONS: &[&str] = &[
    "1.0",
    "1.0.0",
    "0.9",
    "1.0a1",
    "1.0a2",
    "1.0b1",
    "1.0rc1",
    "1.0.dev1",
    "1.0.dev0",
    "1.0.post1",
    "1.0.post2",
    "1.0+local",
    "1.0a1+local",
    "1.0.post1+l",
    "1.0+sp1",
    "1.0+sp1p2",
    "1!0.5",
    "1!2.0",
    "2.0",
    "2.0.post1",
    "2.0b1",
    "2.0rc1",
    "1.2.3",
    "1.2.2",
    "1.2.4",
    "v1.0",
    "1.0-1",
    "1.0_post1",
    "1.0ALPHA1",
    "1.0alpha2",
    "1.1",
    "junk",
    "1.0.x",
    "99999999999999999999999",
    "1.0c1",
    "1.0preview1",
];

const MAVEN_RANGES: &[Range] = &[
    (&[("introduced", "0"), ("fixed", "1.2.3")], &[]),
    (&[("introduced", "1.0"), ("fixed", "2.0")], &[]),
    (&[("introduced", "1.0-alpha-1"), ("fixed", "1.0")], &[]),
    (&[("introduced", "0"), ("last_affected", "1.0.Final")], &[]),
    (&[("introduced", "2.0-SNAPSHOT"), ("fixed", "2.0.1")], &[]),
    (&[], &["1.0", "2.0.RELEASE"]),
    (&[("introduced", "1.0-rc1"), ("fixed", "1.0-sp1")], &[]),
    (&[("introduced", "0"), ("fixed", "1.2.3+sp1")], &[]),
];

const MAVEN_VERSIONS: &[&str] = &[
    "1.0",
    "1.0.0",
    "1",
    "0.9",
    "1.0-alpha-1",
    "1.0-alpha1",
    "1.0-beta",
    "1.0-rc1",
    "1.0-cr1",
    "1.0-SNAPSHOT",
    "1.0.Final",
    "1.0.GA",
    "1.0-sp1",
    "1.0-sp2",
    "2.0",
    "2.0-SNAPSHOT",
    "2.0.RELEASE",
    "2.0.1",
    "1.2.3",
    "1.2.3+sp1",
    "1.2.3+sp2",
    "1.2.3.jbossorg-1",
    "1.2.4",
    "junk",
    "1.0-m1",
    "1.0.a1",
    "1.0-xyz",
    "99999999999999999999999",
    "1.0_1",
];

const GEM_RANGES: &[Range] = &[
    (&[("introduced", "0"), ("fixed", "1.2.3")], &[]),
    (&[("introduced", "1.0"), ("fixed", "2.0")], &[]),
    (&[("introduced", "1.0.a1"), ("fixed", "1.0")], &[]),
    (&[("introduced", "0"), ("last_affected", "1.0.0.rc1")], &[]),
    (&[], &["1.0", "2.0.beta"]),
    (&[("introduced", "2.0.0.pre"), ("fixed", "2.0.1")], &[]),
    (&[("introduced", "0"), ("fixed", "1.2.3-1")], &[]),
];

const GEM_VERSIONS: &[&str] = &[
    "1.0",
    "1.0.0",
    "1",
    "0.9",
    "1.0.a1",
    "1.0.a2",
    "1.0.b1",
    "1.0.0.rc1",
    "1.0.0.rc2",
    "1.0.0-rc1",
    "2.0",
    "2.0.beta",
    "2.0.bet",
    "2.0.0.pre",
    "2.0.0.pre1",
    "2.0.1",
    "1.2.3",
    "1.2.3-1",
    "1.2.3.1",
    "1.2.4",
    "junk",
    "v1.0",
    "1.0 ",
    "99999999999999999999999",
    "1.0.A1",
];

const BITNAMI_VERSIONS: &[&str] = &[
    "1.2.3",
    "1.2.3-1",
    "1.2.3-2",
    "1.2.2",
    "1.2.4",
    "1.3.0",
    "2.0.0",
    "2.0.0-1",
    "0.3.7",
    "0.3.8",
    "1.10.0",
    "1.2.3-rc.1",
    "1.2.3-beta",
    "1.2",
    "junk",
    "v1.2.3",
    "1.2.3+b",
];

const BITNAMI_RANGES: &[Range] = &[
    (&[("introduced", "0"), ("fixed", "1.2.3")], &[]),
    (&[("introduced", "0"), ("fixed", "1.2.3-2")], &[]),
    (&[("introduced", "1.2.0"), ("fixed", "1.3.0")], &[]),
    (&[("introduced", "0"), ("last_affected", "1.2.3")], &[]),
    (&[("introduced", "1.10.0")], &[]),
    (&[], &["1.2.3", "2.0.0-1"]),
    (&[("introduced", "2.0.0"), ("fixed", "2.0.0-1")], &[]),
];

const ECOS: &[Eco] = &[
    Eco { osv: "Go", prefix: "go", purl_type: "golang", installed: GO_VERSIONS, ranges: SEMVER_RANGES },
    Eco {
        osv: "crates.io",
        prefix: "cargo",
        purl_type: "cargo",
        installed: SEMVER_VERSIONS,
        ranges: SEMVER_RANGES,
    },
    Eco { osv: "npm", prefix: "npm", purl_type: "npm", installed: SEMVER_VERSIONS, ranges: SEMVER_RANGES },
    Eco { osv: "PyPI", prefix: "pip", purl_type: "pypi", installed: PEP440_VERSIONS, ranges: PEP440_RANGES },
    Eco {
        osv: "Maven",
        prefix: "maven",
        purl_type: "maven",
        installed: MAVEN_VERSIONS,
        ranges: MAVEN_RANGES,
    },
    Eco {
        osv: "RubyGems",
        prefix: "rubygems",
        purl_type: "gem",
        installed: GEM_VERSIONS,
        ranges: GEM_RANGES,
    },
    Eco {
        osv: "Bitnami",
        prefix: "bitnami",
        purl_type: "bitnami",
        installed: BITNAMI_VERSIONS,
        ranges: BITNAMI_RANGES,
    },
];

/// One case: its package name, installed version and the advisory rows'
/// (vulnerable, patched, unaffected) lists.
struct Case {
    name: String,
    installed: &'static str,
    rows: Vec<(Vec<String>, Vec<String>, Vec<String>)>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

fn purl_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Trivy's vulnerable package names in a report.
fn reported(report: &Value) -> BTreeSet<String> {
    report["Results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Vulnerabilities"].as_array().cloned().unwrap_or_default())
        .map(|v| v["PkgName"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn is_vulnerable_agrees_with_trivy() {
    let Some(trivy) = tool("EXPORT_CENTER_TRIVY", None, "Trivy 0.76.0") else { return };
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let data = ws.join("data/osv");
    std::fs::create_dir_all(&data).unwrap();
    let ds =
        DataSource { id: "cmp".into(), name: "Comparers".into(), url: "https://example.invalid/cmp".into() };
    let mut per_eco: Vec<(&Eco, Vec<Case>)> = Vec::new();
    let mut n = 0;
    for eco in ECOS {
        let mut cases = Vec::new();
        for (ri, (events, versions)) in eco.ranges.iter().enumerate() {
            for (vi, installed) in eco.installed.iter().enumerate() {
                let pkg = format!("case-{ri}-{vi}");
                let osv_name = if eco.osv == "Maven" { format!("org.example:{pkg}") } else { pkg.clone() };
                let events: Vec<Value> = events.iter().map(|(k, v)| json!({ *k: v })).collect();
                let mut affected = json!({"package": {"ecosystem": eco.osv, "name": osv_name}});
                if !events.is_empty() {
                    affected["ranges"] = json!([{"type": "ECOSYSTEM", "events": events}]);
                }
                if !versions.is_empty() {
                    affected["versions"] = json!(versions);
                }
                let id = format!("TEST-{}-{ri}-{vi}", eco.prefix);
                let doc = json!({"id": id, "modified": "2025-01-01T00:00:00Z", "summary": "s", "affected": [affected]});
                // a document the converter refuses is not part of the DB
                let Ok(rows) = osv::rows(&doc, "cmp", &ds, usize::MAX) else { continue };
                let key = osv_name.to_lowercase();
                let rows: Vec<_> = rows
                    .iter()
                    .filter(|r| r.bucket.starts_with(&format!("{}::", eco.prefix)) && r.package == key)
                    .map(|r| {
                        let v = &r.value;
                        (
                            strings(&v["VulnerableVersions"]),
                            strings(&v["PatchedVersions"]),
                            strings(&v["UnaffectedVersions"]),
                        )
                    })
                    .collect();
                assert!(!rows.is_empty(), "{id}: no row for {key}");
                std::fs::write(data.join(format!("{id}.json")), serde_json::to_vec(&doc).unwrap()).unwrap();
                n += 1;
                cases.push(Case { name: osv_name, installed, rows });
            }
        }
        per_eco.push((eco, cases));
    }
    assert!(n > 500, "only {n} cases");
    std::fs::write(
        ws.join("profiles.toml"),
        "[workspace]\nsource-date-epoch = 1735689600\n\
         [sources.cmp]\nformat = \"osv\"\npath = \"data/osv\"\n\
         data-source = { id = \"cmp\", name = \"Comparers\", url = \"https://example.invalid/cmp\" }\n\
         [profiles.trivy]\nkind = \"trivy:db\"\ninputs = [\"cmp\"]\n",
    )
    .unwrap();
    build_ok(&ws, &[]);
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(cache.join("db")).unwrap();
    let f = std::fs::File::open(ws.join("out/trivy/db.tar.gz")).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(f)).unpack(cache.join("db")).unwrap();

    let mut failures = Vec::new();
    let mut checked = 0;
    for (eco, cases) in &per_eco {
        let comparer = Comparer::for_prefix(eco.prefix).unwrap();
        let components: Vec<Value> = cases
            .iter()
            .map(|c| {
                let purl = if eco.osv == "Maven" {
                    let (g, a) = c.name.split_once(':').unwrap();
                    format!("pkg:maven/{g}/{a}@{}", purl_escape(c.installed))
                } else {
                    format!("pkg:{}/{}@{}", eco.purl_type, c.name, purl_escape(c.installed))
                };
                json!({"type": "library", "bom-ref": purl, "name": c.name, "version": c.installed, "purl": purl})
            })
            .collect();
        let sbom = json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
            "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79", "components": components});
        let sbom_path = dir.path().join(format!("{}.cdx.json", eco.prefix));
        std::fs::write(&sbom_path, serde_json::to_vec(&sbom).unwrap()).unwrap();
        let o = Command::new(&trivy)
            .args([
                "sbom",
                "--offline-scan",
                "--skip-db-update",
                "--skip-version-check",
                "--disable-telemetry",
            ])
            .arg("--cache-dir")
            .arg(&cache)
            .args(["--format", "json", "--quiet"])
            .arg(&sbom_path)
            .output()
            .unwrap();
        assert!(o.status.success(), "trivy failed on {}: {}", eco.prefix, String::from_utf8_lossy(&o.stderr));
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        let theirs = reported(&report);
        for c in cases {
            // every row of the package (one per vulnerability id) is checked
            let ours = !seal_routed(eco.prefix, c.installed)
                && c.rows
                    .iter()
                    .any(|(v, p, u)| is_vulnerable(comparer, c.installed, v, p, u).unwrap_or(false));
            checked += 1;
            if ours != theirs.contains(&c.name) {
                failures.push(format!(
                    "{} {} installed {:?}: trivy {}, is_vulnerable {} (rows {:?})",
                    eco.prefix,
                    c.name,
                    c.installed,
                    theirs.contains(&c.name),
                    ours,
                    c.rows
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} cases disagree:\n{}", failures.len(), failures.join("\n"));
    eprintln!("versions_trivy: {checked} cases agree with Trivy");
}

/// Trivy sends Maven and PyPI versions ending in `+spN[pM]` to the Seal
/// Security buckets only (`pkg/detector/library/seal`), which this DB
/// lacks: never vulnerable here, whatever the comparer says.
fn seal_routed(prefix: &str, version: &str) -> bool {
    let Some((_, tail)) = version.rsplit_once("+sp") else { return false };
    let (n, rest) = tail.split_at(tail.bytes().take_while(u8::is_ascii_digit).count());
    let p_ok = rest.is_empty()
        || rest.strip_prefix('p').is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()));
    matches!(prefix, "maven" | "pip") && !n.is_empty() && p_ok
}

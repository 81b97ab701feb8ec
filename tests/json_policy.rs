//! json:policy's engine invariants on the sample workspace (its
//! `verdicts` profile): a changed advisory re-evaluates only the SBOM
//! shards holding its package (the test counts the steps), a changed
//! policy re-runs evaluation and not parsing, two builds are byte-identical
//! and the bundle reads with plain `zstd -d | tar -x`, bad policies are
//! refused naming the file and line (exit 2). Agreement with the real
//! Trivy is `tests/policy_trivy.rs`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn ran(report: &serde_json::Value, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> =
        executed(report).into_iter().map(|(id, _)| id).filter(|id| id.starts_with(prefix)).collect();
    v.sort();
    v
}

/// Bump a `fixed` event of an OSV document (`from` → `to`).
fn edit_fixed(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    let needle = format!("\"fixed\": \"{from}\"");
    assert!(text.contains(&needle), "{} has {needle}", file.display());
    std::fs::write(file, text.replace(&needle, &format!("\"fixed\": \"{to}\""))).unwrap();
}

#[test]
fn a_changed_advisory_re_evaluates_only_the_sboms_holding_its_package() {
    let ws = sample_workspace();
    let first = build_ok(ws.path(), &["verdicts"]);
    let evaluated = ran(&first, "evaluate:");
    assert!(evaluated.contains(&"evaluate:verdicts/spdx/0000".to_string()), "{evaluated:?}");
    // GO-2024-3105 (tarfs) is a package of the SPDX SBOM only
    let file = ws.path().join("samples/osv/go/GO-2024-3105.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let fixed = v["affected"][0]["ranges"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["fixed"].as_str())
        .unwrap()
        .to_string();
    edit_fixed(&file, &fixed, "0.9.9");
    let r = build_ok(ws.path(), &["verdicts"]);
    assert_eq!(ran(&r, "evaluate:"), ["evaluate:verdicts/spdx/0000"], "only the SBOM holding tarfs");
    // every shard's slice is re-cut from the new index (cheap; shards holding no SBOM read nothing)
    assert_eq!(ran(&r, "slice:").len(), ran(&first, "slice:").len(), "{:?}", ran(&r, "slice:"));
    assert_eq!(ran(&r, "parse:"), ["parse:go/0000"], "only the edited source is parsed");
    // the finding now reports the new fixed version
    let ev = evaluations(ws.path());
    let tarfs = ev.iter().find(|e| e["purl"].as_str().unwrap().contains("tarfs")).unwrap();
    assert_eq!(tarfs["fixed"], "0.9.9", "{tarfs}");
    // the policy changes: evaluation re-runs, parsing and matching facts do not
    std::fs::create_dir_all(ws.path().join("policies")).unwrap();
    std::fs::write(
        ws.path().join("policies/strict.toml"),
        "version = 1\n[severity]\nfail = [\"CRITICAL\", \"HIGH\", \"MEDIUM\", \"LOW\"]\nunknown = \"fail\"\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(ws.path().join("profiles.toml")).unwrap();
    let text = text.replace("# policy = \"policies/default.toml\"", "policy = \"policies/strict.toml\"");
    std::fs::write(ws.path().join("profiles.toml"), text).unwrap();
    let r = build_ok(ws.path(), &["verdicts"]);
    assert!(
        ran(&r, "parse:").is_empty()
            && ran(&r, "facts:").is_empty()
            && ran(&r, "index:").is_empty()
            && ran(&r, "slice:").is_empty(),
        "{:?}",
        executed(&r)
    );
    assert_eq!(ran(&r, "evaluate:").len(), evaluated.len(), "every evaluation re-runs under a new policy");
    let ev = evaluations(ws.path());
    assert!(
        ev.iter().filter(|e| e["vexStatus"] == "affected").all(|e| e["verdict"] == "fail"),
        "strict: every unsuppressed finding fails"
    );
    // nothing changed: nothing runs
    let r = build_ok(ws.path(), &["verdicts"]);
    assert!(executed(&r).is_empty(), "{:?}", executed(&r));
}

fn evaluations(ws: &Path) -> Vec<serde_json::Value> {
    let tmp = tempfile::tempdir().unwrap();
    // plain tools read the bundle: zstd -d | tar -x
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc '{}' | tar -x -C '{}' && zstd -dc '{}/policy/evaluations.jsonl.zst' > '{}/ev.jsonl'",
            ws.join("out/verdicts/verdicts.tar.zst").display(),
            tmp.path().display(),
            tmp.path().display(),
            tmp.path().display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "zstd -d | tar -x reads the bundle");
    let text = std::fs::read_to_string(tmp.path().join("ev.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn verdicts_are_reproducible_verified_and_explained() {
    let a = sample_workspace();
    let b = sample_workspace();
    build_ok(a.path(), &["verdicts", "--jobs", "1"]);
    build_ok(b.path(), &["verdicts", "--jobs", "2"]);
    assert_eq!(out_files(a.path()), out_files(b.path()), "two builds are byte-identical");
    let r = run(a.path(), &["verify", "out/verdicts"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let ev = evaluations(a.path());
    assert!(!ev.is_empty());
    for e in &ev {
        for k in [
            "subject",
            "purl",
            "vulnerability",
            "aliases",
            "advisory",
            "installed",
            "fixed",
            "severity",
            "vexStatus",
            "vexSource",
            "verdict",
            "reasons",
        ] {
            assert!(e.get(k).is_some(), "{k} in {e}");
        }
        assert!(!e["reasons"].as_array().unwrap().is_empty(), "every verdict is explained: {e}");
    }
    // the sample OpenVEX statement suppresses yamlette's CVE in the CycloneDX SBOM
    let y = ev.iter().find(|e| e["vulnerability"] == "CVE-2024-91001").unwrap();
    assert_eq!((y["vexStatus"].as_str(), y["verdict"].as_str()), (Some("not_affected"), Some("pass")), "{y}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.path().join("out/verdicts/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["policy"]["path"], serde_json::Value::Null, "the default policy");
    let paths: Vec<&str> =
        m["contents"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
    for p in [
        "policy/snapshot.json",
        "policy/evaluations.jsonl.zst",
        "policy/summary.jsonl",
        "consensus/vex_consensus.jsonl.zst",
    ] {
        assert!(paths.contains(&p), "{p} in {paths:?}");
    }
    assert!(paths.iter().any(|p| p.starts_with("advisories/")), "the raw evidence is carried");
}

#[test]
fn bad_policies_are_refused_naming_the_file_and_line() {
    let ws = sample_workspace();
    let text = std::fs::read_to_string(ws.path().join("profiles.toml")).unwrap();
    std::fs::write(
        ws.path().join("profiles.toml"),
        text.replace("# policy = \"policies/default.toml\"", "policy = \"policies/p.toml\""),
    )
    .unwrap();
    // missing
    let r = run(ws.path(), &["build", "verdicts"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("policies/p.toml") && r.stderr.contains("profiles.verdicts.policy"),
        "{}",
        r.stderr
    );
    std::fs::create_dir_all(ws.path().join("policies")).unwrap();
    for (body, line, what) in [
        ("version = 1\n\n[severity]\nfail = [\"SEVERE\"]\n", "", "SEVERE"),
        ("version = 1\n[vex]\ntrusted = [\"x\"]\n", "line 3", "trusted"),
        ("version = 1\n[[waivers]]\nadvisory = \"CVE-1\"\npurl = \"*\"\nreason = \"r\"\nexpires = \"someday\"\n", "", "waivers[0].expires"),
        ("version = 1\n[packages]\ndeny = [\"[\"]\n", "", "packages.deny"),
    ] {
        std::fs::write(ws.path().join("policies/p.toml"), body).unwrap();
        let r = run(ws.path(), &["build", "verdicts"]);
        assert_eq!(r.code, 2, "{body}: {}", r.stderr);
        assert!(r.stderr.contains("policies/p.toml") && r.stderr.contains(line) && r.stderr.contains(what), "{body}: {}", r.stderr);
        assert!(!ws.path().join("out/verdicts").exists(), "nothing is published");
    }
}

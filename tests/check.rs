//! `build --check`: a rebuild without the cache compared with what is
//! published; exit 3 naming each differing file (and bundle member).

mod common;

use std::path::Path;

use common::*;

const P: &str = "json-raw";

/// Every file under `dir` (dot folders included) with its bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            v.push((rel, std::fs::read(e.path()).unwrap()));
        }
    }
    v
}

fn check(ws: &Path, args: &[&str]) -> Run {
    let mut a = vec!["build", "--check"];
    a.extend_from_slice(args);
    run(ws, &a)
}

#[test]
fn check_after_a_build_is_identical_and_touches_nothing() {
    let ws = sample_workspace();
    let w = ws.path();
    build_ok(w, &[]);
    let out = tree(&w.join("out"));
    let ac = tree(&w.join("cache/ac"));
    let runs = tree(&w.join("cache/runs"));
    let steps = tree(&w.join("cache/steps"));
    let r = check(w, &["--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["identical"], true);
    let names: Vec<&str> =
        j["profiles"].as_array().unwrap().iter().map(|p| p["profile"].as_str().unwrap()).collect();
    assert_eq!(names, ["devportal", "json-raw", "json-web", "trivy-db", "verdicts"]);
    assert!(j["profiles"].as_array().unwrap().iter().all(|p| p["differences"] == serde_json::json!([])));
    let r = check(w, &[P]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(tree(&w.join("out")), out, "out/ untouched");
    assert_eq!(tree(&w.join("cache/ac")), ac, "no action-cache entry read into or written");
    assert_eq!(tree(&w.join("cache/runs")), runs);
    assert_eq!(tree(&w.join("cache/steps")), steps);
    assert_eq!(std::fs::read_dir(w.join("cache/tmp")).unwrap().count(), 0, "the scratch area is removed");
}

#[test]
fn a_tampered_export_is_exit_3_naming_each_file_and_member() {
    let ws = sample_workspace();
    let w = ws.path();
    build_ok(w, &[P]);
    // an older bundle: generation 1, kept when the advisory changes
    let f = w.join("samples/osv/pypi/PYSEC-2023-210.json");
    let text = std::fs::read_to_string(&f).unwrap().replacen("\"summary\": \"", "\"summary\": \"edited ", 1);
    std::fs::write(&f, text).unwrap();
    age(&f);
    build_ok(w, &[P]);
    let live = w.join("out").join(P);
    let bundle = live.join("json-raw.tar.zst");
    std::fs::remove_file(&bundle).unwrap();
    std::fs::copy(w.join("out/.generations").join(P).join("1/json-raw.tar.zst"), &bundle).unwrap();
    let manifest = live.join("manifest.json");
    let mut m = std::fs::read(&manifest).unwrap();
    m[3] ^= 1;
    std::fs::remove_file(&manifest).unwrap();
    std::fs::write(&manifest, m).unwrap();
    let before = tree(&w.join("out"));

    let r = check(w, &["--json", P]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["identical"], false);
    let p = &j["profiles"][0];
    assert_eq!((p["profile"].as_str(), p["identical"].as_bool()), (Some(P), Some(false)));
    let diffs: Vec<(String, Option<String>)> = p["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["file"].as_str().unwrap().to_string(), d["member"].as_str().map(str::to_string)))
        .collect();
    assert!(diffs.contains(&("manifest.json".into(), None)), "{diffs:?}");
    let members: Vec<&str> =
        diffs.iter().filter(|(f, _)| f == "json-raw.tar.zst").filter_map(|(_, m)| m.as_deref()).collect();
    assert!(!members.is_empty() && members.iter().all(|m| m.starts_with("advisories/pypi/")), "{diffs:?}");
    assert_eq!(diffs.len(), members.len() + 1, "only the tampered files: {diffs:?}");

    let r = check(w, &[P]);
    assert_eq!(r.code, 3);
    assert!(
        r.stdout.contains("manifest.json") && r.stdout.contains("json-raw.tar.zst: member advisories/pypi/"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("verification failed"), "{}", r.stderr);
    assert_eq!(tree(&w.join("out")), before, "the check repairs nothing");
}

#[test]
fn nothing_published_is_a_clear_error() {
    let ws = sample_workspace();
    let w = ws.path();
    let r = check(w, &[P]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nothing published to check"), "{}", r.stderr);
    let r = check(w, &["--json", P]);
    assert_eq!(r.code, 2);
    assert!(r.json()["error"].as_str().unwrap().contains("nothing published to check"), "{}", r.stdout);
    assert!(!w.join("out").join(P).exists());
}

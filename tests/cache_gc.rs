//! `cache gc` evicts by last use and trims every area; `cache verify`
//! reports action-cache entries whose blobs are gone; gc's default limit.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn edit_summary(path: &Path, new: &str) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["summary"] = Value::String(new.into());
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn stats(ws: &Path) -> Value {
    let r = run(ws, &["cache", "stats", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json()
}

fn gc(ws: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["cache", "gc", "--json"];
    args.extend_from_slice(extra);
    let r = run(ws, &args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    r.json()
}

fn files_in(ws: &Path, area: &str) -> u64 {
    stats(ws)["areas"][area]["files"].as_u64().unwrap()
}

fn ids(report: &Value) -> Vec<String> {
    let mut v: Vec<String> = executed(report).into_iter().map(|(id, _)| id).collect();
    v.sort();
    v
}

/// Age every file under `dir` by `days`, as if a month passed.
fn age_all(dir: &Path, days: u64) {
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            std::fs::File::options().write(true).open(e.path()).unwrap().set_modified(past).unwrap();
        }
    }
}

/// The scenario. With eviction by commit time this fails: after the
/// second build the newest commits are its re-run steps, then build 1's in
/// commit order, where the stale downstream entries (the superseded
/// bundles and DB, committed last in build 1, and the biggest) come before
/// the unchanged parse/convert shards committed early; with a limit just
/// above the live set those shards are evicted and the third build re-runs
/// them.
#[test]
fn gc_just_above_the_live_set_keeps_what_the_next_build_needs() {
    let ws = sample_workspace();
    let first = build_ok(ws.path(), &[]);
    let all_steps = first["stepLog"].as_array().unwrap().len();
    edit_summary(&ws.path().join("samples/osv/npm/GHSA-4x9m-r7qv-2hcw.json"), "first change");
    build_ok(ws.path(), &[]);

    // the live set: what the current state costs in a fresh cache
    let fresh = tempfile::tempdir().unwrap();
    std::fs::copy(ws.path().join("profiles.toml"), fresh.path().join("profiles.toml")).unwrap();
    copy_dir(&ws.path().join("samples"), &fresh.path().join("samples"));
    build_ok(fresh.path(), &[]);
    let live = stats(fresh.path())["bytes"].as_u64().unwrap();
    let before = stats(ws.path())["bytes"].as_u64().unwrap();
    assert!(before > live + live / 20, "the cache also holds build 1's superseded outputs");

    // a control copy that is not trimmed
    let control = tempfile::tempdir().unwrap();
    copy_dir(ws.path(), control.path());

    let max = live + live / 100;
    let r = gc(ws.path(), &["--max-size", &max.to_string()]);
    assert!(r["entriesRemoved"].as_u64().unwrap() > 0, "stale entries are evicted: {r}");
    assert!(r["bytesAfter"].as_u64().unwrap() <= max, "{r}");
    assert_eq!(run(ws.path(), &["cache", "verify"]).code, 0, "no kept entry names an evicted blob");

    // the next one-change build re-runs only that change's steps
    for w in [ws.path(), control.path()] {
        edit_summary(&w.join("samples/osv/pypi/PYSEC-2023-210.json"), "second change");
    }
    let after_gc = build_ok(ws.path(), &[]);
    let reference = build_ok(control.path(), &[]);
    assert!(!ids(&reference).is_empty() && ids(&reference).len() < all_steps / 2, "{:?}", ids(&reference));
    assert_eq!(ids(&after_gc), ids(&reference), "gc evicted something the next build needed");
    assert!(out_files(ws.path()) == out_files(control.path()));
}

#[test]
fn verify_reports_an_entry_whose_blob_is_missing() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-web"]);
    assert_eq!(run(ws.path(), &["cache", "verify"]).code, 0);
    // delete one blob an entry names
    let entry = walkdir::WalkDir::new(ws.path().join("cache/ac"))
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| e.file_type().is_file())
        .unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
    let (output, o) = v["outputs"].as_object().unwrap().iter().next().unwrap();
    let hex = o["digest"].as_str().unwrap().trim_start_matches("b3:").to_string();
    let blob = ws.path().join("cache/cas").join(&hex[..2]).join(&hex);
    std::fs::remove_file(&blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    let r = run(ws.path(), &["cache", "verify", "--json"]);
    assert_eq!(r.code, 3, "a dangling entry fails verify:\n{}", r.stdout);
    let problems = r.json()["problems"].as_array().unwrap().clone();
    let step = v["step"].as_str().unwrap();
    assert!(
        problems.iter().any(|p| {
            let p = p.as_str().unwrap();
            p.contains(step) && p.contains(&hex) && p.contains(output.as_str()) && p.contains("missing")
        }),
        "{problems:?}"
    );
    // the next build rebuilds it and the cache is whole again
    build_ok(ws.path(), &["json-web"]);
    assert_eq!(run(ws.path(), &["cache", "verify"]).code, 0);
}

#[test]
fn gc_trims_the_gzip_stat_and_steps_areas() {
    let ws = sample_workspace();
    build_ok(ws.path(), &[]);
    for area in ["ac", "cas", "gzip", "stat", "steps"] {
        assert!(files_in(ws.path(), area) > 0, "{area} is populated");
    }
    // a month later, pypi has 2 shards: the steps of shards 2 and 3 are gone
    age_all(&ws.path().join("cache"), 60);
    let toml = std::fs::read_to_string(ws.path().join("profiles.toml")).unwrap();
    let toml = toml.replacen(
        "path = \"samples/osv/pypi\"\nshards = 4",
        "path = \"samples/osv/pypi\"\nshards = 2",
        1,
    );
    std::fs::write(ws.path().join("profiles.toml"), toml).unwrap();
    let now = build_ok(ws.path(), &[]);
    let live_steps = now["stepLog"].as_array().unwrap().len() as u64;
    assert!(files_in(ws.path(), "steps") > live_steps, "records of the vanished steps remain");

    let r = gc(ws.path(), &["--max-size", "0"]);
    for area in ["ac", "cas", "gzip", "stat", "steps"] {
        assert!(r["removed"][area].as_u64().unwrap_or(0) > 0, "{area} trimmed: {r}");
    }
    for area in ["ac", "cas", "gzip", "stat"] {
        assert_eq!(files_in(ws.path(), area), 0, "{area} emptied at --max-size 0");
    }
    // records of steps in use stay (so the next build names the eviction);
    // records of steps unused for a month go
    assert_eq!(files_in(ws.path(), "steps"), live_steps);
    let b = build_ok(ws.path(), &[]);
    let ran = executed(&b);
    assert_eq!(ran.len() as u64, live_steps);
    assert!(ran.iter().all(|(_, r)| r["reason"] == "cache-entry-missing"), "{ran:?}");
}

#[test]
fn gc_without_max_size_uses_cache_max_size_or_the_default() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-web"]);
    let entries = stats(ws.path())["actionEntries"].as_u64().unwrap();
    let r = gc(ws.path(), &[]);
    assert_eq!(r["maxSize"], 10u64 << 30, "the documented default: 10 GiB");
    assert_eq!(r["entriesRemoved"], 0);
    assert_eq!(stats(ws.path())["actionEntries"].as_u64().unwrap(), entries);

    let file = ws.path().join("profiles.toml");
    let toml = std::fs::read_to_string(&file).unwrap();
    let with = |v: &str| toml.replacen("[workspace]\n", &format!("[workspace]\ncache-max-size = {v}\n"), 1);
    std::fs::write(&file, with("\"2KiB\"")).unwrap();
    let r = gc(ws.path(), &[]);
    assert_eq!(r["maxSize"], 2048);
    assert!(r["entriesRemoved"].as_u64().unwrap() > 0, "{r}");
    assert!(
        r["bytesAfter"].as_u64().unwrap()
            <= 2048 + stats(ws.path())["areas"]["steps"]["bytes"].as_u64().unwrap()
    );
    std::fs::write(&file, with("0")).unwrap();
    assert_eq!(gc(ws.path(), &[])["maxSize"], 0, "bytes as an integer");
    assert_eq!(gc(ws.path(), &["--max-size", "1G"])["maxSize"], 1u64 << 30, "--max-size wins");

    std::fs::write(&file, with("\"lots\"")).unwrap();
    let r = run(ws.path(), &["cache", "gc"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("profiles.toml") && r.stderr.contains("cache-max-size"), "{}", r.stderr);
    let line = toml.lines().position(|l| l == "[workspace]").unwrap() + 2;
    assert!(r.stderr.contains(&format!("profiles.toml:{line}:")), "names the line: {}", r.stderr);
}

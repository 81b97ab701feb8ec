//! Issue 9 §3 "events, runs, warnings, reasons": the library reports typed
//! events and never prints; each build writes its own run record; step
//! warnings are replayed from the cache; reasons name the profile key that
//! changed; `plan` counts a republish from the cache as work.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;

use common::*;
use export_center::exec::driver::ExecOptions;
use export_center::exec::events::{Event, Finish};
use export_center::ops::build::{build, BuildOptions};
use export_center::profile::Workspace;

fn lib_build(ws: &Path) -> (export_center::ops::build::BuildReport, Vec<Event>) {
    let ws = Workspace::load(ws, None).unwrap();
    let opts = BuildOptions {
        profiles: Vec::new(),
        exec: ExecOptions { jobs: 2, keep_going: false, allow_invalid: false },
    };
    let seen = Mutex::new(Vec::new());
    let sink = |e: Event| seen.lock().unwrap().push(e);
    let report = build(&ws, &opts, &sink).unwrap();
    (report, seen.into_inner().unwrap())
}

#[test]
fn the_library_emits_started_and_finished_for_every_step() {
    let ws = sample_workspace();
    for round in ["first build", "no-op build"] {
        let (report, events) = lib_build(ws.path());
        assert!(report.ok, "{round}: {:?}", report.error);
        let mut started: BTreeMap<String, usize> = BTreeMap::new();
        let mut finished: BTreeMap<String, (usize, Finish)> = BTreeMap::new();
        let mut published = 0;
        for e in &events {
            match e {
                Event::StepStarted { step, .. } => {
                    assert!(!finished.contains_key(step), "{round}: {step} finished before it started");
                    *started.entry(step.clone()).or_default() += 1;
                }
                Event::StepFinished { step, status, .. } => {
                    let f = finished.entry(step.clone()).or_insert((0, *status));
                    f.0 += 1;
                }
                Event::Published { .. } => published += 1,
                _ => {}
            }
        }
        assert!(!report.step_log.is_empty());
        for s in &report.step_log {
            assert_eq!(started.get(&s.id), Some(&1), "{round}: {} started once", s.id);
            assert_eq!(finished.get(&s.id).map(|f| f.0), Some(1), "{round}: {} finished once", s.id);
        }
        assert_eq!(started.len(), report.step_log.len(), "{round}: no events for unknown steps");
        assert_eq!(published, report.profiles.len(), "{round}: one published event per profile");
        if round == "no-op build" {
            assert!(finished.values().all(|f| f.1 == Finish::Cached), "{round}: {finished:?}");
        }
    }
}

/// Outside the command line (and the binary's entry), nothing prints or
/// draws: the library reports events and the CLI renders them.
#[test]
fn no_prints_or_progress_bars_outside_the_cli() {
    // crashpoint: the test-only crash hook says where it aborts, then aborts
    let allowed = ["cli/", "main.rs", "crashpoint.rs"];
    let src = repo().join("src");
    let mut bad = Vec::new();
    for e in walkdir::WalkDir::new(&src) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if !rel.ends_with(".rs") || allowed.iter().any(|a| rel.starts_with(a)) {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in ["indicatif", "println!", "print!(", "eprint", "io::stderr()", "io::stdout()"] {
                if code.contains(word) {
                    bad.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "the library prints:\n{}", bad.join("\n"));
}

#[test]
fn two_concurrent_builds_keep_their_own_run_records() {
    let ws = sample_workspace();
    // both children run before either is waited for
    let spawn = || {
        cmd(ws.path())
            .args(["build", "--json", "--jobs", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (finish(a.wait_with_output().unwrap()), finish(b.wait_with_output().unwrap()));
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let (a, b) = (a.json(), b.json());
    let ids = [a["runId"].as_str().unwrap(), b["runId"].as_str().unwrap()];
    assert_ne!(ids[0], ids[1], "each build has its own run id");
    for (id, report) in ids.iter().zip([&a, &b]) {
        let path = ws.path().join("cache/runs").join(format!("{id}.json"));
        let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(record["id"], *id);
        let steps = record["steps"].as_array().unwrap();
        assert_eq!(steps.len(), report["steps"]["total"].as_u64().unwrap() as usize);
        assert!(steps.iter().all(|s| s["durationMs"].is_u64()), "every step has durationMs");
        // the record is this run's own: same statuses as its report
        assert_eq!(record["steps"], report["stepLog"], "run {id}");
        let ex = run(ws.path(), &["explain", "--run", id, "--json", "--all"]);
        assert_eq!(ex.code, 0, "{}", ex.stderr);
        assert_eq!(ex.json()["runId"], *id);
        assert_eq!(ex.json()["steps"], report["stepLog"]);
    }
    assert!(a["stepLog"].as_array().unwrap().iter().all(|s| s["durationMs"].is_u64()));
    // the latest run is one of the two
    let latest = run(ws.path(), &["explain", "--json"]).json();
    assert!(ids.contains(&latest["runId"].as_str().unwrap()), "{latest}");
    let missing = run(ws.path(), &["explain", "--run", "0000000000000-1-00000000"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("no such run"), "{}", missing.stderr);
}

/// An OSV advisory Trivy can use only in part: its versions list holds a
/// version npm cannot parse (the ranges cover it), and a second package
/// has neither a range nor versions.
const PARTLY_USABLE: &str = r#"{
  "schema_version": "1.6.0",
  "id": "GHSA-warn-0001-0001",
  "modified": "2024-12-19T15:30:00Z",
  "published": "2024-10-01T06:00:00Z",
  "summary": "partly usable",
  "affected": [
    {"package": {"ecosystem": "npm", "name": "left-pad-x"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.3"}]}],
     "versions": ["1.0.0", "trunk"]},
    {"package": {"ecosystem": "npm", "name": "no-range-y"}}
  ]
}"#;

fn warning_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data/npm");
    std::fs::create_dir_all(&data).unwrap();
    let samples = repo().join("samples/osv/npm");
    for e in std::fs::read_dir(&samples).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), data.join(e.file_name())).unwrap();
    }
    std::fs::write(data.join("GHSA-warn-0001-0001.json"), PARTLY_USABLE).unwrap();
    for e in std::fs::read_dir(&data).unwrap() {
        age(&e.unwrap().path());
    }
    std::fs::write(
        dir.path().join("profiles.toml"),
        "[workspace]\nsource-date-epoch = 1735689600\n\n[sources.npm]\nformat = \"osv\"\npath = \"data/npm\"\n\n\
         [profiles.db]\nkind = \"trivy:db\"\ninputs = [\"npm\"]\n\n\
         [profiles.raw]\nkind = \"json:raw\"\ninputs = [\"npm\"]\n",
    )
    .unwrap();
    dir
}

fn messages(list: &serde_json::Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|w| w["message"].as_str().unwrap().to_string()).collect()
}

#[test]
fn warnings_of_a_cached_shard_are_replayed() {
    let ws = warning_workspace();
    let first = build_ok(ws.path(), &[]);
    let warned = messages(&first["warnings"]);
    assert_eq!(warned.len(), 2, "{}", first["warnings"]);
    assert!(warned.iter().all(|m| m.starts_with("GHSA-warn-0001-0001: ")), "{warned:?}");
    assert!(warned.iter().any(|m| m.contains("versions[1]") && m.contains("left out")), "{warned:?}");
    assert!(warned.iter().any(|m| m.contains("no-range-y")), "{warned:?}");
    let w = &first["warnings"][0];
    assert_eq!(w["source"], "npm");
    assert!(w["path"].as_str().unwrap().ends_with("GHSA-warn-0001-0001.json"), "{w}");
    assert!(w["step"].as_str().unwrap().starts_with("convert:"), "{w}");
    let manifest = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(ws.path().join("out/db/manifest.json")).unwrap()).unwrap()
    };
    assert_eq!(messages(&manifest()["warnings"]), warned);
    // the json:raw export has none, and says so
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("out/raw/manifest.json")).unwrap()).unwrap();
    assert_eq!(raw["warnings"], serde_json::json!([]));

    // a no-op build: every step cached, the warnings shown again
    let second = build_ok(ws.path(), &[]);
    assert_eq!(second["steps"]["executed"], 0, "{}", second["stepLog"]);
    assert_eq!(second["warnings"], first["warnings"]);
    assert_eq!(messages(&manifest()["warnings"]), warned);
    let text = run(ws.path(), &["build"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert_eq!(text.stderr.matches("warning: ").count(), 2, "{}", text.stderr);
    assert!(text.stderr.contains("no-range-y"), "{}", text.stderr);
    let ex = run(ws.path(), &["explain"]);
    assert!(ex.stdout.contains("no-range-y"), "{}", ex.stdout);
}

fn set_level(ws: &Path, profile: &str, level: u32) {
    let p = ws.join("profiles.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let head = format!("[profiles.{profile}]\n");
    let at = text.find(&head).unwrap() + head.len();
    let text = format!("{}compression-level = {level}\n{}", &text[..at], &text[at..]);
    std::fs::write(&p, text).unwrap();
}

#[test]
fn reasons_name_the_profile_key_that_changed() {
    let ws = sample_workspace();
    build_ok(ws.path(), &[]);
    set_level(ws.path(), "json-raw", 7);
    let plan = run(ws.path(), &["plan", "--json", "json-raw"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let runs: Vec<serde_json::Value> =
        plan.json().as_array().unwrap().iter().filter(|i| i["plan"] == "run").cloned().collect();
    assert!(!runs.is_empty());
    for r in &runs {
        assert_eq!(
            r["reason"],
            serde_json::json!({"reason": "params-changed", "keys": ["compression-level"]}),
            "{r}"
        );
    }
    let text = run(ws.path(), &["plan", "json-raw"]);
    assert!(text.stdout.contains(": compression-level changed"), "{}", text.stdout);
    assert!(!text.stdout.contains("parameters changed"), "{}", text.stdout);

    let r = build_ok(ws.path(), &["json-raw", "--explain"]);
    let ran: Vec<&serde_json::Value> =
        r["stepLog"].as_array().unwrap().iter().filter(|s| s["status"] == "executed").collect();
    // encode and bundle read the level; seal re-runs only because its input did
    for s in &ran {
        let r = &s["reason"];
        match s["action"].as_str().unwrap() {
            "encode-member" | "assemble-bundle" => {
                assert_eq!(*r, serde_json::json!({"reason": "params-changed", "keys": ["compression-level"]}))
            }
            _ => assert_eq!(r["reason"], "input-changed", "{s}"),
        }
    }
    assert!(ran.iter().any(|s| s["action"] == "assemble-bundle"), "{}", r["stepLog"]);
    let ex = run(ws.path(), &["explain"]);
    assert!(ex.stdout.contains("compression-level changed"), "{}", ex.stdout);
    let explained = run(ws.path(), &["build", "--explain", "json-raw"]);
    assert_eq!(explained.code, 0);
    // nothing ran: no reason lines, and the text is the plain line format
    assert!(!explained.stderr.contains("ran "), "{}", explained.stderr);
}

#[test]
fn plan_counts_a_republish_from_the_cache_as_work() {
    let ws = sample_workspace();
    build_ok(ws.path(), &[]);
    let quiet = run(ws.path(), &["plan", "--json"]);
    assert!(quiet.json().as_array().unwrap().iter().all(|i| i["plan"] == "cached"), "{}", quiet.stdout);
    // the export is changed behind the cache's back: every step is cached,
    // but a build would republish it
    std::fs::remove_file(ws.path().join("out/json-web/checksums.txt")).unwrap();
    let plan = run(ws.path(), &["plan", "--json"]);
    let items = plan.json();
    let publish: Vec<&serde_json::Value> =
        items.as_array().unwrap().iter().filter(|i| i["plan"] == "publish").collect();
    assert_eq!(publish.len(), 1, "{}", plan.stdout);
    assert_eq!(publish[0]["profile"], "json-web");
    let text = run(ws.path(), &["plan"]);
    assert!(text.stdout.contains("publish  json-web:"), "{}", text.stdout);
    assert!(text.stdout.contains("1 profile(s) to republish"), "{}", text.stdout);
    let r = build_ok(ws.path(), &[]);
    assert_eq!(r["steps"]["executed"], 0);
    assert_eq!(r["profiles"]["json-web"]["status"], "published");
    let after = run(ws.path(), &["plan", "--json"]);
    assert!(after.json().as_array().unwrap().iter().all(|i| i["plan"] == "cached"), "{}", after.stdout);
}

//! The cache never serves output of older code (issue 9 §1).
//!
//! - Every action declares the code its output bytes depend on
//!   (`Action::code`, see `src/code.rs`); each prefix matches a file and
//!   the modules those files use are declared too.
//! - `golden/action-outputs.json` maps `action@version` to the action's
//!   code fingerprint and a digest of the outputs it produced over the
//!   sample workspace and the Trivy fixtures: outputs that change while
//!   version and fingerprint stay the same name the action
//!   (nondeterminism or an undeclared dependency). Re-bless with
//!   `EXPORT_CENTER_BLESS=1` after a code change.
//! - A second binary (`--features fingerprint-probe`, built by
//!   scripts/test.sh, path in `EXPORT_CENTER_PROBE_BIN`) differs only in
//!   the code of `encode-member`: on the first binary's cache it re-runs
//!   exactly that action's steps, with reason `code-changed`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use export_center::cache::action::Lookup;
use export_center::cache::Cache;
use export_center::kinds;

/// Modules whose code cannot change an action's output bytes: storage
/// (blobs are verified by digest), resource limits, crash points, error
/// mapping, configuration types (they reach keys as parameters) and the
/// fingerprint table itself.
const NOT_OUTPUT: &[&str] = &["cache", "bounded", "crashpoint", "error", "profile", "code"];

fn src() -> PathBuf {
    repo().join("src")
}

/// Module path of a source file: `src/a/b.rs` → [a, b]; `src/a/mod.rs` → [a].
fn module_of(rel: &str) -> Vec<String> {
    let p = rel.trim_start_matches("src/").trim_end_matches(".rs");
    let mut v: Vec<String> = p.split('/').map(str::to_string).collect();
    if v.last().map(String::as_str) == Some("mod") {
        v.pop();
    }
    v
}

/// The file of the longest prefix of `segments` that is a module file.
fn resolve(segments: &[String]) -> Option<String> {
    for k in (1..=segments.len()).rev() {
        let base = segments[..k].join("/");
        for cand in [format!("src/{base}.rs"), format!("src/{base}/mod.rs")] {
            if repo().join(&cand).is_file() {
                return Some(cand);
            }
        }
    }
    None
}

fn ident(s: &str) -> String {
    s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The module files a source file uses (`crate::`, `super::`, `mod x;`),
/// outside its `#[cfg(test)]` tail; an action's own file that reads shards
/// (`cx.shard(`) uses `sources`.
fn uses(rel: &str, action_file: bool) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap();
    let own = module_of(rel);
    let mut out = BTreeSet::new();
    let mut paths: Vec<Vec<String>> = Vec::new();
    for (anchor, base) in [("crate::", Vec::new()), ("super::", own[..own.len().saturating_sub(1)].to_vec())]
    {
        for (i, _) in text.match_indices(anchor) {
            if anchor == "super::" && text[..i].ends_with("::") {
                continue;
            }
            let mut rest = &text[i + anchor.len()..];
            let mut segs = base.clone();
            loop {
                let id = ident(rest);
                if id.is_empty() {
                    break;
                }
                segs.push(id.clone());
                rest = &rest[id.len()..];
                if let Some(r) = rest.strip_prefix("::") {
                    rest = r;
                } else {
                    break;
                }
            }
            if let Some(list) = rest.strip_prefix('{') {
                let list = &list[..list.find('}').unwrap_or(list.len())];
                for item in list.split(',') {
                    let first: Vec<String> =
                        item.trim().split("::").map(ident).take_while(|s| !s.is_empty()).collect();
                    let mut p = segs.clone();
                    p.extend(first.into_iter().filter(|s| s != "self"));
                    paths.push(p);
                }
            } else {
                paths.push(segs);
            }
        }
    }
    // the action registry: its `mod` lines list the other actions (each
    // declares its own code), and its context only passes keyrings and
    // shard readers through: an action reading shards declares sources/.
    let registry = rel == "src/actions/mod.rs";
    if registry {
        paths.retain(|p| !matches!(p.first().map(String::as_str), Some("signing" | "sources")));
    }
    if action_file && text.contains("cx.shard(") {
        paths.push(vec!["sources".to_string()]);
    }
    for line in text.lines().filter(|_| !registry) {
        let l = line.trim();
        if let Some(name) = l.strip_prefix("pub mod ").or_else(|| l.strip_prefix("mod ")) {
            if let Some(name) = name.strip_suffix(';') {
                let mut p = own.clone();
                p.push(name.to_string());
                paths.push(p);
            }
        }
    }
    for p in paths {
        if p.is_empty() || NOT_OUTPUT.contains(&p[0].as_str()) {
            continue;
        }
        if let Some(f) = resolve(&p) {
            if f != rel {
                out.insert(f);
            }
        }
    }
    out
}

fn src_files() -> Vec<String> {
    walkdir::WalkDir::new(src())
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(repo()).unwrap().to_string_lossy().replace('\\', "/"))
        .collect()
}

#[test]
fn every_declared_code_prefix_matches_a_file() {
    let mut bad = Vec::new();
    for id in kinds::action_names() {
        let a = kinds::action(id).unwrap();
        assert!(a.code().len() >= 2, "{id}: declares too little code");
        assert!(a.code()[0].ends_with(".rs"), "{id}: the first entry is its own file (file!())");
        for p in export_center::code::unmatched(a.code()) {
            bad.push(format!("{id}: {p:?} matches no file under src/"));
        }
    }
    assert!(bad.is_empty(), "stale code declarations (a file moved?):\n{}", bad.join("\n"));
}

#[test]
fn declared_code_covers_every_module_it_uses() {
    let all = src_files();
    let mut bad = Vec::new();
    for id in kinds::action_names() {
        let decl = kinds::action(id).unwrap().code();
        let covered = |f: &str| decl.iter().any(|p| export_center::code::covers(p, f));
        let mut todo: Vec<String> = all.iter().filter(|f| covered(f)).cloned().collect();
        let mut seen: BTreeSet<String> = todo.iter().cloned().collect();
        while let Some(f) = todo.pop() {
            for used in uses(&f, f == decl[0]) {
                if !covered(&used) {
                    bad.push(format!("{id}: {f} uses {used}, which its code() does not declare"));
                } else if seen.insert(used.clone()) {
                    todo.push(used);
                }
            }
        }
    }
    bad.sort();
    bad.dedup();
    assert!(bad.is_empty(), "undeclared code dependencies:\n{}", bad.join("\n"));
}

#[test]
fn the_use_scanner_sees_imports() {
    // guards the test above against a scanner that finds nothing
    let u = uses("src/kinds/json_raw/bundle.rs", true);
    for want in ["src/canon.rs", "src/formats/tar.rs", "src/formats/manifest.rs", "src/actions/mod.rs"] {
        assert!(u.contains(want), "bundle.rs uses {want}; scanner found {u:?}");
    }
    let u = uses("src/kinds/trivy_db/mod.rs", false);
    assert!(u.contains("src/kinds/trivy_db/model/mod.rs"), "{u:?}");
}

/// Per action id: every output `name=digest` its steps produced in the
/// build reported by `report` on the cache at `cache`.
fn outputs_by_action(cache: &Path, report: &serde_json::Value, into: &mut BTreeMap<String, Vec<String>>) {
    let cache = Cache::open(cache).unwrap();
    for s in report["stepLog"].as_array().unwrap() {
        let step = s["id"].as_str().unwrap();
        let rec = cache.last_record(step).unwrap_or_else(|| panic!("no step record for {step}"));
        let Lookup::Hit(entry) = cache.lookup(&rec.key) else { panic!("no cache entry for {step}") };
        let list = into.entry(rec.action.clone()).or_default();
        for (name, o) in entry.outputs {
            list.push(format!("{name}={}", o.digest.hex()));
        }
    }
}

fn golden_path() -> PathBuf {
    repo().join("golden/action-outputs.json")
}

#[test]
fn action_outputs_change_only_with_version_or_code() {
    let mut produced: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let ws = sample_workspace();
    let r = build_ok(ws.path(), &[]);
    outputs_by_action(&ws.path().join("cache"), &r, &mut produced);
    let fx = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/trivy"), fx.path());
    let r = build_ok(fx.path(), &[]);
    outputs_by_action(&fx.path().join("cache"), &r, &mut produced);

    let mut table = serde_json::Map::new();
    for (id, mut list) in produced {
        let a = kinds::action(&id).unwrap();
        list.sort();
        let digest = export_center::digest::Digest::of(list.join("\n").as_bytes()).hex();
        table.insert(
            format!("{id}@{}", a.version()),
            serde_json::json!({"fingerprint": a.fingerprint().hex(), "outputs": list.len(), "digest": digest}),
        );
    }
    let now = serde_json::Value::Object(table);
    if std::env::var("EXPORT_CENTER_BLESS").as_deref() == Ok("1") {
        std::fs::write(golden_path(), serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(golden_path()).expect("golden/action-outputs.json (bless it)");
    let old: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (old, now) = (old.as_object().unwrap(), now.as_object().unwrap());
    let mut undeclared = Vec::new();
    let mut stale = Vec::new();
    for (k, v) in now {
        match old.get(k) {
            None => stale.push(format!("{k}: not in the table (new action or version)")),
            Some(o) if o["fingerprint"] != v["fingerprint"] => {
                stale.push(format!("{k}: code fingerprint changed"));
            }
            Some(o) if o != v => undeclared.push(format!(
                "{k}: its outputs changed while its version and code fingerprint did not: \
                 nondeterminism, or code it depends on that its code() does not declare"
            )),
            Some(_) => {}
        }
    }
    stale.extend(old.keys().filter(|k| !now.contains_key(*k)).map(|k| format!("{k}: no longer built")));
    assert!(undeclared.is_empty(), "{}", undeclared.join("\n"));
    assert!(
        stale.is_empty(),
        "{}\nIf an action's output bytes changed, bump its version; then re-bless with \
         EXPORT_CENTER_BLESS=1 cargo test --release --locked --test fingerprint",
        stale.join("\n")
    );
}

/// The probe binary, or None (SKIP) unless verifiers are required.
fn probe_bin() -> Option<PathBuf> {
    match std::env::var_os("EXPORT_CENTER_PROBE_BIN") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var("EXPORT_CENTER_REQUIRE_VERIFIERS").as_deref() != Ok("1"),
                "EXPORT_CENTER_REQUIRE_VERIFIERS=1 but EXPORT_CENTER_PROBE_BIN is not set (scripts/test.sh builds it)"
            );
            println!(
                "SKIP: EXPORT_CENTER_PROBE_BIN not set (scripts/test.sh builds it with \
                 --features fingerprint-probe)"
            );
            None
        }
    }
}

fn build_with(bin: &Path, ws: &Path) -> serde_json::Value {
    let r = finish(
        std::process::Command::new(bin)
            .arg("-C")
            .arg(ws)
            .args(["build", "--json"])
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("EXPORT_CENTER_CRASH_AT")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{} build failed:\n{}\n{}", bin.display(), r.stdout, r.stderr);
    r.json()
}

#[test]
fn a_binary_with_other_code_for_one_action_reruns_only_its_steps() {
    let Some(probe) = probe_bin() else { return };
    let ws = sample_workspace();
    let first = build_with(Path::new(BIN), ws.path());
    assert!(!executed(&first).is_empty());
    let before = out_files(ws.path());
    let encode: BTreeSet<String> = first["stepLog"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "encode-member")
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!encode.is_empty());

    let second = build_with(&probe, ws.path());
    let ran = executed(&second);
    let ran_ids: BTreeSet<String> = ran.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ran_ids, encode, "exactly the encode-member steps re-run (outputs equal: early cutoff)");
    for (id, reason) in &ran {
        assert_eq!(
            reason,
            &serde_json::json!({"reason": "code-changed", "action": "encode-member"}),
            "step {id}"
        );
    }
    assert_eq!(out_files(ws.path()), before, "the probe changes code, not bytes");
    let explain =
        finish(std::process::Command::new(&probe).arg("-C").arg(ws.path()).arg("explain").output().unwrap());
    assert!(explain.stdout.contains("code of encode-member changed"), "{}", explain.stdout);

    // back to the first binary: its entries are still in the cache
    let third = build_with(Path::new(BIN), ws.path());
    assert_eq!(executed(&third), vec![], "the first binary's entries are reused");
}

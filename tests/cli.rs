//! Integration tests: the real binary on real files. One binary, grouped by
//! invariant (see ../shared/design/ARCHITECTURE.md "Invariants").

mod common;

use std::path::Path;

use common::*;

// ---------------------------------------------------------------- golden

/// `golden/<profile>/manifest.json` and `golden/<profile>/listing.txt` hold
/// the expected export of the default workspace. Re-bless with
/// `EXPORT_CENTER_BLESS=1 cargo test --test cli golden`.
#[test]
fn golden_default_workspace() {
    let ws = sample_workspace();
    build_ok(ws.path(), &[]);
    let bless = std::env::var("EXPORT_CENTER_BLESS").is_ok_and(|v| v == "1");
    let profiles: Vec<String> = std::fs::read_dir(ws.path().join("out"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(profiles.len() >= 2, "both default profiles published: {profiles:?}");
    for p in profiles {
        let out = ws.path().join("out").join(&p);
        let manifest = std::fs::read(out.join("manifest.json")).unwrap();
        let listing = listing(&out);
        let gdir = repo().join("golden").join(&p);
        if bless {
            std::fs::create_dir_all(&gdir).unwrap();
            std::fs::write(gdir.join("manifest.json"), &manifest).unwrap();
            std::fs::write(gdir.join("listing.txt"), &listing).unwrap();
            continue;
        }
        let want_manifest = std::fs::read(gdir.join("manifest.json"))
            .unwrap_or_else(|_| panic!("golden/{p}/manifest.json missing: bless with EXPORT_CENTER_BLESS=1"));
        assert!(manifest == want_manifest, "out/{p}/manifest.json differs from golden/{p}/manifest.json (re-bless with EXPORT_CENTER_BLESS=1 if intended)");
        let want_listing = std::fs::read_to_string(gdir.join("listing.txt")).unwrap();
        assert_eq!(listing, want_listing, "listing of out/{p} differs from golden");
    }
}

/// `path size sha256` of every published file and every bundle member.
fn listing(out: &Path) -> String {
    let mut lines = Vec::new();
    let mut names: Vec<String> = walkdir::WalkDir::new(out)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(out).unwrap().display().to_string())
        .collect();
    names.sort();
    for n in names {
        let b = std::fs::read(out.join(&n)).unwrap();
        lines.push(format!("{n} {} {}", b.len(), sha256_hex(&b)));
        if n.ends_with(".tar.zst") || n.ends_with(".tar.gz") {
            let plain = if n.ends_with(".tar.gz") {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&b[..]), &mut v).unwrap();
                v
            } else {
                zstd::decode_all(&b[..]).unwrap()
            };
            let mut ar = tar::Archive::new(&plain[..]);
            for e in ar.entries().unwrap() {
                let mut e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                lines.push(format!("{n}:{path} {} {}", data.len(), sha256_hex(&data)));
            }
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn bundle_members_are_canonical_sorted_jsonl() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-raw"]);
    let b = std::fs::read(ws.path().join("out/json-raw/json-raw.tar.zst")).unwrap();
    let plain = zstd::decode_all(&b[..]).unwrap();
    let mut ar = tar::Archive::new(&plain[..]);
    let mut types = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), 1735689600, "pinned mtime");
        assert_eq!((e.header().uid().unwrap(), e.header().gid().unwrap()), (0, 0));
        assert_eq!(e.header().mode().unwrap(), 0o644);
        let path = e.path().unwrap().display().to_string();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        let mut ids = Vec::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let canon = String::from_utf8(export_center::canon::to_vec(&v)).unwrap();
            assert_eq!(canon, line, "record is canonical JSON");
            ids.push(v["id"].as_str().unwrap().to_string());
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "{path}: records sorted by id");
        *types.entry(path.split('/').next().unwrap().to_string()).or_insert(0) += ids.len();
    }
    assert_eq!(types.get("advisories"), Some(&40));
    assert_eq!(types.get("vex"), Some(&5));
    assert_eq!(types.get("sboms"), Some(&2));
}

#[test]
fn selectors_narrow_advisories_only() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-web"]);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("out/json-web/manifest.json")).unwrap())
            .unwrap();
    let b = std::fs::read(ws.path().join("out/json-web/json-web.tar.zst")).unwrap();
    let plain = zstd::decode_all(&b[..]).unwrap();
    let mut ar = tar::Archive::new(&plain[..]);
    let mut vex = 0;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if path.starts_with("advisories/") {
                let modified = v["document"]["modified"].as_str().unwrap();
                assert!(modified >= "2024-06-01", "{} modified {modified}", v["id"]);
                let eco = v["document"]["affected"][0]["package"]["ecosystem"].as_str().unwrap();
                assert!(eco == "PyPI" || eco == "npm", "{eco}");
            } else {
                vex += 1;
            }
        }
    }
    assert_eq!(vex, 5, "VEX documents are carried whole");
    assert_eq!(m["selectors"]["ecosystems"], serde_json::json!(["PyPI", "npm"]));
}

// ---------------------------------------------------------------- reproducible

#[test]
fn two_builds_in_fresh_caches_are_byte_identical() {
    let a = sample_workspace();
    let b = sample_workspace();
    build_ok(a.path(), &["--jobs", "1"]);
    // different working directory (relative -C), TZ, umask, locale and thread count
    let parent = b.path().parent().unwrap();
    let rel = b.path().file_name().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask 077; exec {BIN} -C {} build --jobs 2", rel.to_string_lossy()))
        .current_dir(parent)
        .env("TZ", "Pacific/Kiritimati")
        .env("LC_ALL", "C")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fa = out_files(a.path());
    let fb = out_files(b.path());
    assert_eq!(fa.iter().map(|f| &f.0).collect::<Vec<_>>(), fb.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{name} differs between the two builds");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(b.path().join("out/json-raw/manifest.json")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o644, "published files ignore the umask");
}

#[test]
fn source_date_epoch_env_overrides_the_workspace_time() {
    let ws = sample_workspace();
    let r = finish(
        cmd(ws.path()).args(["build", "json-web"]).env("SOURCE_DATE_EPOCH", "1700000000").output().unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("out/json-web/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["createdAt"], "2023-11-14T22:13:20Z");
}

// ---------------------------------------------------------------- minimal

#[test]
fn noop_build_runs_nothing_and_reads_no_input() {
    let ws = sample_workspace();
    let first = build_ok(ws.path(), &[]);
    assert_eq!(first["steps"]["executed"], first["steps"]["total"]);
    let before = out_files(ws.path());
    let second = build_ok(ws.path(), &[]);
    assert_eq!(second["steps"]["executed"], 0);
    assert_eq!(second["steps"]["cached"], second["steps"]["total"]);
    assert_eq!(second["inputs"]["filesRead"], 0, "no unchanged input file is read");
    assert_eq!(second["profiles"]["json-raw"]["status"], "up-to-date");
    assert!(before == out_files(ws.path()));
}

#[test]
fn touching_a_file_rereads_it_but_runs_nothing() {
    let ws = sample_workspace();
    build_ok(ws.path(), &[]);
    let f = ws.path().join("samples/osv/pypi/PYSEC-2024-101.json");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes).unwrap(); // new mtime/ctime, same content
    let r = build_ok(ws.path(), &[]);
    assert_eq!(r["inputs"]["filesRead"], 1);
    assert_eq!(r["steps"]["executed"], 0, "same digest: nothing downstream is dirty");
}

#[test]
fn a_few_changed_files_are_remembered_without_rewriting_the_stat_table() {
    // the stat cache writes the changed entries to an overlay: each build
    // after a change reads only what changed since, not what changed before
    let ws = sample_workspace();
    build_ok(ws.path(), &[]);
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    let rewrite = |name: &str, tag: &str| {
        let f = ws.path().join("samples/osv/pypi").join(name);
        edit_summary(&f, tag);
        std::fs::File::options().write(true).open(&f).unwrap().set_modified(past).unwrap();
    };
    let table = |ws: &Path| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(ws.join("cache/stat"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".bin"))
            .map(|e| {
                use std::os::unix::fs::MetadataExt;
                (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().ino())
            })
            .collect();
        v.sort();
        v
    };
    let before = table(ws.path());
    rewrite("PYSEC-2024-101.json", "first change");
    let r = build_ok(ws.path(), &[]);
    assert_eq!(r["inputs"]["filesRead"], 1);
    let after: Vec<(String, u64)> = table(ws.path());
    assert!(after.iter().any(|(n, _)| n.ends_with(".overlay.bin")), "an overlay: {after:?}");
    for (n, ino) in &before {
        assert!(after.contains(&(n.clone(), *ino)), "{n} was not rewritten (same inode): {after:?}");
    }
    let others: Vec<String> = std::fs::read_dir(ws.path().join("samples/osv/pypi"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "PYSEC-2024-101.json")
        .collect();
    rewrite(&others[0], "second change");
    let r = build_ok(ws.path(), &[]);
    assert_eq!(r["inputs"]["filesRead"], 1, "the first changed file is known from the overlay");
    let r = build_ok(ws.path(), &[]);
    assert_eq!(r["inputs"]["filesRead"], 0);
    assert_eq!(r["steps"]["executed"], 0);
}

fn edit_summary(path: &Path, new: &str) -> Vec<u8> {
    let orig = std::fs::read(path).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&orig).unwrap();
    v["summary"] = serde_json::Value::String(new.into());
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    orig
}

/// The shard of a pypi sample (profiles.toml pins `shards = 4` for pypi),
/// assigned over the folder's listing.
fn shard_of(rel: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("samples/osv/pypi"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let shards = export_center::sources::assign(&names, 4);
    format!("{:04}", shards[names.iter().position(|n| n == rel).unwrap()])
}

#[test]
fn one_changed_advisory_reruns_only_its_shard_then_revert_is_cached() {
    let ws = sample_workspace();
    build_ok(ws.path(), &[]);
    let first = out_files(ws.path());
    let file = ws.path().join("samples/osv/pypi/PYSEC-2024-101.json");
    let orig = edit_summary(&file, "edited summary");
    let r = build_ok(ws.path(), &["--explain"]);
    let shard = shard_of("PYSEC-2024-101.json");
    let mut ran = executed(&r);
    ran.sort_by(|a, b| a.0.cmp(&b.0));
    let ids: Vec<&str> = ran.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "bundle:json-raw".to_string(),
            "bundle:json-web".to_string(),
            "bundle:verdicts".to_string(),
            format!("convert:trivy-db/pypi/{shard}"),
            "db:trivy-db".to_string(),
            format!("encode:json-raw/pypi/{shard}"),
            format!("encode:json-web/pypi/{shard}"),
            format!("encode:verdicts/pypi/{shard}"),
            // json:policy: a summary is not in the advisory index, so no
            // slice changes and nothing is re-evaluated
            format!("facts:pypi/{shard}"),
            "index:verdicts".to_string(),
            format!("parse:pypi/{shard}"),
            "seal:json-raw".to_string(),
            "seal:json-web".to_string(),
            "seal:trivy-db".to_string(),
            "seal:verdicts".to_string(),
        ],
        "only the edited shard and what depends on it run"
    );
    let reason = |id: &str| ran.iter().find(|(i, _)| i == id).unwrap().1.clone();
    assert_eq!(
        reason(&format!("parse:pypi/{shard}")),
        serde_json::json!({"reason": "input-changed", "inputs": ["docs"]})
    );
    assert_eq!(
        reason(&format!("encode:json-raw/pypi/{shard}")),
        serde_json::json!({"reason": "input-changed", "inputs": ["records"]})
    );
    // the bundle sees new member bytes and a new source digest
    assert_eq!(reason("bundle:json-raw")["reason"], "params-changed");
    // plan on the edited tree now says nothing to do
    let plan = run(ws.path(), &["plan", "--json"]);
    assert_eq!(plan.code, 0);
    assert!(plan.json().as_array().unwrap().iter().all(|s| s["plan"] == "cached"));
    // explain shows the last run's reasons
    let ex = run(ws.path(), &["explain", "--json"]);
    assert_eq!(ex.code, 0, "{}", ex.stderr);
    assert_eq!(ex.json()["steps"].as_array().unwrap().len(), 15);

    std::fs::write(&file, orig).unwrap();
    let plan = run(ws.path(), &["plan"]);
    assert!(
        plan.stdout.contains(&format!("cached   parse:pypi/{shard}")),
        "reverted shard is in the cache:\n{}",
        plan.stdout
    );
    let r = build_ok(ws.path(), &[]);
    assert_eq!(r["steps"]["executed"], 0, "revert is served from the cache");
    assert_eq!(r["profiles"]["json-raw"]["status"], "published");
    assert_eq!(first, out_files(ws.path()), "revert gives the first build's bytes");
}

#[test]
fn early_cutoff_unselected_change_does_not_dirty_the_profile_members() {
    let ws = sample_workspace();
    build_ok(ws.path(), &[]);
    // PYSEC-2023-210 was modified before 2024-06-01: json-web does not select it
    let file = ws.path().join("samples/osv/pypi/PYSEC-2023-210.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(v["modified"].as_str().unwrap() < "2024-06-01");
    edit_summary(&file, "changed, but not selected by json-web");
    let shard = shard_of("PYSEC-2023-210.json");
    let r = build_ok(ws.path(), &[]);
    let ran = executed(&r);
    let web_encode = format!("encode:json-web/pypi/{shard}");
    assert!(ran.iter().any(|(id, _)| *id == web_encode), "the profile's encode re-runs on the new records");
    let bundle =
        ran.iter().find(|(id, _)| id == "bundle:json-web").expect("bundle re-runs for the new source digest");
    assert_eq!(bundle.1["reason"], "params-changed", "its member inputs are unchanged: early cutoff");
}

#[test]
fn gc_then_build_rebuilds_with_a_typed_reason() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-web"]);
    let r = run(ws.path(), &["cache", "gc", "--max-size", "0", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json()["entriesRemoved"].as_u64().unwrap() > 0);
    let stats = run(ws.path(), &["cache", "stats", "--json"]).json();
    assert_eq!(stats["actionEntries"], 0);
    let b = build_ok(ws.path(), &["json-web"]);
    let ran = executed(&b);
    assert!(!ran.is_empty());
    assert!(ran.iter().all(|(_, r)| r["reason"] == "cache-entry-missing"), "{ran:?}");
}

// ---------------------------------------------------------------- never poisoned

#[test]
fn corrupt_blob_is_detected_and_rebuilt_never_served() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-web"]);
    let good = out_files(ws.path());
    // flip a byte in every blob of the cache, then force a republish
    for e in walkdir::WalkDir::new(ws.path().join("cache/cas")) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let mut b = std::fs::read(e.path()).unwrap();
            if !b.is_empty() {
                b[0] ^= 0xff;
                std::fs::write(e.path(), b).unwrap();
            }
        }
    }
    std::fs::remove_dir_all(ws.path().join("out")).unwrap();
    let r = build_ok(ws.path(), &["json-web"]);
    assert!(r["attempts"].as_u64().unwrap() > 1, "corruption was met and rebuilt: {r}");
    assert!(good == out_files(ws.path()), "rebuilt export equals the original");
    let v = run(ws.path(), &["cache", "verify"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

fn reference_output() -> Vec<(String, Vec<u8>)> {
    let ws = sample_workspace();
    build_ok(ws.path(), &[]);
    out_files(ws.path())
}

#[test]
fn crash_at_injected_points_then_rebuild_is_identical_and_cache_clean() {
    let reference = reference_output();
    for point in [
        "after-blob-rename:7",
        "before-ac-commit:5",
        "after-atomic-write:20",
        "after-step:30",
        "publish-staged:2",
    ] {
        let ws = sample_workspace();
        let r = finish(
            cmd(ws.path())
                .args(["build", "--jobs", "2"])
                .env("EXPORT_CENTER_CRASH_AT", point)
                .output()
                .unwrap(),
        );
        assert_ne!(r.code, 0, "crash point {point} was reached");
        assert!(r.stderr.contains("crash injected"), "{point}: {}", r.stderr);
        let v = run(ws.path(), &["cache", "verify"]);
        assert_eq!(v.code, 0, "after a crash at {point} the cache has no bad entry:\n{}", v.stdout);
        build_ok(ws.path(), &[]);
        assert!(reference == out_files(ws.path()), "rebuild after a crash at {point} differs");
    }
}

#[test]
fn crash_while_replacing_an_export_leaves_old_or_new_never_a_mix() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-raw"]);
    let old = out_files(ws.path());
    edit_summary(&ws.path().join("samples/osv/npm/GHSA-4x9m-r7qv-2hcw.json"), "new text");
    for point in ["publish-staged", "publish-swapped"] {
        let r = finish(
            cmd(ws.path()).args(["build", "json-raw"]).env("EXPORT_CENTER_CRASH_AT", point).output().unwrap(),
        );
        assert_ne!(r.code, 0);
        let now = out_files(ws.path());
        let v = run(ws.path(), &["verify", ws.path().join("out/json-raw").to_str().unwrap()]);
        assert_eq!(v.code, 0, "after a crash at {point} the live export verifies:\n{}", v.stdout);
        if point == "publish-staged" {
            assert!(now == old, "crash before the swap keeps the old export");
        } else {
            assert!(now != old, "crash after the swap shows the new export");
        }
    }
    build_ok(ws.path(), &["json-raw"]);
    let leftovers: Vec<_> = std::fs::read_dir(ws.path().join("out"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".staging"))
        .collect();
    assert!(leftovers.is_empty(), "staging folders are cleaned up");
}

#[test]
fn kill_9_at_random_moments_then_rebuild_is_identical() {
    let reference = reference_output();
    for delay_ms in [5u64, 20, 40, 80, 120] {
        let ws = sample_workspace();
        let mut child = cmd(ws.path())
            .args(["build", "--jobs", "2"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let v = run(ws.path(), &["cache", "verify"]);
        assert_eq!(v.code, 0, "after kill -9 at {delay_ms} ms:\n{}", v.stdout);
        build_ok(ws.path(), &[]);
        assert!(reference == out_files(ws.path()), "rebuild after kill -9 at {delay_ms} ms differs");
    }
}

#[test]
fn two_builds_on_one_cache_at_once_both_succeed() {
    // Both children are spawned before either is waited for, and the test
    // proves they overlapped: the second was running (spawn returns after
    // exec) while the first had not yet exited. A workspace too small to
    // overlap is retried with twice the documents.
    for docs in [2_000, 4_000, 8_000, 16_000] {
        let reference = bigger_sample_workspace(docs);
        build_ok(reference.path(), &[]);
        let ws = bigger_sample_workspace(docs);
        let quiet = |ws: &Path| {
            let mut c = cmd(ws);
            c.args(["build", "--jobs", "2"]).stdout(std::process::Stdio::null());
            c.stderr(std::process::Stdio::piped());
            c
        };
        let mut a = quiet(ws.path()).spawn().unwrap();
        let b = quiet(ws.path()).spawn().unwrap();
        let overlapped = a.try_wait().unwrap().is_none();
        let b = b.wait_with_output().unwrap();
        let a = a.wait_with_output().unwrap();
        assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
        assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
        if !overlapped {
            println!("{docs} documents: the first build ended before the second started; retrying bigger");
            continue;
        }
        assert!(out_files(reference.path()) == out_files(ws.path()), "concurrent builds changed the output");
        let v = run(ws.path(), &["cache", "verify"]);
        assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
        return;
    }
    panic!("the two builds never ran at the same time, even with 16000 documents");
}

/// The sample workspace plus `n` generated pypi advisories (copies of one
/// sample with new ids), so a build takes long enough to overlap another.
fn bigger_sample_workspace(n: usize) -> tempfile::TempDir {
    let ws = sample_workspace();
    let dir = ws.path().join("samples/osv/pypi");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("PYSEC-2024-105.json")).unwrap()).unwrap();
    for i in 0..n {
        doc["id"] = format!("PYSEC-9999-{i}").into();
        let path = dir.join(format!("GEN-{i}.json"));
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        age(&path);
    }
    ws
}

// ---------------------------------------------------------------- honest failure

fn fixture(rel: &str) -> std::path::PathBuf {
    repo().join("tests/fixtures").join(rel)
}

fn assert_refused(ws: &Path, needle: &str) {
    let r = run(ws, &["build"]);
    assert_eq!(r.code, 2, "exit 2 expected; stderr:\n{}", r.stderr);
    assert!(r.stderr.contains(needle), "message names {needle:?}:\n{}", r.stderr);
    assert!(!ws.join("out/p").exists(), "nothing published");
}

#[test]
fn malformed_json_fails_with_file_named() {
    let ws = one_source_workspace(&fixture("bad/malformed-json/osv"), "");
    assert_refused(ws.path(), "data/osv/BAD-1.json: malformed JSON");
}

#[test]
fn wrong_schema_fails_with_field_named() {
    let ws = one_source_workspace(&fixture("bad/wrong-schema/osv"), "");
    assert_refused(ws.path(), "data/osv/BAD-2.json: $.id: expected a string, found a number");
}

#[test]
fn empty_file_fails() {
    let ws = one_source_workspace(&fixture("bad/empty-file/osv"), "");
    assert_refused(ws.path(), "data/osv/BAD-3.json: empty document");
}

#[test]
fn path_traversal_member_is_refused() {
    let ws = one_source_workspace(&fixture("bad/path-traversal/osv.tar"), "");
    assert_refused(ws.path(), "member ../escape.json: member path with '..' refused");
}

#[test]
fn absolute_member_is_refused() {
    let ws = one_source_workspace(&fixture("bad/absolute-path/osv.tar"), "");
    assert_refused(ws.path(), "absolute member path refused");
}

#[test]
fn symlink_member_is_refused() {
    let ws = one_source_workspace(&fixture("bad/symlink-member/osv.tar"), "");
    assert_refused(ws.path(), "member link.json: link members are refused");
}

#[test]
fn symlink_in_a_directory_source_is_refused() {
    let ws = one_source_workspace(&fixture("good/osv.tar.gz"), "");
    let dir = ws.path().join("data/dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("link.json")).unwrap();
    let text = std::fs::read_to_string(ws.path().join("profiles.toml"))
        .unwrap()
        .replace("data/osv.tar.gz", "data/dir");
    std::fs::write(ws.path().join("profiles.toml"), text).unwrap();
    assert_refused(ws.path(), "link.json: is a symbolic link");
}

#[test]
fn bad_input_leaves_the_previous_export_untouched() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-web"]);
    let before = out_files(ws.path());
    std::fs::write(ws.path().join("samples/osv/npm/BROKEN.json"), b"{\"id\": ").unwrap();
    let r = run(ws.path(), &["build", "json-web"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("samples/osv/npm/BROKEN.json: malformed JSON"), "{}", r.stderr);
    assert!(before == out_files(ws.path()), "previous export untouched");
    // --allow-invalid skips it and lists it
    let ok = build_ok(ws.path(), &["json-web", "--allow-invalid"]);
    assert_eq!(ok["profiles"]["json-web"]["rejected"], 1);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("out/json-web/manifest.json")).unwrap())
            .unwrap();
    let rej = m["rejected"].as_array().unwrap();
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0]["path"], "samples/osv/npm/BROKEN.json");
    assert!(rej[0]["reason"].as_str().unwrap().starts_with("malformed JSON"));
}

#[test]
fn archives_gz_and_zst_give_the_same_records() {
    let gz = one_source_workspace(&fixture("good/osv.tar.gz"), "");
    let zst = one_source_workspace(&fixture("good/osv.tar.zst"), "");
    build_ok(gz.path(), &[]);
    build_ok(zst.path(), &[]);
    let m = |ws: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(ws.join("out/p/manifest.json")).unwrap()).unwrap()
    };
    assert_eq!(m(gz.path())["contents"], m(zst.path())["contents"]);
    assert_eq!(m(gz.path())["rerunHash"], m(zst.path())["rerunHash"]);
    let recs: u64 =
        m(gz.path())["contents"].as_array().unwrap().iter().map(|e| e["records"].as_u64().unwrap()).sum();
    assert_eq!(recs, 3);
    // an unchanged archive is not read again
    let again = build_ok(zst.path(), &[]);
    assert_eq!(again["inputs"]["filesRead"], 0);
    assert_eq!(again["steps"]["executed"], 0);
}

#[test]
fn profile_errors_name_file_line_and_key() {
    let ws = sample_workspace();
    let p = ws.path().join("profiles.toml");
    let orig = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        orig.replace("inputs = [\"pypi\", \"npm\", \"openvex\", \"csaf\"]", "inputs = [\"pypi\", \"nope\"]"),
    )
    .unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("profiles.toml:")
            && r.stderr.contains("profiles.json-web.inputs")
            && r.stderr.contains("\"nope\""),
        "{}",
        r.stderr
    );
    std::fs::write(&p, orig.replace("[workspace]", "[workspace]\ncolour = \"blue\"")).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("profiles.toml") && r.stderr.contains("line 5") && r.stderr.contains("colour"),
        "{}",
        r.stderr
    );
    std::fs::write(&p, orig.replace("kind = \"json:raw\"", "kind = \"json:cooked\"")).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown kind \"json:cooked\""), "{}", r.stderr);
    std::fs::write(&p, &orig).unwrap();
    let r = run(ws.path(), &["build", "no-such-profile"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no profile named \"no-such-profile\""), "{}", r.stderr);
    let r = run(ws.path(), &["build", "--jobs", "many"]);
    assert_eq!(r.code, 2, "usage errors exit 2");
}

#[test]
fn bad_rule_files_are_errors_naming_the_path() {
    let ws = sample_workspace();
    std::fs::create_dir_all(ws.path().join("rules")).unwrap();
    std::fs::write(
        ws.path().join("rules/json-raw.toml"),
        "kind = \"json:raw\"\nversion = 2\n[[step]]\nname = \"parse\"\naction = \"teleport\"\nfor-each = \"shard\"\n",
    )
    .unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("rules/json-raw.toml: step \"parse\": unknown action \"teleport\""),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------- verify

#[test]
fn verify_detects_tampering_with_exit_3() {
    let ws = sample_workspace();
    build_ok(ws.path(), &["json-web"]);
    let out = ws.path().join("out/json-web");
    let verify = |ws: &Path| run(ws, &["verify", out.to_str().unwrap(), "--json"]);
    assert_eq!(verify(ws.path()).code, 0);
    let bundle = out.join("json-web.tar.zst");
    let orig = std::fs::read(&bundle).unwrap();
    let mut b = orig.clone();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&bundle, &b).unwrap();
    let r = verify(ws.path());
    assert_eq!(r.code, 3);
    assert!(r.json()["problems"].as_array().unwrap().iter().any(|p| p["file"] == "json-web.tar.zst"));
    std::fs::write(&bundle, &orig).unwrap();
    std::fs::write(out.join("extra.txt"), b"hi").unwrap();
    let r = verify(ws.path());
    assert_eq!(r.code, 3);
    assert!(r.stdout.contains("extra.txt"));
    std::fs::remove_file(out.join("extra.txt")).unwrap();
    let m = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    std::fs::write(out.join("manifest.json"), m.replacen("\"records\": 1", "\"records\": 2", 1)).unwrap();
    let r = verify(ws.path());
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(r.stdout.contains("manifest.json"));
    std::fs::write(out.join("manifest.json"), &m).unwrap();
    std::fs::remove_file(out.join("checksums.txt")).unwrap();
    assert_eq!(verify(ws.path()).code, 3);
}

// ---------------------------------------------------------------- graph

#[test]
fn graph_prints_dot_and_json() {
    let ws = sample_workspace();
    let dot = run(ws.path(), &["graph", "json-web"]);
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    assert!(dot.stdout.starts_with("digraph") && dot.stdout.contains("\"bundle:json-web\""));
    let j = run(ws.path(), &["graph", "json-web", "--format", "json"]).json();
    let steps = j["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["action"] == "assemble-bundle"));
    // shared parse steps appear once across profiles
    let all = run(ws.path(), &["graph", "--format", "json"]).json();
    let parse_ids: Vec<_> = all["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "parse-documents")
        .map(|s| s["id"].clone())
        .collect();
    let distinct: std::collections::BTreeSet<String> = parse_ids.iter().map(|id| id.to_string()).collect();
    assert!(!parse_ids.is_empty());
    assert_eq!(parse_ids.len(), distinct.len(), "a parse step listed twice: {parse_ids:?}");
    assert!(all["steps"].as_array().unwrap().iter().any(|s| s["profiles"].as_array().unwrap().len() == 2));
}

// ---------------------------------------------------------------- real corpus

/// `../shared/data` (or `EXPORT_CENTER_CORPUS`): real OSV, OpenVEX, CSAF,
/// CycloneDX and SPDX. Every document must build, and every record must
/// carry its upstream document unchanged in meaning.
#[test]
fn real_corpus_builds_and_records_match_documents() {
    let Some(data) = corpus("real_corpus_builds_and_records_match_documents") else {
        return;
    };
    // (name, format, path under data, include glob suffix, exclude prefix)
    let sources: &[(&str, &str, &str, &str, &str)] = &[
        ("go", "osv", "osv/go-vulndb.tar.zst", ".json", ""),
        ("rustsec", "osv", "osv/rustsec.tar.zst", ".json", ""),
        ("pypa", "osv", "osv/pypa.tar.zst", ".json", ""),
        ("bitnami", "osv", "osv/bitnami-vulndb.tar.zst", ".json", ""),
        ("k8s", "osv", "osv/k8s-cve-feed-osv.tar.zst", ".json", ""),
        ("loopback", "osv", "osv/npm-loopback", ".json", ""),
        ("vexhub", "openvex", "vex/openvex/vexhub.tar.zst", ".openvex.json", ""),
        ("openvex", "openvex", "vex/openvex", ".json", "vexhub-sample/"),
        ("csaf", "csaf", "vex/csaf", ".json", ""),
        ("cdx-vex", "cyclonedx", "vex/cyclonedx/bom-examples-vex.tar.zst", ".json", ""),
        ("cdx-vex-spec", "cyclonedx", "vex/cyclonedx/spec-tests", ".json", ""),
        ("cdx-sbom", "cyclonedx", "sbom/cyclonedx/bom-examples-sbom.tar.zst", ".json", ""),
        ("cdx-sbom-spec", "cyclonedx", "sbom/cyclonedx/spec-tests", ".json", ""),
        ("spdx", "spdx", "sbom/spdx/spdx-examples.tar.zst", ".json", ""),
    ];
    let ws = tempfile::tempdir().unwrap();
    let mut toml = String::from("[workspace]\nsource-date-epoch = 1735689600\n");
    let mut originals: std::collections::HashMap<(String, String), serde_json::Value> = Default::default();
    let mut counts = std::collections::BTreeMap::new();
    for (name, format, rel, suffix, exclude) in sources {
        let path = data.join(rel);
        toml.push_str(&format!(
            "[sources.{name}]\nformat = \"{format}\"\npath = \"{}\"\ninclude = [\"**/*{suffix}\"]\n",
            path.display()
        ));
        if !exclude.is_empty() {
            toml.push_str(&format!("exclude = [\"{exclude}**\"]\n"));
        }
        let mut docs: Vec<(String, Vec<u8>)> = Vec::new();
        if path.is_dir() {
            for e in walkdir::WalkDir::new(&path) {
                let e = e.unwrap();
                let r = e.path().strip_prefix(&path).unwrap().display().to_string();
                if e.file_type().is_file()
                    && r.ends_with(suffix)
                    && (exclude.is_empty() || !r.starts_with(exclude))
                {
                    docs.push((r, std::fs::read(e.path()).unwrap()));
                }
            }
        } else {
            let dec = zstd::stream::read::Decoder::new(std::fs::File::open(&path).unwrap()).unwrap();
            let mut ar = tar::Archive::new(dec);
            for e in ar.entries().unwrap() {
                let mut e = e.unwrap();
                let r = e.path().unwrap().display().to_string();
                if e.header().entry_type().is_file() && r.ends_with(suffix) {
                    let mut b = Vec::new();
                    std::io::Read::read_to_end(&mut e, &mut b).unwrap();
                    docs.push((r, b));
                }
            }
        }
        counts.insert(name.to_string(), docs.len() as u64);
        for (r, b) in docs {
            originals.insert((name.to_string(), r), serde_json::from_slice(&b).unwrap());
        }
    }
    let names: Vec<String> = sources.iter().map(|s| format!("\"{}\"", s.0)).collect();
    toml.push_str(&format!("[profiles.corpus]\nkind = \"json:raw\"\ninputs = [{}]\n", names.join(", ")));
    std::fs::write(ws.path().join("profiles.toml"), toml).unwrap();
    let report = build_ok(ws.path(), &[]);
    assert_eq!(report["profiles"]["corpus"]["rejected"], 0);
    let out = ws.path().join("out/corpus");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    for s in m["sources"].as_array().unwrap() {
        assert_eq!(
            s["documents"].as_u64(),
            counts.get(s["name"].as_str().unwrap()).copied(),
            "{}",
            s["name"]
        );
    }
    // records per source, and each record's document equals the upstream document
    let b = std::fs::read(out.join("corpus.tar.zst")).unwrap();
    let plain = zstd::decode_all(&b[..]).unwrap();
    let mut ar = tar::Archive::new(&plain[..]);
    let mut records = std::collections::BTreeMap::<String, u64>::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = (v["source"].as_str().unwrap().to_string(), v["path"].as_str().unwrap().to_string());
            let orig = originals.get(&key).unwrap_or_else(|| panic!("record for unknown document {key:?}"));
            assert!(v["document"] == *orig, "document {key:?} changed in meaning");
            *records.entry(key.0).or_default() += 1;
        }
    }
    assert_eq!(records, counts, "one record per document, per source");
    let total: u64 = counts.values().sum();
    println!("real corpus: {total} documents in {} sources, all carried unchanged", counts.len());
    // §7 of the Engine 2 issue: per-shard frames cost at most 20 % over one
    // level-19 stream of the same tar (zstd's default window for the level)
    let one_stream = zstd::bulk::compress(&plain, 19).unwrap().len();
    let ratio = b.len() as f64 / one_stream as f64;
    println!("real corpus: bundle {} bytes, one zstd -19 stream {one_stream}: {ratio:.3}x", b.len());
    assert!(ratio <= 1.2, "bundle {ratio:.3}x the size of one zstd -19 stream (goal <= 1.2x)");
    let v = run(ws.path(), &["verify", out.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

// ---------------------------------------------------------------- executor behaviour

fn two_profiles_one_bad() -> tempfile::TempDir {
    let ws = one_source_workspace(&fixture("good/osv.tar.zst"), "");
    copy_dir(&fixture("bad/malformed-json/osv"), &ws.path().join("data/bad"));
    let mut text = std::fs::read_to_string(ws.path().join("profiles.toml")).unwrap();
    text.push_str("\n[sources.bad]\nformat = \"osv\"\npath = \"data/bad\"\n\n[profiles.q]\nkind = \"json:raw\"\ninputs = [\"bad\"]\n");
    std::fs::write(ws.path().join("profiles.toml"), text).unwrap();
    ws
}

#[test]
fn keep_going_publishes_the_profiles_that_succeeded() {
    let ws = two_profiles_one_bad();
    let r = run(ws.path(), &["build", "--json", "--keep-going", "--jobs", "1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["profiles"]["p"]["status"], "published");
    assert_eq!(j["profiles"]["q"]["status"], "not-published");
    assert!(j["error"].as_str().unwrap().contains("BAD-1.json"));
    assert!(!ws.path().join("out/q").exists());
    assert_eq!(run(ws.path(), &["verify", ws.path().join("out/p").to_str().unwrap()]).code, 0);
}

#[test]
fn without_keep_going_a_failure_stops_the_run() {
    let ws = two_profiles_one_bad();
    // --jobs 1 pops steps in graph order: profile p's steps come first, q's parse fails
    let r = run(ws.path(), &["build", "--json", "--jobs", "1"]);
    assert_eq!(r.code, 2);
    let j = r.json();
    assert!(j["steps"]["skipped"].as_u64().unwrap() > 0, "{j}");
    assert_eq!(j["steps"]["failed"], 1);
}

#[test]
fn a_relocated_workspace_reuses_its_cache() {
    let a = sample_workspace();
    build_ok(a.path(), &[]);
    let b = tempfile::tempdir().unwrap();
    copy_dir(a.path(), b.path());
    std::fs::remove_dir_all(b.path().join("out")).unwrap();
    let r = build_ok(b.path(), &[]);
    assert_eq!(r["steps"]["executed"], 0, "no absolute path enters a step key");
    assert!(out_files(a.path()) == out_files(b.path()));
}

// ---------------------------------------------------------------- edge cases found in review

#[test]
fn an_empty_source_gives_an_empty_export_and_a_warning() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("src")).unwrap();
    std::fs::write(ws.path().join("src/README.md"), "not a document").unwrap();
    std::fs::write(
        ws.path().join("profiles.toml"),
        "[sources.s]\nformat = \"osv\"\npath = \"src\"\n[profiles.p]\nkind = \"json:raw\"\ninputs = [\"s\"]\n",
    )
    .unwrap();
    let r = run(ws.path(), &["build", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("no document"), "{}", r.stderr);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("out/p/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["contents"], serde_json::json!([]));
    assert_eq!(run(ws.path(), &["verify", ws.path().join("out/p").to_str().unwrap()]).code, 0);
}

#[test]
fn a_symlinked_folder_in_a_source_is_refused() {
    let ws = one_source_workspace(&fixture("bad/malformed-json/osv"), "");
    let elsewhere = ws.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::remove_file(ws.path().join("data/osv/BAD-1.json")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, ws.path().join("data/osv/linked")).unwrap();
    assert_refused(ws.path(), "linked: is a symbolic link");
}

#[test]
fn an_oversized_archive_member_is_refused_before_reading() {
    let ws = tempfile::tempdir().unwrap();
    let mut tar = export_center::formats::tar::header("big.json", 300 << 20, 0).unwrap().to_vec();
    tar.extend_from_slice(&[0u8; 1024]);
    std::fs::write(ws.path().join("big.tar"), &tar).unwrap();
    std::fs::write(
        ws.path().join("profiles.toml"),
        "[sources.s]\nformat = \"osv\"\npath = \"big.tar\"\n[profiles.p]\nkind = \"json:raw\"\ninputs = [\"s\"]\n",
    )
    .unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("member big.json") && r.stderr.contains("limit"), "{}", r.stderr);
}

#[test]
fn pinned_time_out_of_range_is_a_usage_error() {
    let ws = sample_workspace();
    let r = finish(cmd(ws.path()).args(["build"]).env("SOURCE_DATE_EPOCH", "99999999999").output().unwrap());
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("SOURCE_DATE_EPOCH") && r.stderr.contains("outside"), "{}", r.stderr);
    let r = finish(cmd(ws.path()).args(["build"]).env("SOURCE_DATE_EPOCH", "-5").output().unwrap());
    assert_eq!(r.code, 2);
}

#[test]
fn build_json_prints_an_object_on_early_errors() {
    let ws = sample_workspace();
    std::fs::write(ws.path().join("profiles.toml"), "[workspace]\ncolour = 1\n").unwrap();
    let r = run(ws.path(), &["build", "--json"]);
    assert_eq!(r.code, 2);
    let j = r.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["exitCode"], 2);
    assert!(j["error"].as_str().unwrap().contains("colour"));
}

#[test]
fn a_rule_that_publishes_nothing_is_refused() {
    let ws = sample_workspace();
    std::fs::create_dir_all(ws.path().join("rules")).unwrap();
    std::fs::write(
        ws.path().join("rules/json-raw.toml"),
        "kind = \"json:raw\"\nversion = 9\n[[step]]\nname = \"parse\"\naction = \"parse-documents\"\nfor-each = \"shard\"\n\
         inputs = { docs = \"source.shard\" }\n\
         params = { format = \"osv\", source = \"s\", path = \"p\", origin = \"dir\" }\n",
    )
    .unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("rules/json-raw.toml") && r.stderr.contains("publishes"), "{}", r.stderr);
    // a missing parameter is caught when the rule loads, not when a step runs
    let text = std::fs::read_to_string(ws.path().join("rules/json-raw.toml")).unwrap();
    std::fs::write(ws.path().join("rules/json-raw.toml"), text.replace("format = \"osv\", ", "")).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("needs parameter \"format\""), "{}", r.stderr);
}

#[test]
fn rejected_paths_follow_a_moved_source() {
    let ws = sample_workspace();
    std::fs::write(ws.path().join("samples/osv/npm/BROKEN.json"), b"{\"id\": ").unwrap();
    build_ok(ws.path(), &["json-web", "--allow-invalid"]);
    std::fs::rename(ws.path().join("samples/osv/npm"), ws.path().join("samples/osv/npm-moved")).unwrap();
    let p = ws.path().join("profiles.toml");
    let text =
        std::fs::read_to_string(&p).unwrap().replace("\"samples/osv/npm\"", "\"samples/osv/npm-moved\"");
    std::fs::write(&p, text).unwrap();
    build_ok(ws.path(), &["json-web", "--allow-invalid"]);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("out/json-web/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["rejected"][0]["path"], "samples/osv/npm-moved/BROKEN.json");
}

#[test]
fn duplicate_keys_make_a_document_invalid() {
    let ws = sample_workspace();
    std::fs::write(
        ws.path().join("samples/osv/npm/DUP.json"),
        br#"{"id": "DUP-1", "modified": "2024-07-01T00:00:00Z", "summary": "a", "summary": "b"}"#,
    )
    .unwrap();
    let r = run(ws.path(), &["build", "json-web"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("DUP.json: malformed JSON: duplicate key \"summary\""), "{}", r.stderr);
}

#[test]
fn archives_pack_in_several_passes_when_shards_are_many() {
    // 300 shards: members are packed over two passes (256 shards per pass)
    let ws = one_source_workspace(&fixture("good/osv.tar.zst"), "");
    let p = ws.path().join("profiles.toml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("path = \"data/osv.tar.zst\"", "path = \"data/osv.tar.zst\"\nshards = 300");
    std::fs::write(&p, text).unwrap();
    build_ok(ws.path(), &[]);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("out/p/manifest.json")).unwrap()).unwrap();
    let ids: Vec<u32> = m["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .trim_end_matches(".jsonl")
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let expected: Vec<u32> = {
        // the archive's whole listing, sorted
        let mut v = export_center::sources::assign(
            &["osv/GO-2024-9001.json", "osv/PYSEC-2024-901.json", "osv/RUSTSEC-2024-0901.json"],
            300,
        );
        v.sort();
        v
    };
    let mut got = ids.clone();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(run(ws.path(), &["verify", ws.path().join("out/p").to_str().unwrap()]).code, 0);
}

//! Generations of published exports: numbering read back from the export,
//! earlier exports kept under `out/.generations/<profile>/<n>/`, pruning
//! by `keep-generations`, and `exports list`.

mod common;

use std::path::Path;

use common::*;

const P: &str = "json-raw";

/// Change one advisory of the sample workspace (a new summary).
fn change_advisory(ws: &Path, n: usize) {
    let f = ws.join("samples/osv/pypi/PYSEC-2023-210.json");
    let text = std::fs::read_to_string(&f).unwrap();
    let text = text.replacen("\"summary\": \"", &format!("\"summary\": \"(edit {n}) "), 1);
    std::fs::write(&f, text).unwrap();
    age(&f);
}

fn set_profile_key(ws: &Path, line: &str) {
    let f = ws.join("profiles.toml");
    let text = std::fs::read_to_string(&f).unwrap();
    let text = text.replacen("[profiles.json-raw]\n", &format!("[profiles.json-raw]\n{line}\n"), 1);
    std::fs::write(&f, text).unwrap();
}

/// `exports list --json` rows of profile P: (generation, current, path relative to the workspace).
fn listed(ws: &Path) -> Vec<(u64, bool, String)> {
    let r = run(ws, &["exports", "list", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let ws_real = std::fs::canonicalize(ws).unwrap();
    r.json()["exports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["profile"] == P)
        .map(|e| {
            assert_eq!(e["kind"], "json:raw");
            assert_eq!(e["rootDigest"].as_str().unwrap().len(), 64, "{e}");
            assert_eq!(e["createdAt"], "2025-01-01T00:00:00Z");
            let path = Path::new(e["path"].as_str().unwrap());
            let rel = path.strip_prefix(&ws_real).or_else(|_| path.strip_prefix(ws)).unwrap();
            (e["generation"].as_u64().unwrap(), e["current"].as_bool().unwrap(), rel.display().to_string())
        })
        .collect()
}

fn export_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

fn status(report: &serde_json::Value) -> &str {
    report["profiles"][P]["status"].as_str().unwrap()
}

#[test]
fn a_changed_publish_is_the_next_generation_and_the_previous_one_is_kept() {
    let ws = sample_workspace();
    let w = ws.path();
    build_ok(w, &[P]);
    assert_eq!(listed(w), [(1, true, format!("out/{P}"))]);
    let gen1 = export_files(&w.join("out").join(P));
    let before = out_files(w);

    // the same inputs: nothing republished, the same generation and bytes
    let r = build_ok(w, &[P]);
    assert_eq!(status(&r), "up-to-date");
    assert_eq!(out_files(w), before);
    assert_eq!(listed(w), [(1, true, format!("out/{P}"))]);
    assert!(!w.join("out/.generations").join(P).join("1").exists());

    // one advisory changed: generation 2, generation 1 kept verbatim and verifiable
    change_advisory(w, 1);
    let r = build_ok(w, &[P]);
    assert_eq!(status(&r), "published");
    let kept1 = format!("out/.generations/{P}/1");
    assert_eq!(listed(w), [(2, true, format!("out/{P}")), (1, false, kept1.clone())]);
    assert_eq!(export_files(&w.join(&kept1)), gen1);
    let v = run(w, &["verify", &kept1]);
    assert_eq!(v.code, 0, "verify of the kept generation:\n{}\n{}", v.stdout, v.stderr);
    let v = run(w, &["verify", &format!("out/{P}")]);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    // the golden comparison of out/ sees only the exports
    assert!(out_files(w).iter().all(|(n, _)| !n.contains(".generations")));

    // a no-op keeps 2; another change is 3
    build_ok(w, &[P]);
    assert_eq!(listed(w)[0], (2, true, format!("out/{P}")));
    change_advisory(w, 2);
    build_ok(w, &[P]);
    let rows: Vec<u64> = listed(w).iter().map(|r| r.0).collect();
    assert_eq!(rows, [3, 2, 1]);

    // a fresh out/ starts again at generation 1
    std::fs::remove_dir_all(w.join("out")).unwrap();
    build_ok(w, &[P]);
    assert_eq!(listed(w), [(1, true, format!("out/{P}"))]);
}

#[test]
fn keep_generations_prunes_older_ones() {
    let ws = sample_workspace();
    let w = ws.path();
    set_profile_key(w, "keep-generations = 1");
    build_ok(w, &[P]);
    for n in 1..=3 {
        change_advisory(w, n);
        build_ok(w, &[P]);
    }
    assert_eq!(listed(w), [(4, true, format!("out/{P}")), (3, false, format!("out/.generations/{P}/3"))]);
    let gens = w.join("out/.generations").join(P);
    for n in 1..=2 {
        assert!(!gens.join(n.to_string()).exists(), "generation {n} pruned");
        assert!(!gens.join(format!("{n}.json")).exists(), "record of generation {n} pruned");
    }

    // keep-generations = 0 keeps none
    let ws = sample_workspace();
    let w = ws.path();
    set_profile_key(w, "keep-generations = 0");
    build_ok(w, &[P]);
    change_advisory(w, 1);
    build_ok(w, &[P]);
    assert_eq!(listed(w), [(2, true, format!("out/{P}"))]);
}

#[test]
fn a_bad_keep_generations_is_exit_2_naming_the_line() {
    for bad in ["1001", "-1"] {
        let ws = sample_workspace();
        let w = ws.path();
        set_profile_key(w, &format!("keep-generations = {bad}"));
        let r = run(w, &["build", P]);
        assert_eq!(r.code, 2, "keep-generations = {bad}:\n{}", r.stderr);
        assert!(
            r.stderr.contains("profiles.toml:54:") && r.stderr.contains("profiles.json-raw.keep-generations"),
            "{}",
            r.stderr
        );
        assert!(!w.join("out").join(P).exists());
    }
}

#[test]
fn out_generations_is_never_taken_for_a_profile_and_must_be_a_folder() {
    let ws = sample_workspace();
    let w = ws.path();
    std::fs::create_dir_all(w.join("out")).unwrap();
    std::fs::write(w.join("out/.generations"), b"not a folder").unwrap();
    let r = run(w, &["build", P]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(".generations") && r.stderr.contains("not a folder"), "{}", r.stderr);
    assert!(!w.join("out").join(P).exists(), "nothing was touched");
}

#[test]
fn a_crash_while_publishing_keeps_the_numbering_read_back_from_the_export() {
    for point in ["publish-staged", "publish-swapped", "publish-live"] {
        let ws = sample_workspace();
        let w = ws.path();
        build_ok(w, &[P]);
        change_advisory(w, 1);
        let o = cmd(w).args(["build", P]).env("EXPORT_CENTER_CRASH_AT", point).output().unwrap();
        assert!(!o.status.success(), "{point}: the build was to crash");
        // whatever is live verifies, and is numbered by what it holds
        let v = run(w, &["verify", &format!("out/{P}")]);
        assert_eq!(v.code, 0, "{point}: {}\n{}", v.stdout, v.stderr);
        let want_live = if point == "publish-staged" { 1 } else { 2 };
        assert_eq!(listed(w)[0], (want_live, true, format!("out/{P}")), "{point}");
        build_ok(w, &[P]);
        let rows = listed(w);
        assert_eq!(rows[0], (2, true, format!("out/{P}")), "{point}: {rows:?}");
        // the kept copy survives unless the crash came between the swap and its move
        if point != "publish-swapped" {
            assert_eq!(rows[1..], [(1, false, format!("out/.generations/{P}/1"))], "{point}");
            let v = run(w, &["verify", &format!("out/.generations/{P}/1")]);
            assert_eq!(v.code, 0, "{point}: {}", v.stdout);
        }
        let r = build_ok(w, &[P]);
        assert_eq!(status(&r), "up-to-date");
        assert_eq!(listed(w)[0].0, 2);
    }
}

//! Offline kits (`kit stage`, `kit verify`, `offline-kit/verify-offline.sh`
//! run with only POSIX tools and `sha256sum` on PATH) and freshness
//! (`verify --max-age`, `kit verify --max-age`).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Every file below `dir`: relative path → (bytes, mode bits).
fn tree(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.unwrap();
        if !e.file_type().is_dir() {
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            m.insert(
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                (std::fs::read(e.path()).unwrap(), mode),
            );
        }
    }
    m
}

fn bytes_only(t: &BTreeMap<String, (Vec<u8>, u32)>) -> BTreeMap<String, Vec<u8>> {
    t.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
}

/// The sample workspace signed with a key made now by `keygen` (never a
/// committed one); returns the public key's path.
fn signed_workspace() -> (tempfile::TempDir, PathBuf) {
    let ws = sample_workspace();
    let r = run(ws.path(), &["keygen", "--out", "keys/export"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let p = ws.path().join("profiles.toml");
    let text = std::fs::read_to_string(&p).unwrap() + "\n[signing]\nkey = \"keys/export.key\"\n";
    std::fs::write(&p, text).unwrap();
    let public = ws.path().join("keys/export.pub");
    (ws, public)
}

fn build_at(ws: &Path, epoch: i64, profiles: &[&str]) {
    let r = finish(
        cmd(ws).arg("build").args(profiles).env("SOURCE_DATE_EPOCH", epoch.to_string()).output().unwrap(),
    );
    assert_eq!(r.code, 0, "build failed:\n{}\n{}", r.stdout, r.stderr);
}

fn stage(ws: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["kit", "stage", "--out", "media"];
    args.extend_from_slice(extra);
    run(ws, &args)
}

/// A folder of symlinks to exactly `tools` (found on the test's PATH),
/// or to `busybox` for each when `busybox` is given.
fn tool_dir(tools: &[&str], busybox: Option<&Path>) -> Option<tempfile::TempDir> {
    let d = tempfile::tempdir().unwrap();
    for t in tools {
        let target = match busybox {
            Some(b) => b.to_path_buf(),
            None => which(t)?,
        };
        std::os::unix::fs::symlink(target, d.path().join(t)).unwrap();
    }
    Some(d)
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(tool)).find(|p| p.is_file())
}

/// What verify-offline.sh needs: a POSIX shell, find, awk, sha256sum.
const SCRIPT_TOOLS: [&str; 4] = ["sh", "find", "awk", "sha256sum"];

/// Run the kit's script with PATH = `bin` only, from an unrelated folder.
fn script(kit: &Path, bin: &Path) -> Run {
    let elsewhere = tempfile::tempdir().unwrap();
    finish(
        Command::new(bin.join("sh"))
            .arg(kit.join("verify-offline.sh"))
            .env_clear()
            .env("PATH", bin)
            .current_dir(elsewhere.path())
            .output()
            .unwrap(),
    )
}

fn kit_verify(ws: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["kit", "verify", "media", "--json"];
    args.extend_from_slice(extra);
    run(ws, &args)
}

fn problems(r: &Run) -> Vec<(String, String)> {
    r.json()["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["file"].as_str().unwrap().to_string(), p["reason"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_staged_kit_is_byte_for_byte_and_verifies_with_its_script_and_ours() {
    let (ws, public) = signed_workspace();
    let w = ws.path();
    let pubkey = public.to_str().unwrap();
    build_ok(w, &["json-raw", "json-web"]);
    let r = stage(w, &["--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let kit = w.join("media/offline-kit");
    let staged = r.json();
    assert_eq!(staged["exports"].as_array().unwrap().len(), 2, "every published profile: {staged}");

    // byte for byte: each staged export is its out/<p>, files 0644
    let all = tree(&kit);
    for p in ["json-raw", "json-web"] {
        let out = tree(&w.join("out").join(p));
        let mine = tree(&kit.join(p));
        assert!(!mine.is_empty());
        assert_eq!(bytes_only(&mine), bytes_only(&out), "{p}");
        assert!(mine.values().all(|(_, mode)| *mode == 0o644), "{p}: modes");
    }
    assert_eq!(all["verify-offline.sh"].1, 0o755);
    assert_eq!(all["manifest.json"].1, 0o644);

    // checksums.txt: every file but itself, sha256sum text, lexical order
    let sums = String::from_utf8(all["checksums.txt"].0.clone()).unwrap();
    let mut want: Vec<String> = all
        .iter()
        .filter(|(k, _)| k.as_str() != "checksums.txt")
        .map(|(k, (b, _))| format!("{}  {k}\n", sha256_hex(b)))
        .collect();
    want.sort_by(|a, b| a[66..].cmp(&b[66..]));
    assert_eq!(sums, want.concat());

    // manifest.json: sorted keys, each export's files, generation, root digest
    let m: serde_json::Value = serde_json::from_slice(&all["manifest.json"].0).unwrap();
    assert_eq!(
        serde_json::to_string_pretty(&m).unwrap() + "\n",
        String::from_utf8_lossy(&all["manifest.json"].0)
    );
    assert_eq!(m["schemaVersion"], "export-center-offline-kit/v1");
    assert_eq!(m["kitVersion"], staged["kitVersion"]);
    assert!(m["kitVersion"].as_str().unwrap().starts_with("kit-"));
    let exports = m["exports"].as_array().unwrap();
    assert_eq!(
        exports.iter().map(|e| e["profile"].as_str().unwrap()).collect::<Vec<_>>(),
        ["json-raw", "json-web"]
    );
    for e in exports {
        let p = e["profile"].as_str().unwrap();
        assert_eq!(e["kind"], "json:raw");
        assert_eq!(e["generation"], 1);
        assert_eq!(e["createdAt"], "2025-01-01T00:00:00Z");
        let root = sha256_hex(&std::fs::read(w.join("out").join(p).join("checksums.txt")).unwrap());
        assert_eq!(e["rootDigest"], format!("sha256:{root}"));
        let files: Vec<(String, String, u64)> = e["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().into(),
                    f["sha256"].as_str().unwrap().into(),
                    f["size"].as_u64().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String, u64)> = all
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{p}/")))
            .map(|(k, (b, _))| (k.clone(), sha256_hex(b), b.len() as u64))
            .collect();
        assert_eq!(files, want, "{p}");
    }

    // our verify on a staged export, and kit verify, with the trust root
    let v = run(w, &["verify", "media/offline-kit/json-raw", "--trust-root", pubkey, "--json"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert_eq!(v.json()["signature"], "verified");
    let v = kit_verify(w, &["--trust-root", pubkey]);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    let j = v.json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["kitVersion"], staged["kitVersion"]);
    assert!(j["exports"].as_array().unwrap().iter().all(|e| e["signature"] == "verified"), "{j}");
    // offline-kit/ itself works too; the text report says VERIFIED
    let v = run(w, &["kit", "verify", "media/offline-kit", "--trust-root", pubkey]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert!(v.stdout.contains("VERIFIED kit kit-"), "{}", v.stdout);
    // another key is not trusted
    let other = tempfile::tempdir().unwrap();
    assert_eq!(run(other.path(), &["keygen", "--out", "o"]).code, 0);
    let v = kit_verify(w, &["--trust-root", other.path().join("o.pub").to_str().unwrap()]);
    assert_eq!(v.code, 3, "{}", v.stdout);

    // the script, with only sh, find, awk and sha256sum on PATH
    let bin = tool_dir(&SCRIPT_TOOLS, None).expect("sh, find, awk and sha256sum on the test PATH");
    let s = script(&kit, bin.path());
    assert_eq!(s.code, 0, "{}\n{}", s.stdout, s.stderr);
    assert!(
        s.stdout.contains("verify-offline: OK") && s.stdout.contains(m["kitVersion"].as_str().unwrap()),
        "{}",
        s.stdout
    );
    // ... also run as `sh verify-offline.sh` from inside the kit
    let o = Command::new(bin.path().join("sh"))
        .arg("verify-offline.sh")
        .env_clear()
        .env("PATH", bin.path())
        .current_dir(&kit)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // ... and not without sha256sum
    let no_sum = tool_dir(&["sh", "find", "awk"], None).unwrap();
    let s = script(&kit, no_sum.path());
    assert_eq!(s.code, 2, "{}\n{}", s.stdout, s.stderr);
    assert!(s.stderr.contains("sha256sum"), "{}", s.stderr);

    // busybox (installed by scripts/test-deps.sh; a SKIP line otherwise, a failure in CI)
    let busybox = tool("EXPORT_CENTER_BUSYBOX", Some("/usr/bin/busybox"), "busybox");
    let bb = busybox.as_deref().map(|b| tool_dir(&SCRIPT_TOOLS, Some(b)).unwrap());
    if let Some(bb) = &bb {
        let s = script(&kit, bb.path());
        assert_eq!(s.code, 0, "busybox: {}\n{}", s.stdout, s.stderr);
    }
    let bins: Vec<&Path> = std::iter::once(bin.path()).chain(bb.as_ref().map(|b| b.path())).collect();

    // a flipped byte: the script and kit verify fail, naming the file
    let victim = kit.join("json-raw/json-raw.tar.zst");
    let good = std::fs::read(&victim).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 1;
    std::fs::write(&victim, &bad).unwrap();
    for b in &bins {
        let s = script(&kit, b);
        assert_eq!(s.code, 1, "{}\n{}", s.stdout, s.stderr);
        assert!(
            s.stdout.contains("json-raw/json-raw.tar.zst: FAILED") && s.stdout.contains("FAILED: kit"),
            "{}",
            s.stdout
        );
    }
    let v = kit_verify(w, &["--trust-root", pubkey]);
    assert_eq!(v.code, 3);
    assert!(
        problems(&v).iter().any(|(f, r)| f == "json-raw/json-raw.tar.zst" && r.contains("does not match")),
        "{}",
        v.stdout
    );
    std::fs::write(&victim, &good).unwrap();
    assert_eq!(script(&kit, bin.path()).code, 0);

    // an extra file
    std::fs::write(kit.join("json-web/extra.txt"), b"unlisted").unwrap();
    for b in &bins {
        let s = script(&kit, b);
        assert_eq!(s.code, 1, "{}\n{}", s.stdout, s.stderr);
        assert!(s.stdout.contains("EXTRA json-web/extra.txt"), "{}", s.stdout);
    }
    let v = kit_verify(w, &[]);
    assert_eq!(v.code, 3);
    assert!(
        problems(&v).iter().any(|(f, r)| f == "json-web/extra.txt" && r.contains("extra file")),
        "{}",
        v.stdout
    );
    std::fs::remove_file(kit.join("json-web/extra.txt")).unwrap();
    assert_eq!(kit_verify(w, &[]).code, 0);

    // a missing file
    std::fs::remove_file(kit.join("json-web/provenance.json")).unwrap();
    for b in &bins {
        let s = script(&kit, b);
        assert_eq!(s.code, 1, "{}\n{}", s.stdout, s.stderr);
        assert!(s.stdout.contains("json-web/provenance.json"), "{}", s.stdout);
    }
    let v = kit_verify(w, &[]);
    assert_eq!(v.code, 3);
    assert!(problems(&v).iter().any(|(f, _)| f == "json-web/provenance.json"), "{}", v.stdout);

    std::fs::write(kit.join("json-web/provenance.json"), &all["json-web/provenance.json"].0).unwrap();
    assert_eq!(kit_verify(w, &[]).code, 0);

    // a manifest.json that lies (checksums.txt fixed up to match) fails kit verify
    for (field, value, says) in [
        ("rootDigest", serde_json::json!(format!("sha256:{}", "0".repeat(64))), "rootDigest of json-raw"),
        ("kind", serde_json::json!("trivy:db"), "kind of json-raw"),
        ("createdAt", serde_json::json!("2030-01-01T00:00:00Z"), "createdAt of json-raw"),
        ("profile", serde_json::json!("json-web"), "listed twice"),
    ] {
        let mut lie = m.clone();
        lie["exports"][0][field] = value;
        let text = serde_json::to_string_pretty(&lie).unwrap() + "\n";
        std::fs::write(kit.join("manifest.json"), &text).unwrap();
        let fixed = sums.replace(&sha256_hex(&all["manifest.json"].0), &sha256_hex(text.as_bytes()));
        std::fs::write(kit.join("checksums.txt"), fixed).unwrap();
        assert_eq!(script(&kit, bin.path()).code, 0, "the script sees only checksums");
        let v = kit_verify(w, &[]);
        assert_eq!(v.code, 3, "{field}");
        assert!(
            problems(&v).iter().any(|(f, r)| f == "manifest.json" && r.contains(says)),
            "{field}: {}",
            v.stdout
        );
    }
}

#[test]
fn an_existing_kit_is_never_overwritten() {
    let ws = sample_workspace();
    let w = ws.path();
    build_ok(w, &["json-raw"]);
    let r = stage(w, &["--kit-version", "2025.1", "json-raw"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let kit = w.join("media/offline-kit");
    let before = tree(&kit);
    let mtime = std::fs::metadata(kit.join("manifest.json")).unwrap().modified().unwrap();

    // the same version, another version, the default version: exit 2, nothing touched
    for (extra, says) in [
        (&["--kit-version", "2025.1"][..], "kit version 2025.1 is already staged"),
        (&["--kit-version", "2025.2"][..], "already holds kit version 2025.1 (not 2025.2)"),
        (&[][..], "already holds kit version 2025.1"),
    ] {
        let r = stage(w, extra);
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains(says) && r.stderr.contains("never overwritten"), "{}", r.stderr);
        assert_eq!(tree(&kit), before);
        assert_eq!(std::fs::metadata(kit.join("manifest.json")).unwrap().modified().unwrap(), mtime);
        let names: Vec<String> = std::fs::read_dir(w.join("media"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        assert_eq!(names, ["offline-kit"], "no temp folder left");
    }

    // the default kit version names the exports: the same exports, the same version
    let r1 = run(w, &["kit", "stage", "--out", "a", "--json"]);
    let r2 = run(w, &["kit", "stage", "--out", "b", "--json"]);
    assert_eq!((r1.code, r2.code), (0, 0), "{}{}", r1.stderr, r2.stderr);
    assert_eq!(r1.json()["kitVersion"], r2.json()["kitVersion"]);
    assert_eq!(tree(&w.join("a/offline-kit")), tree(&w.join("b/offline-kit")), "staging is deterministic");

    // killed before the rename: no offline-kit/, and the next stage succeeds
    let o = cmd(w)
        .args(["kit", "stage", "--out", "c"])
        .env("EXPORT_CENTER_CRASH_AT", "kit-staged")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!w.join("c/offline-kit").exists(), "a half-staged kit under the final name");
    let r = run(w, &["kit", "stage", "--out", "c"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(run(w, &["kit", "verify", "c"]).code, 0);
}

#[test]
fn refusals_name_what_is_wrong_and_touch_nothing() {
    let ws = sample_workspace();
    let w = ws.path();
    build_ok(w, &["json-raw"]);
    let cases: [(&[&str], &str); 6] = [
        (&["json-raw", "json-web"], "profile json-web: no published export"),
        (&["nope"], "no profile named"),
        (&["--generation", "1"], "--generation N needs the PROFILE"),
        (&["--generation", "5", "json-raw"], "generation 5 is not kept"),
        (&["--kit-version", "../x", "json-raw"], "--kit-version"),
        (&["--kit-version", "", "json-raw"], "--kit-version"),
    ];
    for (extra, says) in cases {
        let r = stage(w, extra);
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{extra:?}: {}", r.stderr);
        assert!(!w.join("media").exists(), "{extra:?}: DIR was touched");
    }
    // never into out/, where the exports are
    for inside in ["out", "out/json-raw", "out/json-raw/new/deeper"] {
        let r = run(w, &["kit", "stage", "--out", inside]);
        assert_eq!(r.code, 2, "{inside}: {}", r.stderr);
        assert!(r.stderr.contains("where the exports are published"), "{}", r.stderr);
    }
    assert!(!w.join("out/json-raw/new").exists() && !w.join("out/offline-kit").exists());
    assert_eq!(run(w, &["verify", "out/json-raw"]).code, 0);
    // nothing published at all
    let empty = sample_workspace();
    let r = stage(empty.path(), &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nothing to stage"), "{}", r.stderr);
    // kit verify of a folder without a kit
    let r = run(w, &["kit", "verify", "out"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no offline kit"), "{}", r.stderr);
}

#[test]
fn generation_n_stages_a_kept_generation() {
    let ws = sample_workspace();
    let w = ws.path();
    build_ok(w, &["json-raw"]);
    let gen1 = tree(&w.join("out/json-raw"));
    let f = w.join("samples/osv/pypi/PYSEC-2023-210.json");
    let text =
        std::fs::read_to_string(&f).unwrap().replacen("\"summary\": \"", "\"summary\": \"(edited) ", 1);
    std::fs::write(&f, text).unwrap();
    age(&f);
    build_ok(w, &["json-raw"]);
    let kept = w.join("out/.generations/json-raw/1");
    assert_eq!(bytes_only(&tree(&kept)), bytes_only(&gen1));

    let r = stage(w, &["--generation", "1", "--json", "json-raw"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let kit = w.join("media/offline-kit");
    assert_eq!(bytes_only(&tree(&kit.join("json-raw"))), bytes_only(&gen1));
    assert_ne!(bytes_only(&tree(&kit.join("json-raw"))), bytes_only(&tree(&w.join("out/json-raw"))));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kit.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["exports"][0]["generation"], 1);
    let root = sha256_hex(&gen1["checksums.txt"].0);
    assert_eq!(m["exports"][0]["rootDigest"], format!("sha256:{root}"));
    assert_eq!(run(w, &["kit", "verify", "media"]).code, 0);

    // the live generation by its number, into another folder
    let r = run(w, &["kit", "stage", "--out", "live", "--generation", "2", "json-raw"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        bytes_only(&tree(&w.join("live/offline-kit/json-raw"))),
        bytes_only(&tree(&w.join("out/json-raw")))
    );
}

#[test]
fn staging_refuses_a_damaged_export() {
    let ws = sample_workspace();
    let w = ws.path();
    build_ok(w, &["json-raw"]);
    let victim = w.join("out/json-raw/provenance.json");
    let mut b = std::fs::read(&victim).unwrap();
    b[10] ^= 1;
    // the export's files are hard links into the cache: replace, never edit in place
    std::fs::remove_file(&victim).unwrap();
    std::fs::write(&victim, &b).unwrap();
    let r = stage(w, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("provenance.json") && r.stderr.contains("nothing staged"), "{}", r.stderr);
    assert!(!w.join("media/offline-kit").exists());
}

fn max_age(ws: &Path, target: &str, age: &str) -> Run {
    run(ws, &["verify", target, &format!("--max-age={age}"), "--json"])
}

#[test]
fn verify_max_age_fails_a_stale_export() {
    let ws = sample_workspace();
    let w = ws.path();
    build_at(w, now() - 400 * DAY, &["json-raw"]);
    let r = max_age(w, "out/json-raw", "1d");
    assert_eq!(r.code, 3, "{}", r.stdout);
    let p = problems(&r);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "manifest.json");
    assert!(
        p[0].1.contains("--max-age 1d") && p[0].1.contains("createdAt") && p[0].1.contains("400d"),
        "{p:?}"
    );
    // the text report says so too
    let t = run(w, &["verify", "out/json-raw", "--max-age", "1d"]);
    assert_eq!(t.code, 3);
    assert!(t.stdout.contains("FAIL manifest.json: --max-age 1d: createdAt"), "{}", t.stdout);
    // a limit it is within, and no limit
    assert_eq!(max_age(w, "out/json-raw", "401d").code, 0);
    assert_eq!(max_age(w, "out/json-raw", "58w").code, 0);
    assert_eq!(run(w, &["verify", "out/json-raw"]).code, 0);
    // the kit of it: kit verify --max-age fails the same way
    assert_eq!(stage(w, &[]).code, 0);
    let r = kit_verify(w, &["--max-age", "1d"]);
    assert_eq!(r.code, 3);
    assert!(
        problems(&r).iter().any(|(f, r)| f == "json-raw/manifest.json" && r.contains("createdAt")),
        "{}",
        r.stdout
    );
    assert_eq!(kit_verify(w, &["--max-age", "500d"]).code, 0);

    // built now: fresh
    build_at(w, now(), &["json-raw"]);
    for age in ["1d", "36h", "90m", "3600s", "2w"] {
        let r = max_age(w, "out/json-raw", age);
        assert_eq!(r.code, 0, "{age}: {}", r.stdout);
    }

    // bad durations: exit 2 before anything is read
    for bad in ["1x", "0d", "", "-1d", "1.5h", "d", "1d2h", "99999999999w"] {
        let r = max_age(w, "out/json-raw", bad);
        assert_eq!(r.code, 2, "{bad:?}: {}", r.stderr);
        assert!(r.stderr.contains("--max-age"), "{}", r.stderr);
        let r = kit_verify(w, &[&format!("--max-age={bad}")]);
        assert_eq!(r.code, 2, "kit verify {bad:?}: {}", r.stderr);
    }
}

/// A workspace with a `mirror:full` profile whose TUF timestamp expires 2
/// days after the pinned time, signed with a key made now.
fn mirror_ws() -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("samples"), &ws.path().join("samples"));
    let r = run(ws.path(), &["keygen", "--out", "keys/k"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::write(
        ws.path().join("profiles.toml"),
        "[workspace]\nsource-date-epoch = 1735689600\n[signing]\nkey = \"keys/k.key\"\n\
         [sources.pypi]\nformat = \"osv\"\npath = \"samples/osv/pypi\"\n\
         [sources.openvex]\nformat = \"openvex\"\npath = \"samples/vex/openvex\"\n\
         [profiles.mirror]\nkind = \"mirror:full\"\ninputs = [\"pypi\", \"openvex\"]\n\
         expires-days = { timestamp = 2, snapshot = 7, targets = 30, root = 365 }\n",
    )
    .unwrap();
    ws
}

#[test]
fn verify_max_age_fails_a_mirror_whose_tuf_timestamp_expired() {
    let ws = mirror_ws();
    let w = ws.path();
    // built 3 days ago: createdAt is within a week, the timestamp (2 days) expired
    build_at(w, now() - 3 * DAY, &[]);
    let pubkey = w.join("keys/k.pub");
    let pubkey = pubkey.to_str().unwrap();
    assert_eq!(
        run(w, &["verify", "out/mirror", "--trust-root", pubkey]).code,
        0,
        "without --max-age it verifies"
    );
    let r = run(w, &["verify", "out/mirror", "--trust-root", pubkey, "--max-age", "1w", "--json"]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    let p = problems(&r);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "tuf/metadata/timestamp.json");
    assert!(p[0].1.contains("--max-age 1w") && p[0].1.contains("expired"), "{p:?}");
    // and through a kit
    assert_eq!(stage(w, &[]).code, 0);
    let r = kit_verify(w, &["--trust-root", pubkey, "--max-age", "1w"]);
    assert_eq!(r.code, 3);
    assert!(
        problems(&r).iter().any(|(f, r)| f == "mirror/tuf/metadata/timestamp.json" && r.contains("expired")),
        "{}",
        r.stdout
    );
    assert_eq!(kit_verify(w, &["--trust-root", pubkey]).code, 0);

    // built now: fresh
    build_at(w, now(), &[]);
    let r = run(w, &["verify", "out/mirror", "--trust-root", pubkey, "--max-age", "1w", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

//! `devportal:offline` (issue 13; docs/FORMATS.md §15): the offline
//! developer-portal kit from a `tree` source, checked by the kit's own
//! `verify-offline.sh` under busybox alone and under GNU tools, by
//! openssl (the signature, from that script), by securesystemslib (the
//! kit's `manifest.dsse.json`, and the export through
//! `scripts/verify_export.py`), and by `export-center verify`.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const BUNDLE: &str = "devportal-offline-bundle.tgz";
const EPOCH: u64 = 1_735_689_600;

/// A workspace with the sample portal (tests/fixtures/devportal) as the
/// `tree` source `portal` (`shards` pinned) and the profile `kit`
/// (`extra` appended to it); signed with the test-only key when `signed`.
fn portal_ws(shards: u32, extra: &str, signed: bool) -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/devportal"), &ws.path().join("tree"));
    let mut text = format!(
        "[workspace]\nsource-date-epoch = {EPOCH}\n\n[sources.portal]\nformat = \"tree\"\npath = \"tree\"\nshards = {shards}\n\n\
         [profiles.kit]\nkind = \"devportal:offline\"\ninputs = [\"portal\"]\n{extra}\n"
    );
    if signed {
        let key = ws.path().join("signing.key");
        std::fs::copy(fixture_key("TEST-ONLY-signing.key"), &key).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        text.push_str("\n[signing]\nkey = \"signing.key\"\n");
    }
    std::fs::write(ws.path().join("profiles.toml"), text).unwrap();
    ws
}

/// A folder of links to busybox named after `tools` (and `extra` links
/// to other binaries): the only PATH of a container-like check.
fn busybox_bin(tools: &[&str], extra: &[(&str, &str)]) -> Option<tempfile::TempDir> {
    let busybox = Path::new("/usr/bin/busybox");
    if !busybox.is_file() {
        assert!(
            std::env::var("EXPORT_CENTER_REQUIRE_VERIFIERS").as_deref() != Ok("1"),
            "busybox missing at /usr/bin/busybox"
        );
        skip("busybox checks", "/usr/bin/busybox is not installed");
        return None;
    }
    let bin = tempfile::tempdir().unwrap();
    for t in tools {
        std::os::unix::fs::symlink(busybox, bin.path().join(t)).unwrap();
    }
    for (name, target) in extra {
        std::os::unix::fs::symlink(target, bin.path().join(name)).unwrap();
    }
    Some(bin)
}

/// What unpacking and verify-offline.sh without a key need from busybox.
const MINIMAL: &[&str] = &["sh", "sha256sum", "sed", "awk", "find", "tar", "gzip"];
/// ... and with a key (besides openssl).
const TOOLS: &[&str] = &[
    "sh",
    "sha256sum",
    "sed",
    "awk",
    "find",
    "cmp",
    "wc",
    "tr",
    "mktemp",
    "rm",
    "base64",
    "cat",
    "tar",
    "gzip",
];

/// Run `sh` with `args` (in `dir`), PATH = `path` (the caller's when `None`).
fn sh(path: Option<&Path>, dir: &Path, args: &[&str]) -> Run {
    let mut c = match path {
        Some(p) => {
            let mut c = Command::new(p.join("sh"));
            c.env_clear().env("PATH", p);
            c
        }
        None => Command::new("sh"),
    };
    finish(c.current_dir(dir).args(args).output().unwrap())
}

/// Unpack the kit into a new folder with `tar -xzf` from `path` (busybox)
/// or the system's tar.
fn unpack(ws: &Path, path: Option<&Path>) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    let tgz = ws.join("out/kit").join(BUNDLE);
    let r = sh(path, to.path(), &["-c", "tar -xzf \"$0\"", tgz.to_str().unwrap()]);
    assert_eq!(r.code, 0, "tar: {}{}", r.stdout, r.stderr);
    to
}

fn flip_a_byte(file: &Path) {
    let mut b = std::fs::read(file).unwrap();
    b[10] ^= 1;
    std::fs::write(file, b).unwrap();
}

/// The kit's members: (path, mode, uid, gid, mtime, bytes), in archive order.
fn members(tgz: &Path) -> Vec<(String, u32, u64, u64, u64, Vec<u8>)> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(tgz).unwrap()));
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert!(h.entry_type().is_file(), "only regular members");
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                data,
            )
        })
        .collect()
}

#[test]
fn the_kit_verifies_with_busybox_alone_and_a_flipped_byte_fails() {
    let ws = portal_ws(2, "", false);
    build_ok(ws.path(), &[]);
    let v = run(ws.path(), &["verify", "out/kit"]);
    assert_eq!(v.code, 0, "export-center verify: {}{}", v.stdout, v.stderr);
    let Some(bin) = busybox_bin(MINIMAL, &[]) else { return };
    let kit = unpack(ws.path(), Some(bin.path()));
    let ok = sh(Some(bin.path()), kit.path(), &["verify-offline.sh"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("verify-offline: OK") && ok.stdout.contains("9 files"), "{}", ok.stdout);
    // run from elsewhere, by path
    let elsewhere =
        sh(Some(bin.path()), ws.path(), &[kit.path().join("verify-offline.sh").to_str().unwrap()]);
    assert_eq!(elsewhere.code, 0, "{}{}", elsewhere.stdout, elsewhere.stderr);

    flip_a_byte(&kit.path().join("portal/index.html"));
    let bad = sh(Some(bin.path()), kit.path(), &["verify-offline.sh"]);
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stdout.contains("portal/index.html: FAILED"), "{}", bad.stdout);
    assert!(bad.stdout.contains("verify-offline: FAILED"), "{}", bad.stdout);

    // an added file, and a checksums.txt edited to match a changed file
    let kit = unpack(ws.path(), Some(bin.path()));
    std::fs::write(kit.path().join("portal/evil.js"), "x").unwrap();
    let extra = sh(Some(bin.path()), kit.path(), &["verify-offline.sh"]);
    assert_eq!(extra.code, 1, "{}", extra.stdout);
    assert!(extra.stdout.contains("EXTRA portal/evil.js"), "{}", extra.stdout);
    let kit = unpack(ws.path(), Some(bin.path()));
    std::fs::write(kit.path().join("specs/openapi.yaml"), "changed\n").unwrap();
    let sums = std::fs::read_to_string(kit.path().join("checksums.txt")).unwrap();
    let old = sha256_hex(&std::fs::read(ws.path().join("tree/specs/openapi.yaml")).unwrap());
    std::fs::write(kit.path().join("checksums.txt"), sums.replace(&old, &sha256_hex(b"changed\n"))).unwrap();
    let forged = sh(Some(bin.path()), kit.path(), &["verify-offline.sh"]);
    assert_eq!(forged.code, 1, "{}", forged.stdout);
    assert!(forged.stdout.contains("MISMATCH checksums.txt: its sha256"), "{}", forged.stdout);
}

#[test]
fn the_kit_verifies_with_gnu_tools() {
    let ws = portal_ws(1, "", false);
    build_ok(ws.path(), &[]);
    let kit = unpack(ws.path(), None);
    let ok = sh(None, kit.path(), &["verify-offline.sh"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("; unsigned"), "{}", ok.stdout);
    // GNU sha256sum reads checksums.txt as it is
    let gnu = finish(
        Command::new("sha256sum").arg("-c").arg("checksums.txt").current_dir(kit.path()).output().unwrap(),
    );
    assert_eq!(gnu.code, 0, "{}{}", gnu.stdout, gnu.stderr);
    flip_a_byte(&kit.path().join("sdks/go/client.go"));
    let bad = sh(None, kit.path(), &["verify-offline.sh"]);
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stdout.contains("sdks/go/client.go: FAILED"), "{}", bad.stdout);
    // a key for an unsigned kit is a failure, not a pass
    let key = fixture_key("TEST-ONLY-signing.pub");
    let unsigned = sh(None, kit.path(), &["verify-offline.sh", key.to_str().unwrap()]);
    assert_eq!(unsigned.code, 1, "{}", unsigned.stdout);
}

#[test]
fn the_signed_kit_verifies_with_openssl_and_securesystemslib() {
    let ws = portal_ws(2, "", true);
    build_ok(ws.path(), &[]);
    let good = fixture_key("TEST-ONLY-signing.pub");
    let other = fixture_key("TEST-ONLY-other.pub");
    let v = run(ws.path(), &["verify", "out/kit", "--trust-root", good.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let tgz = ws.path().join("out/kit").join(BUNDLE);
    let names: Vec<String> = members(&tgz).into_iter().map(|m| m.0).collect();
    assert!(names.contains(&"manifest.dsse.json".to_string()), "{names:?}");

    if let Some(bin) = busybox_bin(TOOLS, &[("openssl", "/usr/bin/openssl")]) {
        let kit = unpack(ws.path(), Some(bin.path()));
        let p = Some(bin.path());
        let ok = sh(p, kit.path(), &["verify-offline.sh", good.to_str().unwrap()]);
        assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
        assert!(ok.stdout.contains("signature verified"), "{}", ok.stdout);
        let wrong = sh(p, kit.path(), &["verify-offline.sh", other.to_str().unwrap()]);
        assert_eq!(wrong.code, 1, "{}{}", wrong.stdout, wrong.stderr);
        assert!(wrong.stdout.contains("does not verify"), "{}", wrong.stdout);
        let unchecked = sh(p, kit.path(), &["verify-offline.sh"]);
        assert_eq!(unchecked.code, 0, "{}", unchecked.stdout);
        assert!(unchecked.stdout.contains("signature NOT checked"), "{}", unchecked.stdout);
        // a manifest.json edited consistently with a changed file: the signature catches it
        let m = std::fs::read_to_string(kit.path().join("manifest.json")).unwrap();
        std::fs::write(kit.path().join("manifest.json"), m.replace("\"changelog\"", "\"changelog\" "))
            .unwrap();
        let edited = sh(p, kit.path(), &["verify-offline.sh", good.to_str().unwrap()]);
        assert_eq!(edited.code, 1, "{}", edited.stdout);
        assert!(edited.stdout.contains("payload is not this manifest.json"), "{}", edited.stdout);
        // stripping the signature does not pass when a key is given
        std::fs::write(kit.path().join("manifest.json"), m).unwrap();
        std::fs::remove_file(kit.path().join("manifest.dsse.json")).unwrap();
        let stripped = sh(p, kit.path(), &["verify-offline.sh", good.to_str().unwrap()]);
        assert_eq!(stripped.code, 1, "{}", stripped.stdout);
        assert!(stripped.stdout.contains("UNSIGNED"), "{}", stripped.stdout);
        // without openssl the signature cannot be checked: exit 2, said so
        let no_ssl = busybox_bin(TOOLS, &[]).unwrap();
        let kit = unpack(ws.path(), Some(no_ssl.path()));
        let r = sh(Some(no_ssl.path()), kit.path(), &["verify-offline.sh", good.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("openssl is not on PATH"), "{}", r.stderr);
    }

    let Ok(py) = std::env::var("EXPORT_CENTER_VERIFY_PY") else {
        assert!(
            std::env::var("EXPORT_CENTER_REQUIRE_VERIFIERS").as_deref() != Ok("1"),
            "EXPORT_CENTER_REQUIRE_VERIFIERS=1 but the verifier venv is missing"
        );
        skip("securesystemslib", "EXPORT_CENTER_VERIFY_PY is not set (scripts/test-deps.sh)");
        return;
    };
    // the export, as every signed export
    let export = finish(
        Command::new(&py)
            .arg(repo().join("scripts/verify_export.py"))
            .arg(ws.path().join("out/kit"))
            .arg(&good)
            .output()
            .unwrap(),
    );
    assert_eq!(export.code, 0, "verify_export.py: {}{}", export.stdout, export.stderr);
    // the kit's envelope: securesystemslib, default keyid, payload = manifest.json
    let kit = tempfile::tempdir().unwrap();
    for (path, _, _, _, _, data) in members(&tgz) {
        if path == "manifest.json" || path == "manifest.dsse.json" {
            std::fs::write(kit.path().join(path), data).unwrap();
        }
    }
    const CHECK: &str = r#"
import json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
env_path, manifest_path, key_path = sys.argv[1:4]
key = SSlibKey.from_crypto(load_pem_public_key(open(key_path, "rb").read()))
env = Envelope.from_dict(json.load(open(env_path)))
assert env.payload_type == "application/vnd.export-center.devportal-manifest+json", env.payload_type
assert [s.keyid for s in env.signatures.values()] == [key.keyid], "keyid is the key's default keyid"
env.verify([key], 1)
assert env.pae() .startswith(b"DSSEv1 ")
assert env.payload == open(manifest_path, "rb").read(), "payload is manifest.json byte for byte"
m = json.loads(env.payload)
assert m["version"] == "devportal-offline/v1"
print("ok", m["bundleId"])
"#;
    let check = |key: &Path| {
        finish(
            Command::new(&py)
                .args(["-c", CHECK])
                .arg(kit.path().join("manifest.dsse.json"))
                .arg(kit.path().join("manifest.json"))
                .arg(key)
                .output()
                .unwrap(),
        )
    };
    let r = check(&good);
    assert_eq!(r.code, 0, "securesystemslib: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("ok sha256:"), "{}", r.stdout);
    let r = check(&other);
    assert_ne!(r.code, 0, "another key must not verify: {}", r.stdout);
}

#[test]
fn two_builds_in_fresh_caches_are_byte_identical_with_pinned_members() {
    let (a, b) = (portal_ws(2, "", true), portal_ws(3, "", true));
    build_ok(a.path(), &[]);
    build_ok(b.path(), &["--jobs", "1"]);
    let (fa, fb) = (out_files(a.path()), out_files(b.path()));
    assert!(!fa.is_empty());
    // shard counts differ, the kit does not (the source digest is the same)
    assert_eq!(fa, fb, "two fresh builds differ");
    let tgz = a.path().join("out/kit").join(BUNDLE);
    let raw = std::fs::read(&tgz).unwrap();
    assert_eq!(&raw[4..8], &[0, 0, 0, 0], "gzip mtime 0");
    let ms = members(&tgz);
    let names: Vec<&str> = ms.iter().map(|m| m.0.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "members sorted by path");
    assert_eq!(
        names,
        [
            "changelog/2025-01.md",
            "checksums.txt",
            "instructions-portable.txt",
            "manifest.dsse.json",
            "manifest.json",
            "portal/css/site.css",
            "portal/img/logo.svg",
            "portal/index.html",
            "portal/js/app.js",
            "sdks/go/client.go",
            "sdks/python/README.md",
            "sdks/python/client.py",
            "specs/openapi.yaml",
            "verify-offline.sh",
        ]
    );
    for (path, mode, uid, gid, mtime, data) in &ms {
        let want = if path == "verify-offline.sh" { 0o755 } else { 0o644 };
        assert_eq!((*mode, *uid, *gid, *mtime), (want, 0, 0, EPOCH), "{path}");
        if let Ok(src) = std::fs::read(a.path().join("tree").join(path)) {
            assert_eq!(&src, data, "{path} is carried unchanged");
        }
    }
    // the kit's manifest
    let m: serde_json::Value =
        serde_json::from_slice(&ms.iter().find(|m| m.0 == "manifest.json").unwrap().5).unwrap();
    let sums = &ms.iter().find(|m| m.0 == "checksums.txt").unwrap().5;
    assert_eq!(m["version"], "devportal-offline/v1");
    assert_eq!(m["bundleId"], format!("sha256:{}", sha256_hex(sums)));
    assert_eq!(m["generatedAt"], "2025-01-01T00:00:00Z");
    assert_eq!(
        m["sources"],
        serde_json::json!({"portalIncluded": true, "specsIncluded": true, "sdkNames": ["go", "python"], "changelogIncluded": true})
    );
    assert_eq!(m["totals"]["entryCount"], 9);
    let total: u64 = m["entries"].as_array().unwrap().iter().map(|e| e["sizeBytes"].as_u64().unwrap()).sum();
    assert_eq!(m["totals"]["totalSizeBytes"], total);
    let e = m["entries"].as_array().unwrap().iter().find(|e| e["path"] == "portal/index.html").unwrap();
    assert_eq!(e["category"], "portal");
    assert_eq!(e["contentType"], "text/html");
    let idx = std::fs::read(a.path().join("tree/portal/index.html")).unwrap();
    assert_eq!(e["sha256"], sha256_hex(&idx));
    assert_eq!(e["sizeBytes"], idx.len());
    let lines: Vec<String> = String::from_utf8(sums.clone()).unwrap().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 9);
    assert!(lines.contains(&format!("{}  portal/index.html", sha256_hex(&idx))), "{lines:?}");
    // build --check rebuilds the same bytes
    let c = run(a.path(), &["build", "--check"]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
}

#[test]
fn a_changed_file_reruns_only_its_shard_and_a_no_op_runs_nothing() {
    let ws = portal_ws(4, "", false);
    let first = build_ok(ws.path(), &[]);
    let scans = executed(&first).iter().filter(|(id, _)| id.starts_with("scan:")).count();
    assert!(scans > 1, "the sample spreads over several shards: {scans}");
    let noop = build_ok(ws.path(), &[]);
    assert!(executed(&noop).is_empty(), "{:?}", executed(&noop));
    let file = ws.path().join("tree/changelog/2025-01.md");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("- A second note.\n");
    std::fs::write(&file, text).unwrap();
    age(&file);
    let after = build_ok(ws.path(), &[]);
    let ran: Vec<String> = executed(&after).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ran.iter().filter(|id| id.starts_with("scan:")).count(), 1, "{ran:?}");
    assert_eq!(ran.len(), 3, "one scan, the bundle, the seal: {ran:?}");
    let v = run(ws.path(), &["verify", "out/kit"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn external_references_fail_naming_file_and_line_unless_allowed() {
    let ws = portal_ws(2, "", false);
    let tree = ws.path().join("tree");
    let edit = |rel: &str, from: &str, to: &str| -> usize {
        let p = tree.join(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        let text = if from.is_empty() { format!("{text}{to}") } else { text.replacen(from, to, 1) };
        assert!(text.contains(to));
        std::fs::write(&p, &text).unwrap();
        age(&p);
        line_of(&text, to.trim_end())
    };
    let html = edit(
        "portal/index.html",
        "<script src=\"js/app.js\" defer></script>",
        "<script src=\"https://cdn.example/lib.js\" defer></script>",
    );
    let css = edit("portal/css/site.css", "", "h2 { background: url(https://img.example/bg.png); }\n");
    let js = edit("portal/js/app.js", "", "import { x } from \"https://esm.example/x.mjs\";\n");
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    for (file, line, url) in [
        ("portal/index.html", html, "https://cdn.example/lib.js"),
        ("portal/css/site.css", css, "https://img.example/bg.png"),
        ("portal/js/app.js", js, "https://esm.example/x.mjs"),
    ] {
        let want = format!("tree/{file}: line {line}: external reference {url}");
        assert!(r.stderr.contains(&want), "{want:?} not in:\n{}", r.stderr);
    }
    assert!(!ws.path().join("out/kit").exists(), "nothing published");

    // an exact URL and a prefix admit them; a mere host prefix is refused when the profile loads
    let profiles = ws.path().join("profiles.toml");
    let text = std::fs::read_to_string(&profiles).unwrap();
    std::fs::write(
        &profiles,
        text.replace(
            "inputs = [\"portal\"]\n",
            "inputs = [\"portal\"]\nallow-external = [\"https://cdn.example/lib.js\", \"https://img.example/*\"]\n",
        ),
    )
    .unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "the JS import is still refused: {}", r.stderr);
    assert!(r.stderr.contains("portal/js/app.js") && !r.stderr.contains("portal/index.html"), "{}", r.stderr);
    let text = std::fs::read_to_string(&profiles).unwrap();
    std::fs::write(
        &profiles,
        text.replace("\"https://img.example/*\"", "\"https://img.example/*\", \"https://esm.example/x.mjs\""),
    )
    .unwrap();
    build_ok(ws.path(), &[]);
    let v = run(ws.path(), &["verify", "out/kit"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);

    // --allow-invalid: a refused file is left out (and listed), the files after it are intact
    let text = std::fs::read_to_string(&profiles).unwrap();
    std::fs::write(&profiles, text.replace("\"https://cdn.example/lib.js\", ", "")).unwrap();
    let r = build_ok(ws.path(), &["--allow-invalid"]);
    assert_eq!(r["profiles"]["kit"]["rejected"], 1, "{r}");
    let v = run(ws.path(), &["verify", "out/kit"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("out/kit/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["rejected"][0]["path"], "tree/portal/index.html", "{m}");
    let names: Vec<String> =
        members(&ws.path().join("out/kit").join(BUNDLE)).into_iter().map(|m| m.0).collect();
    assert!(
        !names.contains(&"portal/index.html".to_string()) && names.contains(&"portal/js/app.js".to_string())
    );
    let kit = unpack(ws.path(), None);
    let ok = sh(None, kit.path(), &["verify-offline.sh"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains(" 8 files "), "{}", ok.stdout);

    let text = std::fs::read_to_string(&profiles).unwrap();
    std::fs::write(&profiles, text.replace("\"https://img.example/*\"", "\"https://img.example*\"")).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let line = line_of(&std::fs::read_to_string(&profiles).unwrap(), "allow-external");
    assert!(r.stderr.contains(&format!("profiles.toml:{line}:")), "{}", r.stderr);
    assert!(r.stderr.contains("profiles.kit.allow-external"), "{}", r.stderr);
}

#[test]
fn tree_sources_feed_only_devportal_profiles() {
    let ws = portal_ws(1, "", false);
    let profiles = ws.path().join("profiles.toml");
    let mut text = std::fs::read_to_string(&profiles).unwrap();
    text.push_str("\n[profiles.raw]\nkind = \"json:raw\"\ninputs = [\"portal\"]\n");
    std::fs::write(&profiles, &text).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let line = text.lines().enumerate().filter(|(_, l)| l.starts_with("inputs")).last().unwrap().0 + 1;
    assert!(r.stderr.contains(&format!("profiles.toml:{line}:")), "{}", r.stderr);
    assert!(r.stderr.contains("has format \"tree\", which a json:raw profile cannot use"), "{}", r.stderr);

    // and a devportal profile takes nothing but a tree
    let ws = portal_ws(1, "", false);
    let mut text = std::fs::read_to_string(profiles_of(ws.path())).unwrap();
    text = text.replace("format = \"tree\"", "format = \"osv\"");
    std::fs::write(profiles_of(ws.path()), &text).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let line = line_of(&text, "inputs = [\"portal\"]");
    assert!(r.stderr.contains(&format!("profiles.toml:{line}:")), "{}", r.stderr);
    assert!(r.stderr.contains("which a devportal:offline profile cannot use"), "{}", r.stderr);
}

fn profiles_of(ws: &Path) -> PathBuf {
    ws.join("profiles.toml")
}

#[test]
fn symlinks_and_files_outside_the_categories_are_refused() {
    let ws = portal_ws(1, "", false);
    let link = ws.path().join("tree/portal/js/secrets.js");
    std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("portal/js/secrets.js: is a symbolic link"), "{}", r.stderr);
    std::fs::remove_file(&link).unwrap();
    // a linked folder is refused too
    std::os::unix::fs::symlink("/etc", ws.path().join("tree/specs/etc")).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("specs/etc: is a symbolic link"), "{}", r.stderr);
    std::fs::remove_file(ws.path().join("tree/specs/etc")).unwrap();
    std::fs::write(ws.path().join("tree/README.md"), "stray\n").unwrap();
    std::fs::write(ws.path().join("tree/sdks/loose.txt"), "no sdk\n").unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("tree/README.md: outside portal/, specs/, sdks/<name>/ and changelog/"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("tree/sdks/loose.txt: directly in sdks/"), "{}", r.stderr);
    assert!(!ws.path().join("out/kit").exists());
}

#[test]
fn a_tree_archive_with_dot_dot_members_is_refused() {
    let ws = portal_ws(1, "", false);
    // an archive whose member climbs out of the tree
    let tarball = ws.path().join("portal.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&tarball).unwrap());
        let data = b"x\n";
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses "..": write the name field directly
        h.as_old_mut().name[..17].copy_from_slice(b"portal/../../x.js");
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
        b.finish().unwrap();
    }
    let profiles = profiles_of(ws.path());
    let text =
        std::fs::read_to_string(&profiles).unwrap().replace("path = \"tree\"", "path = \"portal.tar\"");
    std::fs::write(&profiles, text).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("portal.tar"), "{}", r.stderr);
}

#[test]
fn a_large_file_is_streamed_in_bounded_memory() {
    let ws = portal_ws(1, "", false);
    let profiles = profiles_of(ws.path());
    let text = std::fs::read_to_string(&profiles)
        .unwrap()
        .replace("shards = 1\n", "shards = 1\nmax-document-bytes = 268435456\n");
    std::fs::write(&profiles, text).unwrap();
    // 192 MiB: a held copy would be three times the bound below (24 MiB measured)
    let size = 192u64 << 20;
    let big = ws.path().join("tree/sdks/python/wheel.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let mut block = vec![0u8; 1 << 20];
        for i in 0..(size >> 20) {
            block[0] = i as u8;
            block[4096] = (i * 7) as u8;
            f.write_all(&block).unwrap();
        }
    }
    age(&big);
    let mut c = cmd(ws.path());
    c.args(["build", "--json"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let m = run_measured(c, None, Some(std::time::Duration::from_secs(300)));
    assert_eq!(m.run.code, 0, "{}{}", m.run.stdout, m.run.stderr);
    let peak = m.peak_rss_kib << 10;
    assert!(peak < 64 << 20, "peak RSS {} MiB for a {} MiB file", peak >> 20, size >> 20);
    let v = run(ws.path(), &["verify", "out/kit"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
}

#[test]
fn an_empty_tree_gives_an_empty_kit_that_verifies() {
    let ws = portal_ws(1, "", false);
    std::fs::remove_dir_all(ws.path().join("tree")).unwrap();
    std::fs::create_dir_all(ws.path().join("tree/portal")).unwrap();
    build_ok(ws.path(), &[]);
    let kit = unpack(ws.path(), None);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kit.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["totals"], serde_json::json!({"entryCount": 0, "totalSizeBytes": 0}));
    assert_eq!(m["sources"]["portalIncluded"], false);
    let ok = sh(None, kit.path(), &["verify-offline.sh"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains(" 0 files "), "{}", ok.stdout);
}

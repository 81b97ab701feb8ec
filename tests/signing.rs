//! Signed exports: keys, DSSE envelopes, provenance, and `verify
//! --trust-root`, checked by our verifier and by an independent one
//! (`scripts/verify_export.py`: securesystemslib + in-toto-attestation,
//! installed by `scripts/test-deps.sh`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

fn append(ws: &Path, text: &str) {
    let p = ws.join("profiles.toml");
    let mut s = std::fs::read_to_string(&p).unwrap();
    s.push_str(text);
    std::fs::write(p, s).unwrap();
}

/// The default workspace, signed with the fixture key.
fn signed_workspace() -> tempfile::TempDir {
    let ws = sample_workspace();
    install_key(ws.path(), "TEST-ONLY-signing.key", "export.key");
    append(ws.path(), "\n[signing]\nkey = \"keys/export.key\"\n");
    ws
}

fn public(name: &str) -> String {
    fixture_key(name).display().to_string()
}

fn verify(ws: &Path, target: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["verify", target.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    run(ws, &args)
}

/// The independent verifier, or `None` (with a SKIP line) when the test
/// dependencies could not be installed.
fn independent(dir: &Path, pubkey: &str) -> Option<Run> {
    let Ok(py) = std::env::var("EXPORT_CENTER_VERIFY_PY") else {
        assert!(
            std::env::var("EXPORT_CENTER_REQUIRE_VERIFIERS").as_deref() != Ok("1"),
            "EXPORT_CENTER_REQUIRE_VERIFIERS=1 but the verifier venv is missing (scripts/test-deps.sh failed?)"
        );
        skip("independent verification", "EXPORT_CENTER_VERIFY_PY is not set (run scripts/test.sh, which installs securesystemslib and in-toto-attestation)");
        return None;
    };
    let o = std::process::Command::new(py)
        .arg(repo().join("scripts/verify_export.py"))
        .arg(dir)
        .arg(pubkey)
        .output()
        .unwrap();
    Some(finish(o))
}

fn problems(r: &Run) -> Vec<(String, String)> {
    r.json()["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["file"].as_str().unwrap().to_string(), p["reason"].as_str().unwrap().to_string()))
        .collect()
}

// ---------------------------------------------------------------- keys

#[test]
fn keygen_writes_a_private_0600_and_a_public_pem_and_never_overwrites() {
    let d = tempfile::tempdir().unwrap();
    let r = run(d.path(), &["keygen", "--out", "keys/site", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    let key = d.path().join("keys/site.key");
    let public = d.path().join("keys/site.pub");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(std::fs::read_to_string(&public).unwrap().starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(j["keyid"].as_str().unwrap().len(), 64);
    // the secret never reaches stdout or stderr
    let body: String = std::fs::read_to_string(&key).unwrap().lines().nth(1).unwrap().to_string();
    assert!(!r.stdout.contains(&body) && !r.stderr.contains(&body));
    let again = run(d.path(), &["keygen", "--out", "keys/site"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("site.key") && again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn bad_keys_exit_2_with_a_message_and_publish_nothing() {
    // readable by others
    let ws = signed_workspace();
    let key = ws.path().join("keys/export.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("export.key") && r.stderr.contains("chmod 600"), "{}", r.stderr);
    assert!(!ws.path().join("out/json-raw").exists());
    // missing
    std::fs::remove_file(&key).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("export.key") && r.stderr.contains("cannot read"), "{}", r.stderr);
    // malformed PEM
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = run(ws.path(), &["build", "--json"]);
    assert_eq!(r.code, 2);
    let err = r.json()["error"].as_str().unwrap().to_string();
    assert!(err.contains("export.key") && err.contains("PKCS#8"), "{err}");
    // a public key where the private one belongs
    std::fs::copy(fixture_key("TEST-ONLY-signing.pub"), &key).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!ws.path().join("out/json-raw").exists());
    // key-env naming an unset variable
    let ws = sample_workspace();
    append(ws.path(), "\n[signing]\nkey-env = \"EXPORT_CENTER_TEST_UNSET_KEY\"\n");
    let r = finish(cmd(ws.path()).arg("build").env_remove("EXPORT_CENTER_TEST_UNSET_KEY").output().unwrap());
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("EXPORT_CENTER_TEST_UNSET_KEY"), "{}", r.stderr);
    // a bad trust root
    let r = run(ws.path(), &["verify", ws.path().to_str().unwrap(), "--trust-root", "nope.pub"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nope.pub"), "{}", r.stderr);
}

// ---------------------------------------------------------------- signed exports

#[test]
fn signed_exports_verify_here_and_independently_and_are_reproducible() {
    let ws = signed_workspace();
    build_ok(ws.path(), &[]);
    for profile in ["json-raw", "json-web"] {
        let out = ws.path().join("out").join(profile);
        for f in ["manifest.dsse.json", "provenance.dsse.json", "provenance.json", "checksums.txt"] {
            assert!(out.join(f).is_file(), "{profile}/{f} missing");
        }
        let r = verify(ws.path(), &out, &["--trust-root", &public("TEST-ONLY-signing.pub")]);
        assert_eq!(r.code, 0, "{}", r.stdout);
        let j = r.json();
        assert_eq!(j["signature"], "verified");
        assert_eq!(j["verifiedBy"].as_array().unwrap().len(), 1);
        if let Some(ind) = independent(&out, &public("TEST-ONLY-signing.pub")) {
            assert_eq!(ind.code, 0, "independent verifier rejected {profile}:\n{}{}", ind.stdout, ind.stderr);
        }
        // the bundle on its own, with its sibling metadata
        let bundle = out.join(format!("{profile}.tar.zst"));
        assert_eq!(verify(ws.path(), &bundle, &["--trust-root", &public("TEST-ONLY-signing.pub")]).code, 0);
    }
    // same inputs and key in another folder, with the key from the environment: same bytes
    let ws2 = sample_workspace();
    append(ws2.path(), "\n[signing]\nkey-env = \"EXPORT_CENTER_TEST_KEY\"\n");
    let pem = std::fs::read_to_string(fixture_key("TEST-ONLY-signing.key")).unwrap();
    let r = finish(
        cmd(ws2.path())
            .args(["build", "--json", "--jobs", "1"])
            .env("EXPORT_CENTER_TEST_KEY", &pem)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out_files(ws.path()) == out_files(ws2.path()), "two signed builds differ");
    // and the exact bytes are pinned
    let listing = listing(&ws.path().join("out/json-raw"));
    let golden = repo().join("golden/json-raw-signed/listing.txt");
    if std::env::var("EXPORT_CENTER_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &listing).unwrap();
    } else {
        let want = std::fs::read_to_string(&golden)
            .expect("golden/json-raw-signed/listing.txt: bless with EXPORT_CENTER_BLESS=1");
        assert_eq!(listing, want, "signed export differs from golden/json-raw-signed (re-bless if intended)");
    }
}

fn listing(out: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| {
            let b = std::fs::read(out.join(n)).unwrap();
            format!("{n} {} {}\n", b.len(), sha256_hex(&b))
        })
        .collect()
}

#[test]
fn provenance_describes_the_build() {
    let ws = signed_workspace();
    build_ok(ws.path(), &[]);
    let out = ws.path().join("out/json-web");
    let stmt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("provenance.json")).unwrap()).unwrap();
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(stmt["_type"], "https://in-toto.io/Statement/v1");
    let subjects: Vec<(String, String)> = stmt["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().into(), s["digest"]["sha256"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        subjects,
        vec![
            ("json-web.tar.zst".to_string(), m["bundle"]["sha256"].as_str().unwrap().to_string()),
            ("manifest.json".to_string(), sha256_hex(&manifest)),
        ]
    );
    let bd = &stmt["predicate"]["buildDefinition"];
    assert_eq!(bd["externalParameters"]["profile"]["name"], "json-web");
    assert_eq!(bd["externalParameters"]["profile"]["selectors"], m["selectors"]);
    assert_eq!(bd["internalParameters"]["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(bd["internalParameters"]["rule"]["actions"]["seal-export"], 2);
    let deps = bd["resolvedDependencies"].as_array().unwrap();
    assert_eq!(deps.len(), m["sources"].as_array().unwrap().len());
    for (d, s) in deps.iter().zip(m["sources"].as_array().unwrap()) {
        assert_eq!(d["digest"]["dirHash"], s["sha256"]);
    }
    let rd = &stmt["predicate"]["runDetails"];
    assert_eq!(rd["metadata"]["startedOn"], "2025-01-01T00:00:00Z");
    assert_eq!(rd["byproducts"][0]["digest"]["sha256"], m["rerunHash"]);
}

#[test]
fn tampering_fails_our_verify_and_the_independent_one() {
    let ws = signed_workspace();
    build_ok(ws.path(), &[]);
    let good = ws.path().join("out/json-raw");
    let root = public("TEST-ONLY-signing.pub");
    type Tamper = fn(&Path);
    fn flip(p: &Path, at: usize) {
        let mut b = std::fs::read(p).unwrap();
        let i = at.min(b.len() - 1);
        b[i] ^= 0x01;
        std::fs::write(p, b).unwrap();
    }
    fn edit_envelope(p: &Path, field: &str) {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        let target = if field == "sig" { &mut v["signatures"][0]["sig"] } else { &mut v["payload"] };
        let s = target.as_str().unwrap().to_string();
        // change one base64 character in the middle: still valid base64, different bytes
        let mid = s.len() / 2;
        let c = if &s[mid..mid + 1] == "A" { "B" } else { "A" };
        *target = serde_json::Value::String(format!("{}{c}{}", &s[..mid], &s[mid + 1..]));
        std::fs::write(p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
    let cases: Vec<(&str, &str, Tamper)> = vec![
        ("artifact byte", "json-raw.tar.zst", |d| flip(&d.join("json-raw.tar.zst"), 100)),
        ("manifest byte", "manifest.json", |d| flip(&d.join("manifest.json"), 40)),
        ("provenance byte", "provenance.json", |d| flip(&d.join("provenance.json"), 60)),
        ("payload", "provenance.dsse.json", |d| edit_envelope(&d.join("provenance.dsse.json"), "payload")),
        ("manifest payload", "manifest.dsse.json", |d| {
            edit_envelope(&d.join("manifest.dsse.json"), "payload")
        }),
        ("signature", "provenance.dsse.json", |d| edit_envelope(&d.join("provenance.dsse.json"), "sig")),
        ("manifest signature", "manifest.dsse.json", |d| edit_envelope(&d.join("manifest.dsse.json"), "sig")),
        ("removed file", "manifest.dsse.json", |d| {
            std::fs::remove_file(d.join("manifest.dsse.json")).unwrap()
        }),
        ("added file", "extra.bin", |d| std::fs::write(d.join("extra.bin"), b"x").unwrap()),
    ];
    for (what, file, tamper) in cases {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("json-raw");
        copy_dir(&good, &out);
        tamper(&out);
        let r = verify(ws.path(), &out, &["--trust-root", &root]);
        assert_eq!(r.code, 3, "{what}: our verify passed:\n{}", r.stdout);
        let probs = problems(&r);
        assert!(probs.iter().any(|(f, _)| f == file), "{what}: no problem names {file}: {probs:?}");
        if let Some(ind) = independent(&out, &root) {
            assert_ne!(ind.code, 0, "{what}: the independent verifier accepted it:\n{}", ind.stdout);
        }
    }
    // the wrong key
    let other = public("TEST-ONLY-other.pub");
    let r = verify(ws.path(), &good, &["--trust-root", &other]);
    assert_eq!(r.code, 3);
    let probs = problems(&r);
    for f in ["manifest.dsse.json", "provenance.dsse.json"] {
        assert!(probs.iter().any(|(pf, why)| pf == f && why.contains("trust root")), "{probs:?}");
    }
    if let Some(ind) = independent(&good, &other) {
        assert_eq!(ind.code, 1, "wrong key: {}", ind.stderr);
    }
    // any one of several trust roots is enough
    assert_eq!(verify(ws.path(), &good, &["--trust-root", &other, "--trust-root", &root]).code, 0);
    assert_eq!(verify(ws.path(), &good, &["--trust-root", &format!("{other},{root}")]).code, 0);
}

/// Rewrite `checksums.txt` over every other file, as an attacker who
/// cannot sign but can edit everything else would.
fn regenerate_checksums(dir: &Path) {
    let mut lines = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
        if e.file_type().is_file() && rel != "checksums.txt" {
            lines.push(format!("{}  {rel}\n", sha256_hex(&std::fs::read(e.path()).unwrap())));
        }
    }
    std::fs::write(dir.join("checksums.txt"), lines.concat()).unwrap();
}

#[test]
fn tampering_that_also_rewrites_the_checksums_fails_on_the_signatures() {
    let ws = signed_workspace();
    build_ok(ws.path(), &[]);
    let good = ws.path().join("out/json-raw");
    let web = ws.path().join("out/json-web");
    let root = public("TEST-ONLY-signing.pub");
    fn edit_json(p: &Path, f: impl Fn(&mut serde_json::Value)) {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
    type Case<'a> = (&'a str, &'a str, Box<dyn Fn(&Path)>);
    let cases: Vec<Case> = vec![
        (
            "manifest field",
            "manifest.json",
            Box::new(|d: &Path| edit_json(&d.join("manifest.json"), |v| v["profile"] = "x".into())),
        ),
        (
            "provenance field",
            "provenance.json",
            Box::new(|d: &Path| {
                let p = d.join("provenance.json");
                let t = std::fs::read_to_string(&p).unwrap().replace("json-raw", "json-rax");
                std::fs::write(p, t).unwrap();
            }),
        ),
        (
            "extra listed file",
            "install.sh",
            Box::new(|d: &Path| std::fs::write(d.join("install.sh"), "rm -rf /").unwrap()),
        ),
        (
            "swapped envelopes",
            "manifest.dsse.json",
            Box::new(|d: &Path| {
                std::fs::rename(d.join("manifest.dsse.json"), d.join("tmp")).unwrap();
                std::fs::rename(d.join("provenance.dsse.json"), d.join("manifest.dsse.json")).unwrap();
                std::fs::rename(d.join("tmp"), d.join("provenance.dsse.json")).unwrap();
            }),
        ),
        ("another export's envelopes", "manifest.dsse.json", {
            let web = web.clone();
            Box::new(move |d: &Path| {
                for f in ["manifest.dsse.json", "provenance.dsse.json"] {
                    std::fs::copy(web.join(f), d.join(f)).unwrap();
                }
            })
        }),
    ];
    for (what, file, tamper) in cases {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("json-raw");
        copy_dir(&good, &out);
        tamper(&out);
        regenerate_checksums(&out);
        let r = verify(ws.path(), &out, &["--trust-root", &root]);
        assert_eq!(r.code, 3, "{what}: our verify passed:\n{}", r.stdout);
        let probs = problems(&r);
        assert!(probs.iter().any(|(f, _)| f == file), "{what}: no problem names {file}: {probs:?}");
        assert!(
            !probs.iter().any(|(_, why)| why.contains("does not match checksums.txt")),
            "{what}: must fail on the signatures, not the checksums: {probs:?}"
        );
        if let Some(ind) = independent(&out, &root) {
            assert_ne!(ind.code, 0, "{what}: the independent verifier accepted it:\n{}", ind.stdout);
        }
    }
    // a whole export swapped for another one passes only without --profile
    assert_eq!(verify(ws.path(), &web, &["--trust-root", &root]).code, 0);
    let r = verify(ws.path(), &web, &["--trust-root", &root, "--profile", "json-raw"]);
    assert_eq!(r.code, 3);
    assert!(problems(&r).iter().any(|(f, why)| f == "manifest.json" && why.contains("json-web")));
    // a FIFO where a file belongs fails instead of hanging
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("json-raw");
    copy_dir(&good, &out);
    std::fs::remove_file(out.join("provenance.json")).unwrap();
    let c = std::ffi::CString::new(out.join("provenance.json").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let r = verify(ws.path(), &out, &["--trust-root", &root]);
    assert_eq!(r.code, 3);
    assert!(
        problems(&r).iter().any(|(f, why)| f == "provenance.json" && why.contains("regular file")),
        "{:?}",
        problems(&r)
    );
}

#[test]
fn a_signed_profile_whose_rule_cannot_sign_is_refused() {
    let ws = signed_workspace();
    std::fs::create_dir_all(ws.path().join("rules")).unwrap();
    let rule = std::fs::read_to_string(repo().join("src/kinds/json_raw/rule.toml")).unwrap();
    let cut = rule.find("# Provenance").expect("the seal step is last");
    let rule = rule[..cut].replace("version = 2", "version = 3");
    std::fs::write(ws.path().join("rules/json-raw.toml"), rule).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("seal-export") && r.stderr.contains("unsigned"), "{}", r.stderr);
    assert!(!ws.path().join("out/json-raw").exists());
}

// ---------------------------------------------------------------- unsigned, partial, incremental

#[test]
fn unsigned_exports_say_so_and_fail_when_a_signature_is_required() {
    let ws = sample_workspace();
    build_ok(ws.path(), &[]);
    let out = ws.path().join("out/json-raw");
    assert!(!out.join("manifest.dsse.json").exists() && out.join("provenance.json").is_file());
    let r = verify(ws.path(), &out, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["signature"], "unsigned");
    let human = run(ws.path(), &["verify", out.to_str().unwrap()]);
    assert!(human.stdout.contains("unsigned export"), "{}", human.stdout);
    assert_eq!(verify(ws.path(), &out, &["--require-signature"]).code, 3);
    // a trust root means "signed by this": stripped signatures cannot pass
    assert_eq!(verify(ws.path(), &out, &["--trust-root", &public("TEST-ONLY-signing.pub")]).code, 3);
    // signed, but checked without a trust root: passes, signatures reported unchecked
    let ws = signed_workspace();
    build_ok(ws.path(), &[]);
    let out = ws.path().join("out/json-raw");
    let r = verify(ws.path(), &out, &[]);
    assert_eq!(r.code, 0);
    assert_eq!(r.json()["signature"], "unchecked");
    assert_eq!(verify(ws.path(), &out, &["--require-signature"]).code, 3);
}

#[test]
fn profiles_override_the_workspace_key_and_a_new_key_reseals_only() {
    let ws = signed_workspace();
    install_key(ws.path(), "TEST-ONLY-other.key", "other.key");
    let text = std::fs::read_to_string(ws.path().join("profiles.toml")).unwrap();
    let text = text.replace("[profiles.json-web.select]", "signing = false\n[profiles.json-web.select]");
    std::fs::write(ws.path().join("profiles.toml"), text).unwrap();
    build_ok(ws.path(), &[]);
    assert!(ws.path().join("out/json-raw/manifest.dsse.json").is_file());
    assert!(
        !ws.path().join("out/json-web/manifest.dsse.json").exists(),
        "signing = false leaves json-web unsigned"
    );
    let web = ws.path().join("out/json-web");
    assert_eq!(verify(ws.path(), &web, &[]).json()["signature"], "unsigned");
    // switch the workspace key: only the seal step of the signed profile runs
    let text = std::fs::read_to_string(ws.path().join("profiles.toml")).unwrap();
    std::fs::write(ws.path().join("profiles.toml"), text.replace("keys/export.key", "keys/other.key"))
        .unwrap();
    let r = build_ok(ws.path(), &[]);
    let ran: Vec<String> = executed(&r).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ran,
        vec![
            // the kit holds its own manifest.dsse.json: its assembly signs it
            "bundle:devportal".to_string(),
            "seal:devportal".to_string(),
            "seal:json-raw".to_string(),
            "seal:trivy-db".to_string(),
            "seal:verdicts".to_string()
        ],
        "a new key re-signs, nothing else"
    );
    let raw = ws.path().join("out/json-raw");
    assert_eq!(verify(ws.path(), &raw, &["--trust-root", &public("TEST-ONLY-other.pub")]).code, 0);
    assert_eq!(verify(ws.path(), &raw, &["--trust-root", &public("TEST-ONLY-signing.pub")]).code, 3);
}

#[test]
fn the_private_key_never_reaches_the_cache_the_logs_or_the_export() {
    let ws = signed_workspace();
    let r = run(ws.path(), &["build", "--json", "--explain"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pem = std::fs::read_to_string(ws.path().join("keys/export.key")).unwrap();
    let body = pem.lines().nth(1).unwrap();
    // the raw 32-byte secret sits at the end of the PKCS#8 v1 DER
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
    let secret = &der[der.len() - 32..];
    assert!(!r.stdout.contains(body) && !r.stderr.contains(body));
    for dir in ["cache", "out"] {
        for e in walkdir::WalkDir::new(ws.path().join(dir)) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let b = std::fs::read(e.path()).unwrap();
                assert!(
                    !b.windows(body.len()).any(|w| w == body.as_bytes())
                        && !b.windows(32).any(|w| w == secret),
                    "key material in {}",
                    e.path().display()
                );
            }
        }
    }
}

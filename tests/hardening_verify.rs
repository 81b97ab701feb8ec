//! Issue 8, `verify` under attack: items 3 (bounded reads, special files),
//! 11 (paths outside the export), 13 (closed pipe), 15 (unchecked
//! signatures named as such) and 16 (trust-root and `--profile` messages).
//!
//! Hostile inputs are generated here: oversized files are sparse (no disk,
//! no time), dense JSON is written from a loop. Every child runs under a
//! 2 GiB address-space limit and a generous watchdog (a hang is the bug),
//! and its peak RSS is read from `wait4`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Peak RSS any `verify` may reach (issue 8, item 3).
const RSS_LIMIT_KIB: i64 = 256 * 1024;

struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    max_rss_kib: i64,
}

impl Outcome {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
    fn problems(&self) -> Vec<(String, String)> {
        self.json()["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["file"].as_str().unwrap().to_string(), p["reason"].as_str().unwrap().to_string()))
            .collect()
    }
}

/// Run the binary in `ws` with a 2 GiB address-space cap and a 120 s
/// watchdog; `stdout_fd` replaces a piped stdout when given. The child is
/// reaped with `wait4` (for its rusage), not `Child::wait`.
fn run_bounded_to(ws: &Path, args: &[&str], stdout_fd: Option<std::os::fd::OwnedFd>) -> Outcome {
    let mut c = cmd(ws);
    c.args(args).stdin(Stdio::null()).stderr(Stdio::piped());
    match stdout_fd {
        Some(fd) => c.stdout(Stdio::from(fd)),
        None => c.stdout(Stdio::piped()),
    };
    let m = run_measured(c, Some(2 << 30), Some(Duration::from_secs(120)));
    let o = Outcome {
        code: m.signal.is_none().then_some(m.run.code),
        signal: m.signal,
        stdout: m.run.stdout,
        stderr: m.run.stderr,
        max_rss_kib: m.peak_rss_kib,
    };
    assert!(!m.timed_out, "{args:?} hung (killed after 120 s)\n{}", o.stderr);
    assert!(!o.stderr.contains("panicked"), "{args:?} panicked:\n{}", o.stderr);
    o
}

fn run_bounded(ws: &Path, args: &[&str]) -> Outcome {
    run_bounded_to(ws, args, None)
}

fn root() -> String {
    fixture_key("TEST-ONLY-signing.pub").display().to_string()
}

/// The sample workspace built with the fixture key: out/{json-raw,json-web,trivy-db}.
fn signed_build() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let ws = sample_workspace();
    std::fs::create_dir_all(ws.path().join("keys")).unwrap();
    let key = ws.path().join("keys/export.key");
    std::fs::copy(fixture_key("TEST-ONLY-signing.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let p = ws.path().join("profiles.toml");
    let text = std::fs::read_to_string(&p).unwrap() + "\n[signing]\nkey = \"keys/export.key\"\n";
    std::fs::write(p, text).unwrap();
    build_ok(ws.path(), &[]);
    ws
}

/// A fresh copy of `out/<profile>` to tamper with.
fn copy_of(ws: &Path, profile: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join(profile);
    copy_dir(&ws.join("out").join(profile), &out);
    (d, out)
}

/// Make `p` a sparse file of `len` bytes (no disk used).
fn sparse(p: &Path, len: u64) {
    let _ = std::fs::remove_file(p);
    std::fs::File::create(p).unwrap().set_len(len).unwrap();
}

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

fn edit_json(p: &Path, f: impl Fn(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

// ---------------------------------------------------------------- item 3: trust roots

#[test]
fn trust_roots_that_are_not_small_regular_files_exit_2_without_reading() {
    let ws = signed_build();
    let out = ws.path().join("out/json-raw");
    let target = out.to_str().unwrap();
    let fifo = ws.path().join("fifo.pub");
    mkfifo(&fifo);
    let big = ws.path().join("big.pub");
    sparse(&big, 300 << 20);
    let zero_link = ws.path().join("zero.pub");
    std::os::unix::fs::symlink("/dev/zero", &zero_link).unwrap();
    for (what, key, says) in [
        ("/dev/zero", PathBuf::from("/dev/zero"), "not a regular file (a device)"),
        ("a symlink to /dev/zero", zero_link, "not a regular file (a device)"),
        ("a FIFO", fifo, "not a regular file (a FIFO)"),
        ("a 300 MiB file", big, "over the 64 KiB limit"),
    ] {
        let r = run_bounded(ws.path(), &["verify", target, "--trust-root", key.to_str().unwrap()]);
        assert_eq!(r.code, Some(2), "{what}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{what}: {}", r.stderr);
        assert!(r.max_rss_kib < RSS_LIMIT_KIB, "{what}: peak RSS {} KiB", r.max_rss_kib);
    }
    // a symlink to a real key is followed (the operator chose it; `current.pub -> 2026.pub`)
    let link = ws.path().join("current.pub");
    std::os::unix::fs::symlink(fixture_key("TEST-ONLY-signing.pub"), &link).unwrap();
    let r = run_bounded(ws.path(), &["verify", target, "--trust-root", link.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
}

// ---------------------------------------------------------------- item 3: export files

#[test]
fn oversized_export_files_fail_with_exit_3_before_being_read() {
    let ws = signed_build();
    // (profile, file, size): each over its cap, sparse so it costs nothing
    let cases = [
        ("json-raw", "manifest.json", 300u64 << 20),
        ("json-raw", "provenance.json", 300 << 20),
        ("json-raw", "checksums.txt", 300 << 20),
        ("json-raw", "manifest.dsse.json", 300 << 20),
        ("json-raw", "provenance.dsse.json", 300 << 20),
        ("trivy-db", "signatures/trivy-db.sig", 300 << 20),
    ];
    for (profile, file, len) in cases {
        let (_d, out) = copy_of(ws.path(), profile);
        sparse(&out.join(file), len);
        let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--json", "--trust-root", &root()]);
        assert_eq!(r.code, Some(3), "{file}: {}{}", r.stdout, r.stderr);
        let probs = r.problems();
        assert!(
            probs.iter().any(|(f, why)| f == file && why.contains("limit")),
            "{file}: no size problem: {probs:?}"
        );
        assert!(r.max_rss_kib < RSS_LIMIT_KIB, "{file}: peak RSS {} KiB", r.max_rss_kib);
    }
    // a bundle larger than memory allows: its detached signature is checked
    // as a stream (and fails: the bytes changed), never held whole
    let (_d, out) = copy_of(ws.path(), "trivy-db");
    sparse(&out.join("db.tar.gz"), 600 << 20);
    let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--json", "--trust-root", &root()]);
    assert_eq!(r.code, Some(3));
    let probs = r.problems();
    assert!(
        probs.iter().any(|(f, why)| f == "signatures/trivy-db.sig" && why.contains("does not verify")),
        "{probs:?}"
    );
    assert!(r.max_rss_kib < RSS_LIMIT_KIB, "detached: peak RSS {} KiB", r.max_rss_kib);
}

/// A big mirror lists thousands of files: a `checksums.txt` over 1 MiB
/// and more than 10,000 files are read and checked, in bounded memory.
#[test]
fn an_export_listing_many_files_is_checked_whole() {
    use std::fmt::Write as _;
    let ws = signed_build();
    let (_d, out) = copy_of(ws.path(), "json-raw");
    let mut sums = std::fs::read_to_string(out.join("checksums.txt")).unwrap();
    std::fs::create_dir_all(out.join("extra")).unwrap();
    let n = 12_000;
    for i in 0..n {
        let name = format!("extra/a-long-file-name-like-a-mirror-shard-path-{i:06}.jsonl.zst");
        let body = format!("{i}");
        std::fs::write(out.join(&name), &body).unwrap();
        writeln!(sums, "{}  {name}", sha256_hex(body.as_bytes())).unwrap();
    }
    assert!(sums.len() > 1 << 20, "{} bytes", sums.len());
    std::fs::write(out.join("checksums.txt"), sums).unwrap();
    let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--json"]);
    let probs = r.problems();
    assert!(
        !probs.iter().any(|(_, why)| why.contains("limit") || why.contains("stopped listing")),
        "{probs:?}"
    );
    let checked = r.json()["checked"].as_array().unwrap().len();
    assert!(checked >= n, "only {checked} files checked");
    assert!(r.max_rss_kib < RSS_LIMIT_KIB, "peak RSS {} KiB", r.max_rss_kib);
}

/// JSON that is small on disk but dense in values (`[0,0,0,...]`) costs
/// ~30× its size as a `serde_json::Value`: under the caps it must still
/// fit in 256 MiB, signed or not.
#[test]
fn dense_json_under_the_caps_stays_under_256_mib() {
    let ws = signed_build();
    let dense = |n: usize| {
        let mut s = String::with_capacity(2 * n + 2);
        s.push('[');
        for i in 0..n {
            s.push_str(if i == 0 { "0" } else { ",0" });
        }
        s.push(']');
        s
    };
    let n = 7 << 20; // 14 MiB of text: under the 16 MiB caps
    type Tamper = Box<dyn Fn(&Path, &str)>;
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "manifest.json",
            Box::new(|out, d| {
                let p = out.join("manifest.json");
                let t = std::fs::read_to_string(&p).unwrap();
                let t = t.replacen("\"selectors\": ", &format!("\"selectors\": {d}, \"x-selectors\": "), 1);
                std::fs::write(p, t).unwrap();
            }),
        ),
        (
            "provenance.json",
            Box::new(|out, d| {
                let p = out.join("provenance.json");
                let t = std::fs::read_to_string(&p).unwrap();
                std::fs::write(p, format!("{{\"x\": {d}, {}", &t.trim_start()[1..])).unwrap();
            }),
        ),
        (
            "manifest.dsse.json",
            Box::new(|out, d| {
                let p = out.join("manifest.dsse.json");
                let t = std::fs::read_to_string(&p).unwrap();
                std::fs::write(
                    p,
                    format!("{{\"signatures\": [{{\"sig\": \"\", \"x\": {d}}}], {}", &t.trim_start()[1..]),
                )
                .unwrap();
            }),
        ),
    ];
    let d = dense(n);
    for (file, tamper) in cases {
        let (_t, out) = copy_of(ws.path(), "json-raw");
        tamper(&out, &d);
        for extra in [&[][..], &["--trust-root", &root()][..]] {
            let mut args = vec!["verify", out.to_str().unwrap(), "--json"];
            args.extend_from_slice(extra);
            let r = run_bounded(ws.path(), &args);
            assert_eq!(r.code, Some(3), "{file} {extra:?}: {}{}", r.stdout, r.stderr);
            assert!(r.problems().iter().any(|(f, _)| f == file), "{file}: {:?}", r.problems());
            assert!(r.max_rss_kib < RSS_LIMIT_KIB, "{file} {extra:?}: peak RSS {} KiB", r.max_rss_kib);
        }
    }
}

/// A bundle whose tar stream holds a GNU long-name header of 1 GiB (a
/// few KB of zstd): the tar crate would read that name into memory.
#[test]
fn a_tar_header_bomb_in_the_bundle_is_refused_in_bounded_memory() {
    let ws = signed_build();
    let (_d, out) = copy_of(ws.path(), "json-raw");
    let bundle = out.join("json-raw.tar.zst");
    {
        use std::io::Write;
        let f = std::fs::File::create(&bundle).unwrap();
        let mut z = zstd::stream::write::Encoder::new(f, 3).unwrap();
        let size: u64 = 1 << 30;
        let mut h = [0u8; 512];
        h[..13].copy_from_slice(b"././@LongLink");
        h[100..108].copy_from_slice(b"0000644\0");
        for f in [108, 116] {
            h[f..f + 8].copy_from_slice(b"0000000\0");
        }
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = b'L';
        h[257..265].copy_from_slice(b"ustar  \0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        z.write_all(&h).unwrap();
        let zeros = vec![b'a'; 1 << 20];
        for _ in 0..(size >> 20) {
            z.write_all(&zeros).unwrap();
        }
        z.write_all(&[0u8; 1024]).unwrap();
        z.finish().unwrap();
    }
    // an attacker without the key rewrites the unsigned metadata to match
    let b = std::fs::read(&bundle).unwrap();
    edit_json(&out.join("manifest.json"), |v| {
        v["bundle"]["sha256"] = sha256_hex(&b).into();
        v["bundle"]["bytes"] = b.len().into();
    });
    for f in ["manifest.dsse.json", "provenance.dsse.json", "provenance.json"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, Some(3), "{}{}", r.stdout, r.stderr);
    assert!(r.problems().iter().any(|(f, _)| f.starts_with("json-raw.tar.zst")), "{:?}", r.problems());
    assert!(r.max_rss_kib < RSS_LIMIT_KIB, "peak RSS {} KiB", r.max_rss_kib);
}

// ---------------------------------------------------------------- item 3: special files, symlinks

#[test]
fn symlinks_and_special_files_in_the_export_are_never_followed() {
    let ws = signed_build();
    let secret = ws.path().join("secret.txt");
    std::fs::write(&secret, "outside the export\n").unwrap();
    let secret_sha = sha256_hex(&std::fs::read(&secret).unwrap());
    // a folder of the OCI layout replaced by a symlink to a folder holding the secret
    let (_d, out) = copy_of(ws.path(), "trivy-db");
    let outside = ws.path().join("outside-blobs");
    std::fs::create_dir_all(&outside).unwrap();
    for e in std::fs::read_dir(out.join("oci/blobs/sha256")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(&secret, outside.join(e.file_name())).unwrap();
    }
    std::fs::remove_dir_all(out.join("oci/blobs/sha256")).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("oci/blobs/sha256")).unwrap();
    // the bundle named on the command line works only as a regular file too
    let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, Some(3));
    assert!(!r.stdout.contains(&secret_sha), "digest of a file outside the export printed:\n{}", r.stdout);
    let probs = r.problems();
    assert!(
        probs.iter().any(|(f, why)| f.starts_with("oci/blobs/sha256/") && why.contains("symbolic link")),
        "{probs:?}"
    );
    // a FIFO given as the export itself: refused, no hang
    let fifo = ws.path().join("export-fifo");
    mkfifo(&fifo);
    let r = run_bounded(ws.path(), &["verify", fifo.to_str().unwrap()]);
    assert_eq!(r.code, Some(2), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("not an export folder or bundle"), "{}", r.stderr);
    // a FIFO and a device where the envelopes belong: refused, no hang
    let (_d, out) = copy_of(ws.path(), "json-raw");
    mkfifo(&out.join("manifest.dsse.json"));
    std::fs::remove_file(out.join("provenance.dsse.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", out.join("provenance.dsse.json")).unwrap();
    let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--json", "--trust-root", &root()]);
    assert_eq!(r.code, Some(3));
    let probs = r.problems();
    for f in ["manifest.dsse.json", "provenance.dsse.json"] {
        assert!(
            probs.iter().any(|(pf, why)| pf == f && why.contains("not a regular file")),
            "{f}: {probs:?}"
        );
    }
}

// ---------------------------------------------------------------- item 11

#[test]
fn manifest_paths_outside_the_export_are_refused_unread() {
    let ws = signed_build();
    let secret = ws.path().join("secret.txt");
    std::fs::write(&secret, "outside the export\n").unwrap();
    let secret_sha = sha256_hex(&std::fs::read(&secret).unwrap());
    let abs = secret.display().to_string();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("bundle.path ../", Box::new(|v| v["bundle"]["path"] = "../secret.txt".into())),
        ("bundle.path absolute", Box::new(move |v| v["bundle"]["path"] = abs.clone().into())),
        ("bundle.path via ./", Box::new(|v| v["bundle"]["path"] = "./../secret.txt".into())),
    ];
    for (what, edit) in cases {
        let (d, out) = copy_of(ws.path(), "json-raw");
        std::fs::copy(&secret, d.path().join("secret.txt")).unwrap();
        edit_json(&out.join("manifest.json"), &edit);
        for extra in [&[][..], &["--trust-root", &root()][..]] {
            let mut args = vec!["verify", out.to_str().unwrap(), "--json"];
            args.extend_from_slice(extra);
            let r = run_bounded(ws.path(), &args);
            assert_eq!(r.code, Some(3), "{what}");
            assert!(
                !r.stdout.contains(&secret_sha),
                "{what}: printed the outside file's digest:\n{}",
                r.stdout
            );
            assert!(
                r.problems()
                    .iter()
                    .any(|(f, why)| f == "manifest.json" && why.contains("outside the export")),
                "{what}: {:?}",
                r.problems()
            );
        }
    }
    // files[] (the OCI layout) and contents[] too
    let (d, out) = copy_of(ws.path(), "trivy-db");
    std::fs::copy(&secret, d.path().join("secret.txt")).unwrap();
    edit_json(&out.join("manifest.json"), |v| {
        v["files"][0]["path"] = "oci/../../secret.txt".into();
        v["contents"][0]["path"] = "../evil".into();
    });
    let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, Some(3));
    assert!(!r.stdout.contains(&secret_sha), "{}", r.stdout);
    let probs = r.problems();
    assert!(probs.iter().any(|(_, why)| why.contains("files[] names a path outside")), "{probs:?}");
    assert!(probs.iter().any(|(_, why)| why.contains("contents[] names a member path outside")), "{probs:?}");
}

// ---------------------------------------------------------------- item 13

#[test]
fn a_closed_stdout_ends_verify_quietly() {
    let ws = signed_build();
    let out = ws.path().join("out/json-raw");
    for json in [false, true] {
        // a pipe whose reader is already gone: every write fails with EPIPE
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        unsafe { libc::close(fds[0]) };
        let w = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
        let root = root();
        let mut args = vec!["verify", out.to_str().unwrap(), "--trust-root", root.as_str()];
        if json {
            args.push("--json");
        }
        let r = run_bounded_to(ws.path(), &args, Some(w));
        assert!(
            r.code == Some(0) || r.signal == Some(libc::SIGPIPE),
            "json={json}: exit {:?} signal {:?}\n{}",
            r.code,
            r.signal,
            r.stderr
        );
        assert!(r.stderr.is_empty(), "json={json}: not quiet:\n{}", r.stderr);
    }
}

// ---------------------------------------------------------------- item 15

#[test]
fn require_signature_without_a_trust_root_says_signed_not_checked() {
    let ws = signed_build();
    let out = ws.path().join("out/json-raw");
    let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--require-signature"]);
    assert_eq!(r.code, Some(3), "{}", r.stdout);
    assert!(r.stdout.contains("signed, not checked: no trust root given"), "{}", r.stdout);
    assert!(!r.stdout.contains("invalid"), "{}", r.stdout);
    let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--require-signature", "--json"]);
    assert_eq!(r.code, Some(3));
    assert_eq!(r.json()["signature"], "unchecked");
    assert!(r.problems().iter().all(|(_, why)| why.contains("no trust root given")), "{:?}", r.problems());
}

// ---------------------------------------------------------------- item 16

const RSA_PUB: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC7Gq7hm6MbwOxWuEjbrPHZMXlz
FYCpumWU9aI+TKqf5qystqWT9llWis7DUxIx2EqGFGDGskv81R5d8R9VXymBBO1Q
XOXMCHBAKvUApxy8ySMObRtva4lFhA3goHKqTiJI4Hbezrjk8jIHzwIMUcnqJ2Ns
gTxx3CyatklJcAc8PQIDAQAB
-----END PUBLIC KEY-----
";

const EC_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEVCN8eLnOAS6A1xYb/gl1o80R7yaX
AnErBfV0FcUKliqGdgfRYxUwt7FyJBm0nHP2WorVJr5/0lRej/7qOM6YZw==
-----END PUBLIC KEY-----
";

#[test]
fn trust_root_errors_name_what_the_key_is() {
    let ws = signed_build();
    let out = ws.path().join("out/json-raw");
    std::fs::write(ws.path().join("rsa.pub"), RSA_PUB).unwrap();
    std::fs::write(ws.path().join("ec.pub"), EC_PUB).unwrap();
    let private = fixture_key("TEST-ONLY-signing.key").display().to_string();
    for (key, says) in [
        ("rsa.pub", "rsa.pub: not an Ed25519 public key (found RSA, OID 1.2.840.113549.1.1.1)"),
        ("ec.pub", "ec.pub: not an Ed25519 public key (found EC (ECDSA), OID 1.2.840.10045.2.1)"),
        (private.as_str(), "a private key (PRIVATE KEY), not a public key"),
    ] {
        let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--trust-root", key]);
        assert_eq!(r.code, Some(2), "{key}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{key}: {}", r.stderr);
        assert!(!r.stderr.contains("1.3.101.112"), "{key}: names Ed25519's OID: {}", r.stderr);
        assert!(!r.stderr.contains("MIG") && !r.stderr.contains("MC4C"), "{key}: key text in the message");
    }
}

#[test]
fn profile_mismatch_and_names_print_clean_text() {
    let ws = signed_build();
    let out = ws.path().join("out/json-web");
    let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap(), "--profile", "json-raw"]);
    assert_eq!(r.code, Some(3));
    assert!(r.stdout.contains("this is an export of profile json-web, not json-raw"), "{}", r.stdout);
    assert!(!r.stdout.contains("\\\""), "escaped quotes in the text report:\n{}", r.stdout);
    // a hostile name is still escaped: one line per problem, no terminal escape
    let (_d, out) = copy_of(ws.path(), "json-raw");
    std::fs::write(out.join("x\nFAIL none\u{1b}[31m.json"), b"x").unwrap();
    let r = run_bounded(ws.path(), &["verify", out.to_str().unwrap()]);
    assert_eq!(r.code, Some(3));
    assert!(!r.stdout.contains('\u{1b}'), "{}", r.stdout);
    assert!(r.stdout.contains("FAIL x\\nFAIL none\\u{1b}[31m.json: not listed"), "{}", r.stdout);
}

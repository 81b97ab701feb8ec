//! `push`, `pull` and `verify oci://` against a real registry
//! (`docker-registry` 2.8 on 127.0.0.1, which has no referrers API, so the
//! referrers-tag fallback is what is exercised), with and without
//! htpasswd basic auth, and behind `tests/tools/registry_proxy.py` (a
//! proxy that fails every third request, or demands bearer tokens from
//! its own token realm). `push` runs no other program.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn registry_bin() -> Option<PathBuf> {
    tool("EXPORT_CENTER_REGISTRY", Some("/usr/bin/docker-registry"), "docker-registry")
}

/// A signed workspace over the samples: trivy-db and a mirror, signed by
/// the test-only fixture key `key`.
fn workspace(key: &str) -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("samples"), &ws.path().join("samples"));
    install_key(ws.path(), key, "k.key");
    std::fs::write(
        ws.path().join("profiles.toml"),
        "[workspace]\nsource-date-epoch = 1735689600\n[signing]\nkey = \"keys/k.key\"\n\
         [sources.pypi]\nformat = \"osv\"\npath = \"samples/osv/pypi\"\n\
         [sources.npm]\nformat = \"osv\"\npath = \"samples/osv/npm\"\n\
         [sources.openvex]\nformat = \"openvex\"\npath = \"samples/vex/openvex\"\n\
         [profiles.trivy-db]\nkind = \"trivy:db\"\ninputs = [\"pypi\", \"npm\"]\n\
         [profiles.mirror]\nkind = \"mirror:full\"\ninputs = [\"pypi\", \"npm\", \"openvex\"]\nkeep-generations = 3\n",
    )
    .unwrap();
    ws
}

/// A fixture public key's path, as a flag value.
fn key_arg(name: &str) -> String {
    fixture_key(name).display().to_string()
}

/// The binary with no credentials from the user's environment (an empty
/// Docker config folder), plus `env`.
fn ec(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let empty = tempfile::tempdir().unwrap();
    let mut c = cmd(ws);
    c.env_remove("REGISTRY_AUTH").env("DOCKER_CONFIG", empty.path()).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    finish(c.output().unwrap())
}

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// `verify oci://… --insecure --trust-root KEY` with `env`.
fn verify_oci(ws: &Path, reference: &str, key: &str, env: &[(&str, &str)]) -> Run {
    ec(ws, &["verify", reference, "--insecure", "--trust-root", key], env)
}

/// A plain GET/HEAD to the registry (the test's own client, not ours).
fn http_get(port: u16, path: &str, accept: &str) -> (u16, Vec<u8>, Option<String>) {
    let r = ureq::get(&format!("http://127.0.0.1:{port}{path}")).set("Accept", accept).call();
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = resp.status();
    let digest = resp.header("Docker-Content-Digest").map(str::to_string);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    (status, body, digest)
}

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The digest `oci/index.json` of an export names.
fn layout_digest(export: &Path) -> String {
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("oci/index.json")).unwrap()).unwrap();
    idx["manifests"][0]["digest"].as_str().unwrap().to_string()
}

#[test]
fn push_pull_and_verify_carry_every_file_and_the_signatures_as_referrers() {
    let Some(bin) = registry_bin() else { return };
    let reg = start_registry(&bin);
    let ws = workspace("TEST-ONLY-signing.key");
    build_ok(ws.path(), &["trivy-db"]);
    let export = ws.path().join("out/trivy-db");
    let to = format!("127.0.0.1:{}/ec/trivy-db", reg.port);
    let r = ec(ws.path(), &["push", "trivy-db", "--to", &to, "--insecure", "--json"], &[]);
    assert_eq!(r.code, 0, "push:\n{}\n{}", r.stdout, r.stderr);
    let pushed = &r.json()["pushed"][0];
    assert_eq!(pushed["reference"], format!("{to}:2"), "the layout's tag by default");
    assert_eq!(pushed["tags"], serde_json::json!(["2", "gen-1"]), "and the generation's tag");
    let digest = layout_digest(&export);
    assert_eq!(pushed["digest"], digest.as_str());
    assert!(pushed["blobsUploaded"].as_u64().unwrap() >= 8, "{pushed}");
    assert_eq!(pushed["referrersApi"], false, "docker-registry 2.8 has no referrers API");

    // the tag names our manifest, byte for byte
    let (status, body, d) = http_get(reg.port, "/v2/ec/trivy-db/manifests/2", MANIFEST);
    assert_eq!(status, 200);
    assert_eq!(d.as_deref(), Some(digest.as_str()));
    assert_eq!(body, std::fs::read(export.join("oci/blobs/sha256").join(&digest[7..])).unwrap());
    // the referrers are listed by the fallback tag, each with our manifest as subject
    let (status, body, _) =
        http_get(reg.port, &format!("/v2/ec/trivy-db/manifests/sha256-{}", &digest[7..]), INDEX);
    assert_eq!(status, 200, "the referrers tag exists");
    let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut kinds = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let (status, body, _) = http_get(
            reg.port,
            &format!("/v2/ec/trivy-db/manifests/{}", m["digest"].as_str().unwrap()),
            MANIFEST,
        );
        assert_eq!(status, 200);
        let man: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(man["subject"]["digest"], digest.as_str());
        assert_eq!(man["artifactType"], m["artifactType"]);
        kinds.push(format!(
            "{} {}",
            m["artifactType"].as_str().unwrap(),
            m["annotations"]["dev.export-center.file"].as_str().unwrap_or("-")
        ));
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "application/vnd.dsse.envelope.v1+json manifest.dsse.json",
            "application/vnd.dsse.envelope.v1+json provenance.dsse.json",
            "application/vnd.export-center.export.v1+json -",
            "application/vnd.in-toto+json provenance.json",
        ]
    );

    // a second push is byte-identical and sends nothing
    let again = ec(ws.path(), &["push", "trivy-db", "--to", &to, "--insecure", "--json"], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let p2 = &again.json()["pushed"][0];
    assert_eq!((p2["blobsUploaded"].as_u64(), p2["manifestsUploaded"].as_u64()), (Some(0), Some(0)), "{p2}");
    assert_eq!(p2["referrers"], pushed["referrers"], "the same referrer manifests");

    // pull re-creates the folder byte for byte, and verify accepts it
    let pulled = ws.path().join("pulled");
    let r = ec(ws.path(), &["pull", &format!("oci://{to}:2"), "--out", "pulled", "--insecure"], &[]);
    assert_eq!(r.code, 0, "pull:\n{}", r.stderr);
    assert_eq!(tree(&pulled), tree(&export), "pull gives back every file, byte for byte");
    let v = ec(ws.path(), &["verify", "pulled", "--trust-root", &key_arg("TEST-ONLY-signing.pub")], &[]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    // pull refuses a folder that holds something
    let r = ec(ws.path(), &["pull", &format!("oci://{to}:2"), "--out", "pulled", "--insecure"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    // verify oci:// checks the signatures that travelled
    let oci = format!("oci://{to}:2");
    let ok = verify_oci(ws.path(), &oci, &key_arg("TEST-ONLY-signing.pub"), &[]);
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("VERIFIED oci://"), "{}", ok.stdout);
    let other = verify_oci(ws.path(), &oci, &key_arg("TEST-ONLY-other.pub"), &[]);
    assert_eq!(other.code, 3, "another key's trust root fails:\n{}", other.stdout);

    // an attacker with push rights re-signs with another key: the same
    // artifact (same DB, same pinned time), its signature referrers replaced
    let evil = workspace("TEST-ONLY-other.key");
    build_ok(evil.path(), &["trivy-db"]);
    assert_eq!(layout_digest(&evil.path().join("out/trivy-db")), digest, "the same subject");
    let r = ec(evil.path(), &["push", "trivy-db", "--to", &to, "--insecure"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let replaced = ec(
        ws.path(),
        &["verify", &oci, "--insecure", "--trust-root", &key_arg("TEST-ONLY-signing.pub"), "--json"],
        &[],
    );
    assert_eq!(replaced.code, 3, "a replaced referrer fails verify:\n{}", replaced.stdout);
    assert_eq!(replaced.json()["signature"], "invalid", "{}", replaced.stdout);
}

/// A registry on 127.0.0.1 with htpasswd basic auth (a test-only user).
fn start_registry_with_auth(bin: &Path) -> (Registry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // TEST-ONLY fixture: bcrypt of "s3cret-test-only" for user ec-test
    std::fs::write(
        dir.path().join("htpasswd"),
        "ec-test:$2b$12$AOm5MBBxEQQ05IVeVbIm3etTtjlYsPDqaEA6fsF2Yzy04VoF80goG\n",
    )
    .unwrap();
    let auth =
        format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", dir.path().join("htpasswd").display());
    (start_registry_with(bin, &auth), dir)
}

fn wait_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

#[test]
fn basic_auth_takes_credentials_from_registry_auth_or_the_docker_config() {
    let Some(bin) = registry_bin() else { return };
    let (reg, _dir) = start_registry_with_auth(&bin);
    let ws = workspace("TEST-ONLY-signing.key");
    build_ok(ws.path(), &["trivy-db"]);
    let to = format!("127.0.0.1:{}/ec/db", reg.port);
    let push = |env: &[(&str, &str)]| ec(ws.path(), &["push", "trivy-db", "--to", &to, "--insecure"], env);
    let r = push(&[]);
    assert_eq!(r.code, 1, "no credentials:\n{}", r.stderr);
    assert!(r.stderr.contains("authentication failed") && r.stderr.contains("REGISTRY_AUTH"), "{}", r.stderr);
    let r = push(&[("REGISTRY_AUTH", "ec-test:wrong")]);
    assert_eq!(r.code, 1, "a wrong password:\n{}", r.stderr);
    assert!(!r.stderr.contains("wrong"), "the password is never shown:\n{}", r.stderr);
    let r = push(&[("REGISTRY_AUTH", "ec-test:s3cret-test-only")]);
    assert_eq!(r.code, 0, "REGISTRY_AUTH:\n{}", r.stderr);
    // the Docker config's entry for this registry
    let cfg = tempfile::tempdir().unwrap();
    let auth = base64_encode(b"ec-test:s3cret-test-only");
    std::fs::write(
        cfg.path().join("config.json"),
        format!(r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"{auth}"}}}}}}"#, reg.port),
    )
    .unwrap();
    let dc = cfg.path().to_str().unwrap();
    let r = ec(
        ws.path(),
        &["pull", &format!("oci://{to}:2"), "--out", "pulled", "--insecure"],
        &[("DOCKER_CONFIG", dc)],
    );
    assert_eq!(r.code, 0, "pull with the Docker config:\n{}", r.stderr);
    let v = ec(
        ws.path(),
        &[
            "verify",
            &format!("oci://{to}:2"),
            "--insecure",
            "--trust-root",
            &key_arg("TEST-ONLY-signing.pub"),
        ],
        &[("DOCKER_CONFIG", dc)],
    );
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    // a credential helper the Docker config names (the only program push may run)
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-ectest");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread host\necho \"$host\" > \"$(dirname \"$0\")/asked\"\nprintf '{\"Username\":\"ec-test\",\"Secret\":\"s3cret-test-only\"}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        cfg.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"127.0.0.1:{}":"ectest"}}}}"#, reg.port),
    )
    .unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let r = ec(
        ws.path(),
        &["pull", &format!("oci://{to}:2"), "--out", "pulled-2", "--insecure"],
        &[("DOCKER_CONFIG", dc), ("PATH", &path)],
    );
    assert_eq!(r.code, 0, "pull with a credential helper:\n{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(bin.path().join("asked")).unwrap().trim(),
        format!("127.0.0.1:{}", reg.port)
    );
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `tests/tools/registry_proxy.py` in front of `upstream`; stopped when dropped.
struct Proxy {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn start(upstream: u16, extra: &[&str]) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let log = dir.path().join("log");
        let mut child = Command::new("python3")
            .arg(repo().join("tests/tools/registry_proxy.py"))
            .arg(upstream.to_string())
            .arg(&port_file)
            .arg(&log)
            .args(extra)
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                let port = p.trim().parse().unwrap();
                wait_port(port);
                return Proxy { child, port, log, _dir: dir };
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the proxy did not start");
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

#[test]
fn push_and_pull_get_through_a_registry_that_fails_every_third_request_and_drops_connections() {
    let Some(bin) = registry_bin() else { return };
    let reg = start_registry(&bin);
    let proxy = Proxy::start(reg.port, &["--fail-every", "3", "--drop-every", "7"]);
    let ws = workspace("TEST-ONLY-signing.key");
    build_ok(ws.path(), &["trivy-db"]);
    let to = format!("127.0.0.1:{}/ec/flaky", proxy.port);
    // small chunks: the DB goes up in several PATCH requests, some of which fail
    let r = ec(
        ws.path(),
        &["push", "trivy-db", "--to", &to, "--insecure", "--chunk-size", "1024", "--json"],
        &[],
    );
    assert_eq!(r.code, 0, "push through a flaky registry:\n{}", r.stderr);
    let p = &r.json()["pushed"][0];
    assert!(p["retries"].as_u64().unwrap() > 0, "{p}");
    let lines = proxy.lines();
    assert!(lines.iter().any(|l| l.ends_with(" 503")), "failures were injected");
    assert!(lines.iter().any(|l| l.ends_with(" dropped")), "connections were dropped");
    assert!(
        lines.iter().filter(|l| l.starts_with("PATCH ") && l.ends_with(" 202")).count() >= 3,
        "chunked: {lines:?}"
    );
    // the result is whole: pulled straight from the registry, it verifies
    let direct = format!("oci://127.0.0.1:{}/ec/flaky:2", reg.port);
    let v = verify_oci(ws.path(), &direct, &key_arg("TEST-ONLY-signing.pub"), &[]);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    // pulled through the flaky proxy, too
    let r = ec(ws.path(), &["pull", &format!("oci://{to}:2"), "--out", "pulled", "--insecure"], &[]);
    assert_eq!(r.code, 0, "pull through a flaky registry:\n{}", r.stderr);
    assert_eq!(tree(&ws.path().join("pulled")), tree(&ws.path().join("out/trivy-db")));
    // a second push writes nothing: no upload session, no PUT, no PATCH
    let before = proxy.lines().len();
    let r = ec(ws.path(), &["push", "trivy-db", "--to", &to, "--insecure"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let writes: Vec<String> = proxy.lines()[before..]
        .iter()
        .filter(|l| ["POST ", "PUT ", "PATCH ", "DELETE "].iter().any(|m| l.starts_with(m)))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "a re-push wrote: {writes:?}");
}

#[test]
fn the_bearer_token_flow_gets_a_token_from_the_challenge_realm() {
    let Some(bin) = registry_bin() else { return };
    let reg = start_registry(&bin);
    // blob downloads are redirected to "storage" on another host name, which
    // refuses a request that still carries the registry's credentials
    let proxy = Proxy::start(reg.port, &["--bearer", "ec-test:s3cret-test-only", "--redirect-blobs", "1"]);
    let ws = workspace("TEST-ONLY-signing.key");
    build_ok(ws.path(), &["trivy-db"]);
    let to = format!("127.0.0.1:{}/ec/tok", proxy.port);
    let r = ec(ws.path(), &["push", "trivy-db", "--to", &to, "--insecure"], &[]);
    assert_eq!(r.code, 1, "the token realm refuses anonymous requests:\n{}", r.stderr);
    assert!(r.stderr.contains("authentication failed"), "{}", r.stderr);
    let creds = [("REGISTRY_AUTH", "ec-test:s3cret-test-only")];
    let r = ec(ws.path(), &["push", "trivy-db", "--to", &to, "--insecure"], &creds);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        proxy.lines().iter().any(|l| l.starts_with("GET /token?") && l.ends_with(" 200")),
        "a token was fetched"
    );
    let v = verify_oci(ws.path(), &format!("oci://{to}:2"), &key_arg("TEST-ONLY-signing.pub"), &creds);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    let lines = proxy.lines();
    assert!(
        lines.iter().any(|l| l.starts_with("GET /v2/ec/tok/blobs/") && l.ends_with(" 307")),
        "redirected"
    );
    assert!(lines.iter().any(|l| l.starts_with("GET /storage/") && l.ends_with(" 200")), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("GET /storage/") && l.ends_with(" 400")),
        "credentials leaked: {lines:?}"
    );
}

#[test]
fn a_mirror_and_a_kept_generation_round_trip_through_the_registry() {
    let Some(bin) = registry_bin() else { return };
    let reg = start_registry(&bin);
    let ws = workspace("TEST-ONLY-signing.key");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let build = |epoch: u64| {
        let r = finish(
            cmd(ws.path())
                .args(["build", "mirror"])
                .env("SOURCE_DATE_EPOCH", epoch.to_string())
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    };
    build(now);
    // a changed advisory: generation 2
    let adv = walkdir::WalkDir::new(ws.path().join("samples/osv/pypi"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&adv).unwrap()).unwrap();
    doc["summary"] = serde_json::json!("changed for generation 2");
    std::fs::write(&adv, serde_json::to_vec(&doc).unwrap()).unwrap();
    build(now + 60);
    let to = format!("127.0.0.1:{}/ec/mirror", reg.port);
    let r = ec(ws.path(), &["push", "mirror", "--to", &to, "--insecure", "--generation", "1", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["pushed"][0]["generation"], 1);
    assert_eq!(r.json()["pushed"][0]["reference"], format!("{to}:1"), "a mirror's tag is its generation");
    let r = ec(ws.path(), &["push", "mirror", "--to", &to, "--insecure", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["pushed"][0]["reference"], format!("{to}:2"));
    let r = ec(ws.path(), &["push", "mirror", "--to", &to, "--insecure", "--generation", "9"], &[]);
    assert_eq!(r.code, 2, "a generation that is not kept:\n{}", r.stderr);
    let gen1 = ws.path().join("out/.generations/mirror/1");
    for (tag, dir, by) in
        [("1", &gen1, "tag"), ("2", &ws.path().join("out/mirror"), "tag"), ("g1", &gen1, "--generation")]
    {
        let out = format!("pulled-{tag}");
        let r = if by == "tag" {
            ec(ws.path(), &["pull", &format!("oci://{to}:{tag}"), "--out", &out, "--insecure"], &[])
        } else {
            ec(
                ws.path(),
                &["pull", &format!("oci://{to}"), "--generation", "1", "--out", &out, "--insecure"],
                &[],
            )
        };
        assert_eq!(r.code, 0, "pull {tag}:\n{}", r.stderr);
        assert_eq!(tree(&ws.path().join(&out)), tree(dir), "generation {tag} ({by}) byte for byte");
        let v = ec(ws.path(), &["verify", &out, "--trust-root", &key_arg("TEST-ONLY-signing.pub")], &[]);
        assert_eq!(v.code, 0, "{}", v.stdout);
    }
}

#[test]
fn push_refuses_what_it_cannot_send() {
    let ws = workspace("TEST-ONLY-signing.key");
    // nothing published yet
    let r = ec(ws.path(), &["push", "trivy-db", "--to", "127.0.0.1:9/ec/x", "--insecure"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    for bad in ["trivy-db:2", "127.0.0.1:9/UPPER", "127.0.0.1:9/x@sha256:00"] {
        let r = ec(ws.path(), &["push", "trivy-db", "--to", bad], &[]);
        assert_eq!(r.code, 2, "--to {bad}: {}", r.stderr);
    }
    build_ok(ws.path(), &["trivy-db"]);
    // a tampered export is never pushed (the registry port is closed: nothing is contacted first)
    let db = ws.path().join("out/trivy-db/db.tar.gz");
    let mut b = std::fs::read(&db).unwrap();
    b[100] ^= 1;
    std::fs::write(&db, &b).unwrap();
    let r = ec(ws.path(), &["push", "trivy-db", "--to", "127.0.0.1:9/ec/x", "--insecure"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("nothing was pushed") && r.stderr.contains("db.tar.gz"), "{}", r.stderr);
    // nor one holding a file checksums.txt does not list
    b = std::fs::read(&db).unwrap();
    b[100] ^= 1;
    std::fs::write(&db, b).unwrap();
    std::fs::write(ws.path().join("out/trivy-db/oci/extra"), b"x").unwrap();
    let r = ec(ws.path(), &["push", "trivy-db", "--to", "127.0.0.1:9/ec/x", "--insecure"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("oci/extra: not listed"), "{}", r.stderr);
}

/// A monolithic blob upload with the test's own HTTP client.
fn raw_blob(port: u16, repo: &str, bytes: &[u8]) -> String {
    let d = format!("sha256:{}", sha256_hex(bytes));
    let r = ureq::post(&format!("http://127.0.0.1:{port}/v2/{repo}/blobs/uploads/")).call().unwrap();
    let loc = r.header("Location").unwrap().to_string();
    let sep = if loc.contains('?') { '&' } else { '?' };
    ureq::put(&format!("{loc}{sep}digest={d}")).send_bytes(bytes).unwrap();
    d
}

fn raw_manifest(port: u16, repo: &str, reference: &str, media: &str, bytes: &[u8]) {
    ureq::put(&format!("http://127.0.0.1:{port}/v2/{repo}/manifests/{reference}"))
        .set("Content-Type", media)
        .send_bytes(bytes)
        .unwrap();
}

/// A hostile registry: the companion is replaced by one naming `../escape`,
/// then by one whose blob does not match its digest. `pull` writes nothing
/// outside `--out`, leaves no `--out`, and exits 3.
#[test]
fn pull_refuses_a_hostile_companion_and_writes_nothing() {
    let Some(bin) = registry_bin() else { return };
    let reg = start_registry(&bin);
    let ws = workspace("TEST-ONLY-signing.key");
    build_ok(ws.path(), &["trivy-db"]);
    let to = format!("127.0.0.1:{}/ec/hostile", reg.port);
    let r = ec(ws.path(), &["push", "trivy-db", "--to", &to, "--insecure"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let digest = layout_digest(&ws.path().join("out/trivy-db"));
    let (_, body, _) =
        http_get(reg.port, &format!("/v2/ec/hostile/manifests/sha256-{}", &digest[7..]), INDEX);
    let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let subject = serde_json::json!({"mediaType": MANIFEST, "digest": digest, "size": std::fs::read(ws.path().join("out/trivy-db/oci/blobs/sha256").join(&digest[7..])).unwrap().len()});
    let empty = raw_blob(reg.port, "ec/hostile", b"{}");
    let evil = raw_blob(reg.port, "ec/hostile", b"owned\n");
    // (a registry refuses manifests naming blobs it lacks or with wrong sizes;
    // bytes altered in transit are the corrupting proxy's test below)
    for (title, keep_ours, why) in [
        ("../escape", false, "a path outside the folder"),
        ("a/../../escape", false, "a path outside the folder, hidden"),
        ("checksums.txt", true, "a second companion"),
    ] {
        let (layer_digest, size) = (evil.clone(), 6);
        let companion = serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "artifactType": "application/vnd.export-center.export.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer_digest, "size": size,
                        "annotations": {"org.opencontainers.image.title": title}}],
            "subject": subject,
        });
        let bytes = serde_json::to_vec(&companion).unwrap();
        let cd = format!("sha256:{}", sha256_hex(&bytes));
        raw_manifest(reg.port, "ec/hostile", &cd, MANIFEST, &bytes);
        let mut entries: Vec<serde_json::Value> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| keep_ours || m["artifactType"] != "application/vnd.export-center.export.v1+json")
            .cloned()
            .collect();
        entries.push(serde_json::json!({"mediaType": MANIFEST, "digest": cd, "size": bytes.len(),
                                        "artifactType": "application/vnd.export-center.export.v1+json"}));
        let idx = serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}),
        )
        .unwrap();
        raw_manifest(reg.port, "ec/hostile", &format!("sha256-{}", &digest[7..]), INDEX, &idx);
        let r = ec(ws.path(), &["pull", &format!("oci://{to}:2"), "--out", "sub/pulled", "--insecure"], &[]);
        assert_ne!(r.code, 0, "{why}: pull must fail");
        assert_eq!(r.code, 3, "{why}:\n{}", r.stderr);
        assert!(!ws.path().join("sub/pulled").exists(), "{why}: no half-pulled folder");
        assert!(
            !ws.path().join("sub/escape").exists() && !ws.path().join("escape").exists(),
            "{why}: nothing outside"
        );
        let leftovers: Vec<_> = std::fs::read_dir(ws.path().join("sub")).unwrap().collect();
        assert!(leftovers.is_empty(), "{why}: temporary folders are removed: {leftovers:?}");
    }
}

/// Bytes altered in transit (the proxy flips a byte of every blob it
/// serves): `pull` and `verify oci://` catch the digest mismatch (exit 3)
/// and leave nothing behind.
#[test]
fn bytes_altered_in_transit_are_caught() {
    let Some(bin) = registry_bin() else { return };
    let reg = start_registry(&bin);
    let ws = workspace("TEST-ONLY-signing.key");
    build_ok(ws.path(), &["trivy-db"]);
    let r = ec(
        ws.path(),
        &["push", "trivy-db", "--to", &format!("127.0.0.1:{}/ec/x", reg.port), "--insecure"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let proxy = Proxy::start(reg.port, &["--corrupt-blobs", "1"]);
    let from = format!("oci://127.0.0.1:{}/ec/x:2", proxy.port);
    let r = ec(ws.path(), &["pull", &from, "--out", "pulled", "--insecure"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("expected"), "names the mismatch: {}", r.stderr);
    assert!(!ws.path().join("pulled").exists());
    let leftovers: Vec<_> = std::fs::read_dir(ws.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".pull-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let v = verify_oci(ws.path(), &from, &key_arg("TEST-ONLY-signing.pub"), &[]);
    assert_eq!(v.code, 3, "{}\n{}", v.stdout, v.stderr);
}

/// A registry with the referrers API (docker-registry 2.8 behind the
/// proxy's `--referrers-api`, which answers the OCI 1.1 endpoint from the
/// manifests pushed through it): `push` writes no fallback tag, `pull` and
/// `verify oci://` read the API; after a re-sign with another key the API
/// lists both envelopes, and `verify` refuses to pick (exit 3).
#[test]
fn with_the_referrers_api_no_fallback_tag_is_written() {
    let Some(bin) = registry_bin() else { return };
    let reg = start_registry(&bin);
    let proxy = Proxy::start(reg.port, &["--referrers-api", "1"]);
    let ws = workspace("TEST-ONLY-signing.key");
    build_ok(ws.path(), &["trivy-db"]);
    let to = format!("127.0.0.1:{}/ec/api", proxy.port);
    let r = ec(ws.path(), &["push", "trivy-db", "--to", &to, "--insecure", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["pushed"][0]["referrersApi"], true);
    let digest = layout_digest(&ws.path().join("out/trivy-db"));
    let (status, _, _) = http_get(reg.port, &format!("/v2/ec/api/manifests/sha256-{}", &digest[7..]), INDEX);
    assert_eq!(status, 404, "no fallback tag on a registry with the referrers API");
    let (_, body, _) = http_get(proxy.port, &format!("/v2/ec/api/referrers/{digest}"), INDEX);
    let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 4, "{listed}");
    let r =
        ec(ws.path(), &["pull", &format!("oci://{to}:2"), "--out", "pulled", "--insecure", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["referrersApi"], true);
    assert_eq!(tree(&ws.path().join("pulled")), tree(&ws.path().join("out/trivy-db")));
    let oci = format!("oci://{to}:2");
    let key = key_arg("TEST-ONLY-signing.pub");
    let v = verify_oci(ws.path(), &oci, &key, &[]);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    let evil = workspace("TEST-ONLY-other.key");
    build_ok(evil.path(), &["trivy-db"]);
    let r = ec(evil.path(), &["push", "trivy-db", "--to", &to, "--insecure"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = verify_oci(ws.path(), &oci, &key, &[]);
    assert_eq!(v.code, 3, "{}\n{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("refusing to guess"), "{}", v.stdout);
}

/// The README's nightly job, run as written (the registry host swapped
/// for the test registry and `--insecure` added, `/media/kit` for a
/// temporary folder), with only this tool and POSIX tools on the PATH:
/// it builds, verifies, pushes with signatures and stages a kit, and each
/// consumer accepts the result: `verify oci://` of both pushed exports
/// with the trust root and `--max-age`, and the kit's own script.
#[test]
fn the_readme_nightly_job_runs_as_written() {
    let Some(bin) = registry_bin() else { return };
    let reg = start_registry(&bin);
    let ws = workspace("TEST-ONLY-signing.key");
    let toml = ws.path().join("profiles.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("[profiles.json-raw]\nkind = \"json:raw\"\ninputs = [\"pypi\", \"npm\", \"openvex\"]\n");
    std::fs::write(&toml, text).unwrap();
    std::fs::copy(key_arg("TEST-ONLY-signing.pub"), ws.path().join("keys/export.pub")).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = &readme[readme.find("## Nightly job").expect("README has a Nightly job section")..];
    let start = section.find("```sh\n").unwrap() + 6;
    let script = &section[start..start + section[start..].find("```").unwrap()];
    let media = tempfile::tempdir().unwrap();
    let registry = format!("127.0.0.1:{}", reg.port);
    let script: String = script
        .replace("registry.example", &registry)
        .replace("/media/kit", media.path().to_str().unwrap())
        .lines()
        .map(|l| {
            if l.starts_with("export-center push") || l.starts_with("export-center verify oci://") {
                format!("{l} --insecure\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(script.contains("--insecure"), "the recipe pushes: {script}");
    std::fs::write(ws.path().join("nightly.sh"), &script).unwrap();
    let bindir = Path::new(env!("CARGO_BIN_EXE_export-center")).parent().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let o = Command::new("sh")
        .arg("nightly.sh")
        .current_dir(ws.path())
        .env("PATH", format!("{}:/usr/bin:/bin", bindir.display()))
        .env_remove("REGISTRY_AUTH")
        .env("DOCKER_CONFIG", empty.path())
        .output()
        .unwrap();
    let r = finish(o);
    assert_eq!(r.code, 0, "the nightly job:\n{script}\n{}\n{}", r.stdout, r.stderr);
    let key = key_arg("TEST-ONLY-signing.pub");
    for reference in
        [format!("oci://{registry}/evidence/trivy-db:2"), format!("oci://{registry}/evidence/mirror:1")]
    {
        let v = ec(
            ws.path(),
            &["verify", &reference, "--insecure", "--trust-root", &key, "--max-age", "1d"],
            &[],
        );
        assert_eq!(v.code, 0, "{reference}:\n{}\n{}", v.stdout, v.stderr);
    }
    let kits: Vec<PathBuf> = std::fs::read_dir(media.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(kits.len(), 1, "one kit for the night: {kits:?}");
    let o = Command::new("sh").arg(kits[0].join("offline-kit/verify-offline.sh")).output().unwrap();
    assert!(o.status.success(), "the kit's script:\n{}", String::from_utf8_lossy(&o.stdout));
}

//! Mirrors (`mirror:full`) checked by their real consumers: python-tuf's
//! ngclient over HTTP on 127.0.0.1, skopeo and a `docker-registry`, plain
//! `zstd | tar`; and the engine's invariants for them (reproducible,
//! generations, incremental).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const PROFILE: &str = "[profiles.mirror]\nkind = \"mirror:full\"\ninputs = [\"pypi\", \"npm\", \"openvex\", \"cyclonedx\"]\nkeep-generations = 7\nexpires-days = { timestamp = 2, snapshot = 7, targets = 30, root = 365 }\n";

/// A workspace over the samples with a mirror profile signed by `key`
/// (a test-only fixture key).
fn mirror_ws(key: &str) -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("samples"), &ws.path().join("samples"));
    install_key(ws.path(), key, "k.key");
    std::fs::write(
        ws.path().join("profiles.toml"),
        format!(
            "[workspace]\nsource-date-epoch = 1735689600\n[signing]\nkey = \"keys/k.key\"\n\
             [sources.pypi]\nformat = \"osv\"\npath = \"samples/osv/pypi\"\nshards = 4\n\
             [sources.npm]\nformat = \"osv\"\npath = \"samples/osv/npm\"\n\
             [sources.openvex]\nformat = \"openvex\"\npath = \"samples/vex/openvex\"\n\
             [sources.cyclonedx]\nformat = \"cyclonedx\"\npath = \"samples/sbom/cyclonedx\"\n{PROFILE}"
        ),
    )
    .unwrap();
    ws
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `build --json` at the pinned time `epoch`, which must succeed.
fn build_at(ws: &Path, epoch: i64) -> serde_json::Value {
    build_with(ws, epoch, &[])
}

fn build_with(ws: &Path, epoch: i64, extra: &[&str]) -> serde_json::Value {
    let r = finish(
        cmd(ws)
            .args(["build", "--json"])
            .args(extra)
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "build failed:\n{}\n{}", r.stdout, r.stderr);
    r.json()
}

fn export_json(ws: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(ws.join("out/mirror/export.json")).unwrap()).unwrap()
}

/// Every file below `dir` (relative path → bytes), skipping dot-folders.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut m = std::collections::BTreeMap::new();
    let visible = |e: &walkdir::DirEntry| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.');
    for e in walkdir::WalkDir::new(dir).into_iter().filter_entry(visible) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            m.insert(
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            );
        }
    }
    m
}

/// A pack's members, by path.
type Members = std::collections::BTreeMap<String, Vec<u8>>;

/// The members of a delta's `delta/full.tar.zst`, by path.
fn pack_members(delta: &Path) -> Members {
    let f = std::fs::File::open(delta.join("delta/full.tar.zst")).unwrap();
    let mut ar = tar::Archive::new(zstd::stream::read::Decoder::new(f).unwrap());
    let mut m = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut b).unwrap();
        m.insert(p, b);
    }
    m
}

/// Rewrite a delta's pack with `f` applied to its members (not signed again).
/// Members are written with a hand-made header, so hostile paths survive.
fn repack(delta: &Path, f: &dyn Fn(&mut Members)) {
    let mut m = pack_members(delta);
    f(&mut m);
    let mut t = Vec::new();
    for (p, b) in &m {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
        h.set_size(b.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        t.extend_from_slice(h.as_bytes());
        t.extend_from_slice(b);
        t.resize(t.len().div_ceil(512) * 512, 0);
    }
    t.resize(t.len() + 1024, 0);
    std::fs::write(delta.join("delta/full.tar.zst"), zstd::encode_all(&t[..], 3).unwrap()).unwrap();
}

/// Change the summary of one sample advisory (a changed record).
fn edit_advisory(ws: &Path, nth: usize, text: &str) -> String {
    let dir = ws.join("samples/osv/pypi");
    let mut docs: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    docs.sort();
    let p = &docs[nth];
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v["summary"] = serde_json::json!(text);
    std::fs::write(p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    age(p);
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn a_mirror_is_reproducible_verifiable_and_its_tar_is_its_tree() {
    let (a, b) = (mirror_ws("TEST-ONLY-signing.key"), mirror_ws("TEST-ONLY-signing.key"));
    let epoch = now();
    build_at(a.path(), epoch);
    build_at(b.path(), epoch);
    let (ta, tb) = (tree(&a.path().join("out/mirror")), tree(&b.path().join("out/mirror")));
    assert!(ta == tb, "two builds of the same inputs differ");
    let e = export_json(a.path());
    assert_eq!(e["generation"], 1);
    for (path, want) in [
        ("export.json", true),
        ("indexes/advisories.index.json", true),
        ("indexes/vex.index.json", true),
        ("indexes/sboms.index.json", true),
        ("tuf/metadata/1.root.json", true),
        ("tuf/metadata/1.targets.json", true),
        ("tuf/metadata/1.snapshot.json", true),
        ("tuf/metadata/timestamp.json", true),
        ("mirror-1.tar.zst", true),
        ("oci/index.json", true),
    ] {
        assert_eq!(ta.contains_key(path), want, "{path}");
    }
    // every file export.json lists is in the tree with that digest, and is a TUF target under its sha256
    for f in e["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let bytes = &ta[path];
        assert_eq!(sha256_hex(bytes), f["sha256"].as_str().unwrap(), "{path}");
        let (dir, base) = path.rsplit_once('/').unwrap();
        assert_eq!(&ta[&format!("tuf/targets/{dir}/{}.{base}", sha256_hex(bytes))], bytes);
        assert_eq!(&ta[&format!("oci/blobs/sha256/{}", sha256_hex(bytes))], bytes);
    }
    // the tar holds exactly the tree (export.json, indexes, data), byte for byte
    let x = tempfile::tempdir().unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc '{}' | tar -x -C '{}'",
            a.path().join("out/mirror/mirror-1.tar.zst").display(),
            x.path().display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let tx = tree(x.path());
    assert_eq!(tx.len(), e["files"].as_array().unwrap().len() + 1);
    for (p, bytes) in &tx {
        assert_eq!(&ta[p], bytes, "{p} in the tar");
    }
    let v = run(
        a.path(),
        &[
            "verify",
            "out/mirror",
            "--trust-root",
            repo().join("tests/fixtures/keys/TEST-ONLY-signing.pub").to_str().unwrap(),
        ],
    );
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    // build --check rebuilds it from scratch (carrying the live generation's state): identical
    let c = finish(
        cmd(a.path())
            .args(["build", "--check"])
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .output()
            .unwrap(),
    );
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    // a rebuild at the same time keeps the generation and publishes nothing new
    let r = build_at(a.path(), epoch);
    assert_eq!(r["profiles"]["mirror"]["status"], "up-to-date", "{r}");
    let r = build_at(a.path(), epoch);
    assert!(executed(&r).is_empty(), "a no-op build ran {:?}", executed(&r));
    assert!(tree(&a.path().join("out/mirror")) == ta);
}

#[test]
fn generations_rise_and_a_changed_advisory_reencodes_one_shard() {
    let ws = mirror_ws("TEST-ONLY-signing.key");
    let epoch = now();
    build_at(ws.path(), epoch);
    let before = tree(&ws.path().join("out/mirror"));
    // the nightly's time moves: a new generation, but no shard is encoded again
    let r = build_at(ws.path(), epoch + 3600);
    let ran: Vec<String> = executed(&r).into_iter().map(|(id, _)| id).collect();
    assert!(ran.iter().all(|id| !id.starts_with("shard:") && !id.starts_with("parse:")), "{ran:?}");
    assert_eq!(export_json(ws.path())["generation"], 2);
    let after = tree(&ws.path().join("out/mirror"));
    let data = |t: &std::collections::BTreeMap<String, Vec<u8>>| {
        t.iter()
            .filter(|(k, _)| k.starts_with("data/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert!(data(&before) == data(&after), "data files changed without a changed record");
    assert!(
        after.contains_key("tuf/metadata/2.targets.json")
            && after["tuf/metadata/1.root.json"] == before["tuf/metadata/1.root.json"]
    );
    // one changed advisory: one shard's steps run again
    edit_advisory(ws.path(), 0, "changed by the test");
    let r = build_at(ws.path(), epoch + 7200);
    let shards: Vec<String> =
        executed(&r).into_iter().map(|(id, _)| id).filter(|id| id.starts_with("shard:")).collect();
    assert_eq!(shards.len(), 1, "{shards:?}");
    assert_eq!(export_json(ws.path())["generation"], 3);
    let list = run(ws.path(), &["exports", "list", "--json"]);
    assert_eq!(list.code, 0);
    let gens: Vec<u64> = list.json()["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["generation"].as_u64().unwrap())
        .collect();
    assert_eq!(gens, vec![3, 2, 1]);
}

#[test]
fn the_build_after_a_published_generation_runs_nothing() {
    // the assembly reads its own live export (generation, roots): after a
    // new generation is published, the next build must not run it again
    // for the same bytes (ops::fixpoint), first build and later ones alike
    let ws = mirror_ws("TEST-ONLY-signing.key");
    let epoch = now();
    for (i, step) in [None, Some("changed by the test"), Some("changed again")].into_iter().enumerate() {
        if let Some(text) = step {
            edit_advisory(ws.path(), i, text);
        }
        let r = build_at(ws.path(), epoch + 60 * i as i64);
        assert_eq!(r["profiles"]["mirror"]["status"], "published", "{r}");
        assert_eq!(export_json(ws.path())["generation"], i as u64 + 1);
        let before = tree(&ws.path().join("out/mirror"));
        let again = build_at(ws.path(), epoch + 60 * i as i64);
        let ran = executed(&again);
        assert!(ran.is_empty(), "a no-op after generation {} ran {ran:?}", i + 1);
        assert_eq!(again["profiles"]["mirror"]["status"], "up-to-date");
        assert!(before == tree(&ws.path().join("out/mirror")));
    }
    // the alias entries are what a fresh run makes: build --check agrees
    let c = build_with(ws.path(), epoch + 120, &["--check"]);
    assert_eq!(c["identical"], true, "{c}");
}

#[test]
fn an_unsigned_mirror_is_refused_naming_the_profile() {
    let ws = mirror_ws("TEST-ONLY-signing.key");
    let p = ws.path().join("profiles.toml");
    let text = std::fs::read_to_string(&p).unwrap().replace("[signing]\nkey = \"keys/k.key\"\n", "");
    std::fs::write(&p, text).unwrap();
    let r = run(ws.path(), &["build"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("profiles.mirror.signing") && r.stderr.contains("TUF"), "{}", r.stderr);
    assert!(!ws.path().join("out/mirror").exists());
}

/// `python3 -m http.server` on 127.0.0.1 over `dir`, stopped when dropped.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let s = Server { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("http.server did not start");
}

/// The test venv's python with python-tuf, or `None` after a SKIP line.
fn tuf_python() -> Option<PathBuf> {
    let py = tool("EXPORT_CENTER_VERIFY_PY", None, "python-tuf (the test venv)")?;
    let ok =
        Command::new(&py).args(["-c", "import tuf.ngclient"]).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("EXPORT_CENTER_REQUIRE_VERIFIERS").as_deref() != Ok("1"),
            "python-tuf missing from the venv"
        );
        skip("python-tuf", "not in the test venv (scripts/test-deps.sh installs tuf==7.0.1)");
        return None;
    }
    Some(py)
}

/// python-tuf's client: refresh from `srv` (bootstrapping from `root`
/// when `cache` holds none) and download every target into `out`.
fn client(py: &Path, srv: &Server, root: &Path, cache: &Path, out: &Path) -> Run {
    finish(
        Command::new(py)
            .arg(repo().join("tests/tools/tuf_client.py"))
            .arg(format!("http://127.0.0.1:{}", srv.port))
            .args([root, cache, out])
            .output()
            .unwrap(),
    )
}

/// The test key as a signer, to forge metadata a client must refuse.
fn test_signer() -> export_center::signing::Ed25519Signer {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let k = d.path().join("k.key");
    std::fs::copy(repo().join("tests/fixtures/keys/TEST-ONLY-signing.key"), &k).unwrap();
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
    export_center::signing::keys::load_file(&k).unwrap()
}

#[test]
fn python_tuf_follows_the_mirror_and_rejects_what_it_must() {
    let Some(py) = tuf_python() else { return };
    let ws = mirror_ws("TEST-ONLY-signing.key");
    let epoch = now();
    build_at(ws.path(), epoch);
    let root1 = ws.path().join("root-1.json");
    std::fs::copy(ws.path().join("out/mirror/tuf/metadata/1.root.json"), &root1).unwrap();
    let site = tempfile::tempdir().unwrap();
    let cache = site.path().join("cache");
    // generation 1: every target downloaded, equal to the tree
    {
        let srv = serve(&ws.path().join("out/mirror/tuf"));
        let got = site.path().join("g1");
        let r = client(&py, &srv, &root1, &cache, &got);
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!((v["timestamp"].as_u64(), v["targets"].as_u64()), (Some(1), Some(1)));
        let t = tree(&got);
        assert_eq!(t.len(), export_json(ws.path())["files"].as_array().unwrap().len() + 1);
        let live = tree(&ws.path().join("out/mirror"));
        for (p, b) in &t {
            assert_eq!(&live[p], b, "{p}");
        }
    }
    // generation 2 (a changed advisory): the same client follows
    edit_advisory(ws.path(), 1, "changed for generation 2");
    build_at(ws.path(), epoch + 60);
    {
        let srv = serve(&ws.path().join("out/mirror/tuf"));
        let r = client(&py, &srv, &root1, &cache, &site.path().join("g2"));
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["timestamp"], 2);
    }
    // a rolled-back repository (generation 1 served again): refused
    {
        let srv = serve(&ws.path().join("out/.generations/mirror/1/tuf"));
        let r = client(&py, &srv, &root1, &cache, &site.path().join("rb"));
        assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("BadVersionNumberError"), "{}", r.stdout);
    }
    // a rolled-back snapshot: a new timestamp (signed by the right key) naming snapshot 1
    {
        let forged = tempfile::tempdir().unwrap();
        copy_dir(&ws.path().join("out/mirror/tuf"), forged.path());
        let snap1 =
            std::fs::read(ws.path().join("out/.generations/mirror/1/tuf/metadata/1.snapshot.json")).unwrap();
        std::fs::write(forged.path().join("metadata/1.snapshot.json"), &snap1).unwrap();
        use export_center::formats::tuf;
        let signer = test_signer();
        let ts = export_center::signing::tuf::sign(&tuf::timestamp(3, epoch + 86400, 1, &snap1), &[&signer])
            .unwrap();
        std::fs::write(forged.path().join("metadata/timestamp.json"), ts).unwrap();
        let srv = serve(forged.path());
        let r = client(&py, &srv, &root1, &cache, &site.path().join("rs"));
        assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("BadVersionNumberError"), "{}", r.stdout);
    }
    // a tampered target (same length, one byte flipped): refused by a fresh client
    {
        let forged = tempfile::tempdir().unwrap();
        copy_dir(&ws.path().join("out/mirror/tuf"), forged.path());
        let victim = walkdir::WalkDir::new(forged.path().join("targets/data"))
            .into_iter()
            .map(|e| e.unwrap().into_path())
            .find(|p| p.is_file())
            .unwrap();
        let mut b = std::fs::read(&victim).unwrap();
        let i = b.len() / 2;
        b[i] ^= 1;
        std::fs::write(&victim, b).unwrap();
        let srv = serve(forged.path());
        let fresh = tempfile::tempdir().unwrap();
        let r = client(&py, &srv, &root1, &fresh.path().join("c"), &fresh.path().join("o"));
        assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("LengthOrHashMismatchError"), "{}", r.stdout);
    }
    // a foreign root: a client trusting another key refuses this repository
    {
        let other = mirror_ws("TEST-ONLY-other.key");
        build_at(other.path(), epoch);
        let srv = serve(&ws.path().join("out/mirror/tuf"));
        let fresh = tempfile::tempdir().unwrap();
        let foreign = other.path().join("out/mirror/tuf/metadata/1.root.json");
        let r = client(&py, &srv, &foreign, &fresh.path().join("c"), &fresh.path().join("o"));
        assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("UnsignedMetadataError"), "{}", r.stdout);
    }
    // an expired timestamp: a mirror built three days ago (timestamp = 2 days)
    {
        let old = mirror_ws("TEST-ONLY-signing.key");
        build_at(old.path(), epoch - 3 * 86400);
        let srv = serve(&old.path().join("out/mirror/tuf"));
        let fresh = tempfile::tempdir().unwrap();
        let root = old.path().join("out/mirror/tuf/metadata/1.root.json");
        let r = client(&py, &srv, &root, &fresh.path().join("c"), &fresh.path().join("o"));
        assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("ExpiredMetadataError"), "{}", r.stdout);
    }
}

#[test]
fn the_oci_layout_round_trips_through_skopeo_and_a_registry() {
    let Some(skopeo) = tool("EXPORT_CENTER_SKOPEO", Some("/usr/bin/skopeo"), "skopeo") else { return };
    let Some(registry) = tool("EXPORT_CENTER_REGISTRY", Some("/usr/bin/docker-registry"), "docker-registry")
    else {
        return;
    };
    let ws = mirror_ws("TEST-ONLY-signing.key");
    build_at(ws.path(), now());
    let layout = ws.path().join("out/mirror/oci");
    let digest_of = |dir: &Path| -> String {
        let idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        idx["manifests"][0]["digest"].as_str().unwrap().to_string()
    };
    let blobs = |dir: &Path| -> std::collections::BTreeMap<String, Vec<u8>> { tree(&dir.join("blobs")) };
    let want = digest_of(&layout);
    let copy = |from: String, to: String| {
        let o = Command::new(&skopeo)
            .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false", &from, &to])
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo copy {from} {to}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let other = tempfile::tempdir().unwrap();
    copy(format!("oci:{}:1", layout.display()), format!("oci:{}:1", other.path().join("b").display()));
    assert_eq!(digest_of(&other.path().join("b")), want);
    assert!(blobs(&other.path().join("b")) == blobs(&layout), "another layout holds other blobs");
    let reg = start_registry(&registry);
    let remote = format!("docker://127.0.0.1:{}/ec/mirror:1", reg.port);
    copy(format!("oci:{}:1", layout.display()), remote.clone());
    copy(remote, format!("oci:{}:1", other.path().join("c").display()));
    assert_eq!(digest_of(&other.path().join("c")), want);
    assert!(blobs(&other.path().join("c")) == blobs(&layout), "the registry's copy holds other blobs");
}

/// Every regular JSON file below `dir`, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

/// Generation `g`'s changes to the evidence: one advisory changed, one
/// added, one removed, one VEX document changed.
fn mutate(adv: &Path, vex: &Path, g: usize) {
    let docs = json_files(adv);
    let edit = |p: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        age(p);
    };
    edit(&docs[g % docs.len()], &|v| v["summary"] = serde_json::json!(format!("changed in generation {g}")));
    let added = docs[0].with_file_name(format!("TEST-ADDED-{g}.json"));
    std::fs::copy(&docs[0], &added).unwrap();
    edit(&added, &|v| v["id"] = serde_json::json!(format!("TEST-ADDED-{g}")));
    std::fs::remove_file(docs.last().unwrap()).unwrap();
    let v = json_files(vex);
    edit(&v[g % v.len()], &|v| v["x-test-generation"] = serde_json::json!(g));
}

/// Build generations 1..=n (full and delta), changing the evidence
/// before each after the first; returns the deltas (copied) and the full
/// exports of each generation (copied).
fn nightly(
    ws: &Path,
    adv: &Path,
    vex: &Path,
    n: usize,
    epoch: i64,
    extra: &[&str],
) -> (Vec<tempfile::TempDir>, Vec<tempfile::TempDir>) {
    let (mut deltas, mut fulls) = (Vec::new(), Vec::new());
    for g in 1..=n {
        if g > 1 {
            mutate(adv, vex, g);
        }
        let r = build_with(ws, epoch + g as i64 * 60, extra);
        assert_eq!(export_json(ws)["generation"], g as u64);
        let full = tempfile::tempdir().unwrap();
        copy_dir(&ws.join("out/mirror"), full.path());
        fulls.push(full);
        if g == 1 {
            assert_eq!(r["profiles"]["nightly"]["status"], "no-base", "{r}");
            assert!(!ws.join("out/nightly").exists());
            continue;
        }
        assert_eq!(r["profiles"]["nightly"]["status"], "published", "{r}");
        let d = tempfile::tempdir().unwrap();
        copy_dir(&ws.join("out/nightly"), d.path());
        let diff: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.path().join("delta/manifest.diff.json")).unwrap())
                .unwrap();
        assert_eq!(
            (diff["baseGeneration"].as_u64(), diff["generation"].as_u64()),
            (Some(g as u64 - 1), Some(g as u64))
        );
        assert!(
            diff["added"].as_array().unwrap().contains(&serde_json::json!(format!("TEST-ADDED-{g}"))),
            "{diff}"
        );
        assert!(
            !diff["updated"].as_array().unwrap().is_empty()
                && !diff["removed"].as_array().unwrap().is_empty()
        );
        assert_eq!(diff["removed"].as_array().unwrap().len(), diff["tombstones"].as_array().unwrap().len());
        deltas.push(d);
    }
    (deltas, fulls)
}

fn apply(base: &Path, delta: &Path, out: Option<&Path>) -> Run {
    let mut c = Command::new(BIN);
    c.args(["mirror", "apply", "--json"]).arg(base).arg(delta);
    if let Some(o) = out {
        c.arg("--out").arg(o);
    }
    finish(c.output().unwrap())
}

/// Apply every delta in order to a copy of generation 1: equal, file by
/// file, to each full export along the way; and each generation the site
/// holds is accepted by python-tuf (one client, its trusted metadata kept
/// from generation to generation, as a site's) and copied by skopeo.
fn apply_in_order(deltas: &[tempfile::TempDir], fulls: &[tempfile::TempDir]) {
    let site = tempfile::tempdir().unwrap();
    let live = site.path().join("mirror");
    copy_dir(fulls[0].path(), &live);
    let py = tuf_python();
    let skopeo = tool("EXPORT_CENTER_SKOPEO", Some("/usr/bin/skopeo"), "skopeo");
    let root1 = site.path().join("1.root.json");
    std::fs::copy(live.join("tuf/metadata/1.root.json"), &root1).unwrap();
    let consumers = |generation: usize| {
        if let Some(py) = &py {
            let srv = serve(&live.join("tuf"));
            let out = site.path().join(format!("fetched-{generation}"));
            let r = client(py, &srv, &root1, &site.path().join("tuf-cache"), &out);
            assert_eq!(r.code, 0, "python-tuf, generation {generation}: {}\n{}", r.stdout, r.stderr);
            let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
            assert_eq!(v["timestamp"].as_u64(), Some(generation as u64));
            let _ = std::fs::remove_dir_all(out);
        }
        if let Some(skopeo) = &skopeo {
            let dest = site.path().join(format!("copy-{generation}"));
            let o = Command::new(skopeo)
                .arg("copy")
                .arg(format!("oci:{}:{generation}", live.join("oci").display()))
                .arg(format!("oci:{}:{generation}", dest.display()))
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "skopeo, generation {generation}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let _ = std::fs::remove_dir_all(dest);
        }
    };
    consumers(1);
    for (i, d) in deltas.iter().enumerate() {
        let r = apply(&live, d.path(), None);
        assert_eq!(r.code, 0, "delta {}: {}\n{}", i + 2, r.stdout, r.stderr);
        let got = tree(&live);
        let want = tree(fulls[i + 1].path());
        let differ: Vec<&String> = want.keys().filter(|k| got.get(*k) != want.get(*k)).collect();
        assert!(got.len() == want.len() && differ.is_empty(), "generation {}: {differ:?}", i + 2);
        consumers(i + 2);
    }
}

fn nightly_ws() -> tempfile::TempDir {
    let ws = mirror_ws("TEST-ONLY-signing.key");
    let p = ws.path().join("profiles.toml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("[profiles.nightly]\nkind = \"mirror:delta\"\nbase = \"mirror\"\n");
    std::fs::write(&p, text).unwrap();
    ws
}

#[test]
fn five_deltas_applied_in_order_equal_the_full_export_of_generation_six() {
    let ws = nightly_ws();
    let (adv, vex) = (ws.path().join("samples/osv/pypi"), ws.path().join("samples/vex/openvex"));
    let epoch = now();
    let (deltas, fulls) = nightly(ws.path(), &adv, &vex, 6, epoch, &[]);
    apply_in_order(&deltas, &fulls);
    // mirror diff names what the delta names
    let r = run(
        ws.path(),
        &["mirror", "diff", "--json", fulls[4].path().to_str().unwrap(), fulls[5].path().to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let diff: serde_json::Value =
        serde_json::from_slice(&std::fs::read(deltas[4].path().join("delta/manifest.diff.json")).unwrap())
            .unwrap();
    for k in ["added", "updated", "removed"] {
        assert_eq!(r.json()[k], diff[k], "{k}");
    }
    // a rebuild changes nothing: the delta is up to date
    let r = build_at(ws.path(), epoch + 6 * 60);
    assert_eq!(r["profiles"]["nightly"]["status"], "up-to-date", "{r}");
    assert_eq!(r["profiles"]["mirror"]["status"], "up-to-date", "{r}");
    // build --check rebuilds the delta too (from the exports out/ holds): identical; a changed pack is found
    let check = || {
        let c = cmd(ws.path())
            .args(["build", "--check", "--json", "nightly"])
            .env("SOURCE_DATE_EPOCH", (epoch + 6 * 60).to_string())
            .output()
            .unwrap();
        finish(c)
    };
    let c = check();
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    let checked: Vec<String> = c.json()["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["profile"].as_str().unwrap().to_string())
        .collect();
    assert!(
        checked.contains(&"nightly".to_string()) && checked.contains(&"mirror".to_string()),
        "{checked:?}"
    );
    let pack = ws.path().join("out/nightly/delta/full.tar.zst");
    let good = std::fs::read(&pack).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n / 2] ^= 1;
    std::fs::remove_file(&pack).unwrap();
    std::fs::write(&pack, &bad).unwrap();
    let c = check();
    assert_ne!(c.code, 0, "{}", c.stdout);
    assert!(c.stdout.contains("full.tar.zst"), "{}", c.stdout);
    std::fs::remove_file(&pack).unwrap();
    std::fs::write(&pack, &good).unwrap();

    // refusals: nothing changes in any of them
    let site = tempfile::tempdir().unwrap();
    let g1 = site.path().join("g1");
    copy_dir(fulls[0].path(), &g1);
    let before = tree(&g1);
    let refused = |delta: &Path, code: i32, says: &str| {
        let r = apply(&g1, delta, None);
        assert_eq!(r.code, code, "{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(says), "{says} not in {}", r.stdout);
        assert!(tree(&g1) == before, "a refused apply changed the base");
        assert!(
            std::fs::read_dir(site.path()).unwrap().count() == 1,
            "a refused apply left files beside the base"
        );
    };
    // skipped delta (3 needs generation 2)
    refused(deltas[1].path(), 2, "out of order");
    refused(deltas[1].path(), 2, "ERR_EXPORT_BASE_MISSING");
    // wrong base: another mirror's generation 1
    let other = nightly_ws();
    build_at(other.path(), now() - 3600);
    let foreign = tree(&other.path().join("out/mirror"));
    let r = apply(&other.path().join("out/mirror"), deltas[0].path(), None);
    assert!(r.code == 2 && r.stdout.contains("ERR_EXPORT_BASE_MISSING"), "{}", r.stdout);
    assert!(tree(&other.path().join("out/mirror")) == foreign);
    // missing base
    let r = apply(&site.path().join("nope"), deltas[0].path(), None);
    assert!(r.code == 2 && r.stdout.contains("ERR_EXPORT_BASE_MISSING"), "{}", r.stdout);
    // tampered: a flipped byte in a records file, a diff that no longer parses, an extra file
    let tamper = |f: &dyn Fn(&Path)| {
        let t = tempfile::tempdir().unwrap();
        copy_dir(deltas[0].path(), t.path());
        f(t.path());
        t
    };
    let t = tamper(&|d| {
        let p = json_files(d).into_iter().next().map(|_| ()).and(
            walkdir::WalkDir::new(d.join("delta/records"))
                .into_iter()
                .map(|e| e.unwrap().into_path())
                .find(|p| p.is_file()),
        );
        let p = p.unwrap();
        let mut b = std::fs::read(&p).unwrap();
        let i = b.len() / 2;
        b[i] ^= 0x40;
        std::fs::write(&p, b).unwrap();
    });
    refused(t.path(), 3, "was changed");
    let t = tamper(&|d| std::fs::write(d.join("delta/manifest.diff.json"), b"{ not json").unwrap());
    refused(t.path(), 3, "does not check out");
    let t = tamper(&|d| {
        let mp = d.join("manifest.json");
        let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
        m["bundle"]["path"] = serde_json::json!("../../../etc/passwd");
        std::fs::write(&mp, serde_json::to_vec(&m).unwrap()).unwrap();
    });
    refused(t.path(), 3, "unsafe path");
    let t = tamper(&|d| std::fs::write(d.join("delta/extra.json"), b"{}").unwrap());
    refused(t.path(), 3, "not in the delta's manifest");
    // inside the pack of carried files: a changed TUF timestamp, a member escaping the folder
    let t = tamper(&|d| {
        repack(d, &|members| {
            let b = members.get_mut("tuf/metadata/timestamp.json").unwrap();
            let n = b.len();
            b[n - 5] ^= 1;
        })
    });
    refused(t.path(), 3, "does not check out");
    let t = tamper(&|d| {
        repack(d, &|members| {
            let b = members.remove("export.json").unwrap();
            members.insert("../../escaped.json".into(), b);
        })
    });
    refused(t.path(), 3, "full.tar.zst");
    assert!(!site.path().join("escaped.json").exists() && !t.path().join("escaped.json").exists());
    let t = tamper(&|d| std::fs::write(d.join("delta/full.tar.zst"), b"\x28\xb5\x2f\xfd garbage").unwrap());
    refused(t.path(), 3, "full.tar.zst");
    // --out: a new folder, the base untouched
    let r = apply(&g1, deltas[0].path(), Some(&site.path().join("g2")));
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(tree(&site.path().join("g2")) == tree(fulls[1].path()) && tree(&g1) == before);
}

/// `apply --out` writes only what changed: unchanged files are hard links to
/// BASE's, and the tar's unchanged members are BASE's frames. A BASE whose
/// tar was damaged (a flipped byte in a member BASE still lists) does not
/// leak into the result: the tar is encoded afresh and comes out right.
#[test]
fn apply_links_unchanged_files_and_survives_a_damaged_base_tar() {
    use std::os::unix::fs::MetadataExt;
    let ws = nightly_ws();
    let (adv, vex) = (ws.path().join("samples/osv/pypi"), ws.path().join("samples/vex/openvex"));
    let (deltas, fulls) = nightly(ws.path(), &adv, &vex, 2, now(), &[]);
    let site = tempfile::tempdir().unwrap();
    let g1 = site.path().join("g1");
    copy_dir(fulls[0].path(), &g1);
    let r = apply(&g1, deltas[0].path(), Some(&site.path().join("g2")));
    assert_eq!(r.code, 0, "{}", r.stdout);
    let g2 = site.path().join("g2");
    assert!(tree(&g2) == tree(fulls[1].path()));
    let diff: serde_json::Value =
        serde_json::from_slice(&std::fs::read(deltas[0].path().join("delta/manifest.diff.json")).unwrap())
            .unwrap();
    let changed: Vec<&str> =
        diff["records"].as_array().unwrap().iter().map(|r| r["target"].as_str().unwrap()).collect();
    let (mut linked, mut rewritten) = (0, 0);
    for (rel, _) in tree(&g2).into_iter().filter(|(k, _)| k.starts_with("data/raw/")) {
        let (a, b) = (std::fs::metadata(g1.join(&rel)), std::fs::metadata(g2.join(&rel)).unwrap());
        match a {
            Ok(a) if a.ino() == b.ino() => linked += 1,
            _ => {
                assert!(changed.contains(&rel.as_str()), "{rel} was rewritten but did not change");
                rewritten += 1;
            }
        }
    }
    assert!(linked > 0 && rewritten > 0, "linked {linked}, rewritten {rewritten}");
    // the build did the same: the new live export shares unchanged files with the kept generation
    let (live, kept) = (ws.path().join("out/mirror"), ws.path().join("out/.generations/mirror/1"));
    let shared = tree(&live)
        .into_keys()
        .filter(|k| k.starts_with("data/raw/") && !changed.contains(&k.as_str()))
        .filter(|k| {
            std::fs::metadata(kept.join(k)).unwrap().ino() == std::fs::metadata(live.join(k)).unwrap().ino()
        })
        .count();
    assert_eq!(shared, linked, "unchanged data files of the live export are links to the kept generation's");
    // damage BASE's tar in the middle of a member frame: apply still gives the full export
    let g1b = site.path().join("g1b");
    copy_dir(fulls[0].path(), &g1b);
    let tar = std::fs::read_dir(&g1b)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .unwrap();
    let mut b = std::fs::read(&tar).unwrap();
    let i = b.len() / 3;
    b[i] ^= 0x20;
    std::fs::remove_file(&tar).unwrap();
    std::fs::write(&tar, b).unwrap();
    let r = apply(&g1b, deltas[0].path(), Some(&site.path().join("g2b")));
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(tree(&site.path().join("g2b")) == tree(fulls[1].path()));
}

/// `base = PATH`: the export folder a site last imported, or an archive of
/// it as GNU `tar` makes one (hard links and all), gives the same delta as
/// a kept generation, which `apply` takes to the live export. A missing
/// path is `ERR_EXPORT_BASE_MISSING` (exit 2); a mirror's own tree archive
/// (no `manifest.json`) and a hostile archive are refused (exit 2) naming why.
#[test]
fn a_delta_from_an_export_folder_or_its_archive() {
    let ws = mirror_ws("TEST-ONLY-signing.key");
    let epoch = now() - 7200;
    build_at(ws.path(), epoch);
    let site = ws.path().join("site");
    copy_dir(&ws.path().join("out/mirror"), &site.join("g1"));
    let tar = Command::new("tar")
        .arg("-C")
        .arg(ws.path().join("out"))
        .arg("-czf")
        .arg(site.join("g1.tar.gz"))
        .arg("mirror")
        .status()
        .unwrap();
    assert!(tar.success());
    let p = ws.path().join("profiles.toml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(
        "[profiles.fromdir]\nkind = \"mirror:delta\"\nbase = \"site/g1\"\n\
         [profiles.fromtar]\nkind = \"mirror:delta\"\nbase = \"site/g1.tar.gz\"\n\
         [profiles.nightly]\nkind = \"mirror:delta\"\nbase = \"mirror\"\n",
    );
    std::fs::write(&p, &text).unwrap();
    let (adv, vex) = (ws.path().join("samples/osv/pypi"), ws.path().join("samples/vex/openvex"));
    mutate(&adv, &vex, 2);
    let r = build_at(ws.path(), epoch + 60);
    for d in ["fromdir", "fromtar", "nightly"] {
        assert_eq!(r["profiles"][d]["status"], "published", "{d}: {r}");
    }
    let out = ws.path().join("out");
    let diff = |d: &str| std::fs::read(out.join(d).join("delta/manifest.diff.json")).unwrap();
    assert!(diff("fromdir") == diff("nightly") && diff("fromtar") == diff("nightly"));
    assert!(pack_members(&out.join("fromtar")) == pack_members(&out.join("nightly")));
    let a = apply(&site.join("g1"), &out.join("fromtar"), Some(&site.join("g2")));
    assert_eq!(a.code, 0, "{}", a.stdout);
    assert!(tree(&site.join("g2")) == tree(&out.join("mirror")));

    let refused = |base: &str, says: &str| {
        let t = text.clone() + &format!("[profiles.bad]\nkind = \"mirror:delta\"\nbase = \"{base}\"\n");
        std::fs::write(&p, t).unwrap();
        let r = finish(cmd(ws.path()).args(["build", "--json", "bad"]).output().unwrap());
        assert_eq!(r.code, 2, "{base}: {}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(says), "{says} not in {}", r.stdout);
    };
    refused("site/nope", "ERR_EXPORT_BASE_MISSING");
    std::fs::copy(out.join("mirror/mirror-2.tar.zst"), site.join("tree.tar.zst")).unwrap();
    refused("site/tree.tar.zst", "tree archive");
    let hostile = Command::new("sh")
        .current_dir(&site)
        .args(["-c", "ln -s /etc/passwd pw && tar -czf hostile.tgz pw g1/export.json"])
        .status()
        .unwrap();
    assert!(hostile.success());
    refused("site/hostile.tgz", "symbolic link");
}

/// `apply` killed after staging leaves BASE as it was; killed after the swap
/// leaves the new generation whole. Either way the next `apply` there
/// removes the leftovers (and, after the swap, says the delta is applied).
#[test]
fn a_crashed_apply_leaves_either_generation_whole() {
    let ws = nightly_ws();
    let (adv, vex) = (ws.path().join("samples/osv/pypi"), ws.path().join("samples/vex/openvex"));
    let (deltas, fulls) = nightly(ws.path(), &adv, &vex, 2, now(), &[]);
    let leftovers = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".apply-"))
            .collect()
    };
    for (point, live_after) in [("apply-staged", 0), ("apply-swapped", 1)] {
        let site = tempfile::tempdir().unwrap();
        let g = site.path().join("mirror");
        copy_dir(fulls[0].path(), &g);
        let o = Command::new(BIN)
            .args(["mirror", "apply"])
            .arg(&g)
            .arg(deltas[0].path())
            .env("EXPORT_CENTER_CRASH_AT", point)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{point}: the crash was injected");
        assert!(
            tree(&g) == tree(fulls[live_after].path()),
            "{point}: the live folder is one whole generation"
        );
        assert!(!leftovers(site.path()).is_empty(), "{point}: a crash leaves its staging folder");
        let r = apply(&g, deltas[0].path(), None);
        if live_after == 0 {
            assert_eq!(r.code, 0, "{}", r.stdout);
        } else {
            assert!(r.code == 2 && r.stdout.contains("already past"), "{}", r.stdout);
        }
        assert!(tree(&g) == tree(fulls[1].path()));
        assert!(leftovers(site.path()).is_empty(), "{point}: {:?}", leftovers(site.path()));
    }
}

/// A delta made by another tool version is refused (exit 2) even when it is
/// signed: its files would be re-encoded by this version.
#[test]
fn a_delta_of_another_tool_version_is_refused() {
    let ws = nightly_ws();
    let (adv, vex) = (ws.path().join("samples/osv/pypi"), ws.path().join("samples/vex/openvex"));
    let (deltas, fulls) = nightly(ws.path(), &adv, &vex, 2, now(), &[]);
    let d = deltas[0].path();
    let p = d.join("delta/manifest.diff.json");
    let mut diff: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    diff["tool"]["version"] = serde_json::json!("0.0.1-other");
    let bytes = serde_json::to_vec_pretty(&diff).unwrap();
    std::fs::write(&p, &bytes).unwrap();
    // the delta's manifest names the new diff and is signed again (as the other version would)
    let mp = d.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    m["bundle"]["sha256"] = serde_json::json!(sha256_hex(&bytes));
    m["bundle"]["bytes"] = serde_json::json!(bytes.len());
    std::fs::write(&mp, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let env = export_center::signing::sign_envelope(
        &test_signer(),
        export_center::formats::dsse::MANIFEST_PAYLOAD_TYPE,
        export_center::canon::to_vec(&m),
    )
    .unwrap();
    std::fs::write(d.join("manifest.dsse.json"), env.to_json()).unwrap();
    let site = tempfile::tempdir().unwrap();
    let g1 = site.path().join("g1");
    copy_dir(fulls[0].path(), &g1);
    let r = apply(&g1, d, None);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stdout.contains("0.0.1-other") && r.stdout.contains("same version"), "{}", r.stdout);
    assert!(tree(&g1) == tree(fulls[0].path()));
}

#[test]
fn real_corpus_nightly_five_deltas_equal_generation_six() {
    let Some(data) = corpus("real_corpus_nightly_five_deltas_equal_generation_six") else { return };
    let ws = tempfile::tempdir().unwrap();
    let src = ws.path().join("src");
    for (name, archive) in [
        ("pypa", "osv/pypa.tar.zst"),
        ("go", "osv/go-vulndb.tar.zst"),
        ("rustsec", "osv/rustsec.tar.zst"),
        ("ghsa", "osv/ghsa.tar.zst"),
    ] {
        let dir = src.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("tar")
            .arg("--zstd")
            .arg("-xf")
            .arg(data.join(archive))
            .arg("-C")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "extracting {archive}");
    }
    copy_dir(&data.join("vex/openvex/vexctl"), &src.join("openvex"));
    for f in json_files(&src) {
        age(&f);
    }
    std::fs::create_dir_all(ws.path().join("keys")).unwrap();
    let k = ws.path().join("keys/k.key");
    std::fs::copy(repo().join("tests/fixtures/keys/TEST-ONLY-signing.key"), &k).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut text =
        String::from("[workspace]\nsource-date-epoch = 1735689600\n[signing]\nkey = \"keys/k.key\"\n");
    for s in ["pypa", "go", "rustsec", "ghsa"] {
        text.push_str(&format!("[sources.{s}]\nformat = \"osv\"\npath = \"src/{s}\"\n"));
    }
    text.push_str("[sources.openvex]\nformat = \"openvex\"\npath = \"src/openvex\"\n");
    text.push_str("[profiles.mirror]\nkind = \"mirror:full\"\ninputs = [\"pypa\", \"go\", \"rustsec\", \"ghsa\", \"openvex\"]\nkeep-generations = 7\n");
    text.push_str("[profiles.nightly]\nkind = \"mirror:delta\"\nbase = \"mirror\"\n");
    std::fs::write(ws.path().join("profiles.toml"), text).unwrap();
    let (deltas, fulls) =
        nightly(ws.path(), &src.join("pypa"), &src.join("openvex"), 6, now(), &["--allow-invalid"]);
    // a delta is small: a few records, not the corpus
    let size = |d: &Path| tree(d).values().map(|v| v.len()).sum::<usize>();
    let full = size(fulls[5].path());
    for (i, d) in deltas.iter().enumerate() {
        let s = size(d.path());
        assert!(s * 10 < full, "delta {} is {s} bytes, the full export {full}", i + 2);
    }
    apply_in_order(&deltas, &fulls);
}

#[test]
fn a_root_rotation_is_followed_by_python_tuf_and_by_apply() {
    let ws = nightly_ws();
    let epoch = now();
    build_at(ws.path(), epoch);
    let g1 = tempfile::tempdir().unwrap();
    copy_dir(&ws.path().join("out/mirror"), g1.path());
    let b = ws.path().join("keys/b.key");
    std::fs::copy(repo().join("tests/fixtures/keys/TEST-ONLY-other.key"), &b).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o600)).unwrap();
    // without SOURCE_DATE_EPOCH: the root still expires after the live generation, not after 2025
    let r =
        run(ws.path(), &["tuf", "rotate-root", "--profile", "mirror", "--new-key", "keys/b.key", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["version"], 2);
    // one rotation at a time
    let again = run(ws.path(), &["tuf", "rotate-root", "--profile", "mirror", "--new-key", "keys/b.key"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    // the old key can no longer sign the mirror: the build says what to do, the export stays
    let r = finish(
        cmd(ws.path())
            .args(["build", "--json"])
            .env("SOURCE_DATE_EPOCH", (epoch + 60).to_string())
            .output()
            .unwrap(),
    );
    assert_ne!(r.code, 0);
    assert!(r.stdout.contains("rotate-root") && r.stdout.contains("signing key"), "{}", r.stdout);
    assert!(tree(&ws.path().join("out/mirror")) == tree(g1.path()));
    // signing with the new key: generation 2 carries 2.root.json
    let p = ws.path().join("profiles.toml");
    let text = std::fs::read_to_string(&p).unwrap().replace("key = \"keys/k.key\"", "key = \"keys/b.key\"");
    std::fs::write(&p, text).unwrap();
    let r = build_at(ws.path(), epoch + 120);
    assert_eq!(r["profiles"]["nightly"]["status"], "published", "{r}");
    let live = ws.path().join("out/mirror");
    assert!(live.join("tuf/metadata/2.root.json").is_file());
    assert_eq!(
        std::fs::read(live.join("tuf/metadata/1.root.json")).unwrap(),
        std::fs::read(g1.path().join("tuf/metadata/1.root.json")).unwrap()
    );
    // apply follows the rotation
    let site = tempfile::tempdir().unwrap();
    let s = site.path().join("m");
    copy_dir(g1.path(), &s);
    let a = apply(&s, &ws.path().join("out/nightly"), None);
    assert_eq!(a.code, 0, "{}", a.stdout);
    assert!(tree(&s) == tree(&live));
    // python-tuf: a client that trusted root 1 follows to root 2
    let Some(py) = tuf_python() else { return };
    let srv = serve(&live.join("tuf"));
    let c = tempfile::tempdir().unwrap();
    let r = client(
        &py,
        &srv,
        &g1.path().join("tuf/metadata/1.root.json"),
        &c.path().join("cache"),
        &c.path().join("out"),
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((v["root"].as_u64(), v["timestamp"].as_u64()), (Some(2), Some(2)));
}

#[test]
fn an_encrypted_mirror_decrypts_with_age_and_its_deltas_apply() {
    let Some(age) = tool("EXPORT_CENTER_AGE", Some("/usr/bin/age"), "age (the Go age CLI)") else { return };
    let keygen = age.with_file_name("age-keygen");
    let ws = nightly_ws();
    let keys = ws.path().join("keys");
    let id = keys.join("age.txt");
    let other = keys.join("other-age.txt");
    for k in [&id, &other] {
        let o = Command::new(&keygen).arg("-o").arg(k).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = Command::new(&keygen).arg("-y").arg(&id).output().unwrap();
    let recipient = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let p = ws.path().join("profiles.toml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(&format!("[profiles.mirror.encryption]\nmode = \"age\"\nrecipients = [\"{recipient}\"]\n"));
    std::fs::write(&p, text).unwrap();
    let epoch = now();
    build_at(ws.path(), epoch);
    let live = ws.path().join("out/mirror");
    let e = export_json(ws.path());
    assert_eq!(e["recipients"], serde_json::json!([recipient]));
    let files = e["files"].as_array().unwrap();
    let data: Vec<&serde_json::Value> =
        files.iter().filter(|f| f["path"].as_str().unwrap().starts_with("data/")).collect();
    assert!(!data.is_empty());
    for f in &data {
        let path = f["path"].as_str().unwrap();
        assert!(path.ends_with(".jsonl.zst.age"), "{path}");
        // the Go age CLI decrypts it to the plaintext digest export.json lists
        let o = Command::new(&age).arg("-d").arg("-i").arg(&id).arg(live.join(path)).output().unwrap();
        assert!(o.status.success(), "age -d {path}: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(sha256_hex(&o.stdout), f["plaintext"]["sha256"].as_str().unwrap(), "{path}");
        assert_eq!(o.stdout.len() as u64, f["plaintext"]["length"].as_u64().unwrap());
        assert!(
            !zstd::decode_all(&o.stdout[..]).unwrap().is_empty(),
            "{path}: the plaintext is a zstd JSONL file"
        );
    }
    // indexes, metadata and signatures stay plaintext
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(live.join("indexes/advisories.index.json")).unwrap()).unwrap();
    assert!(index["records"].as_u64().unwrap() > 0);
    let pubkey = repo().join("tests/fixtures/keys/TEST-ONLY-signing.pub");
    let v = run(
        ws.path(),
        &["verify", "out/mirror", "--trust-root", pubkey.to_str().unwrap(), "--identity", "keys/age.txt"],
    );
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    let v = run(ws.path(), &["verify", "out/mirror", "--identity", "keys/other-age.txt"]);
    assert_eq!(v.code, 3, "{}\n{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("cannot decrypt"), "{}", v.stdout);
    // build --check rebuilds with an empty cache (new ciphertext) and compares plaintext digests
    let check = |ws: &Path| {
        finish(
            cmd(ws)
                .args(["build", "--check", "--json", "mirror"])
                .env("SOURCE_DATE_EPOCH", epoch.to_string())
                .output()
                .unwrap(),
        )
    };
    let c = check(ws.path());
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    // a warm cache keeps the ciphertext: nothing new to publish
    let before = tree(&live);
    let r = build_at(ws.path(), epoch);
    assert_eq!(r["profiles"]["mirror"]["status"], "up-to-date", "{r}");
    // a cold cache encrypts again: other ciphertext, the same plaintext digests
    std::fs::remove_dir_all(ws.path().join("cache")).unwrap();
    build_at(ws.path(), epoch);
    let after = tree(&live);
    let e2 = export_json(ws.path());
    assert_eq!(e2["generation"], 2);
    let plain = |e: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        e["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["path"].as_str().unwrap().to_string(), f["plaintext"].clone()))
            .collect()
    };
    assert_eq!(plain(&e), plain(&e2));
    let p0 = data[0]["path"].as_str().unwrap();
    assert_ne!(before[p0], after[p0], "a cold cache made the same ciphertext");
    // a delta carries changed data files whole and applies
    let g2 = tempfile::tempdir().unwrap();
    copy_dir(&live, g2.path());
    let (adv, vex) = (ws.path().join("samples/osv/pypi"), ws.path().join("samples/vex/openvex"));
    mutate(&adv, &vex, 3);
    // changed evidence not yet built: the check names a data file by its plaintext
    let c = check(ws.path());
    assert_ne!(c.code, 0, "{}", c.stdout);
    assert!(c.stdout.contains(".jsonl.zst.age"), "{}", c.stdout);
    let r = build_at(ws.path(), epoch + 120);
    assert_eq!(r["profiles"]["nightly"]["status"], "published", "{r}");
    let delta = ws.path().join("out/nightly");
    assert!(!delta.join("delta/records").exists(), "records of encrypted files travel as whole files");
    let diff: serde_json::Value =
        serde_json::from_slice(&std::fs::read(delta.join("delta/manifest.diff.json")).unwrap()).unwrap();
    let carried: Vec<String> = diff["carried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .filter(|k| k.starts_with("data/"))
        .collect();
    assert!(pack_members(&delta).keys().any(|k| k.ends_with(".age")), "encrypted files are in the pack");
    assert!(!carried.is_empty() && carried.iter().all(|k| k.ends_with(".age")), "{carried:?}");
    let a = apply(g2.path(), &delta, None);
    assert_eq!(a.code, 0, "{}", a.stdout);
    assert!(tree(g2.path()) == tree(&live));
}

#[test]
fn bad_encryption_settings_are_refused_naming_the_key() {
    let ws = mirror_ws("TEST-ONLY-signing.key");
    let p = ws.path().join("profiles.toml");
    let base = std::fs::read_to_string(&p).unwrap();
    for (table, says) in [
        ("mode = \"gpg\"\nrecipients = [\"x\"]\n", "mode"),
        ("mode = \"age\"\nrecipients = []\n", "recipients"),
        ("mode = \"age\"\nrecipients = [\"age1notarecipient\"]\n", "recipients"),
        ("mode = \"age\"\nrecipients = [\"x\"]\nidentity = \"k\"\n", "identity"),
    ] {
        std::fs::write(&p, format!("{base}[profiles.mirror.encryption]\n{table}")).unwrap();
        let r = run(ws.path(), &["build"]);
        assert_eq!(r.code, 2, "{table}: {}", r.stderr);
        assert!(
            r.stderr.contains("profiles.mirror.encryption") && r.stderr.contains(says),
            "{table}: {}",
            r.stderr
        );
    }
}

#[test]
fn per_role_keys_and_thresholds_are_what_python_tuf_and_apply_check() {
    let ws = nightly_ws();
    let keys = ws.path().join("keys");
    let b = keys.join("b.key");
    std::fs::copy(repo().join("tests/fixtures/keys/TEST-ONLY-other.key"), &b).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o600)).unwrap();
    let p = ws.path().join("profiles.toml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(
        "[profiles.mirror.tuf]\nroot = { keys = [\"keys/k.key\", \"keys/b.key\"], threshold = 2 }\ntargets = [\"keys/b.key\"]\n\
         timestamp = { keys = [\"keys/k.key\", \"keys/b.key\"], threshold = 1 }\n",
    );
    std::fs::write(&p, text).unwrap();
    let epoch = now();
    build_at(ws.path(), epoch);
    let live = ws.path().join("out/mirror");
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(live.join("tuf/metadata/1.root.json")).unwrap()).unwrap();
    let ids = |role: &str| root["signed"]["roles"][role]["keyids"].as_array().unwrap().len();
    assert_eq!((ids("root"), ids("targets"), ids("snapshot"), ids("timestamp")), (2, 1, 1, 2));
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(root["signatures"].as_array().unwrap().len(), 2, "the root is signed by both root keys");
    let targets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(live.join("tuf/metadata/1.targets.json")).unwrap()).unwrap();
    assert_eq!(targets["signatures"][0]["keyid"], root["signed"]["roles"]["targets"]["keyids"][0]);
    // a delta applies (thresholds checked) and rotate-root refuses per-role profiles
    let g1 = tempfile::tempdir().unwrap();
    copy_dir(&live, g1.path());
    let (adv, vex) = (ws.path().join("samples/osv/pypi"), ws.path().join("samples/vex/openvex"));
    mutate(&adv, &vex, 2);
    build_at(ws.path(), epoch + 60);
    let a = apply(g1.path(), &ws.path().join("out/nightly"), None);
    assert_eq!(a.code, 0, "{}", a.stdout);
    assert!(tree(g1.path()) == tree(&live));
    let r = run(ws.path(), &["tuf", "rotate-root", "--profile", "mirror", "--new-key", "keys/b.key"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // changing a role's keys without a new root is refused, naming the role
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("targets = [\"keys/b.key\"]", "targets = [\"keys/k.key\"]");
    std::fs::write(&p, text).unwrap();
    let r = finish(
        cmd(ws.path())
            .args(["build", "--json"])
            .env("SOURCE_DATE_EPOCH", (epoch + 120).to_string())
            .output()
            .unwrap(),
    );
    assert_ne!(r.code, 0);
    assert!(r.stdout.contains("the targets keys"), "{}", r.stdout);
    // python-tuf accepts the per-role repository
    let Some(py) = tuf_python() else { return };
    let srv = serve(&g1.path().join("tuf"));
    let c = tempfile::tempdir().unwrap();
    let r = client(
        &py,
        &srv,
        &g1.path().join("tuf/metadata/1.root.json"),
        &c.path().join("c"),
        &c.path().join("o"),
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn bad_tuf_role_settings_are_refused_naming_the_key() {
    let ws = mirror_ws("TEST-ONLY-signing.key");
    let p = ws.path().join("profiles.toml");
    let base = std::fs::read_to_string(&p).unwrap();
    for (table, says) in [
        ("mirrors = [\"keys/k.key\"]\n", "unknown role"),
        ("root = { keys = [\"keys/k.key\"], threshold = 2 }\n", "threshold"),
        ("root = []\n", "threshold"),
        ("targets = [\"keys/missing.key\"]\n", "missing.key"),
    ] {
        std::fs::write(&p, format!("{base}[profiles.mirror.tuf]\n{table}")).unwrap();
        let r = run(ws.path(), &["build"]);
        assert_eq!(r.code, 2, "{table}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{table}: {}", r.stderr);
    }
}

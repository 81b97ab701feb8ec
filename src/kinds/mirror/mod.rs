//! Kinds `mirror:full` (and, with it, the mirror tree every mirror tool
//! reads): the evidence as a tree of data files and indexes, signed as a
//! TUF repository (consistent snapshots), also published as one OCI
//! artifact and a `.tar.zst`.
//!
//! Owns its options (`compression-level`, `expires-days`), its rule
//! (`rule.toml`: parse → `mirror-shard` → `assemble-mirror` → seal), its
//! actions ([`shard`], [`assemble`]), the tree layout ([`tree`]) and the
//! state a mirror carries from one generation to the next
//! ([`assemble::Carried`]: its identity and root files). Selectors apply
//! to advisory records.

pub mod assemble;
pub mod base;
pub mod base_archive;
pub mod delta;
pub mod normalize;
pub mod pack;
pub mod shard;
pub mod tree;

use serde_json::{json, Value};

use super::{BuiltinRule, BundleCheck, Codec, DeriveError, Derived, Kind, Members, OptionSpec};
use crate::actions::Action;
use crate::adapters::Format;

/// Default zstd level of data files: 3, not json:raw's 19. A changed
/// shard is re-encoded on every nightly and by `mirror apply` at the
/// site, and level 3 does that about 7x faster for a mirror ~17 % larger
/// (BENCHMARKS.md "Mirrors"); `compression-level = 19` trades back.
pub const DEFAULT_LEVEL: i64 = 3;

#[derive(Debug)]
pub struct MirrorFull;

/// `expires-days = { timestamp, snapshot, targets, root }`, each 1..=3650
/// (missing ones take [`assemble::Expires::default`]).
/// `[profiles.x.encryption] mode = "age", recipients = ["age1…", …]`:
/// the value `{mode, recipients}` (sorted, each checked as an X25519
/// recipient), or null when absent.
fn parse_encryption(v: Option<&toml::Value>) -> Result<Value, String> {
    let Some(v) = v else { return Ok(Value::Null) };
    let t = v.as_table().ok_or("must be a table { mode = \"age\", recipients = [\"age1…\"] }")?;
    if let Some(k) = t.keys().find(|k| *k != "mode" && *k != "recipients") {
        return Err(format!("unknown key {k:?} (known: mode, recipients)"));
    }
    match t.get("mode").and_then(|m| m.as_str()) {
        Some("age") => {}
        other => return Err(format!("mode: {other:?} is not a mode this build knows (known: \"age\")")),
    }
    let list = t.get("recipients").and_then(|r| r.as_array()).filter(|l| !l.is_empty());
    let list = list.ok_or("recipients: a non-empty list of age X25519 recipients (\"age1…\")")?;
    let mut out = Vec::new();
    for r in list {
        let s = r.as_str().ok_or("recipients: every entry is a string")?;
        s.parse::<age::x25519::Recipient>().map_err(|e| {
            format!(
                "recipients: {}: {e} (an X25519 recipient, as `age-keygen -y` prints)",
                crate::shown::name(s)
            )
        })?;
        out.push(s.to_string());
    }
    out.sort();
    out.dedup();
    Ok(json!({"mode": "age", "recipients": out}))
}

/// `[profiles.x.tuf]`: per-role keys, `<role> = ["keys/a.key", …]`
/// (threshold 1) or `<role> = { keys = [...], threshold = N }`, for roles
/// root, targets, snapshot, timestamp; a role left out is signed by the
/// profile's signing key. Key files (PKCS#8 PEM, mode 0600, relative to
/// the workspace) are given as `{"key-file": path}`, which the engine
/// loads and replaces by the public key before any step sees it.
fn parse_tuf(v: Option<&toml::Value>) -> Result<Value, String> {
    let Some(v) = v else { return Ok(Value::Null) };
    let t = v.as_table().ok_or("must be a table of roles: root, targets, snapshot, timestamp")?;
    let mut out = serde_json::Map::new();
    for (role, spec) in t {
        if !crate::formats::tuf::ROLES.contains(&role.as_str()) {
            return Err(format!("unknown role {role:?} (roles: root, targets, snapshot, timestamp)"));
        }
        let (list, threshold) = match spec {
            toml::Value::Array(a) => (a.clone(), 1),
            toml::Value::Table(t) => {
                if let Some(k) = t.keys().find(|k| *k != "keys" && *k != "threshold") {
                    return Err(format!("{role}: unknown key {k:?} (known: keys, threshold)"));
                }
                let list = t.get("keys").and_then(|k| k.as_array()).cloned().unwrap_or_default();
                let th = t
                    .get("threshold")
                    .map_or(Some(1), |v| v.as_integer())
                    .ok_or(format!("{role}.threshold: a number"))?;
                (list, th)
            }
            _ => return Err(format!("{role}: a list of key files, or {{ keys = [...], threshold = N }}")),
        };
        let mut files = Vec::new();
        for k in &list {
            let f =
                k.as_str().filter(|s| !s.is_empty()).ok_or(format!("{role}: every key is a file path"))?;
            if !files.contains(&f) {
                files.push(f);
            }
        }
        if files.is_empty() || threshold < 1 || threshold as usize > files.len() {
            return Err(format!(
                "{role}: {} key(s) with threshold {threshold}: give at least one key and a threshold from 1 to the number of keys",
                files.len()
            ));
        }
        let keys: Vec<Value> = files.iter().map(|f| json!({"key-file": f})).collect();
        out.insert(role.clone(), json!({"keys": keys, "threshold": threshold}));
    }
    Ok(Value::Object(out))
}

fn parse_expires(v: Option<&toml::Value>) -> Result<Value, String> {
    let mut e = assemble::Expires::default();
    if let Some(v) = v {
        let t = v.as_table().ok_or("must be a table { timestamp, snapshot, targets, root } of days")?;
        for (k, v) in t {
            let n = v
                .as_integer()
                .filter(|n| (1..=3650).contains(n))
                .ok_or_else(|| format!("{k}: must be a number of days from 1 to 3650"))?;
            match k.as_str() {
                "timestamp" => e.timestamp = n,
                "snapshot" => e.snapshot = n,
                "targets" => e.targets = n,
                "root" => e.root = n,
                _ => return Err(format!("unknown role {k:?} (roles: timestamp, snapshot, targets, root)")),
            }
        }
    }
    Ok(serde_json::to_value(e).expect("serialisable"))
}

impl Kind for MirrorFull {
    fn name(&self) -> &'static str {
        "mirror:full"
    }
    fn rule(&self) -> BuiltinRule {
        BuiltinRule { path: "src/kinds/mirror/rule.toml", text: include_str!("rule.toml") }
    }
    fn actions(&self) -> &'static [&'static dyn Action] {
        &[&shard::MirrorShard, &assemble::AssembleMirror]
    }
    fn accepts(&self, format: Format) -> bool {
        format.is_evidence()
    }
    fn options(&self) -> &'static [OptionSpec] {
        &[
            OptionSpec::Int { key: "compression-level", min: 1, max: 22, default: DEFAULT_LEVEL },
            OptionSpec::Custom { key: "expires-days", parse: parse_expires },
            OptionSpec::Custom { key: "encryption", parse: parse_encryption },
            OptionSpec::Custom { key: "tuf", parse: parse_tuf },
        ]
    }
    fn applies_select(&self) -> bool {
        true
    }
    fn bundle(&self) -> BundleCheck {
        BundleCheck { codec: Codec::Zstd, members: Members::Opaque }
    }
    fn carried_state(&self, export: &std::path::Path) -> Option<Value> {
        Some(carried(export))
    }
    /// Given the identity, generation and roots of the export it made,
    /// `assemble-mirror` computes the same identity and so keeps that
    /// generation: the same bytes. Not so while `tuf rotate-root` has a
    /// root pending (the next build carries it: a new generation).
    fn previous_is_fixpoint(&self, export: &std::path::Path) -> bool {
        let roots =
            (1..).take_while(|n| export.join(format!("tuf/metadata/{n}.root.json")).is_file()).count();
        match (export.parent(), export.file_name().and_then(|n| n.to_str())) {
            (Some(out), Some(name)) => {
                !pending_roots(out, name).join(format!("{}.root.json", roots + 1)).exists()
            }
            _ => false,
        }
    }
    fn needs_signing(&self) -> bool {
        true
    }
    fn content_differences(
        &self,
        published: &std::path::Path,
        rebuilt: &dyn Fn(&str) -> Option<Vec<u8>>,
    ) -> Option<Vec<(String, &'static str)>> {
        encrypted_differences(published, rebuilt)
    }
}

/// An encrypted mirror is compared by what it holds: each file's plaintext
/// digest (the file's own digest when it is not encrypted), counts,
/// selectors, sources and recipients of `export.json`; ciphertext, and
/// what follows from it (generation, TUF metadata, manifests), is not.
/// `None` for a mirror without encryption (compared byte for byte).
fn encrypted_differences(
    published: &std::path::Path,
    rebuilt: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Option<Vec<(String, &'static str)>> {
    let theirs: tree::ExportJson = serde_json::from_slice(
        &crate::bounded::read_regular(&published.join(tree::EXPORT_JSON), 64 << 20).ok()?,
    )
    .ok()?;
    let ours: Option<tree::ExportJson> =
        rebuilt(tree::EXPORT_JSON).and_then(|b| serde_json::from_slice(&b).ok());
    if theirs.recipients.is_empty() && ours.as_ref().is_none_or(|o| o.recipients.is_empty()) {
        return None;
    }
    let Some(ours) = ours else { return Some(vec![(tree::EXPORT_JSON.into(), "content")]) };
    let content = |e: &tree::ExportJson| -> std::collections::BTreeMap<String, (crate::digest::Sha256, u64)> {
        e.files
            .iter()
            .map(|f| {
                let c = f.plaintext.as_ref().map_or((f.sha256, f.length), |p| (p.sha256, p.length));
                (f.path.clone(), c)
            })
            .collect()
    };
    let (a, b) = (content(&theirs), content(&ours));
    let mut diffs = Vec::new();
    for (path, c) in &b {
        match a.get(path) {
            None => diffs.push((path.clone(), "missing")),
            Some(x) if x != c => diffs.push((path.clone(), "content")),
            _ => {}
        }
    }
    diffs.extend(a.keys().filter(|p| !b.contains_key(*p)).map(|p| (p.clone(), "extra")));
    if (&theirs.counts, &theirs.selectors, &theirs.sources, &theirs.recipients)
        != (&ours.counts, &ours.selectors, &ours.sources, &ours.recipients)
    {
        diffs.push((tree::EXPORT_JSON.into(), "content"));
    }
    diffs.sort();
    Some(diffs)
}

/// Where `tuf rotate-root` leaves the next root of a mirror until a build
/// carries it into the export: `out/.generations/<profile>/roots/`.
pub fn pending_roots(out_dir: &std::path::Path, profile: &str) -> std::path::PathBuf {
    out_dir.join(".generations").join(profile).join("roots")
}

/// Whether `kind` names a kind whose exports are TUF repositories.
pub fn is_tuf_kind(kind: &str) -> bool {
    kind == MirrorFull.name()
}

/// The [`assemble::Carried`] state of the mirror at `export`: the identity
/// in its `export.json` and its `tuf/metadata/N.root.json` files, N = 1…
/// until one is missing, then the next one `tuf rotate-root` left pending.
pub fn carried(export: &std::path::Path) -> Value {
    let read = |p: std::path::PathBuf| crate::bounded::read_regular(&p, 1 << 20).ok();
    // export.json lists every file (~1 MiB per 900k advisories): read with
    // the bound `mirror` commands use, or a big mirror would lose its
    // identity and count a new generation on every build
    let identity =
        tree::read_export_json(export).ok().map(|e| serde_json::to_value(e.identity).expect("a digest"));
    let mut roots = Vec::new();
    for n in 1.. {
        match read(export.join(format!("tuf/metadata/{n}.root.json"))).and_then(|b| String::from_utf8(b).ok())
        {
            Some(t) => roots.push(t),
            None => break,
        }
    }
    if let (Some(out), Some(name)) = (export.parent(), export.file_name().and_then(|n| n.to_str())) {
        let next = pending_roots(out, name).join(format!("{}.root.json", roots.len() + 1));
        if let Some(t) = read(next).and_then(|b| String::from_utf8(b).ok()) {
            roots.push(t);
        }
    }
    json!({"identity": identity, "roots": roots})
}

#[derive(Debug)]
pub struct MirrorDelta;

/// `base = "<mirror:full profile>"` or `"<path to an export folder>"`.
fn parse_base(v: Option<&toml::Value>) -> Result<Value, String> {
    match v {
        None => Err("base is required: a mirror:full profile, or the path of an export folder".into()),
        Some(v) => match v.as_str() {
            Some(s) if !s.is_empty() => Ok(json!(s)),
            _ => Err("must be a profile name or a path".into()),
        },
    }
}

impl Kind for MirrorDelta {
    fn name(&self) -> &'static str {
        "mirror:delta"
    }
    fn rule(&self) -> BuiltinRule {
        BuiltinRule { path: "src/kinds/mirror/delta.toml", text: include_str!("delta.toml") }
    }
    fn actions(&self) -> &'static [&'static dyn Action] {
        &[&delta::MirrorDelta]
    }
    fn accepts(&self, _format: Format) -> bool {
        false
    }
    fn options(&self) -> &'static [OptionSpec] {
        &[OptionSpec::Custom { key: "base", parse: parse_base }]
    }
    fn applies_select(&self) -> bool {
        false
    }
    fn bundle(&self) -> BundleCheck {
        BundleCheck { codec: Codec::Plain, members: Members::Opaque }
    }
    fn needs_signing(&self) -> bool {
        true
    }
    fn derived(&self) -> Option<&'static dyn Derived> {
        Some(&DeltaOf)
    }
}

/// How a delta profile finds its base ([`delta::Input`]).
struct DeltaOf;

impl Derived for DeltaOf {
    fn bases(
        &self,
        ws: &crate::profile::Workspace,
        p: &crate::profile::ProfileDef,
    ) -> Result<Vec<String>, DeriveError> {
        base::bases(ws, p)
    }
    fn input(
        &self,
        ws: &crate::profile::Workspace,
        p: &crate::profile::ProfileDef,
        cache: &crate::cache::Cache,
    ) -> Result<Value, DeriveError> {
        base::read_input(ws, p, cache).map(|i| serde_json::to_value(i).expect("serialisable"))
    }
}

#[cfg(test)]
mod tests {
    use super::tree::{ExportJson, TreeFile};
    use crate::digest::Sha256;

    #[test]
    fn a_big_export_keeps_its_identity_in_the_carried_state() {
        // export.json lists every file: past 1 MiB at ~900k advisories
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<TreeFile> = (0..12_000u64)
            .map(|i| TreeFile {
                path: format!("data/raw/advisories/src/{i:04}.jsonl.zst"),
                sha256: Sha256::of(&i.to_le_bytes()),
                length: i,
                plaintext: None,
            })
            .collect();
        let identity = Sha256::of(b"identity");
        let e = ExportJson {
            schema_version: 1,
            profile: "m".into(),
            kind: "mirror:full".into(),
            generation: 4,
            created_at: "2026-01-01T00:00:00Z".into(),
            selectors: serde_json::json!({}),
            sources: serde_json::json!([]),
            counts: Default::default(),
            sizes: Default::default(),
            compression_level: 3,
            identity,
            recipients: Vec::new(),
            files,
            tool: serde_json::json!({}),
        };
        let bytes = crate::canon::to_pretty(&serde_json::to_value(&e).unwrap());
        assert!(bytes.len() > 1 << 20, "{} bytes", bytes.len());
        std::fs::write(dir.path().join("export.json"), bytes).unwrap();
        assert_eq!(super::carried(dir.path())["identity"], identity.hex());
    }
}

//! `tuf rotate-root`: the next root of a mirror's TUF repository, signed
//! by the current root key and the new one (python-tuf follows such a
//! chain: each root must be signed by a threshold of the old and of the
//! new root's keys).
//!
//! The new `N+1.root.json` names the new key for every role (threshold 1)
//! and expires `expires-days.root` after the pinned time or the live
//! generation's `createdAt`, whichever is later. It waits under
//! `out/.generations/<profile>/roots/` until the next build of the
//! profile, which must then sign with the new key (set `[signing]` or
//! `profiles.<p>.signing` to it), carries it into `tuf/metadata/` and
//! keeps it from then on. A second rotation before that build is refused.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Error;
use crate::formats::tuf;
use crate::kinds::mirror;
use crate::profile::{KeySpec, Workspace};
use crate::signing::{self, Signer};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotated {
    pub profile: String,
    pub version: u64,
    pub path: PathBuf,
    pub old_keyid: String,
    pub new_keyid: String,
    pub expires: String,
}

pub fn rotate_root(ws: &Workspace, profile: &str, new_key: &Path) -> Result<Rotated, Error> {
    let p = ws.profiles.get(profile).ok_or_else(|| Error::Usage(format!("no profile named {profile:?}")))?;
    if !mirror::is_tuf_kind(&p.kind) {
        return Err(Error::Usage(format!(
            "profile {profile} is a {}, not a TUF repository (a mirror:full profile)",
            p.kind
        )));
    }
    if p.options.contains_key("tuf") {
        return Err(Error::Usage(format!(
            "profile {profile} sets per-role keys (profiles.{profile}.tuf): rotate-root makes single-key roots and does not support those yet"
        )));
    }
    let spec =
        p.signing.as_ref().ok_or_else(|| Error::Usage(format!("profile {profile} has no signing key")))?;
    let old = match spec {
        KeySpec::File(path) => signing::keys::load_file(path),
        KeySpec::Env(var) => signing::keys::load_env(var),
    }
    .map_err(|e| Error::Key(format!("profile {profile}: {e}")))?;
    let new = signing::keys::load_file(new_key).map_err(|e| Error::Key(e.to_string()))?;
    let export = ws.out_dir.join(profile);
    let state = mirror::carried(&export);
    let roots: Vec<String> = serde_json::from_value(state["roots"].clone()).unwrap_or_default();
    let Some(last) = roots.last() else {
        return Err(Error::Usage(format!("{profile} has no published TUF root yet: build it first")));
    };
    let n = roots.len() as u64;
    let pending = mirror::pending_roots(&ws.out_dir, profile);
    let live_roots =
        (1..).take_while(|k| export.join(format!("tuf/metadata/{k}.root.json")).is_file()).count() as u64;
    if n > live_roots {
        return Err(Error::Usage(format!(
            "{n}.root.json is already waiting in {}: build {profile} with its key first",
            crate::shown::path(&pending)
        )));
    }
    let root = tuf::Metadata::parse("root", last.as_bytes()).map_err(|e| Error::Usage(e.to_string()))?.signed;
    let (keys, threshold) = tuf::Metadata::role_keys(&root, "root").unwrap_or_default();
    let old_id = old.public_key().keyid();
    if !keys.iter().any(|(id, _)| *id == old_id) || threshold > 1 {
        return Err(Error::Usage(format!(
            "{n}.root.json's root role ({} key(s), threshold {threshold}) cannot be signed by {profile}'s key {old_id} alone",
            keys.len()
        )));
    }
    let kind = crate::kinds::lookup(&p.kind).expect("checked");
    let days = crate::kinds::option_values(kind, p, &ws.root)
        .ok()
        .and_then(|o| o.get("expires-days").and_then(|e| e.get("root")).and_then(|d| d.as_i64()))
        .unwrap_or(365);
    // from the pinned time, or the live generation's if later: a root made
    // without SOURCE_DATE_EPOCH must not expire before the mirror it signs
    let live_created = std::fs::read(export.join("export.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("createdAt").and_then(|t| t.as_str()).and_then(crate::timefmt::parse))
        .map(|t| t.secs);
    let expires_at = ws.source_date_epoch.max(live_created.unwrap_or(i64::MIN)) + days * 86_400;
    let rk = tuf::RoleKeys { keys: vec![new.public_key().hex()], threshold: 1 };
    let signed = tuf::root(n + 1, expires_at, &tuf::ROLES.map(|r| (r, &rk)));
    let bytes = signing::tuf::sign(&signed, &[&old, &new]).map_err(Error::Usage)?;
    std::fs::create_dir_all(&pending)
        .map_err(|e| Error::Publish(format!("{}: {e}", crate::shown::path(&pending))))?;
    let path = pending.join(format!("{}.root.json", n + 1));
    let tmp = pending.join(format!(".tmp-{}.root.json", n + 1));
    std::fs::write(&tmp, &bytes)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::Publish(format!("{}: {e}", crate::shown::path(&path))))?;
    Ok(Rotated {
        profile: profile.to_string(),
        version: n + 1,
        path,
        old_keyid: old_id,
        new_keyid: new.public_key().keyid(),
        expires: tuf::expires(expires_at),
    })
}

//! Why a step ran: a typed value, recorded per run, shown by `--explain`
//! and `explain`, asserted by tests. Its text shows names through
//! [`crate::shown`].
//!
//! Changed parameters are named by the key a user wrote: a rule parameter
//! fed only by profile or workspace variables (`level =
//! "{profile.compression-level}"`) is named by those keys
//! (`compression-level`); any other parameter by its rule name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cache::action::StepRecord;
use crate::shown;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// No record of this step ever running on this cache.
    NeverBuilt,
    /// The action's version changed.
    ActionVersionChanged { old: u32, new: u32 },
    /// The code of the action changed (a new binary), same version.
    CodeChanged { action: String },
    /// The action id behind the step changed (a rule edit).
    ActionChanged { old: String, new: String },
    /// Canonical parameters changed (selectors, level, sources, pinned time,
    /// ...): the profile keys (or rule parameters) that did, sorted; empty
    /// when the last record predates per-parameter digests.
    ParamsChanged {
        #[serde(default)]
        keys: Vec<String>,
    },
    /// These input groups have new digests.
    InputChanged { inputs: Vec<String> },
    /// Same inputs as last time, but the action-cache entry is gone (gc).
    CacheEntryMissing,
    /// The entry exists but an output blob is gone or was found corrupt.
    OutputMissing { output: String },
}

impl Reason {
    /// Compare the new key's parts with the last record of the step;
    /// `vars` maps each rule parameter to the variables feeding it.
    pub fn diff(last: Option<&StepRecord>, now: &StepRecord, vars: &BTreeMap<String, Vec<String>>) -> Reason {
        let Some(last) = last else {
            return Reason::NeverBuilt;
        };
        if last.action != now.action {
            return Reason::ActionChanged { old: last.action.clone(), new: now.action.clone() };
        }
        if last.version != now.version {
            return Reason::ActionVersionChanged { old: last.version, new: now.version };
        }
        if last.code != now.code {
            return Reason::CodeChanged { action: now.action.clone() };
        }
        if last.params != now.params {
            return Reason::ParamsChanged { keys: changed_keys(last, now, vars) };
        }
        let mut changed: Vec<String> = now
            .inputs
            .iter()
            .filter(|(k, v)| last.inputs.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        changed.extend(last.inputs.keys().filter(|k| !now.inputs.contains_key(*k)).cloned());
        if !changed.is_empty() {
            changed.sort();
            changed.dedup();
            return Reason::InputChanged { inputs: changed };
        }
        Reason::CacheEntryMissing
    }
}

/// The user-facing names of the parameters whose digests differ.
fn changed_keys(last: &StepRecord, now: &StepRecord, vars: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    if last.param_digests.is_empty() {
        return Vec::new();
    }
    let mut params: Vec<&String> = now
        .param_digests
        .iter()
        .filter(|(k, d)| last.param_digests.get(*k) != Some(d))
        .map(|(k, _)| k)
        .collect();
    params.extend(last.param_digests.keys().filter(|k| !now.param_digests.contains_key(*k)));
    let mut keys: Vec<String> = params.into_iter().flat_map(|p| user_keys(p, vars)).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The profile or workspace keys feeding rule parameter `param`, or the
/// parameter's own name when anything else feeds it (a literal, a shard
/// or tool variable).
fn user_keys(param: &str, vars: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let fed: Option<Vec<String>> = vars.get(param).filter(|v| !v.is_empty()).and_then(|v| {
        v.iter()
            .map(|var| {
                var.strip_prefix("profile.").or_else(|| var.strip_prefix("workspace.")).map(str::to_string)
            })
            .collect()
    });
    fed.unwrap_or_else(|| vec![param.to_string()])
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NeverBuilt => write!(f, "never built on this cache"),
            Reason::ActionVersionChanged { old, new } => {
                write!(f, "action version changed {old} -> {new}")
            }
            Reason::ActionChanged { old, new } => {
                write!(f, "action changed {} -> {}", shown::name(old), shown::name(new))
            }
            Reason::CodeChanged { action } => write!(f, "code of {} changed", shown::name(action)),
            Reason::ParamsChanged { keys } if keys.is_empty() => write!(f, "parameters changed"),
            Reason::ParamsChanged { keys } => write!(f, "{} changed", shown::name(&keys.join(", "))),
            Reason::InputChanged { inputs } => {
                write!(f, "input changed: {}", shown::name(&inputs.join(", ")))
            }
            Reason::CacheEntryMissing => write!(f, "inputs unchanged but the cache entry is gone"),
            Reason::OutputMissing { output } => {
                write!(f, "cached output \"{}\" missing or corrupt", shown::name(output))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn rec(version: u32, params: &[u8], input: &[u8]) -> StepRecord {
        StepRecord {
            step: "s".into(),
            key: Digest::of(b"k"),
            action: "a".into(),
            version,
            code: Some(Digest::of(b"code")),
            params: Digest::of(params),
            param_digests: [
                ("level".to_string(), Digest::of(params)),
                ("member".to_string(), Digest::of(b"m")),
            ]
            .into_iter()
            .collect(),
            inputs: [("docs".to_string(), Digest::of(input))].into_iter().collect(),
        }
    }

    fn vars() -> BTreeMap<String, Vec<String>> {
        [
            ("level".to_string(), vec!["profile.compression-level".to_string()]),
            ("member".to_string(), vec!["shard.index".to_string(), "shard.source".to_string()]),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn diff_names_the_change() {
        let now = rec(1, b"p", b"i");
        let v = &vars();
        assert_eq!(Reason::diff(None, &now, v), Reason::NeverBuilt);
        assert_eq!(
            Reason::diff(Some(&rec(0, b"p", b"i")), &now, v),
            Reason::ActionVersionChanged { old: 0, new: 1 }
        );
        let level = Reason::diff(Some(&rec(1, b"q", b"i")), &now, v);
        assert_eq!(level, Reason::ParamsChanged { keys: vec!["compression-level".into()] });
        assert_eq!(level.to_string(), "compression-level changed");
        let old_code = StepRecord { code: Some(Digest::of(b"old")), ..now.clone() };
        assert_eq!(Reason::diff(Some(&old_code), &now, v), Reason::CodeChanged { action: "a".into() });
        assert_eq!(Reason::CodeChanged { action: "a".into() }.to_string(), "code of a changed");
        assert_eq!(
            Reason::diff(Some(&rec(1, b"p", b"j")), &now, v),
            Reason::InputChanged { inputs: vec!["docs".into()] }
        );
        assert_eq!(Reason::diff(Some(&now), &now, v), Reason::CacheEntryMissing);
    }

    #[test]
    fn params_not_fed_by_the_profile_keep_their_rule_name() {
        let now = rec(1, b"p", b"i");
        let mut last = now.clone();
        last.params = Digest::of(b"old");
        last.param_digests.insert("member".into(), Digest::of(b"old member"));
        last.param_digests.insert("gone".into(), Digest::of(b"x"));
        let r = Reason::diff(Some(&last), &now, &vars());
        assert_eq!(r, Reason::ParamsChanged { keys: vec!["gone".into(), "member".into()] });
        // a record from before per-parameter digests: no names, the old text
        last.param_digests.clear();
        let r = Reason::diff(Some(&last), &now, &vars());
        assert_eq!(r.to_string(), "parameters changed");
    }

    #[test]
    fn names_in_reasons_are_escaped() {
        let r = Reason::InputChanged { inputs: vec!["x\nran forged: \u{1b}[31m".into()] };
        assert_eq!(r.to_string(), "input changed: x\\nran forged: \\u{1b}[31m");
        let r = Reason::OutputMissing { output: "o\r".into() };
        assert_eq!(r.to_string(), "cached output \"o\\r\" missing or corrupt");
    }
}

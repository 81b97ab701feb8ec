//! Why a step ran: a typed value, recorded per run, shown by `--explain`
//! and `explain`, asserted by tests. Its text shows names through
//! [`crate::shown`].

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
    /// Canonical parameters changed (selectors, level, sources, pinned time, ...).
    ParamsChanged,
    /// These input groups have new digests.
    InputChanged { inputs: Vec<String> },
    /// Same inputs as last time, but the action-cache entry is gone (gc).
    CacheEntryMissing,
    /// The entry exists but an output blob is gone or was found corrupt.
    OutputMissing { output: String },
}

impl Reason {
    /// Compare the new key's parts with the last record of the step.
    pub fn diff(last: Option<&StepRecord>, now: &StepRecord) -> Reason {
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
            return Reason::ParamsChanged;
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
            Reason::ParamsChanged => write!(f, "parameters changed"),
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
            inputs: [("docs".to_string(), Digest::of(input))].into_iter().collect(),
        }
    }

    #[test]
    fn diff_names_the_change() {
        let now = rec(1, b"p", b"i");
        assert_eq!(Reason::diff(None, &now), Reason::NeverBuilt);
        assert_eq!(
            Reason::diff(Some(&rec(0, b"p", b"i")), &now),
            Reason::ActionVersionChanged { old: 0, new: 1 }
        );
        let old_code = StepRecord { code: Some(Digest::of(b"old")), ..now.clone() };
        assert_eq!(Reason::diff(Some(&old_code), &now), Reason::CodeChanged { action: "a".into() });
        assert_eq!(Reason::CodeChanged { action: "a".into() }.to_string(), "code of a changed");
        assert_eq!(Reason::diff(Some(&rec(1, b"q", b"i")), &now), Reason::ParamsChanged);
        assert_eq!(
            Reason::diff(Some(&rec(1, b"p", b"j")), &now),
            Reason::InputChanged { inputs: vec!["docs".into()] }
        );
        assert_eq!(Reason::diff(Some(&now), &now), Reason::CacheEntryMissing);
    }

    #[test]
    fn names_in_reasons_are_escaped() {
        let r = Reason::InputChanged { inputs: vec!["x\nran forged: \u{1b}[31m".into()] };
        assert_eq!(r.to_string(), "input changed: x\\nran forged: \\u{1b}[31m");
        let r = Reason::OutputMissing { output: "o\r".into() };
        assert_eq!(r.to_string(), "cached output \"o\\r\" missing or corrupt");
    }
}

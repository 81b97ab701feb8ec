//! Kind `json:policy`: for each SBOM among the inputs, which components
//! are affected by which advisories, what VEX says of each finding and
//! what the policy concludes; with the raw evidence as json:raw carries
//! it, in one deterministic `.tar.zst` bundle.
//!
//! Owns its options (`policy`: a policy file, `crate::policy::config`,
//! read when the profile loads, its snapshot the steps' parameter;
//! `compression-level`), its rule (`rule.toml`: parse → encode (the raw
//! members) and `policy-facts` per shard → `policy-index` → `policy-slice`
//! and `policy-evaluate` per shard → `policy-report` → bundle → seal), its
//! actions ([`facts`], [`index`], [`evaluate`], [`report`]) and its
//! verify hook (zstd frames; `.jsonl` members count their lines).
//!
//! Invariants: matching is Trivy's over the rows our trivy:db conversion
//! writes (one implementation: `kinds::trivy_db::convert`); evaluation
//! steps are per SBOM shard and keyed on the shard's records, the advisory
//! rows of the packages it holds (the slice), the VEX documents and the
//! policy, so a changed advisory re-evaluates only the shards holding its
//! package, and a changed policy re-runs evaluation, not parsing; the
//! evidence is never rewritten by the policy.

pub mod evaluate;
pub mod facts;
pub mod index;
pub mod keys;
pub mod report;

use serde_json::Value;

use super::{BuiltinRule, BundleCheck, Codec, Kind, Members, OptionSpec};
use crate::actions::Action;
use crate::adapters::Format;
use crate::policy::config::{Policy, DEFAULT_TEXT};

/// Default zstd level of the bundle's members.
pub const DEFAULT_LEVEL: i64 = 19;

fn parse_policy(path: Option<&str>, text: &str) -> Result<Value, String> {
    Ok(Policy::parse(text)?.snapshot(path, text))
}

#[derive(Debug)]
pub struct JsonPolicy;

impl Kind for JsonPolicy {
    fn name(&self) -> &'static str {
        "json:policy"
    }
    fn rule(&self) -> BuiltinRule {
        BuiltinRule { path: "src/kinds/json_policy/rule.toml", text: include_str!("rule.toml") }
    }
    fn actions(&self) -> &'static [&'static dyn Action] {
        &[
            &facts::PolicyFacts,
            &index::PolicyIndex,
            &index::PolicySlice,
            &evaluate::PolicyEvaluate,
            &report::PolicyReport,
        ]
    }
    fn accepts(&self, format: Format) -> bool {
        format.is_evidence()
    }
    fn options(&self) -> &'static [OptionSpec] {
        &[
            OptionSpec::File { key: "policy", default_text: DEFAULT_TEXT, parse: parse_policy },
            OptionSpec::Int { key: "compression-level", min: 1, max: 22, default: DEFAULT_LEVEL },
        ]
    }
    fn applies_select(&self) -> bool {
        false
    }
    fn bundle(&self) -> BundleCheck {
        BundleCheck { codec: Codec::Zstd, members: Members::JsonLines }
    }
}

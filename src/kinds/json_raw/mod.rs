//! Kind `json:raw`: raw evidence as canonical JSONL in a deterministic
//! `.tar.zst` bundle, one member per record type, source and shard.
//!
//! Owns its option (`compression-level`, the zstd level), its rule
//! (`rule.toml`: parse → `encode-member` → `assemble-bundle` → seal), its
//! actions ([`encode`], [`bundle`]) and its verify hook (zstd frames;
//! members are JSONL whose line count is `contents[].records`). Selectors
//! apply to advisory records (see `encode`).

pub mod bundle;
pub mod encode;

use super::{BuiltinRule, BundleCheck, Codec, Kind, Members, OptionSpec};
use crate::actions::Action;
use crate::adapters::Format;

/// Default zstd level of bundles.
pub const DEFAULT_LEVEL: i64 = 19;

#[derive(Debug)]
pub struct JsonRaw;

impl Kind for JsonRaw {
    fn name(&self) -> &'static str {
        "json:raw"
    }
    fn rule(&self) -> BuiltinRule {
        BuiltinRule { path: "src/kinds/json_raw/rule.toml", text: include_str!("rule.toml") }
    }
    fn actions(&self) -> &'static [&'static dyn Action] {
        &[&encode::EncodeMember, &bundle::AssembleBundle]
    }
    fn accepts(&self, format: Format) -> bool {
        format.is_evidence()
    }
    fn options(&self) -> &'static [OptionSpec] {
        &[OptionSpec::Int { key: "compression-level", min: 1, max: 22, default: DEFAULT_LEVEL }]
    }
    fn applies_select(&self) -> bool {
        true
    }
    fn bundle(&self) -> BundleCheck {
        BundleCheck { codec: Codec::Zstd, members: Members::JsonLines }
    }
}

//! Kind `trivy:db`: the vulnerability DB the real Trivy scanner reads
//! offline (`trivy.db` + `metadata.json` in `db.tar.gz`, and the same bytes
//! as an OCI artifact).
//!
//! Owns its option (`next-update-hours`: `NextUpdate` = pinned time + this
//! many hours), its rule (`rule.toml`: parse → `trivy-convert` →
//! `assemble-trivy-db` → seal), its actions ([`convert`], [`trivydb`]) and
//! its verify hook (one gzip stream; members are not re-counted), and the
//! model of what advisories become in the DB ([`model`]: rows, buckets,
//! OSV and Node.js conversion, CVSS); version orders are the shared
//! [`crate::versions`].
//! Selectors apply: `trivy-convert` drops advisories they do not match.

pub mod convert;
pub mod model;
pub mod trivydb;

use super::{BuiltinRule, BundleCheck, Codec, Kind, Members, OptionSpec};
use crate::actions::Action;
use crate::adapters::Format;

/// Default `next-update-hours`.
pub const DEFAULT_NEXT_UPDATE_HOURS: i64 = 24;

#[derive(Debug)]
pub struct TrivyDb;

impl Kind for TrivyDb {
    fn name(&self) -> &'static str {
        "trivy:db"
    }
    fn rule(&self) -> BuiltinRule {
        BuiltinRule { path: "src/kinds/trivy_db/rule.toml", text: include_str!("rule.toml") }
    }
    fn actions(&self) -> &'static [&'static dyn Action] {
        &[&convert::TrivyConvert, &trivydb::AssembleTrivyDb]
    }
    fn accepts(&self, format: Format) -> bool {
        matches!(format, Format::Osv | Format::NodejsAdvisory | Format::AlpineSecdb)
    }
    fn options(&self) -> &'static [OptionSpec] {
        &[OptionSpec::Int {
            key: "next-update-hours",
            min: 1,
            max: 24 * 366,
            default: DEFAULT_NEXT_UPDATE_HOURS,
        }]
    }
    fn applies_select(&self) -> bool {
        true
    }
    fn bundle(&self) -> BundleCheck {
        BundleCheck { codec: Codec::Gzip, members: Members::Opaque }
    }
}

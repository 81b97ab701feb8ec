//! Kind `trivy:java-db`: the Java index DB Trivy uses to identify jars
//! (`trivy-java.db` + `metadata.json` in `javadb.tar.gz`, and the same
//! bytes as an OCI artifact).
//!
//! Owns its option (`next-update-hours`), its rule (`rule.toml`:
//! `index-jars` → `assemble-java-db` → seal), its actions ([`javadb`]) and
//! its verify hook (one gzip stream; members are not re-counted). It does
//! not apply selectors (jars are not advisories), so a profile's `select`
//! is refused.

pub mod javadb;

use super::{BuiltinRule, BundleCheck, Codec, Kind, Members, OptionSpec};
use crate::actions::Action;
use crate::adapters::Format;

#[derive(Debug)]
pub struct TrivyJavaDb;

impl Kind for TrivyJavaDb {
    fn name(&self) -> &'static str {
        "trivy:java-db"
    }
    fn rule(&self) -> BuiltinRule {
        BuiltinRule { path: "src/kinds/trivy_java_db/rule.toml", text: include_str!("rule.toml") }
    }
    fn actions(&self) -> &'static [&'static dyn Action] {
        &[&javadb::IndexJars, &javadb::AssembleJavaDb]
    }
    fn accepts(&self, format: Format) -> bool {
        format == Format::MavenRepo
    }
    fn options(&self) -> &'static [OptionSpec] {
        &[OptionSpec::Int {
            key: "next-update-hours",
            min: 1,
            max: 24 * 366,
            default: super::trivy_db::DEFAULT_NEXT_UPDATE_HOURS,
        }]
    }
    fn applies_select(&self) -> bool {
        false
    }
    fn bundle(&self) -> BundleCheck {
        BundleCheck { codec: Codec::Gzip, members: Members::Opaque }
    }
}

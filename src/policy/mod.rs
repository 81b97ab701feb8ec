//! What json:policy (issue 13) evaluates, as Trivy 0.76.0 evaluates it:
//! SBOM packages and their dependency edges ([`sbom`]), package URLs in
//! Trivy's canonical form ([`purl`]) and VEX applied to findings
//! ([`vex`]). Each piece is checked against the real Trivy
//! (`tests/sbom_packages.rs`, `tests/vex_trivy.rs`); the facts they follow
//! are in `docs/research/json-policy-trivy.md`. Kept apart from
//! the evidence adapters (`src/adapters/`) so that work here does not change the code
//! fingerprint of every action that reads evidence.

pub mod config;
pub mod matcher;
pub mod purl;
pub mod sbom;
pub mod vex;

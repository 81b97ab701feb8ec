//! Output formats we write byte for byte: deterministic tar members and
//! zstd frames ([`tar`]), the export manifest and checksums ([`manifest`]),
//! DSSE envelopes ([`dsse`]) and in-toto/SLSA provenance ([`provenance`]).

pub mod dsse;
pub mod manifest;
pub mod provenance;
pub mod tar;

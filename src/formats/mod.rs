//! Output formats we write byte for byte: deterministic tar members and
//! zstd frames ([`tar`]), the export manifest and checksums ([`manifest`]).

pub mod manifest;
pub mod tar;

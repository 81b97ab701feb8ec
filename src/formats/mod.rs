//! Output formats we write byte for byte: deterministic tar members and
//! zstd frames ([`tar`]), the export manifest and checksums ([`manifest`]),
//! DSSE envelopes ([`dsse`]), in-toto/SLSA provenance ([`provenance`]),
//! bbolt files such as Trivy's `trivy.db` ([`bbolt`]), OCI layouts of one
//! artifact ([`oci`]), TUF metadata ([`tuf`]), deterministic parallel gzip
//! ([`gzip`]) and the frame boundaries of a zstd stream ([`zstd_frames`]). What a
//! kind's data becomes before it is written (the Trivy DB rows, for
//! instance) lives with the kind under `src/kinds/`.

pub mod bbolt;
pub mod dsse;
pub mod gzip;
pub mod manifest;
pub mod oci;
pub mod provenance;
pub mod tar;
pub mod tuf;
pub mod zstd_frames;

//! The two shareable halves of the cache, as traits: [`BlobStore`]
//! (content-addressed blobs) and [`ActionCache`] (step key → outputs).
//!
//! Contract every implementation keeps (the filesystem [`super::FsStore`]
//! today, an HTTP store speaking the Bazel cache protocol next; see the
//! module doc of [`super`]):
//! - a blob's name is the BLAKE3 of its bytes; readers verify on use
//!   ([`super::cas::BlobReader`]), so a store may hand back bad bytes but
//!   never gets them trusted;
//! - `put_*` of a name already present replaces it (it may be corrupt);
//! - `get_entry` returns only an entry that parses and names the key asked
//!   for (anything else is a miss) and records the use where the store
//!   keeps last-use stamps;
//! - an entry is `put` only after every blob it names was `put`.
//!
//! No method exposes a path inside the store.

use std::fs::File;
use std::path::Path;

use super::action::AcEntry;
use super::cas::BlobReader;
use super::CacheError;
use crate::digest::Digest;

/// Content-addressed blobs.
pub trait BlobStore: Send + Sync {
    /// Is the blob present (with this size, when given)? Cheap: no content read.
    fn contains(&self, d: &Digest, size: Option<u64>) -> bool;
    /// Store bytes; returns their digest.
    fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, CacheError>;
    /// Move a finished local file into the store (it is consumed), hashing
    /// it on the way. Returns its digest and size.
    fn put_file(&self, file: &Path) -> Result<(Digest, u64), CacheError>;
    /// Move a finished local file into the store under `d`, the BLAKE3 its
    /// writer computed ([`super::HashingFile`]). The default hashes it again
    /// and refuses a mismatch.
    fn put_hashed(&self, file: &Path, d: &Digest) -> Result<(), CacheError> {
        let (got, _) = self.put_file(file)?;
        if got != *d {
            return Err(CacheError::Io {
                path: file.to_path_buf(),
                source: std::io::Error::other(format!("hashed as {d} when written, stored as {got}")),
            });
        }
        Ok(())
    }
    /// A reader of the blob that verifies it as it goes;
    /// [`CacheError::Missing`] if absent.
    fn reader(&self, d: &Digest) -> Result<BlobReader, CacheError>;
    /// A seekable local file holding the blob's bytes (unverified).
    fn open_file(&self, d: &Digest) -> Result<File, CacheError>;
    /// The local file holding the blob, when the store keeps one that is
    /// never written in place (only replaced by rename or removed), so it
    /// may be hard-linked. None for stores without one.
    fn linkable_path(&self, _d: &Digest) -> Option<std::path::PathBuf> {
        None
    }
}

/// Action-cache entries: a step key → the digests of the step's outputs.
pub trait ActionCache: Send + Sync {
    /// The entry for `key`, if one parses and names `key`; records the use.
    fn get_entry(&self, key: &Digest) -> Option<AcEntry>;
    /// Store an entry (after the blobs it names).
    fn put_entry(&self, entry: &AcEntry) -> Result<(), CacheError>;
}

/// A store holding both halves (what [`super::Cache`] is built on).
pub trait Store: BlobStore + ActionCache {}

impl<T: BlobStore + ActionCache> Store for T {}

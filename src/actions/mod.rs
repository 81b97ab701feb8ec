//! Built-in actions: the only code a step can run.
//!
//! This module holds the [`Action`] trait, the memory budget and the
//! actions shared by kinds ([`SHARED`]: `parse-documents`, `seal-export`,
//! and the helpers `merge` and `dbexport`); each kind's own actions live in
//! its folder under `src/kinds`, whose registry lists every action.
//!
//! Each action has an id and a version (bump the version whenever the bytes
//! it writes for the same inputs change), named inputs and named outputs.
//! An action is hermetic: it sees its parameters, its declared inputs
//! (shard documents read and verified through [`ShardReader`], or CAS
//! blobs read and verified through the cache), a scratch folder where it
//! writes one file per output, and the run's keyring (signers named by
//! public keyid in its parameters). It never sees absolute workspace
//! paths, the clock or the environment.
//!
//! Memory: actions that hold input-sized data reserve it from [`MEMORY`]
//! first ([`MEMORY_BUDGET`] for the whole process), so peak memory is
//! bounded whatever the input and `--jobs`.

pub mod dbexport;
pub mod merge;
mod parse;
mod seal;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Condvar, Mutex};

use serde_json::Value;

use crate::cache::{Cache, CacheError};
use crate::digest::Digest;
use crate::signing::Keyring;
use crate::sources::{Shard, Snapshot, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    Failed(String),
}

impl ActionError {
    pub fn io(what: &Path, e: std::io::Error) -> Self {
        ActionError::Failed(format!("{}: {e}", what.display()))
    }
}

/// A step's input as the action sees it.
pub enum InputData<'a> {
    Shard { snap: &'a Snapshot, shard: &'a Shard },
    Blob(Digest),
}

pub struct ActionCx<'a> {
    pub params: &'a Value,
    pub inputs: BTreeMap<String, Vec<InputData<'a>>>,
    pub cache: &'a Cache,
    /// Scratch folder: write each output as `out/<output name>`.
    pub out: &'a Path,
    /// Signers of this run, by keyid (a step names its key in a parameter).
    pub keys: &'a Keyring,
    /// Files written with [`ActionCx::create_hashed`] and finished: the
    /// executor stores them under the digest computed as they were written.
    pub hashed: std::sync::Mutex<Vec<crate::cache::Hashed>>,
}

impl ActionCx<'_> {
    pub fn param_str(&self, key: &str) -> Result<&str, ActionError> {
        self.params
            .get(key)
            .and_then(|v| v.as_str())
            .ok_or_else(|| ActionError::Failed(format!("parameter {key:?} missing or not a string")))
    }
    pub fn param_i64(&self, key: &str) -> Result<i64, ActionError> {
        self.params
            .get(key)
            .and_then(|v| v.as_i64())
            .ok_or_else(|| ActionError::Failed(format!("parameter {key:?} missing or not an integer")))
    }
    /// The shard given as `input`, and a reader of its documents.
    pub fn shard(&self, input: &str) -> Result<(&Shard, crate::sources::ShardReader), ActionError> {
        let Some(InputData::Shard { snap, shard }) = self.inputs.get(input).and_then(|l| l.first()) else {
            return Err(ActionError::Failed(format!("input {input} is not a shard")));
        };
        Ok((shard, crate::sources::ShardReader::open(snap, shard, self.cache)?))
    }
    /// The `records` blob of `parse-documents` (the first blob of
    /// `input`), verified whole first (streamed), then decoded as a stream
    /// of `<meta>\t<record>` lines ([`RecordLine`]).
    pub fn records(
        &self,
        input: &str,
    ) -> Result<
        std::io::BufReader<
            zstd::stream::read::Decoder<'static, std::io::BufReader<crate::cache::cas::BlobReader>>,
        >,
        ActionError,
    > {
        let blob = self
            .blobs(input)
            .first()
            .copied()
            .ok_or_else(|| ActionError::Failed(format!("no {input} input")))?;
        self.cache.copy_to(&blob, &mut std::io::sink())?;
        let decoder = zstd::stream::read::Decoder::new(self.cache.reader(&blob)?)
            .map_err(|e| ActionError::Failed(format!("records blob: {e}")))?;
        Ok(std::io::BufReader::with_capacity(1 << 16, decoder))
    }
    pub fn blobs(&self, input: &str) -> Vec<Digest> {
        self.inputs
            .get(input)
            .map(|l| {
                l.iter().filter_map(|i| if let InputData::Blob(d) = i { Some(*d) } else { None }).collect()
            })
            .unwrap_or_default()
    }
    pub fn write(&self, output: &str, bytes: &[u8]) -> Result<(), ActionError> {
        let p = self.out.join(output);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ActionError::io(parent, e))?;
        }
        std::fs::write(&p, bytes).map_err(|e| ActionError::io(&p, e))
    }
    /// A large output (`out/<rel>`) hashed as it is written, so the
    /// executor does not read it back; finish it with [`ActionCx::finish_hashed`].
    pub fn create_hashed(&self, rel: &str) -> Result<crate::cache::HashingFile, ActionError> {
        let p = self.out.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ActionError::io(parent, e))?;
        }
        crate::cache::HashingFile::create(&p).map_err(|e| ActionError::io(&p, e))
    }
    /// Close a file from [`ActionCx::create_hashed`]: its size and digests.
    pub fn finish_hashed(&self, f: crate::cache::HashingFile) -> Result<crate::cache::Hashed, ActionError> {
        let h = f.finish().map_err(|e| ActionError::io(self.out, e))?;
        self.hashed.lock().unwrap_or_else(|p| p.into_inner()).push(h.clone());
        Ok(h)
    }
    /// The finished hashed file at `path`, if there is one.
    pub fn hashed_at(&self, path: &Path) -> Option<crate::cache::Hashed> {
        self.hashed.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|h| h.path() == path).cloned()
    }
}

pub trait Action: Sync + std::fmt::Debug {
    fn id(&self) -> &'static str;
    fn version(&self) -> u32;
    fn inputs(&self) -> &'static [&'static str];
    /// Inputs a rule may leave out.
    fn optional_inputs(&self) -> &'static [&'static str] {
        &[]
    }
    fn outputs(&self) -> &'static [&'static str];
    /// The code this action's output bytes depend on, as path prefixes
    /// relative to the crate root (a file, or a folder ending in `/`):
    /// `file!()` (its own file), `src/actions/mod.rs`, and every module
    /// whose behaviour can change what it writes (formats, canon, digest,
    /// sources for actions that read shards, ...). See [`crate::code`];
    /// tests/fingerprint.rs checks each prefix matches a file and that the
    /// modules the declared files use are declared.
    fn code(&self) -> &'static [&'static str];
    /// Digest of the code declared by [`Action::code`]: part of every step key.
    fn fingerprint(&self) -> crate::digest::Digest {
        crate::code::fingerprint(self.code())
    }
    /// Parameters the action cannot run without (checked when rules load).
    fn required_params(&self) -> &'static [&'static str] {
        &[]
    }
    /// True for actions whose outputs are a profile's published files.
    fn publishes(&self) -> bool {
        false
    }
    /// The file name an output is published under, or `None` when that
    /// output is not published (for example a signature of an unsigned
    /// profile).
    fn published_name(&self, _output: &str, _params: &Value) -> Option<String> {
        None
    }
    /// An output holding a JSON object `{output: published path}` for
    /// outputs whose published names depend on their content (OCI blobs
    /// are named by digest). It is not published itself.
    fn names_output(&self) -> Option<&'static str> {
        None
    }
    /// True for an action whose published files are a tree it decides at
    /// run time: besides its fixed outputs it writes files under
    /// `out/tree/` and may list in `out/links.json`
    /// (`{published path: blob digest hex}`) blobs of its *inputs* to
    /// publish as they are, without copying them. Each becomes an output
    /// named `tree/<published path>`, published as `<published path>`
    /// ([`TREE_PREFIX`]).
    fn tree(&self) -> bool {
        false
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError>;
}

/// Outputs named `tree/<path>` of a [`Action::tree`] action publish as `<path>`.
pub const TREE_PREFIX: &str = "tree/";

/// How a rejected document is named: `<declared path>/<doc>` for a folder,
/// `<declared path>: member <doc>` for an archive (`origin` parameter).
pub fn shown_path(declared: &str, origin: &str, doc: &str) -> String {
    match origin {
        "archive" => format!("{declared}: member {doc}"),
        _ => format!("{}/{doc}", declared.trim_end_matches('/')),
    }
}

/// A writer that counts and SHA-256-hashes what passes through.
pub struct Sha256Writer<W> {
    pub inner: W,
    pub sha: sha2::Sha256,
    pub len: u64,
}

impl<W> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Sha256Writer { inner, sha: Default::default(), len: 0 }
    }
    pub fn digest(&self) -> crate::digest::Sha256 {
        use sha2::Digest as _;
        crate::digest::Sha256(self.sha.clone().finalize().into())
    }
}

impl<W: std::io::Write> std::io::Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes of memory the steps of one process may reserve at once (parsed
/// documents, one-shot frames). Steps wait for their share, so the peak
/// does not grow with `--jobs`.
pub const MEMORY_BUDGET: u64 = 320 << 20;

/// A counting semaphore over [`MEMORY_BUDGET`].
pub struct Budget {
    used: Mutex<u64>,
    freed: Condvar,
}

/// The process-wide memory budget of steps.
pub static MEMORY: Budget = Budget { used: Mutex::new(0), freed: Condvar::new() };

/// Bytes of [`MEMORY`] held; released on drop.
pub struct Held {
    n: u64,
    trim: bool,
}

impl Budget {
    /// Wait until `n` (at most the whole budget) is free, and take it.
    /// Callers hold nothing else of the budget while they wait.
    pub fn acquire(&'static self, n: u64) -> Held {
        let n = n.min(MEMORY_BUDGET);
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used + n > MEMORY_BUDGET {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += n;
        Held { n, trim: false }
    }
    /// Grow `held` to `n` if that is free now; never waits.
    pub fn try_grow(&self, held: &mut Held, n: u64) -> bool {
        let n = n.min(MEMORY_BUDGET);
        if n <= held.n {
            return true;
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if *used + (n - held.n) > MEMORY_BUDGET {
            return false;
        }
        *used += n - held.n;
        held.n = n;
        true
    }
}

impl Held {
    /// On release, give freed memory back to the OS first (when over 8 MiB):
    /// glibc keeps freed chunks in per-thread arenas, so N threads handling
    /// one large document after another would each keep their peak.
    pub fn trim_on_release(&mut self) {
        self.trim = self.n > 8 << 20;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.trim {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only returns free heap memory to the kernel.
            unsafe {
                libc::malloc_trim(0);
            }
        }
        let mut used = MEMORY.used.lock().unwrap_or_else(|p| p.into_inner());
        *used -= self.n;
        MEMORY.freed.notify_all();
    }
}

/// The actions every kind may use; a kind's own actions live in its
/// folder (`src/kinds`), which lists all of them.
pub static SHARED: &[&dyn Action] = &[&parse::ParseDocuments, &seal::SealExport];

pub use parse::{read_rejected, read_rejected as parse_rejected, RecordLine};

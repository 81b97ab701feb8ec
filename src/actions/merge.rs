//! Merging sorted row blobs: the streaming half of DB assembly.
//!
//! Per-shard steps write their rows as zstd-compressed lines sorted by a
//! key prefix (the first `key_fields` tab-separated fields). [`Merge`]
//! reads every blob at once, verifying each as it streams (a corrupt blob
//! fails the step, which restarts the build), and yields lines in global
//! key order; lines with equal keys come out ordered by their full text,
//! so the order never depends on how rows were split into shards. Memory is one line and one decoder per
//! input: blobs are written with a small zstd window ([`ROWS_WINDOW_LOG`])
//! and read through small buffers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufRead, BufReader};

use super::ActionError;
use crate::cache::cas::BlobReader;
use crate::cache::Cache;
use crate::digest::Digest;

/// log2 of the zstd window of row blobs (32 KiB: a decoder then needs
/// about 100 KiB, so a thousand shards merge in about 100 MiB).
pub const ROWS_WINDOW_LOG: u32 = 15;

/// Compress sorted row lines for [`Merge`].
pub fn pack_rows(lines: &[u8]) -> Result<Vec<u8>, ActionError> {
    let mut c = zstd::bulk::Compressor::new(3).map_err(|e| ActionError::Failed(e.to_string()))?;
    c.set_parameter(zstd::stream::raw::CParameter::WindowLog(ROWS_WINDOW_LOG))
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    c.include_contentsize(true).map_err(|e| ActionError::Failed(e.to_string()))?;
    c.compress(lines).map_err(|e| ActionError::Failed(e.to_string()))
}

type Stream = BufReader<zstd::stream::read::Decoder<'static, BufReader<BlobReader>>>;

pub struct Merge {
    streams: Vec<Stream>,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    key_fields: usize,
    /// The line being read (reused: one allocation per line, its heap entry).
    line: Vec<u8>,
}

/// Length of the key prefix of `line`: its first `fields` tab-separated fields.
fn key_len(line: &[u8], fields: usize) -> usize {
    let mut seen = 0;
    for (i, &b) in line.iter().enumerate() {
        if b == b'\t' {
            seen += 1;
            if seen == fields {
                return i;
            }
        }
    }
    line.len()
}

impl Merge {
    pub fn open(cache: &Cache, blobs: &[Digest], key_fields: usize) -> Result<Merge, ActionError> {
        let mut m = Merge { streams: Vec::new(), heap: BinaryHeap::new(), key_fields, line: Vec::new() };
        for d in blobs {
            let r = cache.reader(d)?;
            let dec = zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(8 << 10, r))
                .map_err(|e| ActionError::Failed(e.to_string()))?;
            m.streams.push(BufReader::with_capacity(16 << 10, dec));
        }
        for i in 0..m.streams.len() {
            m.refill(i)?;
        }
        Ok(m)
    }

    fn fail(&self, i: usize, e: std::io::Error) -> ActionError {
        if let Some(c) = self.streams[i].get_ref().get_ref().get_ref().corrupt() {
            return ActionError::Cache(c);
        }
        ActionError::Failed(format!("row blob {i}: {e}"))
    }

    fn refill(&mut self, i: usize) -> Result<(), ActionError> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let read = self.streams[i].read_until(b'\n', &mut line);
        let done = self.push(i, read, &line);
        self.line = line;
        done
    }

    fn push(&mut self, i: usize, read: std::io::Result<usize>, line: &[u8]) -> Result<(), ActionError> {
        match read {
            Err(e) => Err(self.fail(i, e)),
            Ok(0) => {
                // drain to EOF so the blob is verified
                let mut rest = Vec::new();
                match std::io::Read::read_to_end(&mut self.streams[i], &mut rest) {
                    Err(e) => Err(self.fail(i, e)),
                    Ok(_) => Ok(()),
                }
            }
            Ok(_) => {
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                let klen = key_len(line, self.key_fields);
                // key, NUL, line: equal keys order by the whole line (keys never hold NUL)
                let mut entry = Vec::with_capacity(klen + 1 + line.len());
                entry.extend_from_slice(&line[..klen]);
                entry.push(0);
                entry.extend_from_slice(line);
                self.heap.push(Reverse((entry, i)));
                Ok(())
            }
        }
    }

    /// The next line (without its newline) in key order, or `None`.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, ActionError> {
        let Some(Reverse((mut entry, i))) = self.heap.pop() else { return Ok(None) };
        let klen = entry.iter().position(|&b| b == 0).expect("separator");
        entry.drain(..=klen);
        self.refill(i)?;
        Ok(Some(entry))
    }
}

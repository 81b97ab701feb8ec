//! A streaming, deterministic writer of bbolt (BoltDB v2) files, the format
//! of Trivy's `trivy.db` (docs/FORMATS.md §6 has the layout, checked against the
//! real library).
//!
//! **What it owns.** The byte layout of the whole file: meta pages 0 and 1,
//! the freelist page 2, and the b+tree pages of every bucket from page 3 on.
//! The caller streams buckets and keys in ascending order through
//! [`BoltWriter::begin_bucket`], [`BoltWriter::put`] and
//! [`BoltWriter::end_bucket`]; [`BoltWriter::finish`] writes the metas.
//!
//! **Why our own writer.** Determinism and exact format control: the same
//! calls give the same bytes, with fixed txids, no clock and no randomness.
//! The transactional crates (`nut`, `bbolt-rs`) choose txids, freelists and
//! page placement themselves, which we cannot pin; `jammdb` is not bbolt
//! compatible. A bulk loader of sorted data is also far simpler than a
//! transactional b+tree.
//!
//! **Invariants of the output.**
//! - Page size [`PAGE_SIZE`]; every page header's `id` equals its index;
//!   the file is exactly high-water-mark × page size bytes.
//! - Both metas are valid and identical except txid (page 0: txid 2,
//!   page 1: txid 1, so `txid % 2` is the page as bbolt itself writes
//!   them); their FNV-1a-64 checksums cover the 56 bytes before them.
//! - The freelist (page 2) is empty: every page below the high-water mark
//!   is reachable exactly once from the root bucket.
//! - Within a bucket, keys and nested-bucket names are non-empty, at most
//!   [`MAX_KEY_SIZE`] bytes and strictly ascending bytewise; violations are
//!   errors, never reordered. The root bucket holds only buckets.
//! - A bucket is inline (root 0, its leaf page inside the parent's value)
//!   iff it has no nested bucket and `16 + Σ(16 + key + value) ≤ 1024`,
//!   bbolt's own rule, so the library would write the same choice. The root
//!   bucket is never inline.
//! - Nodes are filled up to one page, written as they fill, children before
//!   parents, page ids allocated in write order; branch keys are the first
//!   key of the child; every branch has at least two children. A node
//!   bigger than a page takes contiguous overflow pages: a leaf only for a
//!   single element too big for a page, a branch only for keys of kilobytes.
//!
//! **Memory.** Each open bucket holds one would-be-inline leaf (≤ 1 KiB),
//! or one leaf and two branch nodes per tree level (each about a page), so
//! memory is O(depth × levels × page size) whatever the number of keys.
//! Values larger than a page are written straight from the caller's slice.
//!
//! **Deliberately ignored.** Bucket sequences (always 0), fill percent
//! (nodes are packed full, as for a read-mostly file), page sizes other
//! than 4096, and any reading or updating of existing files.

use std::io::{self, BufWriter, Seek, SeekFrom, Write};

/// The page size of every file we write.
pub const PAGE_SIZE: u32 = 4096;
/// bbolt's `MaxKeySize`.
pub const MAX_KEY_SIZE: usize = 32768;
/// bbolt's `MaxValueSize`.
pub const MAX_VALUE_SIZE: usize = (1 << 31) - 2;

const PAGE: usize = PAGE_SIZE as usize;
const HEADER: usize = 16;
const ELEM: usize = 16;
/// Largest inline bucket page (bbolt's `maxInlineBucketSize`).
const INLINE_MAX: usize = PAGE / 4;
/// A bucket value starts with `{root pgid u64, sequence u64}`.
const BUCKET_HEADER: usize = 16;

const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const META_PAGE: u16 = 0x04;
const FREELIST_PAGE: u16 = 0x10;
/// Leaf element flag: the value is a nested bucket.
const BUCKET_LEAF: u32 = 0x01;
const FREELIST_PGID: u64 = 2;
const FIRST_DATA_PGID: u64 = 3;
/// txid of meta page 0 and 1.
const TXIDS: [u64; 2] = [2, 1];

/// Why the writer refused a call or failed. A refused call (key order or
/// size, unbalanced buckets) changes nothing, so the caller may go on;
/// `finish` consumes the writer whatever it returns. After an I/O error
/// every call returns [`BoltError::Failed`].
#[derive(Debug, thiserror::Error)]
pub enum BoltError {
    #[error("bbolt bucket {bucket}: empty key")]
    EmptyKey { bucket: String },
    #[error("bbolt bucket {bucket}: key {key} is {len} bytes, over the {MAX_KEY_SIZE}-byte limit")]
    KeyTooLarge { bucket: String, key: String, len: usize },
    #[error(
        "bbolt bucket {bucket}: value of key {key} is {len} bytes, over the {MAX_VALUE_SIZE}-byte limit"
    )]
    ValueTooLarge { bucket: String, key: String, len: usize },
    #[error("bbolt bucket {bucket}: key {key} out of order after {previous} (keys and bucket names must be strictly ascending bytewise)")]
    OutOfOrder { bucket: String, key: String, previous: String },
    #[error("bbolt bucket {bucket}: duplicate key {key}")]
    DuplicateKey { bucket: String, key: String },
    #[error("bbolt root bucket: key {key} is not a bucket (the root holds only buckets)")]
    ValueInRoot { key: String },
    #[error("bbolt: end_bucket without a matching begin_bucket")]
    EndWithoutBegin,
    #[error("bbolt: finish with bucket {bucket} still open")]
    UnclosedBucket { bucket: String },
    #[error("bbolt write failed: {0}")]
    Io(#[from] io::Error),
    #[error("bbolt writer unusable after an earlier write error")]
    Failed,
}

/// A key for an error message: lossy UTF-8, quoted, cut after 80 chars.
fn show(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(key);
    if text.chars().count() <= 80 {
        return format!("{text:?}");
    }
    let cut: String = text.chars().take(80).collect();
    format!("{cut:?}… ({} bytes)", key.len())
}

/// FNV-1a 64-bit, bbolt's meta checksum.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// One element's header fields; where its key and value sit follows from
/// the sizes of the elements before it.
#[derive(Clone, Copy)]
struct Elem {
    flags: u32,
    ksize: u32,
    vsize: u32,
    pgid: u64,
}

/// Page header plus element table of a node whose keys (and values)
/// follow, concatenated in element order.
fn node_head(id: u64, branch: bool, elems: &[Elem], overflow: u32) -> Vec<u8> {
    let mut head = Vec::with_capacity(HEADER + ELEM * elems.len());
    head.extend_from_slice(&id.to_le_bytes());
    head.extend_from_slice(&(if branch { BRANCH_PAGE } else { LEAF_PAGE }).to_le_bytes());
    head.extend_from_slice(&(elems.len() as u16).to_le_bytes());
    head.extend_from_slice(&overflow.to_le_bytes());
    // pos is relative to the element's own address
    let mut data_at = ELEM * elems.len();
    for (i, e) in elems.iter().enumerate() {
        let pos = (data_at - ELEM * i) as u32;
        if branch {
            head.extend_from_slice(&pos.to_le_bytes());
            head.extend_from_slice(&e.ksize.to_le_bytes());
            head.extend_from_slice(&e.pgid.to_le_bytes());
        } else {
            head.extend_from_slice(&e.flags.to_le_bytes());
            head.extend_from_slice(&pos.to_le_bytes());
            head.extend_from_slice(&e.ksize.to_le_bytes());
            head.extend_from_slice(&e.vsize.to_le_bytes());
        }
        data_at += (e.ksize + e.vsize) as usize;
    }
    head
}

/// A node being filled, laid out as on disk: element headers, and the
/// keys and values they point at.
#[derive(Default)]
struct Node {
    elems: Vec<Elem>,
    data: Vec<u8>,
}

impl Node {
    fn size(&self) -> usize {
        HEADER + ELEM * self.elems.len() + self.data.len()
    }

    fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    fn push_leaf(&mut self, flags: u32, key: &[u8], value: &[u8]) {
        self.elems.push(Elem { flags, ksize: key.len() as u32, vsize: value.len() as u32, pgid: 0 });
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
    }

    fn push_child(&mut self, key: &[u8], pgid: u64) {
        self.elems.push(Elem { flags: 0, ksize: key.len() as u32, vsize: 0, pgid });
        self.data.extend_from_slice(key);
    }

    fn first_key(&self) -> &[u8] {
        &self.data[..self.elems[0].ksize as usize]
    }

    fn clear(&mut self) {
        self.elems.clear();
        self.data.clear();
    }

    /// Removes the last element into a node of its own.
    fn split_off_last(&mut self) -> Node {
        let e = self.elems.pop().expect("non-empty node");
        let data = self.data.split_off(self.data.len() - (e.ksize + e.vsize) as usize);
        Node { elems: vec![e], data }
    }

    fn append(&mut self, other: &Node) {
        self.elems.extend_from_slice(&other.elems);
        self.data.extend_from_slice(&other.data);
    }

    /// The value of a nested bucket holding this leaf inline.
    fn inline_bucket_value(&self) -> Vec<u8> {
        let mut value = vec![0u8; BUCKET_HEADER];
        value.extend_from_slice(&node_head(0, false, &self.elems, 0));
        value.extend_from_slice(&self.data);
        value
    }
}

/// The output: allocates page ids in write order and writes whole pages.
struct Pager<W: Write> {
    out: BufWriter<W>,
    next: u64,
}

impl<W: Write> Pager<W> {
    /// Writes one node (header, elements, then `parts` back to back) on
    /// the next free page(s), padded with zeros; returns its page id.
    fn write_node(&mut self, branch: bool, elems: &[Elem], parts: &[&[u8]]) -> io::Result<u64> {
        let size = HEADER + ELEM * elems.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let pages = size.div_ceil(PAGE).max(1);
        let id = self.next;
        self.out.write_all(&node_head(id, branch, elems, (pages - 1) as u32))?;
        for part in parts {
            self.out.write_all(part)?;
        }
        self.pad(pages * PAGE - size)?;
        self.next += pages as u64;
        Ok(id)
    }

    fn pad(&mut self, mut n: usize) -> io::Result<()> {
        static ZEROS: [u8; PAGE] = [0; PAGE];
        while n > 0 {
            let k = n.min(PAGE);
            self.out.write_all(&ZEROS[..k])?;
            n -= k;
        }
        Ok(())
    }
}

/// One branch level of a paged bucket. `cur` collects `{first key, page
/// id}` of the nodes written one level below; a full node waits in `held`
/// until the next one is started, so that at the end the last node can
/// take a child from it: every branch keeps at least two children (bbolt's
/// `minKeysPerPage`), which also bounds the height when keys are huge.
#[derive(Default)]
struct Level {
    held: Option<Node>,
    cur: Node,
}

/// The pages of one paged bucket written so far: the leaf being filled and
/// one [`Level`] per branch level above the leaves, lowest first.
struct Tree {
    leaf: Node,
    levels: Vec<Level>,
}

impl Tree {
    fn new(leaf: Node) -> Self {
        Tree { leaf, levels: Vec::new() }
    }

    fn put<W: Write>(
        &mut self,
        pager: &mut Pager<W>,
        flags: u32,
        key: &[u8],
        value: &[u8],
    ) -> io::Result<()> {
        let need = ELEM + key.len() + value.len();
        if HEADER + need > PAGE {
            // too big to share a page: alone on overflow pages, straight
            // from the caller's slices
            self.flush_leaf(pager)?;
            let elem = Elem { flags, ksize: key.len() as u32, vsize: value.len() as u32, pgid: 0 };
            let id = pager.write_node(false, &[elem], &[key, value])?;
            return self.add_child(pager, 0, key, id);
        }
        if self.leaf.size() + need > PAGE {
            self.flush_leaf(pager)?;
        }
        self.leaf.push_leaf(flags, key, value);
        Ok(())
    }

    fn flush_leaf<W: Write>(&mut self, pager: &mut Pager<W>) -> io::Result<()> {
        if self.leaf.is_empty() {
            return Ok(());
        }
        let id = pager.write_node(false, &self.leaf.elems, &[&self.leaf.data])?;
        let key = self.leaf.first_key().to_vec();
        self.leaf.clear();
        self.add_child(pager, 0, &key, id)
    }

    /// Writes a finished branch node of `level`, recording it one level up.
    fn write_branch<W: Write>(&mut self, pager: &mut Pager<W>, level: usize, node: &Node) -> io::Result<()> {
        let id = pager.write_node(true, &node.elems, &[&node.data])?;
        self.add_child(pager, level + 1, node.first_key(), id)
    }

    /// Records a written node (first key `key`, page `id`) in branch `level`.
    fn add_child<W: Write>(
        &mut self,
        pager: &mut Pager<W>,
        level: usize,
        key: &[u8],
        id: u64,
    ) -> io::Result<()> {
        if self.levels.len() == level {
            self.levels.push(Level::default());
        }
        let cur = &self.levels[level].cur;
        if cur.elems.len() >= 2 && cur.size() + ELEM + key.len() > PAGE {
            let mut fresh = Node::default();
            if let Some(mut older) = self.levels[level].held.take() {
                self.write_branch(pager, level, &older)?;
                older.clear();
                fresh = older;
            }
            let lvl = &mut self.levels[level];
            lvl.held = Some(std::mem::replace(&mut lvl.cur, fresh));
        }
        self.levels[level].cur.push_child(key, id);
        Ok(())
    }

    /// Writes what is left, lowest level first; returns the root page id.
    fn finish<W: Write>(mut self, pager: &mut Pager<W>) -> io::Result<u64> {
        if self.levels.is_empty() {
            // one leaf (empty only for the root bucket of an empty file)
            return pager.write_node(false, &self.leaf.elems, &[&self.leaf.data]);
        }
        self.flush_leaf(pager)?;
        let mut level = 0;
        loop {
            let Level { held, mut cur } = std::mem::take(&mut self.levels[level]);
            let top = level + 1 == self.levels.len();
            match held {
                // the whole level is one node: the root (a lone child, an
                // overflow leaf, is the root itself)
                None if top && cur.elems.len() == 1 => return Ok(cur.elems[0].pgid),
                None if top => return pager.write_node(true, &cur.elems, &[&cur.data]),
                None => self.write_branch(pager, level, &cur)?,
                Some(mut held) => {
                    if cur.elems.len() < 2 {
                        if held.elems.len() >= 3 {
                            let mut moved = held.split_off_last();
                            moved.append(&cur);
                            cur = moved;
                        } else {
                            held.append(&cur);
                            cur.clear();
                        }
                    }
                    self.write_branch(pager, level, &held)?;
                    if !cur.is_empty() {
                        self.write_branch(pager, level, &cur)?;
                    }
                }
            }
            level += 1;
        }
    }
}

/// A bucket's contents so far.
enum Body {
    /// Still small enough to be stored inline in its parent.
    Inline(Node),
    /// Too big, or has nested buckets: pages of its own.
    Paged(Tree),
}

/// One open bucket on the stack (`stack[0]` is the root bucket).
struct Open {
    name: Vec<u8>,
    /// The last key or bucket name added; empty before the first (keys are
    /// never empty).
    last: Vec<u8>,
    body: Body,
}

/// Streams a bbolt file: see the module doc for the contract.
pub struct BoltWriter<W: Write + Seek> {
    pager: Pager<W>,
    stack: Vec<Open>,
    /// Where the file starts in the sink.
    base: u64,
    failed: bool,
}

impl<W: Write + Seek> BoltWriter<W> {
    /// Starts a file at the sink's current position (page size 4096);
    /// pages 0-2 are reserved and written by [`BoltWriter::finish`].
    pub fn new(mut out: W) -> Result<Self, BoltError> {
        let base = out.stream_position()?;
        let mut pager = Pager { out: BufWriter::with_capacity(16 * PAGE, out), next: FIRST_DATA_PGID };
        pager.pad(FIRST_DATA_PGID as usize * PAGE)?;
        let root = Open { name: Vec::new(), last: Vec::new(), body: Body::Paged(Tree::new(Node::default())) };
        Ok(BoltWriter { pager, stack: vec![root], base, failed: false })
    }

    /// Open a nested bucket `name` in the current bucket (the root bucket at first).
    pub fn begin_bucket(&mut self, name: &[u8]) -> Result<(), BoltError> {
        self.check_key(name)?;
        let top = self.stack.last_mut().expect("root bucket");
        if let Body::Inline(leaf) = &mut top.body {
            // a bucket with a nested bucket is never inline
            top.body = Body::Paged(Tree::new(std::mem::take(leaf)));
        }
        top.last = name.to_vec();
        self.stack.push(Open { name: name.to_vec(), last: Vec::new(), body: Body::Inline(Node::default()) });
        Ok(())
    }

    /// Closes the current bucket and stores it in its parent.
    pub fn end_bucket(&mut self) -> Result<(), BoltError> {
        if self.failed {
            return Err(BoltError::Failed);
        }
        if self.stack.len() < 2 {
            return Err(BoltError::EndWithoutBegin);
        }
        let child = self.stack.pop().expect("checked");
        let value = match child.body {
            Body::Inline(leaf) => leaf.inline_bucket_value(),
            Body::Paged(tree) => {
                let root = self.io(|pager| tree.finish(pager))?;
                let mut value = root.to_le_bytes().to_vec();
                value.extend_from_slice(&0u64.to_le_bytes());
                value
            }
        };
        self.add(BUCKET_LEAF, &child.name, &value)
    }

    /// A key/value in the current bucket.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), BoltError> {
        self.check_key(key)?;
        if self.stack.len() == 1 {
            return Err(BoltError::ValueInRoot { key: show(key) });
        }
        if value.len() > MAX_VALUE_SIZE {
            return Err(BoltError::ValueTooLarge { bucket: self.path(), key: show(key), len: value.len() });
        }
        self.stack.last_mut().expect("root bucket").last = key.to_vec();
        self.add(0, key, value)
    }

    /// Write the meta pages and the freelist; returns the sink.
    pub fn finish(mut self) -> Result<W, BoltError> {
        if self.failed {
            return Err(BoltError::Failed);
        }
        if self.stack.len() > 1 {
            return Err(BoltError::UnclosedBucket { bucket: self.path() });
        }
        let Some(Open { body: Body::Paged(tree), .. }) = self.stack.pop() else {
            unreachable!("the root bucket is always paged")
        };
        let root = tree.finish(&mut self.pager)?;
        let hwm = self.pager.next;
        let mut out = self.pager.out.into_inner().map_err(|e| e.into_error())?;
        out.seek(SeekFrom::Start(self.base))?;
        for (id, txid) in TXIDS.iter().enumerate() {
            out.write_all(&meta_page(id as u64, root, hwm, *txid))?;
        }
        out.write_all(&freelist_page())?;
        out.seek(SeekFrom::Start(self.base + hwm * PAGE as u64))?;
        out.flush()?;
        Ok(out)
    }

    /// Checks `key` against the current bucket: non-empty, not too long,
    /// strictly after the previous key.
    fn check_key(&self, key: &[u8]) -> Result<(), BoltError> {
        if self.failed {
            return Err(BoltError::Failed);
        }
        let bucket = || self.path();
        if key.is_empty() {
            return Err(BoltError::EmptyKey { bucket: bucket() });
        }
        if key.len() > MAX_KEY_SIZE {
            return Err(BoltError::KeyTooLarge { bucket: bucket(), key: show(key), len: key.len() });
        }
        let last = &self.stack.last().expect("root bucket").last;
        match last.as_slice().cmp(key) {
            std::cmp::Ordering::Less => Ok(()),
            std::cmp::Ordering::Equal => Err(BoltError::DuplicateKey { bucket: bucket(), key: show(key) }),
            std::cmp::Ordering::Greater => {
                Err(BoltError::OutOfOrder { bucket: bucket(), key: show(key), previous: show(last) })
            }
        }
    }

    /// Adds an element to the current bucket, moving it to pages of its own
    /// once it can no longer be inline.
    fn add(&mut self, flags: u32, key: &[u8], value: &[u8]) -> Result<(), BoltError> {
        let top = self.stack.last_mut().expect("root bucket");
        if let Body::Inline(leaf) = &mut top.body {
            if flags & BUCKET_LEAF == 0 && leaf.size() + ELEM + key.len() + value.len() <= INLINE_MAX {
                leaf.push_leaf(flags, key, value);
                return Ok(());
            }
            top.body = Body::Paged(Tree::new(std::mem::take(leaf)));
        }
        let Body::Paged(tree) = &mut top.body else { unreachable!("just made paged") };
        let result = tree.put(&mut self.pager, flags, key, value);
        self.failed |= result.is_err();
        Ok(result?)
    }

    /// Runs a page-writing step, marking the writer failed if it fails.
    fn io<T>(&mut self, step: impl FnOnce(&mut Pager<W>) -> io::Result<T>) -> Result<T, BoltError> {
        let result = step(&mut self.pager);
        self.failed |= result.is_err();
        Ok(result?)
    }

    /// The current bucket's path for messages: names joined by `/`.
    fn path(&self) -> String {
        if self.stack.len() == 1 {
            return "(root)".to_string();
        }
        let names: Vec<_> = self.stack[1..].iter().map(|b| String::from_utf8_lossy(&b.name)).collect();
        format!("{:?}", names.join("/"))
    }

    /// Bytes held in node buffers (tests check that memory does not grow).
    #[cfg(test)]
    fn buffered_bytes(&self) -> usize {
        let node = |n: &Node| n.data.capacity() + n.elems.capacity() * std::mem::size_of::<Elem>();
        self.stack
            .iter()
            .map(|b| match &b.body {
                Body::Inline(leaf) => node(leaf),
                Body::Paged(tree) => {
                    node(&tree.leaf)
                        + tree
                            .levels
                            .iter()
                            .map(|l| node(&l.cur) + l.held.as_ref().map_or(0, node))
                            .sum::<usize>()
                }
            })
            .sum()
    }
}

fn meta_page(id: u64, root: u64, hwm: u64, txid: u64) -> Vec<u8> {
    let mut page = Vec::with_capacity(PAGE);
    page.extend_from_slice(&id.to_le_bytes());
    page.extend_from_slice(&META_PAGE.to_le_bytes());
    page.extend_from_slice(&[0; 6]); // count, overflow
    let body = page.len();
    page.extend_from_slice(&MAGIC.to_le_bytes());
    page.extend_from_slice(&VERSION.to_le_bytes());
    page.extend_from_slice(&PAGE_SIZE.to_le_bytes());
    page.extend_from_slice(&0u32.to_le_bytes()); // flags
    page.extend_from_slice(&root.to_le_bytes());
    page.extend_from_slice(&0u64.to_le_bytes()); // root sequence
    page.extend_from_slice(&FREELIST_PGID.to_le_bytes());
    page.extend_from_slice(&hwm.to_le_bytes());
    page.extend_from_slice(&txid.to_le_bytes());
    let checksum = fnv1a64(&page[body..]);
    page.extend_from_slice(&checksum.to_le_bytes());
    page.resize(PAGE, 0);
    page
}

fn freelist_page() -> Vec<u8> {
    let mut page = vec![0u8; PAGE];
    page[..8].copy_from_slice(&FREELIST_PGID.to_le_bytes());
    page[8..10].copy_from_slice(&FREELIST_PAGE.to_le_bytes());
    page
}

#[cfg(test)]
mod tests {
    //! A small bbolt reader of our own, stricter than bbolt's `tx.Check`
    //! about our invariants, and the writer's tests against it.

    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::io::Cursor;

    /// A bucket's contents, as written and as read back.
    #[derive(Debug, Clone, PartialEq)]
    enum Item {
        Value(Vec<u8>),
        Bucket(Model),
    }
    type Model = BTreeMap<Vec<u8>, Item>;

    fn write_model<W: Write + Seek>(w: &mut BoltWriter<W>, model: &Model) {
        for (key, item) in model {
            match item {
                Item::Value(v) => w.put(key, v).unwrap(),
                Item::Bucket(m) => {
                    w.begin_bucket(key).unwrap();
                    write_model(w, m);
                    w.end_bucket().unwrap();
                }
            }
        }
    }

    fn build(model: &Model) -> Vec<u8> {
        let mut w = BoltWriter::new(Cursor::new(Vec::new())).unwrap();
        write_model(&mut w, model);
        w.finish().unwrap().into_inner()
    }

    fn bucket(entries: Vec<(&[u8], Item)>) -> Item {
        Item::Bucket(entries.into_iter().map(|(k, v)| (k.to_vec(), v)).collect())
    }

    fn value(v: impl Into<Vec<u8>>) -> Item {
        Item::Value(v.into())
    }

    #[derive(Debug, Default)]
    struct Stats {
        /// Nested buckets stored inline / on pages of their own.
        inline: usize,
        paged: usize,
        /// The tallest b+tree of any bucket (1 = a lone leaf).
        height: usize,
        leaf_pages: usize,
        branch_pages: usize,
        overflow_pages: usize,
        hwm: u64,
    }

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// A leaf element as read: flags, key, value.
    type Entry<'a> = (u32, &'a [u8], &'a [u8]);

    struct Reader<'a> {
        file: &'a [u8],
        seen: Vec<bool>,
        stats: Stats,
    }

    /// Reads and checks a whole file: metas, freelist, every bucket, and
    /// that every page below the high-water mark is reached exactly once.
    fn read(file: &[u8]) -> Result<(Model, Stats), String> {
        if !file.len().is_multiple_of(PAGE) || file.len() < 4 * PAGE {
            return Err(format!("file size {} is not a multiple of the page size", file.len()));
        }
        let metas = [read_meta(file, 0)?, read_meta(file, 1)?];
        let [(root, hwm, txid0), (root1, hwm1, txid1)] = metas;
        if (root, hwm) != (root1, hwm1) || txid0 % 2 != 0 || txid1 % 2 != 1 {
            return Err(format!("metas differ: {metas:?}"));
        }
        if hwm as usize * PAGE != file.len() {
            return Err(format!("hwm {hwm} but file has {} pages", file.len() / PAGE));
        }
        let free = &file[2 * PAGE..];
        if u64_at(free, 0) != 2
            || u16_at(free, 8) != FREELIST_PAGE
            || u16_at(free, 10) != 0
            || u32_at(free, 12) != 0
        {
            return Err("page 2 is not an empty freelist".into());
        }
        let mut r =
            Reader { file, seen: vec![false; hwm as usize], stats: Stats { hwm, ..Stats::default() } };
        r.seen[..3].fill(true);
        let mut entries = Vec::new();
        r.tree(root, &mut entries)?;
        if entries.iter().any(|(flags, _, _)| flags & BUCKET_LEAF == 0) {
            return Err("root bucket holds a plain key".into());
        }
        let model = r.model(&entries)?;
        if let Some(i) = r.seen.iter().position(|s| !s) {
            return Err(format!("page {i} unreachable"));
        }
        Ok((model, r.stats))
    }

    /// Checks meta page `id`; returns (root, hwm, txid).
    fn read_meta(file: &[u8], id: usize) -> Result<(u64, u64, u64), String> {
        let p = &file[id * PAGE..(id + 1) * PAGE];
        let m = &p[HEADER..];
        let fields = (u64_at(p, 0), u16_at(p, 8), u32_at(m, 0), u32_at(m, 4), u32_at(m, 8), u32_at(m, 12));
        if fields != (id as u64, META_PAGE, MAGIC, VERSION, PAGE_SIZE, 0) {
            return Err(format!("meta {id}: bad header {fields:x?}"));
        }
        if u64_at(m, 56) != fnv1a64(&m[..56]) {
            return Err(format!("meta {id}: bad checksum"));
        }
        if u64_at(m, 24) != 0 || u64_at(m, 32) != FREELIST_PGID {
            return Err(format!("meta {id}: bad root sequence or freelist"));
        }
        Ok((u64_at(m, 16), u64_at(m, 40), u64_at(m, 48)))
    }

    /// Checks a node's element table (branch or leaf) in `node` (header at
    /// 0): positions pack keys and values back to back after the table.
    /// Returns (flags or 0, key, value or pgid bytes) and the node's size.
    fn elements(node: &[u8], branch: bool) -> Result<(Vec<Entry<'_>>, usize), String> {
        let count = u16_at(node, 10) as usize;
        let mut at = HEADER + ELEM * count;
        let mut out = Vec::new();
        for i in 0..count {
            let e = HEADER + ELEM * i;
            let (flags, pos, ksize, vsize) = if branch {
                (0, u32_at(node, e), u32_at(node, e + 4), 0)
            } else {
                (u32_at(node, e), u32_at(node, e + 4), u32_at(node, e + 8), u32_at(node, e + 12))
            };
            if e + pos as usize != at {
                return Err(format!("element {i}: pos {pos} does not pack the data"));
            }
            let end = at + (ksize + vsize) as usize;
            let data = node.get(at..end).ok_or(format!("element {i} past the node"))?;
            let (key, val) = data.split_at(ksize as usize);
            let val = if branch { &node[e + 8..e + 16] } else { val };
            if out.last().is_some_and(|(_, prev, _): &Entry| *prev >= key) || key.is_empty() {
                return Err(format!("element {i}: key {} not ascending or empty", show(key)));
            }
            out.push((flags, key, val));
            at = end;
        }
        Ok((out, at))
    }

    impl<'a> Reader<'a> {
        /// Appends the leaf entries of the subtree at page `id`; returns
        /// its height.
        fn tree(&mut self, id: u64, out: &mut Vec<Entry<'a>>) -> Result<usize, String> {
            let file = self.file;
            let start = id as usize * PAGE;
            let head = file.get(start..start + HEADER).ok_or(format!("page {id} past the end"))?;
            let (flags, overflow) = (u16_at(head, 8), u32_at(head, 12) as usize);
            if u64_at(head, 0) != id {
                return Err(format!("page {id}: header says id {}", u64_at(head, 0)));
            }
            for p in id as usize..=id as usize + overflow {
                match self.seen.get_mut(p) {
                    Some(s) if !*s => *s = true,
                    _ => return Err(format!("page {p} reached twice or past the hwm")),
                }
            }
            let node = &file[start..start + (overflow + 1) * PAGE];
            let branch = match flags {
                BRANCH_PAGE => true,
                LEAF_PAGE => false,
                _ => return Err(format!("page {id}: flags {flags:#x}")),
            };
            let (elems, size) = elements(node, branch)?;
            if size.div_ceil(PAGE).max(1) != overflow + 1 || (overflow > 0 && !branch && elems.len() != 1) {
                return Err(format!(
                    "page {id}: {size} bytes in {} pages, {} elements",
                    overflow + 1,
                    elems.len()
                ));
            }
            self.stats.overflow_pages += overflow;
            if !branch {
                self.stats.leaf_pages += 1;
                if let (Some(first), Some(last)) = (elems.first(), out.last()) {
                    if last.1 >= first.1 {
                        return Err(format!(
                            "page {id}: first key {} not after the page before",
                            show(first.1)
                        ));
                    }
                }
                out.extend(elems);
                return Ok(1);
            }
            self.stats.branch_pages += 1;
            if elems.len() < 2 {
                return Err(format!("branch page {id} has {} children", elems.len()));
            }
            let mut height = None;
            for (_, key, pgid) in elems {
                let before = out.len();
                let h = self.tree(u64_at(pgid, 0), out)?;
                if out.get(before).map(|e| e.1) != Some(key) {
                    return Err(format!("page {id}: branch key {} is not the child's first key", show(key)));
                }
                if *height.get_or_insert(h) != h {
                    return Err(format!("page {id}: unbalanced children"));
                }
            }
            Ok(height.unwrap() + 1)
        }

        /// Reads bucket entries into a model, opening nested buckets.
        fn model(&mut self, entries: &[Entry<'a>]) -> Result<Model, String> {
            let mut model = Model::new();
            for &(flags, key, val) in entries {
                let item = match flags {
                    0 => Item::Value(val.to_vec()),
                    BUCKET_LEAF => Item::Bucket(self.bucket(val).map_err(|e| format!("{}: {e}", show(key)))?),
                    _ => return Err(format!("key {}: flags {flags:#x}", show(key))),
                };
                model.insert(key.to_vec(), item);
            }
            Ok(model)
        }

        /// Opens a nested bucket value; checks bbolt's inline rule.
        fn bucket(&mut self, value: &'a [u8]) -> Result<Model, String> {
            let (root, seq) = (u64_at(value, 0), u64_at(value, 8));
            if seq != 0 {
                return Err("bucket sequence".into());
            }
            let mut entries = Vec::new();
            if root == 0 {
                let page = &value[BUCKET_HEADER..];
                if u64_at(page, 0) != 0 || u16_at(page, 8) != LEAF_PAGE || u32_at(page, 12) != 0 {
                    return Err("inline page header".into());
                }
                let (elems, size) = elements(page, false)?;
                if size != page.len() || size > INLINE_MAX || elems.iter().any(|e| e.0 != 0) {
                    return Err(format!("inline bucket of {size} bytes breaks the inline rule"));
                }
                self.stats.inline += 1;
                entries = elems;
            } else {
                if value.len() != BUCKET_HEADER {
                    return Err("paged bucket value is not 16 bytes".into());
                }
                let height = self.tree(root, &mut entries)?;
                self.stats.height = self.stats.height.max(height);
                let size: usize =
                    HEADER + entries.iter().map(|e| ELEM + e.1.len() + e.2.len()).sum::<usize>();
                if height == 1 && size <= INLINE_MAX && entries.iter().all(|e| e.0 == 0) {
                    return Err(format!("bucket of {size} bytes without nested buckets should be inline"));
                }
                self.stats.paged += 1;
            }
            self.model(&entries)
        }
    }

    fn read_ok(file: &[u8]) -> (Model, Stats) {
        read(file).unwrap_or_else(|e| panic!("bad bbolt file: {e}"))
    }

    #[test]
    fn fnv1a64_known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn empty_database_has_metas_freelist_and_empty_root_leaf() {
        let file = build(&Model::new());
        assert_eq!(file.len(), 4 * PAGE);
        let (model, stats) = read_ok(&file);
        assert!(model.is_empty());
        assert_eq!((stats.leaf_pages, stats.hwm), (1, 4));
        // root leaf at page 3, no elements
        assert_eq!(&file[3 * PAGE..3 * PAGE + 16], &[3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn both_metas_valid_and_checksummed() {
        let model = Model::from([(b"b".to_vec(), bucket(vec![(b"k", value("v"))]))]);
        let mut file = build(&model);
        let (r0, h0, t0) = read_meta(&file, 0).unwrap();
        let (r1, h1, t1) = read_meta(&file, 1).unwrap();
        assert_eq!((r0, h0, t0, r1, h1, t1), (3, 4, 2, 3, 4, 1));
        // any flipped byte before the checksum is caught
        file[PAGE + HEADER + 20] ^= 1;
        assert!(read_meta(&file, 1).unwrap_err().contains("checksum"));
    }

    #[test]
    fn inline_exactly_at_the_threshold_paged_one_byte_over() {
        // 16 + (16 + 1 + 991) = 1024 = pageSize / 4
        let model = Model::from([
            (b"at".to_vec(), bucket(vec![(b"k", value(vec![7; 991]))])),
            (b"over".to_vec(), bucket(vec![(b"k", value(vec![7; 992]))])),
            (b"parent".to_vec(), bucket(vec![(b"child", bucket(vec![]))])),
        ]);
        let file = build(&model);
        let (read_back, stats) = read_ok(&file);
        assert_eq!(read_back, model);
        // inline: "at" and the empty "child"; paged: "over" and "parent"
        // (a nested bucket forces its parent onto pages)
        assert_eq!((stats.inline, stats.paged), (2, 2));
    }

    #[test]
    fn empty_bucket_is_inline_with_no_elements() {
        let model = Model::from([(b"empty".to_vec(), bucket(vec![]))]);
        let file = build(&model);
        let root = &file[3 * PAGE..4 * PAGE];
        assert_eq!((u16_at(root, 8), u16_at(root, 10)), (LEAF_PAGE, 1));
        let (flags, pos, ksize, vsize) =
            (u32_at(root, 16), u32_at(root, 20), u32_at(root, 24), u32_at(root, 28));
        assert_eq!((flags, pos, ksize, vsize), (BUCKET_LEAF, 16, 5, 32));
        let at = 16 + pos as usize;
        assert_eq!(&root[at..at + 5], b"empty");
        let mut expected = [0u8; 32];
        expected[24] = LEAF_PAGE as u8;
        assert_eq!(&root[at + 5..at + 37], &expected);
        assert_eq!(read_ok(&file).0, model);
    }

    #[test]
    fn values_larger_than_a_page_use_overflow_pages() {
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        // 16 + 16 + 1 + 4063 = 4096: exactly one page, no overflow
        let exact = vec![1u8; 4063];
        let model = Model::from([(
            b"b".to_vec(),
            bucket(vec![
                (b"a", value("small")),
                (b"b", value(big)),
                (b"c", value(exact)),
                (b"d", value("x")),
            ]),
        )]);
        let file = build(&model);
        let (read_back, stats) = read_ok(&file);
        assert_eq!(read_back, model);
        // 16 + 16 + 1 + 10000 = 10033 bytes: 3 pages, overflow 2
        assert_eq!(stats.overflow_pages, 2);
        assert_eq!(stats.height, 2);
    }

    #[test]
    fn a_lone_huge_value_is_the_root_and_huge_keys_overflow_branches() {
        let lone = Model::from([(b"b".to_vec(), bucket(vec![(b"k", value(vec![9u8; 50_000]))]))]);
        let (read_back, stats) = read_ok(&build(&lone));
        assert_eq!(read_back, lone);
        assert_eq!((stats.height, stats.overflow_pages), (1, 12));

        // a max-size key starts its own leaf, so a branch holds it too
        let mut m = Model::new();
        for i in 0..300u32 {
            m.insert(format!("k{i:04}").into_bytes(), value(vec![1; 40]));
        }
        let mut huge = b"k0150".to_vec();
        huge.resize(MAX_KEY_SIZE, b'z');
        m.insert(huge, value("v"));
        let model = Model::from([(b"b".to_vec(), Item::Bucket(m))]);
        let (read_back, stats) = read_ok(&build(&model));
        assert_eq!(read_back, model);
        assert!(stats.overflow_pages >= 2 * 8, "leaf and branch overflow: {stats:?}");
    }

    #[test]
    fn every_tail_of_a_branch_level_keeps_two_children() {
        // one element per leaf; 1000-byte keys fit 4 branch entries a page
        // (a tail borrows from the held node), 2000- and 3000-byte keys 2
        // (a tail merges into it, overflowing)
        for (ksize, vsize) in [(1000, 2100), (2000, 10), (3000, 10)] {
            for n in 1..=70u32 {
                let keys = (0..n).map(|i| {
                    let mut k = format!("{i:05}").into_bytes();
                    k.resize(ksize, b'.');
                    (k, value(vec![3; vsize]))
                });
                let model = Model::from([(b"b".to_vec(), Item::Bucket(keys.collect()))]);
                let (read_back, _) =
                    read(&build(&model)).unwrap_or_else(|e| panic!("{ksize}-byte keys, {n} leaves: {e}"));
                assert_eq!(read_back, model);
            }
        }
    }

    #[test]
    fn nested_buckets_three_deep() {
        let model = Model::from([(
            b"pip::x".to_vec(),
            bucket(vec![
                (b"a", bucket(vec![(b"deep", bucket(vec![(b"k", value("v"))])), (b"z", value("1"))])),
                (b"b", bucket(vec![(b"x", value("2"))])),
            ]),
        )]);
        let (read_back, stats) = read_ok(&build(&model));
        assert_eq!(read_back, model);
        // "deep" and "b" inline; "pip::x" and "a" hold buckets, so paged
        assert_eq!((stats.inline, stats.paged), (2, 2));
    }

    #[test]
    fn a_hundred_thousand_keys_make_a_multi_level_tree_in_bounded_memory() {
        let mut w = BoltWriter::new(Cursor::new(Vec::new())).unwrap();
        w.begin_bucket(b"vulnerability").unwrap();
        let mut most = 0;
        for i in 0..100_000u32 {
            w.put(
                format!("CVE-{:04}-{:06}", 1999 + i / 4000, i).as_bytes(),
                format!("{{\"n\":{i}}}").as_bytes(),
            )
            .unwrap();
            most = most.max(w.buffered_bytes());
        }
        w.end_bucket().unwrap();
        let file = w.finish().unwrap().into_inner();
        assert!(most < 16 * PAGE, "{most} bytes buffered");
        let (model, stats) = read_ok(&file);
        let Some(Item::Bucket(vulns)) = model.get(b"vulnerability".as_slice()) else { panic!("no bucket") };
        assert_eq!(vulns.len(), 100_000);
        assert!(stats.height >= 3, "{stats:?}");
        assert_eq!(vulns.get(b"CVE-2001-008002".as_slice()), Some(&value("{\"n\":8002}")));
    }

    #[test]
    fn keys_out_of_order_duplicate_empty_or_too_long_are_refused() {
        let mut w = BoltWriter::new(Cursor::new(Vec::new())).unwrap();
        w.begin_bucket(b"pip::x").unwrap();
        w.begin_bucket(b"requests").unwrap();
        w.put(b"b", b"1").unwrap();
        let e = w.put(b"a", b"2").unwrap_err();
        assert!(matches!(e, BoltError::OutOfOrder { .. }), "{e}");
        assert!(e.to_string().contains(r#""pip::x/requests""#) && e.to_string().contains(r#""a""#), "{e}");
        assert!(matches!(w.put(b"b", b"2"), Err(BoltError::DuplicateKey { .. })));
        assert!(matches!(w.begin_bucket(b"b"), Err(BoltError::DuplicateKey { .. })));
        assert!(matches!(w.put(b"", b"2"), Err(BoltError::EmptyKey { .. })));
        let long = vec![b'c'; MAX_KEY_SIZE + 1];
        let e = w.put(&long, b"2").unwrap_err();
        assert!(e.to_string().contains("32769 bytes"), "{e}");
        // refused calls change nothing: the writer goes on
        w.put(b"c", b"3").unwrap();
        w.end_bucket().unwrap();
        let e = w.begin_bucket(b"pip::a").unwrap_err();
        assert!(
            e.to_string().contains(r#"bucket "pip::x": key "pip::a" out of order after "requests""#),
            "{e}"
        );
        w.end_bucket().unwrap();
        assert!(matches!(w.put(b"zz", b"v"), Err(BoltError::ValueInRoot { .. })));
        let (model, _) = read_ok(&w.finish().unwrap().into_inner());
        let requests = bucket(vec![(b"b", value("1")), (b"c", value("3"))]);
        assert_eq!(model, Model::from([(b"pip::x".to_vec(), bucket(vec![(b"requests", requests)]))]));
    }

    #[test]
    fn unbalanced_end_or_finish_is_refused() {
        let mut w = BoltWriter::new(Cursor::new(Vec::new())).unwrap();
        assert!(matches!(w.end_bucket(), Err(BoltError::EndWithoutBegin)));
        w.begin_bucket(b"a").unwrap();
        w.begin_bucket(b"b").unwrap();
        w.end_bucket().unwrap();
        let e = w.finish().map(|_| ()).unwrap_err();
        assert_eq!(e.to_string(), r#"bbolt: finish with bucket "a" still open"#);
    }

    /// A sink that fails once `limit` bytes were written.
    struct Failing(Cursor<Vec<u8>>, usize);
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0.get_ref().len() + buf.len() > self.1 {
                return Err(io::Error::other("disk full"));
            }
            self.0.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Seek for Failing {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.0.seek(pos)
        }
    }

    #[test]
    fn a_write_error_is_reported_and_poisons_the_writer() {
        let mut w = BoltWriter::new(Failing(Cursor::new(Vec::new()), 40 * PAGE)).unwrap();
        w.begin_bucket(b"b").unwrap();
        let mut error = None;
        for i in 0..10_000u32 {
            if let Err(e) = w.put(format!("{i:08}").as_bytes(), &[0; 100]) {
                error = Some(e);
                break;
            }
        }
        assert!(matches!(error, Some(BoltError::Io(_))), "{error:?}");
        assert!(matches!(w.put(b"zzzzzzzzz", b""), Err(BoltError::Failed)));
        assert!(matches!(w.finish(), Err(BoltError::Failed)));
    }

    fn trivy_like() -> Model {
        let mut vulns = Model::new();
        for i in 0..2000u32 {
            let size = if i % 97 == 0 { 9000 } else { 200 };
            vulns.insert(format!("CVE-2024-{i:05}").into_bytes(), value(vec![b'x'; size]));
        }
        let mut pip = Model::new();
        for p in 0..500u32 {
            let n = if p % 50 == 0 { 60 } else { 1 + p % 3 };
            let advisories = (0..n).map(|i| (format!("GHSA-{i:04}").into_bytes(), value(vec![b'a'; 120])));
            pip.insert(format!("pkg-{p:04}").into_bytes(), Item::Bucket(advisories.collect()));
        }
        Model::from([
            (b"data-source".to_vec(), bucket(vec![(b"pip::x", value(r#"{"ID":"x"}"#))])),
            (b"pip::x".to_vec(), Item::Bucket(pip)),
            (b"vulnerability".to_vec(), Item::Bucket(vulns)),
        ])
    }

    #[test]
    fn same_calls_give_the_same_bytes() {
        let model = trivy_like();
        let a = build(&model);
        assert_eq!(a, build(&model));
        let (read_back, stats) = read_ok(&a);
        assert_eq!(read_back, model);
        // paged: "pip::x" and "vulnerability" and the 10 packages with 60
        // advisories; inline: "data-source" and the other 490 packages
        assert_eq!((stats.paged, stats.inline), (2 + 10, 1 + 490), "{stats:?}");
    }

    #[test]
    fn the_file_starts_at_the_sinks_position() {
        let mut sink = Cursor::new(b"prefix".to_vec());
        sink.seek(SeekFrom::End(0)).unwrap();
        let model = trivy_like();
        let file = BoltWriter::new(sink)
            .map(|mut w| {
                write_model(&mut w, &model);
                w
            })
            .unwrap()
            .finish()
            .unwrap()
            .into_inner();
        assert_eq!(&file[..6], b"prefix");
        assert_eq!(file[6..], build(&model));
    }

    fn model_strategy() -> impl Strategy<Value = Model> {
        let key = prop::collection::vec(prop::sample::select(vec![0u8, b'a', b'b', b'c', 0xff]), 1..6);
        let bytes = prop_oneof![
            8 => prop::collection::vec(any::<u8>(), 0..64),
            3 => prop::collection::vec(any::<u8>(), 64..1500),
            1 => prop::collection::vec(any::<u8>(), 4000..9000),
        ];
        let inner = bytes.prop_map(Item::Value).prop_recursive(3, 300, 40, move |inner| {
            prop::collection::btree_map(
                prop::collection::vec(prop::sample::select(vec![0u8, b'a', b'b', b'c', 0xff]), 1..6),
                inner,
                0..40,
            )
            .prop_map(Item::Bucket)
        });
        let top = inner.prop_map(|item| match item {
            Item::Value(v) => Item::Bucket(Model::from([(b"v".to_vec(), Item::Value(v))])),
            bucket => bucket,
        });
        prop::collection::btree_map(key, top, 0..5)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn random_sorted_trees_read_back_equal(model in model_strategy()) {
            let file = build(&model);
            let (read_back, _) = read(&file).map_err(TestCaseError::fail)?;
            prop_assert_eq!(read_back, model);
        }
    }
}

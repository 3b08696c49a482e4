//! The in-process default store.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use async_trait::async_trait;
use hashbrown::HashTable;
use time::OffsetDateTime;

use super::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record, Store, StoreError};

/// An in-memory [`Store`]: the default, for one process, tests and examples.
///
/// Versions come from one counter for the whole store, so a key deleted and written again never
/// gets a version it had before. Nothing survives the process.
///
/// Operations are O(1) in the number of records except `list`, which is O(records with that
/// index). Lookups do not allocate. Expired records are dropped when touched and by a sweep
/// every max(4096, records) writes (O(1) per write, amortised), so the map does not grow without
/// bound under a stream of abandoned logins.
///
/// Memory: a record is one allocation (its key, index and value, with its version) plus a
/// 24-byte slot in the key table and, when it has an index, a share of a 24-byte slot in the
/// index table, which keeps 64-bit hashes of the keys rather than copies of them. The bench
/// `memory` measures a pending login (see the README's bench table).
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

/// A point in time as the store compares it: Unix seconds and nanoseconds. No expiry is
/// `i64::MAX` seconds, later than any [`OffsetDateTime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    secs: i64,
    nanos: u32,
}

impl Stamp {
    const NEVER: Self = Self {
        secs: i64::MAX,
        nanos: 0,
    };

    fn of(t: OffsetDateTime) -> Self {
        Self {
            secs: t.unix_timestamp(),
            nanos: t.nanosecond(),
        }
    }

    fn time(self) -> Option<OffsetDateTime> {
        if self == Self::NEVER {
            return None;
        }
        let nanos = i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos);
        OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
    }
}

/// The header of a row's bytes: version (8), expiry nanoseconds (4), key length (4), index
/// length (4, `u32::MAX` for none); then the key, the index and the value.
const HEADER: usize = 20;
const NO_INDEX: u32 = u32::MAX;

/// A record as kept: one allocation holding its version, key, index and value, and beside it
/// in the table the seconds of its expiry, so that a sweep reads the table alone for the
/// records it keeps.
struct Row {
    bytes: Box<[u8]>,
    expires_secs: i64,
}

impl std::fmt::Debug for Row {
    // The value may hold encrypted tokens or hashes of secrets: only sizes are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row")
            .field("bytes", &format_args!("[{} bytes]", self.bytes.len()))
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

fn too_large() -> StoreError {
    StoreError::unavailable("record too large for MemoryStore (4 GiB)")
}

impl Row {
    fn new(key: &str, record: NewRecord, version: u64) -> Result<Self, StoreError> {
        let index = record.index.as_deref();
        let key_len = u32::try_from(key.len()).map_err(|_| too_large())?;
        let index_len = match index {
            None => NO_INDEX,
            Some(ix) => u32::try_from(ix.len())
                .ok()
                .filter(|&n| n != NO_INDEX)
                .ok_or_else(too_large)?,
        };
        let expires = record.expires_at.map_or(Stamp::NEVER, Stamp::of);
        let len = HEADER + key.len() + index.map_or(0, str::len) + record.value.len();
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&expires.nanos.to_le_bytes());
        bytes.extend_from_slice(&key_len.to_le_bytes());
        bytes.extend_from_slice(&index_len.to_le_bytes());
        bytes.extend_from_slice(key.as_bytes());
        bytes.extend_from_slice(index.unwrap_or_default().as_bytes());
        bytes.extend_from_slice(&record.value);
        Ok(Self {
            bytes: bytes.into_boxed_slice(),
            expires_secs: expires.secs,
        })
    }

    /// The `N` header bytes at `at` (zeros if the row were shorter: it never is).
    fn header<const N: usize>(&self, at: usize) -> [u8; N] {
        self.bytes
            .get(at..at + N)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; N])
    }

    fn version(&self) -> u64 {
        u64::from_le_bytes(self.header(0))
    }

    fn expires(&self) -> Stamp {
        Stamp {
            secs: self.expires_secs,
            nanos: u32::from_le_bytes(self.header(8)),
        }
    }

    fn key_len(&self) -> usize {
        u32::from_le_bytes(self.header(12)) as usize
    }

    fn index_len(&self) -> Option<usize> {
        match u32::from_le_bytes(self.header(16)) {
            NO_INDEX => None,
            n => Some(n as usize),
        }
    }

    fn key(&self) -> &[u8] {
        self.bytes
            .get(HEADER..HEADER + self.key_len())
            .unwrap_or_default()
    }

    fn index(&self) -> Option<&[u8]> {
        let at = HEADER + self.key_len();
        self.index_len()
            .map(|n| self.bytes.get(at..at + n).unwrap_or_default())
    }

    fn value(&self) -> &[u8] {
        let at = HEADER + self.key_len() + self.index_len().unwrap_or(0);
        self.bytes.get(at..).unwrap_or_default()
    }

    /// Whether the record still exists at `now`; the nanoseconds are read from the row only
    /// when the seconds are equal.
    fn live(&self, now: Stamp) -> bool {
        match self.expires_secs.cmp(&now.secs) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => self.expires().nanos > now.nanos,
        }
    }

    fn to_record(&self) -> Record {
        Record {
            value: self.value().to_vec(),
            version: self.version(),
            expires_at: self.expires().time(),
            index: self
                .index()
                .map(|ix| String::from_utf8_lossy(ix).into_owned()),
        }
    }
}

/// The keys of one index value, as 64-bit hashes: the rows are found by hash and checked
/// against the index they hold, so a hash shared by two keys costs a comparison, never a
/// wrong answer. Most index values have one key (a pending login's is the hash of its
/// state); the others count each key hash's rows.
#[derive(Debug)]
enum KeyHashes {
    One(u64),
    // Boxed: 16 bytes for the enum instead of 32, in a slot of every index entry.
    #[allow(clippy::box_collection)]
    Many(Box<BTreeMap<u64, u32>>),
}

#[derive(Debug)]
struct IndexEntry {
    hash: u64,
    keys: KeyHashes,
}

#[derive(Default)]
struct Namespace {
    hasher: RandomState,
    /// The rows, by the hash of their key.
    rows: HashTable<Row>,
    /// One entry per index value (by its hash; two values of one hash share it), naming the
    /// hashes of the keys whose rows hold that index. Kept in step with `rows`.
    by_index: HashTable<IndexEntry>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("rows", &self.rows.len())
            .field("indexes", &self.by_index.len())
            .finish()
    }
}

fn add_to_index(by_index: &mut HashTable<IndexEntry>, index_hash: u64, key_hash: u64) {
    match by_index.find_mut(index_hash, |e| e.hash == index_hash) {
        Some(entry) => match &mut entry.keys {
            KeyHashes::One(k) => {
                let mut many = BTreeMap::new();
                many.insert(*k, 1);
                *many.entry(key_hash).or_insert(0) += 1;
                entry.keys = KeyHashes::Many(Box::new(many));
            }
            KeyHashes::Many(many) => *many.entry(key_hash).or_insert(0) += 1,
        },
        None => {
            by_index.insert_unique(
                index_hash,
                IndexEntry {
                    hash: index_hash,
                    keys: KeyHashes::One(key_hash),
                },
                |e| e.hash,
            );
        }
    }
}

fn remove_from_index(by_index: &mut HashTable<IndexEntry>, index_hash: u64, key_hash: u64) {
    let Ok(mut entry) = by_index.find_entry(index_hash, |e| e.hash == index_hash) else {
        return;
    };
    let keys = &mut entry.get_mut().keys;
    let empty = match &mut *keys {
        KeyHashes::One(k) => *k == key_hash,
        KeyHashes::Many(many) => {
            if let Some(n) = many.get_mut(&key_hash) {
                *n -= 1;
                if *n == 0 {
                    many.remove(&key_hash);
                }
            }
            let empty = many.is_empty();
            // Back to one key: no tree node.
            if let (1, Some((&k, &1))) = (many.len(), many.first_key_value()) {
                *keys = KeyHashes::One(k);
            }
            empty
        }
    };
    if empty {
        entry.remove();
    }
}

impl Namespace {
    fn hash(&self, s: &[u8]) -> u64 {
        self.hasher.hash_one(s)
    }

    fn get(&self, key: &str) -> Option<&Row> {
        let key = key.as_bytes();
        self.rows.find(self.hash(key), |r| r.key() == key)
    }

    fn live(&self, key: &str, now: Stamp) -> Option<&Row> {
        self.get(key).filter(|r| r.live(now))
    }

    fn remove(&mut self, key: &str) -> Option<Row> {
        let key = key.as_bytes();
        let key_hash = self.hash(key);
        let (row, _) = self
            .rows
            .find_entry(key_hash, |r| r.key() == key)
            .ok()?
            .remove();
        if let Some(ix) = row.index() {
            let index_hash = self.hash(ix);
            remove_from_index(&mut self.by_index, index_hash, key_hash);
        }
        Some(row)
    }

    /// Adds `row`, whose key is not in the namespace.
    fn add(&mut self, row: Row) {
        let key_hash = self.hash(row.key());
        if let Some(ix) = row.index() {
            let index_hash = self.hash(ix);
            add_to_index(&mut self.by_index, index_hash, key_hash);
        }
        let hasher = &self.hasher;
        self.rows
            .insert_unique(key_hash, row, |r| hasher.hash_one(r.key()));
    }

    /// The live rows whose index is `index`, with their keys, in key order.
    fn list(&self, index: &str, now: Stamp) -> Vec<(String, Record)> {
        let index = index.as_bytes();
        let index_hash = self.hash(index);
        let Some(entry) = self.by_index.find(index_hash, |e| e.hash == index_hash) else {
            return Vec::new();
        };
        let (one, many) = match &entry.keys {
            KeyHashes::One(k) => (Some(*k), None),
            KeyHashes::Many(m) => (None, Some(m.keys().copied())),
        };
        let mut found: Vec<&Row> = one
            .into_iter()
            .chain(many.into_iter().flatten())
            .flat_map(|key_hash| self.rows.iter_hash(key_hash))
            .filter(|r| r.index() == Some(index) && r.live(now))
            .collect();
        found.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        found.dedup_by(|a, b| a.key() == b.key());
        found
            .into_iter()
            .map(|r| (String::from_utf8_lossy(r.key()).into_owned(), r.to_record()))
            .collect()
    }

    /// Drops every row expired at `now`; how many there were. One pass over the table takes
    /// them out (it reads the table alone for the rows it keeps); when they are most of the
    /// rows the index is rebuilt from the rows left, else each leaves the index by its hashes.
    /// They are freed in address order, which the allocator does faster than in the table's
    /// random order (a million expired pending logins: 41 times a bare `retain`, 68 times in
    /// table order).
    fn sweep(&mut self, now: Stamp) -> usize {
        if self.rows.iter().all(|r| r.live(now)) {
            return 0;
        }
        let mut dead: Vec<Row> = self.rows.extract_if(|r| !r.live(now)).collect();
        if dead.len() >= self.rows.len() {
            self.by_index.clear();
            for row in &self.rows {
                if let Some(ix) = row.index() {
                    let (index_hash, key_hash) =
                        (self.hasher.hash_one(ix), self.hasher.hash_one(row.key()));
                    add_to_index(&mut self.by_index, index_hash, key_hash);
                }
            }
        } else {
            for row in &dead {
                if let Some(ix) = row.index() {
                    let (index_hash, key_hash) =
                        (self.hasher.hash_one(ix), self.hasher.hash_one(row.key()));
                    remove_from_index(&mut self.by_index, index_hash, key_hash);
                }
            }
        }
        dead.sort_unstable_by_key(|r| r.bytes.as_ptr() as usize);
        dead.len()
    }
}

#[derive(Debug, Default)]
struct Inner {
    namespaces: HashMap<String, Namespace>,
    /// The last version given out; every write takes the next one.
    last_version: u64,
    writes_since_sweep: usize,
    /// Records left by the last sweep: the next one comes after as many writes (at least
    /// 4096), so each write pays O(1) of sweeping, amortised.
    rows_after_sweep: usize,
}

const SWEEP_EVERY: usize = 4096;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records the store holds, expired ones not swept yet included. For monitoring
    /// and tests: it stays within about twice the live records (plus 4096).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.rows()).unwrap_or(0)
    }

    /// Whether the store holds no record at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every record expired at `now` at once and returns how many there were. Never
    /// needed for correctness (expired records are invisible, and writes sweep as they go);
    /// for a host that wants the memory back after a burst, say from a timer.
    pub fn sweep_expired(&self, now: OffsetDateTime) -> usize {
        let Ok(mut inner) = self.inner.lock() else {
            return 0;
        };
        inner.sweep(Stamp::of(now))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::unavailable("memory store lock poisoned"))
    }
}

impl Inner {
    fn ns(&self, namespace: &str) -> Option<&Namespace> {
        self.namespaces.get(namespace)
    }

    fn rows(&self) -> usize {
        self.namespaces.values().map(|n| n.rows.len()).sum()
    }

    fn sweep(&mut self, now: Stamp) -> usize {
        let swept = self.namespaces.values_mut().map(|ns| ns.sweep(now)).sum();
        self.rows_after_sweep = self.rows();
        self.writes_since_sweep = 0;
        swept
    }

    /// The next version: store-wide, so it never repeats for a key. A u64 does not wrap in
    /// practice (584 years at a billion writes a second); saturating keeps this total.
    fn next_version(&mut self) -> u64 {
        self.last_version = self.last_version.saturating_add(1);
        self.last_version
    }

    fn live_version(&self, namespace: &str, key: &str, now: OffsetDateTime) -> Option<u64> {
        self.ns(namespace)?
            .live(key, Stamp::of(now))
            .map(Row::version)
    }

    fn remove(&mut self, namespace: &str, key: &str) -> Option<Row> {
        self.namespaces.get_mut(namespace)?.remove(key)
    }

    /// Writes `record` under a new version; returns the version.
    fn write(
        &mut self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let version = self.next_version();
        let row = Row::new(key, record, version)?;
        let ns = match self.namespaces.get_mut(namespace) {
            Some(ns) => ns,
            None => self.namespaces.entry(namespace.to_owned()).or_default(),
        };
        ns.remove(key);
        ns.add(row);
        self.writes_since_sweep += 1;
        // A sweep costs O(records) = O(rows_after_sweep + writes since): done once every
        // max(4096, rows_after_sweep) writes, that is O(1) per write however large the store.
        if self.writes_since_sweep >= SWEEP_EVERY.max(self.rows_after_sweep) {
            self.sweep(Stamp::of(now));
        }
        Ok(version)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .ns(namespace)
            .and_then(|ns| ns.live(key, Stamp::of(now)))
            .map(Row::to_record))
    }

    async fn get_many(
        &self,
        keys: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let inner = self.lock()?;
        let now = Stamp::of(now);
        Ok(keys
            .iter()
            .map(|(namespace, key)| {
                inner
                    .ns(namespace)
                    .and_then(|ns| ns.live(key, now))
                    .map(Row::to_record)
            })
            .collect())
    }

    async fn insert(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<Inserted, StoreError> {
        let mut inner = self.lock()?;
        if inner.live_version(namespace, key, now).is_some() {
            return Ok(Inserted::No);
        }
        let version = inner.write(namespace, key, record, now)?;
        Ok(Inserted::Yes { version })
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock()?;
        inner.write(namespace, key, record, now)
    }

    async fn take(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let mut inner = self.lock()?;
        Ok(inner
            .remove(namespace, key)
            .filter(|r| r.live(Stamp::of(now)))
            .map(|r| r.to_record()))
    }

    async fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError> {
        let mut inner = self.lock()?;
        match inner.live_version(namespace, key, now) {
            None => Ok(CasOutcome::Missing),
            Some(current) if current != expected => Ok(CasOutcome::Conflict { current }),
            Some(_) => {
                let version = inner.write(namespace, key, record, now)?;
                Ok(CasOutcome::Swapped { version })
            }
        }
    }

    async fn compare_and_delete(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<DeleteOutcome, StoreError> {
        let mut inner = self.lock()?;
        match inner.live_version(namespace, key, now) {
            None => Ok(DeleteOutcome::Missing),
            Some(current) if current != expected => Ok(DeleteOutcome::Conflict { current }),
            Some(_) => {
                inner.remove(namespace, key);
                Ok(DeleteOutcome::Deleted)
            }
        }
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        Ok(inner
            .remove(namespace, key)
            .is_some_and(|r| r.live(Stamp::of(now))))
    }

    async fn list(
        &self,
        namespace: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .ns(namespace)
            .map(|ns| ns.list(index, Stamp::of(now)))
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);

    fn record(value: &[u8], index: Option<&str>, expires: Option<OffsetDateTime>) -> NewRecord {
        let mut r = NewRecord::new(value.to_vec());
        if let Some(ix) = index {
            r = r.index(ix);
        }
        if let Some(at) = expires {
            r = r.expires_at(at);
        }
        r
    }

    #[test]
    fn a_row_gives_back_what_was_written() {
        let at = datetime!(2026-03-02 09:10:00.123456789 +02:00);
        let row = Row::new("k", record(b"value", Some("ix"), Some(at)), 7).unwrap();
        let back = row.to_record();
        assert_eq!(back.value, b"value");
        assert_eq!(back.version, 7);
        assert_eq!(back.expires_at, Some(at));
        assert_eq!(back.index.as_deref(), Some("ix"));
        let row = Row::new("", record(b"", Some(""), None), 1).unwrap();
        let back = row.to_record();
        assert_eq!((back.value.len(), back.expires_at), (0, None));
        assert_eq!(back.index.as_deref(), Some(""));
        let row = Row::new("k", record(b"v", None, None), 1).unwrap();
        assert_eq!(row.to_record().index, None);
    }

    #[test]
    fn expiry_is_exact_to_the_nanosecond() {
        let at = datetime!(2026-03-02 09:10:00.5 UTC);
        let row = Row::new("k", record(b"v", None, Some(at)), 1).unwrap();
        assert!(row.live(Stamp::of(at - time::Duration::nanoseconds(1))));
        assert!(!row.live(Stamp::of(at)));
        assert!(!row.live(Stamp::of(at + time::Duration::seconds(1))));
    }

    #[test]
    fn the_index_shares_a_hash_without_mixing_keys() {
        // Two keys whose hashes are forced equal in the index: list still answers each index
        // exactly, and removing one leaves the other.
        let mut ns = Namespace::default();
        ns.add(Row::new("a", record(b"1", Some("ix"), None), 1).unwrap());
        ns.add(Row::new("b", record(b"2", Some("ix"), None), 2).unwrap());
        ns.add(Row::new("c", record(b"3", Some("other"), None), 3).unwrap());
        let now = Stamp::of(NOW);
        let keys = |ns: &Namespace, ix: &str| -> Vec<String> {
            ns.list(ix, now).into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(keys(&ns, "ix"), ["a", "b"]);
        assert_eq!(keys(&ns, "other"), ["c"]);
        assert!(ns.remove("a").is_some());
        assert_eq!(keys(&ns, "ix"), ["b"]);
        assert!(ns.remove("b").is_some());
        assert!(keys(&ns, "ix").is_empty());
        assert_eq!(ns.by_index.len(), 1);
        // A key hash counted twice under one index (as two keys of one hash would be) is
        // listed once and leaves the index only with its last row.
        let (ih, kh) = (ns.hash(b"other"), ns.hash(b"c"));
        add_to_index(&mut ns.by_index, ih, kh);
        assert_eq!(keys(&ns, "other"), ["c"]);
        remove_from_index(&mut ns.by_index, ih, kh);
        assert_eq!(keys(&ns, "other"), ["c"]);
        assert!(ns.remove("c").is_some());
        assert!(ns.by_index.is_empty());
    }

    #[test]
    fn a_sweep_keeps_the_index_in_step_either_way() {
        for expired in [1usize, 9] {
            let mut ns = Namespace::default();
            for i in 0..10 {
                let at = if i < expired {
                    NOW
                } else {
                    NOW + time::Duration::hours(1)
                };
                ns.add(Row::new(&format!("k{i}"), record(b"v", Some("ix"), Some(at)), 1).unwrap());
                ns.add(
                    Row::new(
                        &format!("own{i}"),
                        record(b"v", Some(&format!("own{i}")), Some(at)),
                        1,
                    )
                    .unwrap(),
                );
            }
            assert_eq!(ns.sweep(Stamp::of(NOW)), 2 * expired);
            assert_eq!(ns.rows.len(), 20 - 2 * expired);
            let listed = ns.list("ix", Stamp::of(NOW)).len();
            assert_eq!(listed, 10 - expired);
            // One entry for "ix" and one per live "own" index.
            assert_eq!(ns.by_index.len(), 1 + 10 - expired);
        }
    }
}

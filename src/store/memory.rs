//! The in-process default store.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
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
/// Memory: a record costs its value, key and index (kept without spare capacity) plus about a
/// hundred bytes of table entries; an index with a single key (as a pending login's) needs no
/// tree node. The bench `memory` measures a pending login (see the README's bench table).
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Namespace {
    rows: HashMap<Box<str>, Row>,
    /// index -> keys; kept in step with `rows`.
    by_index: HashMap<Box<str>, Keys>,
}

/// A record as kept: its value and index without spare capacity (a value serialised into a
/// growing `Vec` holds up to twice its length).
#[derive(Debug)]
struct Row {
    value: Box<[u8]>,
    version: u64,
    expires_at: Option<OffsetDateTime>,
    index: Option<Box<str>>,
}

impl Row {
    fn new(record: NewRecord, version: u64) -> Self {
        Self {
            value: record.value.into_boxed_slice(),
            version,
            expires_at: record.expires_at,
            index: record.index.map(String::into_boxed_str),
        }
    }

    fn to_record(&self) -> Record {
        Record {
            value: self.value.to_vec(),
            version: self.version,
            expires_at: self.expires_at,
            index: self.index.as_deref().map(str::to_owned),
        }
    }

    fn into_record(self) -> Record {
        Record {
            value: self.value.into_vec(),
            version: self.version,
            expires_at: self.expires_at,
            index: self.index.map(String::from),
        }
    }
}

/// The keys of one index, in key order. Most indexes hold one key (a pending login's is the
/// hash of its state): that one is kept inline rather than in a tree node of some 300 bytes.
#[derive(Debug)]
enum Keys {
    One(Box<str>),
    Many(BTreeSet<Box<str>>),
}

impl Keys {
    fn insert(&mut self, key: &str) {
        match self {
            Self::One(k) if **k == *key => {}
            Self::One(k) => {
                let first = std::mem::take(k);
                *self = Self::Many(BTreeSet::from([first, Box::from(key)]));
            }
            Self::Many(set) => {
                set.insert(Box::from(key));
            }
        }
    }

    /// Removes `key`; whether no key is left.
    fn remove(&mut self, key: &str) -> bool {
        match self {
            Self::One(k) => **k == *key,
            Self::Many(set) => {
                set.remove(key);
                set.is_empty()
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            Self::One(k) => (Some(&**k), None),
            Self::Many(set) => (None, Some(set.iter().map(|k| &**k))),
        };
        one.into_iter().chain(many.into_iter().flatten())
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

fn live(r: &Row, now: OffsetDateTime) -> bool {
    r.expires_at.is_none_or(|e| e > now)
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records the store holds, expired ones not swept yet included. For monitoring
    /// and tests: it stays within about twice the live records (plus 4096).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|i| i.namespaces.values().map(|n| n.rows.len()).sum())
            .unwrap_or(0)
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
        let before: usize = inner.namespaces.values().map(|n| n.rows.len()).sum();
        for ns in inner.namespaces.values_mut() {
            ns.sweep(now);
        }
        let after = inner.namespaces.values().map(|n| n.rows.len()).sum();
        inner.rows_after_sweep = after;
        inner.writes_since_sweep = 0;
        before - after
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::unavailable("memory store lock poisoned"))
    }
}

impl Namespace {
    fn remove(&mut self, key: &str) -> Option<Row> {
        let old = self.rows.remove(key)?;
        if let Some(ix) = &old.index
            && let Some(keys) = self.by_index.get_mut(&**ix)
            && keys.remove(key)
        {
            self.by_index.remove(&**ix);
        }
        Some(old)
    }

    fn live(&self, key: &str, now: OffsetDateTime) -> Option<&Row> {
        self.rows.get(key).filter(|r| live(r, now))
    }

    fn sweep(&mut self, now: OffsetDateTime) {
        let dead: Vec<Box<str>> = self
            .rows
            .iter()
            .filter(|(_, r)| !live(r, now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dead {
            self.remove(&key);
        }
    }
}

impl Inner {
    fn ns(&self, namespace: &str) -> Option<&Namespace> {
        self.namespaces.get(namespace)
    }

    /// The next version: store-wide, so it never repeats for a key. A u64 does not wrap in
    /// practice (584 years at a billion writes a second); saturating keeps this total.
    fn next_version(&mut self) -> u64 {
        self.last_version = self.last_version.saturating_add(1);
        self.last_version
    }

    fn live_version(&self, namespace: &str, key: &str, now: OffsetDateTime) -> Option<u64> {
        self.ns(namespace)?.live(key, now).map(|r| r.version)
    }

    fn remove(&mut self, namespace: &str, key: &str) -> Option<Row> {
        self.namespaces.get_mut(namespace)?.remove(key)
    }

    /// Writes `record` under a new version; returns the version.
    fn write(&mut self, namespace: &str, key: &str, record: NewRecord, now: OffsetDateTime) -> u64 {
        let version = self.next_version();
        let record = Row::new(record, version);
        let ns = match self.namespaces.get_mut(namespace) {
            Some(ns) => ns,
            None => self.namespaces.entry(namespace.to_owned()).or_default(),
        };
        ns.remove(key);
        if let Some(ix) = &record.index {
            match ns.by_index.get_mut(&**ix) {
                Some(keys) => keys.insert(key),
                None => {
                    ns.by_index.insert(ix.clone(), Keys::One(Box::from(key)));
                }
            }
        }
        ns.rows.insert(Box::from(key), record);
        self.writes_since_sweep += 1;
        // A sweep costs O(records) = O(rows_after_sweep + writes since): done once every
        // max(4096, rows_after_sweep) writes, that is O(1) per write however large the store.
        if self.writes_since_sweep >= SWEEP_EVERY.max(self.rows_after_sweep) {
            self.writes_since_sweep = 0;
            for ns in self.namespaces.values_mut() {
                ns.sweep(now);
            }
            self.rows_after_sweep = self.namespaces.values().map(|n| n.rows.len()).sum();
        }
        version
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
            .and_then(|ns| ns.live(key, now))
            .map(Row::to_record))
    }

    async fn get_many(
        &self,
        keys: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let inner = self.lock()?;
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
        inner.write(namespace, key, record, now);
        Ok(Inserted::Yes)
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock()?;
        Ok(inner.write(namespace, key, record, now))
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
            .filter(|r| live(r, now))
            .map(Row::into_record))
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
                let version = inner.write(namespace, key, record, now);
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
        Ok(inner.remove(namespace, key).is_some_and(|r| live(&r, now)))
    }

    async fn list(
        &self,
        namespace: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        let inner = self.lock()?;
        let Some(ns) = inner.ns(namespace) else {
            return Ok(Vec::new());
        };
        let Some(keys) = ns.by_index.get(index) else {
            return Ok(Vec::new());
        };
        Ok(keys
            .iter()
            .filter_map(|k| ns.live(k, now).map(|r| (k.to_owned(), r.to_record())))
            .collect())
    }
}

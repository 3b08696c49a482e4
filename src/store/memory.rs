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
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Namespace {
    rows: HashMap<String, Record>,
    /// index -> keys; kept in step with `rows`.
    by_index: HashMap<String, BTreeSet<String>>,
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

fn live(r: &Record, now: OffsetDateTime) -> bool {
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

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::unavailable("memory store lock poisoned"))
    }
}

impl Namespace {
    fn remove(&mut self, key: &str) -> Option<Record> {
        let old = self.rows.remove(key)?;
        if let Some(ix) = &old.index
            && let Some(keys) = self.by_index.get_mut(ix)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.by_index.remove(ix);
            }
        }
        Some(old)
    }

    fn live(&self, key: &str, now: OffsetDateTime) -> Option<&Record> {
        self.rows.get(key).filter(|r| live(r, now))
    }

    fn sweep(&mut self, now: OffsetDateTime) {
        let dead: Vec<String> = self
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

    fn remove(&mut self, namespace: &str, key: &str) -> Option<Record> {
        self.namespaces.get_mut(namespace)?.remove(key)
    }

    /// Writes `record` under a new version; returns the version.
    fn write(&mut self, namespace: &str, key: &str, record: NewRecord, now: OffsetDateTime) -> u64 {
        let version = self.next_version();
        let record = record.into_record(version);
        let ns = match self.namespaces.get_mut(namespace) {
            Some(ns) => ns,
            None => self.namespaces.entry(namespace.to_owned()).or_default(),
        };
        ns.remove(key);
        if let Some(ix) = &record.index {
            match ns.by_index.get_mut(ix) {
                Some(keys) => {
                    keys.insert(key.to_owned());
                }
                None => {
                    ns.by_index
                        .insert(ix.clone(), BTreeSet::from([key.to_owned()]));
                }
            }
        }
        ns.rows.insert(key.to_owned(), record);
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
            .cloned())
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
                    .cloned()
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
        Ok(inner.remove(namespace, key).filter(|r| live(r, now)))
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
            .filter_map(|k| ns.live(k, now).map(|r| (k.clone(), r.clone())))
            .collect())
    }
}

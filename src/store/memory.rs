//! The in-process default store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{CasOutcome, Inserted, NewRecord, Record, Store, StoreError};

/// An in-memory [`Store`]: the default, for one process, tests and examples.
///
/// Operations are O(1) in the number of records except `list`, which is O(records with that
/// index). Expired records are dropped when touched and by an occasional sweep, so the map does
/// not grow without bound under a stream of abandoned logins.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    rows: HashMap<(String, String), Record>,
    // (namespace, index) -> keys; kept in step with `rows`.
    by_index: HashMap<(String, String), BTreeMap<String, ()>>,
    writes_since_sweep: usize,
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

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::unavailable("memory store lock poisoned"))
    }
}

impl Inner {
    fn remove(&mut self, ns: &str, key: &str) -> Option<Record> {
        let old = self.rows.remove(&(ns.to_owned(), key.to_owned()))?;
        if let Some(ix) = &old.index {
            let ik = (ns.to_owned(), ix.clone());
            if let Some(keys) = self.by_index.get_mut(&ik) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_index.remove(&ik);
                }
            }
        }
        Some(old)
    }

    fn write(&mut self, ns: &str, key: &str, record: Record, now: OffsetDateTime) {
        self.remove(ns, key);
        if let Some(ix) = &record.index {
            self.by_index
                .entry((ns.to_owned(), ix.clone()))
                .or_default()
                .insert(key.to_owned(), ());
        }
        self.rows.insert((ns.to_owned(), key.to_owned()), record);
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.writes_since_sweep = 0;
            let dead: Vec<(String, String)> = self
                .rows
                .iter()
                .filter(|(_, r)| !live(r, now))
                .map(|(k, _)| k.clone())
                .collect();
            for (ns, key) in dead {
                self.remove(&ns, &key);
            }
        }
    }

    fn live_version(&self, ns: &str, key: &str, now: OffsetDateTime) -> Option<u64> {
        self.rows
            .get(&(ns.to_owned(), key.to_owned()))
            .filter(|r| live(r, now))
            .map(|r| r.version)
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
            .rows
            .get(&(namespace.to_owned(), key.to_owned()))
            .filter(|r| live(r, now))
            .cloned())
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
        inner.write(namespace, key, record.into_record(1), now);
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
        let version = inner.live_version(namespace, key, now).map_or(1, |v| v + 1);
        inner.write(namespace, key, record.into_record(version), now);
        Ok(version)
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
                let version = expected + 1;
                inner.write(namespace, key, record.into_record(version), now);
                Ok(CasOutcome::Swapped { version })
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
        let Some(keys) = inner
            .by_index
            .get(&(namespace.to_owned(), index.to_owned()))
        else {
            return Ok(Vec::new());
        };
        Ok(keys
            .keys()
            .filter_map(|k| {
                inner
                    .rows
                    .get(&(namespace.to_owned(), k.clone()))
                    .filter(|r| live(r, now))
                    .map(|r| (k.clone(), r.clone()))
            })
            .collect())
    }
}

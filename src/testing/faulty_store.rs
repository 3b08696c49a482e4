//! [`FaultyStore`]: a [`Store`] that fails on purpose, to prove that every broker operation
//! fails closed when its store does.

use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::store::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record, Store, StoreError};

/// A fault to inject; see [`FaultyStore::inject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The operation fails with [`StoreError::Unavailable`] and changes nothing: the database
    /// was down.
    FailBefore,
    /// The operation is applied, then fails with [`StoreError::Unavailable`]: the answer was
    /// lost (a timeout after the database committed). A read is simply answered with the error.
    FailAfter,
}

/// Which operations a fault counts; see [`FaultyStore::inject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ops {
    /// Every operation.
    All,
    /// Only the ones that may write: `insert`, `put`, `take`, `compare_and_swap`,
    /// `compare_and_delete`, `delete`.
    Writes,
}

#[derive(Debug, Default)]
struct State {
    /// Faults not fired yet.
    faults: Vec<Pending>,
    operations: u64,
    injected: u64,
}

#[derive(Debug)]
struct Pending {
    fault: Fault,
    ops: Ops,
    namespace: Option<String>,
    /// How many more matching operations pass before this one fails.
    skip: u64,
}

/// A [`Store`] around another that fails chosen operations: the Nth operation (or write, or
/// operation in one namespace) from now fails before it reaches the inner store, or after it
/// was applied there. Everything else passes through unchanged.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use cx_sso::store::{NewRecord, Store};
/// use cx_sso::testing::{Fault, FaultyStore, Ops};
///
/// let store = FaultyStore::new(Arc::new(cx_sso::MemoryStore::new()));
/// let now = time::OffsetDateTime::now_utc();
/// // The second write from now is applied, then reported as failed.
/// store.inject(Fault::FailAfter, Ops::Writes, None, 2);
/// store.put("ns", "a", NewRecord::new(vec![1]), now).await.unwrap();
/// assert!(store.put("ns", "b", NewRecord::new(vec![2]), now).await.is_err());
/// assert!(store.inner().get("ns", "b", now).await.unwrap().is_some(), "it was applied");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    state: Arc<Mutex<State>>,
}

impl FaultyStore {
    /// Wraps `inner`, with no fault injected.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// The wrapped store, to look at what was really written.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Makes the `nth` (1 = the next) matching operation from now fail with `fault`: among
    /// `ops`, in `namespace` if given. Each injected fault fires once; several may be pending.
    pub fn inject(&self, fault: Fault, ops: Ops, namespace: Option<&str>, nth: u64) {
        let mut state = self.lock();
        state.faults.push(Pending {
            fault,
            ops,
            namespace: namespace.map(str::to_owned),
            skip: nth.saturating_sub(1),
        });
    }

    /// Removes every pending fault.
    pub fn clear(&self) {
        self.lock().faults.clear();
    }

    /// How many operations went through this store (failed ones included).
    pub fn operations(&self) -> u64 {
        self.lock().operations
    }

    /// How many faults fired.
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a test's own assertion; the state
        // is plain counters, safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an operation and answers the fault it must suffer, if any.
    fn fault_for(&self, namespaces: &[&str], write: bool) -> Option<Fault> {
        let mut state = self.lock();
        state.operations += 1;
        let mut fired = None;
        for (i, p) in state.faults.iter_mut().enumerate() {
            let matches = (p.ops == Ops::All || write)
                && p.namespace
                    .as_deref()
                    .is_none_or(|ns| namespaces.contains(&ns));
            if !matches {
                continue;
            }
            if p.skip == 0 && fired.is_none() {
                fired = Some((i, p.fault));
            } else if p.skip > 0 {
                p.skip -= 1;
            }
        }
        let (i, fault) = fired?;
        state.faults.remove(i);
        state.injected += 1;
        Some(fault)
    }

    /// Runs `op` under the fault chosen for it.
    async fn run<T>(
        &self,
        name: &'static str,
        namespaces: &[&str],
        write: bool,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.fault_for(namespaces, write) {
            None => op.await,
            Some(Fault::FailBefore) => Err(StoreError::unavailable(format!(
                "injected fault: {name} failed before reaching the store"
            ))),
            Some(Fault::FailAfter) => {
                op.await?;
                Err(StoreError::unavailable(format!(
                    "injected fault: {name} was applied, then its answer was lost"
                )))
            }
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let op = self.inner.get(namespace, key, now);
        self.run("get", &[namespace], false, op).await
    }

    async fn get_many(
        &self,
        keys: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let namespaces: Vec<&str> = keys.iter().map(|(ns, _)| *ns).collect();
        let op = self.inner.get_many(keys, now);
        self.run("get_many", &namespaces, false, op).await
    }

    async fn insert(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<Inserted, StoreError> {
        let op = self.inner.insert(namespace, key, record, now);
        self.run("insert", &[namespace], true, op).await
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let op = self.inner.put(namespace, key, record, now);
        self.run("put", &[namespace], true, op).await
    }

    async fn take(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let op = self.inner.take(namespace, key, now);
        self.run("take", &[namespace], true, op).await
    }

    async fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError> {
        let op = self
            .inner
            .compare_and_swap(namespace, key, expected, record, now);
        self.run("compare_and_swap", &[namespace], true, op).await
    }

    async fn compare_and_delete(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<DeleteOutcome, StoreError> {
        let op = self.inner.compare_and_delete(namespace, key, expected, now);
        self.run("compare_and_delete", &[namespace], true, op).await
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let op = self.inner.delete(namespace, key, now);
        self.run("delete", &[namespace], true, op).await
    }

    async fn list(
        &self,
        namespace: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        let op = self.inner.list(namespace, index, now);
        self.run("list", &[namespace], false, op).await
    }
}

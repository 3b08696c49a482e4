//! [`SplitStore`]: short-lived namespaces in one store, the rest in another.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record, Store, StoreError};

/// The names of the [short-lived](super::Lifetime::ShortLived) [`NAMESPACES`](super::NAMESPACES)
/// of the crate's records today: pending logins (10 minutes), link
/// tickets, visitor token ids kept against replay (until the token expires) and refresh leases
/// (seconds). Everything else (provider configurations, bindings, tenant policies, privileged
/// users, visitor configurations, connection tokens) is durable.
pub const SHORT_LIVED_NAMESPACES: &[&str] = &[
    super::records::PENDING_LOGIN.name,
    super::records::LINK_TICKET.name,
    super::records::VISITOR_JTI.name,
    super::records::CONNECTION_LEASE.name,
];

/// A [`Store`] that sends each namespace to one of two stores: the short-lived ones to a fast
/// shared store (typically a [`RedisStore`](super::RedisStore)), the others to a durable one
/// (typically a [`SqlStore`](super::SqlStore)).
///
/// The routing is explicit: the set of short-lived namespaces is given to the constructor
/// ([`SHORT_LIVED_NAMESPACES`] is today's). Every operation touches one namespace, so it keeps
/// the atomicity of the store it goes to; `get_many` asks each store once for its part. A
/// namespace must stay on one side for its whole life: moving one loses what it held.
///
/// ```no_run
/// # #[cfg(all(feature = "redis", feature = "postgres"))]
/// # async fn run() -> Result<(), cx_sso::StoreError> {
/// use std::sync::Arc;
/// use cx_sso::store::{RedisStore, SHORT_LIVED_NAMESPACES, SplitStore, SqlStore};
///
/// let sql = SqlStore::postgres("postgres://cx@db.internal/cx").await?;
/// sql.migrate().await?;
/// let redis = RedisStore::connect("redis://cache.internal:6379/").await?;
/// let store = SplitStore::new(Arc::new(sql), Arc::new(redis), SHORT_LIVED_NAMESPACES.iter().copied());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SplitStore {
    durable: Arc<dyn Store>,
    short_lived: Arc<dyn Store>,
    route: Route,
}

#[derive(Clone)]
enum Route {
    Namespaces(Arc<HashSet<String>>),
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl fmt::Debug for SplitStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SplitStore");
        d.field("durable", &self.durable)
            .field("short_lived", &self.short_lived);
        match &self.route {
            Route::Namespaces(set) => {
                let mut names: Vec<&String> = set.iter().collect();
                names.sort();
                d.field("short_lived_namespaces", &names)
            }
            Route::Predicate(_) => d.field("short_lived_namespaces", &"(a predicate)"),
        };
        d.finish()
    }
}

impl SplitStore {
    /// Sends the namespaces in `short_lived_namespaces` to `short_lived`, every other one to
    /// `durable`.
    pub fn new<I, S>(
        durable: Arc<dyn Store>,
        short_lived: Arc<dyn Store>,
        short_lived_namespaces: I,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            durable,
            short_lived,
            route: Route::Namespaces(Arc::new(
                short_lived_namespaces.into_iter().map(Into::into).collect(),
            )),
        }
    }

    /// Sends the namespaces for which `is_short_lived` answers true to `short_lived`, every other
    /// one to `durable`. The predicate must answer the same for a namespace every time.
    pub fn with_predicate(
        durable: Arc<dyn Store>,
        short_lived: Arc<dyn Store>,
        is_short_lived: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            durable,
            short_lived,
            route: Route::Predicate(Arc::new(is_short_lived)),
        }
    }

    /// Whether `namespace` goes to the short-lived store.
    pub fn is_short_lived(&self, namespace: &str) -> bool {
        match &self.route {
            Route::Namespaces(set) => set.contains(namespace),
            Route::Predicate(f) => f(namespace),
        }
    }

    fn store(&self, namespace: &str) -> &dyn Store {
        if self.is_short_lived(namespace) {
            self.short_lived.as_ref()
        } else {
            self.durable.as_ref()
        }
    }
}

#[async_trait]
impl Store for SplitStore {
    async fn get(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.store(namespace).get(namespace, key, now).await
    }

    async fn get_many(
        &self,
        keys: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let (short, durable): (Vec<_>, Vec<_>) = keys
            .iter()
            .enumerate()
            .partition(|(_, (ns, _))| self.is_short_lived(ns));
        let short_keys: Vec<(&str, &str)> = short.iter().map(|(_, k)| **k).collect();
        let durable_keys: Vec<(&str, &str)> = durable.iter().map(|(_, k)| **k).collect();
        let from_short = if short_keys.is_empty() {
            Vec::new()
        } else {
            self.short_lived.get_many(&short_keys, now).await?
        };
        let from_durable = if durable_keys.is_empty() {
            Vec::new()
        } else {
            self.durable.get_many(&durable_keys, now).await?
        };
        if from_short.len() != short.len() || from_durable.len() != durable.len() {
            return Err(StoreError::Corrupt {
                message: "get_many answered another number of records".to_owned(),
            });
        }
        let mut out: Vec<Option<Record>> = vec![None; keys.len()];
        for ((i, _), rec) in short.iter().zip(from_short) {
            if let Some(slot) = out.get_mut(*i) {
                *slot = rec;
            }
        }
        for ((i, _), rec) in durable.iter().zip(from_durable) {
            if let Some(slot) = out.get_mut(*i) {
                *slot = rec;
            }
        }
        Ok(out)
    }

    async fn insert(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<Inserted, StoreError> {
        self.store(namespace)
            .insert(namespace, key, record, now)
            .await
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.store(namespace).put(namespace, key, record, now).await
    }

    async fn take(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.store(namespace).take(namespace, key, now).await
    }

    async fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError> {
        self.store(namespace)
            .compare_and_swap(namespace, key, expected, record, now)
            .await
    }

    async fn compare_and_delete(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<DeleteOutcome, StoreError> {
        self.store(namespace)
            .compare_and_delete(namespace, key, expected, now)
            .await
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.store(namespace).delete(namespace, key, now).await
    }

    async fn list(
        &self,
        namespace: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        self.store(namespace).list(namespace, index, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn routes_each_namespace_to_its_store() {
        let durable = Arc::new(MemoryStore::new());
        let short = Arc::new(MemoryStore::new());
        let split = SplitStore::new(
            durable.clone(),
            short.clone(),
            SHORT_LIVED_NAMESPACES.iter().copied(),
        );
        let now = OffsetDateTime::now_utc();
        for ns in ["pending_login", "binding", "connection_lease", "connection"] {
            split
                .put(ns, "k", NewRecord::new(vec![1]), now)
                .await
                .unwrap();
        }
        assert_eq!(short.len(), 2);
        assert_eq!(durable.len(), 2);
        assert!(
            short
                .get("pending_login", "k", now)
                .await
                .unwrap()
                .is_some()
        );
        assert!(durable.get("binding", "k", now).await.unwrap().is_some());
        let got = split
            .get_many(
                &[
                    ("binding", "k"),
                    ("pending_login", "k"),
                    ("link_ticket", "k"),
                ],
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, true, false]
        );
        let shown = format!("{split:?}");
        assert!(shown.contains("pending_login"), "{shown}");
    }
}

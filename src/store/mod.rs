//! Persistence: the [`Store`] trait and [`MemoryStore`].
//!
//! # Shape
//!
//! The trait is *storage-shaped*: a handful of atomic primitives over opaque records, grouped in
//! namespaces. The broker owns the record formats (JSON, and a compact binary one for pending
//! logins) and the keys; a store only keeps bytes, a version, an optional expiry and an optional
//! secondary index. A new capability of the crate
//! adds namespaces, not trait methods, so a host's own store keeps compiling as the crate grows,
//! and a SQL backend maps the whole trait onto one table with a unique key and one index.
//!
//! The atomic operations are in the trait itself, never emulated from `get` + `put`: take-once
//! (pending logins, link tickets), insert-if-absent (bindings, replay ids, leases) and
//! compare-and-swap on a version (connection tokens).
//!
//! # What the crate stores
//!
//! [`NAMESPACES`] lists every namespace the crate writes, each with what a record holds,
//! whether it is [durable](Lifetime::Durable) or [short-lived](Lifetime::ShortLived) (written
//! with an expiry; [`SHORT_LIVED_NAMESPACES`] are their names), and its format
//! [version](Namespace::format):
//!
//! | namespace | lifetime | record |
//! |---|---|---|
//! | `provider` | durable | a tenant's provider application, client secret sealed |
//! | `binding` | durable | a provider account bound to a user |
//! | `tenant_policy` | durable | a tenant's authentication method, pending switch and privileged users (format 2) |
//! | `privileged_user` | durable | a user who keeps password sign-in under SSO: the layout before format 2 of `tenant_policy`, only read (and deleted when moved) |
//! | `connection` | durable | a mailbox connection, tokens sealed |
//! | `visitor_config` | durable | a visitor configuration and its key ring, keys sealed |
//! | `pending_login` | short-lived | a begun login (the login TTL) |
//! | `link_ticket` | short-lived | a link ticket (the link-ticket TTL) |
//! | `visitor_jti` | short-lived | the id of a used single-use visitor token (until it expires) |
//! | `connection_lease` | short-lived | a connection refresh lease (seconds) |
//!
//! # Contract
//!
//! Every method receives `now`, the broker's clock reading. A record whose `expires_at` is at or
//! before `now` is *absent*: `get`, `get_many`, `take` and `list` do not return it, `insert`
//! replaces it, and `compare_and_swap`, `compare_and_delete` and `delete` treat it as missing.
//! Expired records may be purged at any time.
//!
//! - **Versions never repeat for a key.** Every write (`insert`, `put`, `compare_and_swap`)
//!   gives the record a version greater than every version that (namespace, key) has ever had
//!   in this store, *including* records since deleted, taken or expired. A compare-and-swap can
//!   therefore only succeed against the very record its caller read: never against one deleted
//!   and created again in between. Versions are at least 1 and otherwise opaque: they need not be
//!   consecutive (a store-wide counter is the simple way to keep this, and what every store in
//!   this crate uses).
//! - `insert` is atomic insert-if-absent: of two concurrent inserts of one key, exactly one gets
//!   [`Inserted::Yes`] (with the version written).
//! - `take` is atomic get-and-delete: of two concurrent takes, at most one gets the record.
//! - `compare_and_swap` replaces the record only when its current version equals `expected`;
//!   `compare_and_delete` removes it only then. Of concurrent calls expecting one version, at
//!   most one succeeds; a caller that loses is told the version it lost to.
//! - `put` writes unconditionally.
//! - `get_many` answers, for each (namespace, key) asked, what `get` would: one round trip where
//!   a backend can, but not a snapshot across keys.
//! - **`list` is strongly consistent.** It returns the live records of a namespace whose `index`
//!   equals the given value, in key order, reflecting every write that completed before the
//!   call, on this node or any other sharing the store (read-your-writes and more): never a
//!   replica that may lag or a cache. The broker makes security decisions on it (whether SSO can
//!   be enforced, whether removing a binding locks a user out).
//! - A failure of the backing service is [`StoreError::Unavailable`]; the broker turns it into a
//!   refusal, never into a session, binding or token. A compare-and-swap update the broker
//!   loses to concurrent writers eight times in a row is [`StoreError::Contention`].
//!
//! [`conformance`](crate::testing::conformance) (feature `test-util`) is the suite that every
//! backend in this crate passes; run it against your own store.
//!
//! # The stores in this crate
//!
//! | store | feature | for |
//! |---|---|---|
//! | [`MemoryStore`] | always | one process, tests, examples |
//! | `SqlStore` (SQLite) | `sqlite` | one node, durable, no server |
//! | `SqlStore` (PostgreSQL) | `postgres` | several nodes on one database |
//! | `RedisStore` | `redis` | short-lived records shared by several nodes |
//! | [`SplitStore`] | always | one store for the short-lived namespaces (Redis), another for the rest (SQL) |
//!
//! # Implementing a Store
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Mutex;
//!
//! use cx_sso::store::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record, Store, StoreError};
//! use time::OffsetDateTime;
//!
//! /// A store over a BTreeMap; a real one would talk to the host's database.
//! #[derive(Debug, Default)]
//! struct MyStore {
//!     state: Mutex<State>,
//! }
//!
//! #[derive(Debug, Default)]
//! struct State {
//!     rows: BTreeMap<(String, String), Record>,
//!     /// The last version given out, store-wide: versions never repeat for a key.
//!     last_version: u64,
//! }
//!
//! impl State {
//!     fn live(&self, ns: &str, key: &str, now: OffsetDateTime) -> Option<&Record> {
//!         self.rows
//!             .get(&(ns.to_owned(), key.to_owned()))
//!             .filter(|r| r.expires_at.is_none_or(|e| e > now))
//!     }
//!     fn write(&mut self, ns: &str, key: &str, rec: NewRecord) -> u64 {
//!         self.last_version += 1;
//!         self.rows.insert((ns.to_owned(), key.to_owned()), rec.into_record(self.last_version));
//!         self.last_version
//!     }
//!     fn remove(&mut self, ns: &str, key: &str, now: OffsetDateTime) -> Option<Record> {
//!         let rec = self.rows.remove(&(ns.to_owned(), key.to_owned()))?;
//!         rec.expires_at.is_none_or(|e| e > now).then_some(rec)
//!     }
//! }
//!
//! impl MyStore {
//!     fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
//!         self.state.lock().map_err(|_| StoreError::unavailable("poisoned"))
//!     }
//! }
//!
//! #[async_trait::async_trait]
//! impl Store for MyStore {
//!     async fn get(&self, ns: &str, key: &str, now: OffsetDateTime)
//!         -> Result<Option<Record>, StoreError> {
//!         Ok(self.lock()?.live(ns, key, now).cloned())
//!     }
//!     async fn insert(&self, ns: &str, key: &str, rec: NewRecord, now: OffsetDateTime)
//!         -> Result<Inserted, StoreError> {
//!         let mut state = self.lock()?;
//!         if state.live(ns, key, now).is_some() {
//!             return Ok(Inserted::No);
//!         }
//!         let version = state.write(ns, key, rec);
//!         Ok(Inserted::Yes { version })
//!     }
//!     async fn put(&self, ns: &str, key: &str, rec: NewRecord, _now: OffsetDateTime)
//!         -> Result<u64, StoreError> {
//!         Ok(self.lock()?.write(ns, key, rec))
//!     }
//!     async fn take(&self, ns: &str, key: &str, now: OffsetDateTime)
//!         -> Result<Option<Record>, StoreError> {
//!         Ok(self.lock()?.remove(ns, key, now))
//!     }
//!     async fn compare_and_swap(&self, ns: &str, key: &str, expected: u64, rec: NewRecord,
//!         now: OffsetDateTime) -> Result<CasOutcome, StoreError> {
//!         let mut state = self.lock()?;
//!         match state.live(ns, key, now).map(|r| r.version) {
//!             None => Ok(CasOutcome::Missing),
//!             Some(current) if current != expected => Ok(CasOutcome::Conflict { current }),
//!             Some(_) => Ok(CasOutcome::Swapped { version: state.write(ns, key, rec) }),
//!         }
//!     }
//!     async fn compare_and_delete(&self, ns: &str, key: &str, expected: u64,
//!         now: OffsetDateTime) -> Result<DeleteOutcome, StoreError> {
//!         let mut state = self.lock()?;
//!         match state.live(ns, key, now).map(|r| r.version) {
//!             None => Ok(DeleteOutcome::Missing),
//!             Some(current) if current != expected => Ok(DeleteOutcome::Conflict { current }),
//!             Some(_) => {
//!                 state.remove(ns, key, now);
//!                 Ok(DeleteOutcome::Deleted)
//!             }
//!         }
//!     }
//!     async fn delete(&self, ns: &str, key: &str, now: OffsetDateTime)
//!         -> Result<bool, StoreError> {
//!         Ok(self.lock()?.remove(ns, key, now).is_some())
//!     }
//!     async fn list(&self, ns: &str, index: &str, now: OffsetDateTime)
//!         -> Result<Vec<(String, Record)>, StoreError> {
//!         let state = self.lock()?;
//!         Ok(state.rows.iter()
//!             .filter(|((n, _), r)| n == ns && r.index.as_deref() == Some(index))
//!             .filter(|(_, r)| r.expires_at.is_none_or(|e| e > now))
//!             .map(|((_, k), r)| (k.clone(), r.clone()))
//!             .collect())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // The suite a host runs in its own tests (feature `test-util`):
//! cx_sso::testing::conformance::run_all(&MyStore::default()).await;
//! # });
//!
//! let broker = cx_sso::Broker::builder()
//!     .store(MyStore::default())
//! #   .http_client(cx_sso::testing::FakeIdp::google())
//!     .public_base_url("https://cx.example.com")
//!     .build();
//! assert!(broker.is_ok());
//! ```

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

mod decoded;
mod memory;
pub(crate) mod records;
#[cfg(feature = "redis")]
mod redis;
mod split;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
pub(crate) use crate::crypto::key;
pub use crate::error::StoreError;
pub(crate) use decoded::DecodedCache;
pub use memory::MemoryStore;
pub use records::{Encoding, Lifetime, NAMESPACES, Namespace};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreOptions};
pub use split::{SHORT_LIVED_NAMESPACES, SplitStore};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::{ShortLivedCommits, SqlStore, SqlStoreOptions, SqliteSynchronous};

/// A stored record.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The payload, opaque to the store.
    pub value: Vec<u8>,
    /// Given by the store on every write: at least 1, and greater than every version this key
    /// had before in the store, deleted, taken and expired records included. Otherwise opaque.
    pub version: u64,
    /// When the record stops existing, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// The secondary key that [`Store::list`] selects on.
    pub index: Option<String>,
}

impl Debug for Record {
    // The value may hold encrypted tokens or hashes of secrets: only its size is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("value", &format_args!("[{} bytes]", self.value.len()))
            .field("version", &self.version)
            .field("expires_at", &self.expires_at)
            .field("index", &self.index)
            .finish()
    }
}

/// A record to write; the store assigns the version.
#[derive(Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// The payload.
    pub value: Vec<u8>,
    /// When the record stops existing, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// The secondary key that [`Store::list`] selects on.
    pub index: Option<String>,
}

impl Debug for NewRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRecord")
            .field("value", &format_args!("[{} bytes]", self.value.len()))
            .field("expires_at", &self.expires_at)
            .field("index", &self.index)
            .finish()
    }
}

impl NewRecord {
    /// A record with no expiry and no index.
    pub fn new(value: Vec<u8>) -> Self {
        Self {
            value,
            expires_at: None,
            index: None,
        }
    }

    /// Sets the expiry.
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the secondary index.
    pub fn index(mut self, index: impl Into<String>) -> Self {
        self.index = Some(index.into());
        self
    }

    /// The stored form of this record at `version`.
    pub fn into_record(self, version: u64) -> Record {
        Record {
            value: self.value,
            version,
            expires_at: self.expires_at,
            index: self.index,
        }
    }
}

/// Result of [`Store::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The record was written; it has `version` (so a later conditional write or delete needs
    /// no read first).
    Yes {
        /// The version of the record written.
        version: u64,
    },
    /// A live record already had that key; nothing was written.
    No,
}

/// Result of [`Store::compare_and_swap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// The record was replaced; it now has `version`.
    Swapped {
        /// The new version.
        version: u64,
    },
    /// The record's version was not the expected one; nothing was written.
    Conflict {
        /// The version found.
        current: u64,
    },
    /// There is no live record with that key; nothing was written.
    Missing,
}

/// Result of [`Store::compare_and_delete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The record was at the expected version and is now removed.
    Deleted,
    /// The record's version was not the expected one; nothing was removed.
    Conflict {
        /// The version found.
        current: u64,
    },
    /// There is no live record with that key.
    Missing,
}

/// Persistence for the broker. See the [module docs](self) for the contract and an example.
#[async_trait]
pub trait Store: Debug + Send + Sync + 'static {
    /// The live record at (`namespace`, `key`).
    async fn get(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError>;

    /// The live record at each (`namespace`, `key`) of `keys`, in the order asked: what
    /// [`get`](Self::get) would answer for each, not a snapshot across keys.
    ///
    /// The default asks [`get`](Self::get) once per key; a backend that can answer in one
    /// round trip should override it.
    async fn get_many(
        &self,
        keys: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for (namespace, key) in keys {
            out.push(self.get(namespace, key, now).await?);
        }
        Ok(out)
    }

    /// Writes `record` only if no live record has this key (atomic insert-if-absent).
    async fn insert(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<Inserted, StoreError>;

    /// Writes `record` whatever is there; returns its new version.
    async fn put(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Removes and returns the live record (atomic: at most one caller gets it).
    async fn take(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError>;

    /// Replaces the record only if its live version is `expected` (atomic).
    async fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError>;

    /// Removes the record only if its live version is `expected` (atomic): the delete of a
    /// record read before, which must not remove one written since.
    async fn compare_and_delete(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<DeleteOutcome, StoreError>;

    /// Removes the record whatever its version; returns whether a live one was there.
    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// The live records of `namespace` whose index is `index`, in key order (the byte order of
    /// the keys' UTF-8). Strongly consistent: it reflects every write completed before the call.
    async fn list(
        &self,
        namespace: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError>;
}

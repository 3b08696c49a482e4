//! [`SqlStore`]: the [`Store`] on SQLite (feature `sqlite`) or PostgreSQL (feature `postgres`),
//! through `sqlx`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record, Store, StoreError};
use crate::clock::Clock;
use crate::runtime::Sleeper;

mod migrate;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

/// The [`Store`] on a SQL database: SQLite (feature `sqlite`) for one node, PostgreSQL (feature
/// `postgres`) for several nodes sharing one database.
///
/// # Schema
///
/// One table, `cx_sso_records`, with the primary key (namespace, key) and a partial index on
/// (namespace, index, key) for [`list`](Store::list); namespaces, keys and indexes are kept as
/// their UTF-8 bytes, so every string round-trips exactly and `list` is in byte order whatever
/// the database's collation. Versions come from one store-wide counter (a sequence in
/// PostgreSQL, a counter row kept by triggers in SQLite): a version never repeats for a key.
/// [`migrate`](Self::migrate) creates all of it; its own bookkeeping table is
/// `cx_sso_schema_migrations` (not sqlx's `_sqlx_migrations`, which the host's own migrations may
/// use).
///
/// # One statement per operation
///
/// Every operation is one SQL statement, atomic on its own, with no transaction held across
/// round trips: `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired` for insert-if-absent,
/// `INSERT ... ON CONFLICT DO UPDATE` for put, `DELETE ... RETURNING` for take and delete,
/// `UPDATE ... WHERE version = $n` for compare-and-swap, `DELETE ... WHERE version = $n` for
/// compare-and-delete, one `SELECT` for get, get_many and list. On PostgreSQL the conditional
/// writes also read the current version in the same statement. When they do not apply, SQLite
/// (which has no writing `WITH` clause) reads the version it lost to with a second statement,
/// and so does PostgreSQL in the one case its statement saw a version older than the one it
/// lost to (a writer that committed while it waited). Versions never repeat, so that answer is
/// still one the record really had.
///
/// # Expiry
///
/// Expired rows are invisible at once and deleted by [`sweep_expired`](Self::sweep_expired),
/// which the host calls (from a scheduled job, say) or runs forever with
/// [`sweep_every`](Self::sweep_every) on the runtime of its choice: nothing is spawned behind
/// its back.
///
/// # Durability, per namespace
///
/// Each namespace of the crate is durable or short-lived ([`NAMESPACES`](super::NAMESPACES)
/// says which). Durable records (providers, bindings, policies, privileged users, connections
/// and their refresh tokens, visitor key rings) are always committed to the disk before a write
/// returns. The short-lived ones (pending logins, link tickets, visitor token ids, refresh
/// leases) are committed the same way unless [`ShortLivedCommits::Fast`] is chosen, **the
/// default**: then their commits return without waiting for the disk (SQLite
/// `synchronous=NORMAL` for that commit, PostgreSQL `synchronous_commit = off` on the
/// connections that write them). A namespace the crate does not know (a host's own) is durable.
///
/// While the database server (or, for SQLite, the machine) stays up, nothing changes: every
/// write is atomic, visible to every reader at once and single-use stays single-use (the
/// conformance suite runs with the default). A fast commit only shortens what survives a crash:
/// - **PostgreSQL**: a crash of the database server or its machine may undo the short-lived
///   writes of the last moments (at most about three `wal_writer_delay`s, 0.6 s by default);
///   the database stays consistent and durable writes are never lost. **SQLite**: a crash of
///   the process loses nothing (the WAL is written before a commit returns); a power loss or
///   kernel crash may undo the short-lived writes since the last durable commit or checkpoint.
/// - What an undone write costs: a **pending login or link ticket** begun just before may be
///   gone (the user starts again); one **used** just before may come back, until it expires
///   (the login TTL). A login that comes back cannot complete twice: its callback also needs the
///   browser binding cookie, and the authorization code in it was spent at the provider (which
///   refuses a second exchange) unless the crash came before the exchange, in which case the
///   first completion never happened. A link ticket that comes back can be redeemed again by the
///   user who already held it, for the same identity, within its TTL. A **visitor token id**
///   recorded just before may be forgotten, so that single-use visitor token can be verified
///   once more within its own (short) lifetime. A **refresh lease** may be forgotten, so two
///   nodes may refresh one connection at once; the compare-and-swap on the (durable) connection
///   record still keeps exactly one result.
/// - Choose [`ShortLivedCommits::Durable`] when a replay of a single-use visitor token or link
///   ticket after a database crash matters more than the commit rate (every write then waits for
///   the disk: on the quiet 2-core development VM about 1,000 logins/s on SQLite instead of
///   about 3,000, and about 2,100 on PostgreSQL instead of 2,400; see the README).
///
/// Other settings:
/// - **SQLite**: [`SqlStore::sqlite`] opens the file in WAL mode with `synchronous=FULL` for
///   durable writes and a 5-second `busy_timeout` (for other processes that open the file: the
///   writers of one store take turns on its one write connection and never wait on SQLite's
///   lock). `synchronous=NORMAL` for every write ([`SqliteSynchronous::Normal`]) extends the
///   power-loss risk above to durable records: a rotated refresh token could be lost (the
///   connection then needs consent again) and a deleted binding could come back. Keep the file
///   on a local disk, never on a network file system.
/// - **PostgreSQL**: keep the server's `synchronous_commit = on` (its default; the store turns
///   it off only on the connections that write short-lived records), and point every node at
///   the primary: [`list`](Store::list) must be strongly consistent, so never a read replica.
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), cx_sso::StoreError> {
/// use std::sync::Arc;
/// use cx_sso::store::SqlStore;
///
/// # #[cfg(feature = "postgres")] {
/// let store = SqlStore::postgres("postgres://cx@db.internal/cx").await?;
/// store.migrate().await?; // at start-up, or from a deploy step
///
/// // Delete expired rows once a minute, on the host's runtime.
/// # #[cfg(feature = "tokio")] {
/// let runtime = cx_sso::TokioRuntime::current().expect("inside a tokio runtime");
/// tokio::spawn(store.sweep_every(
///     Arc::new(cx_sso::SystemClock),
///     std::time::Duration::from_secs(60),
///     Arc::new(runtime),
/// ));
/// # }
///
/// let broker = cx_sso::Broker::builder()
///     .store(store)
///     .public_base_url("https://cx.example.com")
///     .build();
/// # }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlStore {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    #[cfg(feature = "postgres")]
    Postgres(postgres::Postgres),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::Sqlite),
}

impl fmt::Debug for SqlStore {
    // The pool's options hold the connection URL and its password: only the kind and the pool
    // size are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, size, idle) = match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => ("PostgreSQL", p.pool_sizes().0, p.pool_sizes().1),
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => ("SQLite", p.pool_sizes().0, p.pool_sizes().1),
        };
        f.debug_struct("SqlStore")
            .field("database", &kind)
            .field("connections", &size)
            .field("idle", &idle)
            .finish()
    }
}

/// SQLite's `synchronous` setting: what a commit waits for. See [`SqlStore`]'s durability notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SqliteSynchronous {
    /// Every commit reaches the disk before it returns: nothing committed is lost on a power
    /// failure. The default.
    #[default]
    Full,
    /// In WAL mode, commits are safe against a crash of the process but a power loss may undo
    /// the last ones. Faster.
    Normal,
}

/// Whether the commits of short-lived records wait for the disk. See [`SqlStore`]'s durability
/// notes for what each choice risks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ShortLivedCommits {
    /// They return without waiting for the disk (SQLite `synchronous=NORMAL` for that commit,
    /// PostgreSQL `synchronous_commit = off`): a crash of the database (for SQLite, of the
    /// machine) may undo the last ones. Durable records are not affected. The default.
    #[default]
    Fast,
    /// Like durable records: every commit reaches the disk before the write returns.
    Durable,
}

/// Connection settings for [`SqlStore::sqlite_with`] and [`SqlStore::postgres_with`].
#[derive(Debug, Clone)]
pub struct SqlStoreOptions {
    max_connections: u32,
    acquire_timeout: StdDuration,
    busy_timeout: StdDuration,
    synchronous: SqliteSynchronous,
    short_lived_commits: ShortLivedCommits,
    ping_after_idle: StdDuration,
}

impl Default for SqlStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: StdDuration::from_secs(10),
            ping_after_idle: StdDuration::from_secs(30),
            busy_timeout: StdDuration::from_secs(5),
            synchronous: SqliteSynchronous::Full,
            short_lived_commits: ShortLivedCommits::Fast,
        }
    }
}

impl SqlStoreOptions {
    /// The defaults: 8 connections, a 10-second wait for one, a ping before reusing one idle for
    /// 30 seconds or more, [`ShortLivedCommits::Fast`], and for SQLite a 5-second
    /// `busy_timeout` and `synchronous=FULL` for durable records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the commits of short-lived records (pending logins, link tickets, visitor token
    /// ids, refresh leases) wait for the disk; [`ShortLivedCommits::Fast`] by default.
    pub fn short_lived_commits(mut self, commits: ShortLivedCommits) -> Self {
        self.short_lived_commits = commits;
        self
    }

    /// The most connections a pool opens (at least 1). SQLite: the readers' pool (every write
    /// goes through one more connection of its own). PostgreSQL: each of its pools (one for
    /// reads and durable writes and, with [`ShortLivedCommits::Fast`], one for short-lived
    /// writes; connections are opened as they are needed).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long an operation waits for a free connection before failing with
    /// [`StoreError::Unavailable`].
    pub fn acquire_timeout(mut self, timeout: StdDuration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long a pooled connection may sit idle before it is checked (pinged, one round trip)
    /// on its way out of the pool; 30 seconds by default. A connection that fails the check is
    /// closed and another is used, so a database restart or a proxy that drops idle connections
    /// costs no failed operation after a quiet spell. A connection in steady use is not checked
    /// before it is used: a check before every statement would add a round trip to each (sqlx's
    /// default, which this replaces; sqlx still pings a connection as it goes back to the pool,
    /// off the caller's path). A connection that broke while in steady use (a restart under
    /// load) fails the one statement on it with [`StoreError::Unavailable`] and is not reused;
    /// until each dead connection has been met, up to `max_connections` operations per pool can
    /// fail so. `Duration::ZERO` checks every time.
    pub fn ping_after_idle(mut self, idle: StdDuration) -> Self {
        self.ping_after_idle = idle;
        self
    }

    /// SQLite: how long a write waits for another process's write to the same file to finish
    /// before failing with [`StoreError::Unavailable`] (the writers of one store take turns
    /// without it).
    pub fn sqlite_busy_timeout(mut self, timeout: StdDuration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// SQLite: what a commit of a durable record waits for (and of a short-lived one, with
    /// [`ShortLivedCommits::Durable`]).
    pub fn sqlite_synchronous(mut self, synchronous: SqliteSynchronous) -> Self {
        self.synchronous = synchronous;
        self
    }
}

impl SqlStore {
    /// Opens (creating it if needed) the SQLite database at `path` with the default
    /// [`SqlStoreOptions`]. Call [`migrate`](Self::migrate) before the first use.
    #[cfg(feature = "sqlite")]
    pub async fn sqlite(path: impl AsRef<std::path::Path>) -> Result<Self, StoreError> {
        Self::sqlite_with(path, SqlStoreOptions::default()).await
    }

    /// Opens (creating it if needed) the SQLite database at `path`, in WAL mode.
    #[cfg(feature = "sqlite")]
    pub async fn sqlite_with(
        path: impl AsRef<std::path::Path>,
        options: SqlStoreOptions,
    ) -> Result<Self, StoreError> {
        let sqlite = sqlite::Sqlite::connect(path.as_ref(), &options).await?;
        Ok(Self {
            backend: Backend::Sqlite(sqlite),
        })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user:password@host/db`) with
    /// the default [`SqlStoreOptions`]. Call [`migrate`](Self::migrate) before the first use.
    #[cfg(feature = "postgres")]
    pub async fn postgres(url: &str) -> Result<Self, StoreError> {
        Self::postgres_with(url, SqlStoreOptions::default()).await
    }

    /// Connects to the PostgreSQL database at `url`.
    #[cfg(feature = "postgres")]
    pub async fn postgres_with(url: &str, options: SqlStoreOptions) -> Result<Self, StoreError> {
        let pg = postgres::Postgres::connect(url, &options).await?;
        Ok(Self {
            backend: Backend::Postgres(pg),
        })
    }

    /// Creates or updates the schema: the migrations embedded in this crate that the database
    /// has not applied yet, in order, in one transaction, recorded in
    /// `cx_sso_schema_migrations`. Several nodes may call it at once (they take turns). Refuses
    /// a database migrated by a newer cx-sso.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => migrate::postgres(p.reader()).await,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.migrate().await,
        }
    }

    /// Deletes the rows expired at `now`, in batches; returns how many. Expired rows are already
    /// invisible to every operation: this only reclaims the space.
    pub async fn sweep_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => postgres::sweep_expired(p.reader(), micros(now)).await,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.sweep_expired(micros(now)).await,
        }
    }

    /// A future that calls [`sweep_expired`](Self::sweep_expired) with `clock`'s time, then
    /// waits `every` on `sleeper`, for ever. The host runs it on its runtime (with the `tokio`
    /// feature: `tokio::spawn(store.sweep_every(clock, every, Arc::new(TokioRuntime::current()?)))`,
    /// or through its [`Spawner`](crate::Spawner)) and drops or aborts it to stop. A failed
    /// sweep is logged (`tracing`, warn) and tried again next time.
    pub fn sweep_every(
        &self,
        clock: Arc<dyn Clock>,
        every: StdDuration,
        sleeper: Arc<dyn Sleeper>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let store = self.clone();
        async move {
            loop {
                match store.sweep_expired(clock.now()).await {
                    Ok(n) if n > 0 => tracing::debug!(rows = n, "cx-sso: swept expired records"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cx-sso: sweeping expired records failed"),
                }
                sleeper.sleep(every).await;
            }
        }
    }

    /// Closes every connection; operations afterwards fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => p.close().await,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.close().await,
        }
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn get(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => postgres::get(p.reader(), namespace, key, micros(now)).await,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.get(namespace, key, micros(now)).await,
        }
    }

    async fn get_many(
        &self,
        keys: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Record>>, StoreError> {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => postgres::get_many(p.reader(), keys, micros(now)).await,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.get_many(keys, micros(now)).await,
        }
    }

    async fn insert(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<Inserted, StoreError> {
        let row = Row::new(namespace, key, &record);
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => {
                postgres::insert(p.writer(row.namespace), &row, micros(now)).await
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.insert(&row, micros(now)).await,
        }
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        _now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let row = Row::new(namespace, key, &record);
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => postgres::put(p.writer(row.namespace), &row).await,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.put(&row).await,
        }
    }

    async fn take(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => {
                postgres::take(p.writer(namespace.as_bytes()), namespace, key, micros(now)).await
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.take(namespace, key, micros(now)).await,
        }
    }

    async fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError> {
        let row = Row::new(namespace, key, &record);
        let expected = db_version(expected);
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => {
                postgres::compare_and_swap(p.writer(row.namespace), &row, expected, micros(now))
                    .await
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.compare_and_swap(&row, expected, micros(now)).await,
        }
    }

    async fn compare_and_delete(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<DeleteOutcome, StoreError> {
        let expected = db_version(expected);
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => {
                postgres::compare_and_delete(
                    p.writer(namespace.as_bytes()),
                    namespace,
                    key,
                    expected,
                    micros(now),
                )
                .await
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => {
                p.compare_and_delete(namespace, key, expected, micros(now))
                    .await
            }
        }
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => {
                postgres::delete(p.writer(namespace.as_bytes()), namespace, key, micros(now)).await
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.delete(namespace, key, micros(now)).await,
        }
    }

    async fn list(
        &self,
        namespace: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => postgres::list(p.reader(), namespace, index, micros(now)).await,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => p.list(namespace, index, micros(now)).await,
        }
    }
}

/// The pool settings both databases share: the size and wait of `options`, and the idle check
/// of [`SqlStoreOptions::ping_after_idle`] in place of sqlx's ping before every acquire.
fn pool_options<DB: sqlx::Database>(options: &SqlStoreOptions) -> sqlx::pool::PoolOptions<DB> {
    let ping_after_idle = options.ping_after_idle;
    sqlx::pool::PoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= ping_after_idle {
                    // An error closes this connection; the pool then takes or opens another.
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Whether `namespace` is one the crate declares short-lived.
fn short_lived(namespace: &[u8]) -> bool {
    super::SHORT_LIVED_NAMESPACES
        .iter()
        .any(|n| n.as_bytes() == namespace)
}

/// The statements both databases run as they are: `$n` placeholders (which SQLite also takes)
/// and standard SQL. `$1` is the namespace and `$2` the key (or the index for [`LIST`]); `$3` is
/// `now` where the statement needs it.
mod statements {
    /// Whether a row is live at `$3`.
    #[cfg(feature = "sqlite")]
    pub(super) const LIVE: &str = "(expires_at IS NULL OR expires_at > $3)";
    pub(super) const GET: &str = "SELECT value, version, expires_at, index_key \
        FROM cx_sso_records WHERE namespace = $1 AND key = $2 \
        AND (expires_at IS NULL OR expires_at > $3)";
    /// Deletes an expired row too (purging it is allowed); the caller checks the expiry.
    pub(super) const TAKE: &str = "DELETE FROM cx_sso_records WHERE namespace = $1 AND key = $2 \
        RETURNING value, version, expires_at, index_key";
    pub(super) const DELETE: &str = "DELETE FROM cx_sso_records \
        WHERE namespace = $1 AND key = $2 RETURNING expires_at";
    pub(super) const CURRENT_VERSION: &str = "SELECT version FROM cx_sso_records \
        WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)";
    pub(super) const LIST: &str = "SELECT key, value, version, expires_at, index_key \
        FROM cx_sso_records WHERE namespace = $1 AND index_key = $2 \
        AND (expires_at IS NULL OR expires_at > $3) ORDER BY key";
}

/// A record as the statements bind it.
struct Row<'a> {
    namespace: &'a [u8],
    key: &'a [u8],
    value: &'a [u8],
    expires_at: Option<i64>,
    index: Option<&'a [u8]>,
}

impl<'a> Row<'a> {
    fn new(namespace: &'a str, key: &'a str, record: &'a NewRecord) -> Self {
        Self {
            namespace: namespace.as_bytes(),
            key: key.as_bytes(),
            value: &record.value,
            expires_at: record.expires_at.map(micros),
            index: record.index.as_deref().map(str::as_bytes),
        }
    }
}

/// Unix microseconds, rounded down (an expiry kept to the microsecond can only come earlier),
/// saturating far outside any real date.
fn micros(t: OffsetDateTime) -> i64 {
    let us = t.unix_timestamp_nanos().div_euclid(1000);
    i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX })
}

fn from_micros(us: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_err(|_| corrupt("expires_at is outside the dates this build can hold"))
}

/// A version as the database holds it (BIGINT). A `u64` above `i64::MAX` was never given out:
/// it becomes -1, which no row has, so a conditional write expecting it does not apply.
fn db_version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(-1)
}

fn version_from_db(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| corrupt("a version is not a positive number"))
}

fn corrupt(message: &str) -> StoreError {
    StoreError::Corrupt {
        message: message.to_owned(),
    }
}

/// Builds a [`Record`] from the columns every read returns.
fn record(
    value: Vec<u8>,
    version: i64,
    expires_at: Option<i64>,
    index: Option<Vec<u8>>,
) -> Result<Record, StoreError> {
    Ok(Record {
        value,
        version: version_from_db(version)?,
        expires_at: expires_at.map(from_micros).transpose()?,
        index: index.map(utf8).transpose()?,
    })
}

fn utf8(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| corrupt("a stored key or index is not UTF-8"))
}

fn live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|e| e > now)
}

/// How many expired rows one PostgreSQL sweep statement deletes, so that no statement holds
/// locks long (SQLite has its own, smaller: its one writer serialises every write).
#[cfg(feature = "postgres")]
const SWEEP_BATCH: i64 = 5000;

/// How often a statement that lost a serialization race (PostgreSQL `40001` under a stricter
/// isolation level, or a deadlock `40P01`) is tried again before the operation fails with
/// [`StoreError::Contention`]. Every statement is atomic, so a failed one changed nothing.
#[cfg(feature = "postgres")]
const RETRIES: usize = 3;

/// Whether `e` is a lost race inside the database that changed nothing: PostgreSQL
/// `serialization_failure` (40001, under a stricter isolation level than the default) or
/// `deadlock_detected` (40P01).
fn is_contention(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40001" | "40P01")),
        _ => false,
    }
}

/// Whether `e` is a unique constraint refusing a write.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Maps an error of `op` into a [`StoreError`], keeping the cause as the source; the message
/// names the operation only, never a key or a value. A lost race (contention, or a unique
/// violation where none can be expected) is [`StoreError::Contention`]; an answer of the wrong
/// shape is [`StoreError::Corrupt`]; anything else (connection, timeout, missing table) is
/// [`StoreError::Unavailable`].
fn store_error(op: &'static str, e: sqlx::Error) -> StoreError {
    if is_contention(&e) || is_unique_violation(&e) {
        return StoreError::Contention {
            message: format!("{op} lost a race inside the database"),
            source: Some(Box::new(e)),
        };
    }
    match e {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt {
            message: format!("{op}: the database answered in an unexpected shape: {e}"),
        },
        e => StoreError::unavailable_from(format!("{op} failed"), e),
    }
}

/// Runs `attempt`, again while it fails with contention (at most [`RETRIES`] times more): every
/// statement is atomic, so one that failed changed nothing.
#[cfg(feature = "postgres")]
async fn retrying<T, F, Fut>(op: &'static str, mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if tries < RETRIES && is_contention(&e) => tries += 1,
            Err(e) => return Err(store_error(op, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_down_and_round_trip() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(micros(t), 1_700_000_000_123_456);
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1).unwrap();
        assert_eq!(micros(before_epoch), -1, "rounded down, not toward zero");
        let whole = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(from_micros(micros(whole)).unwrap(), whole);
    }

    #[test]
    fn short_lived_namespaces_are_the_registrys() {
        for ns in crate::store::NAMESPACES {
            assert_eq!(
                short_lived(ns.name.as_bytes()),
                ns.lifetime == crate::store::Lifetime::ShortLived,
                "{}",
                ns.name
            );
        }
        assert!(
            !short_lived(b"a_hosts_own_namespace"),
            "unknown ones are durable"
        );
    }

    #[test]
    fn versions_beyond_the_database_range_match_nothing() {
        assert_eq!(db_version(u64::MAX), -1);
        assert_eq!(db_version(1 << 63), -1);
        assert_eq!(db_version(42), 42);
        assert!(version_from_db(0).is_err());
        assert!(version_from_db(-1).is_err());
        assert_eq!(version_from_db(7).unwrap(), 7);
    }
}

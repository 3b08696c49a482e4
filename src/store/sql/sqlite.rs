//! The SQLite statements of [`SqlStore`](super::SqlStore).
//!
//! **One writer.** Every write goes through one connection (a pool of one), so the writers of a
//! store queue in the pool, first come first served, and never meet SQLite's write lock held
//! by another connection of the same store. With several writing connections they would:
//! SQLite then makes the loser poll (sleeps of 1 to 100 ms) until `busy_timeout`, and under
//! load a writer can lose every poll to the others until it fails with "database is locked".
//! Reads use a pool of their own (WAL lets them run beside the writer). `busy_timeout` is left
//! for other processes that open the same file.
//!
//! Every write statement takes the write lock when it starts, so each one is atomic and
//! serialised with every other writer. A new version is `last + 1` of the counter row, which
//! the migration's triggers move forward within the same statement.
//!
//! **Durability per namespace.** The writer's `synchronous` setting is the durable one
//! ([`SqlStoreOptions::sqlite_synchronous`], `FULL` by default), switched to `NORMAL` before a
//! write to a short-lived namespace when [`ShortLivedCommits::Fast`] is chosen, and back before
//! the next durable write. In WAL mode a `FULL` commit syncs the log up to itself, so it also
//! makes every earlier `NORMAL` commit durable. The sweep's batches commit at `NORMAL` too: losing one
//! in a crash only brings back expired rows.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteRow};
use sqlx::{Executor as _, Row as _, Sqlite as Db, SqliteConnection};

use super::{
    Row, ShortLivedCommits, SqlStoreOptions, SqliteSynchronous, live, record, short_lived,
    statements as st, store_error, utf8, version_from_db,
};
use crate::store::{CasOutcome, DeleteOutcome, Inserted, Record, StoreError};

const NEXT_VERSION: &str = "(SELECT last + 1 FROM cx_sso_version_counter WHERE id = 1)";
/// SQLite's default limit on bound parameters is 32766; three per key in `get_many`.
const GET_MANY_CHUNK: usize = 1000;
/// How many expired rows one sweep batch deletes. Every write of the store waits while a batch
/// runs (one writer), so a batch is kept to a few milliseconds: about 10 µs per row in a
/// release build, more when the disk is busy.
const SWEEP_BATCH: i64 = 1000;

/// The two pools of one SQLite store and the writer's `synchronous` state.
#[derive(Clone)]
pub(super) struct Sqlite {
    read: SqlitePool,
    /// One connection: every write.
    write: SqlitePool,
    /// Whether short-lived writes switch the writer to `synchronous=NORMAL`.
    switch: bool,
    durable_pragma: &'static str,
    /// True when the writer may be at `synchronous=NORMAL`: set before it is switched there,
    /// cleared only once it is back at the durable setting (and when a new writer connection,
    /// which starts at the durable setting, is opened). So a durable write never finds it false
    /// while the connection is at `NORMAL`, even if a switch was cancelled half-way.
    relaxed: Arc<AtomicBool>,
}

impl Sqlite {
    pub(super) async fn connect(
        path: &Path,
        options: &SqlStoreOptions,
    ) -> Result<Self, StoreError> {
        let synchronous = match options.synchronous {
            SqliteSynchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
            SqliteSynchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
        };
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(options.busy_timeout);
        let relaxed = Arc::new(AtomicBool::new(false));
        let fresh = relaxed.clone();
        // The writer first: it creates the file and puts it in WAL mode.
        let write = super::pool_options::<sqlx::Sqlite>(options)
            .max_connections(1)
            .after_connect(move |_, _| {
                fresh.store(false, Ordering::SeqCst);
                Box::pin(async { Ok(()) })
            })
            .connect_with(connect.clone())
            .await
            .map_err(|e| store_error("connect to SQLite", e))?;
        let read = super::pool_options::<sqlx::Sqlite>(options)
            .connect_with(connect)
            .await
            .map_err(|e| store_error("connect to SQLite", e))?;
        Ok(Self {
            read,
            write,
            switch: options.synchronous == SqliteSynchronous::Full
                && options.short_lived_commits == ShortLivedCommits::Fast,
            durable_pragma: match options.synchronous {
                SqliteSynchronous::Full => "PRAGMA synchronous = FULL",
                SqliteSynchronous::Normal => "PRAGMA synchronous = NORMAL",
            },
            relaxed,
        })
    }

    pub(super) fn pool_sizes(&self) -> (u32, usize) {
        (
            self.read.size() + self.write.size(),
            self.read.num_idle() + self.write.num_idle(),
        )
    }

    pub(super) async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        super::migrate::sqlite(&self.write).await
    }

    /// The writer, at the `synchronous` setting a write to `namespace` needs.
    async fn writer(
        &self,
        op: &'static str,
        namespace: &[u8],
    ) -> Result<PoolConnection<Db>, StoreError> {
        let relax = self.switch && short_lived(namespace);
        self.writer_at(op, relax).await
    }

    /// The writer, at `synchronous=NORMAL` when `relax`, else at the durable setting.
    async fn writer_at(
        &self,
        op: &'static str,
        relax: bool,
    ) -> Result<PoolConnection<Db>, StoreError> {
        let mut conn = self.write.acquire().await.map_err(|e| store_error(op, e))?;
        let relaxed = self.relaxed.load(Ordering::SeqCst);
        if relax && !relaxed {
            self.relaxed.store(true, Ordering::SeqCst);
            conn.execute("PRAGMA synchronous = NORMAL")
                .await
                .map_err(|e| store_error(op, e))?;
        } else if !relax && relaxed {
            conn.execute(self.durable_pragma)
                .await
                .map_err(|e| store_error(op, e))?;
            self.relaxed.store(false, Ordering::SeqCst);
        }
        Ok(conn)
    }

    pub(super) async fn get(
        &self,
        namespace: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(st::GET)
            .bind(namespace.as_bytes())
            .bind(key.as_bytes())
            .bind(now)
            .fetch_optional(&self.read)
            .await
            .map_err(|e| store_error("get", e))?;
        row.map(|r| read(&r, "get")).transpose()
    }

    pub(super) async fn get_many(
        &self,
        keys: &[(&str, &str)],
        now: i64,
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let mut out: Vec<Option<Record>> = vec![None; keys.len()];
        for (chunk_no, chunk) in keys.chunks(GET_MANY_CHUNK).enumerate() {
            let base = chunk_no * GET_MANY_CHUNK;
            // (?1) is `now`; then (position, namespace, key) per asked key.
            let mut values = String::with_capacity(chunk.len() * 16);
            for i in 0..chunk.len() {
                if i > 0 {
                    values.push_str(", ");
                }
                let p = 2 + 3 * i;
                values.push_str(&format!("(?{}, ?{}, ?{})", p, p + 1, p + 2));
            }
            let sql = format!(
                "WITH asked (pos, ns, k) AS (VALUES {values}) \
                 SELECT asked.pos, r.value, r.version, r.expires_at, r.index_key \
                 FROM asked JOIN cx_sso_records r ON r.namespace = asked.ns AND r.key = asked.k \
                 WHERE r.expires_at IS NULL OR r.expires_at > ?1"
            );
            let mut q = sqlx::query(&sql).bind(now);
            for (i, (namespace, key)) in chunk.iter().enumerate() {
                q = q
                    .bind(i64::try_from(i).unwrap_or(i64::MAX))
                    .bind(namespace.as_bytes())
                    .bind(key.as_bytes());
            }
            let rows = q
                .fetch_all(&self.read)
                .await
                .map_err(|e| store_error("get_many", e))?;
            for row in rows {
                let pos: i64 = row.try_get("pos").map_err(|e| store_error("get_many", e))?;
                let rec = read(&row, "get_many")?;
                let slot = usize::try_from(pos)
                    .ok()
                    .and_then(|p| out.get_mut(base + p))
                    .ok_or_else(|| {
                        super::corrupt("get_many: the database answered a key not asked")
                    })?;
                *slot = Some(rec);
            }
        }
        Ok(out)
    }

    pub(super) async fn insert(&self, row: &Row<'_>, now: i64) -> Result<Inserted, StoreError> {
        // Over an expired row the upsert replaces it; over a live one its WHERE is false and
        // nothing is written (no row returned).
        let sql = format!(
            "INSERT INTO cx_sso_records (namespace, key, value, version, expires_at, index_key) \
             VALUES ($1, $2, $4, {NEXT_VERSION}, $5, $6) \
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, \
             version = excluded.version, expires_at = excluded.expires_at, \
             index_key = excluded.index_key \
             WHERE cx_sso_records.expires_at IS NOT NULL AND cx_sso_records.expires_at <= $3 \
             RETURNING version"
        );
        let mut w = self.writer("insert", row.namespace).await?;
        let version: Option<i64> = sqlx::query_scalar(&sql)
            .bind(row.namespace)
            .bind(row.key)
            .bind(now)
            .bind(row.value)
            .bind(row.expires_at)
            .bind(row.index)
            .fetch_optional(&mut *w)
            .await
            .map_err(|e| store_error("insert", e))?;
        match version {
            Some(version) => Ok(Inserted::Yes {
                version: version_from_db(version)?,
            }),
            None => Ok(Inserted::No),
        }
    }

    pub(super) async fn put(&self, row: &Row<'_>) -> Result<u64, StoreError> {
        let sql = format!(
            "INSERT INTO cx_sso_records (namespace, key, value, version, expires_at, index_key) \
             VALUES ($1, $2, $3, {NEXT_VERSION}, $4, $5) \
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, \
             version = excluded.version, expires_at = excluded.expires_at, \
             index_key = excluded.index_key \
             RETURNING version"
        );
        let mut w = self.writer("put", row.namespace).await?;
        let version: i64 = sqlx::query_scalar(&sql)
            .bind(row.namespace)
            .bind(row.key)
            .bind(row.value)
            .bind(row.expires_at)
            .bind(row.index)
            .fetch_one(&mut *w)
            .await
            .map_err(|e| store_error("put", e))?;
        version_from_db(version)
    }

    pub(super) async fn take(
        &self,
        namespace: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<Record>, StoreError> {
        let mut w = self.writer("take", namespace.as_bytes()).await?;
        let row = sqlx::query(st::TAKE)
            .bind(namespace.as_bytes())
            .bind(key.as_bytes())
            .fetch_optional(&mut *w)
            .await
            .map_err(|e| store_error("take", e))?;
        let Some(row) = row else { return Ok(None) };
        let rec = read(&row, "take")?;
        // An expired row is deleted too (purging it is allowed) but not returned.
        Ok(live(rec.expires_at.map(super::micros), now).then_some(rec))
    }

    /// The live version at (namespace, key), for a conditional write that did not apply, read
    /// on the writer that just failed to apply it (so no write came in between).
    async fn current_version(
        conn: &mut SqliteConnection,
        op: &'static str,
        namespace: &[u8],
        key: &[u8],
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let v: Option<i64> = sqlx::query_scalar(st::CURRENT_VERSION)
            .bind(namespace)
            .bind(key)
            .bind(now)
            .fetch_optional(conn)
            .await
            .map_err(|e| store_error(op, e))?;
        v.map(version_from_db).transpose()
    }

    pub(super) async fn compare_and_swap(
        &self,
        row: &Row<'_>,
        expected: i64,
        now: i64,
    ) -> Result<CasOutcome, StoreError> {
        let op = "compare_and_swap";
        let sql = format!(
            "UPDATE cx_sso_records SET value = $5, version = {NEXT_VERSION}, expires_at = $6, \
             index_key = $7 WHERE namespace = $1 AND key = $2 AND {} AND version = $4 \
             RETURNING version",
            st::LIVE
        );
        let mut w = self.writer(op, row.namespace).await?;
        let swapped: Option<i64> = sqlx::query_scalar(&sql)
            .bind(row.namespace)
            .bind(row.key)
            .bind(now)
            .bind(expected)
            .bind(row.value)
            .bind(row.expires_at)
            .bind(row.index)
            .fetch_optional(&mut *w)
            .await
            .map_err(|e| store_error(op, e))?;
        if let Some(version) = swapped {
            return Ok(CasOutcome::Swapped {
                version: version_from_db(version)?,
            });
        }
        Ok(
            match Self::current_version(&mut w, op, row.namespace, row.key, now).await? {
                None => CasOutcome::Missing,
                Some(current) => CasOutcome::Conflict { current },
            },
        )
    }

    pub(super) async fn compare_and_delete(
        &self,
        namespace: &str,
        key: &str,
        expected: i64,
        now: i64,
    ) -> Result<DeleteOutcome, StoreError> {
        let op = "compare_and_delete";
        let (ns, k) = (namespace.as_bytes(), key.as_bytes());
        let sql = format!(
            "DELETE FROM cx_sso_records WHERE namespace = $1 AND key = $2 AND {} \
             AND version = $4 RETURNING version",
            st::LIVE
        );
        let mut w = self.writer(op, ns).await?;
        let deleted: Option<i64> = sqlx::query_scalar(&sql)
            .bind(ns)
            .bind(k)
            .bind(now)
            .bind(expected)
            .fetch_optional(&mut *w)
            .await
            .map_err(|e| store_error(op, e))?;
        if deleted.is_some() {
            return Ok(DeleteOutcome::Deleted);
        }
        Ok(match Self::current_version(&mut w, op, ns, k, now).await? {
            None => DeleteOutcome::Missing,
            Some(current) => DeleteOutcome::Conflict { current },
        })
    }

    pub(super) async fn delete(
        &self,
        namespace: &str,
        key: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut w = self.writer("delete", namespace.as_bytes()).await?;
        let expires: Option<Option<i64>> = sqlx::query_scalar(st::DELETE)
            .bind(namespace.as_bytes())
            .bind(key.as_bytes())
            .fetch_optional(&mut *w)
            .await
            .map_err(|e| store_error("delete", e))?;
        Ok(expires.is_some_and(|e| live(e, now)))
    }

    pub(super) async fn list(
        &self,
        namespace: &str,
        index: &str,
        now: i64,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        let rows = sqlx::query(st::LIST)
            .bind(namespace.as_bytes())
            .bind(index.as_bytes())
            .bind(now)
            .fetch_all(&self.read)
            .await
            .map_err(|e| store_error("list", e))?;
        rows.iter()
            .map(|row| {
                let key: Vec<u8> = row.try_get("key").map_err(|e| store_error("list", e))?;
                let rec = read(row, "list")?;
                Ok((utf8(key)?, rec))
            })
            .collect()
    }

    /// Deletes the expired rows in batches of [`SWEEP_BATCH`] rows, found by the expiry index,
    /// each a short write of its own that takes the writer again, so the store's other writes
    /// (sign-ins) wait for one batch at most, not for the whole sweep.
    ///
    /// The batches commit at `synchronous=NORMAL` (no fsync of their own): a batch lost in a
    /// crash only brings back rows that are expired, so invisible to every operation, and the
    /// next sweep deletes them again. The next durable write switches the writer back first,
    /// and its commit syncs the log up to itself, the batches before it included.
    pub(super) async fn sweep_expired(&self, now: i64) -> Result<u64, StoreError> {
        let op = "sweep_expired";
        let mut total = 0;
        loop {
            let mut w = self.writer_at(op, true).await?;
            let done = sqlx::query(
                "DELETE FROM cx_sso_records WHERE (namespace, key) IN ( \
                 SELECT namespace, key FROM cx_sso_records \
                 WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2)",
            )
            .bind(now)
            .bind(SWEEP_BATCH)
            .execute(&mut *w)
            .await
            .map_err(|e| store_error(op, e))?
            .rows_affected();
            // Back in the pool before the next batch asks for it: a write already waiting
            // (the pool serves its waiters in turn) goes first.
            drop(w);
            total += done;
            if done < u64::try_from(SWEEP_BATCH).unwrap_or(u64::MAX) {
                return Ok(total);
            }
        }
    }
}

/// The record in the `value, version, expires_at, index_key` columns of `row`.
fn read(row: &SqliteRow, op: &'static str) -> Result<Record, StoreError> {
    let e = |e| store_error(op, e);
    record(
        row.try_get("value").map_err(e)?,
        row.try_get("version").map_err(e)?,
        row.try_get("expires_at").map_err(e)?,
        row.try_get("index_key").map_err(e)?,
    )
}

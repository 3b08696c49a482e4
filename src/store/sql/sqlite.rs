//! The SQLite statements of [`SqlStore`](super::SqlStore).
//!
//! Every statement that writes takes SQLite's write lock when it starts, so each one is atomic
//! and serialised with every other writer; `busy_timeout` is how long it waits for the lock.
//! A new version is `last + 1` of the counter row, which the migration's triggers move forward
//! within the same statement.

use std::path::Path;

use sqlx::Row as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};

use super::{
    Row, SWEEP_BATCH, SqlStoreOptions, SqliteSynchronous, live, record, retrying, store_error,
    utf8, version_from_db,
};
use crate::store::{CasOutcome, DeleteOutcome, Inserted, Record, StoreError};

const COLUMNS: &str = "value, version, expires_at, index_key";
const LIVE: &str = "(expires_at IS NULL OR expires_at > ?3)";
const NEXT_VERSION: &str = "(SELECT last + 1 FROM cx_sso_version_counter WHERE id = 1)";
/// SQLite's default limit on bound parameters is 32766; three per key in `get_many`.
const GET_MANY_CHUNK: usize = 1000;

pub(super) async fn connect(
    path: &Path,
    options: &SqlStoreOptions,
) -> Result<SqlitePool, StoreError> {
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match options.synchronous {
            SqliteSynchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
            SqliteSynchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
        })
        .busy_timeout(options.busy_timeout);
    SqlitePoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(|e| store_error("connect to SQLite", e))
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

pub(super) async fn get(
    pool: &SqlitePool,
    namespace: &str,
    key: &str,
    now: i64,
) -> Result<Option<Record>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM cx_sso_records WHERE namespace = ?1 AND key = ?2 AND {LIVE}"
    );
    let row = retrying("get", || {
        sqlx::query(&sql)
            .bind(namespace.as_bytes())
            .bind(key.as_bytes())
            .bind(now)
            .fetch_optional(pool)
    })
    .await?;
    row.map(|r| read(&r, "get")).transpose()
}

pub(super) async fn get_many(
    pool: &SqlitePool,
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
        let rows = retrying("get_many", || {
            let mut q = sqlx::query(&sql).bind(now);
            for (i, (namespace, key)) in chunk.iter().enumerate() {
                q = q
                    .bind(i64::try_from(i).unwrap_or(i64::MAX))
                    .bind(namespace.as_bytes())
                    .bind(key.as_bytes());
            }
            q.fetch_all(pool)
        })
        .await?;
        for row in rows {
            let pos: i64 = row.try_get("pos").map_err(|e| store_error("get_many", e))?;
            let rec = read(&row, "get_many")?;
            let slot = usize::try_from(pos)
                .ok()
                .and_then(|p| out.get_mut(base + p))
                .ok_or_else(|| super::corrupt("get_many: the database answered a key not asked"))?;
            *slot = Some(rec);
        }
    }
    Ok(out)
}

pub(super) async fn insert(
    pool: &SqlitePool,
    row: &Row<'_>,
    now: i64,
) -> Result<Inserted, StoreError> {
    // Over an expired row the upsert replaces it; over a live one its WHERE is false and
    // nothing is written (no row returned).
    let sql = format!(
        "INSERT INTO cx_sso_records (namespace, key, value, version, expires_at, index_key) \
         VALUES (?1, ?2, ?4, {NEXT_VERSION}, ?5, ?6) \
         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, \
         version = excluded.version, expires_at = excluded.expires_at, \
         index_key = excluded.index_key \
         WHERE cx_sso_records.expires_at IS NOT NULL AND cx_sso_records.expires_at <= ?3 \
         RETURNING version"
    );
    let result = retrying("insert", || {
        sqlx::query(&sql)
            .bind(row.namespace)
            .bind(row.key)
            .bind(now)
            .bind(row.value)
            .bind(row.expires_at)
            .bind(row.index)
            .fetch_optional(pool)
    })
    .await?;
    Ok(if result.is_some() {
        Inserted::Yes
    } else {
        Inserted::No
    })
}

pub(super) async fn put(pool: &SqlitePool, row: &Row<'_>) -> Result<u64, StoreError> {
    let sql = format!(
        "INSERT INTO cx_sso_records (namespace, key, value, version, expires_at, index_key) \
         VALUES (?1, ?2, ?3, {NEXT_VERSION}, ?4, ?5) \
         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, \
         version = excluded.version, expires_at = excluded.expires_at, \
         index_key = excluded.index_key \
         RETURNING version"
    );
    let version: i64 = retrying("put", || {
        sqlx::query_scalar(&sql)
            .bind(row.namespace)
            .bind(row.key)
            .bind(row.value)
            .bind(row.expires_at)
            .bind(row.index)
            .fetch_one(pool)
    })
    .await?;
    version_from_db(version)
}

pub(super) async fn take(
    pool: &SqlitePool,
    namespace: &str,
    key: &str,
    now: i64,
) -> Result<Option<Record>, StoreError> {
    // An expired row is deleted too (purging it is allowed) but not returned.
    let sql =
        format!("DELETE FROM cx_sso_records WHERE namespace = ?1 AND key = ?2 RETURNING {COLUMNS}");
    let row = retrying("take", || {
        sqlx::query(&sql)
            .bind(namespace.as_bytes())
            .bind(key.as_bytes())
            .fetch_optional(pool)
    })
    .await?;
    let Some(row) = row else { return Ok(None) };
    let rec = read(&row, "take")?;
    Ok(live(rec.expires_at.map(super::micros), now).then_some(rec))
}

/// The live version at (namespace, key), for a conditional write that did not apply.
async fn current_version(
    pool: &SqlitePool,
    op: &'static str,
    namespace: &[u8],
    key: &[u8],
    now: i64,
) -> Result<Option<u64>, StoreError> {
    let sql =
        format!("SELECT version FROM cx_sso_records WHERE namespace = ?1 AND key = ?2 AND {LIVE}");
    let v: Option<i64> = retrying(op, || {
        sqlx::query_scalar(&sql)
            .bind(namespace)
            .bind(key)
            .bind(now)
            .fetch_optional(pool)
    })
    .await?;
    v.map(version_from_db).transpose()
}

pub(super) async fn compare_and_swap(
    pool: &SqlitePool,
    row: &Row<'_>,
    expected: i64,
    now: i64,
) -> Result<CasOutcome, StoreError> {
    let sql = format!(
        "UPDATE cx_sso_records SET value = ?5, version = {NEXT_VERSION}, expires_at = ?6, \
         index_key = ?7 WHERE namespace = ?1 AND key = ?2 AND {LIVE} AND version = ?4 \
         RETURNING version"
    );
    let swapped: Option<i64> = retrying("compare_and_swap", || {
        sqlx::query_scalar(&sql)
            .bind(row.namespace)
            .bind(row.key)
            .bind(now)
            .bind(expected)
            .bind(row.value)
            .bind(row.expires_at)
            .bind(row.index)
            .fetch_optional(pool)
    })
    .await?;
    if let Some(version) = swapped {
        return Ok(CasOutcome::Swapped {
            version: version_from_db(version)?,
        });
    }
    Ok(
        match current_version(pool, "compare_and_swap", row.namespace, row.key, now).await? {
            None => CasOutcome::Missing,
            Some(current) => CasOutcome::Conflict { current },
        },
    )
}

pub(super) async fn compare_and_delete(
    pool: &SqlitePool,
    namespace: &str,
    key: &str,
    expected: i64,
    now: i64,
) -> Result<DeleteOutcome, StoreError> {
    let sql = format!(
        "DELETE FROM cx_sso_records WHERE namespace = ?1 AND key = ?2 AND {LIVE} \
         AND version = ?4 RETURNING version"
    );
    let deleted: Option<i64> = retrying("compare_and_delete", || {
        sqlx::query_scalar(&sql)
            .bind(namespace.as_bytes())
            .bind(key.as_bytes())
            .bind(now)
            .bind(expected)
            .fetch_optional(pool)
    })
    .await?;
    if deleted.is_some() {
        return Ok(DeleteOutcome::Deleted);
    }
    let (ns, k) = (namespace.as_bytes(), key.as_bytes());
    Ok(
        match current_version(pool, "compare_and_delete", ns, k, now).await? {
            None => DeleteOutcome::Missing,
            Some(current) => DeleteOutcome::Conflict { current },
        },
    )
}

pub(super) async fn delete(
    pool: &SqlitePool,
    namespace: &str,
    key: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let expires: Option<Option<i64>> = retrying("delete", || {
        sqlx::query_scalar(
            "DELETE FROM cx_sso_records WHERE namespace = ?1 AND key = ?2 RETURNING expires_at",
        )
        .bind(namespace.as_bytes())
        .bind(key.as_bytes())
        .fetch_optional(pool)
    })
    .await?;
    Ok(expires.is_some_and(|e| live(e, now)))
}

pub(super) async fn list(
    pool: &SqlitePool,
    namespace: &str,
    index: &str,
    now: i64,
) -> Result<Vec<(String, Record)>, StoreError> {
    let sql = format!(
        "SELECT key, {COLUMNS} FROM cx_sso_records \
         WHERE namespace = ?1 AND index_key = ?2 AND {LIVE} ORDER BY key"
    );
    let rows = retrying("list", || {
        sqlx::query(&sql)
            .bind(namespace.as_bytes())
            .bind(index.as_bytes())
            .bind(now)
            .fetch_all(pool)
    })
    .await?;
    rows.iter()
        .map(|row| {
            let key: Vec<u8> = row.try_get("key").map_err(|e| store_error("list", e))?;
            let rec = read(row, "list")?;
            Ok((utf8(key)?, rec))
        })
        .collect()
}

pub(super) async fn sweep_expired(pool: &SqlitePool, now: i64) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let done = retrying("sweep_expired", || {
            sqlx::query(
                "DELETE FROM cx_sso_records WHERE (namespace, key) IN ( \
                 SELECT namespace, key FROM cx_sso_records \
                 WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2)",
            )
            .bind(now)
            .bind(SWEEP_BATCH)
            .execute(pool)
        })
        .await?
        .rows_affected();
        total += done;
        if done < u64::try_from(SWEEP_BATCH).unwrap_or(u64::MAX) {
            return Ok(total);
        }
    }
}

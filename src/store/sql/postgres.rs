//! The PostgreSQL statements of [`SqlStore`](super::SqlStore).
//!
//! Each operation is one statement in its own implicit transaction at the default READ
//! COMMITTED isolation: `INSERT ... ON CONFLICT`, `UPDATE`/`DELETE ... WHERE version = $n` lock
//! the row and re-check their condition on its latest committed version, so two nodes racing
//! on one key serialise there. A new version is `nextval` of one sequence, which is never
//! rolled back or reused. It is drawn in the `SET` of the update, which runs once the row is
//! locked: a writer that waited for another draws after it, so versions grow per key in commit
//! order (a value drawn in `VALUES` is only used by a new row, and wasted otherwise).

use sqlx::Row as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgRow};

use super::{
    Row, SWEEP_BATCH, ShortLivedCommits, SqlStoreOptions, live, record, retrying, short_lived,
    statements as st, store_error, utf8, version_from_db,
};
use crate::store::{CasOutcome, DeleteOutcome, Inserted, Record, StoreError};

const NEXT_VERSION: &str = "nextval('cx_sso_record_version')";

/// The pools of one PostgreSQL store.
#[derive(Clone)]
pub(super) struct Postgres {
    /// Reads and durable writes, at the server's `synchronous_commit` (keep it `on`).
    main: PgPool,
    /// With [`ShortLivedCommits::Fast`]: the writes to short-lived namespaces, on connections
    /// opened with `synchronous_commit = off` (their commits return before the WAL is flushed;
    /// every other property of the transaction is unchanged).
    fast: Option<PgPool>,
}

impl Postgres {
    pub(super) async fn connect(url: &str, options: &SqlStoreOptions) -> Result<Self, StoreError> {
        let connect: PgConnectOptions = url
            .parse()
            .map_err(|e| store_error("parse the PostgreSQL URL", e))?;
        let pool = |connect: PgConnectOptions| {
            super::pool_options::<sqlx::Postgres>(options).connect_with(connect)
        };
        let main = pool(connect.clone())
            .await
            .map_err(|e| store_error("connect to PostgreSQL", e))?;
        let fast = match options.short_lived_commits {
            ShortLivedCommits::Durable => None,
            ShortLivedCommits::Fast => Some(
                pool(connect.options([("synchronous_commit", "off")]))
                    .await
                    .map_err(|e| store_error("connect to PostgreSQL", e))?,
            ),
        };
        Ok(Self { main, fast })
    }

    /// The pool that reads.
    pub(super) fn reader(&self) -> &PgPool {
        &self.main
    }

    /// The pool that writes to `namespace`.
    pub(super) fn writer(&self, namespace: &[u8]) -> &PgPool {
        match &self.fast {
            Some(fast) if short_lived(namespace) => fast,
            _ => &self.main,
        }
    }

    pub(super) fn pool_sizes(&self) -> (u32, usize) {
        let (fast_size, fast_idle) = self
            .fast
            .as_ref()
            .map_or((0, 0), |f| (f.size(), f.num_idle()));
        (
            self.main.size() + fast_size,
            self.main.num_idle() + fast_idle,
        )
    }

    pub(super) async fn close(&self) {
        if let Some(fast) = &self.fast {
            fast.close().await;
        }
        self.main.close().await;
    }
}

/// The record in the `value, version, expires_at, index_key` columns of `row`.
fn read(row: &PgRow, op: &'static str) -> Result<Record, StoreError> {
    let e = |e| store_error(op, e);
    record(
        row.try_get("value").map_err(e)?,
        row.try_get("version").map_err(e)?,
        row.try_get("expires_at").map_err(e)?,
        row.try_get("index_key").map_err(e)?,
    )
}

pub(super) async fn get(
    pool: &PgPool,
    namespace: &str,
    key: &str,
    now: i64,
) -> Result<Option<Record>, StoreError> {
    let row = retrying("get", || {
        sqlx::query(st::GET)
            .bind(namespace.as_bytes())
            .bind(key.as_bytes())
            .bind(now)
            .fetch_optional(pool)
    })
    .await?;
    row.map(|r| read(&r, "get")).transpose()
}

pub(super) async fn get_many(
    pool: &PgPool,
    keys: &[(&str, &str)],
    now: i64,
) -> Result<Vec<Option<Record>>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let namespaces: Vec<&[u8]> = keys.iter().map(|(n, _)| n.as_bytes()).collect();
    let names: Vec<&[u8]> = keys.iter().map(|(_, k)| k.as_bytes()).collect();
    let rows = retrying("get_many", || {
        sqlx::query(
            "SELECT asked.pos, r.value, r.version, r.expires_at, r.index_key \
             FROM UNNEST($1::bytea[], $2::bytea[]) WITH ORDINALITY AS asked (ns, k, pos) \
             JOIN cx_sso_records r ON r.namespace = asked.ns AND r.key = asked.k \
             WHERE r.expires_at IS NULL OR r.expires_at > $3",
        )
        .bind(&namespaces)
        .bind(&names)
        .bind(now)
        .fetch_all(pool)
    })
    .await?;
    let mut out: Vec<Option<Record>> = vec![None; keys.len()];
    for row in rows {
        let pos: i64 = row.try_get("pos").map_err(|e| store_error("get_many", e))?;
        let rec = read(&row, "get_many")?;
        // WITH ORDINALITY counts from 1.
        let slot = usize::try_from(pos)
            .ok()
            .and_then(|p| p.checked_sub(1))
            .and_then(|p| out.get_mut(p))
            .ok_or_else(|| super::corrupt("get_many: the database answered a key not asked"))?;
        *slot = Some(rec);
    }
    Ok(out)
}

pub(super) async fn insert(pool: &PgPool, row: &Row<'_>, now: i64) -> Result<Inserted, StoreError> {
    // Over an expired row the upsert replaces it; over a live one its WHERE is false: nothing
    // is written and no row comes back.
    let sql = format!(
        "INSERT INTO cx_sso_records AS r (namespace, key, value, version, expires_at, index_key) \
         VALUES ($1, $2, $4, {NEXT_VERSION}, $5, $6) \
         ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, \
         version = {NEXT_VERSION}, expires_at = EXCLUDED.expires_at, \
         index_key = EXCLUDED.index_key \
         WHERE r.expires_at IS NOT NULL AND r.expires_at <= $3 \
         RETURNING r.version"
    );
    let attempt = retrying("insert", || {
        sqlx::query_scalar::<_, i64>(&sql)
            .bind(row.namespace)
            .bind(row.key)
            .bind(now)
            .bind(row.value)
            .bind(row.expires_at)
            .bind(row.index)
            .fetch_optional(pool)
    })
    .await;
    match attempt {
        Ok(Some(version)) => Ok(Inserted::Yes {
            version: version_from_db(version)?,
        }),
        Ok(None) => Ok(Inserted::No),
        // Someone else's row won the key: exactly what insert-if-absent answers with No.
        Err(StoreError::Contention {
            source: Some(s), ..
        }) if s
            .downcast_ref::<sqlx::Error>()
            .is_some_and(super::is_unique_violation) =>
        {
            Ok(Inserted::No)
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn put(pool: &PgPool, row: &Row<'_>) -> Result<u64, StoreError> {
    let sql = format!(
        "INSERT INTO cx_sso_records AS r (namespace, key, value, version, expires_at, index_key) \
         VALUES ($1, $2, $3, {NEXT_VERSION}, $4, $5) \
         ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, \
         version = {NEXT_VERSION}, expires_at = EXCLUDED.expires_at, \
         index_key = EXCLUDED.index_key \
         RETURNING r.version"
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
    pool: &PgPool,
    namespace: &str,
    key: &str,
    now: i64,
) -> Result<Option<Record>, StoreError> {
    // An expired row is deleted too (purging it is allowed) but not returned.
    let row = retrying("take", || {
        sqlx::query(st::TAKE)
            .bind(namespace.as_bytes())
            .bind(key.as_bytes())
            .fetch_optional(pool)
    })
    .await?;
    let Some(row) = row else { return Ok(None) };
    let expires_at: Option<i64> = row
        .try_get("expires_at")
        .map_err(|e| store_error("take", e))?;
    if !live(expires_at, now) {
        return Ok(None);
    }
    read(&row, "take").map(Some)
}

/// A conditional write's answer: `(version, applied)` from its statement, where `applied` is
/// false when the row came from the statement's read of the current version.
type Conditional = Option<(i64, bool)>;

/// The live version at (namespace, key), read in a new statement: for a conditional write whose
/// own read saw the version it expected (its snapshot predates the writer it waited for).
async fn current_version(
    pool: &PgPool,
    op: &'static str,
    namespace: &[u8],
    key: &[u8],
    now: i64,
) -> Result<Option<u64>, StoreError> {
    let v: Option<i64> = retrying(op, || {
        sqlx::query_scalar(st::CURRENT_VERSION)
            .bind(namespace)
            .bind(key)
            .bind(now)
            .fetch_optional(pool)
    })
    .await?;
    v.map(version_from_db).transpose()
}

/// What a conditional write that did not apply found: `None` for no live record, else its
/// version. `seen` is the version the statement itself read; when it is the expected one, a
/// concurrent writer committed after the statement's snapshot, so the version is read again.
async fn lost_to(
    pool: &PgPool,
    op: &'static str,
    namespace: &[u8],
    key: &[u8],
    expected: i64,
    seen: Option<i64>,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    match seen {
        Some(v) if v == expected => current_version(pool, op, namespace, key, now).await,
        Some(v) => version_from_db(v).map(Some),
        None => Ok(None),
    }
}

pub(super) async fn compare_and_swap(
    pool: &PgPool,
    row: &Row<'_>,
    expected: i64,
    now: i64,
) -> Result<CasOutcome, StoreError> {
    let sql = format!(
        "WITH swapped AS ( \
             UPDATE cx_sso_records SET value = $5, version = {NEXT_VERSION}, \
             expires_at = $6, index_key = $7 \
             WHERE namespace = $1 AND key = $2 AND version = $4 \
             AND (expires_at IS NULL OR expires_at > $3) \
             RETURNING version) \
         SELECT version, TRUE AS applied FROM swapped \
         UNION ALL \
         SELECT version, FALSE FROM cx_sso_records \
         WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3) \
         AND NOT EXISTS (SELECT 1 FROM swapped)"
    );
    let answer: Conditional = retrying("compare_and_swap", || {
        sqlx::query_as(&sql)
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
    if let Some((version, true)) = answer {
        return Ok(CasOutcome::Swapped {
            version: version_from_db(version)?,
        });
    }
    let seen = answer.map(|(v, _)| v);
    let op = "compare_and_swap";
    Ok(
        match lost_to(pool, op, row.namespace, row.key, expected, seen, now).await? {
            None => CasOutcome::Missing,
            Some(current) => CasOutcome::Conflict { current },
        },
    )
}

pub(super) async fn compare_and_delete(
    pool: &PgPool,
    namespace: &str,
    key: &str,
    expected: i64,
    now: i64,
) -> Result<DeleteOutcome, StoreError> {
    let answer: Conditional = retrying("compare_and_delete", || {
        sqlx::query_as(
            "WITH deleted AS ( \
                 DELETE FROM cx_sso_records \
                 WHERE namespace = $1 AND key = $2 AND version = $4 \
                 AND (expires_at IS NULL OR expires_at > $3) \
                 RETURNING version) \
             SELECT version, TRUE AS applied FROM deleted \
             UNION ALL \
             SELECT version, FALSE FROM cx_sso_records \
             WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3) \
             AND NOT EXISTS (SELECT 1 FROM deleted)",
        )
        .bind(namespace.as_bytes())
        .bind(key.as_bytes())
        .bind(now)
        .bind(expected)
        .fetch_optional(pool)
    })
    .await?;
    if let Some((_, true)) = answer {
        return Ok(DeleteOutcome::Deleted);
    }
    let seen = answer.map(|(v, _)| v);
    let (ns, k) = (namespace.as_bytes(), key.as_bytes());
    Ok(
        match lost_to(pool, "compare_and_delete", ns, k, expected, seen, now).await? {
            None => DeleteOutcome::Missing,
            Some(current) => DeleteOutcome::Conflict { current },
        },
    )
}

pub(super) async fn delete(
    pool: &PgPool,
    namespace: &str,
    key: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let expires: Option<Option<i64>> = retrying("delete", || {
        sqlx::query_scalar(st::DELETE)
            .bind(namespace.as_bytes())
            .bind(key.as_bytes())
            .fetch_optional(pool)
    })
    .await?;
    Ok(expires.is_some_and(|e| live(e, now)))
}

pub(super) async fn list(
    pool: &PgPool,
    namespace: &str,
    index: &str,
    now: i64,
) -> Result<Vec<(String, Record)>, StoreError> {
    let rows = retrying("list", || {
        sqlx::query(st::LIST)
            .bind(namespace.as_bytes())
            .bind(index.as_bytes())
            .bind(now)
            .fetch_all(pool)
    })
    .await?;
    rows.iter()
        .map(|row| {
            let key: Vec<u8> = row.try_get("key").map_err(|e| store_error("list", e))?;
            Ok((utf8(key)?, read(row, "list")?))
        })
        .collect()
}

pub(super) async fn sweep_expired(pool: &PgPool, now: i64) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        // The row is checked again after the batch is chosen: one rewritten meanwhile (a new
        // expiry) has a new ctid and is left alone.
        let done = retrying("sweep_expired", || {
            sqlx::query(
                "DELETE FROM cx_sso_records WHERE ctid = ANY(ARRAY( \
                 SELECT ctid FROM cx_sso_records \
                 WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2)) \
                 AND expires_at <= $1",
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

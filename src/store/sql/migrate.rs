//! The embedded schema migrations and their runner.
//!
//! Not sqlx's `Migrator`: it records what it applied in `_sqlx_migrations`, a table the host's
//! own sqlx migrations use too, and a host running its migrations on the same database would
//! then fail on versions it does not know. Ours are recorded in `cx_sso_schema_migrations`,
//! with a checksum so that a migration edited after release is refused rather than half-trusted.

use sha2::{Digest, Sha256};
use sqlx::Executor as _;

use super::store_error;
use crate::store::StoreError;

/// One schema step; `version`s are consecutive from 1.
#[derive(Debug)]
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

#[cfg(feature = "sqlite")]
const SQLITE: &[Migration] = &[Migration {
    version: 1,
    description: "records table, indexes, version counter",
    sql: include_str!("migrations/sqlite_0001_records.sql"),
}];

#[cfg(feature = "postgres")]
const POSTGRES: &[Migration] = &[Migration {
    version: 1,
    description: "records table, indexes, version sequence",
    sql: include_str!("migrations/postgres_0001_records.sql"),
}];

#[cfg(feature = "postgres")]
const PG_CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS cx_sso_schema_migrations (
    version     BIGINT PRIMARY KEY,
    description TEXT   NOT NULL,
    checksum    BYTEA  NOT NULL,
    applied_at  BIGINT NOT NULL
)";

#[cfg(feature = "sqlite")]
const SQLITE_CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS cx_sso_schema_migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT    NOT NULL,
    checksum    BLOB    NOT NULL,
    applied_at  INTEGER NOT NULL
)";

/// A key for `pg_advisory_xact_lock`, so that nodes migrating at once take turns: the ASCII of
/// "CxSSOmig".
#[cfg(feature = "postgres")]
const PG_LOCK_KEY: i64 = 0x4378_5353_4f6d_6967;

fn checksum(sql: &str) -> Vec<u8> {
    Sha256::digest(sql.as_bytes()).to_vec()
}

/// Which of `known` still need applying, given the (version, checksum) rows already recorded.
fn pending<'a>(
    known: &'a [Migration],
    applied: &[(i64, Vec<u8>)],
) -> Result<Vec<&'a Migration>, StoreError> {
    let latest = known.iter().map(|m| m.version).max().unwrap_or(0);
    for (version, sum) in applied {
        match known.iter().find(|m| m.version == *version) {
            None if *version > latest => {
                return Err(StoreError::unavailable(format!(
                    "the database schema is at version {version}, newer than this cx-sso knows \
                     ({latest}): upgrade cx-sso"
                )));
            }
            None => {
                return Err(StoreError::unavailable(format!(
                    "the database records schema migration {version}, which this cx-sso does \
                     not have"
                )));
            }
            Some(m) if checksum(m.sql) != *sum => {
                return Err(StoreError::unavailable(format!(
                    "schema migration {version} ({}) was applied from different SQL than this \
                     cx-sso embeds",
                    m.description
                )));
            }
            Some(_) => {}
        }
    }
    Ok(known
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        .collect())
}

fn now_micros() -> i64 {
    super::micros(time::OffsetDateTime::now_utc())
}

#[cfg(feature = "postgres")]
pub(super) async fn postgres(pool: &sqlx::PgPool) -> Result<(), StoreError> {
    let op = "migrate";
    let e = |e| store_error(op, e);
    let mut tx = pool.begin().await.map_err(e)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(e)?;
    tx.execute(PG_CREATE_TABLE).await.map_err(e)?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM cx_sso_schema_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(e)?;
    for m in pending(POSTGRES, &applied)? {
        tx.execute(m.sql).await.map_err(e)?;
        sqlx::query(
            "INSERT INTO cx_sso_schema_migrations (version, description, checksum, applied_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(m.version)
        .bind(m.description)
        .bind(checksum(m.sql))
        .bind(now_micros())
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        tracing::info!(
            version = m.version,
            "cx-sso: applied schema migration ({})",
            m.description
        );
    }
    tx.commit().await.map_err(e)
}

#[cfg(feature = "sqlite")]
pub(super) async fn sqlite(pool: &sqlx::SqlitePool) -> Result<(), StoreError> {
    let op = "migrate";
    let e = |e| store_error(op, e);
    // IMMEDIATE: take the write lock first, so that two processes migrating take turns instead
    // of one failing when it upgrades from reading.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(e)?;
    tx.execute(SQLITE_CREATE_TABLE).await.map_err(e)?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM cx_sso_schema_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(e)?;
    for m in pending(SQLITE, &applied)? {
        tx.execute(m.sql).await.map_err(e)?;
        sqlx::query(
            "INSERT INTO cx_sso_schema_migrations (version, description, checksum, applied_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(m.version)
        .bind(m.description)
        .bind(checksum(m.sql))
        .bind(now_micros())
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        tracing::info!(
            version = m.version,
            "cx-sso: applied schema migration ({})",
            m.description
        );
    }
    tx.commit().await.map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[Migration] = &[
        Migration {
            version: 1,
            description: "one",
            sql: "CREATE TABLE a (x INT)",
        },
        Migration {
            version: 2,
            description: "two",
            sql: "CREATE TABLE b (x INT)",
        },
    ];

    #[test]
    fn applies_what_is_missing_in_order() {
        let none = pending(KNOWN, &[]).unwrap();
        assert_eq!(none.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 2]);
        let one = pending(KNOWN, &[(1, checksum(KNOWN[0].sql))]).unwrap();
        assert_eq!(one.iter().map(|m| m.version).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn refuses_a_newer_schema_and_an_edited_migration() {
        let newer = pending(KNOWN, &[(3, vec![0])]).unwrap_err();
        assert!(
            newer.to_string().contains("newer than this cx-sso"),
            "{newer}"
        );
        let edited = pending(KNOWN, &[(1, checksum("CREATE TABLE a (y INT)"))]).unwrap_err();
        assert!(edited.to_string().contains("different SQL"), "{edited}");
    }

    #[test]
    fn embedded_migrations_are_consecutive_from_one() {
        #[cfg(feature = "sqlite")]
        for (i, m) in SQLITE.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        #[cfg(feature = "postgres")]
        for (i, m) in POSTGRES.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
    }
}

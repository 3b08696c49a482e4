//! `SqlStore` on SQLite against the public conformance suite (every check, and `run_all`
//! through `Arc<dyn Store>`), plus what is SQLite's own: migrations, the sweep, records that
//! survive a reopen. Each test has its own database file under cargo's `target/tmp`.
#![cfg(all(feature = "test-util", feature = "sqlite"))]

use std::path::PathBuf;
use std::sync::Arc;

use cx_sso::store::{
    Inserted, NewRecord, ShortLivedCommits, SqlStore, SqlStoreOptions, SqliteSynchronous,
};
use cx_sso::{Store, StoreError};
use time::{Duration, OffsetDateTime};

mod stores;

/// A path for a new database file that no other test uses.
fn fresh_path() -> PathBuf {
    stores::fresh_sqlite_path(env!("CARGO_TARGET_TMPDIR"), "cx-sso-sqlite")
}

async fn open(path: &PathBuf) -> SqlStore {
    let store = SqlStore::sqlite(path).await.unwrap();
    store.migrate().await.unwrap();
    store
}

async fn make() -> Option<Arc<dyn Store>> {
    Some(Arc::new(open(&fresh_path()).await))
}

stores::store_conformance_tests!(make);

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

#[tokio::test]
async fn records_and_versions_survive_a_reopen() {
    let path = fresh_path();
    let t = now();
    let store = open(&path).await;
    store
        .insert(
            "ns",
            "kept",
            NewRecord::new(b"durable".to_vec()).index("i"),
            t,
        )
        .await
        .unwrap();
    let v = store
        .put("ns", "gone", NewRecord::new(vec![1]), t)
        .await
        .unwrap();
    assert!(store.delete("ns", "gone", t).await.unwrap());
    store.close().await;

    let reopened = SqlStore::sqlite(&path).await.unwrap();
    reopened.migrate().await.unwrap(); // a second migrate is a no-op
    let kept = reopened.get("ns", "kept", t).await.unwrap().unwrap();
    assert_eq!(kept.value, b"durable");
    assert_eq!(reopened.list("ns", "i", t).await.unwrap().len(), 1);
    let again = reopened
        .put("ns", "gone", NewRecord::new(vec![2]), t)
        .await
        .unwrap();
    assert!(
        again > v,
        "the version counter survives the reopen: {v} then {again}"
    );
}

#[tokio::test]
async fn sweep_deletes_only_expired_rows() {
    // synchronous=NORMAL: 10,000 commits that each wait for the disk would make this slow.
    let options = SqlStoreOptions::new().sqlite_synchronous(SqliteSynchronous::Normal);
    let store = SqlStore::sqlite_with(fresh_path(), options).await.unwrap();
    store.migrate().await.unwrap();
    let t = now();
    for i in 0..10_001 {
        let rec = NewRecord::new(vec![0; 8]).expires_at(t + Duration::minutes(10));
        store
            .insert("pending", &format!("p{i}"), rec, t)
            .await
            .unwrap();
    }
    let live = NewRecord::new(vec![1]).expires_at(t + Duration::hours(1));
    store.insert("pending", "live", live, t).await.unwrap();
    store
        .insert("pending", "forever", NewRecord::new(vec![2]), t)
        .await
        .unwrap();

    assert_eq!(
        store.sweep_expired(t).await.unwrap(),
        0,
        "nothing has expired yet"
    );
    let later = t + Duration::minutes(10);
    assert_eq!(
        store.sweep_expired(later).await.unwrap(),
        10_001,
        "in several batches"
    );
    // Swept for good: not there even for a `now` from before their expiry.
    assert_eq!(store.get("pending", "p0", t).await.unwrap(), None);
    assert!(store.get("pending", "live", later).await.unwrap().is_some());
    assert!(
        store
            .get("pending", "forever", later)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.sweep_expired(later).await.unwrap(), 0);
}

/// A sweep of many expired rows deletes them in short batches and gives the store's one writer
/// back between them: a write (a sign-in) that comes in during the sweep is done before the
/// sweep is, and a durable write after the sweep's relaxed batches is still there on reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_a_long_sweep_does_not_wait_for_the_whole_sweep() {
    let path = fresh_path();
    let options = SqlStoreOptions::new().sqlite_synchronous(SqliteSynchronous::Normal);
    let fill = SqlStore::sqlite_with(&path, options).await.unwrap();
    fill.migrate().await.unwrap();
    let t = now();
    for i in 0..20_000 {
        let rec = NewRecord::new(vec![0; 400]).expires_at(t + Duration::minutes(10));
        fill.insert("pending_login", &format!("p{i:06}"), rec, t)
            .await
            .unwrap();
    }
    fill.close().await;

    let store = Arc::new(SqlStore::sqlite(&path).await.unwrap());
    let later = t + Duration::minutes(10);
    let sweeping = store.clone();
    let sweep = tokio::spawn(async move { sweeping.sweep_expired(later).await });
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .put(
            "ns",
            "signed_in",
            NewRecord::new(b"durable".to_vec()),
            later,
        )
        .await
        .unwrap();
    assert!(
        !sweep.is_finished(),
        "the write waited for the whole sweep instead of one batch"
    );
    assert_eq!(sweep.await.unwrap().unwrap(), 20_000);
    store.close().await;

    let reopened = open(&path).await;
    let kept = reopened.get("ns", "signed_in", later).await.unwrap();
    assert_eq!(kept.unwrap().value, b"durable");
    assert_eq!(reopened.sweep_expired(later).await.unwrap(), 0);
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn sweep_every_sweeps_on_the_hosts_runtime() {
    let store = open(&fresh_path()).await;
    let t = now();
    let rec = NewRecord::new(vec![0]).expires_at(t - Duration::seconds(1));
    // Written with an earlier `now`, so it went in live and is expired by the real clock.
    store
        .insert("pending", "old", rec, t - Duration::minutes(1))
        .await
        .unwrap();
    let task = tokio::spawn(store.sweep_every(
        Arc::new(cx_sso::SystemClock),
        std::time::Duration::from_millis(20),
        Arc::new(cx_sso::TokioRuntime::current().unwrap()),
    ));
    let mut swept = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if store
            .get("pending", "old", t - Duration::minutes(1))
            .await
            .unwrap()
            .is_none()
        {
            swept = true;
            break;
        }
    }
    task.abort();
    assert!(swept, "the background sweep deleted the expired row");
}

#[tokio::test]
async fn operations_before_migrate_fail_as_unavailable() {
    let store = SqlStore::sqlite(fresh_path()).await.unwrap();
    let err = store.get("ns", "k", now()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept: {err:?}"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_cx_sso_is_refused() {
    let path = fresh_path();
    open(&path).await.close().await;
    // What a later cx-sso would have recorded.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO cx_sso_schema_migrations (version, description, checksum, applied_at) \
         VALUES (999, 'from the future', x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = SqlStore::sqlite(&path).await.unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(err.to_string().contains("newer than this cx-sso"), "{err}");
}

#[tokio::test]
async fn options_are_taken() {
    let store = SqlStore::sqlite_with(
        fresh_path(),
        SqlStoreOptions::new()
            .max_connections(2)
            .sqlite_synchronous(SqliteSynchronous::Normal)
            .sqlite_busy_timeout(std::time::Duration::from_secs(1)),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    assert!(matches!(
        store
            .insert("ns", "k", NewRecord::new(vec![]), now())
            .await
            .unwrap(),
        Inserted::Yes { .. }
    ));
    let debug = format!("{store:?}");
    assert!(debug.contains("SQLite"), "{debug}");
}

/// Many writers on one store at once, each commit waiting for the disk: none fails with
/// "database is locked" however long the others hold SQLite's write lock. The busy timeout is
/// short on purpose: writers of one store take turns inside the store, not by SQLite's
/// busy-wait polling (which can starve a writer past any timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_store_never_fail_as_locked() {
    let options = SqlStoreOptions::new()
        .max_connections(8)
        .sqlite_busy_timeout(std::time::Duration::from_millis(50));
    let store = Arc::new(SqlStore::sqlite_with(fresh_path(), options).await.unwrap());
    store.migrate().await.unwrap();
    let t = now();
    let writers: Vec<_> = (0..32)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    let key = format!("w{w}-{i}");
                    let rec =
                        NewRecord::new(vec![w as u8; 64]).expires_at(t + Duration::minutes(5));
                    store.insert("pending_login", &key, rec, t).await?;
                    store
                        .put("ns", &key, NewRecord::new(vec![1]).index("i"), t)
                        .await?;
                    store.take("pending_login", &key, t).await?;
                }
                Ok::<(), StoreError>(())
            })
        })
        .collect();
    for w in writers {
        if let Err(e) = w.await.unwrap() {
            panic!("a concurrent writer failed: {e} ({e:?})");
        }
    }
    assert_eq!(store.list("ns", "i", t).await.unwrap().len(), 32 * 20);
}

/// Durable and short-lived writes interleaved on one store, with each commit setting: the
/// writer switches its `synchronous` setting between them, and every write is still there and
/// single-use still holds.
#[tokio::test]
async fn durable_and_short_lived_writes_interleave_under_each_commit_setting() {
    for commits in [ShortLivedCommits::Fast, ShortLivedCommits::Durable] {
        let options = SqlStoreOptions::new().short_lived_commits(commits);
        let store = SqlStore::sqlite_with(fresh_path(), options).await.unwrap();
        store.migrate().await.unwrap();
        let t = now();
        for i in 0..5 {
            let key = format!("k{i}");
            let pending = NewRecord::new(vec![i]).expires_at(t + Duration::minutes(5));
            assert!(matches!(
                store
                    .insert("pending_login", &key, pending, t)
                    .await
                    .unwrap(),
                Inserted::Yes { .. }
            ));
            store
                .put("binding", &key, NewRecord::new(vec![i]).index("u"), t)
                .await
                .unwrap();
            assert!(
                store
                    .take("pending_login", &key, t)
                    .await
                    .unwrap()
                    .is_some()
            );
            assert_eq!(
                store.take("pending_login", &key, t).await.unwrap(),
                None,
                "{commits:?}: a pending login is taken once"
            );
        }
        assert_eq!(store.list("binding", "u", t).await.unwrap().len(), 5);
        store.close().await;
    }
}

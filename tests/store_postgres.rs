//! `SqlStore` on PostgreSQL against the public conformance suite (every check, and `run_all`
//! through `Arc<dyn Store>`), plus what is PostgreSQL's own: concurrent migrations, the sweep,
//! two stores (two nodes) on one database. Needs `CX_SSO_TEST_POSTGRES_URL`: `.ci/run` and
//! `scripts/test-services.sh` start a server and set it; under `CI=true` its absence fails.
#![cfg(all(feature = "test-util", feature = "postgres"))]

use std::sync::Arc;

use cx_sso::store::{CasOutcome, Inserted, NewRecord, SqlStore, SqlStoreOptions};
use cx_sso::{Store, StoreError};
use time::{Duration, OffsetDateTime};

mod stores;

const URL_VAR: &str = "CX_SSO_TEST_POSTGRES_URL";

/// A migrated store on the test server, or `None` outside CI when there is none.
async fn connect() -> Option<SqlStore> {
    let url = stores::service_url(URL_VAR, "PostgreSQL")?;
    let store = stores::connect_or_skip("PostgreSQL", async {
        let options = SqlStoreOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(60));
        SqlStore::postgres_with(&url, options).await
    })
    .await?;
    store.migrate().await.unwrap();
    Some(store)
}

async fn make() -> Option<Arc<dyn Store>> {
    Some(Arc::new(connect().await?))
}

stores::store_conformance_tests!(make);

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::random::<u64>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_migrating_at_once_take_turns() {
    let Some(first) = connect().await else { return };
    let url = std::env::var(URL_VAR).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            SqlStore::postgres(&url).await.unwrap().migrate().await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let ns = unique("migrated");
    assert!(matches!(
        first
            .insert(&ns, "k", NewRecord::new(vec![1]), now())
            .await
            .unwrap(),
        Inserted::Yes { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_see_each_others_writes_and_race_fairly() {
    let (Some(a), Some(b)) = (connect().await, connect().await) else {
        return;
    };
    let ns = unique("nodes");
    let t = now();
    a.insert(&ns, "k", NewRecord::new(b"from a".to_vec()).index("i"), t)
        .await
        .unwrap();
    assert_eq!(
        b.list(&ns, "i", t).await.unwrap().len(),
        1,
        "b lists a's write at once"
    );
    let v = b.get(&ns, "k", t).await.unwrap().unwrap().version;
    // Both swap from the version they read; one wins.
    let (ra, rb) = tokio::join!(
        a.compare_and_swap(&ns, "k", v, NewRecord::new(b"a".to_vec()), t),
        b.compare_and_swap(&ns, "k", v, NewRecord::new(b"b".to_vec()), t),
    );
    let outcomes = [ra.unwrap(), rb.unwrap()];
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, CasOutcome::Swapped { .. }))
        .count();
    assert_eq!(wins, 1, "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_deletes_only_expired_rows() {
    let Some(store) = connect().await else { return };
    let ns = unique("sweep");
    let t = now();
    // Far in the past (2001, plus up to 11 days so that runs differ), so that other tests' rows
    // on the shared server are not what is counted, and so that this sweep never deletes the
    // live rows of the tests running beside it: a random `u32` of seconds reached 2137 and
    // swept a conformance check's record away in one CI run.
    let past = OffsetDateTime::from_unix_timestamp(1_000_000_000).unwrap()
        + Duration::seconds((rand::random::<u32>() % 1_000_000).into());
    for i in 0..50 {
        let rec = NewRecord::new(vec![0]).expires_at(past);
        store
            .insert(&ns, &format!("p{i}"), rec, past - Duration::minutes(1))
            .await
            .unwrap();
    }
    store
        .insert(&ns, "forever", NewRecord::new(vec![1]), t)
        .await
        .unwrap();
    assert!(store.sweep_expired(past).await.unwrap() >= 50);
    assert_eq!(
        store
            .get(&ns, "p0", past - Duration::minutes(1))
            .await
            .unwrap(),
        None
    );
    assert!(store.get(&ns, "forever", t).await.unwrap().is_some());
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_with_its_cause() {
    // Nothing listens on port 1 of loopback.
    let options = SqlStoreOptions::new().acquire_timeout(std::time::Duration::from_secs(2));
    let err = SqlStore::postgres_with("postgres://cx:secret-pw@127.0.0.1:1/cx", options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("secret-pw"),
        "the password never shows: {shown}"
    );
}

/// A server (or a proxy) that ends idle sessions: here PostgreSQL's own `idle_session_timeout`
/// of 200 ms. A store that checks connections idle for 50 ms or more (`ping_after_idle`) replaces
/// the dropped one and its first read after a quiet second succeeds. A store whose check window
/// is longer than the quiet spell (the default is 30 s) fails that one read as `Unavailable`,
/// does not reuse the dead connection, and the next read succeeds.
#[tokio::test]
async fn a_connection_the_server_dropped_while_idle_is_replaced() {
    let Some(url) = stores::service_url(URL_VAR, "PostgreSQL") else {
        return;
    };
    if connect().await.is_none() {
        return;
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}options=-c%20idle_session_timeout%3D200");
    let quiet = std::time::Duration::from_millis(800);
    let ns = unique("idle");
    let open = |ping_after_idle| {
        let options = SqlStoreOptions::new()
            .max_connections(1)
            .ping_after_idle(ping_after_idle);
        SqlStore::postgres_with(&url, options)
    };

    let needs = "a connection with idle_session_timeout (PostgreSQL 14 or later)";
    let checked = open(std::time::Duration::from_millis(50))
        .await
        .expect(needs);
    assert_eq!(checked.get(&ns, "k", now()).await.unwrap(), None);
    tokio::time::sleep(quiet).await;
    assert_eq!(
        checked.get(&ns, "k", now()).await.unwrap(),
        None,
        "the dropped connection was checked and replaced"
    );

    let unchecked = open(std::time::Duration::from_secs(3600))
        .await
        .expect(needs);
    assert_eq!(unchecked.get(&ns, "k", now()).await.unwrap(), None);
    tokio::time::sleep(quiet).await;
    let err = unchecked.get(&ns, "k", now()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert_eq!(
        unchecked.get(&ns, "k", now()).await.unwrap(),
        None,
        "the dead connection is not reused"
    );
}

#[tokio::test]
async fn debug_does_not_show_the_url() {
    let Some(store) = connect().await else { return };
    let shown = format!("{store:?}");
    assert!(
        shown.contains("PostgreSQL") && !shown.contains("127.0.0.1"),
        "{shown}"
    );
}

/// Short-lived records are written on their own connections (`synchronous_commit = off` by
/// default): a read on the other connections sees each write at once, and of 16 concurrent
/// takes of one pending login exactly one gets it, as with durable commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_writes_on_fast_commits_stay_visible_and_single_use() {
    let Some(store) = connect().await else { return };
    let t = now();
    for round in 0..5 {
        let key = unique(&format!("state{round}"));
        let rec = NewRecord::new(vec![round]).expires_at(t + time::Duration::minutes(5));
        assert!(matches!(
            store.insert("pending_login", &key, rec, t).await.unwrap(),
            Inserted::Yes { .. }
        ),);
        assert!(store.get("pending_login", &key, t).await.unwrap().is_some());
        let takes: Vec<_> = (0..16)
            .map(|_| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move { store.take("pending_login", &key, t).await })
            })
            .collect();
        let mut winners = 0;
        for take in takes {
            winners += usize::from(take.await.unwrap().unwrap().is_some());
        }
        assert_eq!(winners, 1, "exactly one take gets the pending login");
    }
}

//! `RedisStore` against the public conformance suite, alone and as the short-lived half of a
//! `SplitStore` over SQLite (every check, and `run_all` through `Arc<dyn Store>`), plus what is
//! Redis's own: index sets that do not leak when records expire, several nodes. Needs
//! `CX_SSO_TEST_REDIS_URL`: `.ci/run` and `scripts/test-services.sh` start a server and set it;
//! under `CI=true` its absence fails.
#![cfg(all(feature = "test-util", feature = "redis", feature = "sqlite"))]

use std::path::PathBuf;
use std::sync::Arc;

use cx_sso::Store;
use cx_sso::store::{
    CasOutcome, NewRecord, RedisStore, RedisStoreOptions, SHORT_LIVED_NAMESPACES, SplitStore,
    SqlStore,
};
use time::{Duration, OffsetDateTime};

mod stores;

const URL_VAR: &str = "CX_SSO_TEST_REDIS_URL";

/// A store on the test server under a prefix of its own, or `None` outside CI when there is
/// none.
async fn connect_with(options: RedisStoreOptions) -> Option<RedisStore> {
    let url = stores::service_url(URL_VAR, "Redis")?;
    stores::connect_or_skip("Redis", RedisStore::connect_with(&url, options)).await
}

fn own_prefix() -> String {
    format!("{{cxsso-test-{:016x}}}", rand::random::<u64>())
}

async fn connect() -> Option<RedisStore> {
    connect_with(RedisStoreOptions::new().prefix(own_prefix())).await
}

async fn make() -> Option<Arc<dyn Store>> {
    Some(Arc::new(connect().await?))
}

stores::store_conformance_tests!(make);

/// The same suite on Redis + SQLite: the main namespace of each check in Redis, the second one
/// some checks use (`..._x`, `..._b`) in SQLite, so `get_many` and isolation cross the split.
mod split_over_sqlite {
    use super::*;

    async fn make() -> Option<Arc<dyn Store>> {
        let redis = connect().await?;
        let sqlite = SqlStore::sqlite(super::fresh_path()).await.unwrap();
        sqlite.migrate().await.unwrap();
        Some(Arc::new(SplitStore::with_predicate(
            Arc::new(sqlite),
            Arc::new(redis),
            |ns| !(ns.ends_with("_x") || ns.ends_with("_b")),
        )))
    }

    crate::stores::store_conformance_tests!(make);
}

fn fresh_path() -> PathBuf {
    stores::fresh_sqlite_path(env!("CARGO_TARGET_TMPDIR"), "cx-sso-split")
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

/// Raw access to the test server, to look at what the store left there.
async fn raw() -> Option<redis::aio::MultiplexedConnection> {
    let url = stores::service_url(URL_VAR, "Redis")?;
    let client = redis::Client::open(url).unwrap();
    Some(client.get_multiplexed_async_connection().await.unwrap())
}

#[tokio::test]
async fn index_sets_do_not_keep_members_of_expired_records() {
    let prefix = own_prefix();
    let Some(store) = connect_with(
        RedisStoreOptions::new()
            .prefix(prefix.clone())
            .expiry_grace(std::time::Duration::from_millis(0)),
    )
    .await
    else {
        return;
    };
    let Some(mut conn) = raw().await else { return };
    let t = now();
    let ns = "pending_login";
    let index_key = format!("{prefix}:i:{}:{ns}:user-1", ns.len());
    for i in 0..20 {
        let rec = NewRecord::new(vec![1])
            .index("user-1")
            .expires_at(t + Duration::seconds(1));
        store.insert(ns, &format!("k{i}"), rec, t).await.unwrap();
    }
    let members: usize = redis::cmd("ZCARD")
        .arg(&index_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, 20);
    // Redis expires the records itself (their expiry has passed and there is no grace)...
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let later = now();
    // ...and the next write to the index trims their members,
    let live = NewRecord::new(vec![2])
        .index("user-1")
        .expires_at(later + Duration::hours(1));
    store.insert(ns, "live", live, later).await.unwrap();
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&index_key)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        members,
        ["live"],
        "members of expired records are trimmed on write"
    );
    // and the set itself expires with its last member, so an index nobody lists again goes too.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&index_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 3_600_000,
        "the index set expires with its last member: {ttl}"
    );
    assert_eq!(store.list(ns, "user-1", later).await.unwrap().len(), 1);
}

#[tokio::test]
async fn list_trims_members_whose_records_expired() {
    let prefix = own_prefix();
    let Some(store) = connect_with(RedisStoreOptions::new().prefix(prefix.clone())).await else {
        return;
    };
    let Some(mut conn) = raw().await else { return };
    let t = now();
    let index_key = format!("{prefix}:i:{}:{}:ix", "ns".len(), "ns");
    store
        .insert(
            "ns",
            "a",
            NewRecord::new(vec![1])
                .index("ix")
                .expires_at(t + Duration::minutes(1)),
            t,
        )
        .await
        .unwrap();
    store
        .insert("ns", "b", NewRecord::new(vec![1]).index("ix"), t)
        .await
        .unwrap();
    let later = t + Duration::minutes(2);
    assert_eq!(store.list("ns", "ix", later).await.unwrap().len(), 1);
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&index_key)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, ["b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_records_and_race_fairly() {
    let prefix = own_prefix();
    let (Some(a), Some(b)) = (
        connect_with(RedisStoreOptions::new().prefix(prefix.clone())).await,
        connect_with(RedisStoreOptions::new().prefix(prefix)).await,
    ) else {
        return;
    };
    let t = now();
    a.insert("lease", "c1", NewRecord::new(b"a".to_vec()).index("t"), t)
        .await
        .unwrap();
    assert_eq!(b.list("lease", "t", t).await.unwrap().len(), 1);
    let v = b.get("lease", "c1", t).await.unwrap().unwrap().version;
    let (ra, rb) = tokio::join!(
        a.compare_and_swap("lease", "c1", v, NewRecord::new(vec![1]), t),
        b.compare_and_swap("lease", "c1", v, NewRecord::new(vec![2]), t),
    );
    let wins = [ra.unwrap(), rb.unwrap()]
        .iter()
        .filter(|o| matches!(o, CasOutcome::Swapped { .. }))
        .count();
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn the_default_split_sends_short_lived_namespaces_to_redis() {
    let Some(redis) = connect().await else { return };
    let sqlite = SqlStore::sqlite(fresh_path()).await.unwrap();
    sqlite.migrate().await.unwrap();
    let split = SplitStore::new(
        Arc::new(sqlite.clone()),
        Arc::new(redis.clone()),
        SHORT_LIVED_NAMESPACES.iter().copied(),
    );
    let t = now();
    split
        .put("pending_login", "s", NewRecord::new(vec![1]), t)
        .await
        .unwrap();
    split
        .put("binding", "b", NewRecord::new(vec![2]), t)
        .await
        .unwrap();
    assert!(redis.get("pending_login", "s", t).await.unwrap().is_some());
    assert!(sqlite.get("pending_login", "s", t).await.unwrap().is_none());
    assert!(sqlite.get("binding", "b", t).await.unwrap().is_some());
    assert!(redis.get("binding", "b", t).await.unwrap().is_none());
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_debug_hides_the_url() {
    let options = RedisStoreOptions::new().connection_timeout(std::time::Duration::from_secs(2));
    let err = RedisStore::connect_with("redis://:secret-pw@127.0.0.1:1/", options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, cx_sso::StoreError::Unavailable { .. }),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("secret-pw"));
    let Some(store) = connect().await else { return };
    let shown = format!("{store:?}");
    assert!(!shown.contains("127.0.0.1"), "{shown}");
}

/// A version counter that is gone (a Redis restart without persistence, a `FLUSHALL`, an
/// eviction) starts again above every version it gave, so versions still never repeat for a
/// key: a compare-and-delete holding a version from before cannot remove a record written
/// after (the refresh lease's release rests on that).
#[tokio::test]
async fn a_lost_version_counter_starts_again_above_every_version_it_gave() {
    let prefix = own_prefix();
    let Some(store) = connect_with(RedisStoreOptions::new().prefix(prefix.clone())).await else {
        return;
    };
    let Some(mut conn) = raw().await else { return };
    let t = now();
    let lease = |n: u8| NewRecord::new(vec![n]).expires_at(t + Duration::minutes(1));
    let mut before = Vec::new();
    for n in 0..5 {
        before.push(
            store
                .put("connection_lease", "c1", lease(n), t)
                .await
                .unwrap(),
        );
    }
    let counter = format!("{prefix}:version");
    let deleted: i64 = redis::cmd("DEL")
        .arg(&counter)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(deleted, 1, "the counter lives at {counter}");
    // The lease is gone with the restart too; a new node takes it.
    assert!(
        store
            .take("connection_lease", "c1", t)
            .await
            .unwrap()
            .is_some()
    );
    let cx_sso::store::Inserted::Yes { version: after } = store
        .insert("connection_lease", "c1", lease(9), t)
        .await
        .unwrap()
    else {
        panic!("the lease was free");
    };
    assert!(
        before.iter().all(|&v| v < after),
        "version {after} after the counter was lost; before it: {before:?}"
    );
    for v in before {
        assert!(matches!(
            store
                .compare_and_delete("connection_lease", "c1", v, t)
                .await
                .unwrap(),
            cx_sso::store::DeleteOutcome::Conflict { .. }
        ));
    }
}

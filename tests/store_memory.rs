//! `MemoryStore` against the public conformance suite, directly and through the trait objects
//! the broker holds, plus the behaviour that is MemoryStore's own (threads racing, the sweep).
#![cfg(feature = "test-util")]

use std::sync::Arc;

use cx_sso::MemoryStore;
use cx_sso::store::{CasOutcome, Inserted, NewRecord, Store};
use cx_sso::testing::conformance;
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

mod stores;

async fn make() -> Option<Arc<dyn Store>> {
    Some(Arc::new(MemoryStore::new()))
}

stores::store_conformance_tests!(make);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms_through_box_dyn_store() {
    let store: Box<dyn Store> = Box::new(MemoryStore::new());
    conformance::run_all(&*store).await;
}

#[test]
fn suite_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let store = MemoryStore::new();
    assert_send(conformance::run_all(&store));
}

/// The suite polls its racers in one task, where MemoryStore (which never yields) runs them back
/// to back; here they race on real threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn atomic_operations_have_one_winner_across_threads() {
    const N: usize = 32;
    for round in 0..20 {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let t = now();
        let key = format!("k{round}");

        let mut tasks = Vec::new();
        for i in 0..N {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .insert("ns", &key, NewRecord::new(vec![i as u8]), t)
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(matches!(task.await.unwrap(), Inserted::Yes { .. }));
        }
        assert_eq!(wins, 1, "inserts");
        let start = store.get("ns", &key, t).await.unwrap().unwrap().version;

        let mut tasks = Vec::new();
        for i in 0..N {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .compare_and_swap("ns", &key, start, NewRecord::new(vec![i as u8]), t)
                    .await
                    .unwrap()
            }));
        }
        let outcomes: Vec<CasOutcome> = {
            let mut v = Vec::new();
            for task in tasks {
                v.push(task.await.unwrap());
            }
            v
        };
        let won: Vec<u64> = outcomes
            .iter()
            .filter_map(|o| match o {
                CasOutcome::Swapped { version } => Some(*version),
                _ => None,
            })
            .collect();
        assert_eq!(won.len(), 1, "compare_and_swap: {outcomes:?}");
        assert!(won[0] > start);
        for o in &outcomes {
            if !matches!(o, CasOutcome::Swapped { .. }) {
                assert_eq!(*o, CasOutcome::Conflict { current: won[0] });
            }
        }

        let mut tasks = Vec::new();
        for _ in 0..N {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                store.take("ns", &key, t).await.unwrap()
            }));
        }
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(task.await.unwrap().is_some());
        }
        assert_eq!(wins, 1, "takes");
    }
}

/// Expired records are purged by the sweep, not only hidden: asked again with a `now` from
/// before their expiry (a clock stepping back), a purged record is gone for good, while one that
/// was never swept is still there. Only the public API is used.
#[tokio::test]
async fn sweep_purges_expired_records() {
    let store = MemoryStore::new();
    let t = now();
    let expiry = t + Duration::minutes(1);
    let after = t + Duration::minutes(2);
    for i in 0..100 {
        let rec = NewRecord::new(vec![1])
            .expires_at(expiry)
            .index("abandoned");
        store
            .insert("login", &format!("abandoned{i}"), rec, t)
            .await
            .unwrap();
    }
    let rec = NewRecord::new(vec![2]).index("kept");
    store.insert("login", "kept", rec, t).await.unwrap();

    // Few writes: nothing is swept yet, so the records are only hidden.
    assert_eq!(store.get("login", "abandoned0", after).await.unwrap(), None);
    assert!(store.get("login", "abandoned0", t).await.unwrap().is_some());

    // A stream of writes after the expiry triggers the sweep.
    for i in 0..10_000 {
        store
            .put("other", &format!("w{i}"), NewRecord::new(vec![]), after)
            .await
            .unwrap();
    }
    for i in 0..100 {
        assert_eq!(
            store
                .get("login", &format!("abandoned{i}"), t)
                .await
                .unwrap(),
            None,
            "abandoned{i} must have been purged"
        );
    }
    assert!(
        store
            .list("login", "abandoned", t)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list("login", "kept", t).await.unwrap().len(),
        1,
        "live records stay"
    );
    assert_eq!(
        store
            .get("other", "w0", after)
            .await
            .unwrap()
            .map(|r| r.value),
        Some(vec![]),
        "records written after the expiry stay"
    );
}

#[tokio::test]
async fn abandoned_expiring_records_do_not_accumulate() {
    let store = MemoryStore::new();
    let mut now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    // A stream of pending logins that are never completed: one a second, living 10 minutes.
    for i in 0..50_000u32 {
        now += Duration::seconds(1);
        let rec = NewRecord::new(vec![1; 16]).expires_at(now + Duration::minutes(10));
        store
            .insert("pending_login", &i.to_string(), rec, now)
            .await
            .unwrap();
    }
    // About 600 are live; the rest must have been swept, give or take one sweep interval.
    assert!(
        store.len() <= 600 + 4096 + 600,
        "store holds {} records",
        store.len()
    );
}

/// `sweep_expired` drops every expired record at once (gone even for a `now` from before
/// their expiry, and from their index), keeps the live ones and says how many it dropped.
#[tokio::test]
async fn sweep_expired_drops_every_expired_record_at_once() {
    let store = MemoryStore::new();
    let t = now();
    for i in 0..10 {
        let rec = NewRecord::new(vec![1])
            .expires_at(t + Duration::minutes(1))
            .index("abandoned");
        store
            .insert("login", &format!("a{i}"), rec, t)
            .await
            .unwrap();
    }
    let rec = NewRecord::new(vec![2])
        .expires_at(t + Duration::hours(1))
        .index("kept");
    store.insert("login", "kept", rec, t).await.unwrap();
    store
        .put("binding", "b", NewRecord::new(vec![3]), t)
        .await
        .unwrap();

    assert_eq!(store.sweep_expired(t), 0, "nothing expired yet");
    assert_eq!(store.sweep_expired(t + Duration::minutes(2)), 10);
    assert_eq!(store.len(), 2);
    assert_eq!(store.get("login", "a0", t).await.unwrap(), None);
    assert!(
        store
            .list("login", "abandoned", t)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list("login", "kept", t).await.unwrap().len(), 1);
    assert!(store.get("binding", "b", t).await.unwrap().is_some());
    assert_eq!(store.sweep_expired(t + Duration::minutes(2)), 0);
}

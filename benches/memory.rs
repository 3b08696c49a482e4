//! The memory of 1,000,000 pending logins in a `MemoryStore`, counted by a global allocator
//! that adds up the bytes the program holds, and the time to sweep them once expired; and the
//! time of `SqlStore::sweep_expired` on SQLite for 100,000 expired rows.
//!
//! ```text
//! cargo bench --all-features --bench memory
//! ```
//!
//! The pending logins are made by `Broker::begin_login` (the real record, key and index), the
//! clock standing still so that none expires while they pile up. The figure is the growth of
//! the bytes held, divided by the number of logins: the records, their keys, the index and the
//! hash tables' share. The allocator counts the bytes asked for; the C allocator adds its own
//! header to each allocation (8 to 16 bytes with glibc), so the allocations per login are given
//! too. Floors, in the same run: the same number of bare `String` keys of the same length in a
//! `HashSet` (the least any map of these logins can hold), and for the sweep a `retain` over a
//! `HashMap` of as many entries.
//!
//! Lines starting with `RESULT` are read by `scripts/bench.sh`. `CX_SSO_BENCH_PENDING` and
//! `CX_SSO_BENCH_SQLITE_ROWS` change the counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cx_sso::store::{NewRecord, SqlStore, SqlStoreOptions, SqliteSynchronous, Store};
use cx_sso::testing::FakeIdp;
use cx_sso::{
    Broker, ClientSecret, Clock, LoginIntent, LoginOptions, ManualClock, MemoryStore,
    ProviderConfig, ProviderId, TenantId,
};
use time::Duration;
use time::macros::datetime;

/// The system allocator, counting the bytes held and the allocations made.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// counters are only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        ALLOCATIONS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HELD.fetch_add(new_size, Ordering::Relaxed);
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn held() -> (usize, usize) {
    (
        HELD.load(Ordering::Relaxed),
        ALLOCATIONS.load(Ordering::Relaxed),
    )
}

fn env_count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn memory_store(n: usize) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = FakeIdp::google().with_clock(clock.clone());
    idp.register_client("client", "secret");
    let store = Arc::new(MemoryStore::new());
    let broker = Broker::builder()
        .http_client(idp.clone())
        .clock(clock.clone())
        .shared_store(store.clone())
        .metadata_ttl(Duration::days(3650))
        .public_base_url("https://cx.example.com")
        .build()
        .expect("broker");
    let tenant = TenantId::new("acme").expect("tenant");
    let provider = ProviderId::new("google").expect("provider");
    broker
        .configure_provider(
            &tenant,
            ProviderConfig::google(provider.clone(), "client", ClientSecret::new("secret")),
        )
        .await
        .expect("configure");
    let begin = || broker.begin_login(&tenant, &provider, LoginIntent::SignIn, LoginOptions::new());
    // Discovery cached and the store's tables made before counting.
    begin().await.expect("begin_login");
    begin().await.expect("begin_login");
    // A pending login's store key: a SHA-256 in base64url.
    let key_len = 43;
    let base = store.len();

    let (bytes0, allocs0) = held();
    let start = Instant::now();
    for _ in 0..n {
        begin().await.expect("begin_login");
    }
    let fill = start.elapsed();
    let (bytes1, allocs1) = held();
    assert_eq!(store.len() - base, n, "every pending login still held");
    let per_login = (bytes1 - bytes0) as f64 / n as f64;
    let allocs_per_login = (allocs1 - allocs0) as f64 / n as f64;

    // Floor: the keys alone, as Strings of the same length in a HashSet.
    let floor = {
        let (b0, _) = held();
        let set: HashSet<String> = (0..n).map(|i| format!("{i:0key_len$}")).collect();
        let (b1, _) = held();
        drop(set);
        (b1 - b0) as f64 / n as f64
    };

    println!(
        "memory/pending_logins: {per_login:.0} B per pending login, {allocs_per_login:.1} \
         allocations each (the bare keys in a HashSet: {floor:.0} B)"
    );
    // The sweep, once every one has expired.
    clock.advance(Duration::minutes(11));
    let start = Instant::now();
    let swept = store.sweep_expired(clock.now());
    let sweep = start.elapsed();
    // The pending logins and the two made before counting; the application's record stays.
    assert!(
        swept >= n && swept < n + base,
        "every pending login swept: {swept}"
    );
    let (bytes2, _) = held();
    let sweep_floor = {
        let mut map: HashMap<u64, u64> = (0..n as u64).map(|i| (i, i)).collect();
        let start = Instant::now();
        map.retain(|_, v| *v > u64::MAX - 1);
        let t = start.elapsed();
        assert!(map.is_empty());
        t
    };
    println!(
        "memory/pending_logins: {n} pending logins in MemoryStore: {per_login:.0} B each \
         ({allocs_per_login:.1} allocations each; floor in the same run, the bare {key_len}-byte \
         keys in a HashSet: {floor:.0} B each); made in {:.2} s; swept in {:.0} ms once \
         expired (floor: a HashMap retain over as many entries, {:.0} ms); held after the \
         sweep: {:.0} B per swept login (the tables keep their capacity)",
        fill.as_secs_f64(),
        sweep.as_secs_f64() * 1e3,
        sweep_floor.as_secs_f64() * 1e3,
        (bytes2.saturating_sub(bytes0)) as f64 / n as f64,
    );
    println!("RESULT memory_per_login {per_login:.0} {allocs_per_login:.1} {floor:.0}");
    println!(
        "RESULT memory_sweep {n} {:.0} {:.0}",
        sweep.as_secs_f64() * 1e3,
        sweep_floor.as_secs_f64() * 1e3
    );
}

async fn sqlite_sweep(rows: usize) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-sweep");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("cx.db");
    let now = datetime!(2026-03-02 09:00 UTC);
    let value = vec![b'x'; 420];
    {
        // The fill only, with synchronous=NORMAL: it is not what is measured.
        let store = SqlStore::sqlite_with(
            &path,
            SqlStoreOptions::new().sqlite_synchronous(SqliteSynchronous::Normal),
        )
        .await
        .expect("sqlite");
        store.migrate().await.expect("migrate");
        for i in 0..rows {
            store
                .insert(
                    "pending_login",
                    &format!("{i:043}.{i:022}|{i:043}"),
                    NewRecord::new(value.clone())
                        .expires_at(now + Duration::minutes(10))
                        .index(format!("{i:064}")),
                    now,
                )
                .await
                .expect("insert");
        }
        store.close().await;
    }
    // The sweep with the recommended settings (WAL, synchronous=FULL).
    let store = SqlStore::sqlite(&path).await.expect("sqlite");
    let later = now + Duration::minutes(11);
    let start = Instant::now();
    let swept = store.sweep_expired(later).await.expect("sweep");
    let t = start.elapsed();
    assert_eq!(swept, rows as u64);
    println!(
        "memory/sqlite_sweep: SqlStore::sweep_expired on SQLite (WAL, synchronous=FULL): \
         {rows} expired rows in {:.0} ms ({:.1} µs per row)",
        t.as_secs_f64() * 1e3,
        t.as_secs_f64() * 1e6 / rows as f64
    );
    println!("RESULT sqlite_sweep {rows} {:.0}", t.as_secs_f64() * 1e3);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        memory_store(env_count("CX_SSO_BENCH_PENDING", 1_000_000)).await;
        sqlite_sweep(env_count("CX_SSO_BENCH_SQLITE_ROWS", 100_000)).await;
    });
}

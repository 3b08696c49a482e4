//! Login throughput per store backend: `begin_login` + `complete_login` of a bound user
//! (`SignedIn`), 8 logins in flight on a 2-worker tokio runtime, the ID tokens signed by the
//! FakeIdp between the two timed phases (so RSA signing, the provider's work, is not counted).
//!
//! ```text
//! cargo bench --all-features --bench stores            # MemoryStore and SQLite only
//! scripts/test-services.sh cargo bench --all-features --bench stores   # and the servers
//! ```
//!
//! Backends: `MemoryStore`; `SqlStore` on SQLite with the settings its docs recommend (the
//! defaults: WAL, `synchronous=FULL` for durable records and `NORMAL` for short-lived ones, a
//! file on the real disk); `SqlStore` on PostgreSQL (`CX_SSO_TEST_POSTGRES_URL`, the defaults:
//! `synchronous_commit = off` for short-lived records only); Redis for the short-lived
//! namespaces with PostgreSQL for the rest (`SplitStore`, plus `CX_SSO_TEST_REDIS_URL`). A
//! backend whose URL is not set is skipped with a printed line. `sqlite-durable` and
//! `postgres-durable` are the same with `ShortLivedCommits::Durable` (every commit waits for the
//! disk), with a quarter of the logins: they show what the disk alone allows.
//!
//! Each backend's figure comes with two floors measured in the same run at the same
//! concurrency: the store operations a login makes (the sequence `tests/round_trips.rs`
//! asserts) issued directly on the same store with records of the same size, and the RS256
//! verification of the ID token alone (the login's irreducible CPU work).
//!
//! Lines starting with `RESULT` are read by `scripts/bench.sh`. `CX_SSO_BENCH_LOGINS` sets the
//! number of logins per backend (default 2000).

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, Instant};

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaPublicKeyComponents,
};
use cx_sso::store::{
    NewRecord, SHORT_LIVED_NAMESPACES, ShortLivedCommits, SplitStore, SqlStore, SqlStoreOptions,
    Store,
};
use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, Clock, LoginIntent, LoginOptions, LoginOutcome,
    ManualClock, MemoryStore, ProviderConfig, ProviderId, TenantId, UserId,
};
use time::OffsetDateTime;

const CLIENT_ID: &str = "client-123.apps.example";
const CLIENT_SECRET: &str = "GOCSPX-super-secret-value";
const SUBJECT: &str = "g-alice";
const IN_FLIGHT: usize = 8;

/// Runs `f(0..n)` with `in_flight` calls at a time; the wall time.
async fn concurrently<F, Fut>(n: usize, in_flight: usize, f: F) -> StdDuration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (f, next) = (f.clone(), next.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                f(i).await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
    start.elapsed()
}

struct Fixture {
    broker: Broker,
    idp: FakeIdp,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    provider: ProviderId,
}

/// A Google tenant (a fresh random name, so runs on one database never meet) with `g-alice`
/// bound, discovery and key set cached.
async fn fixture(store: Arc<dyn Store>) -> Fixture {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let idp = FakeIdp::google().with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.add_user(
        FakeUser::new(SUBJECT)
            .email("alice@acme.example")
            .email_verified(true)
            .name("Alice")
            .hosted_domain("acme.example"),
    );
    let broker = Broker::builder()
        .http_client(idp.clone())
        .clock(clock.clone())
        .shared_store(store)
        .public_base_url("https://cx.example.com")
        .build()
        .expect("broker");
    let tenant = TenantId::new(format!("t{:016x}", rand::random::<u64>())).expect("tenant");
    let provider = ProviderId::new("google").expect("provider");
    let report = broker
        .configure_provider(
            &tenant,
            ProviderConfig::google(
                provider.clone(),
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
            ),
        )
        .await
        .expect("configure");
    assert!(report.is_ready(), "{report:?}");
    let f = Fixture {
        broker,
        idp,
        clock,
        tenant,
        provider,
    };
    let redirect = f
        .broker
        .begin_login(
            &f.tenant,
            &f.provider,
            LoginIntent::Link {
                user: UserId::new("u-alice").expect("user"),
            },
            LoginOptions::new(),
        )
        .await
        .expect("begin");
    let callback = f
        .idp
        .authorize(redirect.authorize_url.as_str(), SUBJECT)
        .expect("consent");
    let out = f
        .broker
        .complete_login(&f.route(), &callback, redirect.browser_binding.secret())
        .await
        .expect("link");
    assert!(matches!(out, LoginOutcome::Linked { .. }), "{out:?}");
    f
}

impl Fixture {
    fn route(&self) -> CallbackRoute {
        CallbackRoute::new(self.provider.clone()).with_tenant(self.tenant.clone())
    }
}

/// begin (timed), consent (untimed: the FakeIdp signs the ID tokens), complete (timed).
/// Returns the timed wall time of both phases.
async fn logins(f: &Arc<Fixture>, n: usize) -> (StdDuration, StdDuration) {
    let redirects = Arc::new(Mutex::new(vec![None; n]));
    let t_begin = {
        let (f, redirects) = (f.clone(), redirects.clone());
        concurrently(n, IN_FLIGHT, move |i| {
            let (f, redirects) = (f.clone(), redirects.clone());
            async move {
                let r = f
                    .broker
                    .begin_login(
                        &f.tenant,
                        &f.provider,
                        LoginIntent::SignIn,
                        LoginOptions::new(),
                    )
                    .await
                    .expect("begin_login");
                redirects.lock().expect("lock")[i] = Some((
                    r.authorize_url.to_string(),
                    r.browser_binding.secret().to_owned(),
                ));
            }
        })
        .await
    };
    let callbacks: Vec<(String, String)> = redirects
        .lock()
        .expect("lock")
        .drain(..)
        .map(|r| {
            let (url, binding) = r.expect("begun");
            (f.idp.authorize(&url, SUBJECT).expect("consent"), binding)
        })
        .collect();
    let callbacks = Arc::new(callbacks);
    let t_complete = {
        let f = f.clone();
        concurrently(n, IN_FLIGHT, move |i| {
            let (f, callbacks) = (f.clone(), callbacks.clone());
            async move {
                let (callback, binding) = &callbacks[i];
                let out = f
                    .broker
                    .complete_login(&f.route(), callback, binding)
                    .await
                    .expect("complete_login");
                assert!(matches!(out, LoginOutcome::SignedIn { .. }), "{out:?}");
            }
        })
        .await
    };
    (t_begin, t_complete)
}

/// The store operations of one login (as `tests/round_trips.rs` asserts them), issued
/// directly: `begin_login` reads the application and the policy in one batch and inserts the
/// pending login; `complete_login` takes it, reads the application and the policy (which holds
/// the privileged users) in one batch, then the binding.
async fn store_ops_of_one_login(store: &dyn Store, tenant: &str, now: OffsetDateTime, i: usize) {
    let app = format!("{tenant}|google");
    let pending = format!("{:043}.{:022}|{:043}", i, rand::random::<u64>(), i);
    let value = vec![b'x'; 420];
    store
        .get_many(&[("provider", &app), ("tenant_policy", tenant)], now)
        .await
        .expect("get_many");
    store
        .insert(
            "pending_login",
            &pending,
            NewRecord::new(value)
                .expires_at(now + time::Duration::minutes(10))
                .index(format!("{i:064}")),
            now,
        )
        .await
        .expect("insert");
    store
        .take("pending_login", &pending, now)
        .await
        .expect("take");
    store
        .get_many(&[("provider", &app), ("tenant_policy", tenant)], now)
        .await
        .expect("get_many");
    store
        .get(
            "binding",
            &format!("{tenant}|https://accounts.google.com|g-alice"),
            now,
        )
        .await
        .expect("get");
}

/// RS256 verifications of an ID-token-sized signing input, `n` of them, 8 at a time.
async fn rs256_floor(n: usize) -> StdDuration {
    let input = vec![b'e'; 900];
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("key");
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        &input,
        &mut sig,
    )
    .expect("sign");
    let public = pair.public_key();
    let n_bytes = public.modulus().big_endian_without_leading_zero().to_vec();
    let e_bytes = public.exponent().big_endian_without_leading_zero().to_vec();
    let shared = Arc::new((input, sig, n_bytes, e_bytes));
    concurrently(n, IN_FLIGHT, move |_| {
        let shared = shared.clone();
        async move {
            let (input, sig, n, e) = &*shared;
            RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .verify(&RSA_PKCS1_2048_8192_SHA256, input, sig)
            .expect("verify");
        }
    })
    .await
}

fn per_s(n: usize, t: StdDuration) -> f64 {
    n as f64 / t.as_secs_f64()
}

async fn bench_backend(name: &str, store: Arc<dyn Store>, n: usize) {
    let f = Arc::new(fixture(store.clone()).await);
    // Warm-up: connections opened, caches filled, statements prepared.
    logins(&f, n.min(100)).await;
    let (t_begin, t_complete) = logins(&f, n).await;
    let total = t_begin + t_complete;
    let floor_store = {
        let (store, tenant, now) = (store.clone(), f.tenant.to_string(), f.clock.now());
        concurrently(n, IN_FLIGHT, move |i| {
            let (store, tenant) = (store.clone(), tenant.clone());
            async move { store_ops_of_one_login(&*store, &tenant, now, i).await }
        })
        .await
    };
    let floor_rsa = rs256_floor(n).await;
    let logins_per_s = per_s(n, total);
    println!(
        "stores/{name}: {n} logins, {IN_FLIGHT} in flight: {logins_per_s:.0} logins/s \
         (begin {:.0} µs, complete {:.0} µs of wall time per login); floors in the same run: \
         the login's store operations alone {:.0}/s, RS256 verify alone {:.0}/s",
        t_begin.as_secs_f64() * 1e6 / n as f64,
        t_complete.as_secs_f64() * 1e6 / n as f64,
        per_s(n, floor_store),
        per_s(n, floor_rsa),
    );
    println!(
        "RESULT throughput {name} {logins_per_s:.0} {:.0} {:.0}",
        per_s(n, floor_store),
        per_s(n, floor_rsa)
    );
}

fn skip(name: &str, var: &str) {
    println!(
        "stores/{name}: SKIPPED: {var} is not set (scripts/bench.sh or scripts/test-services.sh \
         start the servers and set it)"
    );
    println!("RESULT skipped {name} {var}");
}

async fn postgres(url: &str, commits: ShortLivedCommits) -> Arc<SqlStore> {
    let options = SqlStoreOptions::new().short_lived_commits(commits);
    let store = SqlStore::postgres_with(url, options)
        .await
        .expect("connect to PostgreSQL");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter would be the first free argument.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    let n: usize = std::env::var("CX_SSO_BENCH_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let wanted = |name: &str| name.contains(filter.as_str());
    rt.block_on(async {
        if wanted("memory") {
            bench_backend("memory", Arc::new(MemoryStore::new()), n).await;
        }
        for (name, commits, n) in [
            ("sqlite", ShortLivedCommits::Fast, n),
            ("sqlite-durable", ShortLivedCommits::Durable, n / 4),
        ] {
            if !wanted(name) {
                continue;
            }
            // On the real disk next to the build, not a tmpfs: fsync must cost what it costs.
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-sqlite");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("dir");
            let options = SqlStoreOptions::new().short_lived_commits(commits);
            let store = SqlStore::sqlite_with(dir.join("cx.db"), options)
                .await
                .expect("sqlite");
            store.migrate().await.expect("migrate");
            bench_backend(name, Arc::new(store), n).await;
        }
        let pg = std::env::var("CX_SSO_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty());
        let redis = std::env::var("CX_SSO_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty());
        for (name, commits, n) in [
            ("postgres", ShortLivedCommits::Fast, n),
            ("postgres-durable", ShortLivedCommits::Durable, n / 4),
        ] {
            if !wanted(name) {
                continue;
            }
            match &pg {
                Some(url) => bench_backend(name, postgres(url, commits).await, n).await,
                None => skip(name, "CX_SSO_TEST_POSTGRES_URL"),
            }
        }
        if wanted("redis+postgres") {
            match (&pg, &redis) {
                (Some(pg), Some(redis)) => {
                    let redis = cx_sso::store::RedisStore::connect(redis)
                        .await
                        .expect("connect to Redis");
                    let split = SplitStore::new(
                        postgres(pg, ShortLivedCommits::Fast).await,
                        Arc::new(redis),
                        SHORT_LIVED_NAMESPACES.iter().copied(),
                    );
                    bench_backend("redis+postgres", Arc::new(split), n).await;
                }
                (None, _) => skip("redis+postgres", "CX_SSO_TEST_POSTGRES_URL"),
                (_, None) => skip("redis+postgres", "CX_SSO_TEST_REDIS_URL"),
            }
        }
    });
}

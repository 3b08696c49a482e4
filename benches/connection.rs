//! The cached `access_token` path: one store read, JSON parse, and (with a key) one
//! XChaCha20-Poly1305 decryption. Floors measured in the same run: the MemoryStore read alone,
//! and the raw decryption.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use cx_sso::store::Store;
use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, Clock, ConnectionId, EncryptionKey, LoginIntent,
    LoginOptions, ManualClock, MemoryStore, ProviderConfig, ProviderId, TenantId,
};
use time::macros::datetime;

struct Fixture {
    broker: Broker,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    connection: ConnectionId,
}

async fn fixture(key: Option<EncryptionKey>) -> Fixture {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = FakeIdp::google().with_clock(clock.clone());
    idp.register_client("client", "secret");
    idp.add_user(FakeUser::new("1089").email("support@acme.example"));
    let store = Arc::new(MemoryStore::new());
    let mut builder = Broker::builder()
        .http_client(idp.clone())
        .clock(clock.clone())
        .shared_store(store.clone())
        .public_base_url("https://cx.example.com");
    if let Some(key) = key {
        builder = builder.encryption_key(key);
    }
    let broker = builder.build().unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let provider = ProviderId::new("gmail").unwrap();
    let connection = ConnectionId::new("asset-1").unwrap();
    broker
        .configure_provider(
            &tenant,
            ProviderConfig::google(provider.clone(), "client", ClientSecret::new("secret")),
        )
        .await
        .unwrap();
    let redirect = broker
        .begin_login(
            &tenant,
            &provider,
            LoginIntent::Connect {
                connection: connection.clone(),
            },
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let callback = idp
        .authorize(redirect.authorize_url.as_str(), "1089")
        .unwrap();
    broker
        .complete_login(
            &CallbackRoute::new(provider.clone()),
            &callback,
            redirect.browser_binding.secret(),
        )
        .await
        .unwrap();
    Fixture {
        broker,
        store,
        clock,
        tenant,
        connection,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plain = rt.block_on(fixture(None));
    let encrypted = rt.block_on(fixture(Some(EncryptionKey::from_bytes([7; 32]))));

    let mut group = c.benchmark_group("connection");
    group.bench_function("access_token_cached", |b| {
        b.to_async(&rt).iter(|| async {
            plain
                .broker
                .access_token(&plain.tenant, &plain.connection)
                .await
                .unwrap()
        })
    });
    group.bench_function("access_token_cached_encrypted", |b| {
        b.to_async(&rt).iter(|| async {
            encrypted
                .broker
                .access_token(&encrypted.tenant, &encrypted.connection)
                .await
                .unwrap()
        })
    });
    group.bench_function("xoauth2_cached_encrypted", |b| {
        b.to_async(&rt).iter(|| async {
            encrypted
                .broker
                .xoauth2(&encrypted.tenant, &encrypted.connection)
                .await
                .unwrap()
        })
    });
    // Floor: the store read alone.
    group.bench_function("floor_memory_store_get", |b| {
        b.to_async(&rt).iter(|| async {
            plain
                .store
                .get("connection", "acme|asset-1", plain.clock.now())
                .await
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

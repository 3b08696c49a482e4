//! The cached `access_token` path: one store read, JSON parse, and (with a key) one
//! XChaCha20-Poly1305 decryption. Floors measured in the same run: the MemoryStore read alone
//! (`floor_memory_store_get`), and that read followed by the raw decryption of the stored access
//! token, base64 included (`floor_get_then_open`), the work the encrypted path cannot skip.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::hint::black_box;

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
    // Floor of the encrypted path: the same read, then the stored access token's base64
    // decoded and decrypted (the associated data the crate binds it to: domain, tenant,
    // connection, field), as a caller holding the key could do by hand.
    let sealed = rt.block_on(async {
        let record = encrypted
            .store
            .get("connection", "acme|asset-1", encrypted.clock.now())
            .await
            .unwrap()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&record.value).unwrap();
        json["access_token"]["xchacha20poly1305"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    let cipher_key = [7u8; 32];
    let aad = "cx-sso/connection/v1|acme|asset-1|access_token";
    group.bench_function("floor_get_then_open", |b| {
        b.to_async(&rt).iter(|| async {
            let record = encrypted
                .store
                .get("connection", "acme|asset-1", encrypted.clock.now())
                .await
                .unwrap();
            black_box(record);
            let bytes = STANDARD.decode(&sealed).unwrap();
            let (nonce, ciphertext) = bytes.split_at(24);
            let plain = XChaCha20Poly1305::new((&cipher_key).into())
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: aad.as_bytes(),
                    },
                )
                .unwrap();
            String::from_utf8(plain).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

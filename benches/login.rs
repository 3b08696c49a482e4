//! Benchmarks of the login hot path, against the in-process `FakeIdp` (feature `test-util`).
//!
//! ```text
//! cargo bench --features test-util --bench login -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! - `begin_login`: one `Broker::begin_login` (MemoryStore, Google personality, discovery
//!   cached).
//! - `complete_login`: one `Broker::complete_login` for a bound user (a `SignedIn` outcome),
//!   RS256. `begin_login` and the FakeIdp's consent (which signs the ID token) run in the
//!   untimed setup of each iteration.
//! - `floor_rs256_verify`: the raw aws-lc-rs RS256 verification of a token of the FakeIdp's
//!   size, the cost `complete_login` cannot go below.
//! - `floor_begin_login`: what `begin_login` cannot go below, on a MemoryStore of the same
//!   steady state: its random values (state, nonce, browser binding, PKCE verifier: 32 bytes
//!   each, base64url), the PKCE challenge (SHA-256) and the state's index hash, the batched
//!   read of the application and the policy, and the insert of a record of a pending login's
//!   size.
//! - `check_session`: one `Broker::check_session` for a tenant whose policy record holds a
//!   past switch and a scheduled one; `floor_check_session_store_get`: the MemoryStore read of
//!   that policy record alone.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use cx_sso::store::{NewRecord, Store};
use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    AuthMethod, Broker, CallbackRoute, ClientSecret, Clock, HttpClient, LoginIntent, LoginOptions,
    LoginOutcome, ManualClock, MemoryStore, ProviderConfig, ProviderId, TenantId, UserId,
};
use sha2::{Digest, Sha256};
use time::Duration;
use time::macros::datetime;

const CLIENT_ID: &str = "client-123.apps.example";
const CLIENT_SECRET: &str = "GOCSPX-super-secret-value";
const SUBJECT: &str = "g-alice";

struct World {
    broker: Broker,
    store: Arc<MemoryStore>,
    idp: FakeIdp,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    provider: ProviderId,
    /// The route the callbacks arrive at (built once, as a host's router would per request).
    route: CallbackRoute,
}

/// Drives a future that never waits on anything outside this thread (the broker over a
/// `MemoryStore` and a `FakeIdp` does not) to completion, without a runtime: criterion runs the
/// setup of `iter_batched` inside the runtime's `block_on`, where another `block_on` panics.
fn run_now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// A Google tenant over a FakeIdp, with discovery and the key set cached, and `g-alice` bound
/// to user `u-alice`.
async fn world() -> World {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = FakeIdp::google().with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.add_user(
        FakeUser::new(SUBJECT)
            .email("alice@acme.example")
            .email_verified(true)
            .name("Alice")
            .hosted_domain("acme.example"),
    );
    let store = Arc::new(MemoryStore::new());
    let broker = Broker::builder()
        .http_client(idp.clone())
        .shared_store(store.clone())
        .clock(clock.clone())
        // The bench moves the clock to let pending logins expire; the cache must not.
        .metadata_ttl(Duration::days(3650))
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let provider = ProviderId::new("google").unwrap();
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
        .unwrap();
    assert!(report.is_ready(), "{report:?}");
    let w = World {
        broker,
        store,
        idp,
        clock,
        route: CallbackRoute::new(provider.clone()).with_tenant(tenant.clone()),
        tenant,
        provider,
    };
    // Binding from settings also fetches and caches the key set.
    let (callback, binding) = w
        .consent(LoginIntent::Link {
            user: UserId::new("u-alice").unwrap(),
        })
        .await;
    let out = w
        .broker
        .complete_login(&w.route, &callback, &binding)
        .await
        .unwrap();
    assert!(matches!(out, LoginOutcome::Linked { .. }), "{out:?}");
    w
}

impl World {
    async fn consent(&self, intent: LoginIntent) -> (String, String) {
        let redirect = self
            .broker
            .begin_login(&self.tenant, &self.provider, intent, LoginOptions::new())
            .await
            .unwrap();
        let callback = self
            .idp
            .authorize(redirect.authorize_url.as_str(), SUBJECT)
            .unwrap();
        (callback, redirect.browser_binding.secret().to_owned())
    }
}

/// The ID token the FakeIdp issues for `g-alice` to the bench's client, fetched through its
/// token endpoint, so that the floor verifies a token of exactly that size.
async fn sample_id_token(idp: &FakeIdp) -> String {
    // RFC 7636's example verifier and challenge; a nonce of the broker's length (43 chars).
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let url = format!(
        "https://accounts.google.com/o/oauth2/v2/auth?response_type=code&client_id={CLIENT_ID}\
         &redirect_uri=https%3A%2F%2Fcx.example.com%2Fsso%2Fcallback%2Fgoogle\
         &scope=openid%20email%20profile&state=s&nonce={}\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        "n".repeat(43)
    );
    let callback = idp.authorize(&url, SUBJECT).unwrap();
    let code = url::form_urlencoded::parse(callback.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", "https://cx.example.com/sso/callback/google")
        .append_pair("code_verifier", verifier)
        .append_pair("client_id", CLIENT_ID)
        .append_pair("client_secret", CLIENT_SECRET)
        .finish();
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri("https://oauth2.googleapis.com/token")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body.into_bytes())
        .unwrap();
    let response = idp.call(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    json["id_token"].as_str().unwrap().to_owned()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let w = &rt.block_on(world());

    // begin_login. Each iteration's setup moves the clock one second so that pending logins
    // expire (login TTL 10 minutes) and the MemoryStore's sweep keeps the map small, as it is
    // in a steady state; otherwise the bench would time a map of millions of abandoned logins.
    // The clock moves one second per login inside the timed routine, so the store stays at a
    // steady state of about 600 live pending logins (10 minutes' worth): with the clock moved
    // in a batched setup instead, a whole batch (up to ~100k logins) piles up before any
    // expires, and the bench times a growing hash map rather than begin_login.
    c.bench_function("begin_login", |b| {
        b.to_async(&rt).iter(|| async {
            w.clock.advance(Duration::seconds(1));
            w.broker
                .begin_login(
                    &w.tenant,
                    &w.provider,
                    LoginIntent::SignIn,
                    LoginOptions::new(),
                )
                .await
                .unwrap()
        });
    });

    // Its floor, on a MemoryStore of its own moved the same way (one second per login).
    let floor_store = MemoryStore::new();
    let floor_clock = ManualClock::new(w.clock.now());
    rt.block_on(async {
        floor_store
            .put(
                "provider",
                "acme|google",
                NewRecord::new(vec![b'p'; 600]),
                w.clock.now(),
            )
            .await
            .unwrap();
    });
    let floor_store = &floor_store;
    let floor_clock = &floor_clock;
    c.bench_function("floor_begin_login", |b| {
        b.to_async(&rt).iter(|| async {
            floor_clock.advance(Duration::seconds(1));
            let now = floor_clock.now();
            let random = || {
                let mut bytes = [0u8; 32];
                rand::fill(&mut bytes);
                URL_SAFE_NO_PAD.encode(bytes)
            };
            let (state, nonce, binding, verifier) = (random(), random(), random(), random());
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let index = URL_SAFE_NO_PAD.encode(Sha256::digest(state.as_bytes()));
            let read = floor_store
                .get_many(
                    &[("provider", "acme|google"), ("tenant_policy", "acme")],
                    now,
                )
                .await
                .unwrap();
            let mut value = Vec::with_capacity(420);
            value.extend_from_slice(nonce.as_bytes());
            value.extend_from_slice(verifier.as_bytes());
            value.extend_from_slice(challenge.as_bytes());
            value.resize(420, b'x');
            floor_store
                .insert(
                    "pending_login",
                    &format!("{state}|{binding}"),
                    NewRecord::new(value)
                        .expires_at(now + Duration::minutes(10))
                        .index(index),
                    now,
                )
                .await
                .unwrap();
            read
        });
    });

    // complete_login, SignIn of a bound user. The clock stays put: nothing accumulates, as
    // each login's pending record is taken and the FakeIdp forgets redeemed codes.
    c.bench_function("complete_login", |b| {
        b.to_async(&rt).iter_batched(
            || run_now(w.consent(LoginIntent::SignIn)),
            |(callback, binding)| async move {
                let out = w
                    .broker
                    .complete_login(&w.route, &callback, &binding)
                    .await
                    .unwrap();
                assert!(matches!(out, LoginOutcome::SignedIn { .. }));
                out
            },
            BatchSize::SmallInput,
        );
    });

    // The floor: aws-lc-rs RS256 verification of a signature over a signing input of the
    // FakeIdp's ID-token size, with a key generated here. Like jsonwebtoken's aws-lc backend
    // (which the broker uses), the public key is given as (n, e) and parsed on each call.
    let token = rt.block_on(sample_id_token(&w.idp));
    let signing_input = &token[..token.rfind('.').unwrap()];
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let public = pair.public_key();
    let n = public.modulus().big_endian_without_leading_zero().to_vec();
    let e = public.exponent().big_endian_without_leading_zero().to_vec();
    assert_eq!(
        URL_SAFE_NO_PAD.encode(&sig).len(),
        token.len() - signing_input.len() - 1
    );
    c.bench_function("floor_rs256_verify", |b| {
        b.iter(|| {
            RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .verify(
                &RSA_PKCS1_2048_8192_SHA256,
                std::hint::black_box(signing_input.as_bytes()),
                std::hint::black_box(&sig),
            )
            .unwrap();
        });
    });

    // check_session: a tenant that switched to passwords (history) and has a switch to SSO
    // scheduled in an hour (pending); a password grant from after the first switch.
    let grant = &rt.block_on(async {
        w.broker
            .set_auth_method(&w.tenant, AuthMethod::Password, Some(Duration::ZERO))
            .await
            .unwrap();
        w.broker
            .set_auth_method(
                &w.tenant,
                AuthMethod::Sso {
                    providers: vec![w.provider.clone()],
                },
                Some(Duration::hours(1)),
            )
            .await
            .unwrap();
        w.broker
            .grant_password_session(&w.tenant, &UserId::new("u-alice").unwrap())
            .await
            .unwrap()
    });
    c.bench_function("floor_check_session_store_get", |b| {
        b.to_async(&rt).iter(|| async {
            w.store
                .get("tenant_policy", "acme", w.clock.now())
                .await
                .unwrap()
                .unwrap()
        });
    });
    c.bench_function("check_session", |b| {
        b.to_async(&rt).iter(|| async move {
            let status = w.broker.check_session(grant).await.unwrap();
            assert_eq!(status, cx_sso::SessionStatus::Active);
            status
        });
    });
}

criterion_group!(login, benches);
criterion_main!(login);

//! Bounded cost: what a hostile provider, tenant or visitor sends is refused with a typed error,
//! and the work it causes is bounded by a limit of the crate, not by the size of the input.
//!
//! Memory is measured with a counting global allocator: the peak number of bytes allocated by
//! this thread during the call, above what was allocated when it began. Every test runs on
//! tokio's current-thread runtime, so everything the call does (the broker, the fake provider,
//! spawned tasks) runs on the test's thread and is counted. The big inputs are allocated
//! before the measurement begins and handed over without a copy, so what is measured is what
//! the crate does with them. Work is bounded by counting (requests at the fake HTTP layer),
//! never by timing.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackError, CallbackRoute, ClientSecret, DiscoveryError, Error, HttpClient,
    HttpError, IdTokenError, LoginIntent, LoginOptions, ManualClock, MemoryStore, ProviderConfig,
    Store, VisitorAudience, VisitorConfigOptions, VisitorTokenError,
};
use time::Duration;
use time::macros::datetime;

// ---------------------------------------------------------------------------------------------
// The counting allocator.

struct Counting;

thread_local! {
    /// Bytes allocated by this thread and not freed (frees of other threads' blocks included).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last reset.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the bookkeeping only touches
// const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its output with the peak number of bytes allocated meanwhile (above
/// what was live when it began).
async fn peak_during<F: Future>(f: F) -> (F::Output, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f.await;
    let peak = PEAK.with(Cell::get) - base;
    (out, usize::try_from(peak).unwrap_or(0))
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// The broker's default cap on a provider response (1 MiB).
const MAX_RESPONSE: usize = MIB;

#[tokio::test]
async fn the_allocator_counts_what_a_call_allocates() {
    // The measuring instrument itself: a 3 MiB buffer made and dropped inside the call is seen.
    let ((), peak) = peak_during(async {
        let v = vec![1u8; 3 * MIB];
        std::hint::black_box(&v);
    })
    .await;
    assert!((3 * MIB..4 * MIB).contains(&peak), "{peak}");
}

// ---------------------------------------------------------------------------------------------
// A transport in front of the FakeIdp that answers chosen paths itself.

/// A response for the first request whose path ends with the string.
type OneShot = (String, http::Response<Vec<u8>>);

type Answer = Box<dyn Fn(&http::Request<Vec<u8>>) -> Option<http::Response<Vec<u8>>> + Send + Sync>;

/// Forwards to the FakeIdp, except that a response put with [`Canned::once`] is handed out (by
/// move, without a copy) to the first request whose path ends with its suffix, and that an
/// [`answer`](Canned::answer) function may answer any request itself.
#[derive(Clone)]
struct Canned {
    idp: FakeIdp,
    once: Arc<Mutex<Vec<OneShot>>>,
    answer: Arc<Mutex<Option<Answer>>>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
}

impl std::fmt::Debug for Canned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canned").finish_non_exhaustive()
    }
}

impl Canned {
    fn new(idp: &FakeIdp) -> Self {
        Self {
            idp: idp.clone(),
            once: Arc::default(),
            answer: Arc::default(),
            requests: Arc::default(),
        }
    }

    /// The next request to a path ending with `suffix` gets `body` with status 200.
    fn once(&self, suffix: &str, body: Vec<u8>) {
        let response = http::Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
        self.once
            .lock()
            .unwrap()
            .push((suffix.to_owned(), response));
    }

    fn answer(
        &self,
        f: impl Fn(&http::Request<Vec<u8>>) -> Option<http::Response<Vec<u8>>> + Send + Sync + 'static,
    ) {
        *self.answer.lock().unwrap() = Some(Box::new(f));
    }
}

#[async_trait::async_trait]
impl HttpClient for Canned {
    async fn call(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        let path = request.uri().path().to_owned();
        *self
            .requests
            .lock()
            .unwrap()
            .entry(path.clone())
            .or_default() += 1;
        let canned = {
            let mut once = self.once.lock().unwrap();
            once.iter()
                .position(|(suffix, _)| path.ends_with(suffix.as_str()))
                .map(|i| once.swap_remove(i).1)
        };
        if let Some(response) = canned {
            return Ok(response);
        }
        if let Some(answer) = self.answer.lock().unwrap().as_ref()
            && let Some(response) = answer(&request)
        {
            return Ok(response);
        }
        self.idp.call(request).await
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)))
}

fn google_idp(clock: &Arc<ManualClock>) -> FakeIdp {
    let idp = FakeIdp::google().with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.add_user(
        FakeUser::new("g-alice")
            .email("alice@acme.example")
            .email_verified(true)
            .name("Alice"),
    );
    idp
}

fn broker(http: impl HttpClient, clock: &Arc<ManualClock>, store: Arc<dyn Store>) -> Broker {
    Broker::builder()
        .http_client(http)
        .clock(clock.clone())
        .shared_store(store)
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap()
}

fn google_config() -> ProviderConfig {
    ProviderConfig::google(pid("google"), CLIENT_ID, ClientSecret::new(CLIENT_SECRET))
}

/// A Google application configured (and found ready) on a broker over `transport`.
async fn google_broker(transport: &Canned, clock: &Arc<ManualClock>) -> Broker {
    let b = broker(transport.clone(), clock, Arc::new(MemoryStore::new()));
    let report = b
        .configure_provider(&tenant("acme"), google_config())
        .await
        .unwrap();
    assert!(report.is_ready(), "{report:?}");
    b
}

fn route() -> CallbackRoute {
    CallbackRoute::new(pid("google")).with_tenant(tenant("acme"))
}

/// Begins a sign-in and plays the consent at the FakeIdp: (callback query, browser binding).
async fn consent(b: &Broker, idp: &FakeIdp) -> (String, String) {
    let r = b
        .begin_login(
            &tenant("acme"),
            &pid("google"),
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let callback = idp.authorize(r.authorize_url.as_str(), "g-alice").unwrap();
    (callback, r.browser_binding.secret().to_owned())
}

/// A token response carrying `id_token`.
fn token_response(id_token: &str) -> Vec<u8> {
    let mut body = serde_json::to_vec(&serde_json::json!({
        "access_token": "at-1",
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token,
    }))
    .unwrap();
    body.shrink_to_fit();
    body
}

// ---------------------------------------------------------------------------------------------
// Oversized inputs.

/// A visitor token of 1 MB of dots is refused on its length, before anything is decoded.
#[tokio::test]
async fn a_one_megabyte_visitor_token_of_dots_is_refused_with_bounded_memory() {
    let b = Broker::builder()
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    let aud = VisitorAudience::new("brand-acme").unwrap();
    b.create_visitor_config(&tenant("acme"), &aud, VisitorConfigOptions::default())
        .await
        .unwrap();
    let dots = ".".repeat(1_000_000);
    let (out, peak) = peak_during(b.verify_visitor_token(&tenant("acme"), &aud, &dots)).await;
    let err = out.unwrap_err();
    assert!(
        matches!(err, Error::VisitorToken(VisitorTokenError::TooLarge(8192))),
        "{err:?}"
    );
    // The limit is 8 KiB: nothing near the token's size is allocated.
    assert!(peak < 3 * 8 * KIB, "peak {peak} bytes");
}

/// An ID token of 1 MB of dots in a token response (which fits under the 1 MiB response cap)
/// is refused on its length before it is split or decoded.
#[tokio::test]
async fn a_one_megabyte_id_token_of_dots_is_refused_with_bounded_memory() {
    let clock = clock();
    let idp = google_idp(&clock);
    let transport = Canned::new(&idp);
    let b = google_broker(&transport, &clock).await;
    let (callback, binding) = consent(&b, &idp).await;
    let dots = ".".repeat(1_000_000);
    let body = token_response(&dots);
    assert!(body.len() < MAX_RESPONSE);
    drop(dots);
    transport.once("/token", body);
    let (out, peak) = peak_during(b.complete_login(&route(), &callback, &binding)).await;
    let err = out.unwrap_err();
    assert!(
        matches!(err, Error::IdToken(IdTokenError::TooLarge)),
        "{err:?}"
    );
    // The response (1 MB) is parsed once; the token is refused without a copy of its parts.
    assert!(peak < 2 * MAX_RESPONSE, "peak {peak} bytes");
}

/// A callback query of 100 KB is refused on its length before it is parsed.
#[tokio::test]
async fn a_hundred_kilobyte_callback_query_is_refused_with_bounded_memory() {
    let clock = clock();
    let idp = google_idp(&clock);
    let transport = Canned::new(&idp);
    let b = google_broker(&transport, &clock).await;
    let (callback, binding) = consent(&b, &idp).await;
    let padding = "x".repeat(100 * 1000);
    let query = format!("{callback}&padding={padding}");
    drop(padding);
    let (out, peak) = peak_during(b.complete_login(&route(), &query, &binding)).await;
    let err = out.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Callback(CallbackError::TooLarge { limit: 8192 })
        ),
        "{err:?}"
    );
    assert!(peak < 3 * 8 * KIB, "peak {peak} bytes");
    // Nothing was consumed: the real callback still completes.
    assert!(
        b.complete_login(&route(), &callback, &binding)
            .await
            .is_ok()
    );
}

/// A 20 MB discovery document is refused on its length (the transport's cap; the broker's
/// own check for transports that do not cap), without being parsed.
#[tokio::test]
async fn a_twenty_megabyte_discovery_document_is_refused_with_bounded_memory() {
    let clock = clock();
    let idp = google_idp(&clock);
    let transport = Canned::new(&idp);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // Configured while the provider behaved, on a node that shares the store.
    let first = broker(transport.clone(), &clock, store.clone());
    assert!(
        first
            .configure_provider(&tenant("acme"), google_config())
            .await
            .unwrap()
            .is_ready()
    );
    // A fresh node, nothing cached: its first login fetches the document.
    let node = broker(transport.clone(), &clock, store);
    let mut doc = serde_json::to_vec(&serde_json::json!({
        "issuer": "https://accounts.google.com",
        "padding": "",
    }))
    .unwrap();
    doc.truncate(doc.len() - 2);
    doc.resize(20 * 1000 * 1000, b'x');
    doc.extend_from_slice(b"\"}");
    transport.once("/openid-configuration", doc);
    let (out, peak) = peak_during(node.begin_login(
        &tenant("acme"),
        &pid("google"),
        LoginIntent::SignIn,
        LoginOptions::new(),
    ))
    .await;
    let err = out.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Discovery(DiscoveryError::TooLarge(n)) if n == MAX_RESPONSE
        ),
        "{err:?}"
    );
    assert!(peak < 256 * KIB, "peak {peak} bytes");
}

/// The same through the default transport over a real socket: a 20 MB chunked discovery
/// document (no `Content-Length`) is read only up to the cap, then refused.
#[cfg(feature = "reqwest")]
#[tokio::test]
async fn a_twenty_megabyte_streamed_discovery_document_is_read_only_up_to_the_cap() {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut request).await;
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Transfer-Encoding: chunked\r\n\r\n";
            if stream.write_all(head).await.is_err() {
                continue;
            }
            // 20 MB of JSON whitespace, in 64 KiB chunks, until the client hangs up.
            for _ in 0..(20 * 1000 * 1000 / CHUNK.len()) {
                let size = format!("{:x}\r\n", CHUNK.len());
                if stream.write_all(size.as_bytes()).await.is_err()
                    || stream.write_all(&CHUNK).await.is_err()
                    || stream.write_all(b"\r\n").await.is_err()
                {
                    break;
                }
                counter.fetch_add(CHUNK.len(), std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    // The application, configured through an in-process provider with the same issuer.
    let clock = clock();
    let idp = FakeIdp::oidc(&issuer).with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let config = ProviderConfig::oidc(
        pid("google"),
        issuer.clone(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    assert!(
        broker(idp, &clock, store.clone())
            .configure_provider(&tenant("acme"), config)
            .await
            .unwrap()
            .is_ready()
    );
    let transport = cx_sso::ReqwestHttpClient::builder()
        .max_response_bytes(MAX_RESPONSE)
        .build()
        .unwrap();
    let node = broker(transport, &clock, store);
    let (out, peak) = peak_during(node.begin_login(
        &tenant("acme"),
        &pid("google"),
        LoginIntent::SignIn,
        LoginOptions::new(),
    ))
    .await;
    let err = out.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Discovery(DiscoveryError::Http(ref e))
                if e.kind() == cx_sso::HttpErrorKind::BodyTooLarge
        ),
        "{err:?}"
    );
    assert!(peak < 3 * MAX_RESPONSE, "peak {peak} bytes");
    // The client hung up long before the end (socket buffers hold a few MB at most).
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < 20 * 1000 * 1000 - 4 * MAX_RESPONSE,
        "{sent} bytes sent"
    );
}

/// A key set of 10,000 keys (small ones, 450 KB in all, under the response cap) is refused
/// once it has more keys than the limit, without decoding the rest.
#[tokio::test]
async fn a_jwks_with_ten_thousand_keys_is_refused_with_bounded_memory() {
    let clock = clock();
    let idp = google_idp(&clock);
    let transport = Canned::new(&idp);
    let b = google_broker(&transport, &clock).await;
    let (callback, binding) = consent(&b, &idp).await;
    let keys: Vec<serde_json::Value> = (0..10_000)
        .map(
            |i| serde_json::json!({"kty": "RSA", "kid": format!("k{i}"), "n": "AQAB", "e": "AQAB"}),
        )
        .collect();
    let mut body = serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap();
    drop(keys);
    body.shrink_to_fit();
    assert!(body.len() < MAX_RESPONSE);
    transport.once("/certs", body);
    let fetches = idp.jwks_fetches();
    let (out, peak) = peak_during(b.complete_login(&route(), &callback, &binding)).await;
    let err = out.unwrap_err();
    assert!(
        matches!(err, Error::Discovery(DiscoveryError::TooManyKeys(100))),
        "{err:?}"
    );
    assert!(peak < 256 * KIB, "peak {peak} bytes");
    // The canned key set was the only one fetched: no second request for the same login.
    assert_eq!(idp.jwks_fetches(), fetches);
}

// ---------------------------------------------------------------------------------------------
// Work per input.

/// An ID token whose header names `kid` (RS256) and whose payload and signature are junk: it
/// is refused at the key lookup, before any signature work.
fn token_with_kid(kid: &str) -> String {
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    format!(
        "{}.e30.AAAA",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap())
    )
}

/// Logs in `n` times with the ID tokens the token endpoint answers; every one is refused with
/// `expected`.
async fn spray(b: &Broker, n: usize, expected: IdTokenError) {
    for _ in 0..n {
        let r = b
            .begin_login(
                &tenant("acme"),
                &pid("google"),
                LoginIntent::SignIn,
                LoginOptions::new(),
            )
            .await
            .unwrap();
        let state = r
            .authorize_url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let callback = format!("code=c&state={state}");
        let err = b
            .complete_login(&route(), &callback, r.browser_binding.secret())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::IdToken(e) if *e == expected),
            "{err:?}"
        );
    }
}

/// A broker whose key set one real login cached, after which the token endpoint answers the
/// ID tokens `id_token` makes; the JWKS fetch count at that point.
async fn keys_cached_then_answering(
    clock: &Arc<ManualClock>,
    id_token: impl Fn() -> String + Send + Sync + 'static,
) -> (FakeIdp, Broker, u64) {
    let idp = google_idp(clock);
    let transport = Canned::new(&idp);
    let b = google_broker(&transport, clock).await;
    let (callback, binding) = consent(&b, &idp).await;
    assert!(
        b.complete_login(&route(), &callback, &binding)
            .await
            .is_ok()
    );
    let before = idp.jwks_fetches();
    transport.answer(move |request| {
        if !request.uri().path().ends_with("/token") {
            return None;
        }
        let body = token_response(&id_token());
        Some(http::Response::builder().status(200).body(body).unwrap())
    });
    (idp, b, before)
}

#[tokio::test]
async fn ten_thousand_id_tokens_with_random_kids_fetch_the_jwks_once_per_cooldown() {
    let clock = clock();
    let (idp, b, before) = keys_cached_then_answering(&clock, || {
        let mut kid = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut kid);
        token_with_kid(&URL_SAFE_NO_PAD.encode(kid))
    })
    .await;
    spray(&b, 5_000, IdTokenError::UnknownKey).await;
    assert_eq!(
        idp.jwks_fetches() - before,
        1,
        "one refetch for the first unknown kid"
    );

    // Past the cooldown (60 s by default): exactly one more, however many tokens come.
    clock.advance(Duration::seconds(61));
    spray(&b, 5_000, IdTokenError::UnknownKey).await;
    assert_eq!(idp.jwks_fetches() - before, 2);
}

/// A token without `kid` whose signature the provider's only key does not verify may mean the
/// provider replaced that key, so it refetches the key set; forged ones arriving by the
/// thousand refetch once per cooldown, as unknown kids do, and each costs at most two
/// signature checks.
#[tokio::test]
async fn two_thousand_forged_id_tokens_without_kid_fetch_the_jwks_once_per_cooldown() {
    let clock = clock();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    let forged = format!(
        "{}.e30.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    );
    let (idp, b, before) = keys_cached_then_answering(&clock, move || forged.clone()).await;
    spray(&b, 1_000, IdTokenError::BadSignature).await;
    assert_eq!(idp.jwks_fetches() - before, 1, "one refetch for the first");
    clock.advance(Duration::seconds(61));
    spray(&b, 1_000, IdTokenError::BadSignature).await;
    assert_eq!(idp.jwks_fetches() - before, 2);
}

// ---------------------------------------------------------------------------------------------
// The metadata cache, keyed by issuers that tenants choose.

/// Routes each request to the FakeIdp of its host.
#[derive(Debug, Clone)]
struct Hosts(Arc<HashMap<String, FakeIdp>>);

#[async_trait::async_trait]
impl HttpClient for Hosts {
    async fn call(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        let host = request.uri().host().unwrap_or_default().to_owned();
        match self.0.get(&host) {
            Some(idp) => idp.call(request).await,
            None => Ok(http::Response::builder()
                .status(404)
                .body(Vec::new())
                .unwrap()),
        }
    }
}

fn issuer(i: usize) -> String {
    format!("https://idp{i}.example.test")
}

#[tokio::test]
async fn the_metadata_cache_keyed_by_tenant_issuers_is_bounded_and_evicts() {
    const CAPACITY: usize = 2;
    const ISSUERS: usize = 4;
    let clock = clock();
    let idps: HashMap<String, FakeIdp> = (0..ISSUERS)
        .map(|i| {
            let idp = FakeIdp::oidc(&issuer(i)).with_clock(clock.clone());
            idp.register_client(CLIENT_ID, CLIENT_SECRET);
            (format!("idp{i}.example.test"), idp)
        })
        .collect();
    let idp = |i: usize| idps[&format!("idp{i}.example.test")].clone();
    let b = Broker::builder()
        .http_client(Hosts(Arc::new(idps.clone())))
        .clock(clock.clone())
        .public_base_url("https://cx.example.com")
        .metadata_cache_capacity(CAPACITY)
        .build()
        .unwrap();
    let tenant_of = |i: usize| tenant(&format!("tenant-{i}"));
    // Each tenant brings its own issuer.
    for i in 0..ISSUERS {
        let config = ProviderConfig::oidc(
            pid("okta"),
            issuer(i),
            CLIENT_ID,
            ClientSecret::new(CLIENT_SECRET),
        );
        let report = b.configure_provider(&tenant_of(i), config).await.unwrap();
        assert!(report.is_ready(), "{report:?}");
        assert!(b.metadata_cache_len() <= CAPACITY, "after issuer {i}");
        clock.advance(Duration::seconds(1));
    }
    assert_eq!(b.metadata_cache_len(), CAPACITY);
    let fetches: Vec<u64> = (0..ISSUERS).map(|i| idp(i).discovery_fetches()).collect();
    let begin = |i: usize| {
        let b = b.clone();
        async move {
            b.begin_login(
                &tenant_of(i),
                &pid("okta"),
                LoginIntent::SignIn,
                LoginOptions::new(),
            )
            .await
            .unwrap();
        }
    };
    // The two most recent issuers are cached: no request.
    begin(3).await;
    begin(2).await;
    assert_eq!(idp(3).discovery_fetches(), fetches[3]);
    assert_eq!(idp(2).discovery_fetches(), fetches[2]);
    // The first was evicted: refetched once, and cached again (still within the bound).
    begin(0).await;
    assert_eq!(idp(0).discovery_fetches(), fetches[0] + 1);
    begin(0).await;
    assert_eq!(idp(0).discovery_fetches(), fetches[0] + 1);
    assert_eq!(b.metadata_cache_len(), CAPACITY);
}

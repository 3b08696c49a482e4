//! The harness shared by the fuzz targets: an OpenID provider whose every answer can come from
//! the fuzz input ([`Idp`]), a broker over it on a fixed clock ([`World`]), and the input
//! framing ([`parts`], [`fill`]).
//!
//! Inputs are framed as text parts separated by [`SEP`], so that the checked-in seeds are
//! readable (a real callback query, a real discovery document, a real token response) and the
//! fuzzer's mutations land in meaningful places. Templates may carry placeholders the harness
//! fills in per run with values the input cannot know: `{nonce}` (256 random bits chosen by
//! `begin_login`), `{state}`, `{binding}`, `{id_token}` (a token signed with the provider's
//! key), and fixed ones such as `{issuer}`, `{now}` and `{exp}`.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, ConnectionId, EncryptionKey, Error, HttpClient, HttpError,
    LoginIntent, LoginOptions, LoginOutcome, ManualClock, MemoryStore, ProviderConfig, ProviderId,
    ProviderReport, Store, TenantId, UserId, VisitorAudience, VisitorConfigOptions, VisitorKeyId,
    VisitorSigningKey,
};
use jsonwebtoken::{Algorithm, EncodingKey};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::macros::datetime;

/// The provider's issuer.
pub const ISSUER: &str = "https://idp.fuzz.test";
/// The tenant's application at the provider.
pub const CLIENT_ID: &str = "fuzz-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "fuzz-client-secret";
/// The key id of the provider's signing key in its default JWKS.
pub const KID: &str = "k1";
/// The public half of the provider's Ed25519 key, as the JWKS `x` member.
pub const ED25519_X: &str = "2B3Dk1_9hW_ksV34yuYMBjIWvFaKvp91o14Qis5QiMA";
const ED25519_PEM: &[u8] = include_bytes!("idp_ed25519.pem");
/// The access token the default token response carries.
pub const ACCESS_TOKEN: &str = "at-fuzz-1";
/// The subject the default ID token names.
pub const SUBJECT: &str = "fuzz-user";
/// The broker's leeway on token times, in seconds.
pub const LEEWAY: i64 = 60;
/// The longest lifetime a visitor token may have in the harness's configurations, in seconds.
pub const VISITOR_MAX_LIFETIME: i64 = 3600;
/// The visitor keys of the harness's ring for [`VISITOR_AUDIENCE`]: `vk0` retired, `vk1`
/// signing, `vk2` verify-only.
pub const VISITOR_KEYS: [(&str, &[u8; 32]); 3] = [
    ("vk0", b"visitor-key-zero-0123456789abcde"),
    ("vk1", b"visitor-key-one--0123456789abcde"),
    ("vk2", b"visitor-key-two--0123456789abcde"),
];
/// The audience of the harness's multi-use visitor configuration.
pub const VISITOR_AUDIENCE: &str = "chat";
/// The audience of its single-use configuration (key `vk1` only, as the signing key).
pub const VISITOR_ONCE: &str = "chat-once";
/// The separator between the parts of an input.
pub const SEP: &[u8] = b"\n--8<--\n";

/// The broker's (and the provider's) clock: 2026-03-02 09:00 UTC.
pub fn start() -> OffsetDateTime {
    datetime!(2026-03-02 09:00 UTC)
}

/// Runs a future to completion on the current thread (the broker needs no tokio runtime).
pub fn block_on<F: Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

/// Splits `data` into at most `n` parts at [`SEP`]; missing parts are empty.
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    while out.len() + 1 < n {
        match find(rest, SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    while out.len() < n {
        out.push(&[]);
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Replaces every `{name}` of `vars` in `template`.
pub fn fill(template: &[u8], vars: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + 64);
    let mut i = 0;
    'outer: while i < template.len() {
        if template[i] == b'{' {
            for (name, value) in vars {
                let n = name.len();
                if template.len() >= i + n + 2
                    && &template[i + 1..i + 1 + n] == name.as_bytes()
                    && template[i + 1 + n] == b'}'
                {
                    out.extend_from_slice(value.as_bytes());
                    i += n + 2;
                    continue 'outer;
                }
            }
        }
        out.push(template[i]);
        i += 1;
    }
    out
}

/// `part` as text (lossy: the broker's inputs are `&str`).
pub fn text(part: &[u8]) -> String {
    String::from_utf8_lossy(part).into_owned()
}

/// A part of the form `STATUS\nBODY` (the status line optional, 200 when absent).
pub fn status_and_body(part: &[u8]) -> (u16, Vec<u8>) {
    if let Some(nl) = part.iter().position(|&b| b == b'\n')
        && nl > 0
        && nl <= 3
        && part[..nl].iter().all(u8::is_ascii_digit)
        && let Ok(s) = std::str::from_utf8(&part[..nl])
        && let Ok(status) = s.parse::<u16>()
    {
        return (status, part[nl + 1..].to_vec());
    }
    (200, part.to_vec())
}

/// What one provider endpoint answers.
#[derive(Debug, Clone, Default)]
pub enum Answer {
    /// The well-behaved answer.
    #[default]
    Default,
    /// `status` with `body` (a template: see the crate docs for the placeholders).
    Template {
        /// The HTTP status.
        status: u16,
        /// The body template.
        body: Vec<u8>,
    },
}

impl Answer {
    /// An answer from a `STATUS\nBODY` part; the default answer when the part is empty.
    pub fn from_part(part: &[u8]) -> Self {
        if part.is_empty() {
            return Self::Default;
        }
        let (status, body) = status_and_body(part);
        Self::Template { status, body }
    }
}

/// What the provider answers, endpoint by endpoint, and what it saw.
#[derive(Debug, Default)]
pub struct Script {
    /// `/.well-known/openid-configuration`.
    pub discovery: Answer,
    /// `/jwks`.
    pub jwks: Answer,
    /// `/token` with `grant_type=authorization_code`.
    pub token: Answer,
    /// `/token` with `grant_type=refresh_token`.
    pub refresh: Answer,
    /// `/userinfo`.
    pub userinfo: Answer,
    /// The ID token `{id_token}` stands for; the default one when `None`.
    pub id_token: Option<String>,
    /// The nonce of the login in progress (from the authorization URL).
    pub nonce: String,
    /// How many token-endpoint requests were answered.
    pub token_requests: u32,
}

/// The provider: an [`HttpClient`] answering from its [`Script`].
#[derive(Debug, Clone, Default)]
pub struct Idp {
    script: Arc<Mutex<Script>>,
}

impl Idp {
    /// The script, to change what the provider answers next.
    pub fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The default discovery document.
pub fn default_discovery() -> String {
    serde_json::json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/authorize"),
        "token_endpoint": format!("{ISSUER}/token"),
        "userinfo_endpoint": format!("{ISSUER}/userinfo"),
        "jwks_uri": format!("{ISSUER}/jwks"),
        "revocation_endpoint": format!("{ISSUER}/revoke"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA", "RS256", "ES256"],
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"]
    })
    .to_string()
}

/// The default JWKS: the provider's Ed25519 key.
pub fn default_jwks() -> String {
    serde_json::json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": KID, "use": "sig", "alg": "EdDSA"
    }]})
    .to_string()
}

/// The default code-exchange answer (a template over `{access_token}` and `{id_token}`).
pub const DEFAULT_TOKEN: &str = r#"{"access_token":"{access_token}","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-fuzz-1","scope":"openid email profile offline_access","id_token":"{id_token}"}"#;
/// The default refresh answer.
pub const DEFAULT_REFRESH: &str = r#"{"access_token":"at-fuzz-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-fuzz-2"}"#;
/// The default userinfo answer.
pub const DEFAULT_USERINFO: &str =
    r#"{"sub":"fuzz-user","email":"user@fuzz.test","email_verified":true,"name":"Fuzz User"}"#;
/// The default ID token's header.
pub const DEFAULT_HEADER: &str = r#"{"alg":"EdDSA","kid":"{kid}","typ":"JWT"}"#;
/// The default ID token's claims (a template).
pub const DEFAULT_CLAIMS: &str = r#"{"iss":"{issuer}","sub":"fuzz-user","aud":"{client_id}","exp":{exp},"iat":{now},"nonce":"{nonce}","email":"user@fuzz.test","email_verified":true,"name":"Fuzz User"}"#;

/// The placeholders every template may use, for the login whose nonce is `nonce`.
fn vars(nonce: &str) -> [(&'static str, String); 8] {
    let now = start().unix_timestamp();
    [
        ("issuer", ISSUER.to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
        ("kid", KID.to_owned()),
        ("now", now.to_string()),
        ("exp", (now + 3600).to_string()),
        ("nonce", nonce.to_owned()),
        ("access_token", ACCESS_TOKEN.to_owned()),
        ("at_hash", at_hash(ACCESS_TOKEN)),
    ]
}

fn at_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Fills `template` with the fixed placeholders and `nonce`.
pub fn fill_vars(template: &[u8], nonce: &str) -> Vec<u8> {
    let v = vars(nonce);
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fill(template, &refs)
}

/// A compact JWS over `header` and `claims` (templates, filled with `nonce`); signed with the
/// provider's key when `sign`, else with `signature` (base64url text) as it is.
pub fn id_token(header: &[u8], claims: &[u8], nonce: &str, signature: Option<&str>) -> String {
    let h = URL_SAFE_NO_PAD.encode(fill_vars(header, nonce));
    let c = URL_SAFE_NO_PAD.encode(fill_vars(claims, nonce));
    let message = format!("{h}.{c}");
    let sig = match signature {
        Some(s) => s.to_owned(),
        None => sign_ed25519(message.as_bytes()),
    };
    format!("{message}.{sig}")
}

/// The provider's Ed25519 signature over `message`, base64url.
pub fn sign_ed25519(message: &[u8]) -> String {
    thread_local! {
        static KEY: EncodingKey = EncodingKey::from_ed_der(&pem_der(ED25519_PEM));
    }
    KEY.with(|k| jsonwebtoken::crypto::sign(message, k, Algorithm::EdDSA).expect("signing"))
}

/// The DER inside a PEM document.
fn pem_der(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .expect("the harness key")
}

fn response(status: u16, body: Vec<u8>) -> http::Response<Vec<u8>> {
    let mut r = http::Response::new(body);
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

#[async_trait]
impl HttpClient for Idp {
    async fn call(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        let mut s = self.script();
        let path = request.uri().path().to_owned();
        let (answer, default): (Answer, Vec<u8>) = match path.as_str() {
            "/.well-known/openid-configuration" => {
                (s.discovery.clone(), default_discovery().into_bytes())
            }
            "/jwks" => (s.jwks.clone(), default_jwks().into_bytes()),
            "/userinfo" => (s.userinfo.clone(), DEFAULT_USERINFO.as_bytes().to_vec()),
            "/revoke" => (Answer::Default, Vec::new()),
            "/token" => {
                s.token_requests += 1;
                let body = request.body();
                let refresh = url::form_urlencoded::parse(body)
                    .any(|(k, v)| k == "grant_type" && v == "refresh_token");
                if refresh {
                    (s.refresh.clone(), DEFAULT_REFRESH.as_bytes().to_vec())
                } else {
                    (s.token.clone(), DEFAULT_TOKEN.as_bytes().to_vec())
                }
            }
            _ => (
                Answer::Template {
                    status: 404,
                    body: b"{}".to_vec(),
                },
                Vec::new(),
            ),
        };
        let (status, template) = match answer {
            Answer::Default => (200, default),
            Answer::Template { status, body } => (status, body),
        };
        let nonce = s.nonce.clone();
        let id_token = match &s.id_token {
            Some(t) => t.clone(),
            None => id_token(
                DEFAULT_HEADER.as_bytes(),
                DEFAULT_CLAIMS.as_bytes(),
                &nonce,
                None,
            ),
        };
        drop(s);
        let mut body = fill_vars(&template, &nonce);
        body = fill(&body, &[("id_token", &id_token)]);
        Ok(response(status, body))
    }
}

/// A broker over an [`Idp`], on a [`ManualClock`], with a tenant and an application.
#[derive(Debug)]
pub struct World {
    /// The broker.
    pub broker: Broker,
    /// The provider.
    pub idp: Idp,
    /// The broker's clock.
    pub clock: Arc<ManualClock>,
    /// Its store.
    pub store: Arc<dyn Store>,
    /// The tenant.
    pub tenant: TenantId,
    /// The application.
    pub provider: ProviderId,
}

/// A login begun: what the callback needs.
#[derive(Debug, Clone)]
pub struct Begun {
    /// The `state` of the authorization request.
    pub state: String,
    /// The browser binding (cookie).
    pub binding: String,
    /// The nonce.
    pub nonce: String,
}

/// The fixed key the worlds seal their secrets with.
pub fn encryption_key() -> EncryptionKey {
    EncryptionKey::from_bytes([7u8; 32])
}

impl World {
    /// A world over `store` (a fresh [`MemoryStore`] when `None`); nothing configured yet.
    pub fn new(store: Option<Arc<dyn Store>>) -> Self {
        let clock = Arc::new(ManualClock::new(start()));
        let idp = Idp::default();
        let store: Arc<dyn Store> = store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let broker = Broker::builder()
            .shared_store(store.clone())
            .http_client(idp.clone())
            .clock(clock.clone())
            .encryption_key(encryption_key())
            .public_base_url("https://cx.fuzz.test")
            .leeway(time::Duration::seconds(LEEWAY))
            .build()
            .expect("the harness broker");
        World {
            broker,
            idp,
            clock,
            store,
            tenant: TenantId::new("acme").expect("tenant"),
            provider: ProviderId::new("idp").expect("provider"),
        }
    }

    /// The tenant's application at the provider.
    pub fn config(&self) -> ProviderConfig {
        ProviderConfig::oidc(
            self.provider.clone(),
            ISSUER,
            CLIENT_ID,
            ClientSecret::new(CLIENT_SECRET),
        )
    }

    /// Configures the application (discovery and JWKS are fetched by its connection check).
    pub async fn configure(&self) -> Result<ProviderReport, Error> {
        self.broker
            .configure_provider(&self.tenant, self.config())
            .await
    }

    /// The callback route of the world's application.
    pub fn route(&self) -> CallbackRoute {
        CallbackRoute::new(self.provider.clone()).with_tenant(self.tenant.clone())
    }

    /// Begins a login and tells the provider its nonce.
    pub async fn begin(&self, intent: LoginIntent, options: LoginOptions) -> Result<Begun, Error> {
        let redirect = self
            .broker
            .begin_login(&self.tenant, &self.provider, intent, options)
            .await?;
        let mut state = String::new();
        let mut nonce = String::new();
        for (k, v) in redirect.authorize_url.query_pairs() {
            match &*k {
                "state" => state = v.into_owned(),
                "nonce" => nonce = v.into_owned(),
                _ => {}
            }
        }
        self.idp.script().nonce = nonce.clone();
        Ok(Begun {
            state,
            binding: redirect.browser_binding.secret().to_owned(),
            nonce,
        })
    }

    /// The callback query of a consent: `code=...&state=...`.
    pub fn callback_query(begun: &Begun) -> String {
        format!("code=fuzz-code&state={}", begun.state)
    }

    /// Completes a login with the provider's callback.
    pub async fn complete(&self, query: &str, binding: &str) -> Result<LoginOutcome, Error> {
        self.broker
            .complete_login(&self.route(), query, binding)
            .await
    }

    /// A whole login, consented.
    pub async fn login(
        &self,
        intent: LoginIntent,
        options: LoginOptions,
    ) -> Result<LoginOutcome, Error> {
        let begun = self.begin(intent, options).await?;
        self.complete(&Self::callback_query(&begun), &begun.binding)
            .await
    }
}

impl World {
    /// Creates the visitor configurations: [`VISITOR_AUDIENCE`] with the ring of
    /// [`VISITOR_KEYS`], and [`VISITOR_ONCE`] in single-use mode.
    pub async fn visitor_rings(&self) -> Result<(), Error> {
        let b = &self.broker;
        let t = &self.tenant;
        let kid = |s: &str| VisitorKeyId::new(s).expect("kid");
        let key = |k: &[u8; 32]| VisitorSigningKey::new(k.to_vec());
        let options = || {
            VisitorConfigOptions::default()
                .with_max_lifetime(time::Duration::seconds(VISITOR_MAX_LIFETIME))
        };
        let [(k0, s0), (k1, s1), (k2, s2)] = VISITOR_KEYS;
        let chat = VisitorAudience::new(VISITOR_AUDIENCE).expect("audience");
        b.create_visitor_config_with_key(t, &chat, options(), Some(kid(k0)), key(s0))
            .await?;
        b.import_visitor_key(t, &chat, Some(kid(k1)), key(s1))
            .await?;
        b.promote_visitor_key(t, &chat, &kid(k1)).await?;
        b.retire_visitor_key(t, &chat, &kid(k0)).await?;
        b.import_visitor_key(t, &chat, Some(kid(k2)), key(s2))
            .await?;
        let once = VisitorAudience::new(VISITOR_ONCE).expect("audience");
        b.create_visitor_config_with_key(
            t,
            &once,
            options().with_single_use(true),
            Some(kid(k1)),
            key(s1),
        )
        .await?;
        Ok(())
    }
}

/// The user `name`.
pub fn user(name: &str) -> UserId {
    UserId::new(name).expect("user id")
}

/// The connection `name`.
pub fn connection(name: &str) -> ConnectionId {
    ConnectionId::new(name).expect("connection id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_at_the_separator_and_pad() {
        let data = b"a\n--8<--\nb\n--8<--\nc\n--8<--\nd";
        assert_eq!(parts(data, 3), vec![&b"a"[..], b"b", b"c\n--8<--\nd"]);
        assert_eq!(parts(b"x", 2), vec![&b"x"[..], b""]);
    }

    #[test]
    fn fill_replaces_known_placeholders_only() {
        assert_eq!(fill(b"{a}-{b}-{", &[("a", "1")]), b"1-{b}-{".to_vec());
    }

    #[test]
    fn the_default_provider_signs_in_links_and_connects() {
        block_on(async {
            let w = World::new(None);
            let report = w.configure().await.unwrap();
            assert!(report.is_ready(), "{report:?}");
            let out = w
                .login(LoginIntent::SignIn, LoginOptions::new())
                .await
                .unwrap();
            assert!(matches!(out, LoginOutcome::LinkRequired { .. }), "{out:?}");
            let out = w
                .login(
                    LoginIntent::Link {
                        user: user("alice"),
                    },
                    LoginOptions::new(),
                )
                .await
                .unwrap();
            assert!(matches!(out, LoginOutcome::Linked { .. }), "{out:?}");
            let out = w
                .login(LoginIntent::SignIn, LoginOptions::new())
                .await
                .unwrap();
            assert!(matches!(out, LoginOutcome::SignedIn { .. }), "{out:?}");
            let out = w
                .login(
                    LoginIntent::Connect {
                        connection: connection("box-1"),
                    },
                    LoginOptions::new(),
                )
                .await
                .unwrap();
            assert!(matches!(out, LoginOutcome::Connected { .. }), "{out:?}");
            w.clock.advance(time::Duration::hours(2));
            let token = w
                .broker
                .access_token(&w.tenant, &connection("box-1"))
                .await
                .unwrap();
            assert_eq!(token.secret(), "at-fuzz-2");
        });
    }
}

pub mod records;

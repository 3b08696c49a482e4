//! [`FakeIdp`]: an in-process OpenID provider that answers through
//! [`HttpClient`](crate::HttpClient).
//!
//! The module docs of [`crate::testing`] describe the whole thing; this folder holds the code,
//! one concern per file:
//!
//! - `mod.rs`: the [`FakeIdp`] handle, its shared state and its constructors (personalities);
//! - `users.rs`: [`FakeUser`], and registering clients and users;
//! - `knobs.rs`: [`Misbehavior`], and the test's switches (keys, `iss` parameter, refresh
//!   rotation) and request counters;
//! - `routes.rs`: each personality's URLs, which endpoint a request names, and the dispatch of
//!   an HTTP request to its endpoint;
//! - `discovery.rs`: the discovery document and the JWKS endpoint;
//! - `keys.rs`: the signing keys (RSA for RS256, P-256 for ES256);
//! - `authorize.rs`: the user's consent ([`FakeIdp::authorize`], [`FakeIdp::deny`]) and
//!   [`FakeIdpError`];
//! - `id_token.rs`: the ID token's claims and signature, as the misbehaviours shape them;
//! - `token.rs`: the token endpoint (code and refresh grants, client authentication) and
//!   revocation;
//! - `userinfo.rs`: the userinfo endpoint;
//! - `wire.rs`: form parsing and the JSON and OAuth error responses the endpoints share;
//! - `bounded_map.rs`: the map that forgets its oldest codes and tokens.

mod authorize;
mod bounded_map;
mod discovery;
mod id_token;
mod keys;
mod knobs;
mod routes;
mod token;
mod userinfo;
mod users;
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use url::Url;

use crate::clock::{Clock, SystemClock};

pub use authorize::FakeIdpError;
pub use knobs::Misbehavior;
pub use users::FakeUser;

use bounded_map::BoundedMap;
use keys::SigningKey;
use routes::{FixedRoutes, FixedUrls, Personality};

/// Lifetime of ID tokens and access tokens, in seconds (1 hour).
const TOKEN_TTL_SECS: i64 = 3600;

/// At most this many outstanding codes, access tokens and refresh tokens are remembered (each);
/// beyond, the oldest are forgotten, so that a benchmark looping a million logins stays bounded.
const MAX_OUTSTANDING: usize = 100_000;

/// The issuer that [`Misbehavior::WrongIssuer`] and [`Misbehavior::WrongIssParameter`] put in.
const WRONG_ISSUER: &str = "https://wrong-issuer.example.test";

/// The Entra issuer template that the multi-tenant discovery documents state.
const ENTRA_ISSUER_TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

const ENTRA_HOST: &str = "login.microsoftonline.com";

const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// Google's authorization URL as mailbox forms show it (Webex Connect's email asset): the older
/// path, which Google still answers beside `/o/oauth2/v2/auth`.
const GOOGLE_FORM_AUTHORIZE: &str = "https://accounts.google.com/o/oauth2/auth";

/// An in-process OpenID provider for tests: Google, Microsoft Entra, or a generic issuer.
///
/// It implements [`HttpClient`](crate::HttpClient), so a [`Broker`](crate::Broker) built with
/// a clone of it talks to it as it would to the real provider, while the test keeps its own
/// handle to add users, play the user's consent ([`authorize`](Self::authorize)), rotate keys,
/// read counters and switch on [`Misbehavior`]s. Clones share everything (an `Arc` inside).
///
/// See the [module docs](crate::testing) for the endpoints, the claims and an example.
#[derive(Clone)]
pub struct FakeIdp {
    inner: Arc<Inner>,
}

struct Inner {
    personality: Personality,
    state: Mutex<State>,
    discovery_fetches: AtomicU64,
    jwks_fetches: AtomicU64,
    token_requests: AtomicU64,
    refresh_requests: AtomicU64,
    userinfo_requests: AtomicU64,
}

struct State {
    clock: Arc<dyn Clock>,
    clients: HashMap<String, String>,
    users: HashMap<String, FakeUser>,
    /// Published keys, oldest first; the last one signs.
    keys: Vec<SigningKey>,
    /// A key that is never published, for [`Misbehavior::UnknownKid`].
    unpublished_key: Option<SigningKey>,
    codes: BoundedMap<IssuedCode>,
    access_tokens: BoundedMap<Grant>,
    refresh_tokens: BoundedMap<Grant>,
    /// Rotated-out refresh tokens, with their family: presenting one again revokes the family.
    used_refresh_tokens: BoundedMap<String>,
    refresh_rotation: bool,
    misbehaviors: Vec<Misbehavior>,
    iss_parameter: bool,
    /// Whether the refresh grant answers an ID token too.
    refresh_id_token: bool,
}

/// What an authorization code stands for until it is redeemed.
struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    expires_at: i64,
    /// `None` for a plain OAuth 2.0 request (no `openid` in the scope).
    id_token: Option<String>,
    /// Chosen when the ID token is signed, so that its `at_hash` can name it.
    access_token: String,
    grant: Grant,
    offline: bool,
}

/// What an access or refresh token stands for.
#[derive(Clone)]
struct Grant {
    subject: String,
    client_id: String,
    scope: String,
    expires_at: i64,
    /// The consent this token descends from: every refresh token of one consent shares it.
    family: String,
}

impl FakeIdp {
    /// Google: issuer `https://accounts.google.com`, with Google's endpoint URLs. The
    /// authorization endpoint also answers at `https://accounts.google.com/o/oauth2/auth`, the
    /// URL mailbox forms show.
    pub fn google() -> Self {
        Self::with_personality(Personality::Google(FixedRoutes::new(FixedUrls {
            issuer: GOOGLE_ISSUER.to_owned(),
            discovery: format!("{GOOGLE_ISSUER}/.well-known/openid-configuration"),
            authorize: "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
            authorize_aliases: vec![GOOGLE_FORM_AUTHORIZE.to_owned()],
            token: "https://oauth2.googleapis.com/token".to_owned(),
            userinfo: "https://openidconnect.googleapis.com/v1/userinfo".to_owned(),
            jwks: "https://www.googleapis.com/oauth2/v3/certs".to_owned(),
            revoke: Some("https://oauth2.googleapis.com/revoke".to_owned()),
        })))
    }

    /// Microsoft Entra ID (v2.0 endpoints), for `organizations`, `common` or any tenant GUID.
    pub fn entra() -> Self {
        Self::with_personality(Personality::Entra)
    }

    /// A generic OpenID provider with this issuer, such as `https://idp.example.test`: discovery
    /// at `{issuer}/.well-known/openid-configuration`, endpoints `{issuer}/authorize`, `/token`,
    /// `/userinfo`, `/jwks` and `/revoke` (a trailing `/` on the issuer is not doubled).
    ///
    /// # Panics
    ///
    /// If `issuer` is not an absolute URL with a host (a mistake in the test itself).
    pub fn oidc(issuer: &str) -> Self {
        let parsed = Url::parse(issuer).expect("FakeIdp::oidc: the issuer must be an absolute URL");
        assert!(
            parsed.host().is_some(),
            "FakeIdp::oidc: the issuer must have a host"
        );
        let base = issuer.trim_end_matches('/').to_owned();
        let endpoint = |path: &str| format!("{base}{path}");
        let urls = FixedUrls {
            issuer: issuer.to_owned(),
            discovery: endpoint("/.well-known/openid-configuration"),
            authorize: endpoint("/authorize"),
            authorize_aliases: Vec::new(),
            token: endpoint("/token"),
            userinfo: endpoint("/userinfo"),
            jwks: endpoint("/jwks"),
            revoke: Some(endpoint("/revoke")),
        };
        Self::with_personality(Personality::Oidc(FixedRoutes::new(urls)))
    }

    fn with_personality(personality: Personality) -> Self {
        // Entra rotates refresh tokens; Google does not.
        let refresh_rotation = personality.is_entra();
        Self {
            inner: Arc::new(Inner {
                personality,
                state: Mutex::new(State {
                    clock: Arc::new(SystemClock),
                    clients: HashMap::new(),
                    users: HashMap::new(),
                    keys: vec![SigningKey::generate()],
                    unpublished_key: None,
                    codes: BoundedMap::default(),
                    access_tokens: BoundedMap::default(),
                    refresh_tokens: BoundedMap::default(),
                    used_refresh_tokens: BoundedMap::default(),
                    refresh_rotation,
                    misbehaviors: Vec::new(),
                    iss_parameter: false,
                    refresh_id_token: false,
                }),
                discovery_fetches: AtomicU64::new(0),
                jwks_fetches: AtomicU64::new(0),
                token_requests: AtomicU64::new(0),
                refresh_requests: AtomicU64::new(0),
                userinfo_requests: AtomicU64::new(0),
            }),
        }
    }

    /// Reads "now" from `clock` instead of the system clock: code expiry, `iat` and `exp` then
    /// follow a [`ManualClock`](crate::ManualClock). Affects every clone.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.state().clock = clock;
        self
    }

    /// The issuer: `https://accounts.google.com`, the generic issuer as given, or for Entra the
    /// template `https://login.microsoftonline.com/{tenantid}/v2.0` (an ID token's `iss` carries
    /// the user's tenant id instead; see [`FakeIdp::entra_issuer`]).
    pub fn issuer(&self) -> String {
        match &self.inner.personality {
            Personality::Oidc(routes) | Personality::Google(routes) => routes.urls.issuer.clone(),
            Personality::Entra => ENTRA_ISSUER_TEMPLATE.to_owned(),
        }
    }

    /// The Entra issuer of one tenant: `https://login.microsoftonline.com/<tenant_id>/v2.0`.
    pub fn entra_issuer(tenant_id: &str) -> String {
        format!("https://{ENTRA_HOST}/{tenant_id}/v2.0")
    }

    /// The discovery document's URL (for Entra, the one of `organizations`).
    pub fn discovery_url(&self) -> String {
        match &self.inner.personality {
            Personality::Oidc(routes) | Personality::Google(routes) => {
                routes.urls.discovery.clone()
            }
            Personality::Entra => {
                format!("https://{ENTRA_HOST}/organizations/v2.0/.well-known/openid-configuration")
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent maps behind; keep going.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for FakeIdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        let clients: Vec<&String> = state.clients.keys().collect();
        let kids: Vec<&String> = state.keys.iter().map(|k| &k.kid).collect();
        f.debug_struct("FakeIdp")
            .field("issuer", &self.issuer())
            .field("clients", &clients)
            .field("users", &state.users.len())
            .field("key_ids", &kids)
            .field("misbehaviors", &state.misbehaviors)
            .field("iss_parameter", &state.iss_parameter)
            .field("outstanding_codes", &state.codes.len())
            .finish_non_exhaustive()
    }
}

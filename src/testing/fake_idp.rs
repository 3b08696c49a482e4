//! [`FakeIdp`]: an in-process OpenID provider that answers through [`HttpClient`].
//!
//! The module docs of [`crate::testing`] describe the whole thing; this file holds the code.
//! Layout: the public types ([`FakeIdp`], [`FakeUser`], [`Misbehavior`], [`FakeIdpError`]),
//! then the personality (URLs and issuers), the signing keys, the authorize step (which signs
//! the ID token), and the HTTP endpoints (discovery, JWKS, token, userinfo, revocation).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{Method, StatusCode, header};
use rand::RngCore as _;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::http::{HttpClient, HttpError};

/// How long an authorization code stays redeemable, in seconds (10 minutes).
const CODE_TTL_SECS: i64 = 600;
/// Lifetime of ID tokens and access tokens, in seconds (1 hour).
const TOKEN_TTL_SECS: i64 = 3600;
/// At most this many outstanding codes, access tokens and refresh tokens are remembered (each);
/// beyond, the oldest are forgotten, so that a benchmark looping a million logins stays bounded.
const MAX_OUTSTANDING: usize = 100_000;
/// The client id that "other" audiences and `azp` values name in misbehaving tokens.
const OTHER_CLIENT: &str = "other-client";
/// The issuer that [`Misbehavior::WrongIssuer`] and [`Misbehavior::WrongIssParameter`] put in.
const WRONG_ISSUER: &str = "https://wrong-issuer.example.test";
/// Where [`Misbehavior::DiscoveryRedirect`] points.
const REDIRECT_LOCATION: &str = "https://elsewhere.example.test/.well-known/openid-configuration";
/// The Entra issuer template that the multi-tenant discovery documents state.
const ENTRA_ISSUER_TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
const ENTRA_HOST: &str = "login.microsoftonline.com";
const ENTRA_USERINFO: &str = "https://graph.microsoft.com/oidc/userinfo";
const GOOGLE_ISSUER: &str = "https://accounts.google.com";

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// An in-process OpenID provider for tests: Google, Microsoft Entra, or a generic issuer.
///
/// It implements [`HttpClient`], so a [`Broker`](crate::Broker) built with a clone of it talks to
/// it as it would to the real provider, while the test keeps its own handle to add users, play
/// the user's consent ([`authorize`](Self::authorize)), rotate keys, read counters and switch on
/// [`Misbehavior`]s. Clones share everything (an `Arc` inside).
///
/// See the [module docs](crate::testing) for the endpoints, the claims and an example.
#[derive(Clone)]
pub struct FakeIdp {
    inner: Arc<Inner>,
}

/// A user account at the [`FakeIdp`], built with [`FakeUser::new`] and its setters.
///
/// Defaults: no email, `email_verified` true (only sent when there is an email), no name, no
/// hosted domain, Entra tenant [`FakeUser::DEFAULT_TENANT_ID`], Entra object id derived from the
/// subject, `xms_edov` off, profile claims in the ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    hosted_domain: Option<String>,
    tenant_id: Option<String>,
    object_id: Option<String>,
    preferred_username: Option<String>,
    email_domain_verified: bool,
    omit_profile_from_id_token: bool,
}

/// A way for the [`FakeIdp`] to misbehave, switched on with [`FakeIdp::misbehave`] and off with
/// [`FakeIdp::behave`]. Several can be on at once.
///
/// Variants that shape the ID token act when [`FakeIdp::authorize`] signs it (a code issued
/// before the switch keeps its well-formed token). The others act on the HTTP endpoints.
/// "The client" is the `client_id` of the authorization request; "other-client" is the literal
/// string `other-client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Misbehavior {
    /// The ID token's signature has its bits flipped.
    BadSignature,
    /// The ID token's header says `"alg":"none"` and the signature is empty.
    AlgNone,
    /// The ID token is signed with HS256, keyed with the current RSA key's public key: the DER
    /// encoding of its X.509 `SubjectPublicKeyInfo` (the bytes inside the PEM armour). This is
    /// the classic algorithm-confusion attack.
    Hs256WithPublicKey,
    /// `iss` is `https://wrong-issuer.example.test`.
    WrongIssuer,
    /// `aud` is `other-client`, and there is no `azp`.
    WrongAudience,
    /// `aud` is `[client, "other-client"]` and there is no `azp`.
    ExtraAudienceWithoutAzp,
    /// `azp` is `other-client` (`aud` is the client).
    AzpMismatch,
    /// The token expired two hours ago (`iat` three hours ago).
    Expired,
    /// `iat` is one hour in the future, `exp` two hours.
    IssuedInFuture,
    /// There is no `sub` claim.
    MissingSub,
    /// There is no `nonce` claim.
    MissingNonce,
    /// `nonce` is not the one of the authorization request.
    WrongNonce,
    /// `exp` is a JSON string holding the number (`"exp":"1767258000"`).
    ExpAsString,
    /// The header has no `kid` while the JWKS publishes at least two keys (a second key is
    /// generated when this is switched on, if needed).
    NoKidWithSeveralKeys,
    /// The token is signed by a key whose `kid` the JWKS never publishes, however often it is
    /// fetched. (For the "new key appears at the next JWKS fetch" case, use
    /// [`FakeIdp::rotate_key`].)
    UnknownKid,
    /// The token endpoint answers this status with `{"error":"server_error"}` (the code is not
    /// consumed; a number that is not an HTTP status becomes 500).
    TokenEndpointStatus(u16),
    /// The token endpoint answers 400 `{"error":"invalid_grant"}` (the code is not consumed).
    InvalidGrant,
    /// The token endpoint's success response has no `id_token`.
    NoIdToken,
    /// The token endpoint's success response is a valid token response padded to more than
    /// 2 MiB.
    OversizedTokenResponse,
    /// The token endpoint's success response says `"token_type":"mac"`.
    TokenTypeNotBearer,
    /// Discovery answers 302 with `Location: https://elsewhere.example.test/...`.
    DiscoveryRedirect,
    /// The callback's RFC 9207 `iss` parameter is `https://wrong-issuer.example.test`. This
    /// switches the `iss` parameter on (also in the discovery document) while it is active.
    WrongIssParameter,
    /// Userinfo answers with a `sub` that is not the user's (`other-` + subject).
    UserInfoWrongSub,
    /// The `refresh_token` grant answers 400 `{"error":"invalid_grant"}`, as when the user
    /// withdrew consent (the authorization-code grant is unaffected).
    RefreshInvalidGrant,
}

/// Why [`FakeIdp::authorize`] or [`FakeIdp::deny`] refused an authorization URL: the relying
/// party under test built a request that the provider would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FakeIdpError {
    /// The URL does not parse.
    #[error("the authorization URL does not parse: {0}")]
    InvalidUrl(String),
    /// The URL is not this provider's authorization endpoint.
    #[error("not this provider's authorization endpoint: {0}")]
    NotAuthorizationEndpoint(String),
    /// A required parameter is missing (or empty).
    #[error("parameter `{0}` is missing")]
    MissingParameter(&'static str),
    /// A parameter appears more than once.
    #[error("parameter `{0}` appears more than once")]
    DuplicateParameter(String),
    /// A parameter has a value the provider does not accept (`response_type` not `code`,
    /// `code_challenge_method` not `S256`, `scope` without `openid`, ...).
    #[error("parameter `{name}` is not acceptable: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// No client with this id was registered with [`FakeIdp::register_client`].
    #[error("unknown client `{0}`")]
    UnknownClient(String),
    /// No user with this subject was added with [`FakeIdp::add_user`].
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    /// Signing the ID token failed (should not happen).
    #[error("signing failed")]
    Signing,
}

// ---------------------------------------------------------------------------------------------
// FakeIdp: construction and configuration
// ---------------------------------------------------------------------------------------------

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
}

/// What an authorization code stands for until it is redeemed.
struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    expires_at: i64,
    id_token: String,
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
    /// Google: issuer `https://accounts.google.com`, with Google's endpoint URLs.
    pub fn google() -> Self {
        Self::with_personality(Personality::Google(FixedRoutes::new(FixedUrls {
            issuer: GOOGLE_ISSUER.to_owned(),
            discovery: format!("{GOOGLE_ISSUER}/.well-known/openid-configuration"),
            authorize: "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
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

    /// Registers a confidential client; the token endpoint accepts it with
    /// `client_secret_basic` or `client_secret_post`. Registering an id again replaces its secret.
    pub fn register_client(&self, client_id: &str, client_secret: &str) {
        self.state()
            .clients
            .insert(client_id.to_owned(), client_secret.to_owned());
    }

    /// Adds a user (or replaces the user with the same subject).
    pub fn add_user(&self, user: FakeUser) {
        self.state().users.insert(user.subject.clone(), user);
    }

    /// Whether the callback carries the RFC 9207 `iss` parameter and the discovery document says
    /// `authorization_response_iss_parameter_supported: true`. Off by default.
    ///
    /// The parameter is the issuer the discovery document of the authorization endpoint states:
    /// for Entra's `organizations` and `common`, the `{tenantid}` template itself.
    pub fn set_iss_parameter(&self, on: bool) {
        self.state().iss_parameter = on;
    }

    /// Switches a [`Misbehavior`] on, until [`behave`](Self::behave).
    pub fn misbehave(&self, misbehavior: Misbehavior) {
        if misbehavior == Misbehavior::NoKidWithSeveralKeys && self.state().keys.len() < 2 {
            // Generate outside the lock: it takes a while.
            let extra = SigningKey::generate();
            let mut state = self.state();
            if state.keys.len() < 2 {
                // Published but older than the signer: the signer stays the same.
                state.keys.insert(0, extra);
            }
        }
        if misbehavior == Misbehavior::UnknownKid && self.state().unpublished_key.is_none() {
            let key = SigningKey::generate();
            self.state().unpublished_key.get_or_insert(key);
        }
        let mut state = self.state();
        if !state.misbehaviors.contains(&misbehavior) {
            state.misbehaviors.push(misbehavior);
        }
    }

    /// Switches every [`Misbehavior`] off.
    pub fn behave(&self) {
        self.state().misbehaviors.clear();
    }

    /// Generates a new signing key: tokens signed from now on use it, and the JWKS publishes it
    /// beside the older keys (until [`retire_old_keys`](Self::retire_old_keys)).
    pub fn rotate_key(&self) {
        let key = SigningKey::generate();
        self.state().keys.push(key);
    }

    /// Unpublishes every key but the current signer.
    pub fn retire_old_keys(&self) {
        let mut state = self.state();
        let keep = state.keys.len().saturating_sub(1);
        state.keys.drain(..keep);
    }

    /// The `kid`s the JWKS publishes, oldest first; the last one signs.
    pub fn key_ids(&self) -> Vec<String> {
        self.state().keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// How many requests the discovery endpoint received.
    pub fn discovery_fetches(&self) -> u64 {
        self.inner.discovery_fetches.load(Ordering::Relaxed)
    }

    /// How many requests the JWKS endpoint received.
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks_fetches.load(Ordering::Relaxed)
    }

    /// How many requests the token endpoint received (refused ones included).
    pub fn token_requests(&self) -> u64 {
        self.inner.token_requests.load(Ordering::Relaxed)
    }

    /// How many `refresh_token` grants the token endpoint received (refused ones included).
    pub fn refresh_requests(&self) -> u64 {
        self.inner.refresh_requests.load(Ordering::Relaxed)
    }

    /// Whether the `refresh_token` grant rotates: answers a new refresh token and marks the
    /// presented one used (presenting a used one again revokes every refresh token of that
    /// consent, and answers `invalid_grant`). Default: off for Google (which does not
    /// rotate), on for Entra (which does), off for the generic provider.
    pub fn set_refresh_rotation(&self, on: bool) {
        self.state().refresh_rotation = on;
    }

    /// How many requests the userinfo endpoint received (refused ones included).
    pub fn userinfo_requests(&self) -> u64 {
        self.inner.userinfo_requests.load(Ordering::Relaxed)
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

impl FakeUser {
    /// The Entra tenant id (`tid`) of users that were given none.
    pub const DEFAULT_TENANT_ID: &'static str = "11111111-2222-4333-8444-555555555555";

    /// A user with this subject (the ID token's `sub`).
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            email: None,
            email_verified: true,
            name: None,
            hosted_domain: None,
            tenant_id: None,
            object_id: None,
            preferred_username: None,
            email_domain_verified: false,
            omit_profile_from_id_token: false,
        }
    }

    /// The `email` claim.
    #[must_use]
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The `email_verified` claim (default true). Entra never sends `email_verified`: its email
    /// claim is unverified.
    #[must_use]
    pub fn email_verified(mut self, verified: bool) -> Self {
        self.email_verified = verified;
        self
    }

    /// The `name` claim.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Google: the `hd` (hosted domain, Google Workspace) claim.
    #[must_use]
    pub fn hosted_domain(mut self, domain: impl Into<String>) -> Self {
        self.hosted_domain = Some(domain.into());
        self
    }

    /// Entra: the `tid` claim (default [`FakeUser::DEFAULT_TENANT_ID`]); the ID token's `iss`
    /// carries it too.
    #[must_use]
    pub fn tenant_id(mut self, tid: impl Into<String>) -> Self {
        self.tenant_id = Some(tid.into());
        self
    }

    /// Entra: the `oid` claim (default: a GUID derived from the subject, never equal to it).
    #[must_use]
    pub fn object_id(mut self, oid: impl Into<String>) -> Self {
        self.object_id = Some(oid.into());
        self
    }

    /// Entra: the `preferred_username` claim (default: the email, if any).
    #[must_use]
    pub fn preferred_username(mut self, username: impl Into<String>) -> Self {
        self.preferred_username = Some(username.into());
        self
    }

    /// Entra: send `xms_edov: true` (the email's domain is verified by the tenant).
    #[must_use]
    pub fn email_domain_verified(mut self, verified: bool) -> Self {
        self.email_domain_verified = verified;
        self
    }

    /// Leave `email`, `email_verified`, `name` and `preferred_username` out of the ID token, so
    /// that the relying party has to call userinfo for them.
    #[must_use]
    pub fn omit_profile_from_id_token(mut self, omit: bool) -> Self {
        self.omit_profile_from_id_token = omit;
        self
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The Entra tenant id this user's tokens carry.
    pub fn effective_tenant_id(&self) -> &str {
        self.tenant_id.as_deref().unwrap_or(Self::DEFAULT_TENANT_ID)
    }

    /// The Entra object id this user's tokens carry.
    pub fn effective_object_id(&self) -> String {
        match &self.object_id {
            Some(oid) => oid.clone(),
            None => derived_guid(&self.subject),
        }
    }
}

/// A GUID-shaped string derived from `seed` (SHA-256, version-4 layout).
fn derived_guid(seed: &str) -> String {
    let digest = Sha256::digest(format!("fake-idp-oid:{seed}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(13..16).unwrap_or_default(),
        hex.get(17..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    )
}

// ---------------------------------------------------------------------------------------------
// Personalities and routing
// ---------------------------------------------------------------------------------------------

enum Personality {
    Google(FixedRoutes),
    Entra,
    Oidc(FixedRoutes),
}

impl Personality {
    fn is_entra(&self) -> bool {
        matches!(self, Self::Entra)
    }

    fn is_google(&self) -> bool {
        matches!(self, Self::Google(_))
    }
}

struct FixedUrls {
    issuer: String,
    discovery: String,
    authorize: String,
    token: String,
    userinfo: String,
    jwks: String,
    revoke: Option<String>,
}

/// The endpoints of a single-issuer provider, with their normalised match keys.
struct FixedRoutes {
    urls: FixedUrls,
    keys: Vec<(String, Endpoint)>,
}

impl FixedRoutes {
    fn new(urls: FixedUrls) -> Self {
        let mut keys = Vec::new();
        let mut add = |url: &str, endpoint: Endpoint| {
            if let Some(key) = Url::parse(url).ok().as_ref().and_then(route_key) {
                keys.push((key, endpoint));
            }
        };
        add(&urls.discovery, Endpoint::Discovery);
        add(&urls.authorize, Endpoint::Authorize);
        add(&urls.token, Endpoint::Token);
        add(&urls.userinfo, Endpoint::Userinfo);
        add(&urls.jwks, Endpoint::Jwks);
        if let Some(revoke) = &urls.revoke {
            add(revoke, Endpoint::Revoke);
        }
        Self { urls, keys }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Discovery,
    Authorize,
    Token,
    Userinfo,
    Jwks,
    Revoke,
}

/// `scheme://host:port/path`, the part of a URL that selects an endpoint.
fn route_key(url: &Url) -> Option<String> {
    Some(format!(
        "{}://{}:{}{}",
        url.scheme(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?,
        url.path()
    ))
}

/// The `{x}` path segment of an Entra URL: `organizations`, `common` or a tenant GUID.
fn entra_segment_ok(x: &str) -> bool {
    if x == "organizations" || x == "common" {
        return true;
    }
    x.len() == 36
        && x.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

impl Inner {
    /// Which endpoint `url` names, with the Entra `{x}` segment when there is one.
    fn route(&self, url: &Url) -> Option<(Endpoint, Option<String>)> {
        match &self.personality {
            Personality::Oidc(routes) | Personality::Google(routes) => {
                let key = route_key(url)?;
                routes
                    .keys
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, e)| (*e, None))
            }
            Personality::Entra => {
                if url.scheme() != "https" || url.port_or_known_default() != Some(443) {
                    return None;
                }
                let host = url.host_str()?.to_ascii_lowercase();
                if host == "graph.microsoft.com" && url.path() == "/oidc/userinfo" {
                    return Some((Endpoint::Userinfo, None));
                }
                if host != ENTRA_HOST {
                    return None;
                }
                let segments: Vec<&str> = url.path_segments()?.collect();
                let (x, rest) = segments.split_first()?;
                if !entra_segment_ok(x) {
                    return None;
                }
                let endpoint = match rest {
                    ["v2.0", ".well-known", "openid-configuration"] => Endpoint::Discovery,
                    ["oauth2", "v2.0", "authorize"] => Endpoint::Authorize,
                    ["oauth2", "v2.0", "token"] => Endpoint::Token,
                    ["discovery", "v2.0", "keys"] => Endpoint::Jwks,
                    _ => return None,
                };
                Some((endpoint, Some((*x).to_owned())))
            }
        }
    }

    /// The issuer of ID tokens for `user`.
    fn token_issuer(&self, user: &FakeUser) -> String {
        match &self.personality {
            Personality::Oidc(routes) | Personality::Google(routes) => routes.urls.issuer.clone(),
            Personality::Entra => FakeIdp::entra_issuer(user.effective_tenant_id()),
        }
    }

    /// The issuer a discovery document states (and the callback's `iss` parameter carries).
    fn metadata_issuer(&self, entra_segment: Option<&str>) -> String {
        match &self.personality {
            Personality::Oidc(routes) | Personality::Google(routes) => routes.urls.issuer.clone(),
            Personality::Entra => match entra_segment {
                Some(x) if x != "organizations" && x != "common" => FakeIdp::entra_issuer(x),
                _ => ENTRA_ISSUER_TEMPLATE.to_owned(),
            },
        }
    }

    fn discovery_document(&self, entra_segment: Option<&str>, iss_parameter: bool) -> Value {
        let issuer = self.metadata_issuer(entra_segment);
        let mut doc = match &self.personality {
            Personality::Oidc(routes) | Personality::Google(routes) => {
                let u = &routes.urls;
                let google = self.personality.is_google();
                let mut claims = vec![
                    "aud",
                    "email",
                    "email_verified",
                    "exp",
                    "iat",
                    "iss",
                    "name",
                    "nonce",
                    "sub",
                ];
                if google {
                    claims.push("hd");
                }
                let mut doc = json!({
                    "issuer": issuer,
                    "authorization_endpoint": u.authorize,
                    "token_endpoint": u.token,
                    "userinfo_endpoint": u.userinfo,
                    "jwks_uri": u.jwks,
                    "response_types_supported": ["code"],
                    "response_modes_supported": ["query"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": if google {
                        json!(["openid", "email", "profile"])
                    } else {
                        json!(["openid", "email", "profile", "offline_access"])
                    },
                    "token_endpoint_auth_methods_supported":
                        ["client_secret_basic", "client_secret_post"],
                    "claims_supported": claims,
                    "code_challenge_methods_supported": ["S256"],
                    "grant_types_supported": ["authorization_code", "refresh_token"],
                });
                if let (Some(revoke), Some(obj)) = (&u.revoke, doc.as_object_mut()) {
                    obj.insert("revocation_endpoint".to_owned(), json!(revoke));
                }
                doc
            }
            Personality::Entra => {
                let x = entra_segment.unwrap_or("organizations");
                let base = format!("https://{ENTRA_HOST}/{x}");
                json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
                    "token_endpoint": format!("{base}/oauth2/v2.0/token"),
                    "userinfo_endpoint": ENTRA_USERINFO,
                    "jwks_uri": format!("{base}/discovery/v2.0/keys"),
                    "response_types_supported": ["code"],
                    "response_modes_supported": ["query"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "token_endpoint_auth_methods_supported":
                        ["client_secret_basic", "client_secret_post"],
                    "claims_supported": [
                        "sub", "iss", "aud", "exp", "iat", "nonce", "name", "email",
                        "preferred_username", "tid", "oid", "ver", "xms_edov"
                    ],
                    "code_challenge_methods_supported": ["S256"],
                    "grant_types_supported": ["authorization_code", "refresh_token"],
                    "tenant_region_scope": null,
                })
            }
        };
        if iss_parameter && let Some(obj) = doc.as_object_mut() {
            obj.insert(
                "authorization_response_iss_parameter_supported".to_owned(),
                Value::Bool(true),
            );
        }
        doc
    }
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

struct SigningKey {
    kid: String,
    pair: KeyPair,
    jwk: Value,
    /// DER `SubjectPublicKeyInfo`, the HMAC key of [`Misbehavior::Hs256WithPublicKey`].
    spki_der: Vec<u8>,
}

impl SigningKey {
    fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .expect("FakeIdp: generating an RSA-2048 key with aws-lc-rs failed");
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let spki: PublicKeyX509Der<'static> = public
            .as_der()
            .expect("FakeIdp: encoding an RSA public key as DER failed");
        let kid = random_token(12);
        let jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": n,
            "e": e,
        });
        Self {
            kid,
            pair,
            jwk,
            spki_der: spki.as_ref().to_vec(),
        }
    }

    fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, FakeIdpError> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| FakeIdpError::Signing)?;
        Ok(signature)
    }
}

/// `bytes` random bytes from the OS CSPRNG, base64url without padding.
fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

// ---------------------------------------------------------------------------------------------
// The authorize step
// ---------------------------------------------------------------------------------------------

/// The query of an authorization URL, with duplicates refused.
struct Query(HashMap<String, String>);

impl Query {
    fn parse(url: &Url) -> Result<Self, FakeIdpError> {
        let mut map = HashMap::new();
        for (k, v) in url.query_pairs() {
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(FakeIdpError::DuplicateParameter(k.into_owned()));
            }
        }
        Ok(Self(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn require(&self, name: &'static str) -> Result<&str, FakeIdpError> {
        self.get(name).ok_or(FakeIdpError::MissingParameter(name))
    }
}

impl FakeIdp {
    /// Plays the user `subject` consenting at the provider to the authorization request
    /// `authorize_url` (as built by the relying party), and returns the query of the callback
    /// the browser would bring back, without `?`: `code=...&state=...`, plus `&iss=...` when the
    /// `iss` parameter is on.
    ///
    /// Checks what the provider would: this provider's authorization endpoint,
    /// `response_type=code`, a registered `client_id`, a `redirect_uri`, `openid` in `scope`,
    /// `state`, `nonce`, a `code_challenge` with `code_challenge_method=S256`, and the user. The
    /// code is random, single-use and valid 10 minutes. The ID token is signed here, not at the
    /// token endpoint, so that timing the token exchange does not time the provider's signing.
    ///
    /// A refresh token is issued at the exchange when `scope` holds `offline_access` or the URL
    /// says `access_type=offline`.
    pub fn authorize(&self, authorize_url: &str, subject: &str) -> Result<String, FakeIdpError> {
        let (url, entra_segment) = self.parse_authorize_url(authorize_url)?;
        let query = Query::parse(&url)?;
        let response_type = query.require("response_type")?;
        if response_type != "code" {
            return Err(FakeIdpError::InvalidParameter {
                name: "response_type",
                reason: format!("`{response_type}` is not supported, only `code`"),
            });
        }
        let client_id = query.require("client_id")?;
        let redirect_uri = query.require("redirect_uri")?;
        let scope = query.require("scope")?;
        if !scope.split(' ').any(|s| s == "openid") {
            return Err(FakeIdpError::InvalidParameter {
                name: "scope",
                reason: "`openid` is missing".to_owned(),
            });
        }
        let state_param = query.require("state")?;
        let nonce = query.require("nonce")?;
        let code_challenge = query.require("code_challenge")?;
        let method = query.require("code_challenge_method")?;
        if method != "S256" {
            return Err(FakeIdpError::InvalidParameter {
                name: "code_challenge_method",
                reason: format!("`{method}` is not supported, only `S256`"),
            });
        }
        let offline = scope.split(' ').any(|s| s == "offline_access")
            || query.get("access_type") == Some("offline");

        let mut state = self.state();
        if !state.clients.contains_key(client_id) {
            return Err(FakeIdpError::UnknownClient(client_id.to_owned()));
        }
        let user = state
            .users
            .get(subject)
            .ok_or_else(|| FakeIdpError::UnknownUser(subject.to_owned()))?;
        let now = state.clock.now().unix_timestamp();
        let claims = self.id_token_claims(&state, user, client_id, nonce, now);
        let id_token = sign_id_token(&state, &claims)?;
        let code = random_token(32);
        let grant = Grant {
            subject: subject.to_owned(),
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            expires_at: 0,
            family: random_token(16),
        };
        state.codes.insert(
            code.clone(),
            IssuedCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                code_challenge: code_challenge.to_owned(),
                expires_at: now + CODE_TTL_SECS,
                id_token,
                grant,
                offline,
            },
        );
        let iss = self.callback_iss(&state, entra_segment.as_deref());
        drop(state);

        let mut out = url::form_urlencoded::Serializer::new(String::new());
        out.append_pair("code", &code);
        out.append_pair("state", state_param);
        if let Some(iss) = iss {
            out.append_pair("iss", &iss);
        }
        Ok(out.finish())
    }

    /// Plays the user (or the provider) refusing the authorization request: returns the callback
    /// query `error=<error>&state=...` (plus `&iss=...` when the `iss` parameter is on).
    /// `error` is typically `access_denied`.
    pub fn deny(&self, authorize_url: &str, error: &str) -> Result<String, FakeIdpError> {
        let (url, entra_segment) = self.parse_authorize_url(authorize_url)?;
        let query = Query::parse(&url)?;
        let state_param = query.require("state")?;
        let iss = self.callback_iss(&self.state(), entra_segment.as_deref());
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        out.append_pair("error", error);
        out.append_pair("state", state_param);
        if let Some(iss) = iss {
            out.append_pair("iss", &iss);
        }
        Ok(out.finish())
    }

    fn parse_authorize_url(
        &self,
        authorize_url: &str,
    ) -> Result<(Url, Option<String>), FakeIdpError> {
        let url = Url::parse(authorize_url).map_err(|e| FakeIdpError::InvalidUrl(e.to_string()))?;
        match self.inner.route(&url) {
            Some((Endpoint::Authorize, segment)) => Ok((url, segment)),
            _ => {
                let mut shown = url.clone();
                shown.set_query(None);
                Err(FakeIdpError::NotAuthorizationEndpoint(shown.to_string()))
            }
        }
    }

    fn callback_iss(&self, state: &State, entra_segment: Option<&str>) -> Option<String> {
        if state.misbehaviors.contains(&Misbehavior::WrongIssParameter) {
            Some(WRONG_ISSUER.to_owned())
        } else if state.iss_parameter {
            Some(self.inner.metadata_issuer(entra_segment))
        } else {
            None
        }
    }

    fn id_token_claims(
        &self,
        state: &State,
        user: &FakeUser,
        client_id: &str,
        nonce: &str,
        now: i64,
    ) -> Map<String, Value> {
        let personality = &self.inner.personality;
        let mut c = Map::new();
        c.insert("iss".into(), json!(self.inner.token_issuer(user)));
        c.insert("sub".into(), json!(user.subject));
        c.insert("aud".into(), json!(client_id));
        c.insert("azp".into(), json!(client_id));
        c.insert("iat".into(), json!(now));
        c.insert("exp".into(), json!(now + TOKEN_TTL_SECS));
        c.insert("nonce".into(), json!(nonce));
        if !user.omit_profile_from_id_token {
            if let Some(email) = &user.email {
                c.insert("email".into(), json!(email));
                if !personality.is_entra() {
                    c.insert("email_verified".into(), json!(user.email_verified));
                }
            }
            if let Some(name) = &user.name {
                c.insert("name".into(), json!(name));
            }
        }
        if personality.is_google()
            && let Some(hd) = &user.hosted_domain
        {
            c.insert("hd".into(), json!(hd));
        }
        if personality.is_entra() {
            c.insert("ver".into(), json!("2.0"));
            c.insert("tid".into(), json!(user.effective_tenant_id()));
            c.insert("oid".into(), json!(user.effective_object_id()));
            if !user.omit_profile_from_id_token
                && let Some(upn) = user.preferred_username.as_ref().or(user.email.as_ref())
            {
                c.insert("preferred_username".into(), json!(upn));
            }
            if user.email_domain_verified {
                c.insert("xms_edov".into(), json!(true));
            }
        }
        for m in &state.misbehaviors {
            match m {
                Misbehavior::WrongIssuer => {
                    c.insert("iss".into(), json!(WRONG_ISSUER));
                }
                Misbehavior::WrongAudience => {
                    c.insert("aud".into(), json!(OTHER_CLIENT));
                    c.remove("azp");
                }
                Misbehavior::ExtraAudienceWithoutAzp => {
                    c.insert("aud".into(), json!([client_id, OTHER_CLIENT]));
                    c.remove("azp");
                }
                Misbehavior::AzpMismatch => {
                    c.insert("azp".into(), json!(OTHER_CLIENT));
                }
                Misbehavior::Expired => {
                    c.insert("iat".into(), json!(now - 3 * 3600));
                    c.insert("exp".into(), json!(now - 2 * 3600));
                }
                Misbehavior::IssuedInFuture => {
                    c.insert("iat".into(), json!(now + 3600));
                    c.insert("exp".into(), json!(now + 2 * 3600));
                }
                Misbehavior::MissingSub => {
                    c.remove("sub");
                }
                Misbehavior::MissingNonce => {
                    c.remove("nonce");
                }
                Misbehavior::WrongNonce => {
                    c.insert("nonce".into(), json!(format!("wrong-{}", random_token(12))));
                }
                _ => {}
            }
        }
        // Last, so that it stringifies whatever `exp` the others chose.
        if state.misbehaviors.contains(&Misbehavior::ExpAsString)
            && let Some(exp) = c.get("exp").map(ToString::to_string)
        {
            c.insert("exp".into(), json!(exp));
        }
        c
    }
}

/// Signs `claims` with the current key, as the active misbehaviours shape it.
fn sign_id_token(state: &State, claims: &Map<String, Value>) -> Result<String, FakeIdpError> {
    let active = |m: Misbehavior| state.misbehaviors.contains(&m);
    let current = state.keys.last().ok_or(FakeIdpError::Signing)?;
    let signer = if active(Misbehavior::UnknownKid) {
        state.unpublished_key.as_ref().unwrap_or(current)
    } else {
        current
    };
    let alg = if active(Misbehavior::AlgNone) {
        "none"
    } else if active(Misbehavior::Hs256WithPublicKey) {
        "HS256"
    } else {
        "RS256"
    };
    let mut header = Map::new();
    header.insert("alg".into(), json!(alg));
    header.insert("typ".into(), json!("JWT"));
    if !active(Misbehavior::NoKidWithSeveralKeys) {
        header.insert("kid".into(), json!(signer.kid));
    }
    let header = serde_json::to_vec(&header).map_err(|_| FakeIdpError::Signing)?;
    let payload = serde_json::to_vec(claims).map_err(|_| FakeIdpError::Signing)?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut signature = match alg {
        "none" => Vec::new(),
        "HS256" => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &signer.spki_der);
            aws_lc_rs::hmac::sign(&key, signing_input.as_bytes())
                .as_ref()
                .to_vec()
        }
        _ => signer.sign_rs256(signing_input.as_bytes())?,
    };
    if active(Misbehavior::BadSignature) {
        for byte in signature.iter_mut().take(8) {
            *byte ^= 0xA5;
        }
    }
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

// ---------------------------------------------------------------------------------------------
// HTTP endpoints
// ---------------------------------------------------------------------------------------------

type Response = http::Response<Vec<u8>>;

#[async_trait]
impl HttpClient for FakeIdp {
    async fn call(&self, request: http::Request<Vec<u8>>) -> Result<Response, HttpError> {
        Ok(self.handle(&request))
    }
}

impl FakeIdp {
    fn handle(&self, request: &http::Request<Vec<u8>>) -> Response {
        let Ok(url) = Url::parse(&request.uri().to_string()) else {
            return error_response(StatusCode::NOT_FOUND, "not_found");
        };
        let Some((endpoint, segment)) = self.inner.route(&url) else {
            return error_response(StatusCode::NOT_FOUND, "not_found");
        };
        let method = request.method();
        match endpoint {
            Endpoint::Discovery => {
                self.inner.discovery_fetches.fetch_add(1, Ordering::Relaxed);
                if method != Method::GET {
                    return method_not_allowed();
                }
                self.discovery(segment.as_deref())
            }
            Endpoint::Jwks => {
                self.inner.jwks_fetches.fetch_add(1, Ordering::Relaxed);
                if method != Method::GET {
                    return method_not_allowed();
                }
                self.jwks()
            }
            Endpoint::Token => {
                self.inner.token_requests.fetch_add(1, Ordering::Relaxed);
                if method != Method::POST {
                    return method_not_allowed();
                }
                self.token(request)
            }
            Endpoint::Userinfo => {
                self.inner.userinfo_requests.fetch_add(1, Ordering::Relaxed);
                if method != Method::GET && method != Method::POST {
                    return method_not_allowed();
                }
                self.userinfo(request)
            }
            Endpoint::Revoke => {
                if method != Method::POST {
                    return method_not_allowed();
                }
                self.revoke(request)
            }
            // The authorization endpoint is for browsers: use `FakeIdp::authorize`.
            Endpoint::Authorize => error_response(StatusCode::NOT_FOUND, "not_found"),
        }
    }

    fn discovery(&self, segment: Option<&str>) -> Response {
        let iss_parameter = {
            let state = self.state();
            if state.misbehaviors.contains(&Misbehavior::DiscoveryRedirect) {
                return http::Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, REDIRECT_LOCATION)
                    .body(Vec::new())
                    .unwrap_or_default();
            }
            state.iss_parameter || state.misbehaviors.contains(&Misbehavior::WrongIssParameter)
        };
        json_response(
            StatusCode::OK,
            &self.inner.discovery_document(segment, iss_parameter),
        )
    }

    fn jwks(&self) -> Response {
        let keys: Vec<Value> = self.state().keys.iter().map(|k| k.jwk.clone()).collect();
        json_response(StatusCode::OK, &json!({ "keys": keys }))
    }

    fn token(&self, request: &http::Request<Vec<u8>>) -> Response {
        let form = match parse_form_request(request) {
            Ok(form) => form,
            Err(refusal) => return refusal.into_response(),
        };
        if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
            self.inner.refresh_requests.fetch_add(1, Ordering::Relaxed);
        }
        let mut state = self.state();
        for m in &state.misbehaviors {
            match m {
                Misbehavior::TokenEndpointStatus(status) => {
                    let status =
                        StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    return error_response(status, "server_error");
                }
                Misbehavior::InvalidGrant => {
                    return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
                }
                _ => {}
            }
        }
        let client_id = match authenticate_client(&state.clients, request, &form) {
            Ok(id) => id,
            Err(refusal) => return refusal.into_response(),
        };
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {}
            Some("refresh_token") => return refresh_grant(state, &form, &client_id),
            Some(_) => return error_response(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
            None => return error_response(StatusCode::BAD_REQUEST, "invalid_request"),
        }
        let Some(code) = form.get("code") else {
            return error_response(StatusCode::BAD_REQUEST, "invalid_request");
        };
        // Single use: taken out whatever happens next.
        let Some(issued) = state.codes.remove(code) else {
            return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
        };
        let now = state.clock.now().unix_timestamp();
        let verifier_ok = form
            .get("code_verifier")
            .is_some_and(|v| pkce_matches(v, &issued.code_challenge));
        if now > issued.expires_at
            || issued.client_id != client_id
            || form.get("redirect_uri") != Some(&issued.redirect_uri)
            || !verifier_ok
        {
            return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
        }

        let access_token = random_token(32);
        let mut grant = issued.grant;
        grant.expires_at = now + TOKEN_TTL_SECS;
        let refresh_token = issued.offline.then(|| random_token(32));
        if let Some(rt) = &refresh_token {
            state.refresh_tokens.insert(rt.clone(), grant.clone());
        }
        let scope = grant.scope.clone();
        state.access_tokens.insert(access_token.clone(), grant);
        let active = |m: Misbehavior| state.misbehaviors.contains(&m);
        let mut body = Map::new();
        body.insert("access_token".into(), json!(access_token));
        body.insert(
            "token_type".into(),
            json!(if active(Misbehavior::TokenTypeNotBearer) {
                "mac"
            } else {
                "Bearer"
            }),
        );
        body.insert("expires_in".into(), json!(TOKEN_TTL_SECS));
        body.insert("scope".into(), json!(scope));
        if !active(Misbehavior::NoIdToken) {
            body.insert("id_token".into(), Value::String(issued.id_token));
        }
        if let Some(rt) = refresh_token {
            body.insert("refresh_token".into(), json!(rt));
        }
        if active(Misbehavior::OversizedTokenResponse) {
            body.insert("padding".into(), json!("x".repeat(2 * 1024 * 1024 + 1)));
        }
        drop(state);
        json_response(StatusCode::OK, &Value::Object(body))
    }

    fn userinfo(&self, request: &http::Request<Vec<u8>>) -> Response {
        let unauthorized = || {
            http::Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")
                .header(header::CONTENT_TYPE, "application/json")
                .body(br#"{"error":"invalid_token"}"#.to_vec())
                .unwrap_or_default()
        };
        let Some(token) = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| strip_scheme(v, "Bearer"))
        else {
            return unauthorized();
        };
        let state = self.state();
        let now = state.clock.now().unix_timestamp();
        let Some(grant) = state
            .access_tokens
            .get(token)
            .filter(|g| now <= g.expires_at)
        else {
            return unauthorized();
        };
        let Some(user) = state.users.get(&grant.subject) else {
            return unauthorized();
        };
        let personality = &self.inner.personality;
        let mut body = Map::new();
        let sub = if state.misbehaviors.contains(&Misbehavior::UserInfoWrongSub) {
            format!("other-{}", user.subject)
        } else {
            user.subject.clone()
        };
        body.insert("sub".into(), json!(sub));
        if let Some(email) = &user.email {
            body.insert("email".into(), json!(email));
            if !personality.is_entra() {
                body.insert("email_verified".into(), json!(user.email_verified));
            }
        }
        if let Some(name) = &user.name {
            body.insert("name".into(), json!(name));
        }
        if personality.is_google()
            && let Some(hd) = &user.hosted_domain
        {
            body.insert("hd".into(), json!(hd));
        }
        drop(state);
        json_response(StatusCode::OK, &Value::Object(body))
    }

    fn revoke(&self, request: &http::Request<Vec<u8>>) -> Response {
        let form = match parse_form_request(request) {
            Ok(form) => form,
            Err(refusal) => return refusal.into_response(),
        };
        let Some(token) = form.get("token") else {
            return error_response(StatusCode::BAD_REQUEST, "invalid_request");
        };
        let mut state = self.state();
        state.access_tokens.remove(token);
        state.refresh_tokens.remove(token);
        drop(state);
        http::Response::builder()
            .status(StatusCode::OK)
            .body(Vec::new())
            .unwrap_or_default()
    }
}

/// The `refresh_token` grant: a new access token for the same consent; with rotation, a new
/// refresh token too, and reuse detection.
fn refresh_grant(
    mut state: MutexGuard<'_, State>,
    form: &HashMap<String, String>,
    client_id: &str,
) -> Response {
    if state
        .misbehaviors
        .contains(&Misbehavior::RefreshInvalidGrant)
    {
        return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let Some(presented) = form.get("refresh_token") else {
        return error_response(StatusCode::BAD_REQUEST, "invalid_request");
    };
    if let Some(family) = state.used_refresh_tokens.remove(presented) {
        // Reuse of a rotated-out token: someone has a copy. Revoke the whole consent, as
        // Entra and OAuth 2.0 Security BCP §4.14 do.
        state.refresh_tokens.map.retain(|_, g| g.family != family);
        return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let Some(grant) = state.refresh_tokens.get(presented).cloned() else {
        return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if grant.client_id != client_id {
        return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let now = state.clock.now().unix_timestamp();
    let access_token = random_token(32);
    let mut access_grant = grant.clone();
    access_grant.expires_at = now + TOKEN_TTL_SECS;
    state
        .access_tokens
        .insert(access_token.clone(), access_grant);
    let rotated = if state.refresh_rotation {
        let next = random_token(32);
        state.refresh_tokens.remove(presented);
        state
            .used_refresh_tokens
            .insert(presented.clone(), grant.family.clone());
        state.refresh_tokens.insert(next.clone(), grant.clone());
        Some(next)
    } else {
        None
    };
    drop(state);
    let mut body = Map::new();
    body.insert("access_token".into(), json!(access_token));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("expires_in".into(), json!(TOKEN_TTL_SECS));
    body.insert("scope".into(), json!(grant.scope));
    if let Some(rt) = rotated {
        body.insert("refresh_token".into(), json!(rt));
    }
    json_response(StatusCode::OK, &Value::Object(body))
}

/// Why a form request was refused before its grant was looked at (a small `Err` type; the
/// response is built at the end).
enum Refusal {
    /// 400 `invalid_request`.
    InvalidRequest,
    /// 401 `invalid_client`, with `WWW-Authenticate: Basic` when the client tried basic auth.
    InvalidClient { basic: bool },
}

impl Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::InvalidRequest => error_response(StatusCode::BAD_REQUEST, "invalid_request"),
            Self::InvalidClient { basic } => invalid_client(basic),
        }
    }
}

/// Parses an `application/x-www-form-urlencoded` body; duplicates and other content types are
/// an `invalid_request`.
fn parse_form_request(
    request: &http::Request<Vec<u8>>,
) -> Result<HashMap<String, String>, Refusal> {
    let content_type_ok = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !content_type_ok {
        return Err(Refusal::InvalidRequest);
    }
    let mut form = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(request.body()) {
        if form.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(Refusal::InvalidRequest);
        }
    }
    Ok(form)
}

/// Authenticates the client with `client_secret_basic` or `client_secret_post` (exactly one).
/// Returns the client id, or the error response.
fn authenticate_client(
    clients: &HashMap<String, String>,
    request: &http::Request<Vec<u8>>,
    form: &HashMap<String, String>,
) -> Result<String, Refusal> {
    let basic = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| strip_scheme(v, "Basic"));
    let (client_id, secret, used_basic) = match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => {
            // RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
            return Err(Refusal::InvalidRequest);
        }
        (Some(credentials), None) => match decode_basic(credentials) {
            Some((id, secret)) => {
                if form.get("client_id").is_some_and(|body_id| *body_id != id) {
                    return Err(Refusal::InvalidClient { basic: true });
                }
                (id, secret, true)
            }
            None => return Err(Refusal::InvalidClient { basic: true }),
        },
        (None, Some(secret)) => match form.get("client_id") {
            Some(id) => (id.clone(), secret.clone(), false),
            None => return Err(Refusal::InvalidClient { basic: false }),
        },
        (None, None) => return Err(Refusal::InvalidClient { basic: false }),
    };
    let accepted = clients
        .get(&client_id)
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(secret.as_bytes())));
    if accepted {
        Ok(client_id)
    } else {
        Err(Refusal::InvalidClient { basic: used_basic })
    }
}

/// `base64(urlencode(id) ":" urlencode(secret))` → `(id, secret)` (RFC 6749 §2.3.1).
fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// The credentials after `scheme ` in an `Authorization` header (scheme case-insensitive).
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim())
        .filter(|s| !s.is_empty())
}

/// `BASE64URL(SHA256(verifier)) == challenge`.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(serde_json::to_vec(body).unwrap_or_default())
        .unwrap_or_default()
}

fn error_response(status: StatusCode, error: &str) -> Response {
    json_response(status, &json!({ "error": error }))
}

fn invalid_client(used_basic: bool) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, "invalid_client");
    if used_basic {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"fake-idp\""),
        );
    }
    response
}

fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "invalid_request")
}

// ---------------------------------------------------------------------------------------------
// A map that forgets its oldest entries
// ---------------------------------------------------------------------------------------------

/// A `HashMap` keyed by random tokens that keeps at most [`MAX_OUTSTANDING`] entries, dropping
/// the oldest: O(1) amortised per operation.
struct BoundedMap<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
}

impl<V> Default for BoundedMap<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V> BoundedMap<V> {
    fn insert(&mut self, key: String, value: V) {
        self.order.push_back(key.clone());
        self.map.insert(key, value);
        while self.map.len() > MAX_OUTSTANDING {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        // Keys removed by `remove` linger in `order`; compact once they dominate.
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    fn remove(&mut self, key: &str) -> Option<V> {
        self.map.remove(key)
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let encoded = STANDARD.encode("my%3Aclient:s%2Bcr+t%25");
        assert_eq!(
            decode_basic(&encoded),
            Some(("my:client".to_owned(), "s+cr t%".to_owned()))
        );
        assert_eq!(decode_basic("!!!"), None);
        assert_eq!(decode_basic(&STANDARD.encode("no-colon")), None);
    }

    #[test]
    fn entra_segments() {
        assert!(entra_segment_ok("organizations"));
        assert!(entra_segment_ok("common"));
        assert!(entra_segment_ok(FakeUser::DEFAULT_TENANT_ID));
        assert!(!entra_segment_ok("consumers-ish"));
        assert!(!entra_segment_ok("11111111x2222-4333-8444-555555555555"));
    }

    #[test]
    fn derived_oid_is_a_guid_and_differs_from_subject() {
        let oid = derived_guid("alice");
        assert!(entra_segment_ok(&oid), "{oid}");
        assert_ne!(oid, "alice");
        assert_eq!(oid, derived_guid("alice"));
    }

    #[test]
    fn bounded_map_forgets_oldest() {
        let mut m = BoundedMap::default();
        for i in 0..(MAX_OUTSTANDING + 10) {
            m.insert(i.to_string(), i);
        }
        assert_eq!(m.len(), MAX_OUTSTANDING);
        assert!(m.get("0").is_none());
        assert!(m.get(&(MAX_OUTSTANDING + 9).to_string()).is_some());
        for i in 0..(3 * MAX_OUTSTANDING) {
            let k = format!("t{i}");
            m.insert(k.clone(), i);
            m.remove(&k);
        }
        assert!(m.order.len() <= 2 * MAX_OUTSTANDING + 1024 + 1);
    }
}

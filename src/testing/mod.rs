//! Test support (feature `test-util`): [`FakeIdp`], an in-process OpenID provider, and the
//! [`conformance`] suite that every [`Store`](crate::store::Store) implementation should pass.
//!
//! [`FakeIdp`] implements [`HttpClient`](crate::HttpClient): build the
//! [`Broker`](crate::Broker) with a clone of it as its transport, and every discovery, JWKS,
//! token, userinfo and revocation request is answered in-process, with no network and no
//! sleeping. The test keeps its own handle to add users, play the user's consent, rotate keys,
//! count requests and make the provider misbehave.
//!
//! With the `axum` feature, [`FakeIdpServer`] serves a generic provider over HTTP on loopback,
//! with a login page where you pick a user: a development provider for a host's local runs
//! and browser tests, reached through a real transport.
//!
//! # Personalities
//!
//! | constructor | discovery | issuer in the ID token |
//! |---|---|---|
//! | [`FakeIdp::google()`] | `https://accounts.google.com/.well-known/openid-configuration` | `https://accounts.google.com` |
//! | [`FakeIdp::entra()`] | `https://login.microsoftonline.com/{x}/v2.0/.well-known/openid-configuration` | `https://login.microsoftonline.com/<user's tid>/v2.0` |
//! | [`FakeIdp::oidc(issuer)`] | `{issuer}/.well-known/openid-configuration` | `issuer` |
//!
//! - **Google**: authorization `https://accounts.google.com/o/oauth2/v2/auth` (and
//!   `https://accounts.google.com/o/oauth2/auth`, the URL mailbox forms show), token
//!   `https://oauth2.googleapis.com/token`, userinfo
//!   `https://openidconnect.googleapis.com/v1/userinfo`, JWKS
//!   `https://www.googleapis.com/oauth2/v3/certs`, revocation
//!   `https://oauth2.googleapis.com/revoke`. ID tokens carry `hd` when the user has a
//!   [hosted domain](crate::testing::FakeUser::hosted_domain).
//! - **Entra**: `{x}` is `organizations`, `common` or a tenant GUID (anything else is a 404).
//!   The discovery document of `organizations` and `common` states the issuer template
//!   `https://login.microsoftonline.com/{tenantid}/v2.0` literally, as Microsoft's does; the one
//!   of a GUID states `https://login.microsoftonline.com/<guid>/v2.0`. Endpoints
//!   `.../{x}/oauth2/v2.0/authorize`, `.../{x}/oauth2/v2.0/token`, JWKS
//!   `.../{x}/discovery/v2.0/keys`, userinfo `https://graph.microsoft.com/oidc/userinfo`; no
//!   revocation endpoint. ID tokens carry `ver`, `tid`, `oid`, a pairwise `sub` (the subject
//!   given to [`FakeUser::new`], distinct from `oid`), `email` **without** `email_verified`
//!   (Entra's email claim is unverified), `preferred_username`, and `xms_edov: true` only for
//!   users built with [`FakeUser::email_domain_verified`]. The user's `tid` is used whatever
//!   `{x}` the authorization URL names.
//! - **Generic** ([`FakeIdp::oidc`]): endpoints `{issuer}/authorize`, `/token`, `/userinfo`,
//!   `/jwks`, `/revoke`.
//!
//! Requests are routed on scheme, host, port and path (the query is ignored); an unknown URL is
//! a 404. Discovery documents parse as `openidconnect`'s `CoreProviderMetadata`: `code` flow,
//! `RS256` (and `ES256` once [`FakeIdp::rotate_key_es256`] published a P-256 key),
//! `client_secret_basic` and `client_secret_post`, PKCE `S256`. They say
//! `authorization_response_iss_parameter_supported: true` only after
//! [`FakeIdp::set_iss_parameter(true)`].
//!
//! # The flow
//!
//! 1. [`FakeIdp::register_client`] and [`FakeIdp::add_user`].
//! 2. The relying party builds an authorization URL; [`FakeIdp::authorize`] plays the user
//!    consenting (checking `response_type=code`, the client, `redirect_uri`, `scope`, `state`,
//!    PKCE `S256`, and `nonce` when `scope` has `openid`) and returns the callback query
//!    `code=...&state=...` (`&iss=...` when on). The ID token is signed *here*, so the token
//!    exchange is cheap to benchmark. [`FakeIdp::deny`] returns `error=...&state=...` instead.
//! 3. The token endpoint authenticates the client (`client_secret_basic`, with the id and secret
//!    form-urlencoded before base64 as RFC 6749 §2.3.1 says, or `client_secret_post`; otherwise
//!    401 `invalid_client`), takes the code (single use, 10 minutes, same client, same
//!    `redirect_uri`, `BASE64URL(SHA256(code_verifier)) == code_challenge`; otherwise 400
//!    `invalid_grant`) and answers `access_token`, `token_type: Bearer`, `expires_in: 3600`,
//!    `scope`, `id_token` when `scope` had `openid`, and a `refresh_token` when `scope` had
//!    `offline_access` or the URL had `access_type=offline`.
//! 4. The `refresh_token` grant (same client only) answers a new `access_token`
//!    (`expires_in: 3600`) and `scope`; no ID token unless [`FakeIdp::set_refresh_id_token`]
//!    asks for one (then one without `nonce`, for the grant's subject, shaped by the active
//!    misbehaviours, when the scope had `openid`). Google does not rotate: no new refresh
//!    token, the old one stays valid. Entra rotates: a new `refresh_token` each time, the
//!    presented one becomes used, and presenting a used one again revokes every refresh
//!    token of that consent (`invalid_grant`), as real providers' reuse detection does. The
//!    generic provider does not rotate unless [`FakeIdp::set_refresh_rotation`] says so.
//!    [`FakeIdp::refresh_requests`] counts refresh grants; [`Misbehavior::RefreshInvalidGrant`]
//!    refuses them.
//! 5. Userinfo takes `Authorization: Bearer <access token>` and answers `sub`, `email`,
//!    `email_verified` (not for Entra), `name` (and `hd`); an unknown or expired token is a
//!    401, a token whose scope has none of `openid`, `email`, `profile` a 403
//!    `insufficient_scope`. Revocation takes `token=...` and answers 200.
//!
//! # Plain OAuth 2.0: the mailbox form
//!
//! A request without `openid` in `scope` is plain OAuth 2.0, the way a mailbox form such as
//! Webex Connect's email asset connects Gmail: authorization URL
//! `https://accounts.google.com/o/oauth2/auth`, scope `https://mail.google.com/` alone, token
//! and refresh URL `https://oauth2.googleapis.com/token`. No nonce is needed, the token
//! endpoint answers no ID token, the refresh grant works as above, and userinfo refuses the
//! mail-only token (the mailbox address comes from the form). Configure the broker with
//! [`ProviderConfig::oauth2`](crate::ProviderConfig::oauth2) and those values to test the
//! story exactly as an admin fills it in.
//!
//! ID tokens: header `{"alg":"RS256","typ":"JWT","kid":...}` (`ES256` when the signing key is a
//! P-256 one), claims `iss`, `sub`, `aud` and
//! `azp` (the client id), `iat`, `exp` (`iat` + 1 hour), `nonce`, `at_hash` (of the access
//! token the exchange returns), `email`, `email_verified`, `name` (unless
//! [`FakeUser::omit_profile_from_id_token`]), and the personality's claims.
//! Keys are RSA-2048, generated with aws-lc-rs when the `FakeIdp` is built (about 100 ms) and
//! at each [`FakeIdp::rotate_key`]; [`FakeIdp::rotate_key_es256`] adds a P-256 signing key.
//! Time is the system clock unless [`FakeIdp::with_clock`]
//! gives another, such as a [`ManualClock`](crate::ManualClock) shared with the broker.
//!
//! Malformed requests get OAuth error responses (`400 {"error":"invalid_request"}`, ...), never a
//! panic. At most 100 000 outstanding codes, access tokens and refresh tokens are remembered
//! (each); the oldest are then forgotten.
//!
//! # Misbehaving
//!
//! [`FakeIdp::misbehave`] switches on a [`Misbehavior`] (forged or malformed ID tokens, token
//! endpoint errors, oversized responses, discovery redirects, a wrong `iss` parameter, a wrong
//! userinfo `sub`, ...) until [`FakeIdp::behave`]; several may be on at once. Token-shaping
//! ones act when [`FakeIdp::authorize`] signs.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use cx_sso::testing::{FakeIdp, FakeUser, Misbehavior};
//! use cx_sso::{HttpClient, ManualClock};
//! use time::OffsetDateTime;
//!
//! let clock = Arc::new(ManualClock::new(OffsetDateTime::from_unix_timestamp(1_767_258_000)?));
//! let idp = FakeIdp::google().with_clock(clock.clone());
//! idp.register_client("client-1", "s3cret");
//! idp.add_user(
//!     FakeUser::new("1234567890")
//!         .email("alice@example.com")
//!         .name("Alice")
//!         .hosted_domain("example.com"),
//! );
//!
//! // The broker gets a clone as its transport; the test keeps `idp`.
//! let transport: Arc<dyn HttpClient> = Arc::new(idp.clone());
//! # let _ = transport;
//!
//! // What the relying party would redirect the browser to:
//! let authorize_url = "https://accounts.google.com/o/oauth2/v2/auth?response_type=code\
//!     &client_id=client-1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid%20email\
//!     &state=st4te&nonce=n0nce&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
//!     &code_challenge_method=S256";
//! let callback = idp.authorize(authorize_url, "1234567890")?;
//! assert!(callback.starts_with("code=") && callback.ends_with("&state=st4te"));
//!
//! // Make the next login's ID token expired.
//! idp.misbehave(Misbehavior::Expired);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`FakeIdp`]: crate::testing::FakeIdp
//! [`FakeIdp::google()`]: crate::testing::FakeIdp::google
//! [`FakeIdp::entra()`]: crate::testing::FakeIdp::entra
//! [`FakeIdp::oidc(issuer)`]: crate::testing::FakeIdp::oidc
//! [`FakeUser::new`]: crate::testing::FakeUser::new
//! [`FakeUser::email_domain_verified`]: crate::testing::FakeUser::email_domain_verified
//! [`FakeIdp::oidc`]: crate::testing::FakeIdp::oidc
//! [`FakeIdp::set_iss_parameter(true)`]: crate::testing::FakeIdp::set_iss_parameter
//! [`FakeIdp::register_client`]: crate::testing::FakeIdp::register_client
//! [`FakeIdp::add_user`]: crate::testing::FakeIdp::add_user
//! [`FakeIdp::authorize`]: crate::testing::FakeIdp::authorize
//! [`FakeIdp::deny`]: crate::testing::FakeIdp::deny
//! [`FakeUser::omit_profile_from_id_token`]: crate::testing::FakeUser::omit_profile_from_id_token
//! [`FakeIdp::rotate_key`]: crate::testing::FakeIdp::rotate_key
//! [`FakeIdp::with_clock`]: crate::testing::FakeIdp::with_clock
//! [`FakeIdp::misbehave`]: crate::testing::FakeIdp::misbehave
//! [`Misbehavior`]: crate::testing::Misbehavior
//! [`FakeIdp::behave`]: crate::testing::FakeIdp::behave
//! [`FakeIdp::set_refresh_rotation`]: crate::testing::FakeIdp::set_refresh_rotation
//! [`FakeIdp::set_refresh_id_token`]: crate::testing::FakeIdp::set_refresh_id_token
//! [`FakeIdp::rotate_key_es256`]: crate::testing::FakeIdp::rotate_key_es256
//! [`FakeIdp::refresh_requests`]: crate::testing::FakeIdp::refresh_requests
//! [`Misbehavior::RefreshInvalidGrant`]: crate::testing::Misbehavior::RefreshInvalidGrant

pub mod conformance;
mod fake_idp;
mod faulty_store;
#[cfg(feature = "axum")]
mod server;

pub use fake_idp::{FakeIdp, FakeIdpError, FakeUser, Misbehavior};
pub use faulty_store::{Fault, FaultyStore, Ops};
#[cfg(feature = "axum")]
pub use server::FakeIdpServer;

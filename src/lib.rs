//! # cx-sso
//!
//! Single sign-on and delegated OAuth for multi-tenant customer-experience platforms (contact
//! centers, help desks, web chat): per-tenant Google, Microsoft Entra and OpenID Connect
//! applications, login and account binding, tenant authentication policy with privileged
//! users, session revocation with a grace delay, and audit events.
//!
//! The host owns its users, passwords, web framework and sessions. The library owns the
//! protocol, the bindings, the policy decisions and the state they need, through traits the
//! host can implement itself: [`Store`] (persistence; [`MemoryStore`] by default, `SqlStore`
//! and `RedisStore` behind features), [`HttpClient`] (transport), and optionally [`Clock`],
//! [`AuditSink`], [`UserDirectory`], [`Spawner`] and [`Sleeper`].
//!
//! # Tutorial
//!
//! Build one [`Broker`] per process. A tenant admin configures an application with the client
//! id and secret they registered at the provider, using the redirect URI the broker derives.
//! A login is two calls: [`Broker::begin_login`] returns the provider URL and a cookie value;
//! [`Broker::complete_login`] takes the callback and says what happened.
//!
//! ```
//! use cx_sso::testing::{FakeIdp, FakeUser};
//! use cx_sso::{
//!     Broker, CallbackRoute, ClientSecret, LoginIntent, LoginOptions, LoginOutcome,
//!     ProviderConfig, ProviderId, ProviderStatus, TenantId, UserId,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In production: Broker::builder().store(my_store).public_base_url(...).build()?, and the
//! // default reqwest transport. Here an in-process Google answers.
//! let google = FakeIdp::google();
//! google.register_client("my-client-id", "my-client-secret");
//! google.add_user(FakeUser::new("1089").email("ana@acme.example").email_verified(true));
//!
//! let broker = Broker::builder()
//!     .http_client(google.clone())
//!     .public_base_url("https://cx.example.com")
//!     .build()?;
//! let tenant = TenantId::new("acme")?;
//! let provider = ProviderId::new("google")?;
//!
//! // 1. The admin page shows the redirect URI to register, then saves the application; the
//! //    answer says whether it is ready (or why not).
//! assert_eq!(
//!     broker.redirect_uri(&tenant, &provider),
//!     "https://cx.example.com/sso/callback/google"
//! );
//! let config = ProviderConfig::google(provider.clone(), "my-client-id",
//!     ClientSecret::new("my-client-secret"));
//! let report = broker.configure_provider(&tenant, config).await?;
//! assert!(report.is_ready(), "{:?}", report.reasons());
//!
//! // 2. The login page: offer the application if it is ready (else show the SSO warning),
//! //    redirect to the provider, set the cookie.
//! assert_eq!(broker.provider_status(&tenant, &provider).await?, ProviderStatus::Ready);
//! let redirect = broker
//!     .begin_login(&tenant, &provider, LoginIntent::SignIn, LoginOptions::new())
//!     .await?;
//! let cookie = redirect.browser_binding.secret().to_owned();
//!
//! // (the user consents at the provider, which redirects back with a query string)
//! let callback_query = google.authorize(redirect.authorize_url.as_str(), "1089")?;
//!
//! // 3. The callback handler, GET /sso/callback/{provider}: the route it served, the query,
//! //    the cookie.
//! let route = CallbackRoute::new(provider.clone());
//! match broker.complete_login(&route, &callback_query, &cookie).await? {
//!     LoginOutcome::SignedIn { user, session, .. } => { /* start the host session */ }
//!     LoginOutcome::LinkRequired { ticket, .. } => {
//!         // First login with this account: ask for the password, then
//!         let me = UserId::new("ana")?;
//!         broker.redeem_link_ticket(&tenant, &ticket, &me).await?;
//!     }
//!     other => println!("{other:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! `examples/quickstart.rs` runs the whole story (`cargo run --example quickstart`).
//!
//! # The SSO warning
//!
//! "If no SSO application is configured or the application is invalid, users will encounter
//! a warning message when attempting to use the SSO feature." Each application has a
//! [`ProviderStatus`]: `NotConfigured`, `Invalid { reasons }` (its last connection check
//! failed, or never ran) or `Ready`, kept with the stored configuration.
//! [`Broker::configure_provider`] and [`Broker::test_connection`] answer a [`ProviderReport`]
//! saying whether the saved application is ready; [`Broker::provider_status`] looks one up
//! (no network); [`Broker::sso_status`] sums up the tenant. [`Broker::begin_login`] refuses an
//! application that is not ready *before* any redirect, with [`Error::NotConfigured`] or
//! [`Error::ProviderInvalid`] (every reason), both [`ErrorKind::NotConfigured`]; and
//! [`Error::provider_status`] turns either into the same [`ProviderStatus`] to render.
//! After fixing an application, an admin runs [`Broker::test_connection`]: logins through it
//! work again once it is ready.
//!
//! # Host routes and per-application options
//!
//! - **Redirect URIs** are `{public_base_url}/sso/callback/{provider}` unless the host names
//!   its own path with [`BrokerBuilder::redirect_path`], such as
//!   `/t/{tenant}/auth/{provider}/callback` for routes already registered at Google or
//!   Microsoft; [`Broker::redirect_uri`] gives the URI of a tenant's application.
//! - **The callback route** is told to [`Broker::complete_login`] as a [`CallbackRoute`] (the
//!   application, and the tenant when the path has one). A callback that belongs to a login for
//!   another tenant or application is refused ([`CallbackError::WrongRoute`]) before the login
//!   is looked up, so it still completes at its own route: the host no longer compares
//!   `outcome.tenant` itself.
//! - **The scope set** of a sign-in request is `openid email profile` (plus any extra scopes)
//!   unless [`ProviderConfig::with_scopes`] gives the exact set: `openid` required, `profile`
//!   and `email` optional, other scopes allowed.
//! - **The ID-token algorithm** can be pinned with
//!   [`ProviderConfig::with_id_token_signed_response_alg`] ([`IdTokenAlgorithm`]): any other
//!   algorithm is refused ([`IdTokenError::AlgorithmMismatch`]), and the connection check
//!   reports the application invalid when the provider does not advertise the pinned one.
//!
//! # Mailbox connections
//!
//! A platform mailbox (a Gmail or Outlook address the platform sends and reads mail as) is
//! connected once by an admin with offline consent, then used over SMTP or IMAP with XOAUTH2:
//!
//! 1. [`Broker::begin_login`] with [`LoginIntent::Connect`] and a [`ConnectionId`] (such as an
//!    email asset id) asks for offline access and the mail scopes: Google
//!    `https://mail.google.com/` with `access_type=offline&prompt=consent`; Microsoft
//!    `offline_access` with the Outlook `SMTP.Send` and `IMAP.AccessAsUser.All` scopes; a
//!    generic OpenID provider `offline_access` with `prompt=consent`; a plain OAuth 2.0
//!    application ([`ProviderConfig::oauth2`], the explicit URLs of a mailbox form) its own
//!    scopes. Connect never creates a session or a binding, and the tenant's sign-in policy
//!    does not apply to it.
//! 2. [`Broker::complete_login`] returns [`LoginOutcome::Connected`] and stores the access
//!    token, refresh token, expiry, granted scopes and mailbox address (from the verified ID
//!    token, userinfo, or the configuration), replacing any previous token set at once.
//! 3. [`Broker::access_token`] returns a valid token, refreshing it within a margin of its
//!    expiry (5 minutes); [`Broker::xoauth2`] wraps it in the SASL string.
//! 4. [`Broker::list_connections`] and [`Broker::revoke_connection`] for the admin page.
//!
//! The cached path is one store read. The refresh is **single-flight**: one async mutex per
//! connection in the process, and across nodes sharing a store a lease (120 s) taken with
//! insert-if-absent; a node that does not hold it polls the record every 25 ms for at most
//! 10 s on the broker's [`Clock`], sleeping through the host's [`Sleeper`]. The lease
//! holder writes with compare-and-swap on the version it read *before* handing out the new
//! access token, so a rotated refresh token (Microsoft) is persisted before it can be needed;
//! a provider that returns no new refresh token (Google) keeps the old one. If the process
//! dies between the provider's answer and the write, the record still holds the previous
//! refresh token: a non-rotating provider accepts it again, a rotating one with reuse
//! detection answers `invalid_grant`. `invalid_grant` marks the connection
//! [`ConnectionStatus::NeedsReconsent`] (data kept for the admin, no retry loop); 5xx and
//! timeouts give [`ConnectionError::Transient`] with a retry hint, tokens untouched; the
//! callers of the same process that ask within the next 5 seconds get that answer too, so an
//! outage costs the provider one request per connection and process every 5 seconds, not one
//! per caller.
//!
//! **No hidden runtime.** The broker spawns and sleeps only through what
//! [`BrokerBuilder::runtime`] (or [`spawner`](BrokerBuilder::spawner) and
//! [`sleeper`](BrokerBuilder::sleeper)) gives it; with the `tokio` feature that is
//! `.runtime(TokioRuntime::current()?)`. Any executor works, and so does giving nothing, with
//! two differences ([`runtime`] has the details): without a [`Spawner`] the refresh runs inline
//! in the caller's future, so a caller that drops it between the provider's answer and the
//! store write loses a rotated refresh token (the connection then needs consent again); without
//! a [`Sleeper`] a caller that finds another node refreshing gets
//! [`ConnectionError::Transient`] at once instead of waiting for it.
//!
//! `examples/mailbox.rs` connects a mailbox and prints the SASL string, token redacted.
//!
//! # Security
//!
//! - **Bindings are keyed by (tenant, issuer, subject)**, never by email. For Entra the issuer
//!   is the tenant-specific one (the `tid` substituted into the template) and the subject is the
//!   immutable `oid`.
//! - **State** is 256 random bits, single-use (taken atomically), expires after 10 minutes,
//!   and is bound to the browser that started the login through a cookie value
//!   ([`LoginRedirect::browser_binding`]): the pending login is stored under the SHA-256 of
//!   the state *and* that value, so a callback replayed with any other cookie (someone who saw
//!   the URL in a Referer header, the history or a proxy log) cannot address it. It is refused
//!   ([`StateError::BrowserMismatch`], audited) and the login stays completable by its own
//!   browser, exactly once however many callbacks race. A replay or an expired state is
//!   refused ([`StateError::Unknown`]); both refusals have the same [`ErrorKind`], so the
//!   sender learns nothing about the login. Link tickets are bound the same way to their
//!   tenant: presented in another tenant, one is refused and stays redeemable in its own.
//!   The state ends in a tag naming its tenant and application (a truncated hash, not a
//!   secret), so a callback at another route is refused before the lookup
//!   ([`CallbackError::WrongRoute`]); a rewritten tag changes the state, which then finds
//!   nothing.
//! - **PKCE S256 and a nonce** on every request. The ID token's signature (RS256, PS256, ES256
//!   or EdDSA, as the provider advertises, or only the one the application pins; never `none`
//!   or HMAC), `iss`, `aud`, `azp`, `exp`,
//!   `iat` and `nonce` are checked ([`IdTokenError`]), and `at_hash` when present (OpenID
//!   Connect Core 3.1.3.8: the left half of the access token's hash, SHA-256 for `*256`,
//!   SHA-384 for `*384`, SHA-512 for `*512` and for `EdDSA`, Ed25519's own hash;
//!   [`IdTokenError::AtHashMismatch`]). RFC 9207's `iss` parameter is checked when present or
//!   advertised. Google's `hd` and Entra's `tid` are checked against the application's
//!   allow-lists.
//! - **Possible attacks are told apart from mistakes**: an `iss` parameter mismatch (mix-up),
//!   a `nonce` that is not the login's (replay, code injection) and an `at_hash` mismatch
//!   (token substitution) are [`ErrorKind::SecurityRefusal`], never "login expired", and are
//!   recorded as [`AuditKind::SecurityRefusal`] (logged at WARN by [`TracingAuditSink`]), as is
//!   a live state presented with the wrong cookie. [`ErrorKind`] lists what each kind means
//!   for the user.
//! - **Keys**: discovery and JWKS are cached per provider; an unknown `kid` triggers at most one
//!   coalesced, rate-limited refetch, and cached keys keep working when the JWKS endpoint fails.
//!   A key set of more than 100 keys is refused ([`DiscoveryError::TooManyKeys`]) and the cache
//!   holds at most [`BrokerBuilder::metadata_cache_capacity`] providers (tenants choose their
//!   issuers), evicting the one fetched longest ago.
//! - **Refreshed ID tokens**: when a mailbox refresh answers an ID token, it is verified as at
//!   sign-in (no `nonce`, OpenID Connect Core §12.2) and its `sub` must be the one the mailbox
//!   was connected with ([`IdTokenError::SubjectMismatch`]); otherwise nothing is stored or
//!   handed out. `docs/rp-certification.md` maps the OpenID Foundation's RP certification tests
//!   to the tests that show each outcome, with the deliberate deviations.
//! - **Transport**: [`ReqwestHttpClient`] has timeouts, follows no redirects and caps response
//!   bodies; the broker refuses 3xx answers and oversize bodies whatever the transport. Issuers
//!   and endpoints must be `https` (loopback `http` is allowed for development).
//! - **Secrets** (client secrets, tokens, tickets, cookie values, PKCE verifiers) have redacted
//!   `Debug`, no `Display`, are zeroized on drop, and never appear in errors, logs or audit
//!   events.
//! - **Secrets at rest** (connection tokens, the client secrets of SSO applications, visitor
//!   keys) are encrypted when the host gives an [`EncryptionKey`]
//!   ([`BrokerBuilder::encryption_key`]): XChaCha20-Poly1305 with a random 192-bit nonce per
//!   write, and what the secret belongs to (tenant, connection / application / audience and
//!   key id, field) bound as associated data, so a value copied to another row does not
//!   decrypt ([`ConnectionError::Undecryptable`] for connections, [`Error::Store`] for the
//!   others, the record left as it is). With a key, values in the clear are refused too.
//!   [`ProviderConfig`] never serialises its client secret.
//! - **XOAUTH2**: a mailbox address holding `\x01`, CR, LF or another control character is
//!   refused, so it cannot forge SASL fields or protocol lines.
//! - **Fail closed**: a store or network failure is an error, never a session or a binding.
//! - `return_to` accepts only relative paths; anything else becomes `/`.
//!
//! # Policies
//!
//! Each rule, and why it exists:
//!
//! - **Authentication method** ([`AuthMethod`]: `Password`, `Sso`, `Either`; `Either` until a
//!   tenant sets one). A tenant cannot be switched to `Sso` unless an SSO application is ready
//!   ([`PolicyError::SsoNotReady`] says why): otherwise everyone would be locked out.
//! - **Grace delay** ([`Broker::set_auth_method`], one hour by default, zero allowed): the switch
//!   is scheduled, not immediate, so calls and chats in progress are not cut and users can bind
//!   their accounts (and already sign in with the coming method) first. Logins begun before
//!   the switch takes effect and completed after are refused ([`StateError::PolicyChanged`]).
//! - **The toggle logs everyone out** ([`SwitchRevocation::AllSessions`], the default, as the
//!   Google sign-in document says: "all users will be logged out every time Google sign-in is
//!   enabled or disabled, one hour after"): when a switch takes effect, every session of the
//!   tenant granted before that moment ends ([`Broker::check_session`] answers
//!   [`RevocationReason::MethodChanged`]), whatever its method, privileged users included, and
//!   sessions granted during the grace too; users sign in again as the new method allows. A
//!   platform that prefers to end only what the new method forbids (a non-privileged password
//!   session when SSO is enforced, an SSO session when passwords are) sets
//!   [`BrokerBuilder::method_switch_revocation`] to [`SwitchRevocation::DisallowedSessions`].
//!   Each switch records the rule in force when it is scheduled.
//! - **Cancelling** a scheduled switch: [`Broker::cancel_auth_method_switch`] (audited; `false`
//!   when nothing is pending, including a switch that has already taken effect), or setting the
//!   current method again. A cancelled switch revokes nothing; SSO sessions granted during its
//!   grace end if the method in force does not allow them ([`RevocationReason::NotAllowed`]).
//! - **Privileged users** keep password access while SSO is enforced, so an admin can still get
//!   in when the identity provider is down or misconfigured. [`Broker::check_password_login`]
//!   answers the same for a user who does not exist as for an ordinary one, so the login page
//!   reveals nothing about who has an account.
//! - **Invite-only linking** ([`LinkingPolicy::InviteOnly`], the default): a provider account
//!   never creates or finds a user by itself; the first login yields a single-use, 10-minute
//!   link ticket that the host redeems after the user proves who they are. Anyone can create
//!   a Google account or an Entra tenant asserting any email, so email alone proves nothing.
//! - **Automatic linking by verified email** ([`LinkingPolicy::AutoLinkVerifiedEmail`]): only
//!   when the provider verifies the email (Google `email_verified`; for Entra the `xms_edov`
//!   claim or a domain the tenant lists, never the plain `email` claim, the "nOAuth" takeover),
//!   it matches exactly one active user whose email the *host* verified (the
//!   pre-account-hijacking defence, see [`UserDirectory`]), and the domain is allowed.
//!   Otherwise: link required or a refusal, never a guess.
//! - **The login email must match** ([`EmailMatch::Required`], per application with
//!   [`ProviderConfig::with_email_match`]; the Google sign-in document's "login email addresses
//!   must match the Google account emails"): on *every* path that creates a binding (from the
//!   security settings, by link ticket, automatically) the account's email must be one the
//!   provider vouches for (the same rules as automatic linking) and the host-verified login
//!   email of exactly one active user, the one being bound. Otherwise the binding is refused
//!   with [`PolicyError::EmailMismatch`] saying why ([`EmailMismatch`]) and audited
//!   (`BindRefused`, rule `email_match.*`); a first sign-in whose email the provider does not
//!   state or vouch for gets no link ticket. Off by default ([`EmailMatch::NotRequired`]):
//!   a user who proves who they are may then bind any account. It needs a [`UserDirectory`].
//! - **Link tickets** are refused for a disabled user, another tenant's user, or a second use;
//!   presented in another tenant, a ticket is refused and stays redeemable in its own.
//! - **Unbinding** a user's last way to sign in is refused while password sign-in is off for
//!   them ([`BindingError::LastSignInMethod`]).
//! - **Audit**: every decision emits an [`AuditEvent`] (tenant, actor, subject, rule) to the
//!   [`AuditSink`] (default: `tracing`).
//!
//! # Features
//!
//! | feature | default | brings |
//! |---|---|---|
//! | `reqwest` | yes | [`ReqwestHttpClient`], the default transport (rustls) |
//! | `tokio` | yes | `TokioRuntime`, the [`Spawner`] and [`Sleeper`] on a tokio runtime |
//! | `sqlite` | no | `store::SqlStore` on SQLite: one node, durable |
//! | `postgres` | no | `store::SqlStore` on PostgreSQL: several nodes on one database |
//! | `redis` | no | `store::RedisStore` for the short-lived records, beside SQL in a [`store::SplitStore`] |
//! | `test-util` | no | [`testing::FakeIdp`] and the [`testing::conformance`] suite for stores |
//! | `axum` | no | [`axum::SsoRoutes`]: login start and callback routes for axum 0.8, with the binding cookie, security headers and error pages; with `test-util`, [`testing::FakeIdpServer`] (the FakeIdp over HTTP on loopback) |
//!
//! # Implementing your own store or transport
//!
//! See [`store`] (the contract, the list of what the crate stores, and an example that
//! compiles) and [`http`].
//!
//! # Architecture
//!
//! The modules sit in layers, and a module imports only its own layer or the ones below it
//! (`tests/architecture.rs` checks every `crate::` and `super::` path in `src/`):
//!
//! | layer | modules | what lives there |
//! |---|---|---|
//! | integrations | `axum`, `testing` | the axum routes; the fake provider and the store conformance suite |
//! | facade | `broker` | [`Broker`] and [`BrokerBuilder`]: the public API, each method a one-line delegation to the capability that does the work (`broker/{mod,builder}.rs`, and one file per capability) |
//! | capabilities | `provider`, `policy`, `session`, `binding`, `connection`, `login`, `visitor` | one concern each, as a service that owns its state (its decoded-record cache, its refresh locks, its own tunables) and works over the shared context; a capability that needs another calls that one's `pub(crate)` methods, never its fields. They import each other without a cycle, in that order (`visitor` needs only `provider`) |
//! | context | `context` | what every capability shares: the store, the transport, the clock, the redirect path, the options no one capability owns, the discovery and key-set cache, the audit sink, the user directory, the spawner and sleeper |
//! | protocol | `oauth` | token endpoint and PKCE (`oauth2`), discovery and key sets (`openidconnect`), userinfo, ID-token verification (`jsonwebtoken`), from plain parameters |
//! | store | `store` | the [`Store`] trait and its backends; the typed record layer (`store/records.rs`: every namespace, its record type, lifetime and format version, the only code that turns records into bytes, and the one compare-and-swap retry with [`StoreError::Contention`]) |
//! | primitives | `error`, `ids`, `secret`, `clock`, `crypto`, `runtime`, `http`, `audit`, `identity`, `directory`, `route` | errors (every error type of the crate), identifiers, secret types, time, random tokens, hashed keys and sealing, the executor and transport seams |
//!
//! No capability imports the facade: [`Broker`] builds the context and the services (in
//! `broker/builder.rs`) and hands each call on, so the facade is the only module that knows
//! them all.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Every [dependencies] entry is used, under every feature set CI builds (clippy -D warnings);
// not under `cfg(test)`, where the dev-dependencies of the other targets are passed too.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]
#![warn(
    unreachable_pub,
    missing_debug_implementations,
    clippy::future_not_send,
    clippy::use_self
)]

mod audit;
#[cfg(feature = "axum")]
pub mod axum;
mod binding;
mod broker;
mod clock;
mod connection;
mod context;
mod crypto;
mod directory;
mod error;
pub mod http;
mod identity;
mod ids;
mod login;
mod oauth;
mod policy;
mod provider;
mod route;
pub mod runtime;
mod secret;
mod session;
pub mod store;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod visitor;

pub use audit::{AuditEvent, AuditKind, AuditSink, MemoryAuditSink, TracingAuditSink};
pub use binding::{AccountBinding, LinkRedeemed};
pub use broker::{Broker, BrokerBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use connection::{
    ConnectionInfo, ConnectionStatus, ProviderRevocation, Xoauth2, Xoauth2Failure,
};
pub use crypto::EncryptionKey;
pub use directory::{NoDirectory, UserDirectory};
pub use error::{
    BindingError, CallbackError, ConfigError, ConnectionError, DiscoveryError, EmailMismatch,
    Error, ErrorKind, IdTokenError, PolicyError, StateError, TokenEndpointError, UserInfoError,
    VisitorAdminError, VisitorTokenError,
};
#[cfg(feature = "reqwest")]
pub use http::ReqwestHttpClient;
pub use http::{HttpClient, HttpError, HttpErrorKind};
pub use identity::ExternalIdentity;
pub use ids::{BindingId, ConnectionId, ProviderId, TenantId, UserId};
pub use login::{CallbackRoute, LoginIntent, LoginOptions, LoginOutcome, LoginRedirect};
pub use policy::{
    AuthMethod, EmailMatch, LinkingPolicy, PasswordDecision, SessionMethod, SwitchRevocation,
    TenantAuthStatus,
};
pub use provider::{
    CheckResult, ClientAuthMethod, ConnectionCheck, EntraAudience, EntraTenancy, IdTokenAlgorithm,
    ProviderConfig, ProviderKind, ProviderProblem, ProviderReport, ProviderStatus, SecretCheck,
    SsoStatus,
};
#[cfg(feature = "tokio")]
pub use runtime::TokioRuntime;
pub use runtime::{Sleeper, Spawner};
pub use secret::{AccessToken, BrowserBinding, ClientSecret, LinkTicket, RefreshToken};
pub use session::{RevocationReason, SessionGrant, SessionStatus};
pub use store::{MemoryStore, Store, StoreError};
pub use visitor::{
    ExportedVisitorKey, VisitorAudience, VisitorClaims, VisitorConfigOptions, VisitorIdentity,
    VisitorKeyId, VisitorKeyInfo, VisitorKeyState, VisitorSigningKey,
};

// The guides in docs/ are compiled and run as doc tests, so that their code stays true. Each
// is attached to an item that exists only while rustdoc collects doc tests, under the features
// its snippets need.
#[cfg(doctest)]
#[doc = include_str!("../docs/README.md")]
pub struct DocsReadme;
#[cfg(all(doctest, feature = "axum", feature = "test-util"))]
#[doc = include_str!("../docs/axum.md")]
pub struct DocsAxum;
#[cfg(all(doctest, feature = "test-util"))]
#[doc = include_str!("../docs/store.md")]
pub struct DocsStore;
#[cfg(all(doctest, feature = "test-util"))]
#[doc = include_str!("../docs/google.md")]
pub struct DocsGoogle;
#[cfg(all(doctest, feature = "test-util"))]
#[doc = include_str!("../docs/entra.md")]
pub struct DocsEntra;
#[cfg(all(doctest, feature = "test-util"))]
#[doc = include_str!("../docs/visitor-keys.md")]
pub struct DocsVisitorKeys;
#[cfg(all(doctest, feature = "test-util"))]
#[doc = include_str!("../docs/mailbox.md")]
pub struct DocsMailbox;

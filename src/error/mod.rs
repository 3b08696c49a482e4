//! The crate's error type.
//!
//! [`Error`] says *what* happened, nested one level where one level is not enough
//! ([`IdTokenError`], [`CallbackError`], ...). [`Error::kind`] maps it to the handful of
//! [`ErrorKind`]s a host turns into pages or status codes. No error ever carries a secret, a
//! token, a code or a URL with a query.

mod ids;
mod oauth;
mod store;

pub(crate) use ids::id_constructors;
pub use oauth::{IdTokenAlgorithm, TokenEndpointError};
pub use store::StoreError;

use crate::http::HttpError;

/// Everything that can go wrong in the broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or argument given by the host is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The tenant has no SSO application with this id.
    #[error("no SSO application `{provider}` is configured for tenant `{tenant}`")]
    NotConfigured {
        /// The tenant.
        tenant: String,
        /// The provider id asked for.
        provider: String,
    },
    /// The tenant's SSO application is saved but not usable: its last connection check
    /// failed (or it was never checked). [`Broker::begin_login`](crate::Broker::begin_login)
    /// answers this before any redirect, so the login page can show the SSO warning instead
    /// of sending the user to the provider; an admin fixes the application and runs
    /// [`Broker::test_connection`](crate::Broker::test_connection).
    #[error("the SSO application `{provider}` of tenant `{tenant}` is not usable: {}", reasons.join("; "))]
    ProviderInvalid {
        /// The tenant.
        tenant: String,
        /// The application.
        provider: String,
        /// Every reason, in words an admin can act on (the same as
        /// [`ProviderStatus::Invalid`](crate::ProviderStatus::Invalid)).
        reasons: Vec<String>,
    },
    /// The callback query could not be accepted.
    #[error("malformed callback: {0}")]
    Callback(#[from] CallbackError),
    /// The login state was unknown, used, expired or from another browser, or the callback's
    /// RFC 9207 issuer is not the provider's.
    #[error("login state rejected: {0}")]
    State(#[from] StateError),
    /// The provider answered the authorization request with an error (`access_denied`, ...).
    #[error("the provider refused the login: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    ProviderDenied {
        /// The OAuth `error` code, such as `access_denied`.
        error: String,
        /// The provider's `error_description`, if any (printable ASCII, at most 256 chars).
        description: Option<String>,
    },
    /// The provider's metadata could not be fetched or is not acceptable.
    #[error("provider discovery failed: {0}")]
    Discovery(#[from] DiscoveryError),
    /// The token endpoint refused or failed the exchange.
    #[error("token endpoint: {0}")]
    TokenEndpoint(#[from] TokenEndpointError),
    /// The ID token was refused.
    #[error("ID token rejected: {0}")]
    IdToken(#[from] IdTokenError),
    /// The userinfo response was refused.
    #[error("userinfo rejected: {0}")]
    UserInfo(#[from] UserInfoError),
    /// A binding or link-ticket operation was refused.
    #[error("{0}")]
    Binding(#[from] BindingError),
    /// The tenant's authentication policy refused the operation.
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// The transport failed.
    #[error("HTTP: {0}")]
    Http(#[from] HttpError),
    /// The store failed; nothing was granted.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A visitor-token configuration, key-ring change or mint was refused: a problem on the
    /// host's side (see [`VisitorAdminError`]).
    #[error("visitor tokens: {0}")]
    VisitorAdmin(#[from] VisitorAdminError),
    /// A visitor token presented for verification was refused: treat the caller as anonymous
    /// (see [`VisitorTokenError`]).
    #[error("visitor token rejected: {0}")]
    VisitorToken(#[from] VisitorTokenError),
    /// A mailbox connection operation was refused or failed.
    #[error("mailbox connection: {0}")]
    Connection(#[from] ConnectionError),
}

/// Coarse classes of [`Error`], for mapping to a page or a status code.
///
/// Each kind says what the *user* (or the host's operator) should be told; the [`Error`]
/// itself says exactly what failed, for logs. Show the page of the kind, not the error's
/// message: the message of a refused callback is for the host's logs, not for whoever sent it.
///
/// | kind | typically | HTTP |
/// |---|---|---|
/// | [`InvalidInput`](Self::InvalidInput) | a bug or bad configuration in the host | 400/500 |
/// | [`NotConfigured`](Self::NotConfigured) | "SSO is not set up (correctly) for your company" | 404/409 |
/// | [`NotFound`](Self::NotFound) | the binding or connection asked for does not exist | 404 |
/// | [`LoginExpired`](Self::LoginExpired) | "this sign-in is no longer valid: start again" | 400/410 |
/// | [`Denied`](Self::Denied) | "you may not sign in this way" | 403 |
/// | [`SecurityRefusal`](Self::SecurityRefusal) | "refused for security reasons"; alert | 403 |
/// | [`ProviderRejected`](Self::ProviderRejected) | "the provider's answer could not be verified" | 502 |
/// | [`Conflict`](Self::Conflict) | "already bound to someone else", "last sign-in method" | 409 |
/// | [`Unavailable`](Self::Unavailable) | "try again later" | 503 |
/// | [`Internal`](Self::Internal) | stored data unusable: an operator must look | 500 |
/// | [`Unauthenticated`](Self::Unauthenticated) | treat the caller as anonymous | 401 |
/// | [`ReconsentRequired`](Self::ReconsentRequired) | "an admin must connect the mailbox again" | 409 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The host passed something invalid (a programming or configuration error).
    InvalidInput,
    /// The tenant's SSO is not configured, not for this provider, the application is invalid
    /// (show the SSO warning: [`Error::provider_status`] says which), not ready to be enforced
    /// ([`PolicyError::SsoNotReady`]), or the provider refuses the application's client
    /// credentials ([`TokenEndpointError::InvalidClient`]): a tenant admin must set it up.
    NotConfigured,
    /// What the host asked for does not exist: a binding ([`BindingError::NotFound`]) or a
    /// mailbox connection ([`ConnectionError::NotFound`]).
    NotFound,
    /// The login attempt cannot be completed any more: its state is unknown, used or expired,
    /// it was started in another browser, its callback is malformed, the tenant's policy
    /// changed since it began, or its link ticket is unknown, used or expired. The user
    /// should start again.
    LoginExpired,
    /// A decision refused it: the user or the provider declined (`access_denied`), the
    /// tenant's policy does not allow this way of signing in, the application requires the
    /// login email to match ([`PolicyError::EmailMismatch`]), or the host's directory reports
    /// the user disabled or not in the tenant ([`BindingError::UserInactive`]).
    Denied,
    /// A possible attack, not a mistake or a timeout: an RFC 9207 `iss` mismatch (mix-up), an
    /// ID token whose `nonce` is not this login's (replay or code injection), or an access
    /// token that is not the one the ID token names (`at_hash`). Refuse, do not invite an
    /// immediate retry, and alert: the broker also records an
    /// [`AuditKind::SecurityRefusal`](crate::AuditKind::SecurityRefusal).
    SecurityRefusal,
    /// The provider misbehaved or sent something that failed verification.
    ProviderRejected,
    /// The request conflicts with what is stored: the provider account is bound to another
    /// user, or removing a binding would leave the user no way to sign in.
    Conflict,
    /// A service (provider or store) is unreachable; trying again later may work.
    Unavailable,
    /// Something the broker stored cannot be used: a record is corrupt or was written by
    /// something else, or a secret does not decrypt under this broker's key for this row
    /// ([`ConnectionError::Undecryptable`]). Not the caller's fault and not transient: an
    /// operator must look. The record is left as it is.
    Internal,
    /// A credential presented by a caller (such as a visitor token) was refused: treat the
    /// caller as anonymous.
    Unauthenticated,
    /// A mailbox connection lost its grant (revoked, expired, reused refresh token) or was
    /// disconnected: an admin must connect it again.
    ReconsentRequired,
}

impl Error {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) => ErrorKind::InvalidInput,
            Self::NotConfigured { .. } | Self::ProviderInvalid { .. } => ErrorKind::NotConfigured,
            // A callback at another tenant's or application's route: the host's routing (or a
            // hand-edited URL); nothing was consumed and the login completes at its own route.
            Self::Callback(CallbackError::WrongRoute) => ErrorKind::InvalidInput,
            // The query comes from the browser, not from the host's code: start again.
            Self::Callback(_) => ErrorKind::LoginExpired,
            Self::State(e) => match e {
                StateError::IssuerMismatch => ErrorKind::SecurityRefusal,
                StateError::Unknown | StateError::BrowserMismatch | StateError::PolicyChanged => {
                    ErrorKind::LoginExpired
                }
            },
            Self::ProviderDenied { .. } => ErrorKind::Denied,
            Self::Discovery(DiscoveryError::Http(e)) if e.is_transient() => ErrorKind::Unavailable,
            Self::Discovery(DiscoveryError::RecentlyFailed) => ErrorKind::Unavailable,
            Self::Discovery(_) | Self::UserInfo(_) => ErrorKind::ProviderRejected,
            Self::IdToken(e) => e.kind(),
            Self::TokenEndpoint(e) if e.is_transient() => ErrorKind::Unavailable,
            Self::TokenEndpoint(TokenEndpointError::InvalidClient) => ErrorKind::NotConfigured,
            Self::TokenEndpoint(_) => ErrorKind::ProviderRejected,
            Self::Binding(e) => match e {
                BindingError::BoundToAnotherUser | BindingError::LastSignInMethod => {
                    ErrorKind::Conflict
                }
                BindingError::TicketInvalid => ErrorKind::LoginExpired,
                BindingError::NotFound => ErrorKind::NotFound,
                BindingError::UserInactive => ErrorKind::Denied,
            },
            Self::Policy(e) => match e {
                PolicyError::SsoNotReady { .. } => ErrorKind::NotConfigured,
                PolicyError::PasswordNotAllowed { .. }
                | PolicyError::SsoNotAllowed
                | PolicyError::NotLinked
                | PolicyError::EmailMismatch(_) => ErrorKind::Denied,
            },
            Self::Http(e) if e.is_transient() => ErrorKind::Unavailable,
            Self::Http(_) => ErrorKind::ProviderRejected,
            Self::Store(StoreError::Corrupt { .. }) => ErrorKind::Internal,
            Self::Store(_) => ErrorKind::Unavailable,
            Self::VisitorAdmin(e) => e.kind(),
            Self::VisitorToken(e) => e.kind(),
            Self::Connection(e) => match e {
                ConnectionError::NotFound => ErrorKind::NotFound,
                ConnectionError::NeedsReconsent { .. } | ConnectionError::Revoked => {
                    ErrorKind::ReconsentRequired
                }
                ConnectionError::Transient { .. } => ErrorKind::Unavailable,
                ConnectionError::Undecryptable => ErrorKind::Internal,
                ConnectionError::InvalidMailbox => ErrorKind::InvalidInput,
                ConnectionError::NoRefreshToken
                | ConnectionError::NoMailbox
                | ConnectionError::MalformedChallenge(_) => ErrorKind::ProviderRejected,
            },
        }
    }
}

impl Error {
    /// The application's status, when this error is the SSO warning of
    /// [`begin_login`](crate::Broker::begin_login): [`ProviderStatus::NotConfigured`](crate::ProviderStatus::NotConfigured)
    /// for [`Error::NotConfigured`], [`ProviderStatus::Invalid`](crate::ProviderStatus::Invalid)
    /// with its reasons for [`Error::ProviderInvalid`]; `None` for every other error. The
    /// same type [`Broker::provider_status`](crate::Broker::provider_status) answers, so a
    /// login page renders the warning one way.
    pub fn provider_status(&self) -> Option<crate::ProviderStatus> {
        match self {
            Self::NotConfigured { .. } => Some(crate::ProviderStatus::NotConfigured),
            Self::ProviderInvalid { reasons, .. } => Some(crate::ProviderStatus::Invalid {
                reasons: reasons.clone(),
            }),
            _ => None,
        }
    }
}

/// Invalid configuration or arguments.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// An identifier has a length its kind does not allow (empty, too long, or for a binding id
    /// not exactly 43 characters) or holds a character that is not allowed.
    #[error("invalid {what}")]
    InvalidIdentifier {
        /// Which identifier.
        what: &'static str,
    },
    /// A URL is malformed or not allowed (issuer and endpoints must be `https`, loopback `http`
    /// excepted).
    #[error("invalid URL for {what}: {reason}")]
    InvalidUrl {
        /// Which URL.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A required value is missing or empty.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A value is present but not acceptable.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which value.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// An option was given to an application of a kind it does not apply to (a hosted-domain
    /// allow-list on an OpenID Connect application, an OAuth 2.0 endpoint on Google): refused
    /// rather than ignored.
    #[error("`{option}` does not apply to {kind} applications")]
    NotApplicable {
        /// The option, named as its [`ProviderConfig`](crate::ProviderConfig) builder method
        /// without `with_` (`allowed_hosted_domains`, `oauth2_mailbox`, `scopes`), or
        /// `entra_verified_domains` for that field of a
        /// [`LinkingPolicy`](crate::LinkingPolicy).
        option: &'static str,
        /// The provider kind, as serialised: `google`, `microsoft`, `oidc` or `oauth2`.
        kind: &'static str,
    },
}

/// Why a callback query was refused before any state was looked up.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackError {
    /// The query is longer than the limit.
    #[error("callback query is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A parameter appears more than once.
    #[error("parameter `{0}` appears more than once")]
    DuplicateParameter(String),
    /// Both `code` and `error` are present.
    #[error("both `code` and `error` are present")]
    CodeAndError,
    /// A required parameter is missing.
    #[error("parameter `{0}` is missing")]
    Missing(&'static str),
    /// A parameter is not acceptable (too long, bad characters).
    #[error("parameter `{0}` is malformed")]
    Malformed(&'static str),
    /// The callback belongs to a login begun for another tenant or application than the
    /// route that received it ([`CallbackRoute`](crate::CallbackRoute)). Nothing was
    /// consumed: the login can still complete at its own route.
    #[error("the callback belongs to a login for another tenant or application")]
    WrongRoute,
}

/// Why the login state was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// No pending login has this state: it was never issued, already used, or has expired.
    #[error("unknown, already used or expired state")]
    Unknown,
    /// A live login's state came with another browser's cookie (or none): a lost cookie, or
    /// someone replaying a callback URL they saw. The login is left in place for the browser
    /// that began it. Same [`ErrorKind`] as [`Unknown`](Self::Unknown), so the page tells the
    /// sender nothing; audited as an
    /// [`AuditKind::SecurityRefusal`](crate::AuditKind::SecurityRefusal).
    #[error("the login was started in another browser")]
    BrowserMismatch,
    /// The RFC 9207 `iss` parameter does not match the provider, or is missing although the
    /// provider advertises it: a possible mix-up attack, [`ErrorKind::SecurityRefusal`].
    #[error("the `iss` parameter does not match the provider")]
    IssuerMismatch,
    /// The login was started under a tenant policy that has since changed.
    #[error("the tenant's sign-in policy changed after this login started")]
    PolicyChanged,
}

/// Why provider metadata was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The discovery document or JWKS could not be fetched.
    #[error("fetch failed: {0}")]
    Http(#[source] HttpError),
    /// The provider answered with a redirect, which is never followed.
    #[error("the provider answered with a redirect (status {0}), which is not followed")]
    Redirect(u16),
    /// The provider answered with an unexpected status.
    #[error("unexpected status {0}")]
    Status(u16),
    /// The response is larger than the cap.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The document is not valid metadata.
    #[error("invalid document: {0}")]
    Invalid(String),
    /// The document's `issuer` is not the expected one.
    #[error("issuer mismatch: expected `{expected}`, found `{found}`")]
    IssuerMismatch {
        /// The issuer the configuration implies.
        expected: String,
        /// The issuer the document states.
        found: String,
    },
    /// A fetch failed moments ago and nothing is cached: refused at once rather than queueing
    /// another timeout (retried after 30 seconds).
    #[error("the provider's metadata could not be fetched moments ago; retrying shortly")]
    RecentlyFailed,
    /// An endpoint in the document is not `https` (loopback `http` excepted).
    #[error("endpoint `{0}` is not https")]
    InsecureEndpoint(&'static str),
    /// The key set has more keys than the limit (the number given): refused whole, without
    /// decoding the keys beyond it. Providers publish a handful.
    #[error("the key set has more than {0} keys")]
    TooManyKeys(usize),
}

/// Why a userinfo response was refused. None carries the body, the access token or the URL;
/// a malformed body is located (line, column), never quoted.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserInfoError {
    /// The request could not be built from the endpoint and the access token.
    #[error("the request could not be built")]
    Request,
    /// The endpoint answered with a status other than 200.
    #[error("status {0}")]
    Status(u16),
    /// The response is larger than the cap.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not JSON.
    #[error("the body is not JSON (line {line}, column {column})")]
    NotJson {
        /// Where the parser stopped (1-based).
        line: usize,
        /// Where the parser stopped (1-based).
        column: usize,
    },
    /// The body is JSON but not a userinfo object (not an object, or a claim of the wrong type).
    #[error("the body is not a userinfo object (line {line}, column {column})")]
    InvalidDocument {
        /// Where the parser stopped (1-based).
        line: usize,
        /// Where the parser stopped (1-based).
        column: usize,
    },
    /// The response has no `sub` claim.
    #[error("the response has no `sub`")]
    MissingSubject,
    /// `sub` differs from the ID token's: the answer is about another user.
    #[error("`sub` differs from the ID token's")]
    SubjectMismatch,
}

impl UserInfoError {
    /// The refusal for a body `serde_json` could not read, located but not quoted: its
    /// message can quote the body.
    pub(crate) fn from_json(e: &serde_json::Error) -> Self {
        let (line, column) = (e.line(), e.column());
        match e.classify() {
            serde_json::error::Category::Data => Self::InvalidDocument { line, column },
            _ => Self::NotJson { line, column },
        }
    }
}

impl IdTokenError {
    /// The coarse class of this error: [`ErrorKind::SecurityRefusal`] for the checks that exist
    /// to catch an attack on a working provider (`nonce`, `at_hash`, a refreshed token's `sub`),
    /// otherwise
    /// [`ErrorKind::ProviderRejected`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NonceMismatch | Self::AtHashMismatch | Self::SubjectMismatch => {
                ErrorKind::SecurityRefusal
            }
            Self::Malformed(_)
            | Self::AlgorithmNotAllowed(_)
            | Self::AlgorithmMismatch { .. }
            | Self::UnsupportedCritical
            | Self::AmbiguousKey
            | Self::UnknownKey
            | Self::KeyMismatch
            | Self::BadSignature
            | Self::MalformedClaim(_)
            | Self::MissingClaim(_)
            | Self::WrongIssuer
            | Self::WrongAudience
            | Self::UntrustedAudience
            | Self::AzpMismatch
            | Self::Expired
            | Self::IssuedInFuture
            | Self::NonceMissing
            | Self::HostedDomainNotAllowed
            | Self::TenantNotAllowed
            | Self::TooLarge => ErrorKind::ProviderRejected,
        }
    }
}

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not three base64url parts, or a part is not JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header's `alg` is `none`, HMAC, or not advertised by the provider.
    #[error("algorithm `{0}` is not accepted")]
    AlgorithmNotAllowed(String),
    /// The application pins its ID-token algorithm and the token is signed with another.
    #[error("algorithm `{found}` is not the pinned `{expected}`")]
    AlgorithmMismatch {
        /// The pinned algorithm.
        expected: IdTokenAlgorithm,
        /// The token's algorithm.
        found: IdTokenAlgorithm,
    },
    /// The header lists a `crit` extension we do not understand.
    #[error("unsupported critical header")]
    UnsupportedCritical,
    /// No `kid` and the provider has several keys.
    #[error("no kid in the header and the provider has several keys")]
    AmbiguousKey,
    /// No key with this `kid`, even after refetching the provider's keys.
    #[error("unknown signing key")]
    UnknownKey,
    /// The key's type does not fit the algorithm.
    #[error("key does not fit the algorithm")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// A claim has the wrong type (such as a string `exp`).
    #[error("claim `{0}` is malformed")]
    MalformedClaim(String),
    /// A required claim is missing.
    #[error("claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// `iss` is not the provider's issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain our client id.
    #[error("wrong audience")]
    WrongAudience,
    /// `aud` has other audiences besides ours and there is no `azp`.
    #[error("untrusted additional audience without azp")]
    UntrustedAudience,
    /// `azp` is not our client id.
    #[error("azp is not our client id")]
    AzpMismatch,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// The `nonce` claim is missing.
    #[error("nonce missing")]
    NonceMissing,
    /// The `nonce` claim is not the one of this login.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The `at_hash` claim does not match the access token returned with the ID token (OpenID
    /// Connect Core 3.1.3.8): the access token was substituted.
    #[error("at_hash does not match the access token")]
    AtHashMismatch,
    /// Google: `hd` is missing or not an allowed hosted domain.
    #[error("hosted domain not allowed")]
    HostedDomainNotAllowed,
    /// Microsoft: `tid` is missing or not on the allow-list.
    #[error("Entra tenant not allowed")]
    TenantNotAllowed,
    /// The token is larger than the limit.
    #[error("token too large")]
    TooLarge,
    /// An ID token answered by a refresh names another subject (`sub`) than the one the
    /// connection was made with (OpenID Connect Core §12.2).
    #[error("the refreshed ID token is for another subject")]
    SubjectMismatch,
}

/// Why a binding or ticket operation was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindingError {
    /// This provider account is already bound to another user of the tenant.
    #[error("this provider account is already bound to another user")]
    BoundToAnotherUser,
    /// The link ticket is unknown, already used or expired.
    #[error("the link ticket is unknown, already used or expired")]
    TicketInvalid,
    /// No such binding.
    #[error("no such binding")]
    NotFound,
    /// The user is disabled, or not a user of this tenant.
    #[error("the user is not an active user of this tenant")]
    UserInactive,
    /// Removing this binding would leave the user no way to sign in (password sign-in is off
    /// for them).
    #[error("this is the user's last way to sign in; password sign-in is disabled for them")]
    LastSignInMethod,
}

/// Why the tenant's authentication policy refused an operation.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The tenant cannot be switched to SSO: no (or not the named) SSO application is ready.
    #[error("SSO cannot be enforced: {reason}")]
    SsoNotReady {
        /// Why, in words an admin can act on.
        reason: String,
    },
    /// Password sign-in is off for this user; these applications are offered instead.
    #[error("password sign-in is disabled for this tenant; use SSO")]
    PasswordNotAllowed {
        /// The applications to offer (empty: every ready one).
        providers: Vec<crate::ids::ProviderId>,
    },
    /// SSO sign-in through this application is not allowed by the tenant's method.
    #[error("SSO sign-in through this application is not allowed for this tenant")]
    SsoNotAllowed,
    /// The provider account is not bound, and the tenant does not link on first sign-in.
    #[error("this provider account is not linked to a user, and linking on first sign-in is off")]
    NotLinked,
    /// The application requires the provider account's email to be the login email of the
    /// user it is bound to ([`EmailMatch::Required`](crate::EmailMatch::Required)), and it is
    /// not: no binding was made.
    #[error("the provider account's email must be the user's login email: {0}")]
    EmailMismatch(EmailMismatch),
}

/// Why [`EmailMatch::Required`](crate::EmailMatch::Required) refused a binding
/// ([`PolicyError::EmailMismatch`]). None carries the email itself.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmailMismatch {
    /// The provider stated no email for the account.
    #[error("the provider stated no email")]
    NoEmail,
    /// The provider does not vouch for the email (Google or OpenID `email_verified` not true;
    /// Microsoft Entra without `xms_edov` or a domain the application lists).
    #[error("the provider has not verified the email")]
    NotVerified,
    /// The email is not the verified login email of this user: no active user of the tenant
    /// has it as a host-verified email, or another user does.
    #[error("the email is not this user's verified login email")]
    NotTheUsersEmail,
    /// Several active users of the tenant have this verified email: it identifies nobody.
    #[error("several users have this email")]
    Ambiguous,
}

/// Why a visitor-token configuration, key-ring change or mint was refused.
///
/// These are problems on the host's side: a configuration that is missing or already there, a
/// key that is not acceptable, a key-ring change the ring's state does not allow, claims or a
/// lifetime that cannot be minted. A token presented by a visitor is never the cause (that is a
/// [`VisitorTokenError`]). No variant carries a key or a claim value.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VisitorAdminError {
    /// No visitor configuration exists for this tenant and audience.
    #[error("no visitor configuration for this tenant and audience")]
    NotConfigured,
    /// A visitor configuration already exists for this tenant and audience.
    #[error("a visitor configuration already exists for this tenant and audience")]
    ConfigExists,
    /// An imported key is shorter than 32 bytes (256 bits).
    #[error("key is shorter than 32 bytes")]
    KeyTooShort,
    /// An imported key is longer than the limit.
    #[error("key is longer than {0} bytes")]
    KeyTooLong(usize),
    /// An imported key equals the client secret of one of the tenant's SSO applications.
    #[error("key reuses a client secret of the tenant's SSO applications")]
    KeyReusesClientSecret,
    /// No key with this `kid` is in the configuration's key ring.
    #[error("no such key in the key ring")]
    NoSuchKey,
    /// A key with this `kid` is already in the key ring.
    #[error("a key with this kid is already in the key ring")]
    DuplicateKid,
    /// The key is not in a state that allows the operation (such as retiring the signing key,
    /// or promoting a retired one).
    #[error("key state does not allow this: {0}")]
    KeyState(&'static str),
    /// The key ring holds as many usable keys as allowed; retire one first.
    #[error("the key ring already holds {0} usable keys")]
    TooManyKeys(usize),
    /// The claims to mint are not acceptable.
    #[error("invalid visitor claims: {0}")]
    InvalidClaims(&'static str),
    /// The requested lifetime is not positive or exceeds the configuration's maximum.
    #[error("token lifetime is not positive or exceeds the configuration's maximum")]
    LifetimeTooLong,
    /// The key ring has no signing key (it should always have one).
    #[error("the key ring has no signing key")]
    NoSigningKey,
    /// Not returned any more: a key-ring change that keeps losing to other writers is
    /// [`Error::Store`] with [`StoreError::Contention`], like every compare-and-swap update of
    /// the crate. Kept so that existing matches compile.
    #[error("the key ring changed concurrently too many times; try again")]
    Contended,
}

impl VisitorAdminError {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotConfigured => ErrorKind::NotConfigured,
            Self::ConfigExists
            | Self::NoSuchKey
            | Self::DuplicateKid
            | Self::KeyState(_)
            | Self::TooManyKeys(_) => ErrorKind::Conflict,
            Self::Contended => ErrorKind::Unavailable,
            Self::KeyTooShort
            | Self::KeyTooLong(_)
            | Self::KeyReusesClientSecret
            | Self::InvalidClaims(_)
            | Self::LifetimeTooLong
            | Self::NoSigningKey => ErrorKind::InvalidInput,
        }
    }
}

/// Why a visitor token presented for verification was refused; each variant names one check.
///
/// Every variant is [`ErrorKind::Unauthenticated`]: treat the caller as anonymous. None carries
/// the token, a key or a claim value, only the name of what failed. Grouped as the token is
/// read: its shape and header (checked before any store lookup), its key, its signature, its
/// claims.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VisitorTokenError {
    // --- shape and header ---
    /// The token is larger than the limit.
    #[error("token larger than {0} bytes")]
    TooLarge(usize),
    /// Not three dot-separated parts, or a part is not the expected JSON.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// A part is not unpadded base64url (`=`, `+`, `/` or another character outside the
    /// URL-safe alphabet, or non-canonical trailing bits).
    #[error("a part of the token is not unpadded base64url")]
    BadBase64,
    /// The header has no `alg`.
    #[error("the header has no alg")]
    MissingAlg,
    /// The header's `alg` is not `HS256`.
    #[error("algorithm `{0}` is not accepted")]
    AlgorithmNotAllowed(String),
    /// The header's `typ` is present and not `JWT`.
    #[error("the header's typ is not JWT")]
    WrongType,
    /// The header has a `crit` member; no extension is understood.
    #[error("unsupported critical header")]
    UnsupportedCritical,
    /// A header member appears more than once.
    #[error("header member appears more than once")]
    DuplicateHeaderMember,
    /// The header has no `kid`.
    #[error("the header has no kid")]
    MissingKid,
    /// The `kid` is not a string of 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
    #[error("invalid kid")]
    InvalidKid,

    // --- key ---
    /// No key of this configuration has this `kid`.
    #[error("unknown signing key")]
    UnknownKey,
    /// The key with this `kid` was retired.
    #[error("the signing key was retired")]
    KeyRetired,

    // --- signature ---
    /// The signature does not verify: the header or payload was changed, or another key signed.
    #[error("bad signature")]
    BadSignature,
    /// The signature is not the 43 base64url characters of an HMAC-SHA256 (cut short, or
    /// missing).
    #[error("signature truncated or missing")]
    TruncatedSignature,

    // --- claims ---
    /// A claim has the wrong type or an unacceptable value (such as a string `exp`).
    #[error("claim `{0}` is malformed")]
    MalformedClaim(&'static str),
    /// A required claim is missing.
    #[error("claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// A claim appears more than once.
    #[error("claim appears more than once")]
    DuplicateClaim,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `exp` is further away than the configuration's maximum lifetime (plus leeway).
    #[error("token expires later than the maximum lifetime allows")]
    ExpiresTooLate,
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `scope` is not `"user"`.
    #[error("scope is not `user`")]
    WrongScope,
    /// Single-use mode: this `jti` was already accepted.
    #[error("token already used")]
    Replayed,
}

impl VisitorTokenError {
    /// The coarse class of this error: always [`ErrorKind::Unauthenticated`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Unauthenticated
    }
}

/// Why a mailbox connection operation was refused or failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The tenant has no connection with this id.
    #[error("no such connection")]
    NotFound,
    /// The provider refused the refresh token (`invalid_grant`: consent withdrawn, password
    /// changed, token expired or reused). The stored data is kept for the admin to see; an
    /// admin must connect the mailbox again.
    #[error("the connection needs consent again: {reason}")]
    NeedsReconsent {
        /// Why, in words an admin can act on.
        reason: String,
    },
    /// The connection was revoked by an admin; connect it again to use it.
    #[error("the connection was revoked")]
    Revoked,
    /// The provider failed (5xx, timeout) or another node's refresh did not finish in time.
    /// The tokens are kept; try again after `retry_after`.
    #[error("temporarily unavailable; retry in {retry_after}")]
    Transient {
        /// How long to wait before trying again.
        retry_after: time::Duration,
    },
    /// A stored token does not decrypt under this broker's key for this tenant and connection
    /// (another key, a row copied from elsewhere, or tampering). The record is left as it is.
    #[error("stored tokens do not decrypt for this connection")]
    Undecryptable,
    /// The provider issued no refresh token: offline access was not granted.
    #[error("the provider issued no refresh token (offline access not granted)")]
    NoRefreshToken,
    /// No mailbox address: neither the ID token, userinfo nor the configuration gave one.
    #[error("the provider gave no mailbox address")]
    NoMailbox,
    /// The mailbox address is empty, too long, or holds `\x01`, CR, LF or another control
    /// character (it would break the SASL XOAUTH2 framing).
    #[error("the mailbox address is empty, too long or holds control characters")]
    InvalidMailbox,
    /// A server's XOAUTH2 error challenge is not base64 JSON with a `status`.
    #[error("malformed XOAUTH2 challenge: {0}")]
    MalformedChallenge(&'static str),
}

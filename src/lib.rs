//! # cx-sso
//!
//! Single sign-on and delegated OAuth for multi-tenant customer-experience platforms.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(
    unreachable_pub,
    missing_debug_implementations,
    clippy::future_not_send,
    clippy::use_self
)]

mod audit;
mod binding;
mod broker;
mod clock;
mod directory;
mod error;
pub mod http;
mod identity;
mod ids;
mod login;
mod policy;
mod provider;
mod secret;
mod session;
pub mod store;
/// Test support (feature `test-util`): [`testing::FakeIdp`], an in-process OpenID provider,
/// and the [`testing::conformance`] suite for [`Store`] implementations.
#[cfg(feature = "test-util")]
pub mod testing;

pub use audit::{AuditEvent, AuditKind, AuditSink, MemoryAuditSink, TracingAuditSink};
pub use binding::{AccountBinding, LinkRedeemed};
pub use broker::{Broker, BrokerBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use directory::{NoDirectory, UserDirectory};
pub use error::{
    BindingError, CallbackError, ConfigError, DiscoveryError, Error, ErrorKind, IdTokenError,
    PolicyError, StateError, TokenEndpointError,
};
#[cfg(feature = "reqwest")]
pub use http::ReqwestHttpClient;
pub use http::{HttpClient, HttpError, HttpErrorKind};
pub use identity::ExternalIdentity;
pub use ids::{ProviderId, TenantId, UserId};
pub use login::{LoginIntent, LoginOptions, LoginOutcome, LoginRedirect};
pub use policy::{AuthMethod, LinkingPolicy, PasswordDecision, SessionMethod, TenantAuthStatus};
pub use provider::{
    CheckResult, ClientAuthMethod, ConnectionCheck, EntraAudience, EntraTenancy, ProviderConfig,
    ProviderKind, ProviderProblem, SecretCheck, SsoStatus,
};
pub use secret::{AccessToken, BrowserBinding, ClientSecret, LinkTicket, RefreshToken};
pub use session::{RevocationReason, SessionGrant, SessionStatus};
pub use store::{MemoryStore, Store, StoreError};

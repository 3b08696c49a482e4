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

mod binding;
mod broker;
mod clock;
mod error;
pub mod http;
mod identity;
mod ids;
mod login;
mod provider;
mod secret;
pub mod store;

pub use binding::AccountBinding;
pub use broker::{Broker, BrokerBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{
    BindingError, CallbackError, ConfigError, DiscoveryError, Error, ErrorKind, IdTokenError,
    StateError, TokenEndpointError,
};
#[cfg(feature = "reqwest")]
pub use http::ReqwestHttpClient;
pub use http::{HttpClient, HttpError, HttpErrorKind};
pub use identity::ExternalIdentity;
pub use ids::{ProviderId, TenantId, UserId};
pub use login::{LoginIntent, LoginOptions, LoginOutcome, LoginRedirect};
pub use provider::{
    CheckResult, ClientAuthMethod, ConnectionCheck, EntraAudience, EntraTenancy, ProviderConfig,
    ProviderKind, ProviderProblem, SecretCheck, SsoStatus,
};
pub use secret::{AccessToken, BrowserBinding, ClientSecret, LinkTicket, RefreshToken};
pub use store::{MemoryStore, Store, StoreError};

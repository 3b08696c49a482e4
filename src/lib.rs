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

mod broker;
mod clock;
mod error;
pub mod http;
mod ids;
mod secret;
pub mod store;
pub mod visitor;

pub use broker::{Broker, BrokerBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{
    BindingError, CallbackError, ConfigError, DiscoveryError, Error, ErrorKind, IdTokenError,
    StateError, TokenEndpointError, VisitorError,
};
#[cfg(feature = "reqwest")]
pub use http::ReqwestHttpClient;
pub use http::{HttpClient, HttpError, HttpErrorKind};
pub use ids::{ProviderId, TenantId, UserId};
pub use secret::{AccessToken, BrowserBinding, ClientSecret, LinkTicket, RefreshToken};
pub use store::{MemoryStore, Store, StoreError};
pub use visitor::{
    ExportedVisitorKey, VisitorAudience, VisitorClaims, VisitorConfigOptions, VisitorIdentity,
    VisitorKeyId, VisitorKeyInfo, VisitorKeyState, VisitorSigningKey,
};

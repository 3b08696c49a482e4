//! Login routes for [axum](https://docs.rs/axum) 0.8 (feature `axum`).
//!
//! [`SsoRoutes`] is a router with two routes on the host's own paths:
//!
//! - **start** (default `GET|POST /sso/login/{provider}`): asks the host's [`SsoHost::start`]
//!   which login this is (tenant, intent, options), calls
//!   [`Broker::begin_login`](crate::Broker::begin_login), sets the browser-binding cookie and
//!   answers `303 See Other` to the provider. A refusal before any redirect (the SSO warning:
//!   application not configured or invalid; passwords-only tenant) goes to
//!   [`SsoHost::failed`].
//! - **callback** (default `GET /sso/callback/{provider}`, the broker's redirect URI): reads the
//!   cookie, calls [`Broker::complete_login`](crate::Broker::complete_login) and hands the
//!   [`LoginOutcome`](crate::LoginOutcome) to [`SsoHost::completed`], or the refusal to
//!   [`SsoHost::failed`]. Every answer carries `Referrer-Policy: no-referrer` and
//!   `Cache-Control: no-store` (the URL holds the code and state) and deletes the cookie.
//!
//! # The cookie
//!
//! [`BindingCookie`]: `HttpOnly`, `SameSite=Lax`, `Path=/`, expiring with the login, and
//! `Secure` with the `__Host-` prefix. Only
//! [`BindingCookie::insecure_for_loopback_development`] drops `Secure`, and the router refuses
//! it unless the redirect URIs are `http` on a loopback host.
//!
//! # Errors
//!
//! A refused login is shown as a [`Refusal`]: a status code and a short message chosen from the
//! error's [`ErrorKind`](crate::ErrorKind) only, so nothing internal reaches the page. The
//! [`Error`](crate::Error) itself is logged (`tracing`, at `WARN`) and handed to
//! [`SsoHost::failed`] for the host's own logs.
//!
//! Nothing else of the crate depends on axum; without the feature it is not compiled.

mod cookie;
mod host;
mod refusal;
mod routes;

pub use cookie::BindingCookie;
pub use host::{LoginStart, SsoHost, SsoRequest};
pub use refusal::Refusal;
pub use routes::SsoRoutes;

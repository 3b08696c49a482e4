//! What the host decides: which login a request starts, and what a completed login does.

use ::axum::response::{IntoResponse, Response};
use async_trait::async_trait;

use crate::error::Error;
use crate::ids::{ConnectionId, ProviderId, TenantId, UserId};
use crate::login::{LoginIntent, LoginOptions, LoginOutcome};

use super::Refusal;

/// A request to one of the login routes, as the host needs to see it: the request's head (its
/// headers, for the host's own session cookie; its URI) and the ids the route's path named.
///
/// `Debug` shows the method, the path (not the query, which holds the code and state), and the
/// ids; never the headers, which hold cookies.
#[non_exhaustive]
pub struct SsoRequest {
    /// The request's method, URI, headers and extensions.
    pub parts: http::request::Parts,
    /// The application named by `{provider}` in the route's path.
    pub provider: ProviderId,
    /// The tenant named by `{tenant}` in the route's path, when the path has one.
    pub tenant: Option<TenantId>,
}

impl std::fmt::Debug for SsoRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoRequest")
            .field("method", &self.parts.method)
            .field("path", &self.parts.uri.path())
            .field("provider", &self.provider)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// Which login a request to the start route begins: built by [`SsoHost::start`].
#[derive(Debug, Clone)]
pub struct LoginStart {
    pub(crate) tenant: TenantId,
    pub(crate) intent: LoginIntent,
    pub(crate) options: LoginOptions,
}

impl LoginStart {
    /// A sign-in from the login page ([`LoginIntent::SignIn`]).
    pub fn sign_in(tenant: TenantId) -> Self {
        Self::new(tenant, LoginIntent::SignIn)
    }

    /// Binding an account to `user`, signed in, from their security settings
    /// ([`LoginIntent::Link`]).
    pub fn link(tenant: TenantId, user: UserId) -> Self {
        Self::new(tenant, LoginIntent::Link { user })
    }

    /// An admin connecting a mailbox ([`LoginIntent::Connect`]).
    pub fn connect(tenant: TenantId, connection: ConnectionId) -> Self {
        Self::new(tenant, LoginIntent::Connect { connection })
    }

    /// Any intent.
    pub fn new(tenant: TenantId, intent: LoginIntent) -> Self {
        Self {
            tenant,
            intent,
            options: LoginOptions::new(),
        }
    }

    /// Options of the login (`return_to`, `login_hint`).
    #[must_use]
    pub fn options(mut self, options: LoginOptions) -> Self {
        self.options = options;
        self
    }
}

/// The host's side of the login routes of [`SsoRoutes`](crate::axum::SsoRoutes).
///
/// The routes do the protocol (the redirect, the browser-binding cookie, the callback's checks
/// and security headers); the host decides who is starting what, and what a result means for
/// its own sessions and pages.
///
/// ```
/// use cx_sso::axum::{LoginStart, Refusal, SsoHost, SsoRequest};
/// use cx_sso::{Error, LoginOutcome, TenantId};
/// use axum::response::{IntoResponse, Redirect, Response};
///
/// #[derive(Debug)]
/// struct MyApp;
///
/// #[async_trait::async_trait]
/// impl SsoHost for MyApp {
///     async fn start(&self, request: &SsoRequest) -> Result<LoginStart, Response> {
///         // One company per host name in a real platform; one here.
///         let tenant = TenantId::new("acme").map_err(|_| Redirect::to("/").into_response())?;
///         Ok(LoginStart::sign_in(tenant))
///     }
///
///     async fn completed(&self, outcome: LoginOutcome, _request: &SsoRequest) -> Response {
///         match outcome {
///             LoginOutcome::SignedIn { user, return_to, .. } => {
///                 // Start the host's own session for `user` here.
///                 Redirect::to(&return_to).into_response()
///             }
///             _ => Redirect::to("/").into_response(),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait SsoHost: std::fmt::Debug + Send + Sync + 'static {
    /// Which login a request to the start route begins: the tenant (from the path, the host
    /// name or the session), the intent (a signed-in user binding an account, an admin
    /// connecting a mailbox) and options. `Err` answers the request with that response
    /// instead (such as a redirect to the sign-in page when a link needs a signed-in user).
    async fn start(&self, request: &SsoRequest) -> Result<LoginStart, Response>;

    /// A login completed: start the host's session, ask for the password of a link, show the
    /// settings page... The routes add `Referrer-Policy: no-referrer`, `Cache-Control:
    /// no-store` and the removal of the binding cookie to the response.
    async fn completed(&self, outcome: LoginOutcome, request: &SsoRequest) -> Response;

    /// A login could not start or complete. `refusal` holds the status and a message for the
    /// user; `error` is for the host's logs (its message is not for the page). The default
    /// renders the refusal. On the callback, the routes add the same headers as on success.
    async fn failed(&self, refusal: Refusal, error: &Error, request: &SsoRequest) -> Response {
        let _ = (error, request);
        refusal.into_response()
    }
}

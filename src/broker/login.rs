//! The facade of the login capability: one-line delegations to `crate::login`.

#[cfg(doc)]
use crate::audit::AuditKind;
use crate::error::Error;
#[cfg(doc)]
use crate::error::StateError;
use crate::ids::{ProviderId, TenantId};
use crate::login::{CallbackRoute, LoginIntent, LoginOptions, LoginOutcome, LoginRedirect};

use super::Broker;

impl Broker {
    /// The redirect URI to register at the provider for the tenant's application:
    /// `{public_base_url}/sso/callback/{provider}` by default, or the host's own
    /// [redirect path](crate::BrokerBuilder::redirect_path) with `{provider}` and `{tenant}`
    /// filled in. The tenant is needed only when the path has `{tenant}`; pass it always.
    pub fn redirect_uri(&self, tenant: &TenantId, provider: &ProviderId) -> String {
        self.inner.cx.redirect_uri(tenant, provider)
    }

    /// Starts a login: returns the provider URL to redirect to, and the browser-binding value
    /// to set as a cookie.
    ///
    /// The request carries PKCE (S256), a 256-bit random state and a nonce; the pending login
    /// is stored under the hash of its state and expires after the login TTL (10 minutes by
    /// default). The state ends in a tag naming the tenant and application, which
    /// [`complete_login`](Self::complete_login) compares with the route of the callback.
    ///
    /// **The SSO warning.** An application that is not configured, or whose last connection
    /// check failed (or never ran), is refused here, before any redirect:
    /// [`Error::NotConfigured`] or [`Error::ProviderInvalid`] with every reason, both of
    /// [`ErrorKind::NotConfigured`](crate::ErrorKind::NotConfigured), and
    /// [`Error::provider_status`] gives the [`ProviderStatus`](crate::ProviderStatus) to show.
    /// The status comes with the stored configuration: no network and no extra store read.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`] when the tenant has no such application,
    /// [`Error::ProviderInvalid`] when it is not usable, discovery errors when the provider
    /// cannot be reached, [`Error::Store`] when the store fails.
    pub async fn begin_login(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        intent: LoginIntent,
        options: LoginOptions,
    ) -> Result<LoginRedirect, Error> {
        self.inner
            .logins
            .begin_login(tenant, provider, intent, options)
            .await
    }

    /// Completes a login from the provider's redirect.
    ///
    /// `route` is the route that served the request (the application, and the tenant when the
    /// [redirect path](crate::BrokerBuilder::redirect_path) has `{tenant}` or the host knows
    /// it); `callback_query` is the query string of the request (with or without the leading
    /// `?`); `browser_binding` is the cookie set at [`begin_login`](Self::begin_login).
    ///
    /// A callback that belongs to a login for another application or tenant than `route` is
    /// refused ([`CallbackError::WrongRoute`](crate::CallbackError::WrongRoute)) before the
    /// login is looked up: it still completes at its own route. The pending login is stored
    /// under its state *and* the browser binding, and taken once: a replay finds nothing, and
    /// so does a callback with another cookie, which leaves the login in place for the browser
    /// that began it (refused with [`StateError::BrowserMismatch`], audited as
    /// [`AuditKind::SecurityRefusal`]). Then the RFC 9207 `iss` parameter, the code exchange
    /// and the ID token are checked. Nothing is stored and no outcome is given unless every
    /// check passes.
    ///
    /// [`AuditKind::SecurityRefusal`]: crate::AuditKind::SecurityRefusal
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the redirect path has `{tenant}` and `route` names none.
    /// A typed refusal for every failed check: [`Error::Callback`], [`Error::State`],
    /// [`Error::ProviderDenied`], [`Error::TokenEndpoint`], [`Error::IdToken`],
    /// [`Error::UserInfo`], [`Error::Binding`], or [`Error::Store`]/[`Error::Http`] when a
    /// service fails.
    pub async fn complete_login(
        &self,
        route: &CallbackRoute,
        callback_query: &str,
        browser_binding: &str,
    ) -> Result<LoginOutcome, Error> {
        self.inner
            .logins
            .complete_login(route, callback_query, browser_binding)
            .await
    }
}

//! The facade of the provider capability: delegations to `crate::provider`, and the sequence
//! of `configure_provider`, which also prepares the tenant's policy (a capability above it).

#[cfg(doc)]
use crate::error::ConfigError;
use crate::error::Error;
use crate::ids::{ProviderId, TenantId};
use crate::provider::{ProviderConfig, ProviderReport, ProviderStatus, SsoStatus};

use super::Broker;

impl Broker {
    /// Saves a tenant's SSO application (replacing one with the same id), then checks the
    /// connection and records the result for [`provider_status`](Self::provider_status) and
    /// [`sso_status`](Self::sso_status).
    ///
    /// A configuration with problems that need no network to see (empty id or secret, a
    /// non-https issuer, a malformed Entra tenant id, a scope set without `openid`) is refused
    /// and nothing is stored. A configuration whose connection check fails (discovery, issuer,
    /// a rejected secret, a pinned ID-token algorithm the provider does not advertise) is
    /// stored, and the answer says so: [`ProviderReport::is_ready`] is `false` and
    /// [`ProviderReport::status`] lists every reason. Logins through it are refused until a
    /// later check passes ([`test_connection`](Self::test_connection)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NotApplicable`] naming the first option the application's kind does not
    /// apply (a sign-in scope set on a plain OAuth 2.0 application, Entra verified domains on
    /// Google), rather than storing a configuration that silently ignores it;
    /// [`ConfigError::Invalid`] listing every other static problem; [`Error::Store`].
    pub async fn configure_provider(
        &self,
        tenant: &TenantId,
        config: ProviderConfig,
    ) -> Result<ProviderReport, Error> {
        let providers = &self.inner.providers;
        let check = providers.check_new_provider(tenant, &config).await?;
        // Before the application is stored (a failure stores none): the tenant's policy record
        // in its current format, so that its sign-ins read the privileged users with the policy.
        self.inner.policies.prepare_policy(tenant).await?;
        providers.save_provider(tenant, config, check).await
    }

    /// Removes a tenant's SSO application. Bindings made through it stay (they are keyed by
    /// issuer and subject, and work again if the application is configured again).
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`] if there was none; [`Error::Store`].
    pub async fn remove_provider(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<(), Error> {
        self.inner.providers.remove_provider(tenant, provider).await
    }

    /// The tenant's SSO applications.
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn list_providers(&self, tenant: &TenantId) -> Result<Vec<ProviderConfig>, Error> {
        self.inner.providers.list_providers(tenant).await
    }

    /// The status of one application, from its stored configuration and last connection check
    /// (no network): [`ProviderStatus::NotConfigured`], [`ProviderStatus::Invalid`] with every
    /// reason, or [`ProviderStatus::Ready`]. The login page's SSO warning, before offering the
    /// application; [`begin_login`](Self::begin_login) refuses exactly what this does not call
    /// ready.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] (including a record that does not decode or decrypt).
    pub async fn provider_status(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<ProviderStatus, Error> {
        self.inner.providers.provider_status(tenant, provider).await
    }

    /// Checks a stored application against its provider now ("test connection"), records the
    /// result and reports the status the application now has: an admin runs it after fixing
    /// an application (or its provider side) that [`configure_provider`](Self::configure_provider)
    /// reported invalid, and logins through it work again once it is ready.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`], [`Error::Store`]. A failed check is a result, not an error.
    pub async fn test_connection(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<ProviderReport, Error> {
        self.inner.providers.test_connection(tenant, provider).await
    }

    /// The tenant's SSO status, from the stored configurations and their last connection
    /// checks (no network; plain OAuth 2.0 mailbox applications are not counted): [`SsoStatus::NotConfigured`], [`SsoStatus::Invalid`] with every
    /// reason, or [`SsoStatus::Ready`].
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn sso_status(&self, tenant: &TenantId) -> Result<SsoStatus, Error> {
        self.inner.providers.sso_status(tenant).await
    }
}

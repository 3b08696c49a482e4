//! The facade of the policy capability: one-line delegations to `crate::policy`.

use time::Duration;

#[cfg(doc)]
use crate::audit::AuditKind;
use crate::error::Error;
#[cfg(doc)]
use crate::error::{ConfigError, PolicyError};
use crate::ids::{TenantId, UserId};
#[cfg(doc)]
use crate::policy::SwitchRevocation;
use crate::policy::{AuthMethod, PasswordDecision, TenantAuthStatus};

use super::Broker;

impl Broker {
    /// Schedules a change of the tenant's authentication method.
    ///
    /// The change takes effect after `grace` (the broker's default, one hour, when `None`;
    /// zero applies it at once). Until then the current method stays in force, existing
    /// sessions stay active, and users may already sign in with the coming method (so they can
    /// bind their accounts first).
    ///
    /// When it takes effect, sessions end as the broker's [`SwitchRevocation`] says (recorded
    /// in the switch now): by default **every session of the tenant granted before that
    /// moment**, whatever its method and privileged users included, including sessions granted
    /// during the grace; users sign in again as the new method allows. With
    /// [`SwitchRevocation::DisallowedSessions`] only the sessions the new method does not allow
    /// end. [`Broker::check_session`] reports either as
    /// [`RevocationReason::MethodChanged`](crate::RevocationReason::MethodChanged).
    ///
    /// Asking for the method already in force cancels a pending change, like
    /// [`Broker::cancel_auth_method_switch`]. Asking for another method replaces a pending
    /// change (with a new grace).
    ///
    /// # Errors
    ///
    /// [`PolicyError::SsoNotReady`] when switching to SSO while the tenant has no ready SSO
    /// application (or a listed one is not ready), with the reason; [`Error::Config`] when
    /// `grace` is negative or longer than 366 days; [`Error::Store`].
    pub async fn set_auth_method(
        &self,
        tenant: &TenantId,
        method: AuthMethod,
        grace: Option<Duration>,
    ) -> Result<TenantAuthStatus, Error> {
        self.inner
            .policies
            .set_auth_method(tenant, method, grace)
            .await
    }

    /// Cancels the tenant's scheduled method change, if one is pending: the method in force
    /// stays, and no session is revoked by the cancelled switch. Returns whether a switch was
    /// cancelled (audited as [`AuditKind::MethodSwitchCancelled`], rule `admin_cancel`).
    ///
    /// `false` when nothing was pending: never scheduled, already cancelled, or **already in
    /// effect** (a cancel that arrives after the grace changes nothing; the switch stands and
    /// [`Broker::tenant_auth_status`] shows it in force). Setting the current method again with
    /// [`Broker::set_auth_method`] cancels too.
    ///
    /// SSO sessions granted during the grace through the cancelled method end if the method in
    /// force does not allow them ([`RevocationReason::NotAllowed`](crate::RevocationReason::NotAllowed)).
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn cancel_auth_method_switch(&self, tenant: &TenantId) -> Result<bool, Error> {
        self.inner.policies.cancel_auth_method_switch(tenant).await
    }

    /// The tenant's method now, and any pending change.
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn tenant_auth_status(&self, tenant: &TenantId) -> Result<TenantAuthStatus, Error> {
        self.inner.policies.tenant_auth_status(tenant).await
    }

    /// Makes `user` privileged: they keep password access while SSO is enforced.
    ///
    /// The privileged users are kept in the tenant's policy record, updated by
    /// compare-and-swap (concurrent admin edits all apply), and read with the policy by every
    /// sign-in.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the tenant already has 256 privileged users (the limit;
    /// adding one already privileged is always accepted); [`Error::Store`].
    pub async fn add_privileged_user(&self, tenant: &TenantId, user: &UserId) -> Result<(), Error> {
        self.inner.policies.add_privileged_user(tenant, user).await
    }

    /// Removes `user` from the privileged users: from the next sign-in on, on every node,
    /// they no longer keep password access under SSO. Their existing password sessions are
    /// not cut.
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn remove_privileged_user(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<bool, Error> {
        self.inner
            .policies
            .remove_privileged_user(tenant, user)
            .await
    }

    /// The tenant's privileged users, in order.
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn list_privileged_users(&self, tenant: &TenantId) -> Result<Vec<UserId>, Error> {
        self.inner.policies.list_privileged_users(tenant).await
    }

    /// Whether `user` may sign in with a password now.
    ///
    /// The answer depends only on the tenant's method and the privileged list, so it is the
    /// same for a user that does not exist as for an ordinary one: it reveals nothing about
    /// who has an account.
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn check_password_login(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<PasswordDecision, Error> {
        self.inner.policies.check_password_login(tenant, user).await
    }
}

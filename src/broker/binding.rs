//! The facade of the binding capability: one-line delegations to `crate::binding`.

use crate::binding::{AccountBinding, LinkRedeemed};
use crate::error::Error;
#[cfg(doc)]
use crate::error::StoreError;
#[cfg(doc)]
use crate::error::{BindingError, PolicyError};
use crate::ids::{BindingId, TenantId, UserId};
#[cfg(doc)]
use crate::policy::EmailMatch;
use crate::secret::LinkTicket;

use super::Broker;

impl Broker {
    /// Redeems a link ticket from [`LoginOutcome::LinkRequired`](crate::LoginOutcome): binds
    /// the provider account to `user` and grants the session of that SSO sign-in. Call it only
    /// after the host has checked that the person is `user` (their password).
    ///
    /// The ticket is bound to the tenant it was issued in: presented in another tenant it is
    /// refused with [`BindingError::TicketInvalid`] (the same answer as an unknown ticket) and
    /// stays redeemable in its own. There it is taken once, whatever happens next: a second
    /// redemption or an expired ticket is refused with [`BindingError::TicketInvalid`]; a
    /// disabled user, or one the tenant does not have, with [`BindingError::UserInactive`];
    /// when the application requires the email to match ([`EmailMatch::Required`]), a user
    /// whose verified login email is not the account's with
    /// [`PolicyError::EmailMismatch`].
    ///
    /// # Errors
    ///
    /// [`BindingError`], [`PolicyError::EmailMismatch`], [`Error::NotConfigured`] when the
    /// application was removed meanwhile, [`Error::Store`].
    pub async fn redeem_link_ticket(
        &self,
        tenant: &TenantId,
        ticket: &LinkTicket,
        user: &UserId,
    ) -> Result<LinkRedeemed, Error> {
        self.inner
            .bindings
            .redeem_link_ticket(tenant, ticket, user)
            .await
    }

    /// The provider accounts bound to `user`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn list_bindings(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<AccountBinding>, Error> {
        self.inner.bindings.list_bindings(tenant, user).await
    }

    /// Removes `user`'s binding `binding` (its [`AccountBinding::id`], as listed by
    /// [`list_bindings`](Self::list_bindings)).
    ///
    /// Refused when the user would be locked out: password sign-in is off for them (the tenant
    /// enforces SSO, now or after a scheduled switch, and they are not privileged) and no other
    /// binding goes through an application that method allows. Two concurrent unbinds of one
    /// user's last two bindings are not serialised: hosts that allow that should serialise
    /// per user.
    ///
    /// The binding is deleted only at the version read: if it was removed and made again
    /// meanwhile (on another node, perhaps for another user), the unbind starts over on what
    /// is stored now, so it never deletes a binding it did not check.
    ///
    /// # Errors
    ///
    /// [`BindingError::NotFound`] when `user` has no such binding in `tenant` (another
    /// user's or another tenant's binding included), [`BindingError::LastSignInMethod`],
    /// [`Error::Store`] ([`StoreError::Contention`] when the binding kept changing through
    /// every attempt).
    pub async fn unbind(
        &self,
        tenant: &TenantId,
        user: &UserId,
        binding: &BindingId,
    ) -> Result<(), Error> {
        self.inner.bindings.unbind(tenant, user, binding).await
    }
}

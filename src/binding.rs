//! Account bindings and link tickets.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::broker::Broker;
use crate::error::{BindingError, Error};
use crate::identity::ExternalIdentity;
use crate::ids::{ProviderId, TenantId, UserId};
use crate::login::{binding_key, hash_key, random_token};
use crate::secret::LinkTicket;
use crate::store::{Inserted, NewRecord, StoreError, key};

pub(crate) const NS_BINDING: &str = "binding";
pub(crate) const NS_TICKET: &str = "link_ticket";

/// A provider account bound to a user of a tenant. Unique per (tenant, issuer, subject).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountBinding {
    /// The tenant.
    pub tenant: TenantId,
    /// The host's user.
    pub user: UserId,
    /// The tenant's application the account was bound through.
    pub provider: ProviderId,
    /// The account's issuer.
    pub issuer: String,
    /// The account's subject at that issuer.
    pub subject: String,
    /// The email the provider stated when the binding was made (informational).
    pub email: Option<String>,
    /// When the binding was made.
    pub created_at: OffsetDateTime,
}

pub(crate) enum BindOutcome {
    Bound(AccountBinding),
    AlreadyBound(AccountBinding),
}

#[derive(Serialize, Deserialize)]
struct TicketRecord {
    tenant: TenantId,
    provider: ProviderId,
    identity: ExternalIdentity,
}

fn corrupt(what: &str) -> Error {
    StoreError::Corrupt {
        message: what.to_owned(),
    }
    .into()
}

fn user_index(tenant: &TenantId, user: &UserId) -> String {
    key(&[tenant.as_str(), user.as_str()])
}

impl Broker {
    pub(crate) async fn binding_for(
        &self,
        tenant: &TenantId,
        identity: &ExternalIdentity,
    ) -> Result<Option<AccountBinding>, Error> {
        let k = binding_key(tenant, &identity.issuer, &identity.subject);
        match self.inner.store.get(NS_BINDING, &k, self.now()).await? {
            Some(r) => Ok(Some(
                serde_json::from_slice(&r.value).map_err(|_| corrupt("binding"))?,
            )),
            None => Ok(None),
        }
    }

    /// Binds `identity` to `user`, atomically: of two concurrent binds of one identity, one
    /// wins and the other sees the winner's binding.
    pub(crate) async fn bind(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        user: &UserId,
        identity: &ExternalIdentity,
    ) -> Result<BindOutcome, Error> {
        let now = self.now();
        let binding = AccountBinding {
            tenant: tenant.clone(),
            user: user.clone(),
            provider: provider.clone(),
            issuer: identity.issuer.clone(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
            created_at: now,
        };
        let value = serde_json::to_vec(&binding).map_err(|_| corrupt("binding"))?;
        let k = binding_key(tenant, &identity.issuer, &identity.subject);
        let inserted = self
            .inner
            .store
            .insert(
                NS_BINDING,
                &k,
                NewRecord::new(value).index(user_index(tenant, user)),
                now,
            )
            .await?;
        if inserted == Inserted::Yes {
            tracing::info!(tenant = %tenant, user = %user, provider = %provider, "account bound");
            return Ok(BindOutcome::Bound(binding));
        }
        match self.binding_for(tenant, identity).await? {
            Some(existing) if existing.user == *user => Ok(BindOutcome::AlreadyBound(existing)),
            Some(_) => Err(BindingError::BoundToAnotherUser.into()),
            // Removed between our insert and our read: report the conflict rather than retry.
            None => Err(BindingError::BoundToAnotherUser.into()),
        }
    }

    pub(crate) async fn issue_link_ticket(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        identity: &ExternalIdentity,
    ) -> Result<LinkTicket, Error> {
        let ticket = random_token(32);
        let now = self.now();
        let record = TicketRecord {
            tenant: tenant.clone(),
            provider: provider.clone(),
            identity: identity.clone(),
        };
        let value = serde_json::to_vec(&record).map_err(|_| corrupt("link ticket"))?;
        let inserted = self
            .inner
            .store
            .insert(
                NS_TICKET,
                &hash_key(&ticket),
                NewRecord::new(value).expires_at(now + self.inner.options.link_ticket_ttl),
                now,
            )
            .await?;
        if inserted != Inserted::Yes {
            return Err(StoreError::unavailable("ticket collision").into());
        }
        Ok(LinkTicket::new(ticket))
    }

    /// Redeems a link ticket from [`LoginOutcome::LinkRequired`](crate::LoginOutcome): binds
    /// the provider account to `user`. Call it only after the host has checked that the person
    /// is `user` (their password).
    ///
    /// The ticket is taken once: a second redemption, an expired ticket or one issued for
    /// another tenant is refused with [`BindingError::TicketInvalid`].
    ///
    /// # Errors
    ///
    /// [`BindingError::TicketInvalid`], [`BindingError::BoundToAnotherUser`], [`Error::Store`].
    pub async fn redeem_link_ticket(
        &self,
        tenant: &TenantId,
        ticket: &LinkTicket,
        user: &UserId,
    ) -> Result<AccountBinding, Error> {
        let now = self.now();
        let record = self
            .inner
            .store
            .take(NS_TICKET, &hash_key(ticket.secret()), now)
            .await?
            .ok_or(BindingError::TicketInvalid)?;
        let t: TicketRecord =
            serde_json::from_slice(&record.value).map_err(|_| corrupt("link ticket"))?;
        if t.tenant != *tenant {
            return Err(BindingError::TicketInvalid.into());
        }
        match self.bind(tenant, &t.provider, user, &t.identity).await? {
            BindOutcome::Bound(b) | BindOutcome::AlreadyBound(b) => Ok(b),
        }
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
        let rows = self
            .inner
            .store
            .list(NS_BINDING, &user_index(tenant, user), self.now())
            .await?;
        rows.into_iter()
            .map(|(_, r)| serde_json::from_slice(&r.value).map_err(|_| corrupt("binding")))
            .collect()
    }

    /// Removes `user`'s binding of the account (`issuer`, `subject`).
    ///
    /// # Errors
    ///
    /// [`BindingError::NotFound`] when `user` has no such binding, [`Error::Store`].
    pub async fn unbind(
        &self,
        tenant: &TenantId,
        user: &UserId,
        issuer: &str,
        subject: &str,
    ) -> Result<(), Error> {
        let now = self.now();
        let k = binding_key(tenant, issuer, subject);
        let record = self
            .inner
            .store
            .get(NS_BINDING, &k, now)
            .await?
            .ok_or(BindingError::NotFound)?;
        let b: AccountBinding =
            serde_json::from_slice(&record.value).map_err(|_| corrupt("binding"))?;
        if b.user != *user {
            return Err(BindingError::NotFound.into());
        }
        self.inner.store.delete(NS_BINDING, &k, now).await?;
        tracing::info!(tenant = %tenant, user = %user, provider = %b.provider, "account unbound");
        Ok(())
    }
}

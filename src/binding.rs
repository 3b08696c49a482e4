//! Account bindings, link tickets and the linking policy.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::audit::AuditKind;
use crate::context::Context;
use crate::crypto::{bound_key, hash_key, random_token};
use crate::error::{BindingError, EmailMismatch, Error, PolicyError};
use crate::identity::ExternalIdentity;
use crate::ids::{BindingId, ProviderId, TenantId, UserId};
use crate::policy::{EmailMatch, LinkingPolicy, Policies, SessionMethod};
use crate::provider::{ProviderConfig, ProviderKind};
use crate::secret::LinkTicket;
use crate::session::{SessionGrant, Sessions};
use crate::store::records::{self, CasRetry, StoredRecord, json_record};
use crate::store::{DeleteOutcome, Inserted, StoreError, key};

/// The binding capability: provider accounts bound to the host's users, link tickets, and
/// automatic linking.
pub(crate) struct Bindings {
    cx: Arc<Context>,
    policies: Arc<Policies>,
    sessions: Arc<Sessions>,
    /// How long a link ticket stays redeemable.
    link_ticket_ttl: Duration,
}

/// Its own state only: the context and the services it calls are shown by the broker.
impl std::fmt::Debug for Bindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bindings")
            .field("link_ticket_ttl", &self.link_ticket_ttl)
            .finish_non_exhaustive()
    }
}

impl Bindings {
    pub(crate) fn new(
        cx: Arc<Context>,
        policies: Arc<Policies>,
        sessions: Arc<Sessions>,
        link_ticket_ttl: Duration,
    ) -> Self {
        Self {
            cx,
            policies,
            sessions,
            link_ticket_ttl,
        }
    }
}

pub(crate) const NS_BINDING: &str = records::BINDING.name;
pub(crate) const NS_TICKET: &str = records::LINK_TICKET.name;

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

impl AccountBinding {
    /// This binding's id, to give back to [`Broker::unbind`](crate::Broker::unbind): stable, opaque
    /// and URL-safe (see [`BindingId`]), so a settings page can put it in a "Remove" form.
    pub fn id(&self) -> BindingId {
        BindingId::of_account(&self.tenant, &self.issuer, &self.subject)
    }
}

/// What [`Broker::redeem_link_ticket`](crate::Broker::redeem_link_ticket) returns: the new binding
/// and the session of the sign-in that the ticket completes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LinkRedeemed {
    /// The new (or already existing) binding.
    pub binding: AccountBinding,
    /// The session for the SSO sign-in that asked for the link.
    pub session: SessionGrant,
}

#[derive(Serialize, Deserialize)]
struct TicketRecord {
    tenant: TenantId,
    provider: ProviderId,
    identity: ExternalIdentity,
    /// The tenant's policy epoch when the ticket was issued: a method switch in between voids
    /// it, as it voids a login in flight.
    policy_epoch: u64,
}

/// How an account is named in audit events: `issuer#subject`.
pub(crate) fn account_name(identity: &ExternalIdentity) -> String {
    format!("{}#{}", identity.issuer, identity.subject)
}

/// The key of a binding.
pub(crate) fn binding_key(tenant: &TenantId, issuer: &str, subject: &str) -> String {
    key(&[tenant.as_str(), issuer, subject])
}

json_record!(AccountBinding => BINDING);
json_record!(TicketRecord => LINK_TICKET);

/// The store key of a link ticket: the ticket bound to its tenant, so that presenting it in
/// another tenant addresses nothing and spends nothing. The record's index is the hash of the
/// ticket alone, which only tells "another tenant's ticket" apart from "unknown" in the audit.
fn ticket_key(tenant: &TenantId, ticket: &str) -> String {
    bound_key("cx-sso link ticket v1", tenant.as_str(), ticket)
}

fn user_index(tenant: &TenantId, user: &UserId) -> String {
    key(&[tenant.as_str(), user.as_str()])
}

/// Whether the provider vouches for the email under the tenant's rules. Entra's plain `email`
/// claim never counts (the "nOAuth" takeover): only `xms_edov` or a domain the tenant lists.
fn email_verified(
    kind: &ProviderKind,
    policy_entra_domains: &[String],
    id: &ExternalIdentity,
) -> bool {
    match kind {
        ProviderKind::Microsoft { .. } => {
            id.email_domain_verified == Some(true)
                || id.email.as_deref().and_then(email_domain).is_some_and(|d| {
                    policy_entra_domains
                        .iter()
                        .any(|v| v.eq_ignore_ascii_case(d))
                })
        }
        _ => id.email_verified,
    }
}

/// The account's email if the provider states it and vouches for it under the application's
/// rules (the first condition of [`EmailMatch::Required`]).
fn vouched_email<'a>(
    config: &ProviderConfig,
    id: &'a ExternalIdentity,
) -> Result<&'a str, EmailMismatch> {
    let email = id.email.as_deref().ok_or(EmailMismatch::NoEmail)?;
    if !email_verified(
        config.kind(),
        config.linking_policy().entra_verified_domains(),
        id,
    ) {
        return Err(EmailMismatch::NotVerified);
    }
    Ok(email)
}

fn mismatch_rule(reason: EmailMismatch) -> &'static str {
    match reason {
        EmailMismatch::NoEmail => "email_match.no_email",
        EmailMismatch::NotVerified => "email_match.not_verified",
        EmailMismatch::NotTheUsersEmail => "email_match.not_users_email",
        EmailMismatch::Ambiguous => "email_match.ambiguous",
    }
}

fn email_domain(email: &str) -> Option<&str> {
    let (local, domain) = email.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then_some(domain)
}

impl Bindings {
    pub(crate) async fn binding_for(
        &self,
        tenant: &TenantId,
        identity: &ExternalIdentity,
    ) -> Result<Option<AccountBinding>, Error> {
        let k = binding_key(tenant, &identity.issuer, &identity.subject);
        Ok(
            records::get::<AccountBinding>(&*self.cx.store, &k, self.cx.now())
                .await?
                .map(|b| b.record),
        )
    }

    /// Whether the application's [`EmailMatch`] rule lets `identity` be bound to `user`.
    async fn email_match(
        &self,
        tenant: &TenantId,
        config: &ProviderConfig,
        user: &UserId,
        identity: &ExternalIdentity,
    ) -> Result<(), Error> {
        match config.email_match() {
            EmailMatch::NotRequired => return Ok(()),
            EmailMatch::Required => {}
        }
        let refused = |reason: EmailMismatch| {
            self.cx.audit(
                tenant,
                user.as_str(),
                &account_name(identity),
                AuditKind::BindRefused,
                mismatch_rule(reason),
            );
            Err(PolicyError::EmailMismatch(reason).into())
        };
        let email = match vouched_email(config, identity) {
            Ok(email) => email,
            Err(reason) => return refused(reason),
        };
        let users = self
            .cx
            .directory
            .active_users_with_verified_email(tenant, email)
            .await?;
        match users.as_slice() {
            [one] if one == user => Ok(()),
            [] | [_] => refused(EmailMismatch::NotTheUsersEmail),
            _ => refused(EmailMismatch::Ambiguous),
        }
    }

    /// Binds `identity` to `user` through the application `config`, atomically: of two
    /// concurrent binds of one identity, one wins and the other gets
    /// [`BindingError::BoundToAnotherUser`]. Binding again to the same user returns the
    /// existing binding.
    ///
    /// Every path that creates a binding comes through here, so the application's
    /// [`EmailMatch`] rule is checked here, before anything is written.
    pub(crate) async fn bind(
        &self,
        tenant: &TenantId,
        config: &ProviderConfig,
        user: &UserId,
        identity: &ExternalIdentity,
        rule: &'static str,
    ) -> Result<AccountBinding, Error> {
        self.email_match(tenant, config, user, identity).await?;
        let now = self.cx.now();
        let binding = AccountBinding {
            tenant: tenant.clone(),
            user: user.clone(),
            provider: config.id().clone(),
            issuer: identity.issuer.clone(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
            created_at: now,
        };
        let k = binding_key(tenant, &identity.issuer, &identity.subject);
        let inserted = self
            .cx
            .store
            .insert(
                NS_BINDING,
                &k,
                records::encode(&binding)?.index(user_index(tenant, user)),
                now,
            )
            .await?;
        let account = account_name(identity);
        if matches!(inserted, Inserted::Yes { .. }) {
            self.cx
                .audit(tenant, user.as_str(), &account, AuditKind::Bind, rule);
            return Ok(binding);
        }
        match self.binding_for(tenant, identity).await? {
            Some(existing) if existing.user == *user => Ok(existing),
            // Bound to someone else, or removed between our insert and our read: a conflict
            // either way, never a silent retry.
            _ => {
                self.cx.audit(
                    tenant,
                    user.as_str(),
                    &account,
                    AuditKind::BindRefused,
                    "bound_to_another_user",
                );
                Err(BindingError::BoundToAnotherUser.into())
            }
        }
    }

    /// Applies [`LinkingPolicy::AutoLinkVerifiedEmail`]: the user to sign in, or `None` when
    /// the account is not linked automatically (every refusal is audited with its rule).
    pub(crate) async fn auto_link(
        &self,
        tenant: &TenantId,
        config: &ProviderConfig,
        identity: &ExternalIdentity,
    ) -> Result<Option<UserId>, Error> {
        let LinkingPolicy::AutoLinkVerifiedEmail {
            allowed_domains,
            entra_verified_domains,
            ..
        } = config.linking_policy()
        else {
            return Ok(None);
        };
        let actor = format!("provider:{}", config.id());
        let account = account_name(identity);
        let refuse = |rule: &'static str| {
            self.cx
                .audit(tenant, &actor, &account, AuditKind::AutoLinkRefused, rule);
            Ok(None)
        };
        let Some(email) = identity.email.as_deref() else {
            return refuse("auto_link.no_email");
        };
        if !email_verified(config.kind(), entra_verified_domains, identity) {
            return refuse("auto_link.email_not_verified");
        }
        let Some(domain) = email_domain(email) else {
            return refuse("auto_link.malformed_email");
        };
        if !allowed_domains.is_empty()
            && !allowed_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
        {
            return refuse("auto_link.domain_not_allowed");
        }
        let users = self
            .cx
            .directory
            .active_users_with_verified_email(tenant, email)
            .await?;
        let user = match users.as_slice() {
            [] => return refuse("auto_link.no_matching_user"),
            [one] => one.clone(),
            _ => return refuse("auto_link.ambiguous_email"),
        };
        match self
            .bind(tenant, config, &user, identity, "auto_link.verified_email")
            .await
        {
            Ok(_) => {
                self.cx.audit(
                    tenant,
                    &actor,
                    &account,
                    AuditKind::AutoLink,
                    "auto_link.verified_email",
                );
                Ok(Some(user))
            }
            Err(e) => Err(e),
        }
    }

    /// A link ticket for a first sign-in with an unbound account. When the application
    /// requires the email to match and the provider does not state or vouch for the email, no
    /// user could redeem it: the sign-in is refused at once (before the user is asked for a
    /// password). Whether the email is some user's is only checked at redemption, against the
    /// user who proved who they are, so a sign-in reveals nothing about the tenant's users.
    ///
    /// `policy_epoch` is the epoch of the policy the sign-in was checked against (read by the
    /// same `complete_login`): a switch that takes effect after it voids the ticket.
    pub(crate) async fn issue_link_ticket(
        &self,
        tenant: &TenantId,
        config: &ProviderConfig,
        identity: &ExternalIdentity,
        policy_epoch: u64,
    ) -> Result<LinkTicket, Error> {
        let provider = config.id();
        if config.email_match() == EmailMatch::Required
            && let Err(reason) = vouched_email(config, identity)
        {
            self.cx.audit(
                tenant,
                &format!("provider:{provider}"),
                &account_name(identity),
                AuditKind::SignInRefused,
                mismatch_rule(reason),
            );
            return Err(PolicyError::EmailMismatch(reason).into());
        }
        let ticket = random_token(32);
        let now = self.cx.now();
        let record = TicketRecord {
            tenant: tenant.clone(),
            provider: provider.clone(),
            identity: identity.clone(),
            policy_epoch,
        };
        let inserted = self
            .cx
            .store
            .insert(
                NS_TICKET,
                &ticket_key(tenant, &ticket),
                records::encode(&record)?
                    .expires_at(now + self.link_ticket_ttl)
                    .index(hash_key(&ticket)),
                now,
            )
            .await?;
        if !matches!(inserted, Inserted::Yes { .. }) {
            return Err(StoreError::unavailable("ticket collision").into());
        }
        Ok(LinkTicket::new(ticket))
    }

    /// The work of `Broker::redeem_link_ticket`, whose docs say what it does.
    pub(crate) async fn redeem_link_ticket(
        &self,
        tenant: &TenantId,
        ticket: &LinkTicket,
        user: &UserId,
    ) -> Result<LinkRedeemed, Error> {
        let now = self.cx.now();
        let refused = |rule: &'static str, e: BindingError| {
            self.cx.audit(
                tenant,
                user.as_str(),
                user.as_str(),
                AuditKind::LinkTicketRefused,
                rule,
            );
            Err(e.into())
        };
        let Some(t) = records::take::<TicketRecord>(
            &*self.cx.store,
            &ticket_key(tenant, ticket.secret()),
            now,
        )
        .await?
        else {
            // Only for the audit: is it alive in another tenant? It is left there either way.
            let elsewhere = self
                .cx
                .store
                .list(NS_TICKET, &hash_key(ticket.secret()), now)
                .await?;
            let rule = if elsewhere.is_empty() {
                "ticket.unknown_or_used"
            } else {
                "ticket.other_tenant"
            };
            return refused(rule, BindingError::TicketInvalid);
        };
        if t.tenant != *tenant {
            // Unreachable through the key; kept so a store bug cannot cross tenants.
            return refused("ticket.other_tenant", BindingError::TicketInvalid);
        }
        // The application and the policy (with the privileged users) in one round trip.
        let (loaded, policy) = self
            .policies
            .provider_and_policy(tenant, &t.provider)
            .await?;
        let policy = policy?;
        if policy.epoch != t.policy_epoch || !Policies::sso_sign_in_allowed(&policy, &t.provider) {
            self.cx.audit(
                tenant,
                user.as_str(),
                user.as_str(),
                AuditKind::LinkTicketRefused,
                "ticket.policy_changed",
            );
            return Err(crate::error::StateError::PolicyChanged.into());
        }
        if !self.cx.directory.is_active(tenant, user).await? {
            return refused("ticket.user_inactive", BindingError::UserInactive);
        }
        let config = loaded?.config.clone();
        let binding = self
            .bind(tenant, &config, user, &t.identity, "link_ticket")
            .await?;
        self.cx.audit(
            tenant,
            user.as_str(),
            &account_name(&t.identity),
            AuditKind::LinkTicketRedeemed,
            "link_ticket",
        );
        let session = self
            .sessions
            .grant_session(
                &policy,
                tenant,
                user,
                SessionMethod::Sso {
                    provider: t.provider,
                },
            )
            .await?;
        Ok(LinkRedeemed { binding, session })
    }

    /// Whether removing `binding` would leave `user` no way to sign in, under the method in
    /// force or the one scheduled: passwords off for them, and no other binding through an
    /// application that method allows.
    async fn would_lock_out(
        &self,
        tenant: &TenantId,
        user: &UserId,
        binding: &AccountBinding,
    ) -> Result<bool, Error> {
        let policy = self.policies.effective_policy(tenant).await?;
        let privileged = self.policies.is_privileged(&policy, tenant, user).await?;
        let bindings = self.list_bindings(tenant, user).await?;
        let via = |b: &AccountBinding| SessionMethod::Sso {
            provider: b.provider.clone(),
        };
        let methods =
            std::iter::once(&policy.method).chain(policy.pending.as_ref().map(|p| &p.method));
        for method in methods {
            if method.allows(&SessionMethod::Password, privileged)
                || !method.allows(&via(binding), privileged)
            {
                continue;
            }
            let others = bindings
                .iter()
                .filter(|o| !(o.issuer == binding.issuer && o.subject == binding.subject))
                .filter(|o| method.allows(&via(o), privileged))
                .count();
            if others == 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The work of `Broker::list_bindings`, whose docs say what it does.
    pub(crate) async fn list_bindings(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<AccountBinding>, Error> {
        let rows = records::list::<AccountBinding>(
            &*self.cx.store,
            &user_index(tenant, user),
            self.cx.now(),
        )
        .await?;
        Ok(rows.into_iter().map(|(_, b)| b.record).collect())
    }

    /// The work of `Broker::unbind`, whose docs say what it does.
    pub(crate) async fn unbind(
        &self,
        tenant: &TenantId,
        user: &UserId,
        binding: &BindingId,
    ) -> Result<(), Error> {
        let mut retry = CasRetry::new(&records::BINDING);
        loop {
            retry.attempt()?;
            if self.try_unbind(tenant, user, binding).await? {
                return Ok(());
            }
        }
    }

    /// One attempt of [`unbind`](Self::unbind): `Ok(false)` when the binding changed between
    /// the read and the delete.
    async fn try_unbind(
        &self,
        tenant: &TenantId,
        user: &UserId,
        binding: &BindingId,
    ) -> Result<bool, Error> {
        let now = self.cx.now();
        // The id is a hash: find it among the user's own bindings (a handful), which also
        // keeps another user's binding out of reach.
        let rows = self
            .cx
            .store
            .list(NS_BINDING, &user_index(tenant, user), now)
            .await?;
        let mut found = None;
        for (_, record) in rows {
            let b = AccountBinding::from_bytes(&record.value)?;
            if b.tenant == *tenant && b.user == *user && b.id() == *binding {
                found = Some((b, record.version));
                break;
            }
        }
        let (b, version) = found.ok_or(BindingError::NotFound)?;
        let k = binding_key(tenant, &b.issuer, &b.subject);
        let account = format!("{}#{}", b.issuer, b.subject);
        if self.would_lock_out(tenant, user, &b).await? {
            self.cx.audit(
                tenant,
                user.as_str(),
                &account,
                AuditKind::BindRefused,
                "last_sign_in_method",
            );
            return Err(BindingError::LastSignInMethod.into());
        }
        match self
            .cx
            .store
            .compare_and_delete(NS_BINDING, &k, version, now)
            .await?
        {
            DeleteOutcome::Deleted => {}
            // Removed meanwhile: what the user asked for is done, but not by us.
            DeleteOutcome::Missing => return Err(BindingError::NotFound.into()),
            // Removed and made again meanwhile: look again.
            DeleteOutcome::Conflict { .. } => return Ok(false),
        }
        self.cx.audit(
            tenant,
            user.as_str(),
            &account,
            AuditKind::Unbind,
            "user_request",
        );
        Ok(true)
    }
}

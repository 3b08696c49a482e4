//! Tenant authentication policy: the method, privileged users, linking rules.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::audit::AuditKind;
use crate::context::Context;
use crate::error::{ConfigError, Error, PolicyError};
use crate::ids::{ProviderId, TenantId, UserId};
pub use crate::provider::{EmailMatch, LinkingPolicy};
use crate::provider::{Providers, SsoStatus};
use crate::store::records::{self, CasRetry, PrivilegedUser, StoredRecord, json_record};
use crate::store::{CasOutcome, DecodedCache, Inserted, key};

/// The policy capability: each tenant's authentication method, its scheduled switches, and its
/// privileged users.
pub(crate) struct Policies {
    cx: Arc<Context>,
    providers: Arc<Providers>,
    /// Decoded tenant policies, checked against the stored bytes on every use.
    cache: DecodedCache<PolicyRecord>,
    /// The default grace delay of a method switch.
    switch_grace: Duration,
    /// Which sessions a switch ends when it takes effect.
    switch_revocation: SwitchRevocation,
}

/// Its own state only: the context and the services it calls are shown by the broker.
impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("cache", &self.cache)
            .field("switch_grace", &self.switch_grace)
            .field("switch_revocation", &self.switch_revocation)
            .finish_non_exhaustive()
    }
}

impl Policies {
    pub(crate) fn new(
        cx: Arc<Context>,
        providers: Arc<Providers>,
        switch_grace: Duration,
        switch_revocation: SwitchRevocation,
    ) -> Self {
        Self {
            cx,
            providers,
            cache: DecodedCache::default(),
            switch_grace,
            switch_revocation,
        }
    }
}

pub(crate) const NS_POLICY: &str = records::TENANT_POLICY.name;
pub(crate) const NS_PRIVILEGED: &str = records::PRIVILEGED_USER.name;

/// How many past switches a policy remembers to judge old sessions; a session older than all
/// of them is treated as revoked (fail closed).
const HISTORY: usize = 16;

/// The most privileged users a tenant may have: they are kept in the tenant's policy record,
/// which every login and session check reads, so the record stays small (at most 256 user ids
/// of at most 256 bytes). Privileged users are the few who must keep password access while
/// SSO is enforced (break-glass administrators), not a role of many.
pub(crate) const MAX_PRIVILEGED_USERS: usize = 256;

/// The longest grace delay a switch may have.
pub(crate) const MAX_GRACE: Duration = Duration::days(366);

/// How the users of a tenant sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthMethod {
    /// Passwords only; SSO sign-in is refused (binding accounts from settings still works).
    Password,
    /// SSO only, through these applications (all ready ones when empty). Privileged users
    /// keep password access.
    Sso {
        /// The applications users may sign in with; empty means every ready one.
        providers: Vec<ProviderId>,
    },
    /// Password or SSO. The default of a tenant that never set a method.
    Either,
}

/// How a session was obtained.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionMethod {
    /// A password checked by the host.
    Password,
    /// SSO through a tenant application.
    Sso {
        /// The application.
        provider: ProviderId,
    },
}

impl AuthMethod {
    /// Whether a session obtained by `method` is allowed under this method, for a user who
    /// is (or is not) privileged.
    pub fn allows(&self, method: &SessionMethod, privileged: bool) -> bool {
        match (self, method) {
            (Self::Either, _) => true,
            (Self::Password, SessionMethod::Password) => true,
            (Self::Password, SessionMethod::Sso { .. }) => false,
            (Self::Sso { .. }, SessionMethod::Password) => privileged,
            (Self::Sso { providers }, SessionMethod::Sso { provider }) => {
                providers.is_empty() || providers.contains(provider)
            }
        }
    }
}

/// Which sessions a change of the tenant's authentication method ends when it takes effect.
///
/// Chosen for the whole broker with
/// [`BrokerBuilder::method_switch_revocation`](crate::BrokerBuilder::method_switch_revocation)
/// and recorded in each switch when it is scheduled, so a switch keeps the rule the admin was
/// shown even if the broker's option changes before it takes effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SwitchRevocation {
    /// The default, the rule of the Google sign-in document ("all users will be logged out
    /// every time Google sign-in is enabled or disabled, one hour after"): every session of
    /// the tenant granted before the switch takes effect ends, whatever its method, privileged
    /// users included; sessions granted during the grace period too.
    #[default]
    AllSessions,
    /// Only sessions obtained by a method the new one does not allow end (a non-privileged
    /// password session when SSO is enforced, an SSO session when passwords are enforced or
    /// its application is no longer listed). Sessions the new method allows go on.
    DisallowedSessions,
}

/// A scheduled method change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Switch {
    pub(crate) epoch: u64,
    pub(crate) method: AuthMethod,
    pub(crate) effective_at: OffsetDateTime,
    /// Which sessions it ends when it takes effect.
    #[serde(default)]
    pub(crate) revocation: SwitchRevocation,
}

/// The stored policy of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PolicyRecord {
    /// The epoch of `method`; every switch that takes effect adds one.
    pub(crate) epoch: u64,
    pub(crate) method: AuthMethod,
    pub(crate) pending: Option<Switch>,
    /// Switches that took effect, oldest first, at most [`HISTORY`].
    pub(crate) history: Vec<Switch>,
    /// The tenant's privileged users (at most [`MAX_PRIVILEGED_USERS`] added through the
    /// broker), read with the policy in the same round trip: format 2 of the record.
    ///
    /// `None` in a record of format 1 (written before the privileged users moved here) and
    /// when the tenant has no record: their privileged users are then the `privileged_user`
    /// records of format 1, which [`Policies::is_privileged`] reads one by one until the next
    /// admin write of the policy ([`Policies::update_policy`]) moves them here.
    #[serde(default, rename = "privileged_users")]
    pub(crate) privileged: Option<BTreeSet<UserId>>,
}

impl Default for PolicyRecord {
    fn default() -> Self {
        Self {
            epoch: 0,
            method: AuthMethod::Either,
            pending: None,
            history: Vec::new(),
            privileged: None,
        }
    }
}

impl PolicyRecord {
    /// Whether `user` is privileged, when the record lists the privileged users (format 2);
    /// `None` when they are still stored the old way (see [`privileged`](Self::privileged)).
    pub(crate) fn lists_privileged(&self, user: &UserId) -> Option<bool> {
        self.privileged.as_ref().map(|users| users.contains(user))
    }

    /// The policy as of `now`: a pending switch whose time has come is applied (in memory).
    /// Returns whether it was applied.
    pub(crate) fn settle(&mut self, now: OffsetDateTime) -> bool {
        match self.pending.take() {
            Some(p) if p.effective_at <= now => {
                self.epoch = p.epoch;
                self.method = p.method.clone();
                self.history.push(p);
                if self.history.len() > HISTORY {
                    let excess = self.history.len() - HISTORY;
                    self.history.drain(..excess);
                }
                true
            }
            other => {
                self.pending = other;
                false
            }
        }
    }
}

/// The authentication status of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantAuthStatus {
    /// The method in force now.
    pub method: AuthMethod,
    /// The method scheduled, and when it takes effect.
    pub pending: Option<(AuthMethod, OffsetDateTime)>,
    /// Which sessions the scheduled method ends when it takes effect (`None` when nothing is
    /// scheduled): what an admin page warns about before the switch.
    pub pending_revocation: Option<SwitchRevocation>,
}

/// The answer of [`Broker::check_password_login`](crate::Broker::check_password_login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordDecision {
    /// The host may check the password.
    Allowed,
    /// Passwords are off for this user: send them to one of these applications.
    SsoRequired {
        /// The applications to offer (empty: every ready one of the tenant).
        providers: Vec<ProviderId>,
    },
}

json_record!(PolicyRecord => TENANT_POLICY);

impl Policies {
    /// The stored policy and its version (0 when none is stored).
    pub(crate) async fn policy_record(
        &self,
        tenant: &TenantId,
    ) -> Result<(Arc<PolicyRecord>, u64), Error> {
        let record = self
            .cx
            .store
            .get(NS_POLICY, tenant.as_str(), self.cx.now())
            .await?;
        self.policy_from(tenant, record)
    }

    /// The store address (namespace, key) of the tenant's policy, for a batched read
    /// ([`effective_policy_from`](Self::effective_policy_from) decodes what it answers).
    pub(crate) fn policy_address(tenant: &TenantId) -> (&'static str, &str) {
        (NS_POLICY, tenant.as_str())
    }

    fn policy_from(
        &self,
        tenant: &TenantId,
        record: Option<crate::store::Record>,
    ) -> Result<(Arc<PolicyRecord>, u64), Error> {
        match record {
            // Every session check reads it: the decoded policy is reused while the stored
            // bytes are unchanged.
            Some(r) => Ok((
                self.cache.get_or_decode(tenant.as_str(), &r.value, || {
                    PolicyRecord::from_bytes(&r.value).map_err(Error::from)
                })?,
                r.version,
            )),
            None => Ok((Arc::new(PolicyRecord::default()), 0)),
        }
    }

    /// The tenant's application and its policy in force, read in one round trip
    /// ([`Store::get_many`](crate::store::Store::get_many)): a login (and a link-ticket redemption) needs both. Each is
    /// decoded on its own, so the caller reports a missing or broken application before
    /// looking at the policy, as when they were read one after the other.
    #[allow(clippy::type_complexity)]
    pub(crate) async fn provider_and_policy(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<
        (
            Result<std::sync::Arc<crate::provider::LoadedProvider>, Error>,
            Result<std::sync::Arc<crate::policy::PolicyRecord>, Error>,
        ),
        Error,
    > {
        let (provider_ns, provider_key) = Providers::provider_address(tenant, provider);
        let (policy_ns, policy_key) = Self::policy_address(tenant);
        let mut records = self
            .cx
            .store
            .get_many(
                &[(provider_ns, &provider_key), (policy_ns, policy_key)],
                self.cx.clock.now(),
            )
            .await?
            .into_iter();
        let (Some(app), Some(policy), None) = (records.next(), records.next(), records.next())
        else {
            return Err(crate::store::StoreError::unavailable(
                "get_many answered another number of records than asked",
            )
            .into());
        };
        Ok((
            self.providers
                .loaded_provider_from(tenant, provider, &provider_key, app),
            self.effective_policy_from(tenant, policy),
        ))
    }

    /// The policy in force now, without writing.
    pub(crate) async fn effective_policy(
        &self,
        tenant: &TenantId,
    ) -> Result<Arc<PolicyRecord>, Error> {
        let record = self
            .cx
            .store
            .get(NS_POLICY, tenant.as_str(), self.cx.now())
            .await?;
        self.effective_policy_from(tenant, record)
    }

    /// The policy in force now, from the record read at
    /// [`policy_address`](Self::policy_address).
    pub(crate) fn effective_policy_from(
        &self,
        tenant: &TenantId,
        record: Option<crate::store::Record>,
    ) -> Result<Arc<PolicyRecord>, Error> {
        let (p, _) = self.policy_from(tenant, record)?;
        let now = self.cx.now();
        if p.pending.as_ref().is_some_and(|s| s.effective_at <= now) {
            let mut settled = (*p).clone();
            settled.settle(now);
            return Ok(Arc::new(settled));
        }
        Ok(p)
    }

    /// Read-modify-write of the policy with compare-and-swap; a pending switch that has come
    /// due is applied (and audited) on the way.
    ///
    /// Every admin write of the policy comes through here, and moves a tenant's privileged
    /// users of format 1 (the `privileged_user` records) into the record it writes (format 2);
    /// once that record is written, the old records are deleted (they would be ignored anyway:
    /// a record of format 2 is the whole list).
    async fn update_policy<F>(
        &self,
        tenant: &TenantId,
        mut change: F,
    ) -> Result<PolicyRecord, Error>
    where
        F: FnMut(
                &mut PolicyRecord,
                OffsetDateTime,
            ) -> Result<Vec<(AuditKind, &'static str)>, Error>
            + Send,
    {
        let mut retry = CasRetry::new(&records::TENANT_POLICY);
        loop {
            retry.attempt()?;
            let (p, version) = self.policy_record(tenant).await?;
            let mut p = (*p).clone();
            let now = self.cx.now();
            let mut events = Vec::new();
            if p.settle(now) {
                events.push((AuditKind::MethodEffective, "scheduled_switch"));
            }
            let mut migrated = Vec::new();
            if p.privileged.is_none() {
                // Format 1: every privileged user is kept, even past the limit for adding.
                let old =
                    records::list::<PrivilegedUser>(&*self.cx.store, tenant.as_str(), now).await?;
                let mut users = BTreeSet::new();
                for (k, v) in old {
                    users.insert(v.record.0);
                    migrated.push(k);
                }
                p.privileged = Some(users);
            }
            events.extend(change(&mut p, now)?);
            let written = if version == 0 {
                matches!(
                    self.cx
                        .store
                        .insert(NS_POLICY, tenant.as_str(), records::encode(&p)?, now)
                        .await?,
                    Inserted::Yes { .. }
                )
            } else {
                matches!(
                    self.cx
                        .store
                        .compare_and_swap(
                            NS_POLICY,
                            tenant.as_str(),
                            version,
                            records::encode(&p)?,
                            now
                        )
                        .await?,
                    CasOutcome::Swapped { .. }
                )
            };
            if written {
                let subject = method_name(&p.method);
                for (kind, rule) in events {
                    self.cx.audit(tenant, "admin", &subject, kind, rule);
                }
                for k in migrated {
                    self.cx.store.delete(NS_PRIVILEGED, &k, now).await?;
                }
                return Ok(p);
            }
        }
    }

    /// The work of `Broker::set_auth_method`, whose docs say what it does.
    pub(crate) async fn set_auth_method(
        &self,
        tenant: &TenantId,
        method: AuthMethod,
        grace: Option<Duration>,
    ) -> Result<TenantAuthStatus, Error> {
        let grace = grace.unwrap_or(self.switch_grace);
        if grace.is_negative() || grace > MAX_GRACE {
            return Err(crate::error::ConfigError::Invalid {
                what: "grace",
                reason: "must be between zero and 366 days".into(),
            }
            .into());
        }
        if let AuthMethod::Sso { providers } = &method {
            self.check_sso_ready(tenant, providers).await?;
        }
        let revocation = self.switch_revocation;
        let p = self
            .update_policy(tenant, |p, now| {
                if p.method == method {
                    return Ok(if p.pending.take().is_some() {
                        vec![(AuditKind::MethodSwitchCancelled, "switch_cancelled")]
                    } else {
                        Vec::new()
                    });
                }
                p.pending = Some(Switch {
                    epoch: p.epoch + 1,
                    method: method.clone(),
                    // Bounded above, so this cannot overflow before the year 9999.
                    effective_at: now.saturating_add(grace),
                    revocation,
                });
                let mut events = vec![(AuditKind::MethodScheduled, "admin_switch")];
                if grace.is_zero() && p.settle(now) {
                    events.push((AuditKind::MethodEffective, "zero_grace"));
                }
                Ok(events)
            })
            .await?;
        Ok(status_of(&p))
    }

    /// The work of `Broker::cancel_auth_method_switch`, whose docs say what it does.
    pub(crate) async fn cancel_auth_method_switch(&self, tenant: &TenantId) -> Result<bool, Error> {
        let (p, _) = self.policy_record(tenant).await?;
        if p.pending.is_none() {
            return Ok(false);
        }
        let mut cancelled = false;
        self.update_policy(tenant, |p, _| {
            // A switch that came due has just been applied by `update_policy`: nothing to cancel.
            cancelled = p.pending.take().is_some();
            Ok(if cancelled {
                vec![(AuditKind::MethodSwitchCancelled, "admin_cancel")]
            } else {
                Vec::new()
            })
        })
        .await?;
        Ok(cancelled)
    }

    async fn check_sso_ready(&self, tenant: &TenantId, wanted: &[ProviderId]) -> Result<(), Error> {
        let reason = match self.providers.sso_status(tenant).await? {
            SsoStatus::NotConfigured => "the tenant has no SSO application".to_owned(),
            SsoStatus::Invalid(problems) => format!(
                "no SSO application is ready: {}",
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.provider, p.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            SsoStatus::Ready { providers, .. } => {
                match wanted.iter().find(|w| !providers.contains(w)) {
                    None => return Ok(()),
                    Some(missing) => format!("SSO application `{missing}` is not ready"),
                }
            }
        };
        Err(PolicyError::SsoNotReady { reason }.into())
    }

    /// The work of `Broker::tenant_auth_status`, whose docs say what it does.
    pub(crate) async fn tenant_auth_status(
        &self,
        tenant: &TenantId,
    ) -> Result<TenantAuthStatus, Error> {
        let (p, version) = self.policy_record(tenant).await?;
        if version > 0
            && p.pending
                .as_ref()
                .is_some_and(|s| s.effective_at <= self.cx.now())
        {
            // Persist (and audit) the switch that came due.
            let settled = self.update_policy(tenant, |_, _| Ok(Vec::new())).await?;
            return Ok(status_of(&settled));
        }
        Ok(status_of(&p))
    }

    /// Gives the tenant a policy record of the current format if it has none, or one of an
    /// older format (moving its privileged users into it), so that a sign-in reads the
    /// privileged users with the policy, in one round trip. Called when an application is
    /// configured; every admin write of the policy does it too.
    pub(crate) async fn prepare_policy(&self, tenant: &TenantId) -> Result<(), Error> {
        let (p, version) = self.policy_record(tenant).await?;
        if version == 0 || p.privileged.is_none() {
            self.update_policy(tenant, |_, _| Ok(Vec::new())).await?;
        }
        Ok(())
    }

    /// The work of `Broker::add_privileged_user`, whose docs say what it does.
    pub(crate) async fn add_privileged_user(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<(), Error> {
        self.update_policy(tenant, |p, _| {
            let users = p.privileged.get_or_insert_with(BTreeSet::new);
            if !users.contains(user) && users.len() >= MAX_PRIVILEGED_USERS {
                return Err(ConfigError::Invalid {
                    what: "privileged users",
                    reason: format!("a tenant has at most {MAX_PRIVILEGED_USERS} privileged users"),
                }
                .into());
            }
            users.insert(user.clone());
            Ok(Vec::new())
        })
        .await?;
        self.cx.audit(
            tenant,
            "admin",
            user.as_str(),
            AuditKind::PrivilegedAdded,
            "admin",
        );
        Ok(())
    }

    /// The work of `Broker::remove_privileged_user`, whose docs say what it does.
    pub(crate) async fn remove_privileged_user(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<bool, Error> {
        let mut removed = false;
        self.update_policy(tenant, |p, _| {
            removed = p
                .privileged
                .as_mut()
                .is_some_and(|users| users.remove(user));
            Ok(Vec::new())
        })
        .await?;
        // A record of format 1 written since (by a node of an older version during an
        // upgrade) is ignored here, but would still count on such a node: delete it too.
        let k = key(&[tenant.as_str(), user.as_str()]);
        self.cx
            .store
            .delete(NS_PRIVILEGED, &k, self.cx.now())
            .await?;
        if removed {
            self.cx.audit(
                tenant,
                "admin",
                user.as_str(),
                AuditKind::PrivilegedRemoved,
                "admin",
            );
        }
        Ok(removed)
    }

    /// The work of `Broker::list_privileged_users`, whose docs say what it does.
    pub(crate) async fn list_privileged_users(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<UserId>, Error> {
        let (policy, _) = self.policy_record(tenant).await?;
        if let Some(users) = &policy.privileged {
            return Ok(users.iter().cloned().collect());
        }
        Ok(
            records::list::<PrivilegedUser>(&*self.cx.store, tenant.as_str(), self.cx.now())
                .await?
                .into_iter()
                .map(|(_, p)| p.record.0)
                .collect(),
        )
    }

    /// Whether `user` is privileged under `policy`, the tenant's policy this operation has
    /// read (never one kept from an earlier operation: a user removed from the list loses
    /// the bypass at once). No store read when the record lists the privileged users
    /// (format 2); one read of the user's `privileged_user` record for a record of format 1.
    pub(crate) async fn is_privileged(
        &self,
        policy: &PolicyRecord,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<bool, Error> {
        if let Some(privileged) = policy.lists_privileged(user) {
            return Ok(privileged);
        }
        let k = key(&[tenant.as_str(), user.as_str()]);
        Ok(self
            .cx
            .store
            .get(NS_PRIVILEGED, &k, self.cx.now())
            .await?
            .is_some())
    }

    /// The work of `Broker::check_password_login`, whose docs say what it does.
    pub(crate) async fn check_password_login(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<PasswordDecision, Error> {
        let policy = self.effective_policy(tenant).await?;
        let privileged = self.is_privileged(&policy, tenant, user).await?;
        Ok(password_decision(&policy, privileged))
    }

    /// Whether SSO sign-in through `provider` is allowed now: by the method in force, or by a
    /// pending one (so users can move before the switch).
    pub(crate) fn sso_sign_in_allowed(policy: &PolicyRecord, provider: &ProviderId) -> bool {
        let m = SessionMethod::Sso {
            provider: provider.clone(),
        };
        policy.method.allows(&m, false)
            || policy
                .pending
                .as_ref()
                .is_some_and(|p| p.method.allows(&m, false))
    }
}

/// Whether a password sign-in is allowed under `policy` for a user who is (or is not)
/// privileged.
pub(crate) fn password_decision(policy: &PolicyRecord, privileged: bool) -> PasswordDecision {
    if policy.method.allows(&SessionMethod::Password, privileged) {
        PasswordDecision::Allowed
    } else {
        PasswordDecision::SsoRequired {
            providers: match &policy.method {
                AuthMethod::Sso { providers } => providers.clone(),
                _ => Vec::new(),
            },
        }
    }
}

fn status_of(p: &PolicyRecord) -> TenantAuthStatus {
    TenantAuthStatus {
        method: p.method.clone(),
        pending: p
            .pending
            .as_ref()
            .map(|s| (s.method.clone(), s.effective_at)),
        pending_revocation: p.pending.as_ref().map(|s| s.revocation),
    }
}

pub(crate) fn method_name(m: &AuthMethod) -> String {
    match m {
        AuthMethod::Password => "password".to_owned(),
        AuthMethod::Either => "either".to_owned(),
        AuthMethod::Sso { providers } if providers.is_empty() => "sso".to_owned(),
        AuthMethod::Sso { providers } => format!(
            "sso:{}",
            providers
                .iter()
                .map(ProviderId::as_str)
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

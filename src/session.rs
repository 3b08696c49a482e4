//! Session grants and their check against the tenant's policy.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::audit::AuditKind;
use crate::context::Context;
use crate::error::{Error, PolicyError};
use crate::ids::{TenantId, UserId};
use crate::policy::{
    PasswordDecision, Policies, PolicyRecord, SessionMethod, SwitchRevocation, password_decision,
};

/// The session capability: grants, and whether a session may go on.
pub(crate) struct Sessions {
    cx: Arc<Context>,
    policies: Arc<Policies>,
}

/// Its own state only: the context and the services it calls are shown by the broker.
impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    pub(crate) fn new(cx: Arc<Context>, policies: Arc<Policies>) -> Self {
        Self { cx, policies }
    }
}

/// What a sign-in yields: the host keeps it with its own session and checks it with
/// [`Broker::check_session`](crate::Broker::check_session) on each request (O(1), one store read,
/// no write).
///
/// It holds no secret; it is safe to serialise into the host's server-side session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionGrant {
    /// The tenant.
    pub tenant: TenantId,
    /// The user.
    pub user: UserId,
    /// How the user signed in.
    pub method: SessionMethod,
    /// Whether the user was privileged when they signed in.
    pub privileged: bool,
    /// The tenant's policy epoch when the grant was made.
    pub epoch: u64,
    /// When the grant was made.
    pub issued_at: OffsetDateTime,
}

/// The answer of [`Broker::check_session`](crate::Broker::check_session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatus {
    /// The session may go on.
    Active,
    /// The session must end.
    Revoked {
        /// Why.
        reason: RevocationReason,
    },
}

/// Why a session was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationReason {
    /// The tenant's authentication method changed after the session was granted: a switch
    /// that ends every earlier session (the default,
    /// [`SwitchRevocation::AllSessions`](crate::SwitchRevocation::AllSessions)), or one to a
    /// method that does not allow how this session was obtained
    /// ([`SwitchRevocation::DisallowedSessions`](crate::SwitchRevocation::DisallowedSessions)).
    /// The user signs in again as the method in force allows.
    MethodChanged {
        /// When the change took effect.
        effective_at: OffsetDateTime,
    },
    /// The session is older than the policy history the broker keeps.
    TooOld,
    /// The tenant's method in force does not allow how this session was obtained (for
    /// instance an SSO sign-in made during the grace of a switch that was then cancelled).
    NotAllowed,
}

impl Sessions {
    /// A grant under `policy`, the one the caller has just read and checked the sign-in
    /// against (so the grant's epoch is the epoch of that decision).
    pub(crate) async fn grant_session(
        &self,
        policy: &PolicyRecord,
        tenant: &TenantId,
        user: &UserId,
        method: SessionMethod,
    ) -> Result<SessionGrant, Error> {
        let privileged = self.policies.is_privileged(policy, tenant, user).await?;
        Ok(self.grant(policy, tenant, user, method, privileged))
    }

    fn grant(
        &self,
        policy: &PolicyRecord,
        tenant: &TenantId,
        user: &UserId,
        method: SessionMethod,
        privileged: bool,
    ) -> SessionGrant {
        SessionGrant {
            tenant: tenant.clone(),
            user: user.clone(),
            method,
            privileged,
            epoch: policy.epoch,
            issued_at: self.cx.now(),
        }
    }

    /// The work of `Broker::grant_password_session`, whose docs say what it does.
    pub(crate) async fn grant_password_session(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<SessionGrant, Error> {
        // One read: the policy record lists the privileged users.
        let policy = self.policies.effective_policy(tenant).await?;
        let privileged = self.policies.is_privileged(&policy, tenant, user).await?;
        match password_decision(&policy, privileged) {
            PasswordDecision::Allowed => {
                Ok(self.grant(&policy, tenant, user, SessionMethod::Password, privileged))
            }
            PasswordDecision::SsoRequired { providers } => {
                self.cx.audit(
                    tenant,
                    user.as_str(),
                    user.as_str(),
                    AuditKind::SignInRefused,
                    "sso_enforced",
                );
                Err(PolicyError::PasswordNotAllowed { providers }.into())
            }
        }
    }

    /// The work of `Broker::check_session`, whose docs say what it does.
    pub(crate) async fn check_session(&self, grant: &SessionGrant) -> Result<SessionStatus, Error> {
        let (policy, _) = self.policies.policy_record(&grant.tenant).await?;
        let now = self.cx.now();
        let due_pending = policy.pending.as_ref().filter(|p| p.effective_at <= now);
        let mut oldest_known = None;
        for switch in policy.history.iter().chain(due_pending) {
            oldest_known.get_or_insert(switch.epoch);
            if switch.epoch <= grant.epoch {
                continue;
            }
            let rule = match switch.revocation {
                SwitchRevocation::AllSessions => "method_changed.all_sessions",
                SwitchRevocation::DisallowedSessions
                    if !switch.method.allows(&grant.method, grant.privileged) =>
                {
                    "method_changed"
                }
                SwitchRevocation::DisallowedSessions => continue,
            };
            return Ok(self.revoked(
                grant,
                RevocationReason::MethodChanged {
                    effective_at: switch.effective_at,
                },
                rule,
            ));
        }
        // Switches older than the history were forgotten: a grant from before them cannot be
        // judged, so it ends.
        if let Some(oldest) = oldest_known
            && grant.epoch + 1 < oldest
        {
            return Ok(self.revoked(grant, RevocationReason::TooOld, "too_old"));
        }
        // The session must also be allowed now: by the method in force, or by a pending one
        // (sign-ins through the coming method are allowed during the grace). This ends the
        // sessions of a pending method whose switch was cancelled.
        let (method, pending) = match due_pending {
            Some(p) => (&p.method, None),
            None => (&policy.method, policy.pending.as_ref()),
        };
        if !method.allows(&grant.method, grant.privileged)
            && !pending.is_some_and(|p| p.method.allows(&grant.method, grant.privileged))
        {
            return Ok(self.revoked(grant, RevocationReason::NotAllowed, "method_does_not_allow"));
        }
        Ok(SessionStatus::Active)
    }

    fn revoked(
        &self,
        grant: &SessionGrant,
        reason: RevocationReason,
        rule: &'static str,
    ) -> SessionStatus {
        self.cx.audit(
            &grant.tenant,
            "system",
            grant.user.as_str(),
            AuditKind::SessionRevoked,
            rule,
        );
        SessionStatus::Revoked { reason }
    }
}

//! Audit events: every policy decision, with who, on whom, and the rule that decided.

use std::fmt::Debug;

use serde::Serialize;
use time::OffsetDateTime;

use crate::ids::TenantId;

/// One decision of the broker.
///
/// Events never carry a secret, a token, a code or a ticket: only ids, provider names, the
/// decision and the rule behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When the decision was made (the broker's clock).
    pub at: OffsetDateTime,
    /// The tenant.
    pub tenant: TenantId,
    /// Who caused it: a user id, `provider:<id>` for a provider-asserted identity, `browser`
    /// for an unauthenticated request (a login callback), or `system` for scheduled effects.
    pub actor: String,
    /// Whom or what it is about: a user id, an `issuer#subject` account, a method, or
    /// `provider:<id>` for the application a refused login went through.
    pub subject: String,
    /// What was decided.
    pub kind: AuditKind,
    /// The rule that decided, as a stable identifier such as `invite_only` or
    /// `auto_link.email_not_verified`.
    pub rule: &'static str,
}

/// The kinds of [`AuditEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditKind {
    /// A provider account was bound to a user.
    Bind,
    /// A binding was removed.
    Unbind,
    /// A binding was refused (already bound elsewhere, last sign-in method, ...).
    BindRefused,
    /// A provider account was bound automatically by verified email.
    AutoLink,
    /// Automatic linking was refused; `rule` says why.
    AutoLinkRefused,
    /// A link ticket was redeemed.
    LinkTicketRedeemed,
    /// A link ticket redemption was refused.
    LinkTicketRefused,
    /// A change of the tenant's authentication method was scheduled.
    MethodScheduled,
    /// A scheduled change of the tenant's authentication method was cancelled before it took
    /// effect (`admin_cancel`: [`Broker::cancel_auth_method_switch`](crate::Broker::cancel_auth_method_switch);
    /// `switch_cancelled`: the current method was set again).
    MethodSwitchCancelled,
    /// A scheduled authentication method took effect.
    MethodEffective,
    /// A user was made privileged.
    PrivilegedAdded,
    /// A user stopped being privileged.
    PrivilegedRemoved,
    /// A session was found revoked.
    SessionRevoked,
    /// A sign-in was refused by the tenant's policy.
    SignInRefused,
    /// A login step was refused as a possible attack, not a mistake or a timeout. `actor` is
    /// `browser` (whoever sent the callback), `subject` the application (`provider:<id>`), and
    /// `rule` names the check: `login.browser_mismatch` (a live state presented with another
    /// browser's cookie, or none), `login.iss_mismatch` (RFC 9207: a possible mix-up),
    /// `login.nonce_mismatch` (a replayed or injected ID token), `login.at_hash_mismatch` (an
    /// access token that is not the one the ID token names). [`TracingAuditSink`] logs these
    /// at WARN.
    SecurityRefusal,
    /// A mailbox was connected (or reconnected); `subject` is the connection id.
    ConnectionConnected,
    /// The provider refused a connection's refresh token; it needs consent again.
    ConnectionNeedsReconsent,
    /// A connection was revoked; its tokens were deleted.
    ConnectionRevoked,
}

/// Where audit events go. Called synchronously on the decision path: hand the event to a
/// channel or a buffered writer, do not block.
pub trait AuditSink: Debug + Send + Sync + 'static {
    /// Records one event.
    fn record(&self, event: &AuditEvent);
}

/// The default sink: one `tracing` event per decision, target `cx_sso::audit`, at INFO level,
/// or WARN for an [`AuditKind::SecurityRefusal`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingAuditSink;

impl AuditSink for TracingAuditSink {
    fn record(&self, e: &AuditEvent) {
        if e.kind == AuditKind::SecurityRefusal {
            tracing::warn!(
                target: "cx_sso::audit",
                tenant = %e.tenant,
                actor = %e.actor,
                subject = %e.subject,
                kind = ?e.kind,
                rule = e.rule,
                "audit: security refusal"
            );
        } else {
            tracing::info!(
                target: "cx_sso::audit",
                tenant = %e.tenant,
                actor = %e.actor,
                subject = %e.subject,
                kind = ?e.kind,
                rule = e.rule,
                "audit"
            );
        }
    }
}

/// A sink that keeps events in memory, for tests and admin views.
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: std::sync::Mutex<Vec<AuditEvent>>,
}

impl MemoryAuditSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events recorded so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl AuditSink for MemoryAuditSink {
    fn record(&self, event: &AuditEvent) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}

impl AuditSink for std::sync::Arc<MemoryAuditSink> {
    fn record(&self, event: &AuditEvent) {
        (**self).record(event);
    }
}

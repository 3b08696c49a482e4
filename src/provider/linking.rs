//! Per-application linking rules: how an unbound provider account is handled on sign-in
//! ([`LinkingPolicy`]) and whether a binding needs matching emails ([`EmailMatch`]). They are
//! part of a [`ProviderConfig`](crate::ProviderConfig); the policy module applies them.

use serde::{Deserialize, Serialize};

/// How a provider account that is not bound yet is handled on sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinkingPolicy {
    /// The default: a provider account never creates or finds a user by itself. An unbound
    /// account gets [`LoginOutcome::LinkRequired`](crate::LoginOutcome::LinkRequired), or a
    /// refusal when `link_on_first_login` is off.
    InviteOnly {
        /// Whether a first sign-in may link after the user proves who they are.
        link_on_first_login: bool,
    },
    /// Binds automatically when the provider *verifies* the email and it matches exactly one
    /// active user of the tenant, in an allowed domain. Otherwise behaves as `InviteOnly`.
    AutoLinkVerifiedEmail {
        /// Email domains that may be linked automatically; empty allows any domain.
        allowed_domains: Vec<String>,
        /// Microsoft Entra: domains the tenant knows to be verified in its Entra directory.
        /// Entra's `email` claim is not verified by itself; only these domains or the
        /// `xms_edov` claim make it count.
        entra_verified_domains: Vec<String>,
        /// Whether a sign-in that is not linked automatically may link after proof.
        link_on_first_login: bool,
    },
}

/// Whether a provider account may be bound only to the user whose login email it has: the
/// Google sign-in document's "login email addresses must match the Google account emails".
/// A per-application setting ([`ProviderConfig::with_email_match`](crate::ProviderConfig::with_email_match)).
///
/// With [`Required`](Self::Required) the rule holds on **every path that creates a binding**:
/// binding from the security settings ([`LoginIntent::Link`](crate::LoginIntent::Link)),
/// link-ticket redemption ([`Broker::redeem_link_ticket`](crate::Broker::redeem_link_ticket)) and automatic linking
/// ([`LinkingPolicy::AutoLinkVerifiedEmail`], which meets it by construction). A binding is made
/// only when:
///
/// 1. the provider states an email and **vouches for it**: `email_verified` for Google and
///    OpenID providers; for Microsoft Entra the `xms_edov` claim or a domain listed in the
///    application's `AutoLinkVerifiedEmail::entra_verified_domains`, never the plain `email`
///    claim (the "nOAuth" takeover);
/// 2. the host's [`UserDirectory`](crate::UserDirectory) returns **exactly one** active user
///    whose ownership of that email the host verified, and it is the user being bound.
///
/// Otherwise the binding is refused with [`PolicyError::EmailMismatch`](crate::PolicyError::EmailMismatch) (audited
/// [`AuditKind::BindRefused`](crate::AuditKind::BindRefused), rule `email_match.*`). A first sign-in whose email the provider
/// does not state or vouch for is refused at once (no link ticket: no user could redeem it).
/// The rule needs a `UserDirectory`: with the default [`NoDirectory`](crate::NoDirectory)
/// nobody matches. Bindings made before the rule was switched on are not re-checked at
/// sign-in (a binding is keyed by issuer and subject, not by email).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EmailMatch {
    /// The default: a user who proves who they are may bind any account of the application.
    #[default]
    NotRequired,
    /// The account's provider-verified email must be the user's host-verified login email.
    Required,
}

impl Default for LinkingPolicy {
    fn default() -> Self {
        Self::InviteOnly {
            link_on_first_login: true,
        }
    }
}

impl LinkingPolicy {
    /// The Entra domains the application knows to be verified (empty unless
    /// `AutoLinkVerifiedEmail` lists some).
    pub(crate) fn entra_verified_domains(&self) -> &[String] {
        match self {
            Self::AutoLinkVerifiedEmail {
                entra_verified_domains,
                ..
            } => entra_verified_domains,
            Self::InviteOnly { .. } => &[],
        }
    }

    pub(crate) fn link_on_first_login(&self) -> bool {
        match self {
            Self::InviteOnly {
                link_on_first_login,
            }
            | Self::AutoLinkVerifiedEmail {
                link_on_first_login,
                ..
            } => *link_on_first_login,
        }
    }
}

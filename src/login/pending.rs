//! The pending-login record: a login in flight, stored between
//! [`Broker::begin_login`](crate::Broker::begin_login) and its callback, and its store key.

use time::OffsetDateTime;

use crate::crypto::bound_key;
use crate::ids::{ProviderId, TenantId};
use crate::oauth::PkceVerifier;
use crate::store::records;

use super::LoginIntent;

pub(crate) const NS_PENDING: &str = records::PENDING_LOGIN.name;

/// A login in flight.
///
/// Stored under [`pending_key`]`(state, browser binding)`, so that only the browser that began
/// the login can address (and so take) it; its index is the hash of the state alone, which
/// only tells a callback with the wrong cookie apart from an unknown state. Its stored form is
/// in `record.rs`.
#[derive(Clone)]
pub(crate) struct PendingLogin {
    pub(crate) tenant: TenantId,
    pub(crate) provider: ProviderId,
    pub(crate) intent: LoginIntent,
    pub(crate) pkce_verifier: PkceVerifier,
    pub(crate) nonce: String,
    pub(crate) return_to: String,
    pub(crate) redirect_uri: String,
    pub(crate) expires_at: OffsetDateTime,
    /// The tenant's policy epoch when the login began.
    pub(crate) policy_epoch: u64,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("tenant", &self.tenant)
            .field("provider", &self.provider)
            .field("intent", &self.intent)
            .field("return_to", &self.return_to)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The store key of a pending login: its state bound to the browser's cookie value.
pub(super) fn pending_key(state: &str, browser_binding: &str) -> String {
    bound_key("cx-sso pending login v1", state, browser_binding)
}

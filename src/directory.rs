//! The host's users, as far as the broker needs to know them.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::Error;
use crate::ids::{TenantId, UserId};

/// Read access to the host's users. The host owns its users; the broker only asks.
///
/// Used by automatic linking by verified email, by the email-match rule
/// ([`EmailMatch::Required`](crate::EmailMatch::Required): is the account's email this user's
/// verified login email?), by link-ticket redemption (is the user active?) and by unbinding
/// (would the user lose their last way to sign in?).
#[async_trait]
pub trait UserDirectory: Debug + Send + Sync + 'static {
    /// The *active* users of `tenant` whose login email is `email` (compared
    /// case-insensitively by the host) **and whose ownership of that email the host has
    /// verified** (a confirmation link, an invitation accepted from that mailbox).
    ///
    /// Returning accounts with unverified emails opens the door to pre-account hijacking: an
    /// attacker registers the victim's email locally, then the victim's provider account is
    /// linked into the attacker's account. More than one result makes automatic linking refuse.
    async fn active_users_with_verified_email(
        &self,
        tenant: &TenantId,
        email: &str,
    ) -> Result<Vec<UserId>, Error>;

    /// Whether `user` exists in `tenant` and is active (not disabled).
    async fn is_active(&self, tenant: &TenantId, user: &UserId) -> Result<bool, Error>;
}

/// The directory used when the host plugs none: every user id is taken as active, and no
/// user is ever found by email, so automatic linking never links and an application that
/// requires the email to match binds nobody.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDirectory;

#[async_trait]
impl UserDirectory for NoDirectory {
    async fn active_users_with_verified_email(
        &self,
        _tenant: &TenantId,
        _email: &str,
    ) -> Result<Vec<UserId>, Error> {
        Ok(Vec::new())
    }

    async fn is_active(&self, _tenant: &TenantId, _user: &UserId) -> Result<bool, Error> {
        Ok(true)
    }
}

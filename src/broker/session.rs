//! The facade of the session capability: one-line delegations to `crate::session`.

use crate::error::Error;
#[cfg(doc)]
use crate::error::PolicyError;
use crate::ids::{TenantId, UserId};
use crate::session::{SessionGrant, SessionStatus};

use super::Broker;

impl Broker {
    /// A session grant for a password sign-in, after the host has checked the password.
    ///
    /// # Errors
    ///
    /// [`PolicyError::PasswordNotAllowed`] when the tenant enforces SSO and the user is not
    /// privileged; [`Error::Store`].
    pub async fn grant_password_session(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<SessionGrant, Error> {
        self.inner
            .sessions
            .grant_password_session(tenant, user)
            .await
    }

    /// Whether a session may go on.
    ///
    /// A session is revoked once a method change *has taken effect* after it was granted:
    /// under the default [`SwitchRevocation::AllSessions`](crate::SwitchRevocation::AllSessions)
    /// whatever its method (privileged users included), under
    /// [`SwitchRevocation::DisallowedSessions`](crate::SwitchRevocation::DisallowedSessions)
    /// when the new method does not allow how it was obtained. "Granted before" is judged by
    /// the policy epoch the grant was made under, so a session granted during the grace ends
    /// with the others, and one granted at the moment the switch takes effect or later goes
    /// on. During the grace every session stays active. O(1): one store read of the tenant's
    /// policy, no write.
    ///
    /// # Errors
    ///
    /// [`Error::Store`]: the caller should treat the session as not verified (fail closed).
    pub async fn check_session(&self, grant: &SessionGrant) -> Result<SessionStatus, Error> {
        self.inner.sessions.check_session(grant).await
    }
}

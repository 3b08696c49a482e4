//! The facade of the connection capability: one-line delegations to `crate::connection`.

#[cfg(doc)]
use crate::connection::ConnectionStatus;
use crate::connection::{ConnectionInfo, ProviderRevocation, Xoauth2};
#[cfg(doc)]
use crate::error::ConnectionError;
use crate::error::Error;
use crate::ids::{ConnectionId, TenantId};
use crate::secret::AccessToken;

use super::Broker;

impl Broker {
    /// A valid access token for the connection, refreshed first when it expires within the
    /// refresh margin (5 minutes by default,
    /// [`BrokerBuilder::connection_refresh_margin`](crate::BrokerBuilder::connection_refresh_margin)).
    ///
    /// The cached path is one store read (and one decryption). The refresh is single-flight
    /// per connection, in the process and across nodes sharing the store (see the
    /// [crate docs](crate#mailbox-connections) and the crate's Security section). It needs no
    /// particular runtime: with the broker's [`Spawner`](crate::Spawner) a started refresh
    /// reaches the store even if this future is dropped, and with its
    /// [`Sleeper`](crate::Sleeper) a caller waits up to 10 s for another node's refresh;
    /// without them the refresh runs inline and that wait is a
    /// [`ConnectionError::Transient`] at once (see [`runtime`](crate::runtime)).
    ///
    /// # Errors
    ///
    /// [`ConnectionError::NotFound`]; [`ConnectionError::NeedsReconsent`] when the provider
    /// refused the refresh token (the connection is marked so, its data kept; no retry);
    /// [`ConnectionError::Revoked`]; [`ConnectionError::Transient`] with a retry hint when the
    /// provider failed (5xx, timeout) or another node's refresh did not finish in time (the
    /// tokens are kept); [`ConnectionError::Undecryptable`]; [`Error::TokenEndpoint`] for other
    /// provider refusals (such as `invalid_client` after a secret change); [`Error::Store`].
    pub async fn access_token(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<AccessToken, Error> {
        self.inner
            .connections
            .access_token(tenant, connection)
            .await
    }

    /// The SASL XOAUTH2 initial response for the connection's mailbox, with a valid access
    /// token ([`access_token`](Self::access_token) first, then
    /// [`Xoauth2::new`]).
    ///
    /// # Errors
    ///
    /// Those of [`access_token`](Self::access_token), and
    /// [`ConnectionError::InvalidMailbox`].
    pub async fn xoauth2(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<Xoauth2, Error> {
        self.inner.connections.xoauth2(tenant, connection).await
    }

    /// One connection as the admin page shows it.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::NotFound`]; [`Error::Store`].
    pub async fn connection_info(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<ConnectionInfo, Error> {
        self.inner
            .connections
            .connection_info(tenant, connection)
            .await
    }

    /// The tenant's mailbox connections with their status, in id order. No token is read.
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn list_connections(&self, tenant: &TenantId) -> Result<Vec<ConnectionInfo>, Error> {
        self.inner.connections.list_connections(tenant).await
    }

    /// Disconnects a mailbox: revokes the refresh token at the provider (RFC 7009) where it
    /// has a revocation endpoint, then deletes the tokens; the record stays, with status
    /// [`ConnectionStatus::Revoked`], until the mailbox is connected again.
    ///
    /// The local tokens are deleted even when the provider's revocation fails
    /// ([`ProviderRevocation::Failed`]). The revocation endpoint must be `https`, even on a
    /// loopback address (RFC 7009 §2, enforced by the `oauth2` crate): a loopback `http`
    /// endpoint gets `Failed` without the token being sent.
    ///
    /// # Errors
    ///
    /// [`ConnectionError::NotFound`]; [`Error::Store`] (then nothing was deleted).
    pub async fn revoke_connection(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<ProviderRevocation, Error> {
        self.inner
            .connections
            .revoke_connection(tenant, connection)
            .await
    }
}

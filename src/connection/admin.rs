//! The admin side of connections: their state, listing them, and revoking one (here and at
//! the provider).

use time::OffsetDateTime;
use url::Url;

use crate::audit::AuditKind;
use crate::crypto::open;
use crate::error::{ConnectionError, Error};
use crate::ids::{ConnectionId, ProviderId, TenantId};
use crate::oauth::TokenClient;
use crate::secret::RefreshToken;
use crate::store::records::{self, CasRetry};
use crate::store::{CasOutcome, NewRecord, key};

use super::Connections;
use super::record::{ConnectionRecord, NS_CONNECTION, StoredStatus, corrupt};

/// The state of a connection, for the admin page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionStatus {
    /// Usable. `valid_until` is when the current access token expires; it is refreshed
    /// before then on demand.
    Connected {
        /// When the current access token expires.
        valid_until: OffsetDateTime,
    },
    /// The provider refused the refresh token; an admin must connect the mailbox again.
    NeedsReconsent {
        /// Why, in words an admin can act on.
        reason: String,
    },
    /// An admin revoked the connection; its tokens are deleted.
    Revoked,
}

/// A connection as the admin page shows it. Holds no token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection id.
    pub connection: ConnectionId,
    /// The application it was connected through.
    pub provider: ProviderId,
    /// The mailbox address.
    pub mailbox: String,
    /// The scopes the provider granted.
    pub scopes: Vec<String>,
    /// Its state.
    pub status: ConnectionStatus,
    /// When it was (last) connected.
    pub connected_at: OffsetDateTime,
}

/// What happened at the provider when a connection was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderRevocation {
    /// The provider's RFC 7009 endpoint accepted the refresh token's revocation.
    Revoked,
    /// The provider has no revocation endpoint (Microsoft), or there was no token to revoke;
    /// the tokens were deleted here only.
    NotSupported,
    /// The revocation request failed; the tokens were deleted here all the same. The grant
    /// may live on at the provider until the user removes it there.
    Failed {
        /// Why, without data.
        reason: String,
    },
}

fn info(connection: ConnectionId, record: ConnectionRecord) -> ConnectionInfo {
    let status = match record.status {
        StoredStatus::Connected => ConnectionStatus::Connected {
            valid_until: record.expires_at,
        },
        StoredStatus::NeedsReconsent { reason } => ConnectionStatus::NeedsReconsent { reason },
        StoredStatus::Revoked => ConnectionStatus::Revoked,
    };
    ConnectionInfo {
        connection,
        provider: record.provider,
        mailbox: record.mailbox,
        scopes: record.scopes,
        status,
        connected_at: record.connected_at,
    }
}

impl Connections {
    /// The work of `Broker::connection_info`, whose docs say what it does.
    pub(crate) async fn connection_info(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<ConnectionInfo, Error> {
        let k = key(&[tenant.as_str(), connection.as_str()]);
        let (record, _) = self.load_connection(&k).await?;
        Ok(info(connection.clone(), record))
    }

    /// The work of `Broker::list_connections`, whose docs say what it does.
    pub(crate) async fn list_connections(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<ConnectionInfo>, Error> {
        let rows =
            records::list::<ConnectionRecord>(&*self.cx.store, tenant.as_str(), self.cx.now())
                .await?;
        let prefix = format!("{}|", key(&[tenant.as_str()]));
        rows.into_iter()
            .map(|(k, r)| {
                let id = k
                    .strip_prefix(&prefix)
                    .and_then(|c| ConnectionId::new(c).ok())
                    .ok_or_else(corrupt)?;
                Ok(info(id, r.record))
            })
            .collect()
    }

    /// The work of `Broker::revoke_connection`, whose docs say what it does.
    pub(crate) async fn revoke_connection(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<ProviderRevocation, Error> {
        let k = key(&[tenant.as_str(), connection.as_str()]);
        let (record, _) = self.load_connection(&k).await?;
        let revocation = self.revoke_at_provider(tenant, connection, &record).await;
        // A refresh may swap the record meanwhile: retry on conflict, a few times.
        let mut retry = CasRetry::new(&records::CONNECTION);
        loop {
            retry.attempt()?;
            let (record, version) = self.load_connection(&k).await?;
            let updated = ConnectionRecord {
                access_token: None,
                refresh_token: None,
                status: StoredStatus::Revoked,
                ..record
            };
            let value = Self::encode(&updated)?;
            match self
                .cx
                .store
                .compare_and_swap(
                    NS_CONNECTION,
                    &k,
                    version,
                    NewRecord::new(value).index(tenant.as_str()),
                    self.cx.now(),
                )
                .await?
            {
                CasOutcome::Swapped { .. } => {
                    self.cx.audit(
                        tenant,
                        "host",
                        connection.as_str(),
                        AuditKind::ConnectionRevoked,
                        match revocation {
                            ProviderRevocation::Revoked => "revoke.rfc7009",
                            ProviderRevocation::NotSupported => "revoke.local_only",
                            _ => "revoke.provider_failed",
                        },
                    );
                    return Ok(revocation);
                }
                CasOutcome::Missing => return Err(ConnectionError::NotFound.into()),
                CasOutcome::Conflict { .. } => continue,
            }
        }
    }

    async fn revoke_at_provider(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        record: &ConnectionRecord,
    ) -> ProviderRevocation {
        let inner = &*self.cx;
        let Some(sealed) = &record.refresh_token else {
            return ProviderRevocation::NotSupported;
        };
        let config = match self
            .providers
            .provider_config(tenant, &record.provider)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return ProviderRevocation::Failed {
                    reason: e.to_string(),
                };
            }
        };
        let endpoint: Url = match self.providers.provider_metadata(&config).await {
            Ok(meta) => match &meta.revocation_endpoint {
                Some(u) => u.clone(),
                None => return ProviderRevocation::NotSupported,
            },
            Err(e) => {
                return ProviderRevocation::Failed {
                    reason: e.to_string(),
                };
            }
        };
        let refresh = match open(
            inner.options.encryption_key.as_ref(),
            Self::binding(tenant, connection),
            "refresh_token",
            sealed,
        ) {
            Ok(t) => RefreshToken::new(t),
            Err(e) => {
                return ProviderRevocation::Failed {
                    reason: e.to_string(),
                };
            }
        };
        match TokenClient::new(&inner.oauth_env(), config.credentials())
            .revoke(&endpoint, &refresh)
            .await
        {
            Ok(()) => ProviderRevocation::Revoked,
            Err(e) => {
                tracing::warn!(tenant = %tenant, connection = %connection, error = %e,
                    "revocation at the provider failed; deleting the tokens here");
                ProviderRevocation::Failed {
                    reason: e.to_string(),
                }
            }
        }
    }
}

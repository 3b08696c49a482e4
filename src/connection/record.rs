//! The stored record of a connection: its format, sealing its tokens, and the write of a
//! completed connect login.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::crypto::{Binding, CONNECTION_DOMAIN, Sealed, open, seal};
use crate::error::{ConnectionError, Error};
use crate::ids::{ConnectionId, ProviderId, TenantId};
use crate::secret::{AccessToken, RefreshToken};
use crate::store::records::{self, StoredRecord, json_record};
use crate::store::{NewRecord, key};

use super::Connections;

pub(crate) const NS_CONNECTION: &str = records::CONNECTION.name;

/// Assumed when the provider does not say how long an access token lives.
const DEFAULT_EXPIRES_IN: i64 = 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(super) enum StoredStatus {
    Connected,
    NeedsReconsent { reason: String },
    Revoked,
}

/// Decoded connection records, keyed by store key (see [`crate::store::DecodedCache`]).
pub(super) type ConnectionCache = crate::store::DecodedCache<ConnectionRecord>;

/// The stored record of a connection (format version 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ConnectionRecord {
    pub(super) provider: ProviderId,
    pub(super) mailbox: String,
    pub(super) access_token: Option<Sealed>,
    pub(super) refresh_token: Option<Sealed>,
    #[serde(with = "time::serde::timestamp")]
    pub(super) expires_at: OffsetDateTime,
    /// When the access token was obtained: the refresh margin is at most half its lifetime.
    #[serde(with = "time::serde::timestamp")]
    pub(super) issued_at: OffsetDateTime,
    #[serde(with = "time::serde::timestamp")]
    pub(super) connected_at: OffsetDateTime,
    pub(super) scopes: Vec<String>,
    pub(super) status: StoredStatus,
    /// The `sub` of the verified ID token the connection was made with (OpenID providers): an
    /// ID token answered by a refresh must name the same. Absent in records written before it
    /// was kept, and for plain OAuth 2.0 applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) subject: Option<String>,
}

/// The tokens of a completed connect login, before storage.
pub(crate) struct NewConnection<'a> {
    pub(crate) tenant: &'a TenantId,
    pub(crate) connection: &'a ConnectionId,
    pub(crate) provider: &'a ProviderId,
    pub(crate) mailbox: String,
    /// The verified ID token's `sub`, when there was one.
    pub(crate) subject: Option<String>,
    pub(crate) access_token: &'a AccessToken,
    pub(crate) refresh_token: &'a RefreshToken,
    pub(crate) expires_in: Option<i64>,
    pub(crate) scope: Option<&'a str>,
    pub(crate) requested_scopes: &'a str,
}

json_record!(ConnectionRecord => CONNECTION);

pub(super) fn corrupt() -> Error {
    records::corrupt(&records::CONNECTION).into()
}

pub(super) fn split_scopes(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn expires_in(given: Option<i64>) -> Duration {
    // At least a minute, so that a provider answering 0 does not cause a refresh per call;
    // at most a year.
    Duration::seconds(
        given
            .unwrap_or(DEFAULT_EXPIRES_IN)
            .clamp(60, 366 * 24 * 3600),
    )
}

impl Connections {
    pub(super) fn binding<'a>(tenant: &'a TenantId, connection: &'a ConnectionId) -> Binding<'a> {
        Binding {
            domain: CONNECTION_DOMAIN,
            tenant: tenant.as_str(),
            item: connection.as_str(),
        }
    }

    pub(super) fn encode(record: &ConnectionRecord) -> Result<Vec<u8>, Error> {
        Ok(record.to_bytes()?)
    }

    /// Stores the tokens of a completed connect login, replacing any previous ones at once.
    pub(crate) async fn store_connection(
        &self,
        new: NewConnection<'_>,
    ) -> Result<OffsetDateTime, Error> {
        let key_opt = self.cx.options.encryption_key.as_ref();
        let at = Self::binding(new.tenant, new.connection);
        let now = self.cx.now();
        let expires_at = now + expires_in(new.expires_in);
        let record = ConnectionRecord {
            provider: new.provider.clone(),
            mailbox: new.mailbox,
            access_token: Some(seal(
                key_opt,
                at,
                "access_token",
                new.access_token.secret(),
            )?),
            refresh_token: Some(seal(
                key_opt,
                at,
                "refresh_token",
                new.refresh_token.secret(),
            )?),
            expires_at,
            issued_at: now,
            connected_at: now,
            scopes: split_scopes(new.scope.unwrap_or(new.requested_scopes)),
            status: StoredStatus::Connected,
            subject: new.subject,
        };
        let value = Self::encode(&record)?;
        self.cx
            .store
            .put(
                NS_CONNECTION,
                &key(&[new.tenant.as_str(), new.connection.as_str()]),
                NewRecord::new(value).index(new.tenant.as_str()),
                now,
            )
            .await?;
        Ok(expires_at)
    }

    /// The record, decoded anew: for the paths that write it back.
    pub(super) async fn load_connection(&self, k: &str) -> Result<(ConnectionRecord, u64), Error> {
        let stored = records::get::<ConnectionRecord>(&*self.cx.store, k, self.cx.now())
            .await?
            .ok_or(ConnectionError::NotFound)?;
        Ok((stored.record, stored.version))
    }

    /// The record for reading: one store read, and the decoding reused while the stored bytes
    /// are unchanged (every cached `access_token` reads it; decoding it was the larger part of
    /// that call after the read itself).
    pub(super) async fn read_connection(&self, k: &str) -> Result<Arc<ConnectionRecord>, Error> {
        let stored = self
            .cx
            .store
            .get(NS_CONNECTION, k, self.cx.now())
            .await?
            .ok_or(ConnectionError::NotFound)?;
        Ok(self.records.get_or_decode(k, &stored.value, || {
            ConnectionRecord::from_bytes(&stored.value)
        })?)
    }

    pub(super) fn usable(record: &ConnectionRecord) -> Result<(), Error> {
        match &record.status {
            StoredStatus::Connected => Ok(()),
            StoredStatus::NeedsReconsent { reason } => Err(ConnectionError::NeedsReconsent {
                reason: reason.clone(),
            }
            .into()),
            StoredStatus::Revoked => Err(ConnectionError::Revoked.into()),
        }
    }

    pub(super) fn open_access(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        record: &ConnectionRecord,
    ) -> Result<AccessToken, Error> {
        let sealed = record
            .access_token
            .as_ref()
            .ok_or(ConnectionError::Revoked)?;
        let plain = open(
            self.cx.options.encryption_key.as_ref(),
            Self::binding(tenant, connection),
            "access_token",
            sealed,
        )?;
        Ok(AccessToken::new(plain))
    }
}

//! Mailbox connections: delegated OAuth tokens that refresh themselves, and XOAUTH2.
//!
//! An admin connects a mailbox with [`LoginIntent::Connect`](crate::LoginIntent::Connect); the
//! completed login stores a token set under (tenant, connection). [`Broker::access_token`]
//! hands out a valid access token, refreshing it once per connection however many callers
//! and nodes ask at the same moment; [`Broker::xoauth2`] builds the SASL string for SMTP and
//! IMAP.
//!
//! # Storage
//!
//! One record per connection in namespace `connection`, key `tenant|connection`, index the
//! tenant: JSON with the provider id, the mailbox, the access and refresh tokens (encrypted
//! when the host gave an [`EncryptionKey`]), their expiry, the granted scopes and the status.
//! Every write is one store call (`put` on connect, `compare_and_swap` on the version
//! otherwise), so a record is never half-written.
//!
//! # Refresh, single-flight
//!
//! 1. In the process: one async mutex per connection; whoever gets it second re-reads the
//!    record and finds the token the first one stored.
//! 2. Across nodes: a lease record (`connection_lease`, 120 s expiry) taken with the store's
//!    insert-if-absent. A node that does not get it re-reads the record every 25 ms, through
//!    the host's [`Sleeper`](crate::Sleeper), until a fresh token appears or the lease
//!    expires, for at most 10 s measured on the broker's [`Clock`](crate::Clock) (and at most
//!    400 polls, whatever the clock does), then answers [`ConnectionError::Transient`].
//!    Without a sleeper it answers that at once, with a 1-second hint, and never spins.
//! 3. The lease holder re-reads the record (another node may have just refreshed), refreshes,
//!    then writes with `compare_and_swap` on the version it read; only then is the new access
//!    token handed out. With a [`Spawner`](crate::Spawner), the refresh and the write run on
//!    a spawned task, so a caller that gives up meanwhile (a timeout around `access_token`)
//!    does not lose the rotated refresh token; without one they run inline in the caller's
//!    future, and a caller dropping it between the provider's answer and the write loses the
//!    answer as a crash would (below). A rotated refresh token is thus persisted before any
//!    access token from it is used; a provider that returns no refresh token (Google) keeps
//!    the old one.
//!
//! Nothing here spawns, sleeps or reads the time except through the broker's `Spawner`,
//! `Sleeper` and `Clock` (see [`runtime`](crate::runtime)).
//!
//! A store error at the write of a refreshed token set is tried again, up to three writes in
//! all (25 ms apart with a sleeper), and a write that landed but whose answer was lost is
//! recognised by the stored bytes: a brief store failure loses no rotated refresh token.
//!
//! If the process dies between the provider's answer and the store write (or the store stays
//! down through every attempt), the record still holds the previous refresh token: a provider
//! that does not rotate accepts it again, one that rotates with reuse detection refuses it
//! (`invalid_grant`), and the connection is marked [`ConnectionStatus::NeedsReconsent`].
//! Either way the record is whole.

mod xoauth2;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use url::Url;

pub use xoauth2::{Xoauth2, Xoauth2Failure};

use crate::audit::AuditKind;
use crate::broker::Broker;
use crate::crypto::{Binding, CONNECTION_DOMAIN, Sealed, open, seal};
use crate::error::{ConnectionError, Error, IdTokenError, TokenEndpointError};
use crate::ids::{ConnectionId, ProviderId, TenantId};
use crate::oauth::TokenClient;
use crate::secret::{AccessToken, RefreshToken};
use crate::store::records::{self, CasRetry, LeaseHolder, StoredRecord, json_record};
use crate::store::{CasOutcome, Inserted, NewRecord, StoreError, key};

pub(crate) const NS_CONNECTION: &str = records::CONNECTION.name;
pub(crate) const NS_LEASE: &str = records::CONNECTION_LEASE.name;

/// How long a refresh lease lasts when its holder dies.
const LEASE_TTL: Duration = Duration::seconds(120);
/// How long a caller waits for another node's refresh before giving up, on the broker's clock.
const LEASE_WAIT: Duration = Duration::seconds(10);
/// How often a waiting caller re-reads the record.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(25);
/// The most re-reads of one wait, whatever the clock says (a clock that stands still, or a
/// sleeper that returns at once, must not make a caller spin): `LEASE_WAIT / LEASE_POLL`.
const LEASE_MAX_POLLS: u32 = 400;
/// How many times a refreshed token set is written before the store error is given up on.
const REFRESH_WRITE_ATTEMPTS: usize = 3;
/// The retry hint after a provider failure.
const PROVIDER_RETRY: Duration = Duration::seconds(30);
/// The retry hint after a store conflict or a lease wait that timed out.
const CONTENTION_RETRY: Duration = Duration::seconds(1);
/// Assumed when the provider does not say how long an access token lives.
const DEFAULT_EXPIRES_IN: i64 = 3600;

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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum StoredStatus {
    Connected,
    NeedsReconsent { reason: String },
    Revoked,
}

/// Decoded connection records, keyed by store key (see [`crate::store::DecodedCache`]).
pub(crate) type ConnectionCache = crate::store::DecodedCache<ConnectionRecord>;

/// The stored record of a connection (format version 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConnectionRecord {
    provider: ProviderId,
    mailbox: String,
    access_token: Option<Sealed>,
    refresh_token: Option<Sealed>,
    #[serde(with = "time::serde::timestamp")]
    expires_at: OffsetDateTime,
    /// When the access token was obtained: the refresh margin is at most half its lifetime.
    #[serde(with = "time::serde::timestamp")]
    issued_at: OffsetDateTime,
    #[serde(with = "time::serde::timestamp")]
    connected_at: OffsetDateTime,
    scopes: Vec<String>,
    status: StoredStatus,
    /// The `sub` of the verified ID token the connection was made with (OpenID providers): an
    /// ID token answered by a refresh must name the same. Absent in records written before it
    /// was kept, and for plain OAuth 2.0 applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
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

/// What the callers queued on one connection's refresh share.
#[derive(Debug, Default)]
struct RefreshSlot {
    /// When the last refresh through this slot failed transiently, and the retry hint it
    /// gave: the callers queued behind it get the same answer instead of asking the provider
    /// (or waiting on a lease) one by one.
    transient_failure: Option<(OffsetDateTime, Duration)>,
}

/// One async mutex per connection being refreshed in this process.
#[derive(Debug, Default)]
pub(crate) struct RefreshLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<RefreshSlot>>>>,
}

/// How long the callers queued behind a transient refresh failure share it.
const SHARED_FAILURE: Duration = Duration::seconds(5);

impl RefreshLocks {
    fn get(&self, k: &str) -> Arc<tokio::sync::Mutex<RefreshSlot>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(k.to_owned()).or_default().clone()
    }

    /// Forgets the slot when nobody else holds or waits for it and it remembers no recent
    /// failure, so the map stays as small as the number of refreshes in flight (plus the
    /// connections that failed in the last few seconds).
    fn release(&self, k: &str, lock: Arc<tokio::sync::Mutex<RefreshSlot>>, now: OffsetDateTime) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let recent_failure = lock.try_lock().map_or(true, |slot| {
            slot.transient_failure
                .is_some_and(|(at, _)| now - at < SHARED_FAILURE)
        });
        if Arc::strong_count(&lock) == 2 && !recent_failure {
            map.remove(k);
        }
    }
}

json_record!(ConnectionRecord => CONNECTION);

fn corrupt() -> Error {
    records::corrupt(&records::CONNECTION).into()
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn expires_in(given: Option<i64>) -> Duration {
    // At least a minute, so that a provider answering 0 does not cause a refresh per call;
    // at most a year.
    Duration::seconds(
        given
            .unwrap_or(DEFAULT_EXPIRES_IN)
            .clamp(60, 366 * 24 * 3600),
    )
}

impl Broker {
    fn binding<'a>(tenant: &'a TenantId, connection: &'a ConnectionId) -> Binding<'a> {
        Binding {
            domain: CONNECTION_DOMAIN,
            tenant: tenant.as_str(),
            item: connection.as_str(),
        }
    }

    fn encode(record: &ConnectionRecord) -> Result<Vec<u8>, Error> {
        Ok(record.to_bytes()?)
    }

    /// Stores the tokens of a completed connect login, replacing any previous ones at once.
    pub(crate) async fn store_connection(
        &self,
        new: NewConnection<'_>,
    ) -> Result<OffsetDateTime, Error> {
        let key_opt = self.inner.options.encryption_key.as_ref();
        let at = Self::binding(new.tenant, new.connection);
        let now = self.now();
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
        self.inner
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
    async fn load_connection(&self, k: &str) -> Result<(ConnectionRecord, u64), Error> {
        let stored = records::get::<ConnectionRecord>(&*self.inner.store, k, self.now())
            .await?
            .ok_or(ConnectionError::NotFound)?;
        Ok((stored.record, stored.version))
    }

    /// The record for reading: one store read, and the decoding reused while the stored bytes
    /// are unchanged (every cached `access_token` reads it; decoding it was the larger part of
    /// that call after the read itself).
    async fn read_connection(&self, k: &str) -> Result<Arc<ConnectionRecord>, Error> {
        let stored = self
            .inner
            .store
            .get(NS_CONNECTION, k, self.now())
            .await?
            .ok_or(ConnectionError::NotFound)?;
        Ok(self.inner.connections.get_or_decode(k, &stored.value, || {
            ConnectionRecord::from_bytes(&stored.value)
        })?)
    }

    /// Whether the stored access token is usable now, refresh margin included.
    fn is_fresh(&self, record: &ConnectionRecord, now: OffsetDateTime) -> bool {
        if !matches!(record.status, StoredStatus::Connected) || record.access_token.is_none() {
            return false;
        }
        let lifetime = record.expires_at - record.issued_at;
        let margin = self
            .inner
            .options
            .connection_refresh_margin
            .min(lifetime / 2);
        now < record.expires_at - margin
    }

    fn usable(record: &ConnectionRecord) -> Result<(), Error> {
        match &record.status {
            StoredStatus::Connected => Ok(()),
            StoredStatus::NeedsReconsent { reason } => Err(ConnectionError::NeedsReconsent {
                reason: reason.clone(),
            }
            .into()),
            StoredStatus::Revoked => Err(ConnectionError::Revoked.into()),
        }
    }

    fn open_access(
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
            self.inner.options.encryption_key.as_ref(),
            Self::binding(tenant, connection),
            "access_token",
            sealed,
        )?;
        Ok(AccessToken::new(plain))
    }

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
        Ok(self.valid_token(tenant, connection).await?.0)
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
        let (token, mailbox) = self.valid_token(tenant, connection).await?;
        Xoauth2::new(&mailbox, &token)
    }

    async fn valid_token(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<(AccessToken, String), Error> {
        let k = key(&[tenant.as_str(), connection.as_str()]);
        let record = self.read_connection(&k).await?;
        Self::usable(&record)?;
        if self.is_fresh(&record, self.now()) {
            let token = self.open_access(tenant, connection, &record)?;
            return Ok((token, record.mailbox.clone()));
        }
        let lock = self.inner.refresh_locks.get(&k);
        let result = {
            let (mut slot, read) = match lock.try_lock() {
                // Nobody in this process is refreshing it: the record just read is as recent
                // as a second read would be, so the first round goes straight to the lease.
                Ok(slot) => (slot, Some(record)),
                // Queued behind another caller's refresh: read again, to find its token.
                Err(_) => (lock.lock().await, None),
            };
            match slot.transient_failure {
                Some((at, retry_after)) if self.now() - at < SHARED_FAILURE => {
                    Err(ConnectionError::Transient { retry_after }.into())
                }
                _ => {
                    let r = self
                        .refresh_single_flight(tenant, connection, &k, read)
                        .await;
                    if let Err(Error::Connection(ConnectionError::Transient { retry_after })) = &r {
                        slot.transient_failure = Some((self.now(), *retry_after));
                    }
                    r
                }
            }
        };
        self.inner.refresh_locks.release(&k, lock, self.now());
        result
    }

    /// Holding this process's lock: re-read (unless `read`, a usable record that needs a
    /// refresh, was read with nobody refreshing before us), then take the cross-node lease or
    /// wait for its holder.
    async fn refresh_single_flight(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        k: &str,
        mut read: Option<Arc<ConnectionRecord>>,
    ) -> Result<(AccessToken, String), Error> {
        let started = self.now();
        let mut polls = 0_u32;
        loop {
            // Every round after the first re-reads: waiting for another node's lease is
            // waiting for the record to change.
            if read.take().is_none() {
                let record = self.read_connection(k).await?;
                Self::usable(&record)?;
                if self.is_fresh(&record, self.now()) {
                    let token = self.open_access(tenant, connection, &record)?;
                    return Ok((token, record.mailbox.clone()));
                }
            }
            let now = self.now();
            let holder = crate::crypto::random_token(16);
            let lease = records::encode(&LeaseHolder(holder.clone()))?.expires_at(now + LEASE_TTL);
            match self.inner.store.insert(NS_LEASE, k, lease, now).await? {
                Inserted::Yes => {
                    return self
                        .refresh_under_lease(tenant, connection, k, holder)
                        .await;
                }
                Inserted::No => {
                    let busy = Err(ConnectionError::Transient {
                        retry_after: CONTENTION_RETRY,
                    }
                    .into());
                    let Some(sleeper) = &self.inner.options.sleeper else {
                        // Nothing to wait with: answer now rather than spin.
                        return busy;
                    };
                    polls += 1;
                    if polls > LEASE_MAX_POLLS || self.now() - started >= LEASE_WAIT {
                        return busy;
                    }
                    sleeper.sleep(LEASE_POLL).await;
                }
            }
        }
    }

    /// Holding the lease `holder`: re-read, refresh at the provider, store, release the lease.
    async fn refresh_under_lease(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        k: &str,
        holder: String,
    ) -> Result<(AccessToken, String), Error> {
        // Another node (or, in a rare race, another caller here) may have refreshed between our
        // read and our lease: read again under the lease, so we never post a refresh token it
        // already rotated (reuse detection would revoke the whole grant). This read is the one
        // correctness needs; the compare-and-swap below is on the version it returns.
        let (record, version) = match self.load_connection(k).await {
            Ok((record, _)) if self.is_fresh(&record, self.now()) => {
                let result = Self::usable(&record).and_then(|()| {
                    let token = self.open_access(tenant, connection, &record)?;
                    Ok((token, record.mailbox))
                });
                self.release_lease(k, &holder).await;
                return result;
            }
            Ok((record, version)) => match Self::usable(&record) {
                Ok(()) => (record, version),
                Err(e) => {
                    self.release_lease(k, &holder).await;
                    return Err(e);
                }
            },
            Err(e) => {
                self.release_lease(k, &holder).await;
                return Err(e);
            }
        };
        let Some(spawner) = &self.inner.options.spawner else {
            // Inline: a caller dropping this future between the provider's answer and the
            // store write loses the answer (see the `runtime` module).
            let result = self
                .refresh_at_provider(tenant, connection, k, record, version)
                .await;
            self.release_lease(k, &holder).await;
            return result;
        };
        // On its own task: once the provider has answered, a rotated refresh token must reach
        // the store even if our caller gives up (a timeout around `access_token`) meanwhile.
        let (this, t, c, key) = (
            self.clone(),
            tenant.clone(),
            connection.clone(),
            k.to_owned(),
        );
        let (done, result) = tokio::sync::oneshot::channel();
        let task_holder = holder.clone();
        spawner.spawn(Box::pin(async move {
            let r = this
                .refresh_at_provider(&t, &c, &key, record, version)
                .await;
            this.release_lease(&key, &task_holder).await;
            // The caller may have given up: then nobody needs the answer.
            let _ = done.send(r);
        }));
        match result.await {
            Ok(r) => r,
            Err(_) => {
                // The spawner dropped the task (its executor is shutting down) or the task
                // panicked: it runs no more, so its lease can go.
                self.release_lease(k, &holder).await;
                Err(ConnectionError::Transient {
                    retry_after: CONTENTION_RETRY,
                }
                .into())
            }
        }
    }

    /// Deletes the lease if it is still ours, at the version read: a lease that expired and
    /// was taken by another node in between is theirs and stays. A failure only delays other
    /// nodes until the lease expires.
    async fn release_lease(&self, k: &str, holder: &str) {
        let store = &self.inner.store;
        let now = self.now();
        match store.get(NS_LEASE, k, now).await {
            Ok(Some(r)) if LeaseHolder::from_bytes(&r.value).is_ok_and(|h| h.0 == holder) => {
                if let Err(e) = store.compare_and_delete(NS_LEASE, k, r.version, now).await {
                    tracing::warn!(error = %e, "could not release a connection refresh lease");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not release a connection refresh lease"),
        }
    }

    /// Holding the lease: refresh at the provider and compare-and-swap the record.
    async fn refresh_at_provider(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        k: &str,
        record: ConnectionRecord,
        version: u64,
    ) -> Result<(AccessToken, String), Error> {
        let inner = &*self.inner;
        let key_opt = inner.options.encryption_key.as_ref();
        let at = Self::binding(tenant, connection);
        let config = self.provider_config(tenant, &record.provider).await?;
        let meta = self.provider_metadata(&config).await?;
        let sealed = record
            .refresh_token
            .as_ref()
            .ok_or(ConnectionError::Revoked)?;
        let refresh = RefreshToken::new(open(key_opt, at, "refresh_token", sealed)?);
        let response = TokenClient::new(&inner.oauth_env(), config.credentials())
            .refresh(&meta.refresh_endpoint, &refresh)
            .await;
        let tokens = match response {
            Ok(t) => t,
            Err(TokenEndpointError::InvalidGrant) => {
                return Err(self
                    .mark_needs_reconsent(tenant, connection, k, record, version)
                    .await);
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(
                    tenant = %tenant, connection = %connection, error = %e,
                    "connection refresh failed; tokens kept"
                );
                return Err(ConnectionError::Transient {
                    retry_after: PROVIDER_RETRY,
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        // OpenID Connect Core §12.2: an ID token answered by a refresh is verified as at
        // sign-in (but carries no nonce) and must name the subject of the original one. Refused,
        // nothing is stored or handed out: these tokens may be another account's.
        if let Some(id_token) = tokens.id_token.as_deref()
            && meta.jwks_uri.is_some()
        {
            let claims = match config.metadata_source() {
                Ok(source) => {
                    crate::oauth::verify_refreshed(
                        &inner.oauth_env(),
                        &inner.metadata,
                        &source,
                        &config.id_token_rules(),
                        &meta,
                        id_token,
                        tokens.access_token.secret(),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            let refusal = match (&claims, &record.subject) {
                (Err(_), _) => claims.err(),
                (Ok(c), Some(sub)) if c.sub != *sub => Some(IdTokenError::SubjectMismatch.into()),
                (Ok(_), _) => None,
            };
            if let Some(e) = refusal {
                tracing::warn!(
                    tenant = %tenant, connection = %connection, error = %e,
                    "the ID token of a connection refresh was refused; tokens not stored"
                );
                return Err(e);
            }
        }
        let now = self.now();
        // A provider that does not rotate (Google) returns no refresh token: keep ours.
        let next_refresh = tokens.refresh_token.as_ref().unwrap_or(&refresh);
        let updated = ConnectionRecord {
            access_token: Some(seal(
                key_opt,
                at,
                "access_token",
                tokens.access_token.secret(),
            )?),
            refresh_token: Some(seal(key_opt, at, "refresh_token", next_refresh.secret())?),
            expires_at: now + expires_in(tokens.expires_in),
            issued_at: now,
            scopes: tokens
                .scope
                .as_deref()
                .map(split_scopes)
                .unwrap_or_else(|| record.scopes.clone()),
            status: StoredStatus::Connected,
            ..record
        };
        let value = Self::encode(&updated)?;
        // The rotated refresh token is persisted before the access token leaves this function.
        match self.store_refreshed(tenant, k, version, value, now).await? {
            CasOutcome::Swapped { .. } => Ok((tokens.access_token, updated.mailbox.clone())),
            // Someone wrote meanwhile (a reconnect, a revoke, or a refresh after our lease
            // expired): our tokens may belong to a superseded grant; do not hand them out.
            CasOutcome::Conflict { .. } => Err(ConnectionError::Transient {
                retry_after: CONTENTION_RETRY,
            }
            .into()),
            CasOutcome::Missing => Err(ConnectionError::NotFound.into()),
        }
    }

    /// Writes a refreshed record over `version`. The provider may have rotated the refresh
    /// token already, so a lost write can lose the connection: a store error is tried again
    /// (up to `REFRESH_WRITE_ATTEMPTS` writes in all), and a conflict after an error is
    /// checked against the stored bytes, since it may be our own write whose answer was lost.
    async fn store_refreshed(
        &self,
        tenant: &TenantId,
        k: &str,
        version: u64,
        value: Vec<u8>,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError> {
        let store = &self.inner.store;
        // Short: the caller waits, and a store that failed three times is down, not contended.
        let mut retry = CasRetry::with_limit(&records::CONNECTION, REFRESH_WRITE_ATTEMPTS);
        loop {
            retry.attempt()?;
            let record = NewRecord::new(value.clone()).index(tenant.as_str());
            let error = match store
                .compare_and_swap(NS_CONNECTION, k, version, record, now)
                .await
            {
                Ok(CasOutcome::Conflict { current }) if retry.is_retry() => {
                    return Ok(match store.get(NS_CONNECTION, k, now).await? {
                        Some(r) if r.value == value => CasOutcome::Swapped { version: r.version },
                        _ => CasOutcome::Conflict { current },
                    });
                }
                Ok(outcome) => return Ok(outcome),
                Err(e) => e,
            };
            if !retry.can_retry() {
                return Err(error);
            }
            tracing::warn!(
                tenant = %tenant, error = %error,
                "storing a refreshed connection failed; trying again"
            );
            if let Some(sleeper) = &self.inner.options.sleeper {
                sleeper.sleep(LEASE_POLL).await;
            }
        }
    }

    /// `invalid_grant`: mark the connection (data kept) and return the error to give out.
    async fn mark_needs_reconsent(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        k: &str,
        record: ConnectionRecord,
        version: u64,
    ) -> Error {
        let reason = "the provider refused the refresh token (invalid_grant): consent was \
                      withdrawn, the token expired or was reused; connect the mailbox again"
            .to_owned();
        let updated = ConnectionRecord {
            status: StoredStatus::NeedsReconsent {
                reason: reason.clone(),
            },
            ..record
        };
        let value = match Self::encode(&updated) {
            Ok(v) => v,
            Err(e) => return e,
        };
        match self
            .inner
            .store
            .compare_and_swap(
                NS_CONNECTION,
                k,
                version,
                NewRecord::new(value).index(tenant.as_str()),
                self.now(),
            )
            .await
        {
            Ok(CasOutcome::Swapped { .. }) => {
                self.audit(
                    tenant,
                    &format!("provider:{}", updated.provider),
                    connection.as_str(),
                    AuditKind::ConnectionNeedsReconsent,
                    "refresh.invalid_grant",
                );
                ConnectionError::NeedsReconsent { reason }.into()
            }
            Ok(CasOutcome::Missing) => ConnectionError::NotFound.into(),
            // Rewritten meanwhile (a reconnect?): the refusal may concern superseded tokens.
            Ok(CasOutcome::Conflict { .. }) => ConnectionError::Transient {
                retry_after: CONTENTION_RETRY,
            }
            .into(),
            Err(e) => e.into(),
        }
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
        let k = key(&[tenant.as_str(), connection.as_str()]);
        let (record, _) = self.load_connection(&k).await?;
        Ok(info(connection.clone(), record))
    }

    /// The tenant's mailbox connections with their status, in id order. No token is read.
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn list_connections(&self, tenant: &TenantId) -> Result<Vec<ConnectionInfo>, Error> {
        let rows =
            records::list::<ConnectionRecord>(&*self.inner.store, tenant.as_str(), self.now())
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
                .inner
                .store
                .compare_and_swap(
                    NS_CONNECTION,
                    &k,
                    version,
                    NewRecord::new(value).index(tenant.as_str()),
                    self.now(),
                )
                .await?
            {
                CasOutcome::Swapped { .. } => {
                    self.audit(
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
        let inner = &*self.inner;
        let Some(sealed) = &record.refresh_token else {
            return ProviderRevocation::NotSupported;
        };
        let config = match self.provider_config(tenant, &record.provider).await {
            Ok(c) => c,
            Err(e) => {
                return ProviderRevocation::Failed {
                    reason: e.to_string(),
                };
            }
        };
        let endpoint: Url = match self.provider_metadata(&config).await {
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

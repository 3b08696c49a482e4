//! A valid access token, refreshed once per connection however many callers and nodes ask:
//! the in-process locks, the cross-node lease, the refresh at the provider and its write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

use crate::audit::AuditKind;
use crate::crypto::{open, seal};
use crate::error::{ConnectionError, Error, IdTokenError, TokenEndpointError};
use crate::ids::{ConnectionId, TenantId};
use crate::oauth::TokenClient;
use crate::secret::{AccessToken, RefreshToken};
use crate::store::records::{self, CasRetry, LeaseHolder};
use crate::store::{CasOutcome, Inserted, NewRecord, StoreError, key};

use super::record::{ConnectionRecord, NS_CONNECTION, StoredStatus, expires_in, split_scopes};
use super::{Connections, Xoauth2};

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
pub(super) struct RefreshLocks {
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

impl Connections {
    /// Whether the stored access token is usable now, refresh margin included.
    fn is_fresh(&self, record: &ConnectionRecord, now: OffsetDateTime) -> bool {
        if !matches!(record.status, StoredStatus::Connected) || record.access_token.is_none() {
            return false;
        }
        let lifetime = record.expires_at - record.issued_at;
        let margin = self.refresh_margin.min(lifetime / 2);
        now < record.expires_at - margin
    }

    /// The work of `Broker::access_token`, whose docs say what it does.
    pub(crate) async fn access_token(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<AccessToken, Error> {
        Ok(self.valid_token(tenant, connection).await?.0)
    }

    /// The work of `Broker::xoauth2`, whose docs say what it does.
    pub(crate) async fn xoauth2(
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
        if self.is_fresh(&record, self.cx.now()) {
            let token = self.open_access(tenant, connection, &record)?;
            return Ok((token, record.mailbox.clone()));
        }
        let lock = self.locks.get(&k);
        let result = {
            let (mut slot, read) = match lock.try_lock() {
                // Nobody in this process is refreshing it: the record just read is as recent
                // as a second read would be, so the first round goes straight to the lease.
                Ok(slot) => (slot, Some(record)),
                // Queued behind another caller's refresh: read again, to find its token.
                Err(_) => (lock.lock().await, None),
            };
            match slot.transient_failure {
                Some((at, retry_after)) if self.cx.now() - at < SHARED_FAILURE => {
                    Err(ConnectionError::Transient { retry_after }.into())
                }
                _ => {
                    let r = self
                        .refresh_single_flight(tenant, connection, &k, read)
                        .await;
                    if let Err(Error::Connection(ConnectionError::Transient { retry_after })) = &r {
                        slot.transient_failure = Some((self.cx.now(), *retry_after));
                    }
                    r
                }
            }
        };
        self.locks.release(&k, lock, self.cx.now());
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
        let started = self.cx.now();
        let mut polls = 0_u32;
        loop {
            // Every round after the first re-reads: waiting for another node's lease is
            // waiting for the record to change.
            if read.take().is_none() {
                let record = self.read_connection(k).await?;
                Self::usable(&record)?;
                if self.is_fresh(&record, self.cx.now()) {
                    let token = self.open_access(tenant, connection, &record)?;
                    return Ok((token, record.mailbox.clone()));
                }
            }
            let now = self.cx.now();
            // Released by the version its insert answers; the random holder is for nodes of the
            // previous version, which release a lease by reading it back.
            let holder = LeaseHolder(crate::crypto::random_token(16));
            let lease = records::encode(&holder)?.expires_at(now + LEASE_TTL);
            match self.cx.store.insert(NS_LEASE, k, lease, now).await? {
                Inserted::Yes { version: lease } => {
                    return self.refresh_under_lease(tenant, connection, k, lease).await;
                }
                Inserted::No => {
                    let busy = Err(ConnectionError::Transient {
                        retry_after: CONTENTION_RETRY,
                    }
                    .into());
                    let Some(sleeper) = &self.cx.options.sleeper else {
                        // Nothing to wait with: answer now rather than spin.
                        return busy;
                    };
                    polls += 1;
                    if polls > LEASE_MAX_POLLS || self.cx.now() - started >= LEASE_WAIT {
                        return busy;
                    }
                    sleeper.sleep(LEASE_POLL).await;
                }
            }
        }
    }

    /// Holding the lease (at version `lease`): re-read, refresh at the provider, store, release
    /// the lease.
    async fn refresh_under_lease(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        k: &str,
        lease: u64,
    ) -> Result<(AccessToken, String), Error> {
        // Another node (or, in a rare race, another caller here) may have refreshed between our
        // read and our lease: read again under the lease, so we never post a refresh token it
        // already rotated (reuse detection would revoke the whole grant). This read is the one
        // correctness needs; the compare-and-swap below is on the version it returns.
        let (record, version) = match self.load_connection(k).await {
            Ok((record, _)) if self.is_fresh(&record, self.cx.now()) => {
                let result = Self::usable(&record).and_then(|()| {
                    let token = self.open_access(tenant, connection, &record)?;
                    Ok((token, record.mailbox))
                });
                self.release_lease(k, lease).await;
                return result;
            }
            Ok((record, version)) => match Self::usable(&record) {
                Ok(()) => (record, version),
                Err(e) => {
                    self.release_lease(k, lease).await;
                    return Err(e);
                }
            },
            Err(e) => {
                self.release_lease(k, lease).await;
                return Err(e);
            }
        };
        let Some(spawner) = &self.cx.options.spawner else {
            // Inline: a caller dropping this future between the provider's answer and the
            // store write loses the answer (see the `runtime` module).
            let result = self
                .refresh_at_provider(tenant, connection, k, record, version)
                .await;
            self.release_lease(k, lease).await;
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
        spawner.spawn(Box::pin(async move {
            let r = this
                .refresh_at_provider(&t, &c, &key, record, version)
                .await;
            this.release_lease(&key, lease).await;
            // The caller may have given up: then nobody needs the answer.
            let _ = done.send(r);
        }));
        match result.await {
            Ok(r) => r,
            Err(_) => {
                // The spawner dropped the task (its executor is shutting down) or the task
                // panicked: it runs no more, so its lease can go.
                self.release_lease(k, lease).await;
                Err(ConnectionError::Transient {
                    retry_after: CONTENTION_RETRY,
                }
                .into())
            }
        }
    }

    /// Deletes the lease if it is still ours: at the version our insert wrote. Versions never
    /// repeat, so a lease that expired and was taken by another node in between has another
    /// version and stays. One round trip; a failure only delays other nodes until the lease
    /// expires.
    async fn release_lease(&self, k: &str, lease: u64) {
        let now = self.cx.now();
        if let Err(e) = self
            .cx
            .store
            .compare_and_delete(NS_LEASE, k, lease, now)
            .await
        {
            tracing::warn!(error = %e, "could not release a connection refresh lease");
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
        let inner = &*self.cx;
        let key_opt = inner.options.encryption_key.as_ref();
        let at = Self::binding(tenant, connection);
        let config = self
            .providers
            .provider_config(tenant, &record.provider)
            .await?;
        let meta = self.providers.provider_metadata(&config).await?;
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
        let now = self.cx.now();
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
        let store = &self.cx.store;
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
            if let Some(sleeper) = &self.cx.options.sleeper {
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
            .cx
            .store
            .compare_and_swap(
                NS_CONNECTION,
                k,
                version,
                NewRecord::new(value).index(tenant.as_str()),
                self.cx.now(),
            )
            .await
        {
            Ok(CasOutcome::Swapped { .. }) => {
                self.cx.audit(
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
}

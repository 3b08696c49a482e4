//! Mailbox connections: delegated OAuth tokens that refresh themselves, and XOAUTH2.
//!
//! An admin connects a mailbox with [`LoginIntent::Connect`](crate::LoginIntent::Connect); the
//! completed login stores a token set under (tenant, connection).
//! [`Broker::access_token`](crate::Broker::access_token) hands out a valid access token, refreshing
//! it once per connection however many callers and nodes ask at the same moment;
//! [`Broker::xoauth2`](crate::Broker::xoauth2) builds the SASL string for SMTP and IMAP.
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
//!
//! # Source layout
//!
//! `record.rs` (the stored record, its sealed tokens, the write of a connect login),
//! `refresh.rs` (a valid access token: the locks, the lease, the refresh and its write),
//! `admin.rs` (the state of a connection, listing and revoking), `xoauth2.rs` (the SASL
//! string).

mod admin;
mod record;
mod refresh;
mod xoauth2;

use std::sync::Arc;

use time::Duration;

pub use admin::{ConnectionInfo, ConnectionStatus, ProviderRevocation};
use record::ConnectionCache;
pub(crate) use record::NewConnection;
use refresh::RefreshLocks;
pub use xoauth2::{Xoauth2, Xoauth2Failure};

use crate::context::Context;
use crate::provider::Providers;

/// The connection capability: mailbox connections, their tokens and refreshes. Cheap to clone
/// (a started refresh takes a clone onto its own task).
#[derive(Clone)]
pub(crate) struct Connections {
    cx: Arc<Context>,
    providers: Arc<Providers>,
    locks: Arc<RefreshLocks>,
    /// Decoded mailbox connection records, checked against the stored bytes on every use.
    records: Arc<ConnectionCache>,
    /// How long before its expiry an access token is refreshed.
    refresh_margin: Duration,
}

/// Its own state only: the context and the services it calls are shown by the broker.
impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("locks", &self.locks)
            .field("records", &self.records)
            .field("refresh_margin", &self.refresh_margin)
            .finish_non_exhaustive()
    }
}

impl Connections {
    pub(crate) fn new(
        cx: Arc<Context>,
        providers: Arc<Providers>,
        refresh_margin: Duration,
    ) -> Self {
        Self {
            cx,
            providers,
            locks: Arc::default(),
            records: Arc::default(),
            refresh_margin,
        }
    }
}

//! The facade: [`Broker`] and its builder.
//!
//! `Broker` holds the shared [`Context`] and one service per capability, and each of its public
//! methods hands the call to the capability that does the work: the files beside this one
//! (`login.rs`, `provider.rs`, ...) are those one-line delegations, grouped as the capabilities
//! are, and carry the public docs. `builder.rs` is [`BrokerBuilder`].

mod builder;

use std::sync::Arc;

use time::Duration;

pub use builder::BrokerBuilder;

use crate::context::Context;

/// The SSO broker: holds the store, the transport, the clock and the caches, and runs every flow.
///
/// Cheap to clone (an `Arc` inside); build one per process and share it.
#[derive(Debug, Clone)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) cx: Arc<Context>,
    /// Decoded visitor key rings, checked against the stored bytes on every use.
    pub(crate) visitor_rings: crate::visitor::RingCache,
    /// Decoded provider configurations and their status, checked against the stored bytes on
    /// every use.
    pub(crate) provider_configs: crate::store::DecodedCache<crate::provider::LoadedProvider>,
    /// Decoded tenant policies, checked against the stored bytes on every use.
    pub(crate) policies: crate::store::DecodedCache<crate::policy::PolicyRecord>,
    pub(crate) refresh_locks: crate::connection::RefreshLocks,
    pub(crate) login_ttl: Duration,
    pub(crate) link_ticket_ttl: Duration,
    pub(crate) method_switch_grace: Duration,
    pub(crate) method_switch_revocation: crate::policy::SwitchRevocation,
    pub(crate) connection_refresh_margin: Duration,
}

impl Broker {
    /// A builder with the defaults.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.inner.cx.now()
    }

    /// How many providers' discovery documents and key sets this broker caches now: at most
    /// [`metadata_cache_capacity`](crate::BrokerBuilder::metadata_cache_capacity). For
    /// monitoring, and for tests of the bound.
    pub fn metadata_cache_len(&self) -> usize {
        self.inner.cx.metadata.len()
    }
}

//! The facade: [`Broker`] and its builder.
//!
//! `Broker` holds the shared [`Context`] and one service per capability, and each of its public
//! methods hands the call to the capability that does the work: the files beside this one
//! (`login.rs`, `provider.rs`, ...) are those one-line delegations, grouped as the capabilities
//! are, and carry the public docs. `builder.rs` is [`BrokerBuilder`].

mod binding;
mod builder;
mod connection;
mod login;
mod policy;
mod provider;
mod session;
mod visitor;

use std::sync::Arc;

pub use builder::BrokerBuilder;

use crate::binding::Bindings;
use crate::connection::Connections;
use crate::context::Context;
use crate::login::Logins;
use crate::policy::Policies;
use crate::provider::Providers;
use crate::session::Sessions;
use crate::visitor::Visitors;

/// The SSO broker: holds the store, the transport, the clock and the caches, and runs every flow.
///
/// Cheap to clone (an `Arc` inside); build one per process and share it.
#[derive(Debug, Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

/// The shared context and one service per capability.
#[derive(Debug)]
struct Inner {
    cx: Arc<Context>,
    providers: Arc<Providers>,
    policies: Arc<Policies>,
    sessions: Arc<Sessions>,
    bindings: Arc<Bindings>,
    connections: Arc<Connections>,
    visitors: Visitors,
    logins: Logins,
}

impl Broker {
    /// A builder with the defaults.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// The broker's time, for the axum routes.
    #[cfg(feature = "axum")]
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

//! Per-tenant SSO applications: configuration, validation and status.
//!
//! # Source layout
//!
//! `config.rs` (the provider kinds, the configuration builder and its checks, what the
//! protocol layer is given), `entra.rs` (Entra tenancy), `linking.rs` (linking rules),
//! `status.rs` (an application's status, connection checks, a tenant's SSO status),
//! `record.rs` (the stored application, its secret sealed, and its decoded form), `admin.rs`
//! (configure, remove, list, check and load applications).

mod admin;
mod config;
mod entra;
mod linking;
mod record;
mod status;

use std::sync::Arc;

use crate::context::Context;
pub use crate::error::IdTokenAlgorithm;
pub use crate::oauth::ClientAuthMethod;
use crate::store::DecodedCache;
pub use config::{ProviderConfig, ProviderKind};
pub use entra::{EntraAudience, EntraTenancy};
pub use linking::{EmailMatch, LinkingPolicy};
pub(crate) use record::{LoadedProvider, StoredProvider};
pub use status::{
    CheckResult, ConnectionCheck, ProviderProblem, ProviderReport, ProviderStatus, SecretCheck,
    SsoStatus,
};

/// The provider capability: the tenants' SSO applications, their configuration, status and
/// connection checks.
pub(crate) struct Providers {
    cx: Arc<Context>,
    /// Decoded provider configurations and their status, checked against the stored bytes on
    /// every use.
    configs: DecodedCache<LoadedProvider>,
}

/// Its own state only: the context and the services it calls are shown by the broker.
impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("configs", &self.configs)
            .finish_non_exhaustive()
    }
}

impl Providers {
    pub(crate) fn new(cx: Arc<Context>) -> Self {
        Self {
            cx,
            configs: DecodedCache::default(),
        }
    }
}

//! The shared context every capability works over: the store, the transport, the clock, the
//! redirect path, the options that are no one capability's own, the metadata cache, the audit
//! sink, the user directory and the runtime seam.
//!
//! It sits one layer below the capabilities, so that each of them reads what it shares with the
//! others here rather than through the facade: [`Broker`](crate::Broker) builds one context and
//! hands it to every capability's service.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::clock::Clock;
use crate::crypto::EncryptionKey;
use crate::directory::UserDirectory;
use crate::http::{DEFAULT_MAX_RESPONSE_BYTES, HttpClient};
use crate::ids::{ProviderId, TenantId};
use crate::route::RedirectPath;
use crate::runtime::{Sleeper, Spawner};
use crate::store::Store;

/// What the capabilities share.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) http: Arc<dyn HttpClient>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The redirect URIs' template, joined to the public base URL.
    pub(crate) redirect_path: RedirectPath,
    pub(crate) options: Options,
    pub(crate) metadata: crate::oauth::MetadataCache,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) directory: Arc<dyn UserDirectory>,
}

impl Context {
    /// The broker's time.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// What the protocol layer takes: the transport, the clock and the limits.
    pub(crate) fn oauth_env(&self) -> crate::oauth::Env<'_> {
        crate::oauth::Env {
            http: &self.http,
            clock: &self.clock,
            max_response_bytes: self.options.max_response_bytes,
            metadata_ttl: self.options.metadata_ttl,
            metadata_cache_capacity: self.options.metadata_cache_capacity,
            jwks_refetch_cooldown: self.options.jwks_refetch_cooldown,
            leeway: self.options.leeway,
        }
    }

    /// The redirect URI of a tenant's application (see `Broker::redirect_uri`).
    pub(crate) fn redirect_uri(&self, tenant: &TenantId, provider: &ProviderId) -> String {
        self.redirect_path.render(tenant, provider)
    }

    /// Hands an event to the audit sink, stamped with the broker's time.
    pub(crate) fn audit(
        &self,
        tenant: &TenantId,
        actor: &str,
        subject: &str,
        kind: AuditKind,
        rule: &'static str,
    ) {
        self.audit.record(&AuditEvent {
            at: self.now(),
            tenant: tenant.clone(),
            actor: actor.to_owned(),
            subject: subject.to_owned(),
            kind,
            rule,
        });
    }
}

/// The tunables no one capability owns, with safe defaults. Each capability's own tunables
/// (login and link-ticket lifetimes, the method-switch rules, the refresh margin) live in its
/// service.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) leeway: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) metadata_ttl: Duration,
    pub(crate) jwks_refetch_cooldown: Duration,
    /// How many providers' discovery documents and key sets the cache holds at most.
    pub(crate) metadata_cache_capacity: usize,
    pub(crate) encryption_key: Option<EncryptionKey>,
    /// Carries a started connection refresh through to the store; inline without one.
    pub(crate) spawner: Option<Arc<dyn Spawner>>,
    /// Paces the wait on another node's refresh lease; no wait without one.
    pub(crate) sleeper: Option<Arc<dyn Sleeper>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            leeway: Duration::seconds(60),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            metadata_ttl: Duration::hours(1),
            jwks_refetch_cooldown: Duration::seconds(60),
            metadata_cache_capacity: crate::oauth::DEFAULT_METADATA_CACHE_CAPACITY,
            encryption_key: None,
            spawner: None,
            sleeper: None,
        }
    }
}

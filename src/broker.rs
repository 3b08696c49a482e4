//! The facade: [`Broker`] and its builder.

use std::sync::Arc;

use time::Duration;
use url::Url;

use crate::audit::{AuditSink, TracingAuditSink};
use crate::clock::{Clock, SystemClock};
use crate::crypto::EncryptionKey;
use crate::directory::{NoDirectory, UserDirectory};
use crate::error::{ConfigError, Error};
use crate::http::{DEFAULT_MAX_RESPONSE_BYTES, HttpClient};
use crate::runtime::{Sleeper, Spawner};
use crate::store::{MemoryStore, Store};

/// The SSO broker: holds the store, the transport, the clock and the caches, and runs every flow.
///
/// Cheap to clone (an `Arc` inside); build one per process and share it.
#[derive(Debug, Clone)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) http: Arc<dyn HttpClient>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The redirect URIs' template, joined to the public base URL.
    pub(crate) redirect_path: crate::route::RedirectPath,
    pub(crate) options: Options,
    pub(crate) metadata: crate::oauth::MetadataCache,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) directory: Arc<dyn UserDirectory>,
    /// Decoded visitor key rings, checked against the stored bytes on every use.
    pub(crate) visitor_rings: crate::visitor::RingCache,
    /// Decoded provider configurations and their status, checked against the stored bytes on
    /// every use.
    pub(crate) provider_configs: crate::store::DecodedCache<crate::provider::LoadedProvider>,
    /// Decoded tenant policies, checked against the stored bytes on every use.
    pub(crate) policies: crate::store::DecodedCache<crate::policy::PolicyRecord>,
    pub(crate) refresh_locks: crate::connection::RefreshLocks,
    /// Decoded mailbox connection records, checked against the stored bytes on every use.
    pub(crate) connections: crate::connection::ConnectionCache,
}

impl Inner {
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
}

/// Tunables, with safe defaults.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) login_ttl: Duration,
    pub(crate) link_ticket_ttl: Duration,
    pub(crate) leeway: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) metadata_ttl: Duration,
    pub(crate) jwks_refetch_cooldown: Duration,
    /// How many providers' discovery documents and key sets the cache holds at most.
    pub(crate) metadata_cache_capacity: usize,
    pub(crate) method_switch_grace: Duration,
    pub(crate) method_switch_revocation: crate::policy::SwitchRevocation,
    pub(crate) connection_refresh_margin: Duration,
    pub(crate) encryption_key: Option<EncryptionKey>,
    /// Carries a started connection refresh through to the store; inline without one.
    pub(crate) spawner: Option<Arc<dyn Spawner>>,
    /// Paces the wait on another node's refresh lease; no wait without one.
    pub(crate) sleeper: Option<Arc<dyn Sleeper>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            login_ttl: Duration::minutes(10),
            link_ticket_ttl: Duration::minutes(10),
            leeway: Duration::seconds(60),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            metadata_ttl: Duration::hours(1),
            jwks_refetch_cooldown: Duration::seconds(60),
            metadata_cache_capacity: crate::oauth::DEFAULT_METADATA_CACHE_CAPACITY,
            method_switch_grace: Duration::hours(1),
            method_switch_revocation: crate::policy::SwitchRevocation::AllSessions,
            connection_refresh_margin: Duration::minutes(5),
            encryption_key: None,
            spawner: None,
            sleeper: None,
        }
    }
}

/// Builds a [`Broker`]. Only [`public_base_url`](Self::public_base_url) is required; the store
/// defaults to [`MemoryStore`], the transport to [`ReqwestHttpClient`](crate::ReqwestHttpClient)
/// (feature `reqwest`) and the clock to [`SystemClock`]. There is no default
/// [`runtime`](Self::runtime): the broker spawns and sleeps only through what it is given.
#[derive(Debug, Default)]
pub struct BrokerBuilder {
    store: Option<Arc<dyn Store>>,
    http: Option<Arc<dyn HttpClient>>,
    clock: Option<Arc<dyn Clock>>,
    public_base_url: Option<String>,
    redirect_path: Option<String>,
    options: Options,
    audit: Option<Arc<dyn AuditSink>>,
    directory: Option<Arc<dyn UserDirectory>>,
}

impl Broker {
    /// A builder with the defaults.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.inner.clock.now()
    }
}

impl BrokerBuilder {
    /// The persistence to use (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// A shared store, for several brokers (nodes) over one store.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The transport to providers (default: [`ReqwestHttpClient`](crate::ReqwestHttpClient)).
    pub fn http_client(mut self, http: impl HttpClient) -> Self {
        self.http = Some(Arc::new(http));
        self
    }

    /// A shared transport.
    pub fn shared_http_client(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The host's public base URL, such as `https://cx.example.com`; redirect URIs are derived
    /// from it. Must be `https` (loopback `http` allowed).
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        self.public_base_url = Some(url.into());
        self
    }

    /// The path of the redirect URIs under the public base URL, for a host whose callback
    /// routes are already registered at its providers (default `/sso/callback/{provider}`).
    ///
    /// `{provider}` (required, once) becomes the application id and `{tenant}` (optional, at
    /// most once) the tenant id; no other placeholder is known. The rest is a URL path: it
    /// starts with `/`, holds only characters allowed in a path (percent-encode others), no
    /// query or fragment, no empty, `.` or `..` segment. With base
    /// `https://cx.example.com/portal`, `/t/{tenant}/auth/{provider}/callback` gives
    /// `https://cx.example.com/portal/t/acme/auth/google/callback`. With `{tenant}`,
    /// [`Broker::complete_login`] needs the tenant of the route
    /// ([`CallbackRoute::with_tenant`](crate::CallbackRoute::with_tenant)).
    ///
    /// Changing it changes every redirect URI: register the new ones at the providers first.
    /// Validated by [`build`](Self::build).
    pub fn redirect_path(mut self, template: impl Into<String>) -> Self {
        self.redirect_path = Some(template.into());
        self
    }

    /// How long a begun login may take before its state expires (default 10 minutes).
    pub fn login_ttl(mut self, ttl: Duration) -> Self {
        self.options.login_ttl = ttl;
        self
    }

    /// How long a link ticket stays redeemable (default 10 minutes).
    pub fn link_ticket_ttl(mut self, ttl: Duration) -> Self {
        self.options.link_ticket_ttl = ttl;
        self
    }

    /// Clock-skew leeway for `exp` and `iat` checks (default 60 seconds, at most 5 minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.options.leeway = leeway;
        self
    }

    /// The largest provider response accepted, whatever the transport (default 1 MiB).
    pub fn max_response_bytes(mut self, n: usize) -> Self {
        self.options.max_response_bytes = n;
        self
    }

    /// How long discovery documents and key sets are cached (default 1 hour).
    pub fn metadata_ttl(mut self, ttl: Duration) -> Self {
        self.options.metadata_ttl = ttl;
        self
    }

    /// The least time between two key-set refetches caused by unknown `kid`s (default 60 s).
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.options.jwks_refetch_cooldown = cooldown;
        self
    }

    /// How many providers' discovery documents and key sets are cached at most (default
    /// 10,000; at least 1). Tenants choose their issuers, so the cache is bounded: beyond the
    /// capacity, the entry whose document was fetched longest ago is evicted, and fetched
    /// again when next needed. See [`Broker::metadata_cache_len`].
    pub fn metadata_cache_capacity(mut self, n: usize) -> Self {
        self.options.metadata_cache_capacity = n;
        self
    }

    /// The default grace delay of [`Broker::set_auth_method`] (default 1 hour; zero allowed).
    pub fn method_switch_grace(mut self, grace: Duration) -> Self {
        self.options.method_switch_grace = grace;
        self
    }

    /// Which sessions a change of a tenant's authentication method ends when it takes effect
    /// (default [`SwitchRevocation::AllSessions`](crate::SwitchRevocation::AllSessions):
    /// every session granted before, as the Google sign-in document says;
    /// [`SwitchRevocation::DisallowedSessions`](crate::SwitchRevocation::DisallowedSessions)
    /// keeps the sessions the new method allows). Each switch records the rule in force when
    /// it is scheduled.
    pub fn method_switch_revocation(mut self, revocation: crate::policy::SwitchRevocation) -> Self {
        self.options.method_switch_revocation = revocation;
        self
    }

    /// How long before its expiry a connection's access token is refreshed (default 5
    /// minutes, at most 1 hour; capped at half the token's lifetime).
    pub fn connection_refresh_margin(mut self, margin: Duration) -> Self {
        self.options.connection_refresh_margin = margin;
        self
    }

    /// Encrypts every secret the broker stores (XChaCha20-Poly1305, a random 192-bit nonce per
    /// write), each bound as associated data to the record it belongs to, so that a value
    /// copied into another record does not open:
    ///
    /// - the access and refresh tokens of mailbox connections, bound to tenant and connection;
    /// - the client secrets of SSO applications, bound to tenant and application
    ///   ([`configure_provider`](Broker::configure_provider));
    /// - visitor-token signing keys, bound to tenant, audience and key id.
    ///
    /// Without a key these secrets are stored in the clear. With one, a value written without
    /// it, under another key or for another record is refused, the record left as it is:
    /// [`ConnectionError::Undecryptable`](crate::ConnectionError::Undecryptable) for a
    /// connection, [`Error::Store`] with
    /// [`StoreError::Corrupt`](crate::StoreError::Corrupt) for an application or a key ring.
    pub fn encryption_key(mut self, key: EncryptionKey) -> Self {
        self.options.encryption_key = Some(key);
        self
    }

    /// The executor the broker spawns its tasks on and sleeps with: sets both the
    /// [`spawner`](Self::spawner) and the [`sleeper`](Self::sleeper). With the `tokio` feature,
    /// `.runtime(TokioRuntime::current()?)` ([`TokioRuntime`](crate::TokioRuntime)).
    ///
    /// Without one, everything still works; the [`runtime`](crate::runtime) module says what
    /// changes for mailbox connection refreshes.
    pub fn runtime<R: Spawner + Sleeper>(mut self, runtime: R) -> Self {
        let runtime = Arc::new(runtime);
        self.options.spawner = Some(runtime.clone());
        self.options.sleeper = Some(runtime);
        self
    }

    /// Where a started connection refresh runs, so that it reaches the store even when the
    /// caller gives up (default: none, the refresh runs inline in the caller's future; see the
    /// [`runtime`](crate::runtime) module).
    pub fn spawner(mut self, spawner: impl Spawner) -> Self {
        self.options.spawner = Some(Arc::new(spawner));
        self
    }

    /// How a caller waits for another node's connection refresh (default: none, it gets
    /// [`ConnectionError::Transient`](crate::ConnectionError::Transient) at once; see the
    /// [`runtime`](crate::runtime) module).
    pub fn sleeper(mut self, sleeper: impl Sleeper) -> Self {
        self.options.sleeper = Some(Arc::new(sleeper));
        self
    }

    /// Where audit events go (default: [`TracingAuditSink`]).
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The host's users (default: [`NoDirectory`], which finds nobody by email and takes every
    /// user id as active).
    pub fn user_directory(mut self, directory: Arc<dyn UserDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Builds the broker.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the base URL is missing or not allowed, the
    /// [redirect path](Self::redirect_path) is not a valid template, or an option is out of
    /// range.
    pub fn build(self) -> Result<Broker, Error> {
        let raw = self
            .public_base_url
            .ok_or(ConfigError::Missing("public_base_url"))?;
        let mut public_base_url = Url::parse(&raw).map_err(|e| ConfigError::InvalidUrl {
            what: "public_base_url",
            reason: e.to_string(),
        })?;
        if !crate::http::is_allowed_endpoint(&public_base_url)
            || public_base_url.query().is_some()
            || public_base_url.fragment().is_some()
        {
            return Err(ConfigError::InvalidUrl {
                what: "public_base_url",
                reason: "must be https (http only on loopback), without query or fragment".into(),
            }
            .into());
        }
        if !public_base_url.path().ends_with('/') {
            let path = format!("{}/", public_base_url.path());
            public_base_url.set_path(&path);
        }
        let redirect_path = crate::route::RedirectPath::parse(
            &public_base_url,
            self.redirect_path
                .as_deref()
                .unwrap_or(crate::route::DEFAULT_REDIRECT_PATH),
        )?;
        let o = &self.options;
        if o.leeway.is_negative() || o.leeway > Duration::minutes(5) {
            return Err(invalid("leeway", "must be between 0 and 5 minutes"));
        }
        for (what, d) in [
            ("login_ttl", o.login_ttl),
            ("link_ticket_ttl", o.link_ticket_ttl),
        ] {
            if !d.is_positive() || d > Duration::hours(1) {
                return Err(invalid(what, "must be positive and at most 1 hour"));
            }
        }
        if o.connection_refresh_margin.is_negative()
            || o.connection_refresh_margin > Duration::hours(1)
        {
            return Err(invalid(
                "connection_refresh_margin",
                "must be between 0 and 1 hour",
            ));
        }
        if o.method_switch_grace.is_negative() || o.method_switch_grace > crate::policy::MAX_GRACE {
            return Err(invalid(
                "method_switch_grace",
                "must be between zero and 366 days",
            ));
        }
        if o.max_response_bytes < 1024 {
            return Err(invalid("max_response_bytes", "must be at least 1024"));
        }
        if o.metadata_cache_capacity == 0 {
            return Err(invalid("metadata_cache_capacity", "must be at least 1"));
        }
        let http = match self.http {
            Some(h) => h,
            None => default_http()?,
        };
        Ok(Broker {
            inner: Arc::new(Inner {
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                http,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                redirect_path,
                options: self.options,
                metadata: crate::oauth::MetadataCache::default(),
                audit: self.audit.unwrap_or_else(|| Arc::new(TracingAuditSink)),
                directory: self.directory.unwrap_or_else(|| Arc::new(NoDirectory)),
                visitor_rings: crate::visitor::RingCache::default(),
                provider_configs: crate::store::DecodedCache::default(),
                policies: crate::store::DecodedCache::default(),
                refresh_locks: crate::connection::RefreshLocks::default(),
                connections: crate::store::DecodedCache::default(),
            }),
        })
    }
}

fn invalid(what: &'static str, reason: &str) -> Error {
    ConfigError::Invalid {
        what,
        reason: reason.into(),
    }
    .into()
}

#[cfg(feature = "reqwest")]
fn default_http() -> Result<Arc<dyn HttpClient>, Error> {
    Ok(Arc::new(crate::http::ReqwestHttpClient::new()?))
}

#[cfg(not(feature = "reqwest"))]
fn default_http() -> Result<Arc<dyn HttpClient>, Error> {
    Err(ConfigError::Missing("http_client (the `reqwest` feature is off)").into())
}

impl Broker {
    /// How many providers' discovery documents and key sets this broker caches now: at most
    /// [`metadata_cache_capacity`](crate::BrokerBuilder::metadata_cache_capacity). For
    /// monitoring, and for tests of the bound.
    pub fn metadata_cache_len(&self) -> usize {
        self.inner.metadata.len()
    }
}

//! Configurations: their options, and creating, listing and deleting them.

use time::{Duration, OffsetDateTime};

use super::VisitorAudience;
use super::Visitors;
use super::keys::{
    ExportedVisitorKey, VisitorKeyId, VisitorKeyInfo, VisitorKeyState, VisitorSigningKey,
};
use super::ring::{NS_CONFIG, RECORD_FORMAT, RingRecord, config_key, corrupt, from_unix};
use crate::error::{ConfigError, Error, VisitorAdminError};
use crate::ids::TenantId;
use crate::store::Inserted;

/// Settings of one visitor configuration, with safe defaults.
///
/// ```
/// use cx_sso::VisitorConfigOptions;
/// use time::Duration;
///
/// let options = VisitorConfigOptions::default()
///     .with_max_lifetime(Duration::minutes(30))
///     .with_single_use(true);
/// assert_eq!(options.max_lifetime(), Duration::minutes(30));
/// assert_eq!(options.default_lifetime(), Duration::minutes(10));
/// assert!(options.is_single_use());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitorConfigOptions {
    max_lifetime: Duration,
    default_lifetime: Duration,
    single_use: bool,
}

impl Default for VisitorConfigOptions {
    fn default() -> Self {
        Self {
            max_lifetime: Duration::hours(1),
            default_lifetime: Duration::minutes(10),
            single_use: false,
        }
    }
}

impl VisitorConfigOptions {
    /// The longest token lifetime minted or accepted (default 1 hour, at most 24 hours). A
    /// token whose `exp` is further than this (plus leeway) from now is refused.
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// The lifetime of a minted token when none is asked for (default 10 minutes).
    pub fn with_default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// Single-use mode: a token's `jti` is accepted once; a replay is refused, and a token
    /// without `jti` too (default off).
    pub fn with_single_use(mut self, on: bool) -> Self {
        self.single_use = on;
        self
    }

    /// The longest token lifetime minted or accepted.
    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime
    }

    /// The lifetime of a minted token when none is asked for.
    pub fn default_lifetime(&self) -> Duration {
        self.default_lifetime
    }

    /// Whether single-use mode is on.
    pub fn is_single_use(&self) -> bool {
        self.single_use
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |reason: &str| -> Error {
            ConfigError::Invalid {
                what: "visitor config options",
                reason: reason.into(),
            }
            .into()
        };
        if self.max_lifetime < Duration::seconds(1) || self.max_lifetime > Duration::hours(24) {
            return Err(bad("max_lifetime must be between 1 second and 24 hours"));
        }
        if self.default_lifetime < Duration::seconds(1) || self.default_lifetime > self.max_lifetime
        {
            return Err(bad(
                "default_lifetime must be at least 1 second and at most max_lifetime",
            ));
        }
        Ok(())
    }
}

impl Visitors {
    /// The work of `Broker::create_visitor_config`, whose docs say what it does.
    pub(crate) async fn create_visitor_config(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        options: VisitorConfigOptions,
    ) -> Result<ExportedVisitorKey, Error> {
        options.validate()?;
        let key = VisitorSigningKey::generate()?;
        let kid = VisitorKeyId::generate();
        let created_at = self
            .insert_visitor_config(tenant, audience, options, &kid, &key)
            .await?;
        Ok(ExportedVisitorKey {
            kid,
            key,
            created_at,
        })
    }

    /// The work of `Broker::create_visitor_config_with_key`, whose docs say what it does.
    pub(crate) async fn create_visitor_config_with_key(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        options: VisitorConfigOptions,
        kid: Option<VisitorKeyId>,
        key: VisitorSigningKey,
    ) -> Result<VisitorKeyInfo, Error> {
        options.validate()?;
        self.check_imported_visitor_key(tenant, &key).await?;
        let kid = kid.unwrap_or_else(VisitorKeyId::generate);
        let created_at = self
            .insert_visitor_config(tenant, audience, options, &kid, &key)
            .await?;
        Ok(VisitorKeyInfo {
            kid,
            state: VisitorKeyState::Signing,
            created_at,
            retired_at: None,
        })
    }

    /// Writes a new configuration whose ring holds `key` as its signing key, if none exists.
    async fn insert_visitor_config(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        options: VisitorConfigOptions,
        kid: &VisitorKeyId,
        key: &VisitorSigningKey,
    ) -> Result<OffsetDateTime, Error> {
        let now = self.cx.now();
        let mut ring = RingRecord {
            v: RECORD_FORMAT,
            tenant: tenant.as_str().to_owned(),
            audience: audience.as_str().to_owned(),
            max_lifetime_secs: options.max_lifetime.whole_seconds(),
            default_lifetime_secs: options.default_lifetime.whole_seconds(),
            single_use: options.single_use,
            keys: Vec::new(),
        };
        ring.push_key(kid, key.secret(), now)?;
        if let Some(k) = ring.keys.first_mut() {
            k.state = VisitorKeyState::Signing;
        }
        let record = ring.encode(self.cx.options.encryption_key.as_ref())?;
        match self
            .cx
            .store
            .insert(NS_CONFIG, &config_key(tenant, audience), record, now)
            .await?
        {
            Inserted::Yes { .. } => {}
            Inserted::No => return Err(VisitorAdminError::ConfigExists.into()),
        }
        tracing::info!(tenant = %tenant, audience = %audience, kid = %kid, "visitor configuration created");
        Ok(from_unix(now.unix_timestamp()))
    }

    /// The work of `Broker::delete_visitor_config`, whose docs say what it does.
    pub(crate) async fn delete_visitor_config(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
    ) -> Result<bool, Error> {
        let skey = config_key(tenant, audience);
        let existed = self
            .cx
            .store
            .delete(NS_CONFIG, &skey, self.cx.now())
            .await?;
        self.rings.forget(&skey);
        Ok(existed)
    }

    /// The work of `Broker::list_visitor_configs`, whose docs say what it does.
    pub(crate) async fn list_visitor_configs(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<VisitorAudience>, Error> {
        let rows = self
            .cx
            .store
            .list(NS_CONFIG, tenant.as_str(), self.cx.now())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (skey, rec) in rows {
            let ring = RingRecord::decode(&rec, self.cx.options.encryption_key.as_ref(), &skey)?;
            if ring.tenant == tenant.as_str() {
                out.push(VisitorAudience::new(ring.audience.clone()).map_err(|_| corrupt())?);
            }
        }
        Ok(out)
    }
}

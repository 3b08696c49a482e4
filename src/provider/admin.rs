//! What tenant admins do with SSO applications (configure, check, list, remove), and the
//! loading of an application with its status, through the decoded-configuration cache.

use std::sync::Arc;

use crate::error::{ConfigError, Error, TokenEndpointError};
use crate::ids::{ProviderId, TenantId};
use crate::oauth::{ProviderMetadata, TokenClient};
use crate::provider::{
    CheckResult, ConnectionCheck, LoadedProvider, ProviderConfig, ProviderProblem, ProviderReport,
    ProviderStatus, SecretCheck, SsoStatus, StoredProvider,
};
use crate::store::key;
use crate::store::records::{self, PROVIDER};

use super::Providers;

impl Providers {
    /// The first step of `Broker::configure_provider`, whose docs say what it does: refuses a
    /// configuration with static problems, then checks its connection (discovery, secret) for
    /// [`save_provider`](Self::save_provider) to store with it. Nothing is stored here.
    pub(crate) async fn check_new_provider(
        &self,
        tenant: &TenantId,
        config: &ProviderConfig,
    ) -> Result<ConnectionCheck, Error> {
        if let Some(refused) = config.not_applicable().into_iter().next() {
            return Err(refused.into());
        }
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                what: "SSO application",
                reason: problems.join("; "),
            }
            .into());
        }
        Ok(self.check_connection(tenant, config).await)
    }

    /// Stores `config` with its check, and reports the status it now has: the last step of
    /// `Broker::configure_provider`.
    pub(crate) async fn save_provider(
        &self,
        tenant: &TenantId,
        config: ProviderConfig,
        check: ConnectionCheck,
    ) -> Result<ProviderReport, Error> {
        let k = key(&[tenant.as_str(), config.id().as_str()]);
        let stored = StoredProvider::seal(
            self.cx.options.encryption_key.as_ref(),
            tenant,
            config,
            Some(check.clone()),
        )?;
        let report = ProviderReport {
            provider: stored.config.id().clone(),
            status: stored.status(),
            check,
        };
        self.cx
            .store
            .put(
                PROVIDER.name,
                &k,
                records::encode(&stored)?.index(tenant.as_str()),
                self.cx.now(),
            )
            .await?;
        Ok(report)
    }

    /// The work of `Broker::remove_provider`, whose docs say what it does.
    pub(crate) async fn remove_provider(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<(), Error> {
        let k = key(&[tenant.as_str(), provider.as_str()]);
        if self
            .cx
            .store
            .delete(PROVIDER.name, &k, self.cx.now())
            .await?
        {
            Ok(())
        } else {
            Err(not_configured(tenant, provider))
        }
    }

    /// The work of `Broker::list_providers`, whose docs say what it does.
    pub(crate) async fn list_providers(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<ProviderConfig>, Error> {
        Ok(self
            .stored_providers(tenant)
            .await?
            .into_iter()
            .map(|p| p.config)
            .collect())
    }

    pub(crate) async fn stored_providers(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<StoredProvider>, Error> {
        let rows = self
            .cx
            .store
            .list(PROVIDER.name, tenant.as_str(), self.cx.now())
            .await?;
        let key = self.cx.options.encryption_key.as_ref();
        rows.into_iter()
            .map(|(_, r)| StoredProvider::open(key, tenant, &r.value))
            .collect()
    }

    /// The application's metadata: its discovery document (cached), or its configured
    /// endpoints.
    pub(crate) async fn provider_metadata(
        &self,
        config: &ProviderConfig,
    ) -> Result<Arc<ProviderMetadata>, Error> {
        let source = config.metadata_source()?;
        self.cx
            .metadata
            .metadata(&self.cx.oauth_env(), &source)
            .await
    }

    /// [`provider_metadata`](Self::provider_metadata) of a decoded application, through the
    /// metadata source decoded with it.
    pub(crate) async fn loaded_provider_metadata(
        &self,
        loaded: &LoadedProvider,
    ) -> Result<Arc<ProviderMetadata>, Error> {
        match &loaded.metadata_source {
            Some(source) => {
                self.cx
                    .metadata
                    .metadata(&self.cx.oauth_env(), source)
                    .await
            }
            None => self.provider_metadata(&loaded.config).await,
        }
    }

    /// The application's metadata, its discovery document fetched now.
    pub(crate) async fn refresh_provider_metadata(
        &self,
        config: &ProviderConfig,
    ) -> Result<Arc<ProviderMetadata>, Error> {
        let source = config.metadata_source()?;
        self.cx
            .metadata
            .refresh_metadata(&self.cx.oauth_env(), &source)
            .await
    }

    pub(crate) async fn provider_config(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<Arc<ProviderConfig>, Error> {
        Ok(self.loaded_provider(tenant, provider).await?.config.clone())
    }

    /// The stored application with its status: one store read.
    pub(crate) async fn loaded_provider(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<Arc<LoadedProvider>, Error> {
        let k = key(&[tenant.as_str(), provider.as_str()]);
        let record = self.cx.store.get(PROVIDER.name, &k, self.cx.now()).await?;
        self.loaded_provider_from(tenant, provider, &k, record)
    }

    /// The store address (namespace, key) of a stored application, for a batched read
    /// ([`loaded_provider_from`](Self::loaded_provider_from) decodes what it answers).
    pub(crate) fn provider_address(
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> (&'static str, String) {
        (PROVIDER.name, key(&[tenant.as_str(), provider.as_str()]))
    }

    /// The application from its record `record`, read at `k` (see
    /// [`provider_address`](Self::provider_address)).
    pub(crate) fn loaded_provider_from(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        k: &str,
        record: Option<crate::store::Record>,
    ) -> Result<Arc<LoadedProvider>, Error> {
        let record = record.ok_or_else(|| not_configured(tenant, provider))?;
        // Every login reads it: the decoded config (secret opened), its status and its route
        // tag are reused while the stored bytes are unchanged, so decoding, decryption and
        // hashing happen once per change.
        let key = self.cx.options.encryption_key.as_ref();
        self.configs.get_or_decode(k, &record.value, || {
            StoredProvider::open(key, tenant, &record.value).map(|s| LoadedProvider {
                status: s.status(),
                metadata_source: s.config.metadata_source().ok(),
                config: Arc::new(s.config),
                route_tag: crate::route::route_tag(tenant, provider),
            })
        })
    }

    /// The work of `Broker::provider_status`, whose docs say what it does.
    pub(crate) async fn provider_status(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<ProviderStatus, Error> {
        match self.loaded_provider(tenant, provider).await {
            Ok(loaded) => Ok(loaded.status.clone()),
            Err(Error::NotConfigured { .. }) => Ok(ProviderStatus::NotConfigured),
            Err(e) => Err(e),
        }
    }

    /// The work of `Broker::test_connection`, whose docs say what it does.
    pub(crate) async fn test_connection(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<ProviderReport, Error> {
        let config = self.provider_config(tenant, provider).await?;
        let check = self.check_connection(tenant, &config).await;
        self.save_provider(tenant, (*config).clone(), check).await
    }

    async fn check_connection(
        &self,
        tenant: &TenantId,
        config: &ProviderConfig,
    ) -> ConnectionCheck {
        let inner = &*self.cx;
        let meta = match self.refresh_provider_metadata(config).await {
            Ok(m) => m,
            Err(e) => {
                return ConnectionCheck {
                    discovery: CheckResult::Failed(e.to_string()),
                    secret: SecretCheck::Unknown,
                };
            }
        };
        // The pinned ID-token algorithm must be one the provider advertises. The secret is
        // checked all the same: every problem is reported, not only the first.
        let discovery = match config.id_token_signed_response_alg() {
            Some(pinned) if !meta.algorithms.contains(&pinned.jwt()) => {
                let advertised: Vec<String> =
                    meta.algorithms.iter().map(|a| format!("{a:?}")).collect();
                CheckResult::Failed(format!(
                    "the ID-token algorithm is pinned to {pinned}, which the provider does not \
                     advertise (it advertises {})",
                    advertised.join(", ")
                ))
            }
            _ => CheckResult::Ok,
        };
        // A deliberately invalid code: a provider that accepts the client answers
        // invalid_grant, one that rejects it answers invalid_client.
        let redirect_uri = self.cx.redirect_uri(tenant, config.id());
        let secret = match TokenClient::new(&inner.oauth_env(), config.credentials())
            .probe(&meta.token_endpoint, &redirect_uri)
            .await
        {
            Err(TokenEndpointError::InvalidGrant) => SecretCheck::Accepted,
            Err(TokenEndpointError::InvalidClient) => SecretCheck::Rejected,
            _ => SecretCheck::Unknown,
        };
        ConnectionCheck { discovery, secret }
    }

    /// The work of `Broker::sso_status`, whose docs say what it does.
    pub(crate) async fn sso_status(&self, tenant: &TenantId) -> Result<SsoStatus, Error> {
        // Plain OAuth 2.0 applications connect mailboxes; they are not SSO applications.
        let stored: Vec<StoredProvider> = self
            .stored_providers(tenant)
            .await?
            .into_iter()
            .filter(|p| !p.config.is_plain_oauth2())
            .collect();
        if stored.is_empty() {
            return Ok(SsoStatus::NotConfigured);
        }
        let mut ready = Vec::new();
        let mut problems = Vec::new();
        for p in stored {
            if let ProviderStatus::Invalid { reasons } = p.status() {
                problems.extend(reasons.into_iter().map(|reason| ProviderProblem {
                    provider: p.config.id().clone(),
                    reason,
                }));
            } else {
                ready.push(p.config.id().clone());
            }
        }
        Ok(if ready.is_empty() {
            SsoStatus::Invalid(problems)
        } else {
            SsoStatus::Ready {
                providers: ready,
                problems,
            }
        })
    }
}

pub(crate) fn not_configured(tenant: &TenantId, provider: &ProviderId) -> Error {
    Error::NotConfigured {
        tenant: tenant.to_string(),
        provider: provider.to_string(),
    }
}

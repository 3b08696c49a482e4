//! The stored application: its configuration (client secret sealed) with its status, and the
//! decoded form the cache holds.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{ProviderId, TenantId};
use crate::oauth::MetadataSource;
use crate::secret::ClientSecret;

use super::config::ProviderConfig;
use super::status::{ConnectionCheck, ProviderStatus};

/// A stored application as the broker keeps it decoded between uses: the configuration (its
/// secret opened), its status, the tag its logins' state carries (see
/// [`route_tag`](crate::route::route_tag)) and where its metadata comes from.
#[derive(Debug)]
pub(crate) struct LoadedProvider {
    pub(crate) config: std::sync::Arc<ProviderConfig>,
    pub(crate) status: ProviderStatus,
    pub(crate) route_tag: String,
    /// [`ProviderConfig::metadata_source`], built once per decoded record (its discovery URL
    /// and expected issuer were two allocations on every `begin_login`); `None` when it could
    /// not be built, so that a use asks the config again and reports why.
    pub(crate) metadata_source: Option<MetadataSource>,
}

pub(super) fn no_secret() -> ClientSecret {
    ClientSecret::new(String::new())
}

/// A provider application as stored: the configuration, its client secret (sealed under the
/// broker's encryption key when there is one) and the last connection check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredProvider {
    #[serde(flatten)]
    pub(crate) config: ProviderConfig,
    /// [`crypto::seal_text`](crate::crypto::seal_text) of the client secret (plain when the
    /// broker has no key: kept in a secret type so `Debug` never shows it).
    pub(crate) sealed_client_secret: ClientSecret,
    pub(crate) last_check: Option<ConnectionCheck>,
}

crate::store::records::json_record!(StoredProvider => PROVIDER);

impl StoredProvider {
    /// [`ProviderStatus::Ready`] or [`ProviderStatus::Invalid`], from the configuration's
    /// static problems and the last connection check (no network).
    pub(crate) fn status(&self) -> ProviderStatus {
        let mut reasons = self.config.problems();
        match &self.last_check {
            Some(check) => reasons.extend(check.problems()),
            None => reasons.push("the connection has not been checked".to_owned()),
        }
        if reasons.is_empty() {
            ProviderStatus::Ready
        } else {
            ProviderStatus::Invalid { reasons }
        }
    }

    fn binding<'a>(tenant: &'a TenantId, provider: &'a ProviderId) -> crate::crypto::Binding<'a> {
        crate::crypto::Binding {
            domain: crate::crypto::PROVIDER_DOMAIN,
            tenant: tenant.as_str(),
            item: provider.as_str(),
        }
    }

    /// The stored form of `config`, its secret sealed for (`tenant`, its id).
    pub(crate) fn seal(
        key: Option<&crate::EncryptionKey>,
        tenant: &TenantId,
        config: ProviderConfig,
        last_check: Option<ConnectionCheck>,
    ) -> Result<Self, Error> {
        let sealed_client_secret = ClientSecret::new(crate::crypto::seal_text(
            key,
            Self::binding(tenant, config.id()),
            "client_secret",
            config.client_secret.secret(),
        )?);
        Ok(Self {
            config,
            sealed_client_secret,
            last_check,
        })
    }

    /// Decodes a stored record and opens its client secret.
    pub(crate) fn open(
        key: Option<&crate::EncryptionKey>,
        tenant: &TenantId,
        bytes: &[u8],
    ) -> Result<Self, Error> {
        use crate::store::records::StoredRecord;
        let corrupt = |message: &str| crate::store::StoreError::Corrupt {
            message: message.to_owned(),
        };
        let mut stored = <Self as StoredRecord>::from_bytes(bytes)?;
        let secret = crate::crypto::open_text(
            key,
            Self::binding(tenant, stored.config.id()),
            "client_secret",
            stored.sealed_client_secret.secret(),
        )
        .ok_or_else(|| {
            corrupt("the client secret does not decrypt under this broker's key for this record")
        })?;
        stored.config.client_secret = ClientSecret::new(secret);
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::IdTokenAlgorithm;
    use crate::oauth::ClientAuthMethod;

    #[test]
    fn a_stored_provider_round_trips_with_and_without_a_key() {
        let tenant = TenantId::new("acme").unwrap();
        let config = ProviderConfig::google(
            ProviderId::new("google").unwrap(),
            "cid",
            ClientSecret::new("s3cr3t-value"),
        )
        .with_allowed_hosted_domains(["acme.example"])
        .unwrap()
        .with_auth_method(ClientAuthMethod::ClientSecretPost);
        let key = crate::EncryptionKey::from_bytes([5; 32]);
        for k in [None, Some(&key)] {
            let stored = StoredProvider::seal(k, &tenant, config.clone(), None).unwrap();
            let bytes = serde_json::to_vec(&stored).unwrap();
            assert_eq!(
                k.is_some(),
                !String::from_utf8_lossy(&bytes).contains("s3cr3t")
            );
            let back = StoredProvider::open(k, &tenant, &bytes).unwrap();
            assert_eq!(back.config.client_secret().secret(), "s3cr3t-value");
            assert_eq!(back.config.client_id(), "cid");
            // The config alone never carries the secret.
            assert!(
                !serde_json::to_string(&back.config)
                    .unwrap()
                    .contains("s3cr3t")
            );
        }
    }

    #[test]
    fn scopes_and_the_pinned_algorithm_are_stored_and_older_records_still_read() {
        let tenant = TenantId::new("acme").unwrap();
        let config = ProviderConfig::google(
            ProviderId::new("google").unwrap(),
            "cid",
            ClientSecret::new("s3cr3t-value"),
        )
        .with_scopes(["openid", "email"])
        .with_id_token_signed_response_alg(IdTokenAlgorithm::Es256);
        let stored = StoredProvider::seal(None, &tenant, config, None).unwrap();
        let bytes = serde_json::to_vec(&stored).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains(r#""id_token_signed_response_alg":"ES256""#),
            "{text}"
        );
        let back = StoredProvider::open(None, &tenant, &bytes).unwrap();
        assert_eq!(
            back.config.scopes(),
            Some(&["openid".to_owned(), "email".to_owned()][..])
        );
        assert_eq!(back.config.login_scopes(), "openid email");
        assert_eq!(
            back.config.id_token_signed_response_alg(),
            Some(IdTokenAlgorithm::Es256)
        );
        // A record written before these options existed reads as "not set", and is not ready
        // until checked.
        let old = br#"{"id":"google","kind":{"type":"google","allowed_hosted_domains":[]},
            "client_id":"cid","sealed_client_secret":"s","last_check":null}"#;
        let back = StoredProvider::open(None, &tenant, old).unwrap();
        assert_eq!(back.config.scopes(), None);
        assert_eq!(back.config.login_scopes(), "openid email profile");
        assert_eq!(back.config.id_token_signed_response_alg(), None);
        assert_eq!(
            back.status(),
            ProviderStatus::Invalid {
                reasons: vec!["the connection has not been checked".to_owned()]
            }
        );
    }
}

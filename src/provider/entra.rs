//! Microsoft Entra: which Entra tenants an application accepts, and the authority path
//! segment that follows from it.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Error};

pub(super) const ENTRA_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Which Entra tenants a Microsoft application accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntraTenancy {
    /// One Entra tenant, by its id (a GUID).
    Single {
        /// The Entra tenant id.
        tenant_id: String,
    },
    /// A multi-tenant application (`organizations` or `common` endpoint), restricted to an
    /// allow-list of Entra tenant ids: a token from any other tenant is refused.
    Multi {
        /// `organizations` (work accounts) or `common` (work and personal).
        audience: EntraAudience,
        /// The Entra tenant ids allowed to sign in. Must not be empty.
        allowed_tenant_ids: Vec<String>,
    },
}

/// The endpoint family of a multi-tenant Entra application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntraAudience {
    /// Work and school accounts of any tenant.
    Organizations,
    /// Work, school and personal accounts.
    Common,
}

impl EntraTenancy {
    /// A single-tenant application.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when `tenant_id` is not a GUID.
    pub fn single(tenant_id: impl Into<String>) -> Result<Self, Error> {
        let tenant_id = tenant_id.into().to_ascii_lowercase();
        check_guid(&tenant_id)?;
        Ok(Self::Single { tenant_id })
    }

    /// A multi-tenant application accepting only the listed Entra tenants.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the list is empty or an entry is not a GUID.
    pub fn multi<I, S>(audience: EntraAudience, allowed_tenant_ids: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let allowed_tenant_ids: Vec<String> = allowed_tenant_ids
            .into_iter()
            .map(|s| s.into().to_ascii_lowercase())
            .collect();
        if allowed_tenant_ids.is_empty() {
            return Err(ConfigError::Missing("allowed_tenant_ids").into());
        }
        for t in &allowed_tenant_ids {
            check_guid(t)?;
        }
        Ok(Self::Multi {
            audience,
            allowed_tenant_ids,
        })
    }
}

pub(super) fn check_guid(s: &str) -> Result<(), Error> {
    let ok = s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            what: "Entra tenant id",
            reason: "must be a GUID such as 9188040d-6c67-4c5b-b112-36a304b66dad".into(),
        }
        .into())
    }
}

impl EntraTenancy {
    pub(super) fn path_segment(&self) -> &str {
        match self {
            Self::Single { tenant_id } => tenant_id,
            Self::Multi {
                audience: EntraAudience::Organizations,
                ..
            } => "organizations",
            Self::Multi {
                audience: EntraAudience::Common,
                ..
            } => "common",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProviderId;
    use crate::oauth::ENTRA_ISSUER_TEMPLATE;
    use crate::provider::ProviderConfig;
    use crate::secret::ClientSecret;

    #[test]
    fn entra_discovery_and_issuers() {
        let multi = ProviderConfig::microsoft(
            ProviderId::new("o365").unwrap(),
            EntraTenancy::multi(
                EntraAudience::Organizations,
                ["9188040d-6c67-4c5b-b112-36a304b66dad"],
            )
            .unwrap(),
            "cid",
            ClientSecret::new("s"),
        );
        assert_eq!(
            multi.discovery_url().unwrap(),
            "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(multi.expected_discovery_issuer(), ENTRA_ISSUER_TEMPLATE);
        assert!(EntraTenancy::single("common").is_err());
        assert!(EntraTenancy::multi(EntraAudience::Common, Vec::<String>::new()).is_err());
    }
}

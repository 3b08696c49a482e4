//! What the protocol layer is given from an SSO application's configuration: the discovery URL
//! and the issuer it must name, the client credentials, the metadata source, the ID-token rules,
//! and the scopes and parameters of a login or a mailbox connection.

use std::sync::Arc;

use url::Url;

use crate::error::{ConfigError, Error};
use crate::oauth::{
    ClientCredentials, ENTRA_ISSUER_TEMPLATE, IdTokenRules, IssuerRule, MetadataSource,
    ProviderMetadata,
};

use super::super::entra::{ENTRA_AUTHORITY, EntraTenancy};
use super::check::parse_endpoint;
use super::{GOOGLE_ISSUER, ProviderConfig, ProviderKind};

impl ProviderConfig {
    /// The URL of the discovery document, as text (parsed only when it is fetched: this is
    /// on every login's path).
    pub(crate) fn discovery_url(&self) -> Result<String, Error> {
        let base = match &self.kind {
            ProviderKind::Google { .. } => GOOGLE_ISSUER,
            ProviderKind::Microsoft { tenancy } => {
                return Ok(format!(
                    "{ENTRA_AUTHORITY}/{}/v2.0/.well-known/openid-configuration",
                    tenancy.path_segment()
                ));
            }
            ProviderKind::Oidc { issuer } => issuer.as_str(),
            ProviderKind::OAuth2 { .. } => {
                return Err(ConfigError::Invalid {
                    what: "provider",
                    reason: "a plain OAuth 2.0 application has no discovery document".into(),
                }
                .into());
            }
        };
        Ok(format!(
            "{}/.well-known/openid-configuration",
            base.trim_end_matches('/')
        ))
    }

    /// The client credentials the token endpoint needs.
    pub(crate) fn credentials(&self) -> ClientCredentials<'_> {
        ClientCredentials {
            client_id: self.client_id(),
            client_secret: self.client_secret(),
            auth_method: self.auth_method(),
        }
    }

    /// Where the application's metadata comes from: discovery, or the endpoints of a plain
    /// OAuth 2.0 application.
    pub(crate) fn metadata_source(&self) -> Result<MetadataSource, Error> {
        if let Some(m) = self.synthesized_metadata()? {
            return Ok(MetadataSource::Configured(Arc::new(m)));
        }
        Ok(MetadataSource::Discovery {
            url: self.discovery_url()?,
            expected_issuer: self.expected_discovery_issuer(),
        })
    }

    /// What the application's ID tokens must satisfy, per provider kind.
    pub(crate) fn id_token_rules(&self) -> IdTokenRules<'_> {
        let (issuer, allowed_hosted_domains, require_oid): (_, &[String], _) = match &self.kind {
            ProviderKind::Microsoft {
                tenancy:
                    EntraTenancy::Multi {
                        allowed_tenant_ids, ..
                    },
            } => (IssuerRule::EntraTenants(allowed_tenant_ids), &[], true),
            ProviderKind::Microsoft { .. } => (IssuerRule::Metadata, &[], true),
            ProviderKind::Google {
                allowed_hosted_domains,
            } => (IssuerRule::Metadata, allowed_hosted_domains, false),
            _ => (IssuerRule::Metadata, &[], false),
        };
        IdTokenRules {
            client_id: self.client_id(),
            issuer,
            allowed_hosted_domains,
            require_oid,
            pinned_alg: self.id_token_signed_response_alg,
        }
    }

    /// The metadata of a plain OAuth 2.0 application, from its configuration (no discovery);
    /// `None` for OpenID Connect providers.
    fn synthesized_metadata(&self) -> Result<Option<ProviderMetadata>, Error> {
        let ProviderKind::OAuth2 {
            authorization_url,
            token_url,
            refresh_url,
            revocation_url,
            userinfo_url,
            ..
        } = self.kind()
        else {
            return Ok(None);
        };
        let token_endpoint = parse_endpoint("token URL", token_url)?;
        let optional = |what: &'static str, url: &Option<String>| -> Result<Option<Url>, Error> {
            url.as_deref().map(|u| parse_endpoint(what, u)).transpose()
        };
        Ok(Some(ProviderMetadata {
            issuer: String::new(),
            authorization_endpoint: parse_endpoint("authorization URL", authorization_url)?,
            refresh_endpoint: optional("refresh URL", refresh_url)?
                .unwrap_or_else(|| token_endpoint.clone()),
            token_endpoint,
            userinfo_endpoint: optional("userinfo URL", userinfo_url)?,
            jwks_uri: None,
            revocation_endpoint: optional("revocation URL", revocation_url)?,
            algorithms: Vec::new(),
            iss_parameter_supported: false,
        }))
    }

    /// What the discovery document's `issuer` must be exactly (the Entra template for
    /// multi-tenant applications).
    pub(crate) fn expected_discovery_issuer(&self) -> String {
        match &self.kind {
            ProviderKind::Google { .. } => GOOGLE_ISSUER.to_owned(),
            ProviderKind::Microsoft {
                tenancy: EntraTenancy::Single { tenant_id },
            } => format!("{ENTRA_AUTHORITY}/{tenant_id}/v2.0"),
            ProviderKind::Microsoft {
                tenancy: EntraTenancy::Multi { .. },
            } => ENTRA_ISSUER_TEMPLATE.to_owned(),
            ProviderKind::Oidc { issuer } => issuer.clone(),
            ProviderKind::OAuth2 { .. } => String::new(),
        }
    }

    /// The scopes of a sign-in request.
    pub(crate) fn login_scopes(&self) -> String {
        if let Some(scopes) = &self.scopes {
            return scopes.join(" ");
        }
        let mut s = String::from("openid email profile");
        for extra in &self.extra_scopes {
            if !matches!(extra.as_str(), "openid" | "email" | "profile") {
                s.push(' ');
                s.push_str(extra);
            }
        }
        s
    }

    /// The scopes of a mailbox-connection request: offline access and the mail scopes.
    pub(crate) fn connect_scopes(&self) -> String {
        let base: &[&str] = match &self.kind {
            ProviderKind::Google { .. } => &["openid", "email", GOOGLE_MAIL_SCOPE],
            ProviderKind::Microsoft { .. } => &[
                "openid",
                "email",
                "offline_access",
                "https://outlook.office.com/SMTP.Send",
                "https://outlook.office.com/IMAP.AccessAsUser.All",
            ],
            ProviderKind::Oidc { .. } => &["openid", "email", "offline_access"],
            ProviderKind::OAuth2 { .. } => &[],
        };
        let mut out: Vec<&str> = base.to_vec();
        let configured: &[String] = match &self.kind {
            ProviderKind::OAuth2 { scopes, .. } => scopes,
            _ => &self.extra_scopes,
        };
        for extra in configured {
            if !out.contains(&extra.as_str()) {
                out.push(extra);
            }
        }
        out.join(" ")
    }

    /// Authorization parameters that ask for a refresh token, besides the scopes.
    ///
    /// Google wants `access_type=offline` (and `prompt=consent`, or a second consent returns no
    /// refresh token). OpenID providers take `offline_access` with `prompt=consent`. A plain
    /// OAuth 2.0 application gets both: RFC 6749 §3.1 has servers ignore parameters they do
    /// not know, and Google configured as plain OAuth 2.0 (as mailbox forms do) needs them.
    pub(crate) fn connect_parameters(&self) -> &'static [(&'static str, &'static str)] {
        match &self.kind {
            ProviderKind::Google { .. } | ProviderKind::OAuth2 { .. } => {
                &[("access_type", "offline"), ("prompt", "consent")]
            }
            ProviderKind::Oidc { .. } => &[("prompt", "consent")],
            ProviderKind::Microsoft { .. } => &[],
        }
    }
}

/// Google's scope for SMTP, IMAP and POP with XOAUTH2.
const GOOGLE_MAIL_SCOPE: &str = "https://mail.google.com/";

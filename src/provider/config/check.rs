//! The checks of an SSO application's configuration that need no network: every problem at
//! once, the options its kind does not apply, and the endpoints' and issuer's shapes.

use url::Url;

use crate::error::{ConfigError, Error};

use super::super::entra::{EntraTenancy, check_guid};
use super::super::{EmailMatch, LinkingPolicy};
use super::{ProviderConfig, ProviderKind};

impl ProviderConfig {
    /// Checks what can be checked without the network. Every problem is reported, not only the
    /// first, beginning with the options this kind of application does not apply
    /// ([`ConfigError::NotApplicable`]).
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .not_applicable()
            .iter()
            .map(ToString::to_string)
            .collect();
        if self.client_id.trim().is_empty() {
            out.push("the client id is empty".to_owned());
        } else if self.client_id.len() > 512 || self.client_id.chars().any(char::is_control) {
            out.push("the client id is malformed".to_owned());
        }
        if self.client_secret.secret().trim().is_empty() {
            out.push("the client secret is empty".to_owned());
        } else if self.client_secret.secret().len() > 1024 {
            out.push("the client secret is too long".to_owned());
        }
        for s in &self.extra_scopes {
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                out.push("an extra scope is empty or holds whitespace".to_owned());
            }
        }
        // On a plain OAuth 2.0 application a sign-in scope set is refused whole (above).
        if let Some(scopes) = self.scopes.as_ref().filter(|_| !self.is_plain_oauth2()) {
            if !scopes.iter().any(|s| s == "openid") {
                out.push("the scope set must include `openid`".to_owned());
            }
            if !scopes.iter().all(|s| is_scope_token(s)) {
                out.push(
                    "a scope is empty or holds a space, a control character, `\"`, `\\` or \
                     non-ASCII"
                        .to_owned(),
                );
            }
        }
        match &self.kind {
            ProviderKind::Google {
                allowed_hosted_domains,
            } => {
                if allowed_hosted_domains
                    .iter()
                    .any(|d| d.is_empty() || d.contains(|c: char| c == '/' || c.is_whitespace()))
                {
                    out.push("an allowed hosted domain is malformed".to_owned());
                }
            }
            ProviderKind::Microsoft { tenancy } => {
                match tenancy {
                    EntraTenancy::Single { tenant_id } => {
                        if check_guid(tenant_id).is_err() {
                            out.push("the Entra tenant id is not a GUID".to_owned());
                        }
                    }
                    EntraTenancy::Multi {
                        allowed_tenant_ids, ..
                    } => {
                        if allowed_tenant_ids.is_empty() {
                            out.push("a multi-tenant Entra application needs an allow-list of tenant ids".to_owned());
                        }
                        if allowed_tenant_ids.iter().any(|t| check_guid(t).is_err()) {
                            out.push("an allowed Entra tenant id is not a GUID".to_owned());
                        }
                    }
                }
            }
            ProviderKind::Oidc { issuer } => {
                if let Err(e) = parse_issuer(issuer) {
                    out.push(e.to_string());
                }
            }
            ProviderKind::OAuth2 {
                authorization_url,
                token_url,
                refresh_url,
                revocation_url,
                userinfo_url,
                scopes,
                mailbox,
            } => {
                let required = [
                    ("authorization URL", Some(authorization_url)),
                    ("token URL", Some(token_url)),
                    ("refresh URL", refresh_url.as_ref()),
                    ("revocation URL", revocation_url.as_ref()),
                    ("userinfo URL", userinfo_url.as_ref()),
                ];
                for (what, url) in required {
                    if let Some(url) = url
                        && parse_endpoint(what, url).is_err()
                    {
                        out.push(format!(
                            "the {what} must be https (http only on loopback), without fragment"
                        ));
                    }
                }
                if scopes.is_empty() {
                    out.push("a plain OAuth 2.0 application needs at least one scope".to_owned());
                }
                if scopes
                    .iter()
                    .any(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
                {
                    out.push("a scope is empty or holds whitespace".to_owned());
                }
                if let Some(m) = mailbox
                    && crate::identity::check_mailbox(m).is_err()
                {
                    out.push(
                        "the mailbox address is empty, too long or holds control characters"
                            .to_owned(),
                    );
                }
            }
        }
        out
    }

    /// The options set on this configuration (by the builders shared by every kind, or
    /// deserialised) that its kind does not apply: refused, never silently ignored.
    pub(crate) fn not_applicable(&self) -> Vec<ConfigError> {
        let mut options = Vec::new();
        if self.is_plain_oauth2() {
            // No sign-in, no ID token, no binding: only `oauth2`'s own scopes.
            if self.scopes.is_some() {
                options.push("scopes");
            }
            if !self.extra_scopes.is_empty() {
                options.push("extra_scopes");
            }
            if self.id_token_signed_response_alg.is_some() {
                options.push("id_token_signed_response_alg");
            }
            if self.linking != LinkingPolicy::default() {
                options.push("linking_policy");
            }
            if self.email_match != EmailMatch::default() {
                options.push("email_match");
            }
        } else if !matches!(self.kind, ProviderKind::Microsoft { .. })
            && !self.linking.entra_verified_domains().is_empty()
        {
            options.push("entra_verified_domains");
        }
        options
            .into_iter()
            .map(|option| ConfigError::NotApplicable {
                option,
                kind: self.kind.name(),
            })
            .collect()
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Parses an explicit endpoint of a plain OAuth 2.0 application: https (loopback http), no
/// fragment. A query is allowed (some providers put the API version there).
pub(crate) fn parse_endpoint(what: &'static str, url: &str) -> Result<Url, Error> {
    let parsed = Url::parse(url).map_err(|e| ConfigError::InvalidUrl {
        what,
        reason: e.to_string(),
    })?;
    if !crate::http::is_allowed_endpoint(&parsed) || parsed.fragment().is_some() {
        return Err(ConfigError::InvalidUrl {
            what,
            reason: "must be https (http only on loopback), without fragment".into(),
        }
        .into());
    }
    Ok(parsed)
}

fn parse_issuer(issuer: &str) -> Result<Url, Error> {
    let url = Url::parse(issuer).map_err(|e| ConfigError::InvalidUrl {
        what: "issuer",
        reason: e.to_string(),
    })?;
    if !crate::http::is_allowed_endpoint(&url) || url.query().is_some() || url.fragment().is_some()
    {
        return Err(ConfigError::InvalidUrl {
            what: "issuer",
            reason: "must be https (http only on loopback), without query or fragment".into(),
        }
        .into());
    }
    Ok(url)
}

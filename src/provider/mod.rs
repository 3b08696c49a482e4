//! Per-tenant SSO applications: configuration, validation and status.

mod admin;
mod linking;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

pub use crate::error::IdTokenAlgorithm;
use crate::error::{ConfigError, Error};
use crate::ids::{ProviderId, TenantId};
pub use crate::oauth::ClientAuthMethod;
use crate::oauth::{
    ClientCredentials, ENTRA_ISSUER_TEMPLATE, IdTokenRules, IssuerRule, MetadataSource,
    ProviderMetadata,
};
use crate::secret::ClientSecret;
pub use linking::{EmailMatch, LinkingPolicy};

const ENTRA_AUTHORITY: &str = "https://login.microsoftonline.com";
const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// A tenant's SSO application at one provider: which provider, and the client credentials the
/// tenant admin registered there.
///
/// ```
/// use cx_sso::{ClientSecret, EntraTenancy, ProviderConfig, ProviderId};
///
/// # fn main() -> Result<(), cx_sso::Error> {
/// let google = ProviderConfig::google(
///     ProviderId::new("google")?,
///     "1234.apps.googleusercontent.com",
///     ClientSecret::new("GOCSPX-..."),
/// )
/// .with_allowed_hosted_domains(["acme.example"])?;
///
/// let entra = ProviderConfig::microsoft(
///     ProviderId::new("office365")?,
///     EntraTenancy::single("9188040d-6c67-4c5b-b112-36a304b66dad")?,
///     "00000000-0000-0000-0000-000000000001",
///     ClientSecret::new("..."),
/// );
/// # let _ = (google, entra); Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderConfig {
    id: ProviderId,
    kind: ProviderKind,
    client_id: String,
    // Never serialised with the config (a host may send configs to its admin UI as JSON); the
    // store keeps it sealed beside the config (`StoredProvider`).
    #[serde(skip_serializing, default = "no_secret")]
    client_secret: ClientSecret,
    #[serde(default)]
    extra_scopes: Vec<String>,
    /// The exact scope set of a sign-in request, when the host gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    /// The only algorithm accepted for ID tokens, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token_signed_response_alg: Option<IdTokenAlgorithm>,
    #[serde(default)]
    auth_method: ClientAuthMethod,
    #[serde(default)]
    linking: LinkingPolicy,
    #[serde(default)]
    email_match: EmailMatch,
}

/// Which provider an application is registered at, with that provider's own options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderKind {
    /// Google (Workspace or consumer accounts).
    Google {
        /// When not empty, only accounts of these Workspace domains (`hd` claim) may sign in.
        allowed_hosted_domains: Vec<String>,
    },
    /// Microsoft Entra ID (Office 365).
    Microsoft {
        /// Which Entra tenants the application accepts.
        tenancy: EntraTenancy,
    },
    /// Any OpenID Connect provider, found by discovery from its issuer.
    Oidc {
        /// The issuer URL; `{issuer}/.well-known/openid-configuration` is fetched.
        issuer: String,
    },
    /// A plain OAuth 2.0 application with explicit endpoints (no OpenID Connect, no
    /// discovery): the fields of a mailbox connection form. It can only connect mailboxes
    /// ([`LoginIntent::Connect`](crate::LoginIntent::Connect)), never sign users in.
    #[serde(rename = "oauth2")]
    OAuth2 {
        /// The authorization endpoint, such as `https://accounts.google.com/o/oauth2/auth`.
        authorization_url: String,
        /// The token endpoint, such as `https://oauth2.googleapis.com/token`.
        token_url: String,
        /// Where refresh grants go; the token endpoint when `None`.
        #[serde(default)]
        refresh_url: Option<String>,
        /// The RFC 7009 revocation endpoint, if the provider has one.
        #[serde(default)]
        revocation_url: Option<String>,
        /// A userinfo endpoint answering `{"email": ...}`, to learn the mailbox address.
        #[serde(default)]
        userinfo_url: Option<String>,
        /// The scopes to ask for, such as `https://mail.google.com/`.
        scopes: Vec<String>,
        /// The mailbox address, when the host knows it (otherwise userinfo's `email`).
        #[serde(default)]
        mailbox: Option<String>,
    },
}

impl ProviderKind {
    /// The kind's name, as serialised (`type`).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Google { .. } => "google",
            Self::Microsoft { .. } => "microsoft",
            Self::Oidc { .. } => "oidc",
            Self::OAuth2 { .. } => "oauth2",
        }
    }
}

fn not_applicable(option: &'static str, kind: &ProviderKind) -> Error {
    ConfigError::NotApplicable {
        option,
        kind: kind.name(),
    }
    .into()
}

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

fn check_guid(s: &str) -> Result<(), Error> {
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

impl ProviderConfig {
    fn new(
        id: ProviderId,
        kind: ProviderKind,
        client_id: impl Into<String>,
        client_secret: ClientSecret,
    ) -> Self {
        Self {
            id,
            kind,
            client_id: client_id.into(),
            client_secret,
            extra_scopes: Vec::new(),
            scopes: None,
            id_token_signed_response_alg: None,
            auth_method: ClientAuthMethod::default(),
            linking: LinkingPolicy::default(),
            email_match: EmailMatch::default(),
        }
    }

    /// A Google application.
    pub fn google(id: ProviderId, client_id: impl Into<String>, secret: ClientSecret) -> Self {
        Self::new(
            id,
            ProviderKind::Google {
                allowed_hosted_domains: Vec::new(),
            },
            client_id,
            secret,
        )
    }

    /// A Microsoft Entra (Office 365) application.
    pub fn microsoft(
        id: ProviderId,
        tenancy: EntraTenancy,
        client_id: impl Into<String>,
        secret: ClientSecret,
    ) -> Self {
        Self::new(id, ProviderKind::Microsoft { tenancy }, client_id, secret)
    }

    /// An application at any OpenID Connect provider, found from its issuer URL.
    pub fn oidc(
        id: ProviderId,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        secret: ClientSecret,
    ) -> Self {
        Self::new(
            id,
            ProviderKind::Oidc {
                issuer: issuer.into(),
            },
            client_id,
            secret,
        )
    }

    /// A plain OAuth 2.0 application for mailbox connections, with explicit endpoints (see
    /// [`ProviderKind::OAuth2`]); set the optional ones with
    /// [`with_oauth2_refresh_url`](Self::with_oauth2_refresh_url),
    /// [`with_oauth2_revocation_url`](Self::with_oauth2_revocation_url),
    /// [`with_oauth2_userinfo_url`](Self::with_oauth2_userinfo_url) and
    /// [`with_oauth2_mailbox`](Self::with_oauth2_mailbox).
    ///
    /// ```
    /// use cx_sso::{ClientSecret, ProviderConfig, ProviderId};
    ///
    /// # fn main() -> Result<(), cx_sso::Error> {
    /// // The fields of Webex Connect's email asset form, for Gmail.
    /// let gmail = ProviderConfig::oauth2(
    ///     ProviderId::new("gmail")?,
    ///     "https://accounts.google.com/o/oauth2/auth",
    ///     "https://oauth2.googleapis.com/token",
    ///     ["https://mail.google.com/"],
    ///     "1234.apps.googleusercontent.com",
    ///     ClientSecret::new("GOCSPX-..."),
    /// )
    /// .with_oauth2_revocation_url("https://oauth2.googleapis.com/revoke")?
    /// .with_oauth2_mailbox("support@acme.example")?;
    /// assert!(gmail.problems().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn oauth2<I, S>(
        id: ProviderId,
        authorization_url: impl Into<String>,
        token_url: impl Into<String>,
        scopes: I,
        client_id: impl Into<String>,
        secret: ClientSecret,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(
            id,
            ProviderKind::OAuth2 {
                authorization_url: authorization_url.into(),
                token_url: token_url.into(),
                refresh_url: None,
                revocation_url: None,
                userinfo_url: None,
                scopes: scopes.into_iter().map(Into::into).collect(),
                mailbox: None,
            },
            client_id,
            secret,
        )
    }

    /// Plain OAuth 2.0 only: where refresh grants go (default: the token URL).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NotApplicable`] on any other kind of application.
    pub fn with_oauth2_refresh_url(mut self, url: impl Into<String>) -> Result<Self, Error> {
        match &mut self.kind {
            ProviderKind::OAuth2 { refresh_url, .. } => *refresh_url = Some(url.into()),
            other => return Err(not_applicable("oauth2_refresh_url", other)),
        }
        Ok(self)
    }

    /// Plain OAuth 2.0 only: the RFC 7009 revocation endpoint.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NotApplicable`] on any other kind of application.
    pub fn with_oauth2_revocation_url(mut self, url: impl Into<String>) -> Result<Self, Error> {
        match &mut self.kind {
            ProviderKind::OAuth2 { revocation_url, .. } => *revocation_url = Some(url.into()),
            other => return Err(not_applicable("oauth2_revocation_url", other)),
        }
        Ok(self)
    }

    /// Plain OAuth 2.0 only: a userinfo endpoint whose `email` is the mailbox address.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NotApplicable`] on any other kind of application.
    pub fn with_oauth2_userinfo_url(mut self, url: impl Into<String>) -> Result<Self, Error> {
        match &mut self.kind {
            ProviderKind::OAuth2 { userinfo_url, .. } => *userinfo_url = Some(url.into()),
            other => return Err(not_applicable("oauth2_userinfo_url", other)),
        }
        Ok(self)
    }

    /// Plain OAuth 2.0 only: the mailbox address, when the host knows it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NotApplicable`] on any other kind of application.
    pub fn with_oauth2_mailbox(mut self, address: impl Into<String>) -> Result<Self, Error> {
        match &mut self.kind {
            ProviderKind::OAuth2 { mailbox, .. } => *mailbox = Some(address.into()),
            other => return Err(not_applicable("oauth2_mailbox", other)),
        }
        Ok(self)
    }

    /// Whether this is a plain OAuth 2.0 application (mailbox connections only).
    pub(crate) fn is_plain_oauth2(&self) -> bool {
        matches!(self.kind, ProviderKind::OAuth2 { .. })
    }

    /// Google only: the Workspace domains (`hd`) allowed to sign in.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NotApplicable`] on any other kind of application (Entra, OpenID Connect
    /// and plain OAuth 2.0 applications have no `hd` claim to check).
    pub fn with_allowed_hosted_domains<I, S>(mut self, domains: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        match &mut self.kind {
            ProviderKind::Google {
                allowed_hosted_domains,
            } => {
                *allowed_hosted_domains = domains
                    .into_iter()
                    .map(|d| d.into().to_ascii_lowercase())
                    .collect();
            }
            other => return Err(not_applicable("allowed_hosted_domains", other)),
        }
        Ok(self)
    }

    /// Scopes requested besides `openid email profile` (sign-in, unless
    /// [`with_scopes`](Self::with_scopes) gives the exact set, and mailbox connections).
    ///
    /// Not for plain OAuth 2.0 applications, whose scopes are given to [`oauth2`](Self::oauth2):
    /// [`problems`](Self::problems) lists it and
    /// [`configure_provider`](crate::Broker::configure_provider) refuses it
    /// ([`ConfigError::NotApplicable`]).
    pub fn with_extra_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The exact scope set of a sign-in (and link) request, in this order, replacing the
    /// default `openid email profile` and the [extra scopes](Self::with_extra_scopes).
    ///
    /// `openid` is required (an application without it is refused by
    /// [`configure_provider`](crate::Broker::configure_provider)); `profile` and `email` are
    /// optional (without `email` the account's email comes only from userinfo, if at all);
    /// other scopes are passed on as they are. Each scope must be an RFC 6749 scope token
    /// (printable ASCII, no space, `"` or `\`). Repeated scopes are sent once. Mailbox
    /// connections ([`LoginIntent::Connect`](crate::LoginIntent::Connect)) keep their own
    /// scopes. Not for plain OAuth 2.0 applications, which never sign in and whose scopes are
    /// given to [`oauth2`](Self::oauth2): [`problems`](Self::problems) lists it and
    /// [`configure_provider`](crate::Broker::configure_provider) refuses it
    /// ([`ConfigError::NotApplicable`]).
    ///
    /// ```
    /// use cx_sso::{ClientSecret, ProviderConfig, ProviderId};
    ///
    /// # fn main() -> Result<(), cx_sso::Error> {
    /// let google = ProviderConfig::google(
    ///     ProviderId::new("google")?,
    ///     "1234.apps.googleusercontent.com",
    ///     ClientSecret::new("GOCSPX-..."),
    /// )
    /// .with_scopes(["openid", "email"]);
    /// assert!(google.problems().is_empty());
    ///
    /// let without_openid = google.clone().with_scopes(["email", "profile"]);
    /// assert_eq!(without_openid.problems(), ["the scope set must include `openid`"]);
    /// # Ok(()) }
    /// ```
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set: Vec<String> = Vec::new();
        for scope in scopes {
            let scope = scope.into();
            if !set.contains(&scope) {
                set.push(scope);
            }
        }
        self.scopes = Some(set);
        self
    }

    /// Pins the algorithm of the provider's ID tokens (the `id_token_signed_response_alg` of
    /// the client registration): an ID token signed with any other algorithm is refused with
    /// [`IdTokenError::AlgorithmMismatch`](crate::IdTokenError::AlgorithmMismatch), even one
    /// the provider advertises. The connection check
    /// ([`configure_provider`](crate::Broker::configure_provider),
    /// [`test_connection`](crate::Broker::test_connection)) reports the application invalid
    /// when the provider's discovery document does not advertise the pinned algorithm.
    /// Without a pin, every algorithm the provider advertises among RS256, PS256, ES256 and
    /// EdDSA is accepted. Not for plain OAuth 2.0 applications (no ID tokens):
    /// [`problems`](Self::problems) lists it and
    /// [`configure_provider`](crate::Broker::configure_provider) refuses it
    /// ([`ConfigError::NotApplicable`]).
    pub fn with_id_token_signed_response_alg(mut self, alg: IdTokenAlgorithm) -> Self {
        self.id_token_signed_response_alg = Some(alg);
        self
    }

    /// How the client authenticates at the token endpoint (default `client_secret_basic`).
    pub fn with_auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.auth_method = method;
        self
    }

    /// How provider accounts that are not bound yet are handled on sign-in (default:
    /// invite-only, with linking on first sign-in).
    ///
    /// A policy other than the default on a plain OAuth 2.0 application (which never signs
    /// in), or `entra_verified_domains` on an application that is not Microsoft Entra, is
    /// listed by [`problems`](Self::problems) and refused by
    /// [`configure_provider`](crate::Broker::configure_provider)
    /// ([`ConfigError::NotApplicable`]).
    pub fn with_linking_policy(mut self, policy: LinkingPolicy) -> Self {
        self.linking = policy;
        self
    }

    /// The linking policy.
    pub fn linking_policy(&self) -> &LinkingPolicy {
        &self.linking
    }

    /// Whether a provider account may be bound only to the user whose login email it has, on
    /// every path that creates a binding (default: not required). See
    /// [`EmailMatch`](crate::EmailMatch).
    ///
    /// [`EmailMatch::Required`](crate::EmailMatch::Required) on a plain OAuth 2.0 application
    /// (which binds no account) is listed by [`problems`](Self::problems) and refused by
    /// [`configure_provider`](crate::Broker::configure_provider)
    /// ([`ConfigError::NotApplicable`]).
    pub fn with_email_match(mut self, rule: EmailMatch) -> Self {
        self.email_match = rule;
        self
    }

    /// The email-match rule.
    pub fn email_match(&self) -> EmailMatch {
        self.email_match
    }

    /// The application's id within the tenant.
    pub fn id(&self) -> &ProviderId {
        &self.id
    }

    /// The provider kind and its options.
    pub fn kind(&self) -> &ProviderKind {
        &self.kind
    }

    /// The OAuth client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The OAuth client secret.
    pub fn client_secret(&self) -> &ClientSecret {
        &self.client_secret
    }

    /// Extra scopes.
    pub fn extra_scopes(&self) -> &[String] {
        &self.extra_scopes
    }

    /// The exact sign-in scope set given with [`with_scopes`](Self::with_scopes); `None`
    /// means the default, `openid email profile` and the extra scopes.
    pub fn scopes(&self) -> Option<&[String]> {
        self.scopes.as_deref()
    }

    /// The pinned ID-token algorithm, if any
    /// ([`with_id_token_signed_response_alg`](Self::with_id_token_signed_response_alg)).
    pub fn id_token_signed_response_alg(&self) -> Option<IdTokenAlgorithm> {
        self.id_token_signed_response_alg
    }

    /// The token-endpoint client authentication method.
    pub fn auth_method(&self) -> ClientAuthMethod {
        self.auth_method
    }

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

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Google's scope for SMTP, IMAP and POP with XOAUTH2.
const GOOGLE_MAIL_SCOPE: &str = "https://mail.google.com/";

impl EntraTenancy {
    fn path_segment(&self) -> &str {
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

/// The result of [`Broker::test_connection`](crate::Broker::test_connection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCheck {
    /// Whether discovery was fetched and its issuer is the expected one.
    pub discovery: CheckResult,
    /// What the token endpoint said of the client credentials.
    pub secret: SecretCheck,
}

impl ConnectionCheck {
    /// Whether nothing is known to be wrong.
    pub fn is_ok(&self) -> bool {
        self.discovery == CheckResult::Ok && self.secret != SecretCheck::Rejected
    }

    /// Human-readable problems, empty when [`is_ok`](Self::is_ok).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let CheckResult::Failed(reason) = &self.discovery {
            out.push(format!("discovery failed: {reason}"));
        }
        if self.secret == SecretCheck::Rejected {
            out.push("the provider rejected the client id or secret (invalid_client)".to_owned());
        }
        out
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum CheckResult {
    /// The check passed.
    Ok,
    /// The check failed, with the reason.
    Failed(String),
}

/// What the provider's token endpoint said of the client credentials.
///
/// The check sends a deliberately invalid authorization code with the client's credentials:
/// `invalid_grant` means the credentials were accepted (and the code refused, as expected),
/// `invalid_client` means they were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretCheck {
    /// The provider accepted the client id and secret.
    Accepted,
    /// The provider rejected the client id or secret (`invalid_client`).
    Rejected,
    /// The provider's answer does not tell (or it could not be reached).
    Unknown,
}

/// The SSO status of a tenant, for the admin page and the login page warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoStatus {
    /// The tenant has no SSO application.
    NotConfigured,
    /// No application is usable; every reason is listed.
    Invalid(Vec<ProviderProblem>),
    /// These applications are usable. `problems` lists the others, if any.
    Ready {
        /// Usable applications.
        providers: Vec<ProviderId>,
        /// Problems of the applications that are not usable.
        problems: Vec<ProviderProblem>,
    },
}

/// The status of one SSO application, from its configuration and its last connection check
/// ([`Broker::provider_status`](crate::Broker::provider_status)): what a login page needs to
/// know before it offers the application, and what the admin page shows beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    /// The tenant has no application with this id.
    NotConfigured,
    /// The application is saved but not usable (its last check failed, or it was never
    /// checked); every reason is listed, in words an admin can act on. Logins through it are
    /// refused before any redirect ([`Error::ProviderInvalid`]).
    Invalid {
        /// What is wrong.
        reasons: Vec<String>,
    },
    /// The application passed its last check: logins may use it.
    Ready,
}

impl ProviderStatus {
    /// Whether logins may use the application.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }

    /// The reasons of [`Invalid`](Self::Invalid); empty otherwise.
    pub fn reasons(&self) -> &[String] {
        match self {
            Self::Invalid { reasons } => reasons,
            Self::NotConfigured | Self::Ready => &[],
        }
    }
}

/// What [`Broker::configure_provider`](crate::Broker::configure_provider) and
/// [`Broker::test_connection`](crate::Broker::test_connection) answer: the check just made,
/// and whether the saved application is now ready.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderReport {
    /// The application.
    pub provider: ProviderId,
    /// [`ProviderStatus::Ready`], or [`ProviderStatus::Invalid`] with every reason: the status
    /// [`Broker::provider_status`](crate::Broker::provider_status) reports from now on, and
    /// the one [`Broker::begin_login`](crate::Broker::begin_login) acts on.
    pub status: ProviderStatus,
    /// The connection check's details (discovery and client secret).
    pub check: ConnectionCheck,
}

impl ProviderReport {
    /// Whether the saved application is ready: logins may use it.
    pub fn is_ready(&self) -> bool {
        self.status.is_ready()
    }

    /// Why it is not ready (empty when it is).
    pub fn reasons(&self) -> &[String] {
        self.status.reasons()
    }
}

/// A problem with one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderProblem {
    /// The application.
    pub provider: ProviderId,
    /// What is wrong, in words an admin can act on.
    pub reason: String,
}

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

fn no_secret() -> ClientSecret {
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

    #[test]
    fn debug_has_no_secret() {
        let c = ProviderConfig::google(
            ProviderId::new("google").unwrap(),
            "cid",
            ClientSecret::new("s3cr3t-value"),
        );
        let tenant = TenantId::new("acme").unwrap();
        let s = StoredProvider::seal(None, &tenant, c.clone(), None).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

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

    #[test]
    fn plain_oauth2_applications_refuse_the_sign_in_options() {
        let c = ProviderConfig::oauth2(
            ProviderId::new("gmail").unwrap(),
            "https://accounts.google.com/o/oauth2/auth",
            "https://oauth2.googleapis.com/token",
            ["https://mail.google.com/"],
            "cid",
            ClientSecret::new("s"),
        )
        .with_scopes(["profile"])
        .with_id_token_signed_response_alg(IdTokenAlgorithm::Rs256);
        // Kept as given, and refused (never silently ignored).
        assert_eq!(c.scopes(), Some(&["profile".to_owned()][..]));
        assert_eq!(
            c.id_token_signed_response_alg(),
            Some(IdTokenAlgorithm::Rs256)
        );
        assert_eq!(
            c.problems(),
            [
                "`scopes` does not apply to oauth2 applications",
                "`id_token_signed_response_alg` does not apply to oauth2 applications",
            ]
        );
    }

    #[test]
    fn problems_are_all_reported() {
        let c = ProviderConfig::oidc(
            ProviderId::new("x").unwrap(),
            "http://idp.example.com",
            "",
            ClientSecret::new(""),
        );
        assert_eq!(c.problems().len(), 3, "{:?}", c.problems());
    }

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

//! An SSO application's configuration: the provider kinds and the builder. Its checks are in
//! [`check`], and what the protocol layer is given from it (discovery URL, credentials, scopes,
//! ID-token rules) in [`protocol`].

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Error};
use crate::ids::ProviderId;
use crate::secret::ClientSecret;

use super::entra::EntraTenancy;
use super::record::no_secret;
use super::{ClientAuthMethod, EmailMatch, IdTokenAlgorithm, LinkingPolicy};

const GOOGLE_ISSUER: &str = "https://accounts.google.com";

mod check;
mod protocol;

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
    pub(super) client_secret: ClientSecret,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;
    use crate::provider::StoredProvider;

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
}

//! Login: [`Broker::begin_login`] and [`Broker::complete_login`].

mod callback;
mod record;

pub use crate::route::CallbackRoute;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use crate::audit::AuditKind;
use crate::binding::{AccountBinding, account_name};
use crate::broker::{Broker, Inner};
use crate::crypto::{bound_key, hash_key, random_token};
use crate::error::{
    ConfigError, ConnectionError, Error, IdTokenError, PolicyError, StateError, TokenEndpointError,
    UserInfoError,
};
use crate::identity::ExternalIdentity;
use crate::ids::{ConnectionId, ProviderId, TenantId, UserId};
use crate::oauth::{IdClaims, ProviderMetadata};
use crate::oauth::{PkceVerifier, TokenClient, TokenResponse};
use crate::policy::SessionMethod;
use crate::provider::{ProviderConfig, ProviderKind};
use crate::secret::{BrowserBinding, LinkTicket};
use crate::store::records::{self, StoredRecord};

pub(crate) const NS_PENDING: &str = records::PENDING_LOGIN.name;

/// What a login is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LoginIntent {
    /// Sign in with a bound provider account (or link one on first use).
    SignIn,
    /// Bind a provider account to this (already signed-in) user, from their security settings.
    Link {
        /// The user who is binding an account.
        user: UserId,
    },
    /// Connect a mailbox (an admin's "Generate Token"): ask for offline access and the mail
    /// scopes, and store the tokens under this connection id. Never creates a session or a
    /// binding; the tenant's sign-in policy does not apply.
    Connect {
        /// The connection, such as a mailbox asset id.
        connection: ConnectionId,
    },
}

/// Options of [`Broker::begin_login`].
#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    return_to: Option<String>,
    login_hint: Option<String>,
}

impl LoginOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the host should send the user after the login: a relative path such as
    /// `/inbox?tab=2`. Anything else (`//evil.example`, `/\evil`, `https://...`, encoded or
    /// control-character variants) is replaced by `/`.
    pub fn return_to(mut self, path: impl Into<String>) -> Self {
        self.return_to = Some(path.into());
        self
    }

    /// A hint of which account to use (`login_hint`), such as the user's email.
    pub fn login_hint(mut self, hint: impl Into<String>) -> Self {
        self.login_hint = Some(hint.into());
        self
    }
}

/// What [`Broker::begin_login`] returns: where to send the browser, and the cookie to set.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginRedirect {
    /// The provider's authorization URL, with state, nonce and PKCE challenge.
    pub authorize_url: Url,
    /// The value to put in a cookie (HttpOnly, Secure, SameSite=Lax, short-lived) and hand
    /// back to [`Broker::complete_login`]; it binds the login to this browser.
    pub browser_binding: BrowserBinding,
    /// When the login stops being completable.
    pub expires_at: OffsetDateTime,
}

/// A login in flight.
///
/// Stored under [`pending_key`]`(state, browser binding)`, so that only the browser that began
/// the login can address (and so take) it; its index is the hash of the state alone, which
/// only tells a callback with the wrong cookie apart from an unknown state. Its stored form is
/// in `record.rs`.
#[derive(Clone)]
pub(crate) struct PendingLogin {
    pub(crate) tenant: TenantId,
    pub(crate) provider: ProviderId,
    pub(crate) intent: LoginIntent,
    pub(crate) pkce_verifier: PkceVerifier,
    pub(crate) nonce: String,
    pub(crate) return_to: String,
    pub(crate) redirect_uri: String,
    pub(crate) expires_at: OffsetDateTime,
    /// The tenant's policy epoch when the login began.
    pub(crate) policy_epoch: u64,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("tenant", &self.tenant)
            .field("provider", &self.provider)
            .field("intent", &self.intent)
            .field("return_to", &self.return_to)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a completed login means for the host.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LoginOutcome {
    /// The provider account is bound to `user`: sign them in.
    SignedIn {
        /// The tenant.
        tenant: TenantId,
        /// The host's user.
        user: UserId,
        /// The provider account.
        identity: ExternalIdentity,
        /// The session to keep with the host's own session.
        session: crate::session::SessionGrant,
        /// The sanitised relative path to go to.
        return_to: String,
    },
    /// The provider account is not bound yet. Ask the user to prove who they are (password),
    /// then call [`Broker::redeem_link_ticket`] with this ticket. The ticket is single-use and
    /// short-lived.
    LinkRequired {
        /// The tenant.
        tenant: TenantId,
        /// The ticket to redeem.
        ticket: LinkTicket,
        /// The provider account to be linked.
        identity: ExternalIdentity,
        /// The sanitised relative path to go to afterwards.
        return_to: String,
    },
    /// The provider account is now bound to the user who asked for it (intent `Link`).
    Linked {
        /// The tenant.
        tenant: TenantId,
        /// The user.
        user: UserId,
        /// The new binding.
        binding: AccountBinding,
        /// The sanitised relative path to go to.
        return_to: String,
    },
    /// The mailbox is connected (intent `Connect`); its tokens are stored, replacing any
    /// previous ones. Use [`Broker::access_token`] and [`Broker::xoauth2`].
    Connected {
        /// The tenant.
        tenant: TenantId,
        /// The connection.
        connection: ConnectionId,
        /// The application it was connected through.
        provider: ProviderId,
        /// The mailbox address.
        mailbox: String,
        /// When the current access token expires (it is refreshed on demand).
        valid_until: OffsetDateTime,
        /// The sanitised relative path to go to.
        return_to: String,
    },
}

/// Appends `name=value` to a URL being built, form-urlencoded. Values that need no encoding
/// (the random base64url ones) are copied as they are: encoding byte by byte was the largest
/// single cost of `begin_login`.
fn push_pair(out: &mut String, name: &str, value: &str) {
    if !(out.is_empty() || out.ends_with('?') || out.ends_with('&')) {
        out.push('&');
    }
    out.push_str(name);
    out.push('=');
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*'))
    {
        out.push_str(value);
    } else {
        out.extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
    }
}

/// The store key of a pending login: its state bound to the browser's cookie value.
fn pending_key(state: &str, browser_binding: &str) -> String {
    bound_key("cx-sso pending login v1", state, browser_binding)
}

/// Keeps `return_to` only if it is a plain relative path.
pub(crate) fn sanitize_return_to(raw: Option<&str>) -> String {
    fn safe(s: &str) -> bool {
        s.starts_with('/')
            && !s.starts_with("//")
            && !s.contains('\\')
            && !s.chars().any(|c| c.is_control() || c.is_whitespace())
    }
    let Some(raw) = raw else {
        return "/".to_owned();
    };
    if raw.len() > 2048 || !safe(raw) {
        return "/".to_owned();
    }
    // Check decoded forms too: `/%2F%2Fevil`, `/%5Cevil`, double encoding.
    let mut current = raw.to_owned();
    for _ in 0..3 {
        let decoded: String = percent_decode(&current);
        if !safe(&decoded) {
            return "/".to_owned();
        }
        if decoded == current {
            break;
        }
        current = decoded;
    }
    raw.to_owned()
}

/// Percent-decodes the whole string once, as a server decoding a path would: `+` stays `+`,
/// `&` and `=` are plain characters (a form decoder would stop at the first `&`, leaving the
/// rest unchecked), invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl Broker {
    /// The redirect URI to register at the provider for the tenant's application:
    /// `{public_base_url}/sso/callback/{provider}` by default, or the host's own
    /// [redirect path](crate::BrokerBuilder::redirect_path) with `{provider}` and `{tenant}`
    /// filled in. The tenant is needed only when the path has `{tenant}`; pass it always.
    pub fn redirect_uri(&self, tenant: &TenantId, provider: &ProviderId) -> String {
        self.inner.redirect_path.render(tenant, provider)
    }

    /// Starts a login: returns the provider URL to redirect to, and the browser-binding value
    /// to set as a cookie.
    ///
    /// The request carries PKCE (S256), a 256-bit random state and a nonce; the pending login
    /// is stored under the hash of its state and expires after the login TTL (10 minutes by
    /// default). The state ends in a tag naming the tenant and application, which
    /// [`complete_login`](Self::complete_login) compares with the route of the callback.
    ///
    /// **The SSO warning.** An application that is not configured, or whose last connection
    /// check failed (or never ran), is refused here, before any redirect:
    /// [`Error::NotConfigured`] or [`Error::ProviderInvalid`] with every reason, both of
    /// [`ErrorKind::NotConfigured`](crate::ErrorKind::NotConfigured), and
    /// [`Error::provider_status`] gives the [`ProviderStatus`](crate::ProviderStatus) to show.
    /// The status comes with the stored configuration: no network and no extra store read.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`] when the tenant has no such application,
    /// [`Error::ProviderInvalid`] when it is not usable, discovery errors when the provider
    /// cannot be reached, [`Error::Store`] when the store fails.
    pub async fn begin_login(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        intent: LoginIntent,
        options: LoginOptions,
    ) -> Result<LoginRedirect, Error> {
        let inner = &*self.inner;
        // One round trip for both records: see `provider_and_policy`.
        let (loaded, policy) = self.provider_and_policy(tenant, provider).await?;
        let loaded = loaded?;
        if let crate::provider::ProviderStatus::Invalid { reasons } = &loaded.status {
            return Err(Error::ProviderInvalid {
                tenant: tenant.to_string(),
                provider: provider.to_string(),
                reasons: reasons.clone(),
            });
        }
        let config = &loaded.config;
        let connect = matches!(intent, LoginIntent::Connect { .. });
        check_intent(config, connect)?;
        let policy = policy?;
        if intent == LoginIntent::SignIn && !Self::sso_sign_in_allowed(&policy, provider) {
            return Err(PolicyError::SsoNotAllowed.into());
        }
        let meta = self.loaded_provider_metadata(&loaded).await?;

        let mut state = random_token(32);
        state.push('.');
        state.push_str(&loaded.route_tag);
        let nonce = random_token(32);
        let (verifier, challenge) = crate::oauth::pkce_s256();
        let binding = random_token(32);
        let redirect_uri = self.redirect_uri(tenant, provider);
        let now = inner.clock.now();
        let expires_at = now + inner.options.login_ttl;

        // Only the query is built and parsed; the endpoint's scheme, host and path are taken as
        // they are (re-parsing the whole URL was a fifth of begin_login).
        let mut url = meta.authorization_endpoint.clone();
        let mut query = String::with_capacity(384);
        if let Some(existing) = url.query() {
            query.push_str(existing);
        }
        push_pair(&mut query, "response_type", "code");
        push_pair(&mut query, "client_id", config.client_id());
        push_pair(&mut query, "redirect_uri", &redirect_uri);
        let scope = if connect {
            config.connect_scopes()
        } else {
            config.login_scopes()
        };
        push_pair(&mut query, "scope", &scope);
        push_pair(&mut query, "state", &state);
        push_pair(&mut query, "nonce", &nonce);
        push_pair(&mut query, "code_challenge", challenge.as_str());
        push_pair(&mut query, "code_challenge_method", challenge.method());
        if let Some(hint) = &options.login_hint {
            push_pair(&mut query, "login_hint", hint);
        }
        if connect {
            for (k, v) in config.connect_parameters() {
                push_pair(&mut query, k, v);
            }
        }
        if let ProviderKind::Google {
            allowed_hosted_domains,
        } = config.kind()
            && !connect
            && let [only] = allowed_hosted_domains.as_slice()
        {
            push_pair(&mut query, "hd", only);
        }
        url.set_query(Some(&query));

        let pending = PendingLogin {
            tenant: tenant.clone(),
            provider: provider.clone(),
            intent,
            pkce_verifier: verifier,
            nonce,
            return_to: sanitize_return_to(options.return_to.as_deref()),
            redirect_uri,
            expires_at,
            policy_epoch: policy.epoch,
        };
        let inserted = inner
            .store
            .insert(
                NS_PENDING,
                &pending_key(&state, &binding),
                records::encode(&pending)?
                    .expires_at(expires_at)
                    .index(hash_key(&state)),
                now,
            )
            .await?;
        if inserted != crate::store::Inserted::Yes {
            // 256 random bits collided: the store is not behaving.
            return Err(crate::store::StoreError::unavailable("state collision").into());
        }
        Ok(LoginRedirect {
            authorize_url: url,
            browser_binding: BrowserBinding::new(binding),
            expires_at,
        })
    }

    /// Completes a login from the provider's redirect.
    ///
    /// `route` is the route that served the request (the application, and the tenant when the
    /// [redirect path](crate::BrokerBuilder::redirect_path) has `{tenant}` or the host knows
    /// it); `callback_query` is the query string of the request (with or without the leading
    /// `?`); `browser_binding` is the cookie set at [`begin_login`](Self::begin_login).
    ///
    /// A callback that belongs to a login for another application or tenant than `route` is
    /// refused ([`CallbackError::WrongRoute`](crate::CallbackError::WrongRoute)) before the
    /// login is looked up: it still completes at its own route. The pending login is stored
    /// under its state *and* the browser binding, and taken once: a replay finds nothing, and
    /// so does a callback with another cookie, which leaves the login in place for the browser
    /// that began it (refused with [`StateError::BrowserMismatch`], audited as
    /// [`AuditKind::SecurityRefusal`]). Then the RFC 9207 `iss` parameter, the code exchange
    /// and the ID token are checked. Nothing is stored and no outcome is given unless every
    /// check passes.
    ///
    /// [`AuditKind::SecurityRefusal`]: crate::AuditKind::SecurityRefusal
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the redirect path has `{tenant}` and `route` names none.
    /// A typed refusal for every failed check: [`Error::Callback`], [`Error::State`],
    /// [`Error::ProviderDenied`], [`Error::TokenEndpoint`], [`Error::IdToken`],
    /// [`Error::UserInfo`], [`Error::Binding`], or [`Error::Store`]/[`Error::Http`] when a
    /// service fails.
    pub async fn complete_login(
        &self,
        route: &CallbackRoute,
        callback_query: &str,
        browser_binding: &str,
    ) -> Result<LoginOutcome, Error> {
        let inner = &*self.inner;
        if inner.redirect_path.has_tenant() && route.tenant().is_none() {
            return Err(ConfigError::Invalid {
                what: "callback route",
                reason: "the redirect path has `{tenant}`: name the route's tenant".into(),
            }
            .into());
        }
        let callback = callback::parse(callback_query)?;
        route.check_state(&callback.state)?;
        let now = inner.clock.now();
        // The single atomic consume: only the right (state, cookie) pair addresses the record.
        let Some(pending) = records::take::<PendingLogin>(
            &*inner.store,
            &pending_key(&callback.state, browser_binding),
            now,
        )
        .await?
        else {
            return Err(self
                .refuse_unknown_state(&callback.state, now)
                .await?
                .into());
        };
        if pending.expires_at <= now {
            return Err(StateError::Unknown.into());
        }
        route.check_login(&pending.tenant, &pending.provider)?;

        let (loaded, policy) = self
            .provider_and_policy(&pending.tenant, &pending.provider)
            .await?;
        let config = loaded?.config.clone();
        let connect = matches!(pending.intent, LoginIntent::Connect { .. });
        check_intent(&config, connect)?;
        let policy = policy?;
        if policy.epoch != pending.policy_epoch {
            return Err(StateError::PolicyChanged.into());
        }
        if pending.intent == LoginIntent::SignIn
            && !Self::sso_sign_in_allowed(&policy, &pending.provider)
        {
            return Err(PolicyError::SsoNotAllowed.into());
        }
        let meta = self.provider_metadata(&config).await?;

        // RFC 9207: the authorization response's issuer.
        // A plain OAuth 2.0 application has no issuer to compare with: the per-application
        // redirect URI is its mix-up defence (RFC 9207 §1).
        let iss_ok = match &callback.iss {
            _ if config.is_plain_oauth2() => true,
            // RFC 9207: the authorization server's issuer identifier, as in its metadata (the
            // `{tenantid}` template for a multi-tenant Entra application).
            Some(iss) => *iss == meta.issuer,
            None => !meta.iss_parameter_supported,
        };
        if !iss_ok {
            return Err(self.security_refusal(&pending, StateError::IssuerMismatch.into()));
        }

        let code = match callback.result {
            callback::CallbackResult::Error { error, description } => {
                return Err(Error::ProviderDenied { error, description });
            }
            callback::CallbackResult::Code(code) => code,
        };

        let tokens = TokenClient::new(&inner.oauth_env(), config.credentials())
            .exchange_code(
                &meta.token_endpoint,
                &code,
                &pending.redirect_uri,
                &pending.pkce_verifier,
            )
            .await?;
        if connect {
            return self
                .finish_connect(pending, &config, &meta, tokens, callback.iss.as_deref())
                .await;
        }
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or(TokenEndpointError::MissingIdToken)?;
        let mut claims = self
            .verify_id_token(
                &config,
                &meta,
                id_token,
                &pending.nonce,
                tokens.access_token.secret(),
            )
            .await
            .map_err(|e| self.security_refusal(&pending, e))?;
        if (claims.email.is_none() || claims.name.is_none())
            && let Some(userinfo) = &meta.userinfo_endpoint
        {
            fill_from_userinfo(inner, userinfo, &tokens.access_token, &mut claims).await?;
        }
        let identity = identity_from(&config, claims);
        self.finish_login(pending, &config, &policy, identity).await
    }

    /// The tenant's application and its policy in force, read in one round trip
    /// ([`Store::get_many`](crate::store::Store::get_many)): a login needs both. Each is
    /// decoded on its own, so the caller reports a missing or broken application before
    /// looking at the policy, as when they were read one after the other.
    #[allow(clippy::type_complexity)]
    pub(crate) async fn provider_and_policy(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<
        (
            Result<std::sync::Arc<crate::provider::LoadedProvider>, Error>,
            Result<std::sync::Arc<crate::policy::PolicyRecord>, Error>,
        ),
        Error,
    > {
        let (provider_ns, provider_key) = Self::provider_address(tenant, provider);
        let (policy_ns, policy_key) = Self::policy_address(tenant);
        let mut records = self
            .inner
            .store
            .get_many(
                &[(provider_ns, &provider_key), (policy_ns, policy_key)],
                self.inner.clock.now(),
            )
            .await?
            .into_iter();
        let (Some(app), Some(policy), None) = (records.next(), records.next(), records.next())
        else {
            return Err(crate::store::StoreError::unavailable(
                "get_many answered another number of records than asked",
            )
            .into());
        };
        Ok((
            self.loaded_provider_from(tenant, provider, &provider_key, app),
            self.effective_policy_from(tenant, policy),
        ))
    }

    /// Why no pending login answered `state` with the cookie given: another browser's login
    /// (audited; left in place) or none at all. Only the answer's type differs; both are the
    /// same [`ErrorKind`](crate::ErrorKind), so the page a forger sees says nothing about the
    /// login, and nothing in it depends on the cookie's value.
    async fn refuse_unknown_state(
        &self,
        state: &str,
        now: OffsetDateTime,
    ) -> Result<StateError, Error> {
        let live = self
            .inner
            .store
            .list(NS_PENDING, &hash_key(state), now)
            .await?;
        let Some((_, record)) = live.first() else {
            return Ok(StateError::Unknown);
        };
        if let Ok(pending) = PendingLogin::from_bytes(&record.value) {
            self.audit(
                &pending.tenant,
                "browser",
                &format!("provider:{}", pending.provider),
                AuditKind::SecurityRefusal,
                "login.browser_mismatch",
            );
        }
        Ok(StateError::BrowserMismatch)
    }

    /// Audits `e` as an [`AuditKind::SecurityRefusal`] when it is one (actor `browser`, the
    /// sender of the callback; subject the application), and hands it back.
    fn security_refusal(&self, pending: &PendingLogin, e: Error) -> Error {
        let rule = match &e {
            Error::State(StateError::IssuerMismatch) => "login.iss_mismatch",
            Error::IdToken(IdTokenError::NonceMismatch) => "login.nonce_mismatch",
            Error::IdToken(IdTokenError::AtHashMismatch) => "login.at_hash_mismatch",
            _ => return e,
        };
        self.audit(
            &pending.tenant,
            "browser",
            &format!("provider:{}", pending.provider),
            AuditKind::SecurityRefusal,
            rule,
        );
        e
    }

    async fn finish_login(
        &self,
        pending: PendingLogin,
        config: &ProviderConfig,
        policy: &crate::policy::PolicyRecord,
        identity: ExternalIdentity,
    ) -> Result<LoginOutcome, Error> {
        let PendingLogin {
            tenant,
            provider,
            intent,
            return_to,
            ..
        } = pending;
        match intent {
            LoginIntent::SignIn => {
                let user = match self.binding_for(&tenant, &identity).await? {
                    Some(binding) => binding.user,
                    None => match self.auto_link(&tenant, config, &identity).await? {
                        Some(user) => user,
                        None => {
                            if !config.linking_policy().link_on_first_login() {
                                self.audit(
                                    &tenant,
                                    &format!("provider:{provider}"),
                                    &account_name(&identity),
                                    AuditKind::SignInRefused,
                                    "invite_only.linking_disabled",
                                );
                                return Err(PolicyError::NotLinked.into());
                            }
                            let ticket = self
                                .issue_link_ticket(&tenant, config, &identity, policy.epoch)
                                .await?;
                            return Ok(LoginOutcome::LinkRequired {
                                tenant,
                                ticket,
                                identity,
                                return_to,
                            });
                        }
                    },
                };
                // A binding outlives the host disabling the user: ask before granting.
                if !self.inner.directory.is_active(&tenant, &user).await? {
                    self.audit(
                        &tenant,
                        &format!("provider:{provider}"),
                        user.as_str(),
                        AuditKind::SignInRefused,
                        "user_inactive",
                    );
                    return Err(crate::error::BindingError::UserInactive.into());
                }
                let session = self
                    .grant_session(policy, &tenant, &user, SessionMethod::Sso { provider })
                    .await?;
                Ok(LoginOutcome::SignedIn {
                    tenant,
                    user,
                    identity,
                    session,
                    return_to,
                })
            }
            LoginIntent::Link { user } => {
                let binding = self
                    .bind(&tenant, config, &user, &identity, "settings")
                    .await?;
                Ok(LoginOutcome::Linked {
                    tenant,
                    user,
                    binding,
                    return_to,
                })
            }
            // Handled by `finish_connect` before any identity is built.
            LoginIntent::Connect { .. } => Err(ConfigError::Invalid {
                what: "login intent",
                reason: "a connect login does not sign in".into(),
            }
            .into()),
        }
    }

    /// Verifies an ID token of `config` (its keys through the metadata cache), returning its
    /// claims.
    async fn verify_id_token(
        &self,
        config: &ProviderConfig,
        meta: &ProviderMetadata,
        id_token: &str,
        nonce: &str,
        access_token: &str,
    ) -> Result<IdClaims, Error> {
        let source = config.metadata_source()?;
        crate::oauth::verify(
            &self.inner.oauth_env(),
            &self.inner.metadata,
            &source,
            &config.id_token_rules(),
            meta,
            id_token,
            nonce,
            access_token,
        )
        .await
    }

    /// Intent `Connect`: learn the mailbox address and store the tokens. No session, no
    /// binding.
    async fn finish_connect(
        &self,
        pending: PendingLogin,
        config: &ProviderConfig,
        meta: &ProviderMetadata,
        tokens: TokenResponse,
        callback_iss: Option<&str>,
    ) -> Result<LoginOutcome, Error> {
        let inner = &*self.inner;
        let LoginIntent::Connect { connection } = &pending.intent else {
            return Err(ConfigError::Invalid {
                what: "login intent",
                reason: "not a connect login".into(),
            }
            .into());
        };
        let refresh_token = tokens
            .refresh_token
            .as_ref()
            .ok_or(ConnectionError::NoRefreshToken)?;
        // The verified ID token's `sub`, kept so that a refreshed ID token can be held to it.
        let mut subject = None;
        let mailbox = match config.kind() {
            ProviderKind::OAuth2 {
                mailbox: Some(m), ..
            } => Some(m.clone()),
            ProviderKind::OAuth2 { .. } => match &meta.userinfo_endpoint {
                Some(endpoint) => {
                    crate::oauth::fetch_userinfo(&inner.oauth_env(), endpoint, &tokens.access_token)
                        .await?
                        .email
                }
                None => None,
            },
            _ => {
                // OpenID: the verified ID token's email, else userinfo's.
                let mut email = None;
                if let Some(id_token) = tokens.id_token.as_deref() {
                    let claims = self
                        .verify_id_token(
                            config,
                            meta,
                            id_token,
                            &pending.nonce,
                            tokens.access_token.secret(),
                        )
                        .await
                        .map_err(|e| self.security_refusal(&pending, e))?;
                    if callback_iss.is_some_and(|iss| iss != claims.iss) {
                        return Err(
                            self.security_refusal(&pending, StateError::IssuerMismatch.into())
                        );
                    }
                    email = claims.email;
                    subject = Some(claims.sub);
                }
                match (email, &meta.userinfo_endpoint) {
                    (Some(e), _) => Some(e),
                    (None, Some(endpoint)) => {
                        crate::oauth::fetch_userinfo(
                            &inner.oauth_env(),
                            endpoint,
                            &tokens.access_token,
                        )
                        .await?
                        .email
                    }
                    (None, None) => None,
                }
            }
        };
        let mailbox = mailbox.ok_or(ConnectionError::NoMailbox)?;
        crate::identity::check_mailbox(&mailbox)?;
        let requested = config.connect_scopes();
        let valid_until = self
            .store_connection(crate::connection::NewConnection {
                tenant: &pending.tenant,
                connection,
                provider: &pending.provider,
                mailbox: mailbox.clone(),
                subject,
                access_token: &tokens.access_token,
                refresh_token,
                expires_in: tokens.expires_in,
                scope: tokens.scope.as_deref(),
                requested_scopes: &requested,
            })
            .await?;
        self.audit(
            &pending.tenant,
            &format!("provider:{}", pending.provider),
            connection.as_str(),
            AuditKind::ConnectionConnected,
            "connect.offline_consent",
        );
        Ok(LoginOutcome::Connected {
            tenant: pending.tenant.clone(),
            connection: connection.clone(),
            provider: pending.provider.clone(),
            mailbox,
            valid_until,
            return_to: pending.return_to.clone(),
        })
    }
}

/// Plain OAuth 2.0 applications only connect mailboxes; they cannot sign anyone in.
fn check_intent(config: &ProviderConfig, connect: bool) -> Result<(), Error> {
    if config.is_plain_oauth2() && !connect {
        return Err(ConfigError::Invalid {
            what: "provider",
            reason: "plain OAuth 2.0 applications can only connect mailboxes".into(),
        }
        .into());
    }
    Ok(())
}

fn identity_from(config: &ProviderConfig, c: IdClaims) -> ExternalIdentity {
    let subject = match (config.kind(), &c.oid) {
        (ProviderKind::Microsoft { .. }, Some(oid)) => oid.clone(),
        _ => c.sub.clone(),
    };
    ExternalIdentity {
        issuer: c.iss,
        subject,
        email: c.email,
        email_verified: c.email_verified.unwrap_or(false),
        name: c.name,
        hosted_domain: c.hd,
        entra_tenant_id: c.tid,
        email_domain_verified: c.xms_edov,
    }
}

async fn fill_from_userinfo(
    inner: &Inner,
    endpoint: &Url,
    access_token: &crate::secret::AccessToken,
    claims: &mut IdClaims,
) -> Result<(), Error> {
    let info = crate::oauth::fetch_userinfo(&inner.oauth_env(), endpoint, access_token).await?;
    if info.sub.as_deref() != Some(claims.sub.as_str()) {
        return Err(match info.sub {
            None => UserInfoError::MissingSubject,
            Some(_) => UserInfoError::SubjectMismatch,
        }
        .into());
    }
    if claims.email.is_none() {
        claims.email = info.email;
        // Entra's `xms_edov` vouches for the email of the ID token, not for one from userinfo.
        claims.xms_edov = None;
        claims.email_verified = match info.email_verified {
            Some(serde_json::Value::Bool(b)) => Some(b),
            Some(serde_json::Value::String(s)) if s == "true" => Some(true),
            _ => Some(false),
        };
    }
    if claims.name.is_none() {
        claims.name = info.name;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sanitize_return_to as s;

    #[test]
    fn pairs_are_form_urlencoded() {
        let mut q = String::from("https://idp/authorize?");
        super::push_pair(&mut q, "state", "abc-_.*XYZ09");
        super::push_pair(&mut q, "scope", "openid email https://mail.google.com/");
        super::push_pair(&mut q, "hint", "a+b@c é&d=e");
        assert_eq!(
            q,
            "https://idp/authorize?state=abc-_.*XYZ09\
             &scope=openid+email+https%3A%2F%2Fmail.google.com%2F\
             &hint=a%2Bb%40c+%C3%A9%26d%3De"
        );
        let url = url::Url::parse(&q).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs[2].1, "a+b@c é&d=e");
    }

    #[test]
    fn return_to_only_relative_paths() {
        assert_eq!(s(Some("/inbox?tab=2")), "/inbox?tab=2");
        assert_eq!(s(None), "/");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "/%5Cevil.example",
            "/%252F%252Fevil.example",
            "/x&/%5Cevil.example",
            "/x&y=1&%255C",
            "/\t/evil.example",
            "evil",
            "",
        ] {
            assert_eq!(s(Some(bad)), "/", "{bad}");
        }
    }
}

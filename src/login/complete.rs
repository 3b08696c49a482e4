//! Completing a login from the callback: the pending login taken once, the RFC 9207 issuer,
//! the code exchange and the ID token checked, then the outcome of the intent (a session, a
//! link ticket, a new binding or a connected mailbox).

use time::OffsetDateTime;
use url::Url;

use crate::audit::AuditKind;
use crate::binding::account_name;
use crate::context::Context;
use crate::crypto::hash_key;
use crate::error::{
    ConfigError, ConnectionError, Error, IdTokenError, PolicyError, StateError, TokenEndpointError,
    UserInfoError,
};
use crate::identity::ExternalIdentity;
use crate::oauth::{IdClaims, ProviderMetadata};
use crate::oauth::{TokenClient, TokenResponse};
use crate::policy::{Policies, SessionMethod};
use crate::provider::{ProviderConfig, ProviderKind};
use crate::store::records::{self, StoredRecord};

use super::callback;
use super::pending::{NS_PENDING, PendingLogin, pending_key};
use super::{CallbackRoute, LoginIntent, LoginOutcome, Logins, check_intent};

impl Logins {
    /// The work of `Broker::complete_login`, whose docs say what it does.
    pub(crate) async fn complete_login(
        &self,
        route: &CallbackRoute,
        callback_query: &str,
        browser_binding: &str,
    ) -> Result<LoginOutcome, Error> {
        let inner = &*self.cx;
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
            .policies
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
            && !Policies::sso_sign_in_allowed(&policy, &pending.provider)
        {
            return Err(PolicyError::SsoNotAllowed.into());
        }
        let meta = self.providers.provider_metadata(&config).await?;

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
            .cx
            .store
            .list(NS_PENDING, &hash_key(state), now)
            .await?;
        let Some((_, record)) = live.first() else {
            return Ok(StateError::Unknown);
        };
        if let Ok(pending) = PendingLogin::from_bytes(&record.value) {
            self.cx.audit(
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
        self.cx.audit(
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
                let user = match self.bindings.binding_for(&tenant, &identity).await? {
                    Some(binding) => binding.user,
                    None => match self.bindings.auto_link(&tenant, config, &identity).await? {
                        Some(user) => user,
                        None => {
                            if !config.linking_policy().link_on_first_login() {
                                self.cx.audit(
                                    &tenant,
                                    &format!("provider:{provider}"),
                                    &account_name(&identity),
                                    AuditKind::SignInRefused,
                                    "invite_only.linking_disabled",
                                );
                                return Err(PolicyError::NotLinked.into());
                            }
                            let ticket = self
                                .bindings
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
                if !self.cx.directory.is_active(&tenant, &user).await? {
                    self.cx.audit(
                        &tenant,
                        &format!("provider:{provider}"),
                        user.as_str(),
                        AuditKind::SignInRefused,
                        "user_inactive",
                    );
                    return Err(crate::error::BindingError::UserInactive.into());
                }
                let session = self
                    .sessions
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
                    .bindings
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
            &self.cx.oauth_env(),
            &self.cx.metadata,
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
        let inner = &*self.cx;
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
            .connections
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
        self.cx.audit(
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
    inner: &Context,
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

//! Login: [`Broker::begin_login`](crate::Broker::begin_login) and
//! [`Broker::complete_login`](crate::Broker::complete_login).
//!
//! # Source layout
//!
//! `mod.rs` (the public types of a login, the service, and the read of the application with
//! the policy that both halves make), `begin.rs` (the authorization URL and the pending login),
//! `pending.rs` (the pending login and its store key), `record.rs` (its stored form: compact
//! binary, format 1 still read), `callback.rs` (parsing the callback's query), `complete.rs` (the checks of the callback and the outcome of each
//! intent).

mod begin;
mod callback;
mod complete;
mod pending;
mod record;

pub use crate::route::CallbackRoute;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use url::Url;

use crate::binding::{AccountBinding, Bindings};
use crate::connection::Connections;
use crate::context::Context;
use crate::error::{ConfigError, Error};
use crate::identity::ExternalIdentity;
use crate::ids::{ConnectionId, ProviderId, TenantId, UserId};
use crate::policy::Policies;
use crate::provider::{ProviderConfig, Providers};
use crate::secret::{BrowserBinding, LinkTicket};
use crate::session::Sessions;

/// The login capability: begin a login at a provider, and complete it from the callback.
pub(crate) struct Logins {
    cx: Arc<Context>,
    providers: Arc<Providers>,
    policies: Arc<Policies>,
    bindings: Arc<Bindings>,
    sessions: Arc<Sessions>,
    connections: Arc<Connections>,
    /// How long a begun login may take.
    login_ttl: Duration,
}

/// Its own state only: the context and the services it calls are shown by the broker.
impl std::fmt::Debug for Logins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logins")
            .field("login_ttl", &self.login_ttl)
            .finish_non_exhaustive()
    }
}

impl Logins {
    pub(crate) fn new(
        cx: Arc<Context>,
        providers: Arc<Providers>,
        policies: Arc<Policies>,
        bindings: Arc<Bindings>,
        sessions: Arc<Sessions>,
        connections: Arc<Connections>,
        login_ttl: Duration,
    ) -> Self {
        Self {
            cx,
            providers,
            policies,
            bindings,
            sessions,
            connections,
            login_ttl,
        }
    }
}

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

/// Options of [`Broker::begin_login`](crate::Broker::begin_login).
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

/// What [`Broker::begin_login`](crate::Broker::begin_login) returns: where to send the browser, and
/// the cookie to set.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginRedirect {
    /// The provider's authorization URL, with state, nonce and PKCE challenge.
    pub authorize_url: Url,
    /// The value to put in a cookie (HttpOnly, Secure, SameSite=Lax, short-lived) and hand back to
    /// [`Broker::complete_login`](crate::Broker::complete_login); it binds the login to this
    /// browser.
    pub browser_binding: BrowserBinding,
    /// When the login stops being completable.
    pub expires_at: OffsetDateTime,
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
    /// The provider account is not bound yet. Ask the user to prove who they are (password), then
    /// call [`Broker::redeem_link_ticket`](crate::Broker::redeem_link_ticket) with this ticket. The
    /// ticket is single-use and short-lived.
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
    /// The mailbox is connected (intent `Connect`); its tokens are stored, replacing any previous
    /// ones. Use [`Broker::access_token`](crate::Broker::access_token) and
    /// [`Broker::xoauth2`](crate::Broker::xoauth2).
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

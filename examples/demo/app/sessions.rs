//! The platform's own sessions, server-side, behind an HttpOnly cookie. A signed-in session
//! keeps the [`SessionGrant`] cx-sso gave, checked on every request.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cx_sso::{LinkTicket, ProviderId, SessionGrant, UserId};
use http::HeaderMap;
use http::header::COOKIE;

pub const COOKIE_NAME: &str = "demo_session";

/// A message shown once on the next page.
#[derive(Debug, Clone)]
pub enum Flash {
    Ok(String),
    Error(String),
}

#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserId,
    pub grant: SessionGrant,
    /// How they signed in, for the header ("password", "Development provider").
    pub via: String,
}

/// A first SSO sign-in with an account that is not linked yet.
#[derive(Debug, Clone)]
pub struct PendingLink {
    pub ticket: LinkTicket,
    pub provider: ProviderId,
    /// The provider account, as the page names it (its email, else its subject).
    pub account: String,
    pub return_to: String,
}

#[derive(Debug, Clone, Default)]
pub struct SessionData {
    pub signed_in: Option<SignedIn>,
    pub pending_link: Option<PendingLink>,
    pub flash: Option<Flash>,
}

#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, SessionData>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionData>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session id in the request's cookie, if it names a live session.
    pub fn id(&self, headers: &HeaderMap) -> Option<String> {
        let id = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE_NAME)
            .map(|(_, value)| value.to_owned())?;
        self.lock().contains_key(&id).then_some(id)
    }

    pub fn get(&self, id: &str) -> SessionData {
        self.lock().get(id).cloned().unwrap_or_default()
    }

    /// Changes the session `id`, or a new one; returns its id and whether it is new (then the
    /// response must set the cookie).
    pub fn update(
        &self,
        id: Option<&str>,
        change: impl FnOnce(&mut SessionData),
    ) -> (String, bool) {
        let mut map = self.lock();
        if let Some(id) = id
            && let Some(data) = map.get_mut(id)
        {
            change(data);
            return (id.to_owned(), false);
        }
        let id = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let mut data = SessionData::default();
        change(&mut data);
        map.insert(id.clone(), data);
        (id, true)
    }

    /// Takes the flash message of the session.
    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        self.lock().get_mut(id).and_then(|d| d.flash.take())
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The `Set-Cookie` value of a session (no `Secure`: the demo is served over http on loopback).
pub fn cookie(id: &str) -> String {
    format!("{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Lax")
}

pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
}

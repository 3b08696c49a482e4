//! Beginning a login: the authorization URL (state, nonce, PKCE, the scopes of the intent) and
//! the pending-login record, and the `return_to` kept for after the callback.

use crate::crypto::{hash_key, random_token};
use crate::error::{Error, PolicyError};
use crate::ids::{ProviderId, TenantId};
use crate::policy::Policies;
use crate::provider::ProviderKind;
use crate::secret::BrowserBinding;
use crate::store::records::{self};

use super::pending::{NS_PENDING, PendingLogin, pending_key};
use super::{LoginIntent, LoginOptions, LoginRedirect, Logins, check_intent};

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

impl Logins {
    /// The work of `Broker::begin_login`, whose docs say what it does.
    pub(crate) async fn begin_login(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
        intent: LoginIntent,
        options: LoginOptions,
    ) -> Result<LoginRedirect, Error> {
        let inner = &*self.cx;
        // One round trip for both records: see `provider_and_policy`.
        let (loaded, policy) = self.policies.provider_and_policy(tenant, provider).await?;
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
        if intent == LoginIntent::SignIn && !Policies::sso_sign_in_allowed(&policy, provider) {
            return Err(PolicyError::SsoNotAllowed.into());
        }
        let meta = self.providers.loaded_provider_metadata(&loaded).await?;

        let mut state = random_token(32);
        state.push('.');
        state.push_str(&loaded.route_tag);
        let nonce = random_token(32);
        let (verifier, challenge) = crate::oauth::pkce_s256();
        let binding = random_token(32);
        let redirect_uri = self.cx.redirect_uri(tenant, provider);
        let now = inner.clock.now();
        let expires_at = now + self.login_ttl;

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
        if !matches!(inserted, crate::store::Inserted::Yes { .. }) {
            // 256 random bits collided: the store is not behaving.
            return Err(crate::store::StoreError::unavailable("state collision").into());
        }
        Ok(LoginRedirect {
            authorize_url: url,
            browser_binding: BrowserBinding::new(binding),
            expires_at,
        })
    }
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

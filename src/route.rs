//! The host's routes: the redirect-URI path template, and the check that a callback reached
//! the route of the login it completes.
//!
//! Every state [`begin_login`](crate::Broker::begin_login) issues ends in a tag naming the
//! login's application and tenant (`{random}.{tag}`, the tag a truncated SHA-256 of each id,
//! not a secret). [`complete_login`](crate::Broker::complete_login) compares it with the
//! [`CallbackRoute`] the host served *before* it looks the state up, so a callback delivered
//! to another tenant's or application's route is refused without consuming the login, which
//! still completes at its own route. Changing the tag changes the state, whose hash is the
//! store key: a forged tag finds nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::{CallbackError, ConfigError, Error};
use crate::ids::{ProviderId, TenantId};

/// The redirect path when the host names none.
pub(crate) const DEFAULT_REDIRECT_PATH: &str = "/sso/callback/{provider}";

/// The longest redirect path template accepted.
const MAX_TEMPLATE_LEN: usize = 512;

/// Bytes of SHA-256 kept per id in a route tag.
const TAG_BYTES: usize = 8;
/// Base64url characters of one id's part of a route tag.
const TAG_CHARS: usize = 11;

/// The route a callback request was served at, as the host's router saw it: the application
/// (`{provider}` of the redirect path) and, when the path has one or the host knows it
/// otherwise, the tenant (`{tenant}`). Given to [`Broker::complete_login`](crate::Broker::complete_login),
/// which refuses a callback that belongs to a login for another application or tenant
/// ([`CallbackError::WrongRoute`]) without consuming that login.
///
/// ```
/// use cx_sso::{CallbackRoute, ProviderId, TenantId};
///
/// # fn main() -> Result<(), cx_sso::Error> {
/// // GET /sso/callback/google?code=...&state=...   (the default redirect path)
/// let route = CallbackRoute::new(ProviderId::new("google")?);
/// // GET /t/acme/auth/office365/callback?...       (redirect path "/t/{tenant}/auth/{provider}/callback")
/// let route = CallbackRoute::new(ProviderId::new("office365")?).with_tenant(TenantId::new("acme")?);
/// # let _ = route; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRoute {
    provider: ProviderId,
    tenant: Option<TenantId>,
}

impl CallbackRoute {
    /// The route of `provider`'s callback.
    pub fn new(provider: ProviderId) -> Self {
        Self {
            provider,
            tenant: None,
        }
    }

    /// The tenant the route names. Required when the redirect path has `{tenant}`; checked
    /// whenever it is given.
    pub fn with_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// The application.
    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }

    /// The tenant, when given.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// Refuses a state whose tag names another application or tenant. A state without a tag
    /// (issued before tags existed) is left to the check after the lookup.
    pub(crate) fn check_state(&self, state: &str) -> Result<(), Error> {
        let Some((_, tag)) = state.rsplit_once('.') else {
            return Ok(());
        };
        let (provider_part, tenant_part) = tag.split_at_checked(TAG_CHARS).unwrap_or((tag, ""));
        if provider_part != tag_part("provider", self.provider.as_str()) {
            return Err(CallbackError::WrongRoute.into());
        }
        if let Some(tenant) = &self.tenant
            && tenant_part != tag_part("tenant", tenant.as_str())
        {
            return Err(CallbackError::WrongRoute.into());
        }
        Ok(())
    }

    /// Refuses a login (found by its state) begun for another application or tenant.
    pub(crate) fn check_login(
        &self,
        tenant: &TenantId,
        provider: &ProviderId,
    ) -> Result<(), Error> {
        if *provider != self.provider || self.tenant.as_ref().is_some_and(|t| t != tenant) {
            return Err(CallbackError::WrongRoute.into());
        }
        Ok(())
    }
}

/// The tag of the states of logins through (`tenant`, `provider`): 22 base64url characters.
pub(crate) fn route_tag(tenant: &TenantId, provider: &ProviderId) -> String {
    let mut tag = tag_part("provider", provider.as_str());
    tag.push_str(&tag_part("tenant", tenant.as_str()));
    tag
}

fn tag_part(domain: &str, id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"cx-sso route ");
    h.update(domain.as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    let digest = h.finalize();
    URL_SAFE_NO_PAD.encode(digest.get(..TAG_BYTES).unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Provider,
    Tenant,
}

/// A validated redirect path template, already joined to the public base URL.
#[derive(Debug, Clone)]
pub(crate) struct RedirectPath {
    /// The first literal starts with the base URL.
    parts: Vec<Part>,
    has_tenant: bool,
    literal_len: usize,
}

impl RedirectPath {
    /// Validates `template` (see [`BrokerBuilder::redirect_path`](crate::BrokerBuilder::redirect_path))
    /// and joins it to `base`, whose path ends with `/`.
    pub(crate) fn parse(base: &Url, template: &str) -> Result<Self, Error> {
        let invalid = |reason: String| -> Error {
            ConfigError::Invalid {
                what: "redirect_path",
                reason,
            }
            .into()
        };
        if template.is_empty() || template.len() > MAX_TEMPLATE_LEN {
            return Err(invalid(format!(
                "must be 1 to {MAX_TEMPLATE_LEN} characters"
            )));
        }
        let Some(relative) = template.strip_prefix('/') else {
            return Err(invalid("must be a path starting with `/`".into()));
        };
        if template.contains("//") {
            return Err(invalid("must not hold an empty segment (`//`)".into()));
        }
        let mut parts = Vec::new();
        let mut literal = base.as_str().to_owned();
        let (mut providers, mut tenants) = (0, 0);
        let mut rest = relative;
        while let Some(c) = rest.chars().next() {
            match c {
                '{' => {
                    let Some(end) = rest.find('}') else {
                        return Err(invalid("a `{` is not closed".into()));
                    };
                    let name = rest.get(1..end).unwrap_or_default();
                    let part = match name {
                        "provider" => {
                            providers += 1;
                            Part::Provider
                        }
                        "tenant" => {
                            tenants += 1;
                            Part::Tenant
                        }
                        _ => {
                            let shown: String = name
                                .chars()
                                .filter(|c| c.is_ascii_graphic())
                                .take(32)
                                .collect();
                            return Err(invalid(format!(
                                "unknown placeholder `{{{shown}}}`: only `{{provider}}` and \
                                 `{{tenant}}` are known"
                            )));
                        }
                    };
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                    parts.push(part);
                    rest = rest.get(end + 1..).unwrap_or_default();
                }
                '}' => return Err(invalid("a `}` has no `{`".into())),
                '%' => {
                    let hex = rest.get(1..3).unwrap_or_default();
                    if hex.len() != 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(invalid("a `%` is not followed by two hex digits".into()));
                    }
                    literal.push('%');
                    literal.push_str(hex);
                    rest = rest.get(3..).unwrap_or_default();
                }
                c if c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/".contains(c) => {
                    literal.push(c);
                    rest = rest.get(1..).unwrap_or_default();
                }
                '?' | '#' => {
                    return Err(invalid(
                        "must be a path only: no query (`?`) or fragment (`#`)".into(),
                    ));
                }
                _ => {
                    return Err(invalid(
                        "holds a character not allowed in a URL path (percent-encode it)".into(),
                    ));
                }
            }
        }
        parts.push(Part::Literal(literal));
        if providers != 1 {
            return Err(invalid(if providers == 0 {
                "must contain `{provider}`".into()
            } else {
                "must contain `{provider}` once".into()
            }));
        }
        if tenants > 1 {
            return Err(invalid("must contain `{tenant}` at most once".into()));
        }
        for segment in relative.split('/') {
            let s = segment.to_ascii_lowercase().replace("%2e", ".");
            if s == "." || s == ".." {
                return Err(invalid("must not hold a `.` or `..` segment".into()));
            }
        }
        parts.retain(|p| !matches!(p, Part::Literal(l) if l.is_empty()));
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l.len(),
                _ => 0,
            })
            .sum();
        Ok(Self {
            parts,
            has_tenant: tenants == 1,
            literal_len,
        })
    }

    /// Whether the template has `{tenant}`.
    pub(crate) fn has_tenant(&self) -> bool {
        self.has_tenant
    }

    /// The redirect URI of (`tenant`, `provider`). Ids are letters, digits, `-`, `_` and `.`:
    /// nothing to encode.
    pub(crate) fn render(&self, tenant: &TenantId, provider: &ProviderId) -> String {
        let mut out = String::with_capacity(self.literal_len + 2 * 64);
        for part in &self.parts {
            out.push_str(match part {
                Part::Literal(l) => l,
                Part::Provider => provider.as_str(),
                Part::Tenant => tenant.as_str(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://cx.example.com/portal/").unwrap()
    }

    fn render(template: &str) -> Result<String, Error> {
        RedirectPath::parse(&base(), template).map(|p| {
            p.render(
                &TenantId::new("acme").unwrap(),
                &ProviderId::new("google").unwrap(),
            )
        })
    }

    #[test]
    fn templates_render_under_the_base_url() {
        assert_eq!(
            render(DEFAULT_REDIRECT_PATH).unwrap(),
            "https://cx.example.com/portal/sso/callback/google"
        );
        assert_eq!(
            render("/t/{tenant}/oauth2/{provider}-cb").unwrap(),
            "https://cx.example.com/portal/t/acme/oauth2/google-cb"
        );
        assert_eq!(
            render("/{provider}").unwrap(),
            "https://cx.example.com/portal/google"
        );
        assert_eq!(
            render("/cb/%7E{provider}/").unwrap(),
            "https://cx.example.com/portal/cb/%7Egoogle/"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (bad, why) in [
            ("", "1 to"),
            ("sso/{provider}", "starting with `/`"),
            ("/sso/callback", "must contain `{provider}`"),
            ("/{provider}/{provider}", "once"),
            ("/{tenant}/{tenant}/{provider}", "at most once"),
            ("/{provider}/{user}", "unknown placeholder `{user}`"),
            ("/{provider", "not closed"),
            ("/provider}", "has no `{`"),
            ("/{provider}?x=1", "no query"),
            ("/{provider}#top", "fragment"),
            ("/a b/{provider}", "not allowed in a URL path"),
            ("/é/{provider}", "not allowed in a URL path"),
            ("/%zz/{provider}", "two hex digits"),
            ("//evil.example/{provider}", "empty segment"),
            ("/../{provider}", "`..` segment"),
            ("/%2E%2e/{provider}", "`..` segment"),
            ("/./{provider}", "`.` or"),
        ] {
            match render(bad) {
                Err(Error::Config(ConfigError::Invalid {
                    what: "redirect_path",
                    reason,
                })) => assert!(reason.contains(why), "{bad}: {reason}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(render(&format!("/{}{{provider}}", "a".repeat(600))).is_err());
    }

    #[test]
    fn a_state_tag_names_its_route() {
        let (acme, globex) = (
            TenantId::new("acme").unwrap(),
            TenantId::new("globex").unwrap(),
        );
        let (google, o365) = (
            ProviderId::new("google").unwrap(),
            ProviderId::new("office365").unwrap(),
        );
        let state = format!("random.{}", route_tag(&acme, &google));
        let route = CallbackRoute::new(google.clone());
        assert!(route.check_state(&state).is_ok());
        assert!(
            route
                .clone()
                .with_tenant(acme.clone())
                .check_state(&state)
                .is_ok()
        );
        for wrong in [
            route.clone().with_tenant(globex.clone()),
            CallbackRoute::new(o365.clone()),
            CallbackRoute::new(o365).with_tenant(acme.clone()),
        ] {
            assert!(matches!(
                wrong.check_state(&state),
                Err(Error::Callback(CallbackError::WrongRoute))
            ));
        }
        // A state without a tag is left to the check after the lookup.
        assert!(route.check_state("random").is_ok());
        assert!(route.check_login(&acme, &google).is_ok());
        assert!(
            route
                .with_tenant(globex)
                .check_login(&acme, &google)
                .is_err()
        );
    }
}

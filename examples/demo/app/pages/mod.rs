//! One module per page of the source documents.

pub mod admin_auth;
pub mod admin_chat;
pub mod admin_email;
pub mod admin_sso;
pub mod chat;
pub mod home;
pub mod link;
pub mod security;
pub mod signin;

use cx_sso::{AuthMethod, ProviderConfig, ProviderId, ProviderKind};

/// The tenant's SSO applications (not the mailbox ones).
pub fn sso_applications(configs: Vec<ProviderConfig>) -> Vec<ProviderConfig> {
    configs
        .into_iter()
        .filter(|c| !matches!(c.kind(), ProviderKind::OAuth2 { .. }))
        .collect()
}

/// The method as an admin reads it.
pub fn method_label(method: &AuthMethod, name: impl Fn(&ProviderId) -> String) -> String {
    match method {
        AuthMethod::Password => "Password only".to_owned(),
        AuthMethod::Either => "Password or single sign-on".to_owned(),
        AuthMethod::Sso { providers } if providers.is_empty() => "Single sign-on only".to_owned(),
        AuthMethod::Sso { providers } => format!(
            "Single sign-on only, with {}",
            providers.iter().map(name).collect::<Vec<_>>().join(", ")
        ),
    }
}

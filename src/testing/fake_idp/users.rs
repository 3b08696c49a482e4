//! [`FakeUser`], the accounts at the provider, and registering clients and users.

use sha2::{Digest as _, Sha256};

use super::FakeIdp;

/// A user account at the [`FakeIdp`], built with [`FakeUser::new`] and its setters.
///
/// Defaults: no email, `email_verified` true (only sent when there is an email), no name, no
/// hosted domain, Entra tenant [`FakeUser::DEFAULT_TENANT_ID`], Entra object id derived from the
/// subject, `xms_edov` off, profile claims in the ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    pub(super) subject: String,
    pub(super) email: Option<String>,
    pub(super) email_verified: bool,
    pub(super) name: Option<String>,
    pub(super) hosted_domain: Option<String>,
    pub(super) tenant_id: Option<String>,
    pub(super) object_id: Option<String>,
    pub(super) preferred_username: Option<String>,
    pub(super) email_domain_verified: bool,
    pub(super) omit_profile_from_id_token: bool,
}

impl FakeIdp {
    /// Registers a confidential client; the token endpoint accepts it with
    /// `client_secret_basic` or `client_secret_post`. Registering an id again replaces its secret.
    pub fn register_client(&self, client_id: &str, client_secret: &str) {
        self.state()
            .clients
            .insert(client_id.to_owned(), client_secret.to_owned());
    }

    /// Adds a user (or replaces the user with the same subject).
    pub fn add_user(&self, user: FakeUser) {
        self.state().users.insert(user.subject.clone(), user);
    }
}

impl FakeUser {
    /// The Entra tenant id (`tid`) of users that were given none.
    pub const DEFAULT_TENANT_ID: &'static str = "11111111-2222-4333-8444-555555555555";

    /// A user with this subject (the ID token's `sub`).
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            email: None,
            email_verified: true,
            name: None,
            hosted_domain: None,
            tenant_id: None,
            object_id: None,
            preferred_username: None,
            email_domain_verified: false,
            omit_profile_from_id_token: false,
        }
    }

    /// The `email` claim.
    #[must_use]
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The `email_verified` claim (default true). Entra never sends `email_verified`: its email
    /// claim is unverified.
    #[must_use]
    pub fn email_verified(mut self, verified: bool) -> Self {
        self.email_verified = verified;
        self
    }

    /// The `name` claim.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Google: the `hd` (hosted domain, Google Workspace) claim.
    #[must_use]
    pub fn hosted_domain(mut self, domain: impl Into<String>) -> Self {
        self.hosted_domain = Some(domain.into());
        self
    }

    /// Entra: the `tid` claim (default [`FakeUser::DEFAULT_TENANT_ID`]); the ID token's `iss`
    /// carries it too.
    #[must_use]
    pub fn tenant_id(mut self, tid: impl Into<String>) -> Self {
        self.tenant_id = Some(tid.into());
        self
    }

    /// Entra: the `oid` claim (default: a GUID derived from the subject, never equal to it).
    #[must_use]
    pub fn object_id(mut self, oid: impl Into<String>) -> Self {
        self.object_id = Some(oid.into());
        self
    }

    /// Entra: the `preferred_username` claim (default: the email, if any).
    #[must_use]
    pub fn preferred_username(mut self, username: impl Into<String>) -> Self {
        self.preferred_username = Some(username.into());
        self
    }

    /// Entra: send `xms_edov: true` (the email's domain is verified by the tenant).
    #[must_use]
    pub fn email_domain_verified(mut self, verified: bool) -> Self {
        self.email_domain_verified = verified;
        self
    }

    /// Leave `email`, `email_verified`, `name` and `preferred_username` out of the ID token, so
    /// that the relying party has to call userinfo for them.
    #[must_use]
    pub fn omit_profile_from_id_token(mut self, omit: bool) -> Self {
        self.omit_profile_from_id_token = omit;
        self
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// How a login page lists the user: name and email when it has them.
    #[cfg(feature = "axum")]
    pub(crate) fn label(&self) -> String {
        match (&self.name, &self.email) {
            (Some(name), Some(email)) => format!("{name} <{email}>"),
            (Some(name), None) => name.clone(),
            (None, Some(email)) => email.clone(),
            (None, None) => self.subject.clone(),
        }
    }

    /// The Entra tenant id this user's tokens carry.
    pub fn effective_tenant_id(&self) -> &str {
        self.tenant_id.as_deref().unwrap_or(Self::DEFAULT_TENANT_ID)
    }

    /// The Entra object id this user's tokens carry.
    pub fn effective_object_id(&self) -> String {
        match &self.object_id {
            Some(oid) => oid.clone(),
            None => derived_guid(&self.subject),
        }
    }
}

/// A GUID-shaped string derived from `seed` (SHA-256, version-4 layout).
fn derived_guid(seed: &str) -> String {
    let digest = Sha256::digest(format!("fake-idp-oid:{seed}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(13..16).unwrap_or_default(),
        hex.get(17..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::super::routes::entra_segment_ok;
    use super::*;

    #[test]
    fn derived_oid_is_a_guid_and_differs_from_subject() {
        let oid = derived_guid("alice");
        assert!(entra_segment_ok(&oid), "{oid}");
        assert_ne!(oid, "alice");
        assert_eq!(oid, derived_guid("alice"));
    }
}

//! Claims: what the host asserts when minting, and what a verified token yields.

use time::OffsetDateTime;

use crate::error::VisitorAdminError;

use super::keys::VisitorKeyId;

/// The longest text claim, in characters.
pub(super) const MAX_CLAIM_CHARS: usize = 255;

/// Who the visitor is, as the host asserts it when minting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorClaims {
    pub(super) external_id: String,
    pub(super) name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) email_verified: bool,
}

impl VisitorClaims {
    /// Claims for the visitor with this id in the host's system (1 to 255 characters, no control
    /// characters; checked when minting).
    pub fn new(external_id: impl Into<String>) -> Self {
        Self {
            external_id: external_id.into(),
            name: None,
            email: None,
            email_verified: false,
        }
    }

    /// The visitor's display name (at most 255 characters, no control characters).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The visitor's email, and whether the host verified it.
    pub fn email(mut self, email: impl Into<String>, verified: bool) -> Self {
        self.email = Some(email.into());
        self.email_verified = verified;
        self
    }

    pub(super) fn validate(&self) -> Result<(), VisitorAdminError> {
        if !valid_text(&self.external_id) {
            return Err(VisitorAdminError::InvalidClaims(
                "external_id must be 1 to 255 characters without control characters",
            ));
        }
        if self.name.as_deref().is_some_and(|n| !valid_text(n)) {
            return Err(VisitorAdminError::InvalidClaims(
                "name must be 1 to 255 characters without control characters",
            ));
        }
        if self.email.as_deref().is_some_and(|e| !valid_email(e)) {
            return Err(VisitorAdminError::InvalidClaims(
                "email must be at most 255 characters, with an @ and no whitespace",
            ));
        }
        Ok(())
    }
}

fn valid_text(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= MAX_CLAIM_CHARS && !s.chars().any(char::is_control)
}

fn valid_email(s: &str) -> bool {
    valid_text(s)
        && !s.chars().any(char::is_whitespace)
        && s.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
}

/// A verified visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VisitorIdentity {
    /// The visitor's id in the host's system.
    pub external_id: String,
    /// The display name, if given.
    pub name: Option<String>,
    /// The email, if given.
    pub email: Option<String>,
    /// Whether the host verified the email (`false` when absent).
    pub email_verified: bool,
    /// The key that signed the token.
    pub kid: VisitorKeyId,
    /// `iat`, if present.
    pub issued_at: Option<OffsetDateTime>,
    /// `exp`.
    pub expires_at: OffsetDateTime,
    /// `jti`, if present.
    pub jti: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_validation() {
        assert!(VisitorClaims::new("c-1").validate().is_ok());
        assert!(VisitorClaims::new("").validate().is_err());
        assert!(VisitorClaims::new("x".repeat(256)).validate().is_err());
        assert!(VisitorClaims::new("é".repeat(255)).validate().is_ok());
        assert!(VisitorClaims::new("a\u{7}b").validate().is_err());
        assert!(VisitorClaims::new("a").name("n\n").validate().is_err());
        assert!(
            VisitorClaims::new("a")
                .email("no-at", true)
                .validate()
                .is_err()
        );
        assert!(
            VisitorClaims::new("a")
                .email("a@b", true)
                .validate()
                .is_ok()
        );
    }
}

//! The provider account behind a login, normalised across providers, and the check of a
//! mailbox address.

use serde::{Deserialize, Serialize};

use crate::error::ConnectionError;

/// A provider account, as asserted by a verified ID token (and userinfo where needed).
///
/// Its key is (`issuer`, `subject`): for Microsoft Entra the issuer is the tenant-specific one
/// (`https://login.microsoftonline.com/<tid>/v2.0`) and the subject is the immutable `oid`.
/// The email is informational: it is never used as a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExternalIdentity {
    /// The issuer that asserted the account.
    pub issuer: String,
    /// The provider's stable id of the account (`sub`, or `oid` for Entra).
    pub subject: String,
    /// The email the provider states, if any.
    pub email: Option<String>,
    /// Whether the provider asserts that it verified the email (`email_verified`).
    pub email_verified: bool,
    /// The display name, if any.
    pub name: Option<String>,
    /// Google Workspace domain (`hd`), if any.
    pub hosted_domain: Option<String>,
    /// Microsoft Entra tenant id (`tid`), if any.
    pub entra_tenant_id: Option<String>,
    /// Microsoft Entra: whether the email's domain is verified by the tenant (`xms_edov`).
    pub email_domain_verified: Option<bool>,
}

/// Checks a mailbox address for use in XOAUTH2 (and storage): not empty, at most 320 bytes,
/// no control characters (`\x01` separates the SASL fields; CR and LF end protocol lines).
pub(crate) fn check_mailbox(mailbox: &str) -> Result<(), ConnectionError> {
    if mailbox.trim().is_empty() || mailbox.len() > 320 || mailbox.chars().any(char::is_control) {
        return Err(ConnectionError::InvalidMailbox);
    }
    Ok(())
}

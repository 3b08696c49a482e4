//! What the broker says of an application: its status, the result of a connection check,
//! and a tenant's overall SSO status.

use serde::{Deserialize, Serialize};

use crate::ids::ProviderId;

/// The result of [`Broker::test_connection`](crate::Broker::test_connection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCheck {
    /// Whether discovery was fetched and its issuer is the expected one.
    pub discovery: CheckResult,
    /// What the token endpoint said of the client credentials.
    pub secret: SecretCheck,
}

impl ConnectionCheck {
    /// Whether nothing is known to be wrong.
    pub fn is_ok(&self) -> bool {
        self.discovery == CheckResult::Ok && self.secret != SecretCheck::Rejected
    }

    /// Human-readable problems, empty when [`is_ok`](Self::is_ok).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let CheckResult::Failed(reason) = &self.discovery {
            out.push(format!("discovery failed: {reason}"));
        }
        if self.secret == SecretCheck::Rejected {
            out.push("the provider rejected the client id or secret (invalid_client)".to_owned());
        }
        out
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum CheckResult {
    /// The check passed.
    Ok,
    /// The check failed, with the reason.
    Failed(String),
}

/// What the provider's token endpoint said of the client credentials.
///
/// The check sends a deliberately invalid authorization code with the client's credentials:
/// `invalid_grant` means the credentials were accepted (and the code refused, as expected),
/// `invalid_client` means they were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretCheck {
    /// The provider accepted the client id and secret.
    Accepted,
    /// The provider rejected the client id or secret (`invalid_client`).
    Rejected,
    /// The provider's answer does not tell (or it could not be reached).
    Unknown,
}

/// The SSO status of a tenant, for the admin page and the login page warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoStatus {
    /// The tenant has no SSO application.
    NotConfigured,
    /// No application is usable; every reason is listed.
    Invalid(Vec<ProviderProblem>),
    /// These applications are usable. `problems` lists the others, if any.
    Ready {
        /// Usable applications.
        providers: Vec<ProviderId>,
        /// Problems of the applications that are not usable.
        problems: Vec<ProviderProblem>,
    },
}

/// The status of one SSO application, from its configuration and its last connection check
/// ([`Broker::provider_status`](crate::Broker::provider_status)): what a login page needs to
/// know before it offers the application, and what the admin page shows beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    /// The tenant has no application with this id.
    NotConfigured,
    /// The application is saved but not usable (its last check failed, or it was never
    /// checked); every reason is listed, in words an admin can act on. Logins through it are
    /// refused before any redirect ([`Error::ProviderInvalid`](crate::Error::ProviderInvalid)).
    Invalid {
        /// What is wrong.
        reasons: Vec<String>,
    },
    /// The application passed its last check: logins may use it.
    Ready,
}

impl ProviderStatus {
    /// Whether logins may use the application.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }

    /// The reasons of [`Invalid`](Self::Invalid); empty otherwise.
    pub fn reasons(&self) -> &[String] {
        match self {
            Self::Invalid { reasons } => reasons,
            Self::NotConfigured | Self::Ready => &[],
        }
    }
}

/// What [`Broker::configure_provider`](crate::Broker::configure_provider) and
/// [`Broker::test_connection`](crate::Broker::test_connection) answer: the check just made,
/// and whether the saved application is now ready.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderReport {
    /// The application.
    pub provider: ProviderId,
    /// [`ProviderStatus::Ready`], or [`ProviderStatus::Invalid`] with every reason: the status
    /// [`Broker::provider_status`](crate::Broker::provider_status) reports from now on, and
    /// the one [`Broker::begin_login`](crate::Broker::begin_login) acts on.
    pub status: ProviderStatus,
    /// The connection check's details (discovery and client secret).
    pub check: ConnectionCheck,
}

impl ProviderReport {
    /// Whether the saved application is ready: logins may use it.
    pub fn is_ready(&self) -> bool {
        self.status.is_ready()
    }

    /// Why it is not ready (empty when it is).
    pub fn reasons(&self) -> &[String] {
        self.status.reasons()
    }
}

/// A problem with one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderProblem {
    /// The application.
    pub provider: ProviderId,
    /// What is wrong, in words an admin can act on.
    pub reason: String,
}

//! Validated identifiers: tenants, users, provider applications, mailbox connections and
//! account bindings.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $what:literal, $len:expr, $allowed:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier; the public `new` (beside the crate's
            /// errors, in `error/ids.rs`) turns the refusal into a `ConfigError`.
            pub(crate) fn parse(value: impl Into<String>) -> Result<Self, $crate::ids::InvalidIdentifier> {
                let value = value.into();
                let allowed: fn(char) -> bool = $allowed;
                let len: std::ops::RangeInclusive<usize> = $len;
                if !len.contains(&value.len()) || !value.chars().all(allowed) {
                    return Err($crate::ids::InvalidIdentifier { what: $what });
                }
                Ok(Self(value))
            }

            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

    };
}

pub(crate) use id_type;

/// An identifier of a length its kind does not allow (empty, too long, or for a binding id not
/// exactly 43 characters) or holding a character it does not allow; the
/// crate's error turns it into
/// [`ConfigError::InvalidIdentifier`](crate::ConfigError::InvalidIdentifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidIdentifier {
    /// Which kind of identifier, such as `"tenant id"`.
    pub(crate) what: &'static str,
}

/// ASCII letters, digits, `-`, `_` and `.`.
pub(crate) fn slug_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn opaque_char(c: char) -> bool {
    !c.is_control()
}

/// The base64url alphabet (RFC 4648 §5): ASCII letters, digits, `-` and `_`.
fn base64url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
}

id_type!(
    /// A tenant (company) of the host platform: 1 to 128 ASCII letters, digits, `-`, `_` or `.`.
    TenantId,
    "tenant id",
    1..=128,
    slug_char
);
id_type!(
    /// The id of a tenant's SSO application, chosen by the host (`"google"`, `"office365"`):
    /// 1 to 64 ASCII letters, digits, `-`, `_` or `.`. It appears in the redirect URI.
    ProviderId,
    "provider id",
    1..=64,
    slug_char
);
id_type!(
    /// A user of the host platform, opaque to the library: 1 to 256 characters, no control
    /// characters.
    UserId,
    "user id",
    1..=256,
    opaque_char
);

id_type!(
    /// A tenant's mailbox connection, chosen by the host (such as an email asset id):
    /// 1 to 128 ASCII letters, digits, `-`, `_` or `.`.
    ConnectionId,
    "connection id",
    1..=128,
    slug_char
);

id_type!(
    /// One account binding of a tenant, as [`AccountBinding::id`](crate::AccountBinding::id)
    /// names it for [`Broker::unbind`](crate::Broker::unbind): 43 base64url characters (ASCII
    /// letters, digits, `-` and `_`), stable for the binding's life, safe in a URL or a form
    /// field, and opaque: it is a hash of the tenant, issuer and subject, so it reveals neither
    /// the provider nor the account, and the same account has unrelated ids in two tenants.
    BindingId,
    "binding id",
    43..=43,
    base64url_char
);

impl BindingId {
    /// The id of the binding of the account (`issuer`, `subject`) in `tenant`:
    /// `BASE64URL(SHA-256(label, then each part length-prefixed))`, so that no two triples
    /// share a hash input.
    pub(crate) fn of_account(tenant: &TenantId, issuer: &str, subject: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"cx-sso binding id v1");
        for part in [tenant.as_str(), issuer, subject] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        Self(URL_SAFE_NO_PAD.encode(hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_bad_input() {
        assert!(TenantId::new("acme").is_ok());
        assert!(TenantId::new("").is_err());
        assert!(TenantId::new("a/b").is_err());
        assert!(TenantId::new("x".repeat(129)).is_err());
        assert!(ProviderId::new("office 365").is_err());
        assert!(UserId::new("user@example.com").is_ok());
        assert!(UserId::new("bad\nuser").is_err());
        assert!(ConnectionId::new("asset-42").is_ok());
        assert!(ConnectionId::new("a|b").is_err());
        assert!(BindingId::new("A".repeat(43)).is_ok());
        assert!(BindingId::new("A".repeat(44)).is_err());
        assert!(BindingId::new("A".repeat(42)).is_err());
        assert!(BindingId::new("A").is_err());
        assert!(BindingId::new("a.b").is_err());
        assert!(BindingId::new("a+b/c=").is_err());
    }

    #[test]
    fn binding_ids_are_43_url_safe_characters_and_never_collide_across_part_boundaries() {
        let t = TenantId::new("acme").unwrap();
        let id = BindingId::of_account(&t, "https://accounts.google.com", "1089");
        assert_eq!(id.as_str().len(), 43);
        assert_eq!(BindingId::new(id.as_str()).unwrap(), id);
        assert_eq!(
            id,
            BindingId::of_account(&t, "https://accounts.google.com", "1089")
        );
        // Moving a character from one part to the next gives another id.
        assert_ne!(
            BindingId::of_account(&t, "https://idp.example/a", "bc"),
            BindingId::of_account(&t, "https://idp.example/ab", "c")
        );
        let other = TenantId::new("acme2").unwrap();
        assert_ne!(
            id,
            BindingId::of_account(&other, "https://accounts.google.com", "1089")
        );
        assert_eq!(format!("{id:?}"), format!("BindingId({:?})", id.as_str()));
    }
}

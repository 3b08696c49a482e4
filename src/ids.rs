//! Validated identifiers: tenants, users, provider applications and mailbox connections.

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $what:literal, $max:expr, $allowed:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier.
            ///
            /// # Errors
            ///
            /// [`ConfigError::InvalidIdentifier`](crate::ConfigError::InvalidIdentifier) when the
            /// value is empty, too long or holds a character that is not allowed.
            pub fn new(value: impl Into<String>) -> Result<Self, $crate::Error> {
                let value = value.into();
                let allowed: fn(char) -> bool = $allowed;
                if value.is_empty() || value.len() > $max || !value.chars().all(allowed) {
                    return Err($crate::Error::Config(
                        $crate::error::ConfigError::InvalidIdentifier { what: $what },
                    ));
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

        impl std::str::FromStr for $name {
            type Err = $crate::Error;
            fn from_str(s: &str) -> Result<Self, $crate::Error> {
                Self::new(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use id_type;

/// ASCII letters, digits, `-`, `_` and `.`.
pub(crate) fn slug_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn opaque_char(c: char) -> bool {
    !c.is_control()
}

id_type!(
    /// A tenant (company) of the host platform: 1 to 128 ASCII letters, digits, `-`, `_` or `.`.
    TenantId,
    "tenant id",
    128,
    slug_char
);
id_type!(
    /// The id of a tenant's SSO application, chosen by the host (`"google"`, `"office365"`):
    /// 1 to 64 ASCII letters, digits, `-`, `_` or `.`. It appears in the redirect URI.
    ProviderId,
    "provider id",
    64,
    slug_char
);
id_type!(
    /// A user of the host platform, opaque to the library: 1 to 256 characters, no control
    /// characters.
    UserId,
    "user id",
    256,
    opaque_char
);

id_type!(
    /// A tenant's mailbox connection, chosen by the host (such as an email asset id):
    /// 1 to 128 ASCII letters, digits, `-`, `_` or `.`.
    ConnectionId,
    "connection id",
    128,
    slug_char
);

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
    }
}

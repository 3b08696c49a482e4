//! The public constructors of the identifier types, beside the error they return: the
//! identifiers sit below the errors (an error names a [`ProviderId`]), so `ids` checks a value
//! and this module turns a refusal into [`ConfigError::InvalidIdentifier`].

use super::{ConfigError, Error};
use crate::ids::{BindingId, ConnectionId, InvalidIdentifier, ProviderId, TenantId, UserId};

impl From<InvalidIdentifier> for Error {
    fn from(e: InvalidIdentifier) -> Self {
        Self::Config(ConfigError::InvalidIdentifier { what: e.what })
    }
}

/// `new`, `FromStr` and `Deserialize` of an identifier type made by `ids::id_type!`.
macro_rules! id_constructors {
    ($($name:ident),+ $(,)?) => {$(
        impl $name {
            /// Validates and wraps an identifier.
            ///
            /// # Errors
            ///
            /// [`ConfigError::InvalidIdentifier`](crate::ConfigError::InvalidIdentifier) when the
            /// value is empty, too long or holds a character that is not allowed.
            pub fn new(value: impl Into<String>) -> Result<Self, $crate::error::Error> {
                Ok(Self::parse(value)?)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> Result<Self, $crate::error::Error> {
                Self::new(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    )+};
}

pub(crate) use id_constructors;

id_constructors!(TenantId, ProviderId, UserId, ConnectionId, BindingId);

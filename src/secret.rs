//! Secret-bearing newtypes that never print their contents.

macro_rules! secret_type {
    ($(#[$meta:meta])* $vis:vis $name:ident) => {
        $(#[$meta])*
        ///
        /// `Debug` prints `
        #[doc = stringify!($name)]
        /// ([redacted])`; there is no `Display`, and the value is zeroized on drop.
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        $vis struct $name(String);

        impl $name {
            /// Wraps a secret value.
            $vis fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value.
            ///
            /// # Security Warning
            ///
            /// Leaking this value may compromise the security of the tenant. Do not log it,
            /// put it in an error message or send it anywhere it is not needed.
            $vis fn secret(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                zeroize::Zeroize::zeroize(&mut self.0);
            }
        }
    };
}

secret_type!(
    /// An OAuth client secret, as issued by the provider to a tenant's application.
    pub ClientSecret
);
secret_type!(
    /// The browser-binding value of a pending login: the host puts it in a cookie when it
    /// redirects to the provider and hands it back to [`Broker::complete_login`](crate::Broker::complete_login).
    pub BrowserBinding
);
secret_type!(
    /// A single-use link ticket, handed out when an unbound provider account signs in.
    pub LinkTicket
);
secret_type!(
    /// An OAuth access token.
    pub AccessToken
);
secret_type!(
    /// An OAuth refresh token.
    pub RefreshToken
);

pub(crate) use secret_type;

impl PartialEq for LinkTicket {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}
impl Eq for LinkTicket {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = ClientSecret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        assert_eq!(s.secret(), "hunter2-very-secret");
        let t = RefreshToken::new("1//refresh");
        assert!(!format!("{t:?}").contains("refresh\""));
        assert!(!format!("{t:?}").contains("1//"));
    }
}

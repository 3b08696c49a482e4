//! Keys: their ids, their bytes, their states, how they are generated, and what an imported key
//! must satisfy.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{ConfigError, Error, VisitorAdminError, id_constructors};
use crate::ids::{TenantId, id_type, slug_char};
use crate::secret::ClientSecret;

use super::Visitors;

/// The shortest key accepted: 256 bits, the HMAC-SHA256 output size (RFC 7518 §3.2).
const MIN_KEY_BYTES: usize = 32;
/// The longest key accepted.
const MAX_KEY_BYTES: usize = 512;
/// The size of a generated key.
const GENERATED_KEY_BYTES: usize = 32;

id_type!(
    /// A key id (`kid`): 1 to 64 ASCII letters, digits, `-`, `_` or `.`. Generated keys get
    /// `vk_` and 16 random base64url characters.
    VisitorKeyId,
    "visitor key id",
    1..=64,
    slug_char
);
id_constructors!(VisitorKeyId);

impl VisitorKeyId {
    pub(super) fn generate() -> Self {
        let mut b = [0u8; 12];
        rand::rng().fill_bytes(&mut b);
        Self(format!("vk_{}", URL_SAFE_NO_PAD.encode(b)))
    }
}

/// Whether `s` is 1 to `max` ASCII letters, digits, `-`, `_` or `.`: the syntax of a `kid`,
/// checked on a token's header before any store lookup.
pub(super) fn is_slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A visitor-token key: the raw bytes of an HMAC-SHA256 key.
///
/// `Debug` prints `VisitorSigningKey([redacted])`; there is no `Display`, no `Clone`, and the
/// bytes are zeroized on drop.
pub struct VisitorSigningKey(pub(super) Zeroizing<Vec<u8>>);

impl VisitorSigningKey {
    /// Wraps key bytes (for [`Broker::import_visitor_key`](crate::Broker::import_visitor_key) and
    /// [`Broker::create_visitor_config_with_key`](crate::Broker::create_visitor_config_with_key)).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// Decodes a key given as unpadded base64url (the form
    /// [`secret_base64url`](Self::secret_base64url) produces).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the text is not unpadded base64url.
    pub fn from_base64url(encoded: &str) -> Result<Self, Error> {
        URL_SAFE_NO_PAD
            .decode(encoded.as_bytes())
            .map(Self::new)
            .map_err(|_| {
                ConfigError::Invalid {
                    what: "visitor key",
                    reason: "not unpadded base64url".into(),
                }
                .into()
            })
    }

    /// The key bytes.
    ///
    /// # Security Warning
    ///
    /// Anyone with these bytes can sign visitor tokens for the configuration. Do not log them,
    /// put them in an error message or send them anywhere they are not needed.
    pub fn secret(&self) -> &[u8] {
        &self.0
    }

    /// The key bytes as unpadded base64url, for handing to another system (Node:
    /// `Buffer.from(k, "base64url")`).
    ///
    /// # Security Warning
    ///
    /// As for [`secret`](Self::secret).
    pub fn secret_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_slice())
    }

    /// A fresh 256-bit key from the operating system's random source.
    pub(super) fn generate() -> Result<Self, Error> {
        use rand::TryRngCore as _;
        let mut key = Zeroizing::new(vec![0u8; GENERATED_KEY_BYTES]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .map_err(|_| ConfigError::Invalid {
                what: "visitor key",
                reason: "the operating system's random source failed".into(),
            })?;
        Ok(Self(key))
    }
}

impl fmt::Debug for VisitorSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VisitorSigningKey([redacted])")
    }
}

/// A key just generated, handed out this once: the library never shows its bytes again.
///
/// `Debug` shows the kid and the creation time, never the key.
#[derive(Debug)]
pub struct ExportedVisitorKey {
    pub(super) kid: VisitorKeyId,
    pub(super) key: VisitorSigningKey,
    pub(super) created_at: OffsetDateTime,
}

impl ExportedVisitorKey {
    /// The key id that tokens signed with this key carry in their header.
    pub fn kid(&self) -> &VisitorKeyId {
        &self.kid
    }

    /// The key, for a widget vendor or another backend that needs it.
    ///
    /// # Security Warning
    ///
    /// See [`VisitorSigningKey::secret`].
    pub fn key(&self) -> &VisitorSigningKey {
        &self.key
    }

    /// When the key was generated.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }
}

/// The state of a key in a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VisitorKeyState {
    /// Mints new tokens, and verifies. Exactly one key of a ring is signing.
    Signing,
    /// Verifies tokens but does not mint: a key being introduced, or being phased out.
    VerifyOnly,
    /// Neither: tokens signed by it are refused. Its bytes are erased from the ring.
    Retired,
}

impl fmt::Display for VisitorKeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Signing => "signing",
            Self::VerifyOnly => "verify-only",
            Self::Retired => "retired",
        })
    }
}

/// Metadata of a key in a ring; never the key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VisitorKeyInfo {
    /// The key id.
    pub kid: VisitorKeyId,
    /// The key's state.
    pub state: VisitorKeyState,
    /// When the key was generated or imported.
    pub created_at: OffsetDateTime,
    /// When the key was retired, if it was.
    pub retired_at: Option<OffsetDateTime>,
}

/// Whether `candidate` equals any of `secrets` (compared in constant time per secret).
fn reuses_client_secret<'a>(
    candidate: &[u8],
    secrets: impl IntoIterator<Item = &'a ClientSecret>,
) -> bool {
    let mut found = subtle::Choice::from(0u8);
    for s in secrets {
        found |= s.secret().as_bytes().ct_eq(candidate);
    }
    found.into()
}

impl Visitors {
    /// Checks a key made elsewhere before it enters a ring: its length, and that it is not a
    /// client secret of the tenant's SSO applications (one leaked secret must not open both).
    pub(super) async fn check_imported_visitor_key(
        &self,
        tenant: &TenantId,
        key: &VisitorSigningKey,
    ) -> Result<(), Error> {
        let bytes = key.secret();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(VisitorAdminError::KeyTooShort.into());
        }
        if bytes.len() > MAX_KEY_BYTES {
            return Err(VisitorAdminError::KeyTooLong(MAX_KEY_BYTES).into());
        }
        let providers = self.providers.list_providers(tenant).await?;
        if reuses_client_secret(bytes, providers.iter().map(|c| c.client_secret())) {
            return Err(VisitorAdminError::KeyReusesClientSecret.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_check_compares_exact_bytes() {
        let s = [
            ClientSecret::new("a".repeat(40)),
            ClientSecret::new("b".repeat(40)),
        ];
        assert!(reuses_client_secret("b".repeat(40).as_bytes(), &s));
        assert!(!reuses_client_secret("b".repeat(41).as_bytes(), &s));
        assert!(!reuses_client_secret(b"", &s));
    }

    #[test]
    fn slugs() {
        assert!(VisitorKeyId::new("vk_abc-DEF.1").is_ok());
        assert!(VisitorKeyId::new("../x").is_err());
        assert!(VisitorKeyId::new("").is_err());
        assert!(VisitorKeyId::new("k".repeat(65)).is_err());
        let g = VisitorKeyId::generate();
        assert!(is_slug(g.as_str(), 64));
        assert_eq!(g.as_str().len(), 19);
    }

    #[test]
    fn generated_keys_are_256_bit_and_differ() {
        let (a, b) = (
            VisitorSigningKey::generate().unwrap(),
            VisitorSigningKey::generate().unwrap(),
        );
        assert_eq!(a.secret().len(), 32);
        assert_ne!(a.secret(), b.secret());
    }
}

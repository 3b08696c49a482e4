//! The crate's cryptographic primitives: random tokens, hashed store keys, and encryption of
//! secrets at rest (connection tokens, client secrets, visitor keys):
//! XChaCha20-Poly1305 with what the secret belongs to bound as associated data, so a value
//! copied to another row does not decrypt.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ConfigError, ConnectionError, Error};

/// The length of an XChaCha20-Poly1305 nonce.
const NONCE_LEN: usize = 24;
/// Associated-data domains: versioned, one per kind of record, so a value sealed for one kind
/// never opens as another.
pub(crate) const CONNECTION_DOMAIN: &str = "cx-sso/connection/v1";
/// Client secrets of provider records.
pub(crate) const PROVIDER_DOMAIN: &str = "cx-sso/provider/v1";
/// Visitor-token keys.
pub(crate) const VISITOR_DOMAIN: &str = "cx-sso/visitor/v1";

/// The prefix of a sealed value stored as text.
const TEXT_PREFIX: &str = "xchacha20poly1305:";

/// A 256-bit key that encrypts secrets at rest: connection tokens, the client secrets of SSO
/// applications and visitor-token keys
/// ([`BrokerBuilder::encryption_key`](crate::BrokerBuilder::encryption_key)).
///
/// `Debug` prints `EncryptionKey([redacted])`; there is no `Display`, and the bytes are
/// zeroized on drop. Generate one with a CSPRNG (`openssl rand -base64 32`) and keep it in the
/// host's secret manager, not beside the database.
#[derive(Clone)]
pub struct EncryptionKey([u8; 32]);

impl EncryptionKey {
    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Decodes a key from standard base64 (44 characters with padding).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the text is not base64 of exactly 32 bytes. The error
    /// does not quote the text.
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let mut decoded = STANDARD.decode(text.trim()).map_err(|_| invalid_key())?;
        let key = <[u8; 32]>::try_from(decoded.as_slice()).map_err(|_| invalid_key());
        zeroize::Zeroize::zeroize(&mut decoded);
        Ok(Self(key?))
    }
}

fn invalid_key() -> Error {
    ConfigError::Invalid {
        what: "encryption key",
        reason: "must be 32 bytes in standard base64".into(),
    }
    .into()
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

impl Drop for EncryptionKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A token as stored: in the clear when the host gave no key, otherwise
/// `base64(nonce || ciphertext || tag)`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Sealed {
    /// No key was configured when it was written.
    Plain(String),
    /// XChaCha20-Poly1305, associated data [`aad`].
    #[serde(rename = "xchacha20poly1305")]
    XChaCha20Poly1305(String),
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "Sealed::Plain([redacted])",
            Self::XChaCha20Poly1305(_) => "Sealed::XChaCha20Poly1305([redacted])",
        })
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        match self {
            Self::Plain(s) | Self::XChaCha20Poly1305(s) => zeroize::Zeroize::zeroize(s),
        }
    }
}

/// `domain | tenant | item | field`, joined so that parts never collide.
fn aad(at: Binding<'_>, field: &str) -> String {
    key(&[at.domain, at.tenant, at.item, field])
}

/// Where a sealed value belongs: it decrypts only there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding<'a> {
    /// What kind of record (one of the `*_DOMAIN` constants).
    pub(crate) domain: &'static str,
    pub(crate) tenant: &'a str,
    /// The record within the tenant: connection id, provider id, visitor audience.
    pub(crate) item: &'a str,
}

pub(crate) fn seal(
    key: Option<&EncryptionKey>,
    at: Binding<'_>,
    field: &str,
    plaintext: &str,
) -> Result<Sealed, Error> {
    let Some(key) = key else {
        return Ok(Sealed::Plain(plaintext.to_owned()));
    };
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce[..]);
    let aad = aad(at, field);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        // Only fails for messages beyond 256 GiB.
        .map_err(|_| ConnectionError::Undecryptable)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(Sealed::XChaCha20Poly1305(STANDARD.encode(out)))
}

/// Decrypts a sealed value. A plaintext value is refused when a key is configured (fail
/// closed: a row written into the store by someone else must not be trusted), and a ciphertext
/// when none is.
pub(crate) fn open(
    key: Option<&EncryptionKey>,
    at: Binding<'_>,
    field: &str,
    sealed: &Sealed,
) -> Result<String, Error> {
    match (key, sealed) {
        (None, Sealed::Plain(s)) => Ok(s.clone()),
        (Some(key), Sealed::XChaCha20Poly1305(b64)) => {
            let bytes = STANDARD
                .decode(b64)
                .map_err(|_| ConnectionError::Undecryptable)?;
            let (nonce, ciphertext) = bytes
                .split_at_checked(NONCE_LEN)
                .ok_or(ConnectionError::Undecryptable)?;
            let cipher = XChaCha20Poly1305::new((&key.0).into());
            let aad = aad(at, field);
            let plain = cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: aad.as_bytes(),
                    },
                )
                .map_err(|_| ConnectionError::Undecryptable)?;
            String::from_utf8(plain).map_err(|e| {
                let mut bytes = e.into_bytes();
                zeroize::Zeroize::zeroize(&mut bytes);
                ConnectionError::Undecryptable.into()
            })
        }
        _ => Err(ConnectionError::Undecryptable.into()),
    }
}

/// Seals `plaintext` into text for a string field: as it is without a key, else
/// `xchacha20poly1305:` and the base64 of nonce, ciphertext and tag.
pub(crate) fn seal_text(
    key: Option<&EncryptionKey>,
    at: Binding<'_>,
    field: &str,
    plaintext: &str,
) -> Result<String, Error> {
    Ok(match &seal(key, at, field, plaintext)? {
        Sealed::Plain(_) => plaintext.to_owned(),
        Sealed::XChaCha20Poly1305(b64) => format!("{TEXT_PREFIX}{b64}"),
    })
}

/// Opens what [`seal_text`] wrote. `None` when it does not open here: sealed under another
/// key or for another record, a plaintext value while a key is configured (fail closed), or a
/// sealed one while none is.
pub(crate) fn open_text(
    key: Option<&EncryptionKey>,
    at: Binding<'_>,
    field: &str,
    stored: &str,
) -> Option<String> {
    let sealed = match stored.strip_prefix(TEXT_PREFIX) {
        Some(b64) => Sealed::XChaCha20Poly1305(b64.to_owned()),
        None => Sealed::Plain(stored.to_owned()),
    };
    open(key, at, field, &sealed).ok()
}

/// Builds a store key from parts, escaping so that distinct part lists never collide.
pub(crate) fn key(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        for c in part.chars() {
            match c {
                '%' => out.push_str("%25"),
                '|' => out.push_str("%7C"),
                c => out.push(c),
            }
        }
    }
    out
}

/// Random URL-safe text of `n` bytes of entropy from the OS CSPRNG.
pub(crate) fn random_token(n: usize) -> String {
    // On the stack for the usual sizes: one allocation (the text) instead of two.
    let mut buf = [0u8; 64];
    let mut heap = Vec::new();
    let bytes = match buf.get_mut(..n) {
        Some(b) => b,
        None => {
            heap.resize(n, 0);
            &mut heap[..]
        }
    };
    rand::fill(bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The store key for a secret handle (state, ticket): its SHA-256, so a store dump does not
/// hold usable values.
pub(crate) fn hash_key(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// The store key for a secret handle that only counts together with a second value: the
/// SHA-256 of a domain label, the length of `first`, `first` and `second`. Whoever lacks either
/// value cannot address the record at all, so a wrong one finds nothing and spends nothing.
pub(crate) fn bound_key(domain: &str, first: &str, second: &str) -> String {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update([0]);
    h.update((first.len() as u64).to_be_bytes());
    h.update(first.as_bytes());
    h.update(second.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Binding<'static> = Binding {
        domain: CONNECTION_DOMAIN,
        tenant: "acme",
        item: "asset-1",
    };

    #[test]
    fn round_trip_and_binding() {
        let key = EncryptionKey::from_bytes([7; 32]);
        let sealed = seal(Some(&key), AT, "refresh_token", "1//secret").unwrap();
        assert_eq!(
            open(Some(&key), AT, "refresh_token", &sealed).unwrap(),
            "1//secret"
        );
        // Another connection, tenant, field or key: refused.
        let other = Binding {
            item: "asset-2",
            ..AT
        };
        assert!(open(Some(&key), other, "refresh_token", &sealed).is_err());
        assert!(open(Some(&key), AT, "access_token", &sealed).is_err());
        let key2 = EncryptionKey::from_bytes([8; 32]);
        assert!(open(Some(&key2), AT, "refresh_token", &sealed).is_err());
        // Ciphertext without a key, plaintext with a key: refused.
        assert!(open(None, AT, "refresh_token", &sealed).is_err());
        let plain = seal(None, AT, "refresh_token", "1//secret").unwrap();
        assert!(open(Some(&key), AT, "refresh_token", &plain).is_err());
        assert_eq!(
            open(None, AT, "refresh_token", &plain).unwrap(),
            "1//secret"
        );
        // Nonces are random: two seals differ.
        let again = seal(Some(&key), AT, "refresh_token", "1//secret").unwrap();
        let (Sealed::XChaCha20Poly1305(a), Sealed::XChaCha20Poly1305(b)) = (&sealed, &again) else {
            panic!("not encrypted");
        };
        assert_ne!(a, b);
        assert!(!a.contains("secret"));
    }

    #[test]
    fn key_parsing_and_debug() {
        let key = EncryptionKey::from_base64(&STANDARD.encode([1u8; 32])).unwrap();
        assert_eq!(format!("{key:?}"), "EncryptionKey([redacted])");
        assert!(EncryptionKey::from_base64("c2hvcnQ=").is_err());
        assert!(EncryptionKey::from_base64("not base64!").is_err());
        let msg = EncryptionKey::from_base64("c2hvcnQ=")
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("c2hvcnQ"));
    }

    #[test]
    fn keys_do_not_collide() {
        assert_ne!(key(&["a|b", "c"]), key(&["a", "b|c"]));
        assert_ne!(key(&["a%7Cb"]), key(&["a|b"]));
    }
}

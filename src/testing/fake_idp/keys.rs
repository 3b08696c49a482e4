//! The signing keys (RSA-2048 for RS256, P-256 for ES256), and random tokens.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde_json::{Value, json};

use super::FakeIdpError;

/// The private half of a [`SigningKey`].
pub(super) enum Pair {
    /// RS256.
    Rsa(KeyPair),
    /// ES256 (P-256, fixed-length `r || s` signatures as JWS wants them).
    Ec(EcdsaKeyPair),
}

pub(super) struct SigningKey {
    pub(super) kid: String,
    pub(super) pair: Pair,
    pub(super) jwk: Value,
    /// DER `SubjectPublicKeyInfo`, the HMAC key of [`Misbehavior::Hs256WithPublicKey`].
    pub(super) spki_der: Vec<u8>,
}

impl SigningKey {
    /// A new RSA-2048 key (RS256).
    pub(super) fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .expect("FakeIdp: generating an RSA-2048 key with aws-lc-rs failed");
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let spki: PublicKeyX509Der<'static> = public
            .as_der()
            .expect("FakeIdp: encoding an RSA public key as DER failed");
        let kid = random_token(12);
        let jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": n,
            "e": e,
        });
        Self {
            kid,
            pair: Pair::Rsa(pair),
            jwk,
            spki_der: spki.as_ref().to_vec(),
        }
    }

    /// A new P-256 key (ES256).
    pub(super) fn generate_es256() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .expect("FakeIdp: generating a P-256 key with aws-lc-rs failed");
        let public = pair.public_key();
        // The uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = public.as_ref();
        let (x, y) = point
            .get(1..)
            .expect("FakeIdp: a P-256 public key is 65 bytes")
            .split_at(32);
        let spki: PublicKeyX509Der<'static> = public
            .as_der()
            .expect("FakeIdp: encoding a P-256 public key as DER failed");
        let kid = random_token(12);
        let jwk = json!({
            "kty": "EC",
            "use": "sig",
            "alg": "ES256",
            "crv": "P-256",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        });
        Self {
            kid,
            pair: Pair::Ec(pair),
            jwk,
            spki_der: spki.as_ref().to_vec(),
        }
    }

    /// The JWS `alg` this key signs with.
    pub(super) fn alg(&self) -> &'static str {
        match self.pair {
            Pair::Rsa(_) => "RS256",
            Pair::Ec(_) => "ES256",
        }
    }

    /// The JWS signature of `message` with this key's algorithm.
    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, FakeIdpError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &rng,
                    message,
                    &mut signature,
                )
                .map_err(|_| FakeIdpError::Signing)?;
                Ok(signature)
            }
            Pair::Ec(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| FakeIdpError::Signing),
        }
    }
}

/// `bytes` random bytes from the OS CSPRNG, base64url without padding.
pub(super) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

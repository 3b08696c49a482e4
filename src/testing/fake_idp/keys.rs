//! The RSA-2048 signing keys, and random tokens.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde_json::{Value, json};

use super::FakeIdpError;

pub(super) struct SigningKey {
    pub(super) kid: String,
    pub(super) pair: KeyPair,
    pub(super) jwk: Value,
    /// DER `SubjectPublicKeyInfo`, the HMAC key of [`Misbehavior::Hs256WithPublicKey`].
    pub(super) spki_der: Vec<u8>,
}

impl SigningKey {
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
            pair,
            jwk,
            spki_der: spki.as_ref().to_vec(),
        }
    }

    pub(super) fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, FakeIdpError> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| FakeIdpError::Signing)?;
        Ok(signature)
    }
}

/// `bytes` random bytes from the OS CSPRNG, base64url without padding.
pub(super) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

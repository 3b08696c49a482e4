//! PKCE (RFC 7636) with the S256 method, on oauth2's `PkceCodeChallenge`.

use oauth2::{PkceCodeChallenge, PkceCodeVerifier};

use crate::secret::secret_type;

secret_type!(
    /// A PKCE code verifier.
    pub(crate) PkceVerifier
);

/// The challenge sent in the authorization request.
#[derive(Debug)]
pub(crate) struct PkceChallenge(PkceCodeChallenge);

impl PkceChallenge {
    /// The `code_challenge` parameter: `BASE64URL(SHA256(verifier))`.
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The `code_challenge_method` parameter: `S256`.
    pub(crate) fn method(&self) -> &str {
        self.0.method().as_str()
    }
}

/// A new verifier (256 random bits, 43 characters) and its S256 challenge.
///
/// The random bits come from the crate's one generator, filled at once
/// ([`random_token`](crate::crypto::random_token)); oauth2's own `new_random_sha256` draws them
/// a byte at a time. The verifier moves into [`PkceVerifier`] without a copy, so the only copy
/// is zeroized on drop.
pub(crate) fn pkce_s256() -> (PkceVerifier, PkceChallenge) {
    // 32 bytes encode to 43 characters: the length oauth2 asserts (43 to 128) always holds.
    let verifier = PkceCodeVerifier::new(crate::crypto::random_token(32));
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
    (
        PkceVerifier::new(verifier.into_secret()),
        PkceChallenge(challenge),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::{Digest, Sha256};

    #[test]
    fn challenge_is_the_s256_of_the_verifier() {
        let (verifier, challenge) = pkce_s256();
        assert_eq!(verifier.secret().len(), 43);
        assert_eq!(challenge.method(), "S256");
        assert_eq!(
            challenge.as_str(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.secret().as_bytes()))
        );
        let (other, _) = pkce_s256();
        assert_ne!(verifier.secret(), other.secret());
    }

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier =
            PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned());
        assert_eq!(
            PkceCodeChallenge::from_code_verifier_sha256(&verifier).as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifier_debug_is_redacted() {
        let (verifier, challenge) = pkce_s256();
        let printed = format!("{verifier:?} {challenge:?}");
        assert!(printed.contains("PkceVerifier([redacted])"), "{printed}");
        assert!(!printed.contains(verifier.secret()), "{printed}");
    }
}

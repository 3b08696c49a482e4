//! What a test switches and reads: [`Misbehavior`]s, key rotation, the RFC 9207 `iss`
//! parameter, refresh-token rotation, and the request counters.

use std::sync::atomic::Ordering;

use super::FakeIdp;
use super::keys::SigningKey;

/// A way for the [`FakeIdp`] to misbehave, switched on with [`FakeIdp::misbehave`] and off with
/// [`FakeIdp::behave`]. Several can be on at once.
///
/// Variants that shape the ID token act when [`FakeIdp::authorize`] signs it (a code issued
/// before the switch keeps its well-formed token). The others act on the HTTP endpoints.
/// "The client" is the `client_id` of the authorization request; "other-client" is the literal
/// string `other-client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Misbehavior {
    /// The ID token's signature has its bits flipped.
    BadSignature,
    /// The ID token's header says `"alg":"none"` and the signature is empty.
    AlgNone,
    /// The ID token is signed with HS256, keyed with the current RSA key's public key: the DER
    /// encoding of its X.509 `SubjectPublicKeyInfo` (the bytes inside the PEM armour). This is
    /// the classic algorithm-confusion attack.
    Hs256WithPublicKey,
    /// `iss` is `https://wrong-issuer.example.test`.
    WrongIssuer,
    /// `aud` is `other-client`, and there is no `azp`.
    WrongAudience,
    /// `aud` is `[client, "other-client"]` and there is no `azp`.
    ExtraAudienceWithoutAzp,
    /// `azp` is `other-client` (`aud` is the client).
    AzpMismatch,
    /// The token expired two hours ago (`iat` three hours ago).
    Expired,
    /// `iat` is one hour in the future, `exp` two hours.
    IssuedInFuture,
    /// There is no `sub` claim.
    MissingSub,
    /// There is no `nonce` claim.
    MissingNonce,
    /// There is no `iat` claim.
    MissingIat,
    /// `sub` is not the user's (`other-` + subject). At sign-in this is just another account;
    /// it matters in an ID token returned by a refresh (see
    /// [`FakeIdp::set_refresh_id_token`]), which must name the subject of the original one.
    WrongSubject,
    /// `nonce` is not the one of the authorization request.
    WrongNonce,
    /// `exp` is a JSON string holding the number (`"exp":"1767258000"`).
    ExpAsString,
    /// `at_hash` is the hash of another access token than the one the token endpoint returns
    /// (a substituted access token).
    WrongAtHash,
    /// The header has no `kid` while the JWKS publishes at least two keys (a second key is
    /// generated when this is switched on, if needed).
    NoKidWithSeveralKeys,
    /// The header has no `kid` (whatever the JWKS publishes).
    NoKid,
    /// The token is signed by a key whose `kid` the JWKS never publishes, however often it is
    /// fetched. (For the "new key appears at the next JWKS fetch" case, use
    /// [`FakeIdp::rotate_key`].)
    UnknownKid,
    /// The token endpoint answers this status with `{"error":"server_error"}` (the code is not
    /// consumed; a number that is not an HTTP status becomes 500).
    TokenEndpointStatus(u16),
    /// The token endpoint answers 400 `{"error":"invalid_grant"}` (the code is not consumed).
    InvalidGrant,
    /// The token endpoint's success response has no `id_token`.
    NoIdToken,
    /// The token endpoint's success response is a valid token response padded to more than
    /// 2 MiB.
    OversizedTokenResponse,
    /// The token endpoint's success response says `"token_type":"mac"`.
    TokenTypeNotBearer,
    /// Discovery answers 302 with `Location: https://elsewhere.example.test/...`.
    DiscoveryRedirect,
    /// The callback's RFC 9207 `iss` parameter is `https://wrong-issuer.example.test`. This
    /// switches the `iss` parameter on (also in the discovery document) while it is active.
    WrongIssParameter,
    /// Userinfo answers with a `sub` that is not the user's (`other-` + subject).
    UserInfoWrongSub,
    /// The `refresh_token` grant answers 400 `{"error":"invalid_grant"}`, as when the user
    /// withdrew consent (the authorization-code grant is unaffected).
    RefreshInvalidGrant,
}

impl FakeIdp {
    /// Whether the callback carries the RFC 9207 `iss` parameter and the discovery document says
    /// `authorization_response_iss_parameter_supported: true`. Off by default.
    ///
    /// The parameter is the issuer the discovery document of the authorization endpoint states:
    /// for Entra's `organizations` and `common`, the `{tenantid}` template itself.
    pub fn set_iss_parameter(&self, on: bool) {
        self.state().iss_parameter = on;
    }

    /// Switches a [`Misbehavior`] on, until [`behave`](Self::behave).
    pub fn misbehave(&self, misbehavior: Misbehavior) {
        if misbehavior == Misbehavior::NoKidWithSeveralKeys && self.state().keys.len() < 2 {
            // Generate outside the lock: it takes a while.
            let extra = SigningKey::generate();
            let mut state = self.state();
            if state.keys.len() < 2 {
                // Published but older than the signer: the signer stays the same.
                state.keys.insert(0, extra);
            }
        }
        if misbehavior == Misbehavior::UnknownKid && self.state().unpublished_key.is_none() {
            let key = SigningKey::generate();
            self.state().unpublished_key.get_or_insert(key);
        }
        let mut state = self.state();
        if !state.misbehaviors.contains(&misbehavior) {
            state.misbehaviors.push(misbehavior);
        }
    }

    /// Switches every [`Misbehavior`] off.
    pub fn behave(&self) {
        self.state().misbehaviors.clear();
    }

    /// Generates a new signing key: tokens signed from now on use it, and the JWKS publishes it
    /// beside the older keys (until [`retire_old_keys`](Self::retire_old_keys)).
    pub fn rotate_key(&self) {
        let key = SigningKey::generate();
        self.state().keys.push(key);
    }

    /// Generates a new P-256 key that signs from now on with ES256, published beside the older
    /// keys; the discovery document then advertises `ES256` beside `RS256`.
    pub fn rotate_key_es256(&self) {
        let key = SigningKey::generate_es256();
        self.state().keys.push(key);
    }

    /// Whether the `refresh_token` grant also answers a new ID token (OpenID Connect Core
    /// §12.2), signed now, for the grant's subject and client, without `nonce`, and shaped by
    /// the active ID-token [`Misbehavior`]s. Off by default (Google and Entra do answer one
    /// when the scope has `openid`; the crate verifies it).
    pub fn set_refresh_id_token(&self, on: bool) {
        self.state().refresh_id_token = on;
    }

    /// Unpublishes every key but the current signer.
    pub fn retire_old_keys(&self) {
        let mut state = self.state();
        let keep = state.keys.len().saturating_sub(1);
        state.keys.drain(..keep);
    }

    /// The `kid`s the JWKS publishes, oldest first; the last one signs.
    pub fn key_ids(&self) -> Vec<String> {
        self.state().keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// Whether the `refresh_token` grant rotates: answers a new refresh token and marks the
    /// presented one used (presenting a used one again revokes every refresh token of that
    /// consent, and answers `invalid_grant`). Default: off for Google (which does not
    /// rotate), on for Entra (which does), off for the generic provider.
    pub fn set_refresh_rotation(&self, on: bool) {
        self.state().refresh_rotation = on;
    }

    /// How many requests the discovery endpoint received.
    pub fn discovery_fetches(&self) -> u64 {
        self.inner.discovery_fetches.load(Ordering::Relaxed)
    }

    /// How many requests the JWKS endpoint received.
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks_fetches.load(Ordering::Relaxed)
    }

    /// How many requests the token endpoint received (refused ones included).
    pub fn token_requests(&self) -> u64 {
        self.inner.token_requests.load(Ordering::Relaxed)
    }

    /// How many `refresh_token` grants the token endpoint received (refused ones included).
    pub fn refresh_requests(&self) -> u64 {
        self.inner.refresh_requests.load(Ordering::Relaxed)
    }

    /// How many requests the userinfo endpoint received (refused ones included).
    pub fn userinfo_requests(&self) -> u64 {
        self.inner.userinfo_requests.load(Ordering::Relaxed)
    }
}

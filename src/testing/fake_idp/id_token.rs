//! The ID token: its claims and its signature, as the active misbehaviours shape them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::keys::random_token;
use super::knobs::Misbehavior;
use super::{FakeIdp, FakeIdpError, FakeUser, State, TOKEN_TTL_SECS, WRONG_ISSUER};

/// The client id that "other" audiences and `azp` values name in misbehaving tokens.
const OTHER_CLIENT: &str = "other-client";

impl FakeIdp {
    pub(super) fn id_token_claims(
        &self,
        state: &State,
        user: &FakeUser,
        client_id: &str,
        nonce: &str,
        now: i64,
    ) -> Map<String, Value> {
        let personality = &self.inner.personality;
        let mut c = Map::new();
        c.insert("iss".into(), json!(self.inner.token_issuer(user)));
        c.insert("sub".into(), json!(user.subject));
        c.insert("aud".into(), json!(client_id));
        c.insert("azp".into(), json!(client_id));
        c.insert("iat".into(), json!(now));
        c.insert("exp".into(), json!(now + TOKEN_TTL_SECS));
        c.insert("nonce".into(), json!(nonce));
        if !user.omit_profile_from_id_token {
            if let Some(email) = &user.email {
                c.insert("email".into(), json!(email));
                if !personality.is_entra() {
                    c.insert("email_verified".into(), json!(user.email_verified));
                }
            }
            if let Some(name) = &user.name {
                c.insert("name".into(), json!(name));
            }
        }
        if personality.is_google()
            && let Some(hd) = &user.hosted_domain
        {
            c.insert("hd".into(), json!(hd));
        }
        if personality.is_entra() {
            c.insert("ver".into(), json!("2.0"));
            c.insert("tid".into(), json!(user.effective_tenant_id()));
            c.insert("oid".into(), json!(user.effective_object_id()));
            if !user.omit_profile_from_id_token
                && let Some(upn) = user.preferred_username.as_ref().or(user.email.as_ref())
            {
                c.insert("preferred_username".into(), json!(upn));
            }
            if user.email_domain_verified {
                c.insert("xms_edov".into(), json!(true));
            }
        }
        for m in &state.misbehaviors {
            match m {
                Misbehavior::WrongIssuer => {
                    c.insert("iss".into(), json!(WRONG_ISSUER));
                }
                Misbehavior::WrongAudience => {
                    c.insert("aud".into(), json!(OTHER_CLIENT));
                    c.remove("azp");
                }
                Misbehavior::ExtraAudienceWithoutAzp => {
                    c.insert("aud".into(), json!([client_id, OTHER_CLIENT]));
                    c.remove("azp");
                }
                Misbehavior::AzpMismatch => {
                    c.insert("azp".into(), json!(OTHER_CLIENT));
                }
                Misbehavior::Expired => {
                    c.insert("iat".into(), json!(now - 3 * 3600));
                    c.insert("exp".into(), json!(now - 2 * 3600));
                }
                Misbehavior::IssuedInFuture => {
                    c.insert("iat".into(), json!(now + 3600));
                    c.insert("exp".into(), json!(now + 2 * 3600));
                }
                Misbehavior::MissingSub => {
                    c.remove("sub");
                }
                Misbehavior::WrongSubject => {
                    c.insert("sub".into(), json!(format!("other-{}", user.subject)));
                }
                Misbehavior::MissingIat => {
                    c.remove("iat");
                }
                Misbehavior::MissingNonce => {
                    c.remove("nonce");
                }
                Misbehavior::WrongNonce => {
                    c.insert("nonce".into(), json!(format!("wrong-{}", random_token(12))));
                }
                _ => {}
            }
        }
        // Last, so that it stringifies whatever `exp` the others chose.
        if state.misbehaviors.contains(&Misbehavior::ExpAsString)
            && let Some(exp) = c.get("exp").map(ToString::to_string)
        {
            c.insert("exp".into(), json!(exp));
        }
        c
    }
}

/// Signs `claims` with the current key, as the active misbehaviours shape it.
pub(super) fn sign_id_token(
    state: &State,
    claims: &Map<String, Value>,
) -> Result<String, FakeIdpError> {
    let active = |m: Misbehavior| state.misbehaviors.contains(&m);
    let current = state.keys.last().ok_or(FakeIdpError::Signing)?;
    let signer = if active(Misbehavior::UnknownKid) {
        state.unpublished_key.as_ref().unwrap_or(current)
    } else {
        current
    };
    let alg = if active(Misbehavior::AlgNone) {
        "none"
    } else if active(Misbehavior::Hs256WithPublicKey) {
        "HS256"
    } else {
        signer.alg()
    };
    let mut header = Map::new();
    header.insert("alg".into(), json!(alg));
    header.insert("typ".into(), json!("JWT"));
    if !active(Misbehavior::NoKidWithSeveralKeys) && !active(Misbehavior::NoKid) {
        header.insert("kid".into(), json!(signer.kid));
    }
    let header = serde_json::to_vec(&header).map_err(|_| FakeIdpError::Signing)?;
    let payload = serde_json::to_vec(claims).map_err(|_| FakeIdpError::Signing)?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut signature = match alg {
        "none" => Vec::new(),
        "HS256" => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &signer.spki_der);
            aws_lc_rs::hmac::sign(&key, signing_input.as_bytes())
                .as_ref()
                .to_vec()
        }
        _ => signer.sign(signing_input.as_bytes())?,
    };
    if active(Misbehavior::BadSignature) {
        for byte in signature.iter_mut().take(8) {
            *byte ^= 0xA5;
        }
    }
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

//! The stored form of a [`PendingLogin`]: format 2, compact binary; format 1 (JSON, written
//! before 0.x's compact records) still decodes, so logins begun before an upgrade complete
//! after it.
//!
//! Format 2, field by field ([`BinaryWriter`]): the byte `2`; tenant and application (text);
//! the intent (a tag byte, `0` sign-in, `1` link then the user, `2` connect then the
//! connection); the PKCE verifier and the nonce (random tokens: 32 raw bytes each); the
//! sanitised `return_to` and the redirect URI (text); the expiry (seconds and nanoseconds);
//! the tenant's policy epoch. About 140 bytes where the JSON took 300.
//!
//! The redirect URI is kept although the broker could render it again from the tenant, the
//! application and its redirect path: the token request must repeat the authorization
//! request's URI byte for byte (RFC 6749 §4.1.3), and a login begun before a change of the
//! public base URL or redirect path (or on a node configured differently) must still send the
//! URI it began with.

use serde::Deserialize;
use time::OffsetDateTime;

use super::LoginIntent;
use super::pending::PendingLogin;
use crate::ids::{ConnectionId, ProviderId, TenantId, UserId};
use crate::oauth::PkceVerifier;
use crate::store::StoreError;
use crate::store::records::{
    self, BinaryReader, BinaryWriter, Namespace, PENDING_LOGIN, StoredRecord,
};

/// The first byte of a format-2 record (the registry's format version).
const FORMAT: u8 = PENDING_LOGIN.format as u8;

const SIGN_IN: u8 = 0;
const LINK: u8 = 1;
const CONNECT: u8 = 2;

/// Format 1, as written until format 2: a JSON object. Read only.
#[derive(Deserialize)]
struct Format1 {
    tenant: TenantId,
    provider: ProviderId,
    intent: LoginIntent,
    pkce_verifier: PkceVerifier,
    nonce: String,
    return_to: String,
    redirect_uri: String,
    expires_at: OffsetDateTime,
    policy_epoch: u64,
}

impl From<Format1> for PendingLogin {
    fn from(f: Format1) -> Self {
        Self {
            tenant: f.tenant,
            provider: f.provider,
            intent: f.intent,
            pkce_verifier: f.pkce_verifier,
            nonce: f.nonce,
            return_to: f.return_to,
            redirect_uri: f.redirect_uri,
            expires_at: f.expires_at,
            policy_epoch: f.policy_epoch,
        }
    }
}

impl StoredRecord for PendingLogin {
    const NAMESPACE: &'static Namespace = &PENDING_LOGIN;

    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        let capacity = 128
            + self.tenant.as_str().len()
            + self.provider.as_str().len()
            + self.return_to.len()
            + self.redirect_uri.len()
            + match &self.intent {
                LoginIntent::Link { user } => user.as_str().len(),
                LoginIntent::Connect { connection } => connection.as_str().len(),
                _ => 0,
            };
        let mut w = BinaryWriter::new(FORMAT, capacity);
        w.text(self.tenant.as_str()).text(self.provider.as_str());
        match &self.intent {
            LoginIntent::SignIn => w.byte(SIGN_IN),
            LoginIntent::Link { user } => w.byte(LINK).text(user.as_str()),
            LoginIntent::Connect { connection } => w.byte(CONNECT).text(connection.as_str()),
        };
        w.token(self.pkce_verifier.secret())
            .token(&self.nonce)
            .text(&self.return_to)
            .text(&self.redirect_uri)
            .time(self.expires_at)
            .uint(self.policy_epoch);
        Ok(w.finish())
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let ns = Self::NAMESPACE;
        let corrupt = || records::corrupt(ns);
        let (format, mut r) = BinaryReader::new(ns, bytes)?;
        match format {
            b'{' => return records::from_json::<Format1>(ns, bytes).map(Self::from),
            FORMAT => {}
            _ => return Err(corrupt()),
        }
        let tenant = TenantId::parse(r.text()?).map_err(|_| corrupt())?;
        let provider = ProviderId::parse(r.text()?).map_err(|_| corrupt())?;
        let intent = match r.byte()? {
            SIGN_IN => LoginIntent::SignIn,
            LINK => LoginIntent::Link {
                user: UserId::parse(r.text()?).map_err(|_| corrupt())?,
            },
            CONNECT => LoginIntent::Connect {
                connection: ConnectionId::parse(r.text()?).map_err(|_| corrupt())?,
            },
            _ => return Err(corrupt()),
        };
        let pending = Self {
            tenant,
            provider,
            intent,
            pkce_verifier: PkceVerifier::new(r.token()?),
            nonce: r.token()?,
            return_to: r.text()?.to_owned(),
            redirect_uri: r.text()?.to_owned(),
            expires_at: r.time()?,
            policy_epoch: r.uint()?,
        };
        r.finish()?;
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::crypto::random_token;

    fn pending(intent: LoginIntent) -> PendingLogin {
        PendingLogin {
            tenant: TenantId::parse("acme").unwrap(),
            provider: ProviderId::parse("google").unwrap(),
            intent,
            pkce_verifier: PkceVerifier::new(random_token(32)),
            nonce: random_token(32),
            return_to: "/inbox?tab=2".to_owned(),
            redirect_uri: "https://cx.example.com/sso/callback/acme/google".to_owned(),
            expires_at: datetime!(2026-03-02 09:10:00.123456789 UTC),
            policy_epoch: 300,
        }
    }

    fn assert_same(a: &PendingLogin, b: &PendingLogin) {
        assert_eq!(a.tenant, b.tenant);
        assert_eq!(a.provider, b.provider);
        assert_eq!(a.intent, b.intent);
        assert_eq!(a.pkce_verifier.secret(), b.pkce_verifier.secret());
        assert_eq!(a.nonce, b.nonce);
        assert_eq!(a.return_to, b.return_to);
        assert_eq!(a.redirect_uri, b.redirect_uri);
        assert_eq!(a.expires_at, b.expires_at);
        assert_eq!(a.policy_epoch, b.policy_epoch);
    }

    #[test]
    fn every_intent_reads_back_as_written_in_under_half_the_json() {
        for intent in [
            LoginIntent::SignIn,
            LoginIntent::Link {
                user: UserId::parse("ü-1 with spaces").unwrap(),
            },
            LoginIntent::Connect {
                connection: ConnectionId::parse("box-1").unwrap(),
            },
        ] {
            let login = pending(intent);
            let bytes = login.to_bytes().unwrap();
            assert_eq!(bytes.first(), Some(&2));
            assert_same(&PendingLogin::from_bytes(&bytes).unwrap(), &login);
        }
        let login = pending(LoginIntent::SignIn);
        let json = serde_json::to_vec(&serde_json::json!({
            "tenant": "acme", "provider": "google", "intent": "SignIn",
            "pkce_verifier": login.pkce_verifier.secret(), "nonce": login.nonce,
            "return_to": login.return_to, "redirect_uri": login.redirect_uri,
            "expires_at": login.expires_at, "policy_epoch": 300,
        }))
        .unwrap();
        let bytes = login.to_bytes().unwrap();
        assert!(
            bytes.len() * 2 < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn a_format_1_record_still_decodes() {
        // As format 1 wrote it (the stored_records fuzz seed of before format 2).
        let v1 = br#"{"tenant":"acme","provider":"idp","intent":{"Link":{"user":"alice"}},"pkce_verifier":"-GoslLOh7UKgxTPcOoSbQ6JwjxZNNfw1arpPp99u6KE","nonce":"mO69OVbgfg4fAj6NMs_3yG5cuAq3RO_zls7ysnW_n24","return_to":"/inbox","redirect_uri":"https://cx.fuzz.test/sso/callback/idp","expires_at":[2026,61,9,10,0,0,0,0,0],"policy_epoch":4}"#;
        let p = PendingLogin::from_bytes(v1).unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        assert_eq!(p.provider.as_str(), "idp");
        assert_eq!(
            p.intent,
            LoginIntent::Link {
                user: UserId::parse("alice").unwrap()
            }
        );
        assert_eq!(
            p.pkce_verifier.secret(),
            "-GoslLOh7UKgxTPcOoSbQ6JwjxZNNfw1arpPp99u6KE"
        );
        assert_eq!(p.nonce, "mO69OVbgfg4fAj6NMs_3yG5cuAq3RO_zls7ysnW_n24");
        assert_eq!(p.return_to, "/inbox");
        assert_eq!(p.redirect_uri, "https://cx.fuzz.test/sso/callback/idp");
        assert_eq!(p.expires_at, datetime!(2026-03-02 09:10 UTC));
        assert_eq!(p.policy_epoch, 4);
        // Written again, it is format 2.
        assert_eq!(p.to_bytes().unwrap().first(), Some(&2));
    }

    #[test]
    fn a_corrupt_record_is_a_typed_error() {
        let bytes = pending(LoginIntent::Link {
            user: UserId::parse("alice").unwrap(),
        })
        .to_bytes()
        .unwrap();
        let mut bad: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![3],
            b"{\"tenant\":".to_vec(),
            [bytes.as_slice(), &[0]].concat(),
        ];
        // Every truncation, and every byte changed to values that break it.
        bad.extend((0..bytes.len()).map(|n| bytes[..n].to_vec()));
        for at in 1..bytes.len() {
            for v in [0x00, 0x09, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] = v;
                if let Err(e) = PendingLogin::from_bytes(&b) {
                    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
                }
            }
        }
        for b in bad {
            let err = PendingLogin::from_bytes(&b).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{b:?}: {err:?}");
            assert_eq!(err.to_string(), "stored record is corrupt: pending login");
        }
        // An id its type refuses (an empty tenant) is corrupt too.
        let mut w = BinaryWriter::new(FORMAT, 0);
        w.text("").text("google");
        assert!(PendingLogin::from_bytes(&w.finish()).is_err());
    }
}

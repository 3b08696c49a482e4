//! The key ring of a configuration: as stored (keys sealed), as decoded and cached (ready-made
//! `jsonwebtoken` keys), and how it is read and changed (compare-and-swap on the version).

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::{Zeroize, Zeroizing};

use super::VisitorAudience;
use super::Visitors;
use super::keys::{VisitorKeyId, VisitorKeyInfo, VisitorKeyState};
use crate::crypto::{self, EncryptionKey};
use crate::error::{Error, VisitorAdminError, VisitorTokenError};
use crate::ids::TenantId;
use crate::store::records::{self, CasRetry, StoredRecord, json_record};
use crate::store::{self, CasOutcome, NewRecord, Record, StoreError};

/// The store namespace of visitor configurations, keyed `tenant|audience`, indexed by tenant.
pub(super) const NS_CONFIG: &str = records::VISITOR_CONFIG.name;
/// The format version of [`RingRecord`].
pub(super) const RECORD_FORMAT: u32 = records::VISITOR_CONFIG.format;
/// Keys a ring may hold that are not retired.
const MAX_USABLE_KEYS: usize = 8;
/// Retired keys whose metadata a ring keeps (the oldest go first).
const MAX_RETIRED_KEPT: usize = 16;

// ---------------------------------------------------------------------------------------------
// Stored form

#[derive(Serialize, Deserialize)]
pub(super) struct RingRecord {
    pub(super) v: u32,
    pub(super) tenant: String,
    pub(super) audience: String,
    pub(super) max_lifetime_secs: i64,
    pub(super) default_lifetime_secs: i64,
    pub(super) single_use: bool,
    pub(super) keys: Vec<KeyRecord>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct KeyRecord {
    pub(super) kid: String,
    pub(super) state: VisitorKeyState,
    pub(super) created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) retired_at: Option<i64>,
    /// Unpadded base64url in memory; in the store, sealed under the broker's encryption key
    /// when there is one (`crypto::seal_text`, bound to tenant, audience and kid). Erased when
    /// the key is retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) key: Option<String>,
}

/// A ring as written: its fields, with the sealed keys in place of the plain ones.
struct SealedRing<'a> {
    ring: &'a RingRecord,
    keys: Vec<KeyRecord>,
}

impl Serialize for SealedRing<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.ring;
        let mut st = s.serialize_struct("RingRecord", 7)?;
        st.serialize_field("v", &r.v)?;
        st.serialize_field("tenant", &r.tenant)?;
        st.serialize_field("audience", &r.audience)?;
        st.serialize_field("max_lifetime_secs", &r.max_lifetime_secs)?;
        st.serialize_field("default_lifetime_secs", &r.default_lifetime_secs)?;
        st.serialize_field("single_use", &r.single_use)?;
        st.serialize_field("keys", &self.keys)?;
        st.end()
    }
}

impl Drop for KeyRecord {
    fn drop(&mut self) {
        if let Some(k) = self.key.as_mut() {
            k.zeroize();
        }
    }
}

fn key_binding<'a>(tenant: &'a str, audience: &'a str) -> crypto::Binding<'a> {
    crypto::Binding {
        domain: crypto::VISITOR_DOMAIN,
        tenant,
        item: audience,
    }
}

impl RingRecord {
    /// Decodes the ring stored under `skey` and opens its keys. A record whose tenant and
    /// audience do not name `skey` is refused: copied under another key, it would otherwise
    /// serve its keys there (the sealing binds each key to the tenant and audience the record
    /// *says*, so it cannot tell).
    pub(super) fn decode(
        rec: &Record,
        secret: Option<&EncryptionKey>,
        skey: &str,
    ) -> Result<Self, Error> {
        let mut ring = Self::from_bytes(&rec.value)?;
        if ring.v != RECORD_FORMAT || store::key(&[&ring.tenant, &ring.audience]) != skey {
            return Err(corrupt());
        }
        let at = key_binding(&ring.tenant, &ring.audience);
        for k in &mut ring.keys {
            if let Some(stored) = k.key.as_mut() {
                let open = crypto::open_text(secret, at, &k.kid, stored).ok_or_else(|| {
                    StoreError::Corrupt {
                        message: "a visitor key does not decrypt under this broker's key for \
                                  this record"
                            .into(),
                    }
                })?;
                stored.zeroize();
                *stored = open;
            }
        }
        Ok(ring)
    }

    /// The stored form: keys sealed under the broker's encryption key, in the clear without
    /// one.
    pub(super) fn encode(&self, secret: Option<&EncryptionKey>) -> Result<NewRecord, Error> {
        let at = key_binding(&self.tenant, &self.audience);
        let keys = self
            .keys
            .iter()
            .map(|k| {
                Ok(KeyRecord {
                    kid: k.kid.clone(),
                    state: k.state,
                    created_at: k.created_at,
                    retired_at: k.retired_at,
                    key: k
                        .key
                        .as_deref()
                        .map(|plain| crypto::seal_text(secret, at, &k.kid, plain))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let sealed = SealedRing { ring: self, keys };
        let value = records::to_json(&records::VISITOR_CONFIG, &sealed)?;
        Ok(NewRecord::new(value).index(self.tenant.clone()))
    }

    /// How many keys are not retired.
    pub(super) fn usable(&self) -> usize {
        self.keys
            .iter()
            .filter(|k| k.state != VisitorKeyState::Retired)
            .count()
    }

    pub(super) fn find_mut(
        &mut self,
        kid: &VisitorKeyId,
    ) -> Result<&mut KeyRecord, VisitorAdminError> {
        self.keys
            .iter_mut()
            .find(|k| k.kid == kid.as_str())
            .ok_or(VisitorAdminError::NoSuchKey)
    }

    /// Adds a key as verify-only.
    pub(super) fn push_key(
        &mut self,
        kid: &VisitorKeyId,
        key: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), VisitorAdminError> {
        if self.keys.iter().any(|k| k.kid == kid.as_str()) {
            return Err(VisitorAdminError::DuplicateKid);
        }
        if self.usable() >= MAX_USABLE_KEYS {
            return Err(VisitorAdminError::TooManyKeys(MAX_USABLE_KEYS));
        }
        self.keys.push(KeyRecord {
            kid: kid.as_str().to_owned(),
            state: VisitorKeyState::VerifyOnly,
            created_at: now.unix_timestamp(),
            retired_at: None,
            key: Some(URL_SAFE_NO_PAD.encode(key)),
        });
        Ok(())
    }

    /// Drops the metadata of the oldest retired keys beyond what a ring keeps.
    pub(super) fn trim_retired(&mut self) {
        let retired = self
            .keys
            .iter()
            .filter(|k| k.state == VisitorKeyState::Retired)
            .count();
        if retired > MAX_RETIRED_KEPT {
            let mut drop_n = retired - MAX_RETIRED_KEPT;
            self.keys.retain(|k| {
                if drop_n > 0 && k.state == VisitorKeyState::Retired {
                    drop_n -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    pub(super) fn infos(&self) -> Vec<VisitorKeyInfo> {
        self.keys
            .iter()
            .filter_map(|k| {
                Some(VisitorKeyInfo {
                    kid: VisitorKeyId::new(k.kid.clone()).ok()?,
                    state: k.state,
                    created_at: from_unix(k.created_at),
                    retired_at: k.retired_at.map(from_unix),
                })
            })
            .collect()
    }
}

json_record!(RingRecord => VISITOR_CONFIG);

pub(super) fn corrupt() -> Error {
    records::corrupt(&records::VISITOR_CONFIG).into()
}

pub(super) fn from_unix(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(super) fn config_key(tenant: &TenantId, audience: &VisitorAudience) -> String {
    store::key(&[tenant.as_str(), audience.as_str()])
}

// ---------------------------------------------------------------------------------------------
// Decoded, cached form

/// What the signing key of a ring mints with: the header every token carries, and the key.
pub(super) struct Signer {
    pub(super) header: Header,
    pub(super) key: EncodingKey,
}

/// One key of a decoded ring. The `jsonwebtoken` keys hold copies of the key bytes and zeroize
/// them on drop.
struct RingKey {
    kid: String,
    state: VisitorKeyState,
    /// `None` once the key is retired.
    verifier: Option<DecodingKey>,
    /// Only for the signing key.
    signer: Option<Signer>,
}

/// A decoded key ring, valid for exactly the record bytes it was decoded from.
pub(crate) struct Ring {
    pub(super) max_lifetime: i64,
    pub(super) default_lifetime: i64,
    pub(super) single_use: bool,
    keys: Vec<RingKey>,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Ring {
    fn decode(rec: &Record, secret: Option<&EncryptionKey>, skey: &str) -> Result<Self, Error> {
        let stored = RingRecord::decode(rec, secret, skey)?;
        let mut keys = Vec::with_capacity(stored.keys.len());
        for k in &stored.keys {
            let bytes = match (&k.key, k.state) {
                (Some(b64), VisitorKeyState::Signing | VisitorKeyState::VerifyOnly) => {
                    Some(Zeroizing::new(
                        URL_SAFE_NO_PAD
                            .decode(b64.as_bytes())
                            .map_err(|_| corrupt())?,
                    ))
                }
                _ => None,
            };
            let signer = match (&bytes, k.state) {
                (Some(bytes), VisitorKeyState::Signing) => Some(Signer {
                    header: Header {
                        kid: Some(k.kid.clone()),
                        ..Header::new(Algorithm::HS256)
                    },
                    key: EncodingKey::from_secret(bytes),
                }),
                _ => None,
            };
            keys.push(RingKey {
                kid: k.kid.clone(),
                state: k.state,
                verifier: bytes.as_deref().map(|b| DecodingKey::from_secret(b)),
                signer,
            });
        }
        Ok(Self {
            max_lifetime: stored.max_lifetime_secs,
            default_lifetime: stored.default_lifetime_secs,
            single_use: stored.single_use,
            keys,
        })
    }

    /// The key that mints.
    pub(super) fn signer(&self) -> Result<&Signer, VisitorAdminError> {
        self.keys
            .iter()
            .find(|k| k.state == VisitorKeyState::Signing)
            .and_then(|k| k.signer.as_ref())
            .ok_or(VisitorAdminError::NoSigningKey)
    }

    /// The key that verifies a token whose header names `kid`.
    pub(super) fn verifier(&self, kid: &str) -> Result<&DecodingKey, VisitorTokenError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(VisitorTokenError::UnknownKey)?;
        match (&key.verifier, key.state) {
            (Some(v), VisitorKeyState::Signing | VisitorKeyState::VerifyOnly) => Ok(v),
            _ => Err(VisitorTokenError::KeyRetired),
        }
    }
}

/// Decoded key rings by store key. An entry is used only when the stored record is byte-for-byte
/// the one it was decoded from, so it never outlives a rotation, on this node or another.
pub(super) type RingCache = crate::store::DecodedCache<Ring>;

// ---------------------------------------------------------------------------------------------
// Reading and changing a ring

impl Visitors {
    /// The decoded ring of a configuration, from the cache while the stored bytes are unchanged.
    pub(super) async fn load_visitor_ring(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        now: OffsetDateTime,
    ) -> Result<Arc<Ring>, Error> {
        let skey = config_key(tenant, audience);
        let rec = self
            .cx
            .store
            .get(NS_CONFIG, &skey, now)
            .await?
            .ok_or(VisitorAdminError::NotConfigured)?;
        self.rings.get_or_decode(&skey, &rec.value, || {
            Ring::decode(&rec, self.cx.options.encryption_key.as_ref(), &skey)
        })
    }

    /// The stored ring of a configuration, keys opened.
    pub(super) async fn read_visitor_ring(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
    ) -> Result<RingRecord, Error> {
        let skey = config_key(tenant, audience);
        let rec = self
            .cx
            .store
            .get(NS_CONFIG, &skey, self.cx.now())
            .await?
            .ok_or(VisitorAdminError::NotConfigured)?;
        RingRecord::decode(&rec, self.cx.options.encryption_key.as_ref(), &skey)
    }

    /// Applies `change` to the stored ring with compare-and-swap, retrying on concurrent writes.
    pub(super) async fn update_visitor_ring<T>(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        mut change: impl FnMut(&mut RingRecord, OffsetDateTime) -> Result<T, VisitorAdminError> + Send,
    ) -> Result<T, Error> {
        let skey = config_key(tenant, audience);
        let mut retry = CasRetry::new(&records::VISITOR_CONFIG);
        loop {
            retry.attempt()?;
            let now = self.cx.now();
            let rec = self
                .cx
                .store
                .get(NS_CONFIG, &skey, now)
                .await?
                .ok_or(VisitorAdminError::NotConfigured)?;
            let mut ring =
                RingRecord::decode(&rec, self.cx.options.encryption_key.as_ref(), &skey)?;
            let out = change(&mut ring, now)?;
            let new = ring.encode(self.cx.options.encryption_key.as_ref())?;
            match self
                .cx
                .store
                .compare_and_swap(NS_CONFIG, &skey, rec.version, new, now)
                .await?
            {
                CasOutcome::Swapped { .. } => {
                    self.rings.forget(&skey);
                    return Ok(out);
                }
                CasOutcome::Conflict { .. } => continue,
                CasOutcome::Missing => return Err(VisitorAdminError::NotConfigured.into()),
            }
        }
    }
}

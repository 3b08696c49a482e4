//! Discovery documents and key sets (on `openidconnect` and `jsonwebtoken`), cached per
//! provider with an expiry. The provider says where its metadata comes from
//! ([`MetadataSource`]); nothing here knows a provider configuration.
//!
//! Fetches are coalesced: however many logins need a document or a key set at the same moment,
//! one request goes out and the others wait for it. An unknown `kid` triggers at most one key-set
//! refetch per cooldown, and a failed refetch keeps the keys already cached.
//!
//! Tenants choose their issuers, so the cache is bounded: at most
//! [`metadata_cache_capacity`](crate::BrokerBuilder::metadata_cache_capacity) providers (default
//! [`DEFAULT_METADATA_CACHE_CAPACITY`]); beyond, the entry whose document was fetched longest
//! ago (or never) is evicted, and fetched again when next needed. A key set may hold at most
//! [`MAX_JWKS_KEYS`] keys; a larger one is refused without decoding the rest.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::{Algorithm, DecodingKey};
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use super::Env;
use crate::error::{ConfigError, DiscoveryError, Error, IdTokenError};

/// Metadata fields that openidconnect's core types do not carry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ExtraMetadata {
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<bool>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
}

impl openidconnect::AdditionalProviderMetadata for ExtraMetadata {}

type DiscoveryDocument = openidconnect::ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// What the broker uses of a provider's discovery document.
#[derive(Debug, Clone)]
pub(crate) struct ProviderMetadata {
    /// The `issuer` of the document (the Entra template for multi-tenant applications).
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: Url,
    pub(crate) token_endpoint: Url,
    pub(crate) userinfo_endpoint: Option<Url>,
    /// `None` for plain OAuth 2.0 applications, which have no ID tokens.
    pub(crate) jwks_uri: Option<Url>,
    pub(crate) revocation_endpoint: Option<Url>,
    /// Where refresh grants go: the token endpoint, unless a plain OAuth 2.0 application
    /// names another.
    pub(crate) refresh_endpoint: Url,
    /// Advertised ID-token algorithms that we accept (never `none` or HMAC).
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) iss_parameter_supported: bool,
}

/// A verification key from a provider's key set.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    pub(crate) key: DecodingKey,
    /// The key's own `alg`, when the JWK states one.
    pub(crate) alg: Option<Algorithm>,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    all: Vec<Arc<VerifyKey>>,
    fetched_at: Option<OffsetDateTime>,
}

#[derive(Debug, Default)]
struct Entry {
    meta: RwLock<Option<(Arc<ProviderMetadata>, OffsetDateTime)>>,
    /// Held while the document is fetched; remembers when a fetch last failed with nothing
    /// cached, so that callers fail fast instead of queueing one timeout each.
    meta_fetch: tokio::sync::Mutex<Option<OffsetDateTime>>,
    keys: RwLock<Arc<KeySet>>,
    /// Held while the key set is fetched; remembers the last refetch for a key the cached set
    /// could not give (an unknown `kid`, or a replaced key without `kid`), cleared by the
    /// routine refetch of an expired set.
    keys_fetch: tokio::sync::Mutex<Option<OffsetDateTime>>,
}

/// Where a provider's metadata comes from.
#[derive(Debug, Clone)]
pub(crate) enum MetadataSource {
    /// An OpenID Connect discovery document at `url`, whose `issuer` must be
    /// `expected_issuer` exactly.
    Discovery {
        url: String,
        expected_issuer: String,
    },
    /// Endpoints configured by the host (a plain OAuth 2.0 application): no discovery and no
    /// key set.
    Configured(Arc<ProviderMetadata>),
}

impl MetadataSource {
    /// The discovery URL, which also names the cached key set.
    fn discovery_url(&self) -> Result<&str, Error> {
        match self {
            Self::Discovery { url, .. } => Ok(url),
            Self::Configured(_) => Err(ConfigError::Invalid {
                what: "provider",
                reason: "a plain OAuth 2.0 application has no discovery document".into(),
            }
            .into()),
        }
    }
}

/// How long after a failed fetch the next one is attempted (stale data is served meanwhile,
/// or the failure is repeated at once when there is none).
const FAILURE_BACKOFF: time::Duration = time::Duration::seconds(30);

/// The default bound on the number of providers cached: 10,000.
pub(crate) const DEFAULT_METADATA_CACHE_CAPACITY: usize = 10_000;

/// The most keys a key set may hold (Google publishes 2 or 3, Entra about 10).
pub(crate) const MAX_JWKS_KEYS: usize = 100;

/// The per-provider cache, bounded. O(1) per lookup in the number of providers; an insertion
/// into a full cache scans it once to evict (it comes with a network fetch anyway).
#[derive(Debug, Default)]
pub(crate) struct MetadataCache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
}

impl MetadataCache {
    fn entry(&self, discovery_url: &str, capacity: usize) -> Arc<Entry> {
        if let Ok(map) = self.entries.read()
            && let Some(e) = map.get(discovery_url)
        {
            return e.clone();
        }
        let mut map = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get(discovery_url) {
            return e.clone();
        }
        while map.len() >= capacity.max(1) {
            // The document fetched longest ago goes first; an entry without one (being fetched,
            // or failing) before any.
            let oldest = map
                .iter()
                .min_by_key(|(_, e)| read(&e.meta).map(|(_, at)| at))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.entry(discovery_url.to_owned()).or_default().clone()
    }

    /// How many providers are cached.
    pub(crate) fn len(&self) -> usize {
        self.entries.read().map_or(0, |m| m.len())
    }

    /// The provider's metadata, fetched when absent or older than the TTL. A stale document is
    /// kept (and used) when a refetch fails.
    pub(crate) async fn metadata(
        &self,
        env: &Env<'_>,
        source: &MetadataSource,
    ) -> Result<Arc<ProviderMetadata>, Error> {
        let (url, expected_issuer) = match source {
            MetadataSource::Configured(m) => return Ok(m.clone()),
            MetadataSource::Discovery {
                url,
                expected_issuer,
            } => (url, expected_issuer),
        };
        let entry = self.entry(url, env.metadata_cache_capacity);
        let now = env.clock.now();
        let ttl = env.metadata_ttl;
        let cached = read(&entry.meta).clone();
        if let Some((m, at)) = &cached
            && now - *at < ttl
        {
            return Ok(m.clone());
        }
        let mut failed_at = entry.meta_fetch.lock().await;
        let now = env.clock.now();
        if let Some((m, at)) = read(&entry.meta).clone()
            && now - at < ttl
        {
            return Ok(m);
        }
        if cached.is_none() && failed_at.is_some_and(|at| now - at < FAILURE_BACKOFF) {
            return Err(DiscoveryError::RecentlyFailed.into());
        }
        match fetch_metadata(env, url, expected_issuer).await {
            Ok(m) => {
                let m = Arc::new(m);
                *write(&entry.meta) = Some((m.clone(), env.clock.now()));
                *failed_at = None;
                Ok(m)
            }
            Err(e) => match cached {
                Some((m, _)) => {
                    tracing::warn!(error = %e, "discovery refetch failed; using the cached document");
                    // Retry after the backoff, not on every login meanwhile.
                    *write(&entry.meta) =
                        Some((m.clone(), env.clock.now() - ttl + FAILURE_BACKOFF));
                    Ok(m)
                }
                None => {
                    *failed_at = Some(env.clock.now());
                    Err(e.into())
                }
            },
        }
    }

    /// Fetches the discovery document now, bypassing and then refreshing the cache.
    pub(crate) async fn refresh_metadata(
        &self,
        env: &Env<'_>,
        source: &MetadataSource,
    ) -> Result<Arc<ProviderMetadata>, Error> {
        let (url, expected_issuer) = match source {
            MetadataSource::Configured(m) => return Ok(m.clone()),
            MetadataSource::Discovery {
                url,
                expected_issuer,
            } => (url, expected_issuer),
        };
        let entry = self.entry(url, env.metadata_cache_capacity);
        let mut failed_at = entry.meta_fetch.lock().await;
        let m = Arc::new(fetch_metadata(env, url, expected_issuer).await?);
        *write(&entry.meta) = Some((m.clone(), env.clock.now()));
        *failed_at = None;
        Ok(m)
    }

    /// The key to verify a token with `kid` (or no `kid`).
    pub(crate) async fn key(
        &self,
        env: &Env<'_>,
        source: &MetadataSource,
        meta: &ProviderMetadata,
        kid: Option<&str>,
    ) -> Result<Arc<VerifyKey>, Error> {
        let url = source.discovery_url()?;
        let entry = self.entry(url, env.metadata_cache_capacity);
        let ttl = env.metadata_ttl;

        let mut set = read(&entry.keys).clone();
        let expired = set.fetched_at.is_none_or(|at| env.clock.now() - at >= ttl);
        if expired {
            let mut last_unknown = entry.keys_fetch.lock().await;
            let current = read(&entry.keys).clone();
            if current
                .fetched_at
                .is_none_or(|at| env.clock.now() - at >= ttl)
            {
                match fetch_keys(env, jwks_uri(meta)?).await {
                    Ok(fresh) => {
                        let fresh = Arc::new(fresh);
                        *write(&entry.keys) = fresh.clone();
                        *last_unknown = None;
                        set = fresh;
                    }
                    // Keys already cached keep working when the endpoint fails; the next
                    // attempt waits for the backoff instead of coming with the next login.
                    Err(e) if !current.all.is_empty() => {
                        tracing::warn!(error = %e, "key set refetch failed; using cached keys");
                        let kept = Arc::new(KeySet {
                            by_kid: current.by_kid.clone(),
                            all: current.all.clone(),
                            fetched_at: Some(env.clock.now() - ttl + FAILURE_BACKOFF),
                        });
                        *write(&entry.keys) = kept.clone();
                        set = kept;
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                set = current;
            }
        }

        match kid {
            None => pick_unkeyed(&set),
            Some(kid) => {
                if let Some(k) = set.by_kid.get(kid) {
                    return Ok(k.clone());
                }
                // Unknown kid: one coalesced, rate-limited refetch.
                self.refetch_for(env, meta, &entry, |set| {
                    set.by_kid.get(kid).cloned().map(Ok)
                })
                .await
                .unwrap_or_else(|| Err(IdTokenError::UnknownKey.into()))
            }
        }
    }

    /// After `failed`, the only key of the cached set, did not verify a token without `kid`: the
    /// provider may have replaced its key. The only key of a refetched set (one coalesced,
    /// rate-limited refetch, as for an unknown `kid`; a caller that waited for another's refetch
    /// takes its key), or `None` when the cooldown holds or the fetch failed. `AmbiguousKey`
    /// when the set now holds several keys, `UnknownKey` when none.
    pub(crate) async fn replacement_for_unkeyed(
        &self,
        env: &Env<'_>,
        source: &MetadataSource,
        meta: &ProviderMetadata,
        failed: &Arc<VerifyKey>,
    ) -> Option<Result<Arc<VerifyKey>, Error>> {
        let entry = self.entry(source.discovery_url().ok()?, env.metadata_cache_capacity);
        self.refetch_for(env, meta, &entry, |set| match set.all.as_slice() {
            [only] if Arc::ptr_eq(only, failed) => None,
            _ => Some(pick_unkeyed(set)),
        })
        .await
    }

    /// One refetch of the key set for a key the cached set could not give, coalesced (callers
    /// that waited for another's refetch take its result) and rate-limited (at most one per
    /// `jwks_refetch_cooldown`, whatever tokens arrive; the routine refetch of an expired set
    /// starts a new cooldown). `pick` finds the key in a set; `None` when it finds none, before
    /// or after the refetch.
    async fn refetch_for(
        &self,
        env: &Env<'_>,
        meta: &ProviderMetadata,
        entry: &Entry,
        pick: impl Fn(&KeySet) -> Option<Result<Arc<VerifyKey>, Error>>,
    ) -> Option<Result<Arc<VerifyKey>, Error>> {
        let mut last_refetch = entry.keys_fetch.lock().await;
        let current = read(&entry.keys).clone();
        if let Some(found) = pick(&current) {
            return Some(found);
        }
        let now = env.clock.now();
        if last_refetch.is_some_and(|at| now - at < env.jwks_refetch_cooldown) {
            return None;
        }
        *last_refetch = Some(now);
        let uri = match jwks_uri(meta) {
            Ok(uri) => uri,
            Err(e) => return Some(Err(e)),
        };
        match fetch_keys(env, uri).await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *write(&entry.keys) = fresh.clone();
                pick(&fresh)
            }
            Err(e) => {
                tracing::warn!(error = %e, "key set refetch for a key not in the cached set failed");
                None
            }
        }
    }
}

fn jwks_uri(meta: &ProviderMetadata) -> Result<&Url, Error> {
    meta.jwks_uri
        .as_ref()
        .ok_or_else(|| IdTokenError::UnknownKey.into())
}

fn pick_unkeyed(set: &KeySet) -> Result<Arc<VerifyKey>, Error> {
    match set.all.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(IdTokenError::UnknownKey.into()),
        _ => Err(IdTokenError::AmbiguousKey.into()),
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// GET `url` and return the body of a 200, refusing redirects and oversize bodies.
async fn get(env: &Env<'_>, url: &Url) -> Result<Vec<u8>, DiscoveryError> {
    let request = http::Request::builder()
        .method(http::Method::GET)
        .uri(url.as_str())
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| DiscoveryError::Invalid("the URL cannot be requested".into()))?;
    let response = env.http.call(request).await.map_err(DiscoveryError::Http)?;
    let status = response.status();
    if status.is_redirection() {
        return Err(DiscoveryError::Redirect(status.as_u16()));
    }
    if status != http::StatusCode::OK {
        return Err(DiscoveryError::Status(status.as_u16()));
    }
    let body = response.into_body();
    if body.len() > env.max_response_bytes {
        return Err(DiscoveryError::TooLarge(env.max_response_bytes));
    }
    Ok(body)
}

async fn fetch_metadata(
    env: &Env<'_>,
    url: &str,
    expected_issuer: &str,
) -> Result<ProviderMetadata, DiscoveryError> {
    let url =
        Url::parse(url).map_err(|e| DiscoveryError::Invalid(format!("discovery URL: {e}")))?;
    if !crate::http::is_allowed_endpoint(&url) {
        return Err(DiscoveryError::InsecureEndpoint("discovery"));
    }
    let body = get(env, &url).await?;
    let doc: DiscoveryDocument = serde_json::from_slice(&body)
        .map_err(|e| DiscoveryError::Invalid(format!("not OpenID provider metadata: {e}")))?;
    let issuer = doc.issuer().as_str().to_owned();
    if issuer != expected_issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: expected_issuer.to_owned(),
            found: issuer,
        });
    }
    let endpoint = |what: &'static str, url: &Url| -> Result<Url, DiscoveryError> {
        if crate::http::is_allowed_endpoint(url) {
            Ok(url.clone())
        } else {
            Err(DiscoveryError::InsecureEndpoint(what))
        }
    };
    let authorization_endpoint =
        endpoint("authorization_endpoint", doc.authorization_endpoint().url())?;
    let token_endpoint = endpoint(
        "token_endpoint",
        doc.token_endpoint()
            .ok_or_else(|| DiscoveryError::Invalid("no token_endpoint".into()))?
            .url(),
    )?;
    let userinfo_endpoint = doc
        .userinfo_endpoint()
        .map(|u| endpoint("userinfo_endpoint", u.url()))
        .transpose()?;
    let jwks_uri = Some(endpoint("jwks_uri", doc.jwks_uri().url())?);
    let extra = doc.additional_metadata();
    let revocation_endpoint = match &extra.revocation_endpoint {
        Some(s) => Some(endpoint(
            "revocation_endpoint",
            &Url::parse(s)
                .map_err(|_| DiscoveryError::Invalid("bad revocation_endpoint".into()))?,
        )?),
        None => None,
    };
    let algorithms: Vec<Algorithm> = doc
        .id_token_signing_alg_values_supported()
        .iter()
        .filter_map(|a| match a {
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => Some(Algorithm::RS256),
            CoreJwsSigningAlgorithm::RsaSsaPssSha256 => Some(Algorithm::PS256),
            CoreJwsSigningAlgorithm::EcdsaP256Sha256 => Some(Algorithm::ES256),
            CoreJwsSigningAlgorithm::EdDsa => Some(Algorithm::EdDSA),
            _ => None,
        })
        .collect();
    if algorithms.is_empty() {
        return Err(DiscoveryError::Invalid(
            "the provider advertises none of RS256, PS256, ES256, EdDSA for ID tokens".into(),
        ));
    }
    Ok(ProviderMetadata {
        issuer,
        authorization_endpoint,
        refresh_endpoint: token_endpoint.clone(),
        token_endpoint,
        userinfo_endpoint,
        jwks_uri,
        revocation_endpoint,
        algorithms,
        iss_parameter_supported: extra
            .authorization_response_iss_parameter_supported
            .unwrap_or(false),
    })
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: BoundedKeys,
}

/// The `keys` array, decoded one element at a time and refused at the first element beyond
/// [`MAX_JWKS_KEYS`], so that a huge set costs no more than the limit.
struct BoundedKeys(Vec<serde_json::Value>);

/// The message of the serde error that [`BoundedKeys`] stops with, told apart from a
/// malformed document.
const TOO_MANY_KEYS: &str = "cx-sso: too many keys";

impl<'de> Deserialize<'de> for BoundedKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = BoundedKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of JWKs")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<BoundedKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = seq.next_element::<serde_json::Value>()? {
                    if keys.len() == MAX_JWKS_KEYS {
                        return Err(serde::de::Error::custom(TOO_MANY_KEYS));
                    }
                    keys.push(key);
                }
                Ok(BoundedKeys(keys))
            }
        }
        d.deserialize_seq(Visit)
    }
}

async fn fetch_keys(env: &Env<'_>, url: &Url) -> Result<KeySet, DiscoveryError> {
    let body = get(env, url).await?;
    let raw: RawKeySet = serde_json::from_slice(&body).map_err(|e| {
        if e.to_string().starts_with(TOO_MANY_KEYS) {
            DiscoveryError::TooManyKeys(MAX_JWKS_KEYS)
        } else {
            DiscoveryError::Invalid(format!("not a JWK set: {e}"))
        }
    })?;
    let mut set = KeySet {
        fetched_at: Some(env.clock.now()),
        ..KeySet::default()
    };
    for value in raw.keys.0 {
        // Keys we cannot use are skipped, not fatal: a provider may publish encryption keys or
        // key types we do not support beside the signing keys.
        let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(value) else {
            continue;
        };
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) || matches!(
            jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
        ) {
            continue;
        }
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok());
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let key = Arc::new(VerifyKey {
            kid: jwk.common.key_id.clone(),
            key,
            alg,
        });
        if let Some(kid) = &key.kid {
            set.by_kid.insert(kid.clone(), key.clone());
        }
        set.all.push(key);
    }
    Ok(set)
}

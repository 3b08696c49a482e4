//! The typed record layer: the one list of every namespace the crate stores, and the only code
//! that turns records into bytes and back.
//!
//! Capabilities read and write typed records ([`StoredRecord`]) through the helpers here
//! ([`get`], [`list`], [`take`], [`encode`], [`decode`]); a [`Store`] only ever sees
//! opaque bytes. [`NAMESPACES`] says, for each namespace, what it holds, whether it is durable
//! or short-lived, and the format version of its records, which is what the author of a SQL or
//! Redis backend needs to know (`SHORT_LIVED_NAMESPACES` is derived from it).
//!
//! Every conditional-write loop of the crate (compare-and-swap or compare-and-delete) runs
//! under one [`CasRetry`]: one limit ([`CAS_ATTEMPTS`], shorter where a caller says why) and
//! one error when it is reached, [`StoreError::Contention`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::{NewRecord, Record, Store, StoreError};
use crate::ids::UserId;

/// How long the records of a namespace live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lifetime {
    /// Kept until deleted: configuration, bindings, tokens. Losing them loses data.
    Durable,
    /// Written with an expiry of minutes or seconds; losing them only makes a user start a
    /// flow again.
    ShortLived,
}

/// One namespace of the store.
#[derive(Debug)]
#[non_exhaustive]
pub struct Namespace {
    /// The namespace given to the [`Store`].
    pub name: &'static str,
    /// What one record is, in words; also the message of a
    /// [`StoreError::Corrupt`] about it.
    pub what: &'static str,
    /// Durable or short-lived.
    pub lifetime: Lifetime,
    /// The format version of the records written today. A change of format that old code
    /// cannot read gets a new version (and a reader of the old one).
    pub format: u32,
    /// The encoding of a record's bytes.
    pub encoding: Encoding,
}

/// How a namespace's records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// A JSON object (serde).
    Json,
    /// UTF-8 text.
    Text,
    /// No payload: the key's presence is the record.
    Empty,
    /// A compact binary format: its first byte is the format version, which a JSON record
    /// (`{`) never starts with, so the records of an earlier JSON format still decode; the
    /// rest is the record in [postcard](https://docs.rs/postcard) (serde, varints, no field
    /// names).
    Binary,
}

macro_rules! namespaces {
    ($($(#[$meta:meta])* $id:ident = $name:literal, $what:literal, $lifetime:ident, $encoding:ident, version $format:literal;)+) => {
        $(
            $(#[$meta])*
            pub(crate) const $id: Namespace = Namespace {
                name: $name,
                what: $what,
                lifetime: Lifetime::$lifetime,
                format: $format,
                encoding: Encoding::$encoding,
            };
        )+
        /// Every namespace the crate stores.
        pub const NAMESPACES: &[Namespace] = &[$($id),+];
    };
}

namespaces! {
    /// A tenant's provider application: its configuration, client secret sealed
    /// (`provider::StoredProvider`), keyed by tenant and application, indexed by tenant.
    PROVIDER = "provider", "provider record", Durable, Json, version 1;
    /// A provider account bound to a user (`AccountBinding`), keyed by tenant, issuer and
    /// subject, indexed by tenant and by user.
    BINDING = "binding", "binding", Durable, Json, version 1;
    /// A tenant's authentication method, pending switch, epoch and privileged users
    /// (`policy::PolicyRecord`), keyed by tenant. Version 2 added the privileged users (the
    /// `privileged_users` field), read with the policy in one round trip; a record of
    /// version 1 (without it) is still read, its privileged users then being the
    /// `privileged_user` records, until the next admin write moves them into it.
    TENANT_POLICY = "tenant_policy", "tenant policy", Durable, Json, version 2;
    /// A privileged user of a tenant (the user id as text), indexed by tenant: the layout
    /// before version 2 of `tenant_policy`. No longer written; still read (and then deleted)
    /// for a tenant whose policy record does not list its privileged users yet.
    PRIVILEGED_USER = "privileged_user", "privileged user", Durable, Text, version 1;
    /// A tenant's mailbox connection, its tokens sealed (`connection::ConnectionRecord`),
    /// indexed by tenant.
    CONNECTION = "connection", "connection record", Durable, Json, version 1;
    /// A visitor configuration: its key ring, keys sealed (`visitor::RingRecord`), indexed by
    /// tenant.
    VISITOR_CONFIG = "visitor_config", "visitor configuration record", Durable, Json, version 1;
    /// A begun login (`login::PendingLogin`), keyed by its state bound to the browser,
    /// indexed by the state's hash; lives for the login TTL.
    /// Format 2 is binary (`login::record`); format 1, JSON, still decodes.
    PENDING_LOGIN = "pending_login", "pending login", ShortLived, Binary, version 2;
    /// A link ticket (`binding::TicketRecord`), keyed by its hash bound to the tenant, indexed
    /// by its hash; lives for the link-ticket TTL.
    LINK_TICKET = "link_ticket", "link ticket", ShortLived, Json, version 1;
    /// The `jti` of a single-use visitor token, kept until the token expires.
    VISITOR_JTI = "visitor_jti", "visitor token id", ShortLived, Empty, version 1;
    /// A connection refresh lease: its holder's random id as text; lives for seconds.
    CONNECTION_LEASE = "connection_lease", "connection refresh lease", ShortLived, Text, version 1;
}

/// A record type of one namespace. Implement it with [`json_record!`] (or here, for the text
/// records), never by hand elsewhere: only this module turns records into bytes.
pub(crate) trait StoredRecord: Sized {
    /// The namespace this type is stored in.
    const NAMESPACE: &'static Namespace;
    /// The record's bytes.
    fn to_bytes(&self) -> Result<Vec<u8>, StoreError>;
    /// A record from its bytes; [`StoreError::Corrupt`] when they are not one.
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError>;
}

/// The [`StoreError::Corrupt`] about a record of `ns`.
pub(crate) fn corrupt(ns: &Namespace) -> StoreError {
    StoreError::Corrupt {
        message: ns.what.to_owned(),
    }
}

/// JSON bytes of `value`, a record of `ns`.
pub(crate) fn to_json<T: Serialize>(ns: &Namespace, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|_| corrupt(ns))
}

/// A JSON record of `ns` from its bytes.
pub(crate) fn from_json<T: DeserializeOwned>(
    ns: &Namespace,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|_| corrupt(ns))
}

/// Makes a serde type the JSON record type of a namespace of this module.
macro_rules! json_record {
    ($ty:ty => $ns:ident) => {
        impl $crate::store::records::StoredRecord for $ty {
            const NAMESPACE: &'static $crate::store::records::Namespace =
                &$crate::store::records::$ns;
            fn to_bytes(&self) -> Result<Vec<u8>, $crate::store::StoreError> {
                $crate::store::records::to_json(Self::NAMESPACE, self)
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, $crate::store::StoreError> {
                $crate::store::records::from_json(Self::NAMESPACE, bytes)
            }
        }
    };
}

pub(crate) use json_record;

/// A privileged user: the user id as UTF-8 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrivilegedUser(pub(crate) UserId);

impl StoredRecord for PrivilegedUser {
    const NAMESPACE: &'static Namespace = &PRIVILEGED_USER;
    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.0.as_str().as_bytes().to_vec())
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| UserId::parse(s).ok())
            .map(Self)
            .ok_or_else(|| corrupt(Self::NAMESPACE))
    }
}

/// A connection refresh lease: the holder's random id as UTF-8 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseHolder(pub(crate) String);

impl StoredRecord for LeaseHolder {
    const NAMESPACE: &'static Namespace = &CONNECTION_LEASE;
    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.0.as_bytes().to_vec())
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        String::from_utf8(bytes.to_vec())
            .map(Self)
            .map_err(|_| corrupt(Self::NAMESPACE))
    }
}

/// A single-use visitor token's `jti`, seen: the key is the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeenJti;

impl StoredRecord for SeenJti {
    const NAMESPACE: &'static Namespace = &VISITOR_JTI;
    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        Ok(Vec::new())
    }
    fn from_bytes(_: &[u8]) -> Result<Self, StoreError> {
        Ok(Self)
    }
}

/// A typed record read from the store, with the version a compare-and-swap needs.
#[derive(Debug, Clone)]
pub(crate) struct Versioned<R> {
    /// The record.
    pub(crate) record: R,
    /// Its store version.
    pub(crate) version: u64,
}

/// The bytes of `record`, ready to write: add an expiry or an index to the [`NewRecord`].
pub(crate) fn encode<R: StoredRecord>(record: &R) -> Result<NewRecord, StoreError> {
    Ok(NewRecord::new(record.to_bytes()?))
}

/// The typed record of a [`Record`] read from `R`'s namespace.
pub(crate) fn decode<R: StoredRecord>(record: &Record) -> Result<Versioned<R>, StoreError> {
    Ok(Versioned {
        record: R::from_bytes(&record.value)?,
        version: record.version,
    })
}

/// The live record of type `R` at `key`.
pub(crate) async fn get<R: StoredRecord>(
    store: &dyn Store,
    key: &str,
    now: OffsetDateTime,
) -> Result<Option<Versioned<R>>, StoreError> {
    store
        .get(R::NAMESPACE.name, key, now)
        .await?
        .map(|r| decode(&r))
        .transpose()
}

/// The live records of type `R` whose index is `index`, with their keys, in key order.
pub(crate) async fn list<R: StoredRecord>(
    store: &dyn Store,
    index: &str,
    now: OffsetDateTime,
) -> Result<Vec<(String, Versioned<R>)>, StoreError> {
    store
        .list(R::NAMESPACE.name, index, now)
        .await?
        .into_iter()
        .map(|(k, r)| Ok((k, decode(&r)?)))
        .collect()
}

/// Removes and returns the live record of type `R` at `key` (at most one caller gets it).
pub(crate) async fn take<R: StoredRecord>(
    store: &dyn Store,
    key: &str,
    now: OffsetDateTime,
) -> Result<Option<R>, StoreError> {
    store
        .take(R::NAMESPACE.name, key, now)
        .await?
        .map(|r| R::from_bytes(&r.value))
        .transpose()
}

/// The most attempts of one compare-and-swap (or compare-and-delete) update before it reports
/// [`StoreError::Contention`].
pub(crate) const CAS_ATTEMPTS: usize = 8;

/// Counts the attempts of a conditional write: every read-modify-write loop of the crate,
/// compare-and-swap or compare-and-delete, calls [`attempt`](Self::attempt) at the top of each
/// round, and stops with [`StoreError::Contention`] after [`CAS_ATTEMPTS`] rounds (or the limit
/// given to [`with_limit`](Self::with_limit)) lost to concurrent writers. A loop that also tries
/// a write again after a store error asks [`can_retry`](Self::can_retry) before another round,
/// and gives that error back when none is left.
#[derive(Debug)]
pub(crate) struct CasRetry {
    what: &'static str,
    attempts: usize,
    limit: usize,
}

impl CasRetry {
    /// A loop updating a record of `ns`, for at most [`CAS_ATTEMPTS`] rounds.
    pub(crate) fn new(ns: &Namespace) -> Self {
        Self::with_limit(ns, CAS_ATTEMPTS)
    }

    /// A loop updating a record of `ns`, for at most `limit` rounds (at least one).
    pub(crate) fn with_limit(ns: &Namespace, limit: usize) -> Self {
        Self {
            what: ns.what,
            attempts: 0,
            limit: limit.max(1),
        }
    }

    /// Starts a round, or reports the contention once every round was lost.
    pub(crate) fn attempt(&mut self) -> Result<(), StoreError> {
        if self.attempts >= self.limit {
            return Err(StoreError::Contention {
                message: format!(
                    "{} kept changing concurrently ({} attempts)",
                    self.what, self.limit
                ),
                source: None,
            });
        }
        self.attempts += 1;
        Ok(())
    }

    /// Whether another round may start after this one.
    pub(crate) fn can_retry(&self) -> bool {
        self.attempts < self.limit
    }

    /// Whether this round is not the first: a write that failed before may have landed with
    /// its answer lost.
    pub(crate) fn is_retry(&self) -> bool {
        self.attempts > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_distinct() {
        let mut names: Vec<&str> = NAMESPACES.iter().map(|n| n.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NAMESPACES.len());
    }

    #[test]
    fn the_short_lived_list_is_the_registrys() {
        let registry: Vec<&str> = NAMESPACES
            .iter()
            .filter(|n| n.lifetime == Lifetime::ShortLived)
            .map(|n| n.name)
            .collect();
        assert_eq!(super::super::SHORT_LIVED_NAMESPACES, registry.as_slice());
    }

    #[test]
    fn a_cas_loop_gives_up_with_contention_after_the_limit() {
        let mut retry = CasRetry::new(&TENANT_POLICY);
        for _ in 0..CAS_ATTEMPTS {
            assert!(retry.attempt().is_ok());
        }
        let err = retry.attempt().unwrap_err();
        assert!(matches!(err, StoreError::Contention { .. }), "{err:?}");
        assert!(err.to_string().contains("tenant policy"), "{err}");
    }

    #[test]
    fn a_shorter_loop_stops_at_its_own_limit() {
        let mut retry = CasRetry::with_limit(&CONNECTION, 3);
        assert!(retry.attempt().is_ok());
        assert!(!retry.is_retry());
        assert!(retry.can_retry());
        assert!(retry.attempt().is_ok());
        assert!(retry.is_retry());
        assert!(retry.attempt().is_ok());
        assert!(!retry.can_retry());
        let err = retry.attempt().unwrap_err();
        assert!(err.to_string().contains("3 attempts"), "{err}");
    }

    #[test]
    fn text_records_refuse_bytes_that_are_not_theirs() {
        assert!(PrivilegedUser::from_bytes(b"bad\nuser").is_err());
        assert!(PrivilegedUser::from_bytes(&[0xff]).is_err());
        let user = PrivilegedUser(UserId::parse("u1").unwrap());
        assert_eq!(
            PrivilegedUser::from_bytes(&user.to_bytes().unwrap()).unwrap(),
            user
        );
    }
}

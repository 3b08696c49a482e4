//! Rotation: adding, importing, promoting and retiring keys, and listing them.

use zeroize::Zeroize;

use super::VisitorAudience;
use super::keys::{
    ExportedVisitorKey, VisitorKeyId, VisitorKeyInfo, VisitorKeyState, VisitorSigningKey,
};
use super::ring::{RingRecord, from_unix};
use crate::broker::Broker;
use crate::error::{Error, VisitorAdminError};
use crate::ids::TenantId;

/// Makes a verify-only key the signing key; the previous signing key becomes verify-only.
fn promote(ring: &mut RingRecord, kid: &VisitorKeyId) -> Result<(), VisitorAdminError> {
    match ring.find_mut(kid)?.state {
        VisitorKeyState::Retired => {
            return Err(VisitorAdminError::KeyState(
                "a retired key cannot sign again",
            ));
        }
        VisitorKeyState::Signing => return Ok(()),
        VisitorKeyState::VerifyOnly => {}
    }
    for k in &mut ring.keys {
        if k.state == VisitorKeyState::Signing {
            k.state = VisitorKeyState::VerifyOnly;
        }
    }
    ring.find_mut(kid)?.state = VisitorKeyState::Signing;
    Ok(())
}

/// Retires a verify-only key and erases its bytes.
fn retire(ring: &mut RingRecord, kid: &VisitorKeyId, now: i64) -> Result<(), VisitorAdminError> {
    let k = ring.find_mut(kid)?;
    match k.state {
        VisitorKeyState::Signing => {
            return Err(VisitorAdminError::KeyState(
                "the signing key cannot be retired; promote another key first",
            ));
        }
        VisitorKeyState::Retired => return Ok(()),
        VisitorKeyState::VerifyOnly => {}
    }
    k.state = VisitorKeyState::Retired;
    k.retired_at = Some(now);
    if let Some(mut b) = k.key.take() {
        b.zeroize();
    }
    ring.trim_retired();
    Ok(())
}

impl Broker {
    /// The keys of the ring: metadata only, never key bytes.
    ///
    /// # Errors
    ///
    /// [`VisitorAdminError::NotConfigured`], [`Error::Store`].
    pub async fn list_visitor_keys(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
    ) -> Result<Vec<VisitorKeyInfo>, Error> {
        Ok(self.read_visitor_ring(tenant, audience).await?.infos())
    }

    /// Generates a new key and adds it to the ring as verify-only (step 1 of a rotation); hands
    /// it out this once.
    ///
    /// # Errors
    ///
    /// [`VisitorAdminError::NotConfigured`], [`VisitorAdminError::TooManyKeys`],
    /// [`Error::Store`] ([`StoreError::Contention`](crate::StoreError::Contention) when other
    /// writers kept changing the ring).
    pub async fn add_visitor_key(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
    ) -> Result<ExportedVisitorKey, Error> {
        let key = VisitorSigningKey::generate()?;
        let kid = VisitorKeyId::generate();
        let now = self
            .update_visitor_ring(tenant, audience, |ring, now| {
                ring.push_key(&kid, key.secret(), now)?;
                Ok(now)
            })
            .await?;
        tracing::info!(tenant = %tenant, audience = %audience, kid = %kid, "visitor key added");
        Ok(ExportedVisitorKey {
            kid,
            key,
            created_at: from_unix(now.unix_timestamp()),
        })
    }

    /// Adds a key made elsewhere (a widget vendor's shared secret) as verify-only. `kid` is
    /// the id the other party puts in its tokens; a new one is generated when `None`.
    ///
    /// # Errors
    ///
    /// [`VisitorAdminError::KeyTooShort`] under 32 bytes, [`VisitorAdminError::KeyTooLong`]
    /// over 512, [`VisitorAdminError::KeyReusesClientSecret`] when the key equals a client
    /// secret of one of the tenant's SSO applications, [`VisitorAdminError::DuplicateKid`], and
    /// as for [`add_visitor_key`](Self::add_visitor_key).
    pub async fn import_visitor_key(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        kid: Option<VisitorKeyId>,
        key: VisitorSigningKey,
    ) -> Result<VisitorKeyInfo, Error> {
        self.check_imported_visitor_key(tenant, &key).await?;
        let kid = kid.unwrap_or_else(VisitorKeyId::generate);
        let now = self
            .update_visitor_ring(tenant, audience, |ring, now| {
                ring.push_key(&kid, key.secret(), now)?;
                Ok(now)
            })
            .await?;
        tracing::info!(tenant = %tenant, audience = %audience, kid = %kid, "visitor key imported");
        Ok(VisitorKeyInfo {
            kid,
            state: VisitorKeyState::VerifyOnly,
            created_at: from_unix(now.unix_timestamp()),
            retired_at: None,
        })
    }

    /// Makes a verify-only key the signing key (step 2 of a rotation); the previous signing key
    /// becomes verify-only, so its tokens keep verifying.
    ///
    /// # Errors
    ///
    /// [`VisitorAdminError::NoSuchKey`], [`VisitorAdminError::KeyState`] when the key is
    /// retired, [`VisitorAdminError::NotConfigured`],
    /// [`Error::Store`].
    pub async fn promote_visitor_key(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        kid: &VisitorKeyId,
    ) -> Result<(), Error> {
        self.update_visitor_ring(tenant, audience, |ring, _| promote(ring, kid))
            .await?;
        tracing::info!(tenant = %tenant, audience = %audience, kid = %kid, "visitor key promoted");
        Ok(())
    }

    /// Retires a verify-only key (step 3 of a rotation): its bytes are erased and its tokens
    /// are refused from now on, on every node. Retiring a retired key does nothing.
    ///
    /// # Errors
    ///
    /// [`VisitorAdminError::KeyState`] for the signing key (promote another first),
    /// [`VisitorAdminError::NoSuchKey`], [`VisitorAdminError::NotConfigured`],
    /// [`Error::Store`] ([`StoreError::Contention`](crate::StoreError::Contention) when other
    /// writers kept changing the ring).
    pub async fn retire_visitor_key(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        kid: &VisitorKeyId,
    ) -> Result<(), Error> {
        self.update_visitor_ring(tenant, audience, |ring, now| {
            retire(ring, kid, now.unix_timestamp())
        })
        .await?;
        tracing::info!(tenant = %tenant, audience = %audience, kid = %kid, "visitor key retired");
        Ok(())
    }
}

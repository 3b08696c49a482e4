//! Rotation: adding, importing, promoting and retiring keys, and listing them.

use zeroize::Zeroize;

use super::VisitorAudience;
use super::Visitors;
use super::keys::{
    ExportedVisitorKey, VisitorKeyId, VisitorKeyInfo, VisitorKeyState, VisitorSigningKey,
};
use super::ring::{RingRecord, from_unix};
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

impl Visitors {
    /// The work of `Broker::list_visitor_keys`, whose docs say what it does.
    pub(crate) async fn list_visitor_keys(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
    ) -> Result<Vec<VisitorKeyInfo>, Error> {
        Ok(self.read_visitor_ring(tenant, audience).await?.infos())
    }

    /// The work of `Broker::add_visitor_key`, whose docs say what it does.
    pub(crate) async fn add_visitor_key(
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

    /// The work of `Broker::import_visitor_key`, whose docs say what it does.
    pub(crate) async fn import_visitor_key(
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

    /// The work of `Broker::promote_visitor_key`, whose docs say what it does.
    pub(crate) async fn promote_visitor_key(
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

    /// The work of `Broker::retire_visitor_key`, whose docs say what it does.
    pub(crate) async fn retire_visitor_key(
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

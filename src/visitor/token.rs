//! Minting and verifying tokens.

use time::Duration;

use super::VisitorAudience;
use super::claims::{VisitorClaims, VisitorIdentity};
use super::jwt;
use super::keys::VisitorKeyId;
use super::ring::from_unix;
use crate::broker::Broker;
use crate::error::{Error, VisitorAdminError, VisitorTokenError};
use crate::ids::TenantId;
use crate::store::{self, Inserted, NewRecord};

/// The largest token [`Broker::verify_visitor_token`] reads.
pub(super) const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The store namespace of the `jti`s accepted in single-use mode.
const NS_JTI: &str = "visitor_jti";

impl Broker {
    /// Mints a visitor token with the ring's signing key. `lifetime` defaults to the
    /// configuration's default (10 minutes unless changed).
    ///
    /// # Errors
    ///
    /// [`VisitorAdminError::InvalidClaims`], [`VisitorAdminError::LifetimeTooLong`] (not
    /// positive, or over the configuration's maximum), [`VisitorAdminError::NotConfigured`],
    /// [`Error::Store`].
    pub async fn mint_visitor_token(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        claims: &VisitorClaims,
        lifetime: Option<Duration>,
    ) -> Result<String, Error> {
        claims.validate()?;
        let now = self.now();
        let ring = self.load_visitor_ring(tenant, audience, now).await?;
        let lifetime = lifetime.map_or(ring.default_lifetime, |d| d.whole_seconds());
        if lifetime < 1 || lifetime > ring.max_lifetime {
            return Err(VisitorAdminError::LifetimeTooLong.into());
        }
        let (header_b64, mac) = ring.signer()?;
        let iat = now.unix_timestamp();
        Ok(jwt::mint(
            header_b64,
            mac,
            claims,
            iat,
            iat.saturating_add(lifetime),
        )?)
    }

    /// Verifies a visitor token against this tenant's configuration for `audience`.
    ///
    /// # Errors
    ///
    /// A [`VisitorTokenError`] naming the check that failed (see the
    /// [module docs](crate::visitor#verification)); [`VisitorAdminError::NotConfigured`];
    /// [`Error::Store`] when the store fails (never an identity).
    pub async fn verify_visitor_token(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        token: &str,
    ) -> Result<VisitorIdentity, Error> {
        let now = self.now();
        let parsed = jwt::parse(token)?;
        let ring = self.load_visitor_ring(tenant, audience, now).await?;
        let mac = ring.verifier(&parsed.kid)?;
        let checked = jwt::check(
            &parsed,
            mac,
            now.unix_timestamp(),
            self.inner.options.leeway.whole_seconds(),
            ring.max_lifetime,
            ring.single_use,
        )?;
        if ring.single_use {
            let jti = checked
                .jti
                .as_deref()
                .ok_or(VisitorTokenError::MissingClaim("jti"))?;
            let until = from_unix(checked.exp).saturating_add(self.inner.options.leeway);
            let rkey = store::key(&[tenant.as_str(), audience.as_str(), jti]);
            let rec = NewRecord::new(Vec::new()).expires_at(until);
            if self.inner.store.insert(NS_JTI, &rkey, rec, now).await? == Inserted::No {
                return Err(VisitorTokenError::Replayed.into());
            }
        }
        Ok(VisitorIdentity {
            external_id: checked.external_id,
            name: checked.name,
            email: checked.email,
            email_verified: checked.email_verified,
            kid: VisitorKeyId::new(parsed.kid).map_err(|_| VisitorTokenError::InvalidKid)?,
            issued_at: checked.iat.map(from_unix),
            expires_at: from_unix(checked.exp),
            jti: checked.jti,
        })
    }
}

//! The facade of the visitor capability: one-line delegations to `crate::visitor`.

use time::Duration;

use crate::error::Error;
#[cfg(doc)]
use crate::error::{ConfigError, VisitorAdminError, VisitorTokenError};
use crate::ids::TenantId;
use crate::visitor::{
    ExportedVisitorKey, VisitorAudience, VisitorClaims, VisitorConfigOptions, VisitorIdentity,
    VisitorKeyId, VisitorKeyInfo, VisitorSigningKey,
};

use super::Broker;

impl Broker {
    /// Creates the visitor configuration of `tenant` for `audience`, with a freshly generated
    /// signing key, and hands that key out this once.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for out-of-range options, [`VisitorAdminError::ConfigExists`]
    /// when the configuration exists, [`Error::Store`] when the store fails.
    pub async fn create_visitor_config(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        options: VisitorConfigOptions,
    ) -> Result<ExportedVisitorKey, Error> {
        self.inner
            .visitors
            .create_visitor_config(tenant, audience, options)
            .await
    }

    /// Creates the visitor configuration of `tenant` for `audience` with a key made elsewhere
    /// as its signing key: the shared secret a chat vendor issues, with the `kid` the vendor
    /// expects in the header (a new one is generated when `None`). The key is checked as
    /// [`import_visitor_key`](Self::import_visitor_key) checks it; rotation then goes on as for
    /// any configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for out-of-range options, [`VisitorAdminError::KeyTooShort`]
    /// under 32 bytes, [`VisitorAdminError::KeyTooLong`] over 512,
    /// [`VisitorAdminError::KeyReusesClientSecret`] when the key equals a client secret of one
    /// of the tenant's SSO applications, [`VisitorAdminError::ConfigExists`] when the
    /// configuration exists (it is left as it is), [`Error::Store`] when the store fails.
    pub async fn create_visitor_config_with_key(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        options: VisitorConfigOptions,
        kid: Option<VisitorKeyId>,
        key: VisitorSigningKey,
    ) -> Result<VisitorKeyInfo, Error> {
        self.inner
            .visitors
            .create_visitor_config_with_key(tenant, audience, options, kid, key)
            .await
    }

    /// Deletes the visitor configuration and its keys; returns whether one existed. Tokens
    /// signed by its keys stop verifying at once.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn delete_visitor_config(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
    ) -> Result<bool, Error> {
        self.inner
            .visitors
            .delete_visitor_config(tenant, audience)
            .await
    }

    /// The audiences of the tenant's visitor configurations.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails or a record is corrupt.
    pub async fn list_visitor_configs(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<VisitorAudience>, Error> {
        self.inner.visitors.list_visitor_configs(tenant).await
    }

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
        self.inner
            .visitors
            .list_visitor_keys(tenant, audience)
            .await
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
        self.inner.visitors.add_visitor_key(tenant, audience).await
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
        self.inner
            .visitors
            .import_visitor_key(tenant, audience, kid, key)
            .await
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
        self.inner
            .visitors
            .promote_visitor_key(tenant, audience, kid)
            .await
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
        self.inner
            .visitors
            .retire_visitor_key(tenant, audience, kid)
            .await
    }

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
        self.inner
            .visitors
            .mint_visitor_token(tenant, audience, claims, lifetime)
            .await
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
        self.inner
            .visitors
            .verify_visitor_token(tenant, audience, token)
            .await
    }
}

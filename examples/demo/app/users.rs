//! The platform's own users: the host owns them, cx-sso only asks about them
//! ([`UserDirectory`]). Passwords are stored as Argon2id hashes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use async_trait::async_trait;
use cx_sso::{Error, TenantId, UserDirectory, UserId};

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "demo";

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub admin: bool,
    password_hash: String,
}

#[derive(Debug)]
pub struct Users {
    tenant: TenantId,
    list: Vec<User>,
}

impl Users {
    /// Alice (admin), Ana and Bruno (agents) of Acme Support.
    pub fn demo(tenant: TenantId) -> Result<Self, Box<dyn std::error::Error>> {
        let mut list = Vec::new();
        for (id, name, email, admin) in [
            ("alice", "Alice Admin", "alice@acme.example", true),
            ("ana", "Ana Agent", "ana@acme.example", false),
            ("bruno", "Bruno Agent", "bruno@acme.example", false),
        ] {
            let salt =
                SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
            let password_hash = Argon2::default()
                .hash_password(DEMO_PASSWORD.as_bytes(), &salt)
                .map_err(|e| e.to_string())?
                .to_string();
            list.push(User {
                id: UserId::new(id)?,
                name: name.to_owned(),
                email: email.to_owned(),
                admin,
                password_hash,
            });
        }
        Ok(Self { tenant, list })
    }

    pub fn all(&self) -> &[User] {
        &self.list
    }

    pub fn get(&self, id: &UserId) -> Option<&User> {
        self.list.iter().find(|u| u.id == *id)
    }

    /// The user with this email and password. Every attempt costs one Argon2 verification,
    /// whether the email exists or not.
    pub fn check_password(&self, email: &str, password: &str) -> Option<&User> {
        let user = self
            .list
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email.trim()));
        let hash = user.map_or(self.list.first()?.password_hash.as_str(), |u| {
            u.password_hash.as_str()
        });
        let parsed = PasswordHash::new(hash).ok()?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        if ok { user } else { None }
    }
}

#[async_trait]
impl UserDirectory for Users {
    async fn active_users_with_verified_email(
        &self,
        tenant: &TenantId,
        email: &str,
    ) -> Result<Vec<UserId>, Error> {
        if *tenant != self.tenant {
            return Ok(Vec::new());
        }
        // The demo accounts' emails were verified when they were invited.
        Ok(self
            .list
            .iter()
            .filter(|u| u.email.eq_ignore_ascii_case(email))
            .map(|u| u.id.clone())
            .collect())
    }

    async fn is_active(&self, tenant: &TenantId, user: &UserId) -> Result<bool, Error> {
        Ok(*tenant == self.tenant && self.get(user).is_some())
    }
}

//! The userinfo endpoint (OpenID Connect Core 5.3): what the broker reads of it.

use serde::Deserialize;
use url::Url;

use super::Env;
use crate::error::{Error, UserInfoError};

/// What the broker reads of a userinfo response.
#[derive(Deserialize)]
pub(crate) struct UserInfo {
    #[serde(default)]
    pub(crate) sub: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) email_verified: Option<serde_json::Value>,
    pub(crate) name: Option<String>,
}

/// GET the userinfo endpoint with the access token (bearer), refusing non-200 answers and
/// oversize bodies.
pub(crate) async fn fetch_userinfo(
    env: &Env<'_>,
    endpoint: &Url,
    access_token: &crate::secret::AccessToken,
) -> Result<UserInfo, Error> {
    let request = http::Request::builder()
        .method(http::Method::GET)
        .uri(endpoint.as_str())
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", access_token.secret()),
        )
        .body(Vec::new())
        .map_err(|_| UserInfoError::Request)?;
    let response = env.http.call(request).await?;
    if response.status() != http::StatusCode::OK {
        return Err(UserInfoError::Status(response.status().as_u16()).into());
    }
    let body = response.into_body();
    if body.len() > env.max_response_bytes {
        return Err(UserInfoError::TooLarge(env.max_response_bytes).into());
    }
    Ok(serde_json::from_slice(&body).map_err(|e| UserInfoError::from_json(&e))?)
}

//! The token endpoint on oauth2: code exchange, refresh, revocation, and the probe that tells
//! a wrong client secret apart.

use std::borrow::Cow;
use std::sync::Arc;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, ConfigurationError, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeVerifier, RedirectUrl, RevocationUrl, StandardRevocableToken, StandardTokenResponse,
    TokenResponse as _, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::error::from_oauth2;
use super::http_adapter::HttpAdapter;
use super::{Env, PkceVerifier, TokenEndpointError};
use crate::http::HttpClient;
use crate::secret::{AccessToken, ClientSecret, RefreshToken};

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with the id and secret form-urlencoded first (RFC 6749 §2.3.1). The default.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the request body.
    ClientSecretPost,
}

/// An application's client credentials at its provider, as the token endpoint needs them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientCredentials<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: &'a ClientSecret,
    pub(crate) auth_method: ClientAuthMethod,
}

/// oauth2's response type: the standard fields, and `id_token`.
type OAuthTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// oauth2's client, with its type parameters fixed here so that nothing outside this file names
/// them: our error and response types, and only the revocation and token endpoints variable.
type OAuthClient<HasRevocationUrl, HasTokenUrl> = oauth2::Client<
    BasicErrorResponse,
    OAuthTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasRevocationUrl,
    HasTokenUrl,
>;

/// The `id_token` of an OpenID Connect token response (OIDC Core §3.1.3.3).
#[derive(Deserialize, Serialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

impl std::fmt::Debug for IdTokenField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenField")
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A token endpoint response, with its `token_type` checked to be `Bearer`.
pub(crate) struct TokenResponse {
    pub(crate) access_token: AccessToken,
    pub(crate) expires_in: Option<i64>,
    pub(crate) refresh_token: Option<RefreshToken>,
    pub(crate) id_token: Option<String>,
    pub(crate) scope: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    fn from_oauth2(r: OAuthTokenResponse) -> Result<Self, TokenEndpointError> {
        if *r.token_type() != BasicTokenType::Bearer {
            return Err(TokenEndpointError::NotBearer);
        }
        Ok(Self {
            access_token: AccessToken::new(r.access_token().secret().as_str()),
            expires_in: r
                .expires_in()
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            refresh_token: r
                .refresh_token()
                .map(|t| RefreshToken::new(t.secret().as_str())),
            id_token: r.extra_fields().id_token.clone(),
            // oauth2 splits the scope on single spaces; joining them back gives the string as
            // sent.
            scope: r
                .scopes()
                .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
        })
    }
}

/// One application's client at its provider's token and revocation endpoints, over the
/// broker's transport.
pub(crate) struct TokenClient<'a> {
    http: &'a Arc<dyn HttpClient>,
    max_response_bytes: usize,
    client_id: &'a str,
    client_secret: &'a ClientSecret,
    auth_method: ClientAuthMethod,
}

impl<'a> TokenClient<'a> {
    /// The client with `credentials`, through the broker's transport and response cap.
    pub(crate) fn new(env: &Env<'a>, credentials: ClientCredentials<'a>) -> Self {
        Self::over(env.http, env.max_response_bytes, credentials)
    }

    /// The client with `credentials` over `http`, refusing bodies over `max_response_bytes`.
    pub(super) fn over(
        http: &'a Arc<dyn HttpClient>,
        max_response_bytes: usize,
        credentials: ClientCredentials<'a>,
    ) -> Self {
        Self {
            http,
            max_response_bytes,
            client_id: credentials.client_id,
            client_secret: credentials.client_secret,
            auth_method: credentials.auth_method,
        }
    }

    fn adapter(&self) -> HttpAdapter {
        HttpAdapter::new(Arc::clone(self.http), self.max_response_bytes)
    }

    /// oauth2's client with no endpoint set yet. It takes its own copies of the id and secret.
    fn client(&self) -> OAuthClient<EndpointNotSet, EndpointNotSet> {
        OAuthClient::new(oauth2::ClientId::new(self.client_id.to_owned()))
            .set_client_secret(oauth2::ClientSecret::new(
                self.client_secret.secret().to_owned(),
            ))
            .set_auth_type(match self.auth_method {
                // oauth2 form-urlencodes the id and secret before the Basic encoding
                // (RFC 6749 §2.3.1), as `oauth/tests.rs` checks.
                ClientAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
                ClientAuthMethod::ClientSecretPost => AuthType::RequestBody,
            })
    }

    fn token_client(&self, token_endpoint: &Url) -> OAuthClient<EndpointNotSet, EndpointSet> {
        self.client()
            .set_token_uri(TokenUrl::from_url(token_endpoint.clone()))
    }

    /// The authorization-code grant, with the login's PKCE verifier and redirect URI.
    pub(crate) async fn exchange_code(
        &self,
        token_endpoint: &Url,
        code: &str,
        redirect_uri: &str,
        verifier: &PkceVerifier,
    ) -> Result<TokenResponse, TokenEndpointError> {
        let redirect_uri = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| TokenEndpointError::Invalid(format!("redirect URI: {e}")))?;
        let client = self.token_client(token_endpoint);
        let adapter = self.adapter();
        let result = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().to_owned()))
            .set_redirect_uri(Cow::Owned(redirect_uri))
            .request_async(&adapter)
            .await;
        match result {
            Ok(r) => TokenResponse::from_oauth2(r),
            Err(e) => Err(from_oauth2(e, adapter.status())),
        }
    }

    /// The refresh-token grant.
    pub(crate) async fn refresh(
        &self,
        token_endpoint: &Url,
        refresh_token: &RefreshToken,
    ) -> Result<TokenResponse, TokenEndpointError> {
        let client = self.token_client(token_endpoint);
        let refresh_token = oauth2::RefreshToken::new(refresh_token.secret().to_owned());
        let adapter = self.adapter();
        let result = client
            .exchange_refresh_token(&refresh_token)
            .request_async(&adapter)
            .await;
        match result {
            Ok(r) => TokenResponse::from_oauth2(r),
            Err(e) => Err(from_oauth2(e, adapter.status())),
        }
    }

    /// Revokes a refresh token (RFC 7009), with `token_type_hint=refresh_token`. Only a `200`
    /// is success.
    pub(crate) async fn revoke(
        &self,
        revocation_endpoint: &Url,
        refresh_token: &RefreshToken,
    ) -> Result<(), TokenEndpointError> {
        if revocation_endpoint.scheme() == "http" {
            // `is_allowed_endpoint` admitted it, so it is loopback: development and tests.
            return self
                .revoke_on_loopback(revocation_endpoint, refresh_token)
                .await;
        }
        let client = self
            .client()
            .set_revocation_url(RevocationUrl::from_url(revocation_endpoint.clone()));
        let token = StandardRevocableToken::RefreshToken(oauth2::RefreshToken::new(
            refresh_token.secret().to_owned(),
        ));
        let request = client.revoke_token(token).map_err(|e| match e {
            ConfigurationError::InsecureUrl(what) => TokenEndpointError::InsecureEndpoint(what),
            // The revocation URL is set by the type state: oauth2 has no other refusal here.
            other => TokenEndpointError::Invalid(other.to_string()),
        })?;
        let adapter = self.adapter();
        request
            .request_async(&adapter)
            .await
            .map_err(|e| from_oauth2(e, adapter.status()))
    }

    /// RFC 7009 revocation at a loopback `http` endpoint, written out by hand.
    ///
    /// oauth2 refuses every revocation URL that is not `https` (RFC 7009 §2.1), loopback
    /// included, while this crate admits loopback `http` everywhere else for development and
    /// tests (a provider such as `oidc-provider` run beside the host, as
    /// `tests/interop_oidc_provider.rs` does). Only such endpoints come here; every `https` one
    /// goes through oauth2. The request is the same form oauth2 sends.
    async fn revoke_on_loopback(
        &self,
        revocation_endpoint: &Url,
        refresh_token: &RefreshToken,
    ) -> Result<(), TokenEndpointError> {
        use base64::Engine as _;
        let request = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("token", refresh_token.secret());
            form.append_pair("token_type_hint", "refresh_token");
            let mut request = http::Request::builder()
                .method(http::Method::POST)
                .uri(revocation_endpoint.as_str())
                .header(http::header::ACCEPT, "application/json")
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                );
            match self.auth_method {
                ClientAuthMethod::ClientSecretBasic => {
                    // RFC 6749 §2.3.1: form-urlencode id and secret before the Basic encoding.
                    let enc = |s: &str| {
                        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                    };
                    let credentials = format!(
                        "{}:{}",
                        enc(self.client_id),
                        enc(self.client_secret.secret())
                    );
                    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                    request =
                        request.header(http::header::AUTHORIZATION, format!("Basic {encoded}"));
                }
                ClientAuthMethod::ClientSecretPost => {
                    form.append_pair("client_id", self.client_id);
                    form.append_pair("client_secret", self.client_secret.secret());
                }
            }
            request
                .body(form.finish().into_bytes())
                .map_err(|_| TokenEndpointError::Invalid("request could not be built".into()))?
        };
        let response = self
            .http
            .call(request)
            .await
            .map_err(TokenEndpointError::Http)?;
        let status = response.status();
        let body = response.into_body();
        if body.len() > self.max_response_bytes {
            return Err(TokenEndpointError::TooLarge(self.max_response_bytes));
        }
        if status == http::StatusCode::OK {
            return Ok(());
        }
        if status.is_server_error() {
            return Err(TokenEndpointError::ServerError(status.as_u16()));
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            error: String,
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) if e.error == "invalid_client" => Err(TokenEndpointError::InvalidClient),
            Ok(e) => Err(TokenEndpointError::OAuth(
                e.error
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(64)
                    .collect(),
            )),
            Err(_) if status == http::StatusCode::UNAUTHORIZED => {
                Err(TokenEndpointError::InvalidClient)
            }
            Err(_) => Err(TokenEndpointError::Status(status.as_u16())),
        }
    }

    /// Asks the token endpoint to redeem a code that cannot exist: a provider that accepts the
    /// client answers `invalid_grant` ([`TokenEndpointError::InvalidGrant`]), one that does not
    /// answers `invalid_client` ([`TokenEndpointError::InvalidClient`]).
    pub(crate) async fn probe(
        &self,
        token_endpoint: &Url,
        redirect_uri: &str,
    ) -> Result<TokenResponse, TokenEndpointError> {
        let code = format!(
            "cx-sso-connection-check-{}",
            crate::crypto::random_token(16)
        );
        let (verifier, _) = super::pkce_s256();
        self.exchange_code(token_endpoint, &code, redirect_uri, &verifier)
            .await
    }
}

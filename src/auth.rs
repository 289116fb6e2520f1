//! Passwords, session tokens and the signed-in-user extractor.

use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::{sessions, users::UserRecord};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use paranimo_actors::policy::Principal;
use rand::RngExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "paranimo_session";

/// Hashes a password with Argon2id at the library's defaults, which are OWASP's minimum
/// (19 MiB, 2 passes, 1 lane). Runs on the blocking pool: it takes tens of milliseconds.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    let hashed = web::block(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    hashed.map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing failed: {e}")))
}

/// A hash of a random password, verified against when the email is unknown so that an
/// unknown email costs the same time as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        Argon2::default()
            .hash_password(random_token().as_bytes())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Checks a password against a stored hash (or the decoy when `stored` is `None`).
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| decoy_hash().to_owned());
    let matches = web::block(move || {
        PasswordHash::new(&stored)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(known && matches)
}

/// A fresh 256-bit random token, URL-safe.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The cookie that carries a session token: HttpOnly, SameSite=Strict, Secure in production.
pub fn session_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::days(
            sessions::IDLE_LIFETIME.num_days(),
        ))
        .finish()
}

/// A cookie that removes the session cookie.
pub fn cleared_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = session_cookie(String::new(), secure);
    cookie.make_removal();
    cookie
}

/// The signed-in user of a request. Extracting it fails with 401 when there is no live
/// session, so a handler that takes it is authenticated by its signature.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: UserRecord,
    /// The session token, to revoke it at logout.
    pub token: String,
}

impl CurrentUser {
    /// The user as the policy module sees them.
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.user.id,
            role: self.user.role,
        }
    }
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token
                .filter(|t| !t.is_empty())
                .ok_or(ApiError::Unauthenticated)?;
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
            let user = sessions::user_for_token(&state.pool, &token)
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            tracing::Span::current().record("user_id", tracing::field::display(user.id));
            Ok(CurrentUser { user, token })
        })
    }
}

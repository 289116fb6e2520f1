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
use paranimo_actors::ids::UserId;
use paranimo_actors::policy::Principal;
use rand::RngExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "paranimo_session";

/// Hashes a password with Argon2id at the library's defaults, which are OWASP's minimum
/// (19 MiB, 2 passes, 1 lane); the PHC string records them, so they can be raised later.
/// Takes tens of milliseconds: call it through [`hash_password`] from async code.
pub fn hash_password_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
}

/// Checks a password against a stored hash, or against a decoy when `stored` is `None`, so
/// that an unknown account costs the same time as a wrong password. Blocking, like
/// [`hash_password_blocking`].
pub fn verify_password_blocking(password: &str, stored: Option<&str>) -> bool {
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| decoy_hash());
    let matches = PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    known && matches
}

/// [`hash_password_blocking`] on the blocking pool, inside the caller's span.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    let span = tracing::Span::current();
    let hashed = web::block(move || span.in_scope(|| hash_password_blocking(&password)))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    hashed.map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing failed: {e}")))
}

/// A hash of a random password, verified against when the email is unknown.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password_blocking(&random_token()).unwrap_or_default())
}

/// [`verify_password_blocking`] on the blocking pool, inside the caller's span.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    let span = tracing::Span::current();
    web::block(move || span.in_scope(|| verify_password_blocking(&password, stored.as_deref())))
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

/// True when a stored hash was made with weaker parameters (or another algorithm) than
/// today's, so it should be recomputed while the plain password is at hand, at sign-in.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    let current = argon2::Params::default();
    let param = |name: &str| parsed.params.get_decimal(name).unwrap_or(0);
    parsed.algorithm.as_str() != "argon2id"
        || param("m") < current.m_cost()
        || param("t") < current.t_cost()
        || param("p") < current.p_cost()
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
        // The browser may keep it as long as the session could live; the server enforces
        // the shorter idle expiry itself.
        .max_age(actix_web::cookie::time::Duration::seconds(
            sessions::ABSOLUTE_LIFETIME.num_seconds(),
        ))
        .finish()
}

/// A cookie that removes the session cookie.
pub fn cleared_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = session_cookie(String::new(), secure);
    cookie.make_removal();
    cookie
}

/// How long the second step of a sign-in may take.
const MFA_CHALLENGE_SECONDS: i64 = 5 * 60;

/// Codes that may be tried against one challenge before it is void.
const MFA_CHALLENGE_ATTEMPTS: i64 = 5;

fn challenge_key(state: &AppState, challenge: &str) -> String {
    let digest = sessions::token_hash(challenge);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}mfa-challenge:{hex}", state.settings.redis_prefix)
}

/// Records that `user` passed the password step; returns the challenge the browser sends
/// back with the code. Kept in Redis (hashed) so any node can finish the sign-in.
pub async fn issue_mfa_challenge(state: &AppState, user: UserId) -> Result<String, ApiError> {
    let challenge = random_token();
    let mut conn = state.bus.connection();
    redis::pipe()
        .hset(challenge_key(state, &challenge), "user", user.to_string())
        .ignore()
        .expire(challenge_key(state, &challenge), MFA_CHALLENGE_SECONDS)
        .ignore()
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(challenge)
}

/// The user a live challenge belongs to; counts the attempt and voids the challenge after
/// [`MFA_CHALLENGE_ATTEMPTS`], so codes cannot be guessed through one password success.
pub async fn redeem_mfa_challenge(state: &AppState, challenge: &str) -> Result<UserId, ApiError> {
    let key = challenge_key(state, challenge);
    let mut conn = state.bus.connection();
    let internal = |e: redis::RedisError| ApiError::Internal(e.into());

    // Look before counting: counting on an unknown key would create one that never expires.
    let user: Option<String> = redis::cmd("HGET")
        .arg(&key)
        .arg("user")
        .query_async(&mut conn)
        .await
        .map_err(internal)?;
    let user: UserId = user
        .and_then(|u| u.parse().ok())
        .ok_or(ApiError::InvalidCredentials)?;
    let attempts: i64 = redis::cmd("HINCRBY")
        .arg(&key)
        .arg("attempts")
        .arg(1)
        .query_async(&mut conn)
        .await
        .map_err(internal)?;
    if attempts > MFA_CHALLENGE_ATTEMPTS {
        forget_mfa_challenge(state, challenge).await?;
        return Err(ApiError::InvalidCredentials);
    }
    Ok(user)
}

/// Voids a challenge once used.
pub async fn forget_mfa_challenge(state: &AppState, challenge: &str) -> Result<(), ApiError> {
    let mut conn = state.bus.connection();
    redis::cmd("DEL")
        .arg(challenge_key(state, challenge))
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| ApiError::Internal(e.into()))
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

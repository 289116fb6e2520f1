//! Single-use tokens sent by email (address verification, password reset). The link holds
//! a random token; only its SHA-256 is stored, and consuming it is one atomic update, so a
//! link works once even if clicked twice at the same moment.

use super::sessions::token_hash;
use chrono::{Duration, Utc};
use paranimo_actors::ids::UserId;
use sqlx::PgConnection;

/// What a token may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }

    /// How long a link stays valid.
    pub fn lifetime(self) -> Duration {
        match self {
            Purpose::VerifyEmail => Duration::hours(48),
            Purpose::ResetPassword => Duration::minutes(30),
        }
    }
}

/// Stores a fresh token for `user` and returns it (to be put in a link, never logged).
pub async fn issue(
    tx: &mut PgConnection,
    user: UserId,
    purpose: Purpose,
) -> Result<String, sqlx::Error> {
    let token = crate::auth::random_token();
    sqlx::query(
        r#"
        INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at)
        VALUES ($1, $2, $3, $4)
        "#,
    )
    .bind(token_hash(&token))
    .bind(user.0)
    .bind(purpose.as_str())
    .bind(Utc::now() + purpose.lifetime())
    .execute(tx)
    .await?;
    Ok(token)
}

/// Uses a token: returns its user once, and `None` for an unknown, expired, already used
/// or wrong-purpose token (never told apart, so a link reveals nothing).
pub async fn consume(
    tx: &mut PgConnection,
    token: &str,
    purpose: Purpose,
) -> Result<Option<UserId>, sqlx::Error> {
    let user: Option<uuid::Uuid> = sqlx::query_scalar(
        r#"
        UPDATE email_tokens
        SET used_at = now()
        WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
        RETURNING user_id
        "#,
    )
    .bind(token_hash(token))
    .bind(purpose.as_str())
    .fetch_optional(tx)
    .await?;
    Ok(user.map(UserId))
}

/// Voids every unused link of the user (for one purpose, or all): after the address is
/// confirmed, or the password changed or reset, older links must not work any more.
pub async fn revoke_all(
    tx: &mut PgConnection,
    user: UserId,
    purpose: Option<Purpose>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        UPDATE email_tokens
        SET used_at = now()
        WHERE user_id = $1 AND used_at IS NULL AND ($2::text IS NULL OR purpose = $2)
        "#,
    )
    .bind(user.0)
    .bind(purpose.map(Purpose::as_str))
    .execute(tx)
    .await?;
    Ok(())
}

/// Whether a link of this purpose was sent to the user within `window`, so a repeated
/// trigger (signing in before confirming) does not mail the address again and again.
pub async fn sent_recently(
    tx: &mut PgConnection,
    user: UserId,
    purpose: Purpose,
    window: Duration,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        r#"
        SELECT EXISTS (
            SELECT 1 FROM email_tokens
            WHERE user_id = $1 AND purpose = $2 AND created_at > $3
        )
        "#,
    )
    .bind(user.0)
    .bind(purpose.as_str())
    .bind(Utc::now() - window)
    .fetch_one(tx)
    .await
}

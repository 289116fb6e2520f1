//! Sign-in sessions. The cookie carries a random token; only its SHA-256 is stored.

use super::users::{UserRecord, from_row};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

/// How long a session lasts without being used.
pub const IDLE_LIFETIME: Duration = Duration::days(14);

/// Refresh `last_seen_at` at most this often, so reads do not all become writes.
const TOUCH_EVERY: Duration = Duration::minutes(5);

/// The stored form of a cookie token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Stores a new session for `user`.
pub async fn insert(
    tx: &mut PgConnection,
    token: &str,
    user: uuid::Uuid,
    user_agent: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        INSERT INTO sessions (token_hash, user_id, expires_at, user_agent)
        VALUES ($1, $2, $3, $4)
        "#,
    )
    .bind(token_hash(token))
    .bind(user)
    .bind(Utc::now() + IDLE_LIFETIME)
    .bind(user_agent.map(|ua| ua.chars().take(200).collect::<String>()))
    .execute(tx)
    .await?;
    Ok(())
}

/// The signed-in user for a cookie token, if the session is live; extends its idle expiry.
pub async fn user_for_token(pool: &PgPool, token: &str) -> Result<Option<UserRecord>, sqlx::Error> {
    let hash = token_hash(token);
    let row = sqlx::query(
        r#"
        SELECT u.id, u.email, u.role, u.display_name, s.last_seen_at
        FROM sessions s
        JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = $1 AND s.expires_at > now()
        "#,
    )
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };

    let last_seen: DateTime<Utc> = sqlx::Row::try_get(&row, "last_seen_at")?;
    if Utc::now() - last_seen > TOUCH_EVERY {
        sqlx::query(
            "UPDATE sessions SET last_seen_at = now(), expires_at = $2 WHERE token_hash = $1",
        )
        .bind(&hash)
        .bind(Utc::now() + IDLE_LIFETIME)
        .execute(pool)
        .await?;
    }
    Ok(Some(from_row(&row)?))
}

/// Ends a session.
pub async fn revoke(tx: &mut PgConnection, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash(token))
        .execute(tx)
        .await?;
    Ok(())
}

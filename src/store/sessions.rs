//! Sign-in sessions. The cookie carries a random token; only its SHA-256 is stored. Each
//! session also has a public id, so its owner can list and revoke it without the token ever
//! leaving the server.

use super::users::{UserRecord, from_row};
use chrono::{DateTime, Duration, Utc};
use paranimo_actors::ids::UserId;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;

/// How long a session lasts without being used.
pub const IDLE_LIFETIME: Duration = Duration::hours(12);

/// How long a session lasts at most, however much it is used.
pub const ABSOLUTE_LIFETIME: Duration = Duration::days(14);

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
    let now = Utc::now();
    sqlx::query(
        r#"
        INSERT INTO sessions (token_hash, user_id, expires_at, absolute_expires_at, user_agent)
        VALUES ($1, $2, $3, $4, $5)
        "#,
    )
    .bind(token_hash(token))
    .bind(user)
    .bind(now + IDLE_LIFETIME)
    .bind(now + ABSOLUTE_LIFETIME)
    .bind(user_agent.map(|ua| ua.chars().take(200).collect::<String>()))
    .execute(tx)
    .await?;
    Ok(())
}

/// The signed-in user for a cookie token, if the session is live; extends its idle expiry
/// (never past the absolute one).
pub async fn user_for_token(pool: &PgPool, token: &str) -> Result<Option<UserRecord>, sqlx::Error> {
    let hash = token_hash(token);
    let row = sqlx::query(
        r#"
        SELECT u.id, u.email, u.role, u.display_name, s.last_seen_at
        FROM sessions s
        JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = $1 AND s.expires_at > now() AND s.absolute_expires_at > now()
        "#,
    )
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };

    let last_seen: DateTime<Utc> = row.try_get("last_seen_at")?;
    if Utc::now() - last_seen > TOUCH_EVERY {
        sqlx::query(
            r#"
            UPDATE sessions
            SET last_seen_at = now(), expires_at = LEAST($2, absolute_expires_at)
            WHERE token_hash = $1
            "#,
        )
        .bind(&hash)
        .bind(Utc::now() + IDLE_LIFETIME)
        .execute(pool)
        .await?;
    }
    Ok(Some(from_row(&row)?))
}

/// Ends a session; returns its hash if it existed.
pub async fn revoke(tx: &mut PgConnection, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash(token))
        .execute(tx)
        .await?;
    Ok(())
}

/// Ends one of the user's sessions by its public id; returns its hash, `None` if the user
/// has no such session.
pub async fn revoke_by_id(
    tx: &mut PgConnection,
    user: UserId,
    id: uuid::Uuid,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM sessions WHERE user_id = $1 AND id = $2 RETURNING token_hash")
        .bind(user.0)
        .bind(id)
        .fetch_optional(tx)
        .await
}

/// Ends every session of the user except `keep` (a token hash); returns the ended hashes.
pub async fn revoke_all(
    tx: &mut PgConnection,
    user: UserId,
    keep: Option<&[u8]>,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        r#"
        DELETE FROM sessions
        WHERE user_id = $1 AND ($2::bytea IS NULL OR token_hash <> $2)
        RETURNING token_hash
        "#,
    )
    .bind(user.0)
    .bind(keep)
    .fetch_all(tx)
    .await
}

/// One of a user's sessions, as shown on the "your devices" page.
#[derive(Serialize, ToSchema)]
pub struct Device {
    pub id: uuid::Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The browser's own description of itself, shortened.
    pub user_agent: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

/// The user's live sessions, most recently used first.
pub async fn devices(
    pool: &PgPool,
    user: UserId,
    current: &str,
) -> Result<Vec<Device>, sqlx::Error> {
    let current = token_hash(current);
    let rows = sqlx::query(
        r#"
        SELECT id, created_at, last_seen_at, user_agent, token_hash
        FROM sessions
        WHERE user_id = $1 AND expires_at > now() AND absolute_expires_at > now()
        ORDER BY last_seen_at DESC
        "#,
    )
    .bind(user.0)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let hash: Vec<u8> = row.try_get("token_hash")?;
            Ok(Device {
                id: row.try_get("id")?,
                created_at: row.try_get("created_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
                user_agent: row.try_get("user_agent")?,
                current: hash == current,
            })
        })
        .collect()
}

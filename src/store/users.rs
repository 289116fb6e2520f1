//! Accounts.

use paranimo_actors::domain::Role;
use paranimo_actors::ids::UserId;
use sqlx::{PgConnection, PgPool, Row};

/// An account as the server needs it after sign-in.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    pub display_name: String,
}

/// An account with its password hash, for sign-in only.
pub struct Credentials {
    pub user: UserRecord,
    pub password_hash: String,
    /// False until the person follows the link sent to their address.
    pub email_verified: bool,
}

/// Reads the columns `id, email, role, display_name`.
pub(crate) fn user_from_row(row: &sqlx::postgres::PgRow) -> Result<UserRecord, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(UserRecord {
        id: UserId(row.try_get("id")?),
        email: row.try_get("email")?,
        role: Role::parse(&role).ok_or_else(|| sqlx::Error::Decode("unknown role".into()))?,
        display_name: row.try_get("display_name")?,
    })
}

/// Inserts an account. A unique violation means the email is already registered.
pub async fn insert(
    tx: &mut PgConnection,
    user: &UserRecord,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        INSERT INTO users (id, email, password_hash, role, display_name, adult_confirmed_at)
        VALUES ($1, $2, $3, $4, $5, now())
        "#,
    )
    .bind(user.id.0)
    .bind(&user.email)
    .bind(password_hash)
    .bind(user.role.as_str())
    .bind(&user.display_name)
    .execute(tx)
    .await?;
    Ok(())
}

/// The account registered under `email` (case-insensitive), with its hash.
pub async fn credentials_by_email(
    pool: &PgPool,
    email: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query(
        r#"
        SELECT id, email, role, display_name, password_hash,
               email_verified_at IS NOT NULL AS email_verified
        FROM users
        WHERE lower(email) = lower($1)
        "#,
    )
    .bind(email)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Credentials {
            user: user_from_row(&row)?,
            password_hash: row.try_get("password_hash")?,
            email_verified: row.try_get("email_verified")?,
        })
    })
    .transpose()
}

/// One account by id.
pub async fn by_id(conn: &mut PgConnection, id: UserId) -> Result<Option<UserRecord>, sqlx::Error> {
    let row = sqlx::query("SELECT id, email, role, display_name FROM users WHERE id = $1")
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The stored password hash of an account.
pub async fn password_hash(conn: &mut PgConnection, id: UserId) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id.0)
        .fetch_one(conn)
        .await
}

/// Whether the account's address has been confirmed.
pub async fn email_verified(conn: &mut PgConnection, id: UserId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT email_verified_at IS NOT NULL FROM users WHERE id = $1")
        .bind(id.0)
        .fetch_one(conn)
        .await
}

/// Records that the address was confirmed (the first time only).
pub async fn mark_email_verified(conn: &mut PgConnection, id: UserId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1",
    )
    .bind(id.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the password hash (a new password, or the same one under stronger parameters).
pub async fn set_password_hash(
    conn: &mut PgConnection,
    id: UserId,
    hash: &str,
    password_changed: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        UPDATE users
        SET password_hash = $2,
            password_changed_at = CASE WHEN $3 THEN now() ELSE password_changed_at END
        WHERE id = $1
        "#,
    )
    .bind(id.0)
    .bind(hash)
    .bind(password_changed)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether an email is already registered.
pub async fn email_exists(pool: &PgPool, email: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1))")
        .bind(email)
        .fetch_one(pool)
        .await
}

pub(crate) use user_from_row as from_row;

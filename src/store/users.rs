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
        SELECT id, email, role, display_name, password_hash
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
        })
    })
    .transpose()
}

/// Whether an email is already registered.
pub async fn email_exists(pool: &PgPool, email: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1))")
        .bind(email)
        .fetch_one(pool)
        .await
}

pub(crate) use user_from_row as from_row;

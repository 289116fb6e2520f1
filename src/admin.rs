//! Operator tasks run from the server's command line. Staff and admin accounts are made
//! only here, never through public sign-up, and always have to use multi-factor
//! authentication.

use crate::auth;
use crate::http::accounts::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::mfa;
use crate::store::audit::{self, AuditEvent};
use crate::store::users::{self, UserRecord};
use anyhow::{Context, bail};
use paranimo_actors::domain::Role;
use paranimo_actors::ids::UserId;
use serde_json::json;
use sqlx::PgPool;
use std::io::BufRead;

/// Whether an account must use a second factor (always for staff and admins); see
/// [`mfa::mfa_required`].
pub use crate::mfa::mfa_required;

/// Environment variable the new account's password is read from; standard input otherwise.
/// Never a command-line argument: those are visible to every user through `ps`.
pub const PASSWORD_ENV: &str = "PARANIMO_NEW_PASSWORD";

/// The roles only an operator can give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OperatorRole {
    Staff,
    Admin,
}

impl From<OperatorRole> for Role {
    fn from(role: OperatorRole) -> Role {
        match role {
            OperatorRole::Staff => Role::Staff,
            OperatorRole::Admin => Role::Admin,
        }
    }
}

/// The password for a new account: `PARANIMO_NEW_PASSWORD` when set, otherwise the first
/// line of standard input (without its line ending). A terminal echoes what is typed, so
/// pipe it in rather than typing it where someone can see the screen.
pub fn read_new_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV)
        && !password.is_empty()
    {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Creates a staff or admin account that must use multi-factor authentication, audited as
/// `user.created_by_operator`. Returns the new account's id.
pub async fn create_operator_account(
    pool: &PgPool,
    email: &str,
    role: OperatorRole,
    password: String,
) -> anyhow::Result<UserId> {
    let email = email.trim();
    let plausible = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !plausible {
        bail!("{email:?} is not an email address");
    }
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        bail!("the password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters");
    }

    let role = Role::from(role);
    let user = UserRecord {
        id: UserId::new_random(),
        email: email.to_owned(),
        role,
        display_name: format!("Paranimo {}", role.as_str()),
    };
    let hash = auth::hash_password(password).await?;

    let mut tx = pool.begin().await?;
    if let Err(e) = users::insert(&mut tx, &user, &hash).await {
        let taken = e
            .as_database_error()
            .is_some_and(|d| d.code().as_deref() == Some("23505"));
        if taken {
            bail!("that email is already registered");
        }
        return Err(e.into());
    }
    mfa::mark_required(&mut tx, user.id).await?;
    // The operator vouches for the address; there is no sign-up link to follow.
    users::mark_email_verified(&mut tx, user.id).await?;
    let event = AuditEvent {
        actor: None,
        action: "user.created_by_operator",
        object_type: "user",
        object_id: user.id.to_string(),
        detail: json!({ "role": role.as_str(), "mfa_required": true }),
    };
    audit::record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(user.id)
}

//! PostgreSQL: the store of record. One module per aggregate holds its SQL; [`PgStore`]
//! implements the actors' ports on top of them.

pub mod audit;
pub mod bookings;
pub mod client_profiles;
pub mod email_tokens;
pub mod messages;
pub mod rooms;
pub mod sessions;
pub mod therapists;
pub mod users;

use paranimo_actors::ports::PortError;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

/// Connections per server process. Bookings hold a connection for one short transaction.
const POOL_SIZE: u32 = 20;

/// Opens the pool and applies any pending migrations (they are forward-only).
pub async fn connect_and_migrate(database_url: &str) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(5))
        .connect(database_url)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// The PostgreSQL implementation of every store port.
#[derive(Clone)]
pub struct PgStore {
    pub pool: PgPool,
}

/// Maps a database error to a port error: named constraint violations are conflicts, the
/// rest is unavailability with its cause kept for the log.
pub fn port_error(e: sqlx::Error) -> PortError {
    if let Some(db) = e.as_database_error() {
        // 23P01: exclusion violation (overlap). 23505: unique violation.
        if matches!(db.code().as_deref(), Some("23P01") | Some("23505")) {
            return PortError::Conflict;
        }
    }
    PortError::Unavailable(e.to_string())
}

/// True for errors worth retrying the whole transaction for (deadlock, serialisation).
pub fn is_transient(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

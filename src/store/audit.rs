//! The append-only, hash-chained audit trail. Each row's hash covers the previous row's hash
//! and the row's own content, so altering or removing a row is detectable by [`verify_chain`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// One audit event about to be written. `detail` holds ids and codes, never personal data.
pub struct AuditEvent<'a> {
    pub actor: Option<Uuid>,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: String,
    pub detail: Value,
}

/// The chain's starting point, before any row exists.
const GENESIS: [u8; 32] = [0; 32];

fn row_hash(prev: &[u8], at: DateTime<Utc>, e: &AuditEvent<'_>) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(at.timestamp_micros().to_be_bytes());
    h.update(e.actor.map(|a| a.as_bytes().to_vec()).unwrap_or_default());
    for part in [e.action, e.object_type, &e.object_id, &e.detail.to_string()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_vec()
}

/// Appends `event` inside the caller's transaction. Call it last, just before commit: it
/// takes the chain's lock, which is then held only for the commit itself.
pub async fn record(tx: &mut PgConnection, event: AuditEvent<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('paranimo.audit_chain'))")
        .execute(&mut *tx)
        .await?;
    let prev: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    let prev = prev.unwrap_or_else(|| GENESIS.to_vec());

    // Microsecond precision, the same as PostgreSQL's, so the stored time re-hashes equal.
    let at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
    let hash = row_hash(&prev, at, &event);
    sqlx::query(
        r#"
        INSERT INTO audit_events (at, actor_id, action, object_type, object_id, detail,
                                  prev_hash, hash)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        "#,
    )
    .bind(at)
    .bind(event.actor)
    .bind(event.action)
    .bind(event.object_type)
    .bind(&event.object_id)
    .bind(&event.detail)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Writes one event in its own transaction, for events with no other change to join.
pub async fn record_alone(pool: &PgPool, event: AuditEvent<'_>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    record(&mut tx, event).await?;
    tx.commit().await
}

/// Recomputes the whole chain; returns the id of the first row that does not match, if any.
pub async fn verify_chain(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    let rows = sqlx::query(
        r#"
        SELECT id, at, actor_id, action, object_type, object_id, detail, prev_hash, hash
        FROM audit_events
        ORDER BY id
        "#,
    )
    .fetch_all(pool)
    .await?;

    let mut prev = GENESIS.to_vec();
    for row in rows {
        let event = AuditEvent {
            actor: row.get("actor_id"),
            action: row.get("action"),
            object_type: row.get("object_type"),
            object_id: row.get("object_id"),
            detail: row.get("detail"),
        };
        let stored_prev: Vec<u8> = row.get("prev_hash");
        let stored: Vec<u8> = row.get("hash");
        if stored_prev != prev || stored != row_hash(&prev, row.get("at"), &event) {
            return Ok(Some(row.get("id")));
        }
        prev = stored;
    }
    Ok(None)
}

//! The SQL of `email_outbox`: queueing a mail, claiming due ones, recording the outcome.
//! Every function runs on the caller's connection, so it joins the caller's transaction.

use super::Email;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};
use std::time::Duration;

/// A queued mail the sender has claimed and now holds locked.
pub(super) struct Due {
    pub id: i64,
    /// Attempts made before this one.
    pub attempts: i32,
    pub queued_at: DateTime<Utc>,
    pub email: Email,
}

pub(super) async fn insert(tx: &mut PgConnection, email: &Email) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        r#"
        INSERT INTO email_outbox (to_address, subject, body_text)
        VALUES ($1, $2, $3)
        RETURNING id
        "#,
    )
    .bind(&email.to)
    .bind(&email.subject)
    .bind(&email.body_text)
    .fetch_one(&mut *tx)
    .await
}

/// Locks up to `limit` due mails, oldest due first. Rows another sender holds are skipped,
/// not waited for, so each node works on its own share; the locks last until the caller's
/// transaction ends.
pub(super) async fn claim_due(tx: &mut PgConnection, limit: i64) -> Result<Vec<Due>, sqlx::Error> {
    let rows = sqlx::query(
        r#"
        SELECT id, attempts, created_at, to_address, subject, body_text
        FROM email_outbox
        WHERE sent_at IS NULL AND next_attempt_at <= now()
        ORDER BY next_attempt_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
        "#,
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;

    Ok(rows
        .into_iter()
        .map(|row| Due {
            id: row.get("id"),
            attempts: row.get("attempts"),
            queued_at: row.get("created_at"),
            email: Email {
                to: row.get("to_address"),
                subject: row.get("subject"),
                body_text: row.get("body_text"),
            },
        })
        .collect())
}

/// Records a delivery. An earlier `last_error` stays, as the history of why it was late.
pub(super) async fn mark_sent(tx: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        UPDATE email_outbox
        SET sent_at = now(), attempts = attempts + 1
        WHERE id = $1
        "#,
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records a failed attempt with its error kind. `retry_in` of `None` gives up: the row is
/// parked at `next_attempt_at = 'infinity'` until an operator sets it back to `now()`.
pub(super) async fn mark_failed(
    tx: &mut PgConnection,
    id: i64,
    error_kind: &str,
    retry_in: Option<Duration>,
) -> Result<(), sqlx::Error> {
    // make_interval is strict: a NULL delay gives a NULL time, which COALESCE turns into
    // 'infinity'.
    sqlx::query(
        r#"
        UPDATE email_outbox
        SET attempts = attempts + 1,
            last_error = $2,
            next_attempt_at = COALESCE(now() + make_interval(secs => $3), 'infinity')
        WHERE id = $1
        "#,
    )
    .bind(id)
    .bind(error_kind)
    .bind(retry_in.map(|d| d.as_secs_f64()))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

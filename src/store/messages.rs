//! Conversation messages.

use super::audit::{self, AuditEvent};
use super::port_error;
use paranimo_actors::ids::{BookingId, MessageId, UserId};
use paranimo_actors::ports::{NewMessage, PortError};
use paranimo_actors::protocol::ChatMessage;
use serde_json::json;
use sqlx::{PgPool, Row};

fn from_row(row: &sqlx::postgres::PgRow) -> Result<ChatMessage, sqlx::Error> {
    Ok(ChatMessage {
        id: MessageId(row.try_get("id")?),
        booking_id: BookingId(row.try_get("booking_id")?),
        sender_id: UserId(row.try_get("sender_id")?),
        client_msg_id: row.try_get("client_msg_id")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Stores a message once; a resend returns the stored one and `false`.
pub async fn insert(pool: &PgPool, new: &NewMessage) -> Result<(ChatMessage, bool), PortError> {
    let mut tx = pool.begin().await.map_err(port_error)?;
    let inserted = sqlx::query(
        r#"
        INSERT INTO messages (id, booking_id, sender_id, client_msg_id, body)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (sender_id, client_msg_id) DO NOTHING
        RETURNING id, booking_id, sender_id, client_msg_id, body, created_at
        "#,
    )
    .bind(MessageId::new_random().0)
    .bind(new.booking_id.0)
    .bind(new.sender_id.0)
    .bind(&new.client_msg_id)
    .bind(&new.body)
    .fetch_optional(&mut *tx)
    .await
    .map_err(port_error)?;

    let Some(row) = inserted else {
        drop(tx);
        let existing = sqlx::query(
            r#"
            SELECT id, booking_id, sender_id, client_msg_id, body, created_at
            FROM messages
            WHERE sender_id = $1 AND client_msg_id = $2
            "#,
        )
        .bind(new.sender_id.0)
        .bind(&new.client_msg_id)
        .fetch_one(pool)
        .await
        .map_err(port_error)?;
        let existing = from_row(&existing).map_err(port_error)?;
        // The same id reused for another conversation is a client bug, not a resend.
        if existing.booking_id != new.booking_id {
            return Err(PortError::Conflict);
        }
        return Ok((existing, false));
    };

    let message = from_row(&row).map_err(port_error)?;
    let event = AuditEvent {
        actor: Some(new.sender_id.0),
        action: "message.sent",
        object_type: "booking",
        object_id: new.booking_id.to_string(),
        detail: json!({ "message_id": message.id }),
    };
    audit::record(&mut tx, event).await.map_err(port_error)?;
    tx.commit().await.map_err(port_error)?;
    Ok((message, true))
}

/// Most messages returned by one page of a conversation.
pub const PAGE_SIZE: i64 = 200;

/// One page of a booking's conversation, oldest first: the newest [`PAGE_SIZE`] messages, or
/// the newest ones created before `before` when paging back.
pub async fn page(
    pool: &PgPool,
    booking: BookingId,
    before: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<ChatMessage>, sqlx::Error> {
    let rows = sqlx::query(
        r#"
        SELECT id, booking_id, sender_id, client_msg_id, body, created_at
        FROM (
            SELECT id, booking_id, sender_id, client_msg_id, body, created_at
            FROM messages
            WHERE booking_id = $1 AND ($2::timestamptz IS NULL OR created_at < $2)
            ORDER BY created_at DESC, id DESC
            LIMIT $3
        ) newest
        ORDER BY created_at, id
        "#,
    )
    .bind(booking.0)
    .bind(before)
    .bind(PAGE_SIZE)
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

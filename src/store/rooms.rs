//! Room attendance: who entered and left a session room, and when.

use super::audit::{self, AuditEvent};
use paranimo_actors::ids::{BookingId, UserId};
use paranimo_actors::ports::Attendance;
use serde_json::json;
use sqlx::PgPool;

/// Records a join or a leave with its audit event.
pub async fn record(
    pool: &PgPool,
    booking: BookingId,
    user: UserId,
    what: Attendance,
) -> Result<(), sqlx::Error> {
    let (event, action) = match what {
        Attendance::Joined => ("joined", "room.joined"),
        Attendance::Left => ("left", "room.left"),
    };
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO room_attendance (booking_id, user_id, event) VALUES ($1, $2, $3)")
        .bind(booking.0)
        .bind(user.0)
        .bind(event)
        .execute(&mut *tx)
        .await?;
    let audit_event = AuditEvent {
        actor: Some(user.0),
        action,
        object_type: "booking",
        object_id: booking.to_string(),
        detail: json!({}),
    };
    audit::record(&mut tx, audit_event).await?;
    tx.commit().await
}

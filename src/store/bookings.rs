//! Bookings. The exclusion constraints in the schema are the final guard against overlaps;
//! this module turns their refusals into `Conflict` and retries deadlocks.

use super::audit::{self, AuditEvent};
use super::{is_transient, port_error};
use chrono::{DateTime, Utc};
use paranimo_actors::domain::{Booking, BookingStatus};
use paranimo_actors::ids::{BookingId, TherapistId, UserId};
use paranimo_actors::ports::{NewBooking, PortError, StoredBooking};
use serde_json::json;
use sqlx::{PgConnection, PgPool, Row};

/// Most upcoming confirmed sessions one client may hold at once: enough for weekly sessions
/// across the whole booking horizon, too few to empty a therapist's calendar.
pub const MAX_UPCOMING_PER_CLIENT: i64 = 8;

/// How many times a booking transaction is retried after a deadlock before giving up. Racing
/// inserts of overlapping rows can each wait on the other inside the exclusion constraint;
/// PostgreSQL then aborts one (after `deadlock_timeout`), and its retry sees the winner.
const DEADLOCK_RETRIES: usize = 10;

/// Every booking query starts from this view, so all of them return the same columns.
macro_rules! booking_view {
    () => {
        r#"
    SELECT b.id, b.therapist_id, b.client_id, lower(b.during) AS start_at,
           upper(b.during) AS end_at, b.status, p.full_name AS therapist_name,
           u.display_name AS client_name
    FROM bookings b
    JOIN therapist_profiles p ON p.user_id = b.therapist_id
    JOIN users u ON u.id = b.client_id
"#
    };
}

const BY_IDEMPOTENCY_KEY: &str = concat!(
    booking_view!(),
    " WHERE b.client_id = $1 AND b.idempotency_key = $2"
);

fn from_row(row: &sqlx::postgres::PgRow) -> Result<Booking, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Booking {
        id: BookingId(row.try_get("id")?),
        therapist_id: TherapistId(row.try_get("therapist_id")?),
        client_id: UserId(row.try_get("client_id")?),
        start: row.try_get::<DateTime<Utc>, _>("start_at")?,
        end: row.try_get::<DateTime<Utc>, _>("end_at")?,
        status: if status == "confirmed" {
            BookingStatus::Confirmed
        } else {
            BookingStatus::Cancelled
        },
        therapist_name: row.try_get("therapist_name")?,
        client_name: row.try_get("client_name")?,
    })
}

async fn find_in(conn: &mut PgConnection, id: BookingId) -> Result<Option<Booking>, sqlx::Error> {
    let sql = concat!(booking_view!(), " WHERE b.id = $1");
    let row = sqlx::query(sql).bind(id.0).fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// One booking by id, whoever it belongs to: callers check the policy.
pub async fn find(pool: &PgPool, id: BookingId) -> Result<Option<Booking>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    find_in(&mut conn, id).await
}

/// The user's bookings as client or therapist: every one that has not ended, soonest
/// first, then the most recent 100 that have, newest first. Upcoming sessions are never
/// pushed out of view by old or far-future ones.
pub async fn list_for_user(pool: &PgPool, user: UserId) -> Result<Vec<Booking>, sqlx::Error> {
    let upcoming = concat!(
        booking_view!(),
        " WHERE (b.client_id = $1 OR b.therapist_id = $1) AND upper(b.during) > now()",
        " ORDER BY lower(b.during)"
    );
    let past = concat!(
        booking_view!(),
        " WHERE (b.client_id = $1 OR b.therapist_id = $1) AND upper(b.during) <= now()",
        " ORDER BY lower(b.during) DESC LIMIT 100"
    );
    let mut rows = sqlx::query(upcoming).bind(user.0).fetch_all(pool).await?;
    rows.extend(sqlx::query(past).bind(user.0).fetch_all(pool).await?);
    rows.iter().map(from_row).collect()
}

/// Confirmed bookings of a therapist that have not ended.
pub async fn upcoming_for_therapist(
    pool: &PgPool,
    therapist: TherapistId,
) -> Result<Vec<Booking>, sqlx::Error> {
    let sql = concat!(
        booking_view!(),
        " WHERE b.therapist_id = $1 AND b.status = 'confirmed' AND upper(b.during) > now()",
        " ORDER BY lower(b.during)"
    );
    let rows = sqlx::query(sql).bind(therapist.0).fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

/// Stores a booking and its audit event in one transaction, retrying deadlocks.
pub async fn insert(pool: &PgPool, new: &NewBooking) -> Result<StoredBooking, PortError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_insert(pool, new).await {
            Err(e) if is_transient(&e) && attempt < DEADLOCK_RETRIES => {
                tracing::warn!(attempt, "booking transaction deadlocked; retrying");
                // A short random pause, so the retries of two losers do not collide again.
                let pause = rand::random_range(5..50);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                continue;
            }
            Err(e) => {
                // A unique violation on the idempotency key means a concurrent retry of the
                // same request won: answer with its booking.
                let duplicate_key = e
                    .as_database_error()
                    .and_then(|d| d.constraint())
                    .is_some_and(|c| c == "bookings_idempotency_key");
                if duplicate_key && let Some(found) = by_idempotency_key(pool, new).await? {
                    return Ok(StoredBooking {
                        booking: found,
                        created: false,
                    });
                }
                return Err(port_error(e));
            }
            Ok(Some(stored)) => return Ok(stored),
            Ok(None) => return Err(PortError::LimitReached),
        }
    }
}

async fn by_idempotency_key(pool: &PgPool, new: &NewBooking) -> Result<Option<Booking>, PortError> {
    let Some(key) = &new.idempotency_key else {
        return Ok(None);
    };
    let row = sqlx::query(BY_IDEMPOTENCY_KEY)
        .bind(new.client_id.0)
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(port_error)?;
    row.as_ref().map(from_row).transpose().map_err(port_error)
}

/// One attempt at storing a booking; `None` when the client is at their booking limit.
async fn try_insert(pool: &PgPool, new: &NewBooking) -> Result<Option<StoredBooking>, sqlx::Error> {
    let mut tx = pool.begin().await?;

    if let Some(key) = &new.idempotency_key {
        let row = sqlx::query(BY_IDEMPOTENCY_KEY)
            .bind(new.client_id.0)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            return Ok(Some(StoredBooking {
                booking: from_row(&row)?,
                created: false,
            }));
        }
    }

    // Lock the client's row so their concurrent requests count one after another.
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(new.client_id.0)
        .execute(&mut *tx)
        .await?;
    let upcoming: i64 = sqlx::query_scalar(
        r#"
        SELECT count(*) FROM bookings
        WHERE client_id = $1 AND status = 'confirmed' AND upper(during) > now()
        "#,
    )
    .bind(new.client_id.0)
    .fetch_one(&mut *tx)
    .await?;
    if upcoming >= MAX_UPCOMING_PER_CLIENT {
        return Ok(None);
    }

    let id = BookingId::new_random();
    sqlx::query(
        r#"
        INSERT INTO bookings (id, therapist_id, client_id, during, status, idempotency_key)
        VALUES ($1, $2, $3, tstzrange($4, $5, '[)'), 'confirmed', $6)
        "#,
    )
    .bind(id.0)
    .bind(new.therapist_id.0)
    .bind(new.client_id.0)
    .bind(new.slot.start)
    .bind(new.slot.end)
    .bind(&new.idempotency_key)
    .execute(&mut *tx)
    .await?;

    let booking = find_in(&mut tx, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let event = AuditEvent {
        actor: Some(new.client_id.0),
        action: "booking.created",
        object_type: "booking",
        object_id: id.to_string(),
        detail: json!({ "therapist_id": new.therapist_id, "start": new.slot.start }),
    };
    audit::record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(Some(StoredBooking {
        booking,
        created: true,
    }))
}

/// Cancels a confirmed booking (with its audit event). `NotFound` if it is not confirmed.
pub async fn cancel(pool: &PgPool, id: BookingId, by: UserId) -> Result<Booking, PortError> {
    let mut tx = pool.begin().await.map_err(port_error)?;
    let updated = sqlx::query(
        r#"
        UPDATE bookings
        SET status = 'cancelled', cancelled_at = now(), cancelled_by = $2
        WHERE id = $1 AND status = 'confirmed'
        "#,
    )
    .bind(id.0)
    .bind(by.0)
    .execute(&mut *tx)
    .await
    .map_err(port_error)?;
    if updated.rows_affected() == 0 {
        return Err(PortError::NotFound);
    }

    let booking = find_in(&mut tx, id)
        .await
        .map_err(port_error)?
        .ok_or(PortError::NotFound)?;
    let event = AuditEvent {
        actor: Some(by.0),
        action: "booking.cancelled",
        object_type: "booking",
        object_id: id.to_string(),
        detail: json!({}),
    };
    audit::record(&mut tx, event).await.map_err(port_error)?;
    tx.commit().await.map_err(port_error)?;
    Ok(booking)
}

//! Booking, listing and cancelling sessions, and reading a booking's conversation.

use crate::auth::CurrentUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::{bookings, messages};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use paranimo_actors::calendar::{Book, Cancel};
use paranimo_actors::domain::Booking;
use paranimo_actors::ids::{BookingId, TherapistId};
use paranimo_actors::policy::{Action, may};
use paranimo_actors::protocol::ChatMessage;
use serde::Deserialize;
use utoipa::ToSchema;

/// Longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 100;

/// Registers this module's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/bookings", web::post().to(create))
        .route("/bookings", web::get().to(list))
        .route("/bookings/{id}", web::get().to(get_one))
        .route("/bookings/{id}/cancel", web::post().to(cancel))
        .route("/bookings/{id}/messages", web::get().to(conversation));
}

/// A booking request: the therapist and the start of one of their free slots.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    pub therapist_id: uuid::Uuid,
    pub start: DateTime<Utc>,
}

/// Books a slot for the calling client.
#[utoipa::path(post, path = "/api/bookings", request_body = BookRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "retry-safe key")),
    responses((status = 201, body = Booking, description = "the booking"),
              (status = 200, body = Booking, description = "the booking, for a repeated key"),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn create(
    state: web::Data<AppState>,
    current: CurrentUser,
    req: HttpRequest,
    body: web::Json<BookRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let therapist = TherapistId(body.therapist_id);
    if !may(Some(&current.principal()), Action::Book(therapist)) {
        return Err(ApiError::Forbidden);
    }

    let command = Book {
        client: current.principal(),
        start: body.start,
        idempotency_key: key,
    };
    // A repeated key answers 200 with the booking it made the first time.
    let (booking, created) = state.calendar(therapist).send(command).await??;
    if created {
        Ok(HttpResponse::Created().json(booking))
    } else {
        Ok(HttpResponse::Ok().json(booking))
    }
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("bad Idempotency-Key".into()))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 100 characters".into(),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// The caller's bookings, as client or therapist, newest first.
#[utoipa::path(get, path = "/api/bookings", responses((status = 200, body = Vec<Booking>)))]
pub async fn list(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<web::Json<Vec<Booking>>, ApiError> {
    Ok(web::Json(
        bookings::list_for_user(&state.pool, current.user.id).await?,
    ))
}

/// Loads a booking and checks the caller may do `action` with it; "not found" otherwise.
async fn authorised_booking(
    state: &AppState,
    current: &CurrentUser,
    id: uuid::Uuid,
    action: for<'a> fn(&'a Booking) -> Action<'a>,
) -> Result<Booking, ApiError> {
    let booking = bookings::find(&state.pool, BookingId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    if !may(Some(&current.principal()), action(&booking)) {
        return Err(ApiError::NotFound);
    }
    Ok(booking)
}

/// One booking, for its two parties only.
#[utoipa::path(get, path = "/api/bookings/{id}", responses((status = 200, body = Booking),
    (status = 404, body = ErrorBody)))]
pub async fn get_one(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<Booking>, ApiError> {
    let booking = authorised_booking(&state, &current, *id, |b| Action::ReadBooking(b)).await?;
    Ok(web::Json(booking))
}

/// Cancels a booking before it starts; either party may.
#[utoipa::path(post, path = "/api/bookings/{id}/cancel", responses((status = 200, body = Booking),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id, booking = %id))]
pub async fn cancel(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<Booking>, ApiError> {
    let booking = authorised_booking(&state, &current, *id, |b| Action::CancelBooking(b)).await?;
    let command = Cancel {
        by: current.principal(),
        booking: booking.id,
    };
    let cancelled = state.calendar(booking.therapist_id).send(command).await??;
    Ok(web::Json(cancelled))
}

/// Which page of a conversation to read.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ConversationQuery {
    /// Only messages created before this time (the `created_at` of the oldest one shown).
    pub before: Option<DateTime<Utc>>,
}

/// A booking's conversation for its two parties only: the newest 200 messages, oldest
/// first; pass `before` to page back.
#[utoipa::path(get, path = "/api/bookings/{id}/messages", params(ConversationQuery),
    responses((status = 200, body = Vec<ChatMessage>), (status = 404, body = ErrorBody)))]
pub async fn conversation(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<uuid::Uuid>,
    query: web::Query<ConversationQuery>,
) -> Result<web::Json<Vec<ChatMessage>>, ApiError> {
    let booking =
        authorised_booking(&state, &current, *id, |b| Action::ReadConversation(b)).await?;
    Ok(web::Json(
        messages::page(&state.pool, booking.id, query.before).await?,
    ))
}

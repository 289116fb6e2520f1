//! Therapist directory, profiles, weekly availability and free slots.

use crate::auth::CurrentUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::therapists::{self, TherapistProfile};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use paranimo_actors::calendar::{ListFreeSlots, SetAvailability};
use paranimo_actors::domain::{SESSION_MINUTES_RANGE, Slot, WeeklyAvailability};
use paranimo_actors::ids::TherapistId;
use paranimo_actors::policy::{Action, may};
use paranimo_actors::ports::EventBus;
use paranimo_actors::protocol::{Event, Topic};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

/// Default span of the slot listing.
const DEFAULT_SLOT_WINDOW: Duration = Duration::days(14);

/// Registers this module's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/therapists", web::get().to(list))
        .route("/therapists/me/profile", web::put().to(put_profile))
        .route(
            "/therapists/me/availability",
            web::get().to(get_availability),
        )
        .route(
            "/therapists/me/availability",
            web::put().to(put_availability),
        )
        .route("/therapists/{id}", web::get().to(get_one))
        .route("/therapists/{id}/slots", web::get().to(slots));
}

/// The editable part of a profile.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    pub full_name: String,
    pub professional_body: String,
    pub membership_number: String,
    pub bio: String,
    pub fee_pence: i32,
    pub session_minutes: i32,
    pub timezone: String,
}

/// A weekly pattern as sent and received.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityBody {
    pub timezone: String,
    pub rules: Vec<paranimo_actors::domain::AvailabilityRule>,
}

/// Bounds of a slot listing; both optional.
#[derive(Deserialize, IntoParams)]
pub struct SlotQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Free slots and the sequence number of the availability topic they are current at.
#[derive(Serialize, ToSchema)]
pub struct SlotsResponse {
    pub therapist_id: TherapistId,
    /// Subscribe to `availability:<id>` with `since = seq` to follow changes from here.
    pub seq: u64,
    pub slots: Vec<Slot>,
}

fn required(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    crate::http::input::single_line(field, value, max)
}

/// Every therapist with a public profile.
#[utoipa::path(get, path = "/api/therapists", responses((status = 200, body = Vec<TherapistProfile>)))]
pub async fn list(
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<TherapistProfile>>, ApiError> {
    Ok(web::Json(therapists::list_profiles(&state.pool).await?))
}

/// One therapist's public profile.
#[utoipa::path(get, path = "/api/therapists/{id}", responses((status = 200, body = TherapistProfile),
    (status = 404, body = ErrorBody)))]
pub async fn get_one(
    state: web::Data<AppState>,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<TherapistProfile>, ApiError> {
    let profile = therapists::profile(&state.pool, TherapistId(*id)).await?;
    Ok(web::Json(profile.ok_or(ApiError::NotFound)?))
}

/// Creates or updates the calling therapist's profile.
#[utoipa::path(put, path = "/api/therapists/me/profile", request_body = ProfileRequest,
    responses((status = 200, body = TherapistProfile), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn put_profile(
    state: web::Data<AppState>,
    current: CurrentUser,
    body: web::Json<ProfileRequest>,
) -> Result<web::Json<TherapistProfile>, ApiError> {
    let therapist = TherapistId(current.user.id.0);
    if !may(
        Some(&current.principal()),
        Action::ManageTherapist(therapist),
    ) {
        return Err(ApiError::Forbidden);
    }
    let body = body.into_inner();
    if body.timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(ApiError::Validation("unknown time zone".into()));
    }
    if !SESSION_MINUTES_RANGE.contains(&body.session_minutes) {
        return Err(ApiError::Validation(
            "session length must be 15 to 180 minutes".into(),
        ));
    }
    if !(0..=1_000_000).contains(&body.fee_pence) {
        return Err(ApiError::Validation(
            "fee must be between £0 and £10,000".into(),
        ));
    }
    let profile = TherapistProfile {
        id: therapist,
        full_name: required("full name", &body.full_name, 120)?,
        professional_body: required("professional body", &body.professional_body, 120)?,
        membership_number: required("membership number", &body.membership_number, 60)?,
        bio: crate::http::input::multi_line("bio", &body.bio, 4000)?,
        fee_pence: body.fee_pence,
        session_minutes: body.session_minutes,
        timezone: body.timezone,
        verified: false,
    };

    let mut tx = state.pool.begin().await?;
    let saved = therapists::upsert_profile(&mut tx, &profile).await?;
    let event = AuditEvent {
        actor: Some(current.user.id.0),
        action: "therapist.profile_updated",
        object_type: "therapist",
        object_id: therapist.to_string(),
        detail: json!({}),
    };
    audit::record(&mut tx, event).await?;
    tx.commit().await?;

    // Session length shapes the slots: tell every node's calendar and every viewer.
    let changed = Event::AvailabilityChanged {
        therapist_id: therapist,
    };
    if let Err(e) = state
        .bus
        .publish(Topic::Availability(therapist), changed)
        .await
    {
        tracing::error!(error = %e, "could not announce a profile change");
    }
    Ok(web::Json(saved))
}

/// The calling therapist's weekly pattern.
#[utoipa::path(get, path = "/api/therapists/me/availability",
    responses((status = 200, body = AvailabilityBody), (status = 404, body = ErrorBody)))]
pub async fn get_availability(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<web::Json<AvailabilityBody>, ApiError> {
    let therapist = TherapistId(current.user.id.0);
    if !may(
        Some(&current.principal()),
        Action::ManageTherapist(therapist),
    ) {
        return Err(ApiError::Forbidden);
    }
    let availability = therapists::availability(&state.pool, therapist)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(web::Json(AvailabilityBody {
        timezone: availability.timezone,
        rules: availability.rules,
    }))
}

/// Replaces the calling therapist's weekly pattern.
#[utoipa::path(put, path = "/api/therapists/me/availability", request_body = AvailabilityBody,
    responses((status = 200, body = AvailabilityBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn put_availability(
    state: web::Data<AppState>,
    current: CurrentUser,
    body: web::Json<AvailabilityBody>,
) -> Result<web::Json<AvailabilityBody>, ApiError> {
    let therapist = TherapistId(current.user.id.0);
    if !may(
        Some(&current.principal()),
        Action::ManageTherapist(therapist),
    ) {
        return Err(ApiError::Forbidden);
    }
    if therapists::profile(&state.pool, therapist).await?.is_none() {
        return Err(ApiError::Validation("fill in your profile first".into()));
    }
    let body = body.into_inner();
    let availability = WeeklyAvailability {
        timezone: body.timezone,
        rules: body.rules,
    };
    state
        .calendar(therapist)
        .send(SetAvailability {
            by: current.principal(),
            availability: availability.clone(),
        })
        .await??;
    Ok(web::Json(AvailabilityBody {
        timezone: availability.timezone,
        rules: availability.rules,
    }))
}

/// Free slots of a therapist, by default for the next 14 days.
#[utoipa::path(get, path = "/api/therapists/{id}/slots", params(SlotQuery),
    responses((status = 200, body = SlotsResponse), (status = 404, body = ErrorBody)))]
pub async fn slots(
    state: web::Data<AppState>,
    id: web::Path<uuid::Uuid>,
    query: web::Query<SlotQuery>,
) -> Result<HttpResponse, ApiError> {
    let therapist = TherapistId(*id);
    let from = query.from.unwrap_or_else(Utc::now);
    let to = query.to.unwrap_or(from + DEFAULT_SLOT_WINDOW);
    if to <= from {
        return Err(ApiError::Validation("`to` must be after `from`".into()));
    }

    // Read the sequence number first: any change after it is replayed to a subscriber that
    // starts from it, so the snapshot plus the replay never miss one.
    // Only a real therapist gets a calendar actor: random ids must not start actors.
    if therapists::profile(&state.pool, therapist).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let seq = state
        .bus
        .current_seq(Topic::Availability(therapist))
        .await?;
    let slots = state
        .calendar(therapist)
        .send(ListFreeSlots { from, to })
        .await??;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(SlotsResponse {
            therapist_id: therapist,
            seq,
            slots,
        }))
}

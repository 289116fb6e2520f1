//! A client's private profile and their consents to therapists (policy 3.8.4 and 5.4.2).
//!
//! The client writes and reads their own profile and chooses which therapists may read it. A
//! therapist reads it only while that client's consent to them is active; anyone else is told
//! "not found", whether or not the client exists. Every change and every therapist's read is
//! audited with ids only. Field values never reach a log line: the types that hold them have
//! no `Debug`, and spans carry ids.

use crate::auth::CurrentUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::client_profiles::{self, ProfileFields, StoredProfile};
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use paranimo_actors::ids::{TherapistId, UserId};
use paranimo_actors::policy::{Action, may};
use paranimo_actors::ports::EventBus;
use paranimo_actors::protocol::{Event, Topic};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;

/// Longest value of one profile field, in characters.
pub const MAX_FIELD_CHARS: usize = 4000;

/// Registers this module's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clients/me/profile", web::get().to(get_own))
        .route("/clients/me/profile", web::put().to(put_own))
        .route("/clients/me/consents", web::get().to(list_consents))
        .route("/clients/me/consents", web::post().to(grant_consent))
        .route(
            "/clients/me/consents/{therapist_id}",
            web::delete().to(revoke_consent),
        )
        .route(
            "/clients/{client_id}/profile",
            web::get().to(get_for_therapist),
        );
}

/// A client's private profile. Every field is optional; `null` means not given.
#[derive(Serialize, ToSchema)]
pub struct ClientProfile {
    pub client_id: UserId,
    pub bio: Option<String>,
    pub goals: Option<String>,
    pub frustrations: Option<String>,
    /// Medical and mental-health information the client chooses to share.
    pub health_notes: Option<String>,
    /// When the client last saved it; `null` if never.
    pub updated_at: Option<DateTime<Utc>>,
}

/// The whole profile, replacing what was there: a field that is missing, `null` or blank is
/// cleared. Each is at most 4,000 characters.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientProfileUpdate {
    #[serde(default)]
    pub bio: Option<String>,
    #[serde(default)]
    pub goals: Option<String>,
    #[serde(default)]
    pub frustrations: Option<String>,
    #[serde(default)]
    pub health_notes: Option<String>,
}

/// Let a therapist read your profile.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    pub therapist_id: TherapistId,
}

/// An active consent: this therapist may read your profile until you revoke it.
#[derive(Serialize, ToSchema)]
pub struct ClientConsent {
    pub therapist_id: TherapistId,
    pub therapist_name: String,
    pub granted_at: DateTime<Utc>,
}

impl ClientProfile {
    fn new(client_id: UserId, stored: StoredProfile) -> Self {
        let StoredProfile { fields, updated_at } = stored;
        Self {
            client_id,
            bio: fields.bio,
            goals: fields.goals,
            frustrations: fields.frustrations,
            health_notes: fields.health_notes,
            updated_at,
        }
    }

    /// A response browsers and proxies must not keep: it may hold health information.
    fn respond(self) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(self)
    }
}

/// Trims a field; blank is "not given". Longer than the limit is refused, naming the field
/// but never repeating its value.
fn field(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value.trim();
    if value.chars().count() > MAX_FIELD_CHARS {
        return Err(ApiError::Validation(format!(
            "{name} must be at most {MAX_FIELD_CHARS} characters"
        )));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// Refuses callers who are not this client: 403, since "me" hides nothing.
fn require(current: &CurrentUser, action: Action<'_>) -> Result<(), ApiError> {
    if may(Some(&current.principal()), action) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Appends one audit event about `client`'s profile or consents; ids only.
async fn record(
    tx: &mut PgConnection,
    actor: UserId,
    action: &str,
    client: UserId,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    let event = AuditEvent {
        actor: Some(actor.0),
        action,
        object_type: "client_profile",
        object_id: client.to_string(),
        detail,
    };
    audit::record(tx, event).await?;
    Ok(())
}

/// Publishes a consent change to the therapist's own topic, after commit. The change already
/// holds without it (reads check the database), so a failure is logged, not returned.
async fn announce(state: &AppState, therapist: TherapistId, event: Event) {
    let topic = Topic::User(UserId::from(therapist));
    if let Err(e) = state.bus.publish(topic, event).await {
        tracing::error!(error = %e, "could not announce a consent change");
    }
}

/// The calling client's own profile.
#[utoipa::path(get, path = "/api/clients/me/profile",
    responses((status = 200, body = ClientProfile), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn get_own(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let me = current.user.id;
    let own = Action::ReadClientProfile {
        client: me,
        consent: false,
    };
    require(&current, own)?;

    let mut conn = state.pool.acquire().await?;
    let stored = client_profiles::read(&mut conn, &state.settings.master_key, me).await?;
    Ok(ClientProfile::new(me, stored).respond())
}

/// Replaces the calling client's profile.
#[utoipa::path(put, path = "/api/clients/me/profile", request_body = ClientProfileUpdate,
    responses((status = 200, body = ClientProfile), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn put_own(
    state: web::Data<AppState>,
    current: CurrentUser,
    body: web::Json<ClientProfileUpdate>,
) -> Result<HttpResponse, ApiError> {
    let me = current.user.id;
    require(&current, Action::EditClientProfile(me))?;
    let body = body.into_inner();
    let fields = ProfileFields {
        bio: field("bio", body.bio)?,
        goals: field("goals", body.goals)?,
        frustrations: field("frustrations", body.frustrations)?,
        health_notes: field("health_notes", body.health_notes)?,
    };

    let mut tx = state.pool.begin().await?;
    let master = &state.settings.master_key;
    let updated_at = client_profiles::write(&mut tx, master, me, &fields).await?;
    record(&mut tx, me, "client_profile.updated", me, json!({})).await?;
    tx.commit().await?;

    tracing::info!("client profile saved");
    let stored = StoredProfile {
        fields,
        updated_at: Some(updated_at),
    };
    Ok(ClientProfile::new(me, stored).respond())
}

/// A client's profile, for a therapist that client consents to (or the client themself).
/// Anyone else gets 404, whether or not the client exists.
#[utoipa::path(get, path = "/api/clients/{client_id}/profile",
    responses((status = 200, body = ClientProfile), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id, client_id = %client_id))]
pub async fn get_for_therapist(
    state: web::Data<AppState>,
    current: CurrentUser,
    client_id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let client = UserId(*client_id);
    let reader = current.user.id;

    // The consent check, the read and its audit row share one transaction: the consent row
    // stays locked until commit, so a revocation cannot slip between check and read.
    let mut tx = state.pool.begin().await?;
    let consent = client_profiles::holds_consent(&mut tx, client, TherapistId(reader.0)).await?;
    let action = Action::ReadClientProfile { client, consent };
    if !may(Some(&current.principal()), action) {
        return Err(ApiError::NotFound);
    }
    let stored = client_profiles::read(&mut tx, &state.settings.master_key, client).await?;
    if reader != client {
        record(&mut tx, reader, "client_profile.read", client, json!({})).await?;
    }
    tx.commit().await?;
    Ok(ClientProfile::new(client, stored).respond())
}

/// The therapists the calling client lets read their profile.
#[utoipa::path(get, path = "/api/clients/me/consents",
    responses((status = 200, body = Vec<ClientConsent>), (status = 403, body = ErrorBody)))]
pub async fn list_consents(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<web::Json<Vec<ClientConsent>>, ApiError> {
    let me = current.user.id;
    require(&current, Action::ManageConsent(me))?;
    let consents = client_profiles::active_consents(&state.pool, me).await?;
    Ok(web::Json(
        consents
            .into_iter()
            .map(|c| ClientConsent {
                therapist_id: c.therapist_id,
                therapist_name: c.therapist_name,
                granted_at: c.granted_at,
            })
            .collect(),
    ))
}

/// Lets a therapist read the calling client's profile. 201 when granted now, 200 when it was
/// already active; 404 when there is no such therapist.
#[utoipa::path(post, path = "/api/clients/me/consents", request_body = ConsentRequest,
    responses((status = 201, body = ClientConsent), (status = 200, body = ClientConsent),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn grant_consent(
    state: web::Data<AppState>,
    current: CurrentUser,
    body: web::Json<ConsentRequest>,
) -> Result<HttpResponse, ApiError> {
    let me = current.user.id;
    require(&current, Action::ManageConsent(me))?;
    let therapist = body.therapist_id;

    let mut tx = state.pool.begin().await?;
    if !client_profiles::is_therapist(&mut tx, therapist).await? {
        return Err(ApiError::NotFound);
    }
    let (granted_at, created) = client_profiles::grant(&mut tx, me, therapist).await?;
    if created {
        let detail = json!({ "therapist_id": therapist });
        record(&mut tx, me, "client_consent.granted", me, detail).await?;
    }
    tx.commit().await?;

    let consent = client_profiles::active_consents(&state.pool, me)
        .await?
        .into_iter()
        .find(|c| c.therapist_id == therapist);
    let therapist_name = consent.map(|c| c.therapist_name).unwrap_or_default();
    let body = ClientConsent {
        therapist_id: therapist,
        therapist_name,
        granted_at,
    };
    if !created {
        return Ok(HttpResponse::Ok().json(body));
    }
    tracing::info!(therapist_id = %therapist, "consent granted");
    let granted = Event::ConsentGranted {
        client_id: me,
        therapist_id: therapist,
    };
    announce(&state, therapist, granted).await;
    Ok(HttpResponse::Created().json(body))
}

/// Withdraws the calling client's consent to a therapist, at once: the therapist's next read
/// is refused and their open pages are told to drop the profile. 204 whether or not a consent
/// was active, so a retry is harmless.
#[utoipa::path(delete, path = "/api/clients/me/consents/{therapist_id}",
    responses((status = 204, description = "no consent is active any more"),
              (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id, therapist_id = %therapist_id))]
pub async fn revoke_consent(
    state: web::Data<AppState>,
    current: CurrentUser,
    therapist_id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let me = current.user.id;
    require(&current, Action::ManageConsent(me))?;
    let therapist = TherapistId(*therapist_id);

    let mut tx = state.pool.begin().await?;
    let revoked = client_profiles::revoke(&mut tx, me, therapist).await?;
    if revoked {
        let detail = json!({ "therapist_id": therapist });
        record(&mut tx, me, "client_consent.revoked", me, detail).await?;
    }
    tx.commit().await?;

    if revoked {
        tracing::info!("consent revoked");
        let event = Event::ConsentRevoked {
            client_id: me,
            therapist_id: therapist,
        };
        announce(&state, therapist, event).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

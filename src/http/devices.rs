//! "Your devices": the signed-in user's sessions, with revoke one and sign out everywhere.
//! A revoked session's websockets close at once on every node.

use crate::auth::{self, CurrentUser};
use crate::http::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::sessions::{self, Device};
use actix_web::{HttpResponse, web};
use serde_json::json;

/// Registers this module's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sessions", web::get().to(list))
        .route("/sessions/revoke-all", web::post().to(revoke_all))
        .route("/sessions/{id}", web::delete().to(revoke_one));
}

/// The caller's live sessions, most recently used first.
#[utoipa::path(get, path = "/api/sessions", responses((status = 200, body = Vec<Device>),
    (status = 401, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<web::Json<Vec<Device>>, ApiError> {
    Ok(web::Json(
        sessions::devices(&state.pool, current.user.id, &current.token).await?,
    ))
}

/// Signs one device out. Another user's session id is simply not found.
#[utoipa::path(delete, path = "/api/sessions/{id}",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn revoke_one(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.pool.begin().await?;
    let ended = sessions::revoke_by_id(&mut tx, current.user.id, *id).await?;
    let ended = ended.ok_or(ApiError::NotFound)?;
    let event = AuditEvent {
        actor: Some(current.user.id.0),
        action: "session.revoked",
        object_type: "session",
        object_id: id.to_string(),
        detail: json!({}),
    };
    audit::record(&mut tx, event).await?;
    tx.commit().await?;

    let was_current = ended == sessions::token_hash(&current.token);
    state.sessions_revoked(vec![ended]).await;
    let mut response = HttpResponse::NoContent();
    if was_current {
        response.cookie(auth::cleared_cookie(state.settings.production));
    }
    Ok(response.finish())
}

/// Signs out every device, this one included.
#[utoipa::path(post, path = "/api/sessions/revoke-all", responses((status = 204),
    (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn revoke_all(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.pool.begin().await?;
    let ended = sessions::revoke_all(&mut tx, current.user.id, None).await?;
    let event = AuditEvent {
        actor: Some(current.user.id.0),
        action: "session.revoked_all",
        object_type: "user",
        object_id: current.user.id.to_string(),
        detail: json!({ "sessions_ended": ended.len() }),
    };
    audit::record(&mut tx, event).await?;
    tx.commit().await?;

    state.sessions_revoked(ended).await;
    Ok(HttpResponse::NoContent()
        .cookie(auth::cleared_cookie(state.settings.production))
        .finish())
}

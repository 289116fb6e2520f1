//! The signed-in user's second factor: status, enrolment, confirmation, new recovery codes
//! and switching it off. Checking the factor at sign-in belongs to `accounts::login`.

use crate::auth::CurrentUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::mfa;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Registers this module's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/mfa", web::get().to(get_status))
        .route("/mfa/enrol", web::post().to(enrol))
        .route("/mfa/confirm", web::post().to(confirm))
        .route("/mfa/disable", web::post().to(disable))
        .route(
            "/mfa/recovery-codes",
            web::post().to(regenerate_recovery_codes),
        );
}

/// A code from the authenticator app, or a recovery code where the route allows one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub code: String,
}

/// Whether the second factor is on.
#[derive(Serialize, ToSchema)]
pub struct MfaStatusView {
    pub enrolled: bool,
    /// True when the account may not be without it (staff, admins).
    pub required: bool,
    pub recovery_codes_left: i64,
}

/// What an authenticator app needs. Shown once; the page should not be cached.
#[derive(Serialize, ToSchema)]
pub struct EnrolmentView {
    /// Base32, for typing into the app by hand.
    pub secret: String,
    /// `otpauth://totp/…`, for a QR code.
    pub otpauth_url: String,
}

/// One-time recovery codes, `XXXX-XXXX-XXXX`, shown only this once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesView {
    pub recovery_codes: Vec<String>,
}

/// A response carrying secrets, which no cache may keep.
fn secret_response(body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// The state of the signed-in user's second factor.
#[utoipa::path(get, path = "/api/mfa", responses((status = 200, body = MfaStatusView),
    (status = 401, body = ErrorBody)))]
pub async fn get_status(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<web::Json<MfaStatusView>, ApiError> {
    let user = &current.user;
    let status = mfa::status(&state.pool, user.id).await?;
    let required = mfa::mfa_required(&state.pool, user.id, user.role).await?;
    Ok(web::Json(MfaStatusView {
        enrolled: status.enrolled,
        required,
        recovery_codes_left: status.recovery_codes_left,
    }))
}

/// The account password, asked again before the second factor is set up, so a stolen
/// session alone cannot enrol an attacker's phone and lock the owner out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub password: String,
}

/// Starts enrolment with a fresh secret, replacing one that was never confirmed.
#[utoipa::path(post, path = "/api/mfa/enrol", request_body = PasswordRequest,
    responses((status = 200, body = EnrolmentView),
    (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn enrol(
    state: web::Data<AppState>,
    current: CurrentUser,
    body: web::Json<PasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = &current.user;
    let mut conn = state.pool.acquire().await?;
    let stored = crate::store::users::password_hash(&mut conn, user.id).await?;
    drop(conn);
    let password = body.into_inner().password;
    let check = async {
        match crate::auth::verify_password(password, Some(stored)).await? {
            true => Ok(()),
            false => Err(ApiError::InvalidCredentials),
        }
    };
    let wrong = |e: &ApiError| matches!(e, ApiError::InvalidCredentials);
    crate::throttle::reauthenticate(&state, user.id, check, wrong).await?;
    let enrolment = mfa::begin_enrolment(&state.pool, user.id, &user.email).await?;
    Ok(secret_response(EnrolmentView {
        secret: enrolment.secret,
        otpauth_url: enrolment.otpauth_url,
    }))
}

/// Confirms enrolment with a code from the app; the answer holds the recovery codes.
#[utoipa::path(post, path = "/api/mfa/confirm", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodesView), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn confirm(
    state: web::Data<AppState>,
    current: CurrentUser,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let codes = mfa::confirm_enrolment(&state.pool, current.user.id, &body.code).await?;
    tracing::info!("second factor enabled");
    Ok(secret_response(RecoveryCodesView {
        recovery_codes: codes,
    }))
}

/// Switches the second factor off, given a current code or a recovery code. Refused with 403
/// for accounts that must keep it.
#[utoipa::path(post, path = "/api/mfa/disable", request_body = CodeRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn disable(
    state: web::Data<AppState>,
    current: CurrentUser,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = &current.user;
    let disable = mfa::disable(&state.pool, user.id, user.role, &body.code);
    let wrong = |e: &mfa::MfaError| matches!(e, mfa::MfaError::InvalidCode);
    crate::throttle::reauthenticate(&state, user.id, disable, wrong).await?;
    tracing::info!("second factor disabled");
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces the recovery codes, given a current code or one of the old recovery codes.
#[utoipa::path(post, path = "/api/mfa/recovery-codes", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodesView), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn regenerate_recovery_codes(
    state: web::Data<AppState>,
    current: CurrentUser,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let regenerate = mfa::regenerate_recovery_codes(&state.pool, current.user.id, &body.code);
    let wrong = |e: &mfa::MfaError| matches!(e, mfa::MfaError::InvalidCode);
    let codes = crate::throttle::reauthenticate(&state, current.user.id, regenerate, wrong).await?;
    Ok(secret_response(RecoveryCodesView {
        recovery_codes: codes,
    }))
}

//! The OpenAPI document served at `/api/openapi.json`, generated from the handlers' own
//! annotations so it cannot drift from the code.

use crate::http::client_profiles;
use crate::http::mfa;
use crate::http::{accounts, bookings, devices, error, health, rtc, therapists};
use actix_web::HttpResponse;
use utoipa::OpenApi;

/// The HTTP API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Paranimo API",
        version = "1",
        description = "See docs/api.md and docs/protocol.md"
    ),
    paths(
        accounts::register,
        accounts::login,
        accounts::logout,
        accounts::me,
        accounts::verify_email,
        accounts::login_second_factor,
        accounts::change_password,
        accounts::request_password_reset,
        accounts::confirm_password_reset,
        devices::list,
        devices::revoke_one,
        devices::revoke_all,
        therapists::list,
        therapists::get_one,
        therapists::put_profile,
        therapists::get_availability,
        therapists::put_availability,
        therapists::slots,
        bookings::create,
        bookings::list,
        bookings::get_one,
        bookings::cancel,
        bookings::conversation,
        rtc::ice_servers,
        mfa::get_status,
        mfa::enrol,
        mfa::confirm,
        mfa::disable,
        mfa::regenerate_recovery_codes,
        client_profiles::get_own,
        client_profiles::put_own,
        client_profiles::get_for_therapist,
        client_profiles::list_consents,
        client_profiles::grant_consent,
        client_profiles::revoke_consent,
        health::healthz,
        health::readyz,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail))
)]
pub struct ApiDoc;

/// Serves the document.
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

//! The HTTP API: each resource module owns its routes and types; this module assembles them
//! with the guards every request passes through.

pub mod accounts;
pub mod bookings;
pub mod client_profiles;
pub mod devices;
pub mod error;
pub mod health;
pub mod input;
pub mod mfa;
pub mod openapi;
pub mod rtc;
pub mod therapists;

use crate::state::AppState;
use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use error::ApiError;

/// Registers every route under `/api`, plus the probes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::routes).service(
        web::scope("/api")
            .wrap(api_cache_headers())
            .app_data(error::json_config())
            .app_data(error::query_config())
            .app_data(error::path_config())
            .route("/openapi.json", web::get().to(openapi::openapi_json))
            .configure(accounts::routes)
            .configure(therapists::routes)
            .configure(bookings::routes)
            .configure(devices::routes)
            .configure(rtc::routes)
            .configure(mfa::routes)
            .configure(client_profiles::routes)
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::NotFound)
            })),
    );
}

/// True when the request's `Origin` is our public origin.
pub fn origin_allowed(req: &actix_web::HttpRequest, public_origin: &str) -> bool {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|origin| origin.trim_end_matches('/') == public_origin)
}

/// CSRF defence: a cookie-authenticated write must come from our own origin. Browsers always
/// send `Origin` on cross-site and same-site writes, so a missing or foreign one is refused.
///
/// The refusal is returned as a response rather than an error, so the middleware around it
/// (security headers) still applies to it.
pub async fn require_same_origin_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let public_origin = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.settings.public_origin.clone())
            .unwrap_or_default();
        if !origin_allowed(req.request(), &public_origin) {
            let refusal = ApiError::CrossOrigin.error_response();
            return Ok(req.into_response(refusal).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Marks every API answer as not to be stored by any cache: they are personal. Handlers that
/// set their own `Cache-Control` keep it.
pub fn api_cache_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store"))
}

/// Content-Security-Policy for the app: our own scripts and styles only, media from the
/// camera, connections to ourselves; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; \
    object-src 'none'";

/// Security headers on every response; HSTS only in production, where TLS is guaranteed.
pub fn security_headers(production: bool) -> actix_web::middleware::DefaultHeaders {
    let headers = actix_web::middleware::DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((
            "Permissions-Policy",
            "camera=(self), microphone=(self), geolocation=()",
        ));
    if production {
        headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ))
    } else {
        headers
    }
}

//! Logging set-up: structured `tracing` output, filtered by `RUST_LOG`. Request and
//! connection spans carry ids only; no personal data, message text or token is ever a field.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber. `json` gives one JSON object per line for log shipping.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    // A second call (several tests in one process) keeps the first subscriber.
    let _ = if json {
        registry
            .with(fmt::layer().json().with_current_span(true))
            .try_init()
    } else {
        registry.with(fmt::layer().with_target(false)).try_init()
    };
}

/// The root span of every HTTP request: method, route, a request id, the status and, once
/// known, the user id. Unlike the library's default it leaves out the client's IP address
/// and user agent, which are personal data.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        tracing::info_span!(
            "http",
            method = %request.method(),
            route = %route,
            request_id = %uuid::Uuid::new_v4(),
            user_id = tracing::field::Empty,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("status", status.as_u16());
        let _inside = span.enter();
        if status.is_server_error() {
            tracing::error!("request failed");
        } else if status.is_client_error() {
            tracing::warn!("request refused");
        } else {
            tracing::debug!("request served");
        }
    }
}

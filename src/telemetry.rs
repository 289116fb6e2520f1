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

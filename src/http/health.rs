//! Liveness and readiness probes for the load balancer and the operator.

use crate::state::AppState;
use actix_web::{HttpResponse, web};

/// Registers this module's routes (at the root, not under `/api`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", responses((status = 200)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// PostgreSQL and Redis both answer.
#[utoipa::path(get, path = "/readyz", responses((status = 200), (status = 503)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let postgres = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let mut redis = state.bus.connection();
    let redis_ok = redis::cmd("PING")
        .query_async::<String>(&mut redis)
        .await
        .is_ok();
    let body = serde_json::json!({ "postgres": postgres, "redis": redis_ok });
    if postgres && redis_ok {
        HttpResponse::Ok().json(body)
    } else {
        tracing::warn!(postgres, redis = redis_ok, "not ready");
        HttpResponse::ServiceUnavailable().json(body)
    }
}

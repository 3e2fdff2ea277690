//! Operations: `/healthz` (the process is up), `/readyz` (database and broker answer) and
//! `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::queue::BrokerStatus;

pub fn routes() -> OpenApiRouter<AppState> {
    probe_routes()
}

/// The three endpoints every process serves, `worker` and `scheduler` included.
pub fn probe_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` or `down`
    database: &'static str,
    /// `ok`, `down` or `not_used` (embedded queue)
    broker: &'static str,
}

/// 200 when the database (and the broker, if used) answer; 503 when one is down.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = if state.db.ping().await { "ok" } else { "down" };
    let broker = match state.queue.broker_status() {
        BrokerStatus::NotUsed => "not_used",
        BrokerStatus::Up => "ok",
        BrokerStatus::Down => "down",
    };
    let status = if database == "ok" && broker != "down" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(Readiness { database, broker }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

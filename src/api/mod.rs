//! The HTTP interface (`spec/api.md`): the shared [`AppState`], the router with its
//! middleware (request ids, tracing, metrics, body limits, panics as problems), and one file
//! per resource. Handlers parse, call the store or the domain, and answer.

pub mod admin;
pub mod auth;
pub mod callbacks;
pub mod documents;
pub mod filing_code;
pub mod filing_view;
pub mod filings;
pub mod idempotency;
pub mod messages;
pub mod openapi;
pub mod ops;
pub mod owner_qr;
pub mod pagination;
pub mod payments;
pub mod problem;
pub mod reconciliations;
pub mod registry;
pub mod reviews;
pub mod test_clock;
pub mod ui;
pub mod vehicles;
pub mod violations;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_scalar::Scalar;

use crate::clock::Clock;
use crate::config::Config;
use crate::queue::Queue;
use crate::store::Db;
use problem::{ApiError, payload_too_large};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Clock,
    pub tokens: Arc<auth::TokenKeys>,
    pub metrics: PrometheusHandle,
    pub queue: Queue,
    pub services: Arc<crate::services::Services>,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The full interface: every resource, `/openapi.json`, `/docs`.
pub fn router(state: AppState) -> axum::Router {
    let (api, mut openapi) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(ops::routes())
        .merge(registry::routes())
        .merge(admin::routes())
        .merge(filings::routes())
        .merge(filing_code::routes())
        .merge(messages::routes())
        .merge(vehicles::routes())
        .merge(test_clock::routes())
        .merge(documents::routes())
        .merge(owner_qr::routes())
        .merge(reviews::routes())
        .merge(violations::routes())
        .merge(payments::routes())
        .merge(callbacks::routes())
        .merge(ui::routes())
        .merge(reconciliations::routes())
        .split_for_parts();
    openapi::declare_problem_responses(&mut openapi);
    // Rendered once: a handler is cloned for every request, so it holds shared bytes, not
    // the document (cloning the document per request cost a deep copy of every schema).
    let openapi_json = axum::body::Bytes::from(
        serde_json::to_vec(&openapi).expect("the OpenAPI document serializes"),
    );
    let docs_html = axum::body::Bytes::from(Scalar::new(openapi).to_html());
    let app = api
        .route(
            "/openapi.json",
            get(move || {
                let body = openapi_json.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            }),
        )
        .route(
            "/docs",
            get(move || {
                let body = docs_html.clone();
                async move { axum::response::Html(body) }
            }),
        );
    finish(app, state)
}

/// Only `/healthz`, `/readyz` and `/metrics`: what `worker` and `scheduler` serve.
pub fn ops_router(state: AppState) -> axum::Router {
    let (app, _) = OpenApiRouter::new()
        .merge(ops::probe_routes())
        .split_for_parts();
    finish(app, state)
}

fn finish(app: axum::Router<AppState>, state: AppState) -> axum::Router {
    let json_limit = state.config.http.max_json_bytes;
    let upload_limit = state.config.http.max_upload_bytes;
    app.fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .route_layer(middleware::from_fn(observe))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            body_limit(req, next, json_limit, upload_limit)
        }))
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("the request could not be completed").into_response()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}

/// 413 before reading a body that declares itself over the limit; bodies without a length
/// are cut by the extractors' own limit.
async fn body_limit(req: Request, next: Next, json_limit: usize, upload_limit: usize) -> Response {
    let is_upload = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"))
        || req.uri().path() == "/v1/reconciliations/upload";
    let limit = if is_upload { upload_limit } else { json_limit };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return payload_too_large().into_response();
    }
    next.run(req).await
}

/// Per-request span (method, route template, request id: never the raw URI or body, which
/// may carry personal data), the access log line and the HTTP metrics.
async fn observe(matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let route = matched
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!("request", %method, route = %route, request_id = %request_id);
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("beian_http_requests_total", "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("beian_http_request_duration_seconds", "route" => route).record(elapsed);
    span.in_scope(|| {
        if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(status, ms = elapsed * 1000.0, "answered");
        } else {
            tracing::info!(status, ms = elapsed * 1000.0, "answered");
        }
    });
    response
}

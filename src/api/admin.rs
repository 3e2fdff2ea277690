//! The operator's view of the job runtime (role `admin`): queue overview, dead jobs with
//! every attempt's error, and replay of a dead job. Jobs are shown through [`view`], which
//! masks personal data.

mod view;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::idempotency::{Idempotency, OptionalIdempotencyKey};
use super::problem::{ApiError, ApiResult, Path, Problem, Query};
use crate::store::jobs;
pub use view::JobView;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queues))
        .routes(routes!(list_jobs))
        .routes(routes!(retry_job))
}

#[derive(Serialize, ToSchema)]
pub struct QueueOverview {
    queue: String,
    ready: i64,
    running: i64,
    scheduled: i64,
    retrying: i64,
    dead: i64,
    done: i64,
    /// Jobs finished in the last minute.
    throughput_per_minute: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Queues {
    items: Vec<QueueOverview>,
}

/// Per queue: ready, running, scheduled, retrying, dead, and throughput.
#[utoipa::path(get, path = "/v1/admin/queues", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Queues), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn queues(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<Queues>> {
    caller.require(&[Role::Admin])?;
    let now = state.clock.now_ms();
    let counts = jobs::open_counts(&state.db, now).await?;
    let done = jobs::done_counts(&state.db).await?;
    let recent = jobs::recently_done(&state.db, now - 60_000).await?;
    let count = |queue: &str, bucket: &str| {
        counts
            .iter()
            .find(|(q, b, _)| q == queue && b == bucket)
            .map(|(_, _, n)| *n)
            .unwrap_or(0)
    };
    // The application's queues, then any other queue that holds jobs (a job kind of
    // another version of the binary, a test's queue).
    let mut names: Vec<String> = state.queue.settings().queues().map(String::from).collect();
    let held = counts
        .iter()
        .map(|(q, _, _)| q)
        .chain(done.iter().map(|(q, _)| q));
    for queue in held {
        if !names.contains(queue) {
            names.push(queue.clone());
        }
    }
    let items = names
        .iter()
        .map(|q| QueueOverview {
            queue: q.to_string(),
            ready: count(q, "ready"),
            running: count(q, "running"),
            scheduled: count(q, "scheduled"),
            retrying: count(q, "retrying"),
            dead: count(q, "dead"),
            done: done
                .iter()
                .find(|(name, _)| name == q)
                .map(|(_, n)| *n)
                .unwrap_or(0),
            throughput_per_minute: recent
                .iter()
                .find(|(name, _)| name == q)
                .map(|(_, n)| *n)
                .unwrap_or(0),
        })
        .collect();
    Ok(axum::Json(Queues { items }))
}

#[derive(Deserialize, IntoParams)]
pub struct JobFilter {
    /// `queued`, `running`, `done` or `dead`
    state: Option<String>,
    queue: Option<String>,
    /// Default 50, at most 500.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct JobList {
    items: Vec<JobView>,
    next_cursor: Option<String>,
}

/// Jobs by state (e.g. `?state=dead`), with their last error, attempts and history.
#[utoipa::path(get, path = "/v1/admin/jobs", tag = "admin", security(("bearer" = [])), params(JobFilter),
    responses((status = 200, body = JobList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<JobFilter>,
) -> ApiResult<axum::Json<JobList>> {
    caller.require(&[Role::Admin])?;
    if let Some(s) = &filter.state {
        if !["queued", "running", "done", "dead"].contains(&s.as_str()) {
            return Err(ApiError::invalid_field(
                "invalid_state",
                "state",
                "state: expected queued, running, done or dead",
            ));
        }
    }
    let limit = filter.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid_field(
            "invalid_limit",
            "limit",
            "limit: between 1 and 500",
        ));
    }
    let items: Vec<JobView> = jobs::list(
        &state.db,
        filter.state.as_deref(),
        filter.queue.as_deref(),
        filter.cursor.as_deref(),
        limit,
    )
    .await?
    .into_iter()
    .map(JobView::from)
    .collect();
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|j| j.id.clone()))
        .flatten();
    Ok(axum::Json(JobList { items, next_cursor }))
}

#[derive(Serialize, ToSchema)]
pub struct Requeued {
    id: String,
    state: &'static str,
}

/// Replays a dead job with a fresh set of attempts. Takes an optional `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/admin/jobs/{id}/retry", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id"),
        ("Idempotency-Key" = Option<String>, Header, description = "a repeat returns the first answer")),
    responses((status = 202, body = Requeued), (status = 404, body = Problem), (status = 409, description = "not dead", body = Problem),
        (status = 422, description = "idempotency_key_reused", body = Problem)))]
async fn retry_job(
    State(state): State<AppState>,
    caller: Caller,
    OptionalIdempotencyKey(key): OptionalIdempotencyKey,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    let idempotency = Idempotency::new(
        &caller.sub,
        "POST /v1/admin/jobs/retry",
        key,
        &serde_json::json!({ "id": id }),
    );
    if let Some(repeat) = idempotency.repeat(&state.db).await? {
        return Ok(repeat);
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    if !jobs::requeue_dead(&mut tx, &id, now).await? {
        tx.rollback().await?;
        let exists = jobs::state_of(&state.db, &id).await?.is_some();
        return Err(if exists {
            ApiError::conflict("job_not_dead", "only a dead job can be replayed")
        } else {
            ApiError::not_found("job_not_found", "no such job")
        });
    }
    let body = Requeued {
        id,
        state: "queued",
    };
    let response = idempotency
        .commit(&state.db, tx, StatusCode::ACCEPTED, &body, None, now)
        .await?;
    state.queue.wake();
    tracing::info!(job = %body.id, by = %caller.sub, "dead job replayed");
    Ok(response)
}

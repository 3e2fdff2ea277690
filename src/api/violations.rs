//! Violations over HTTP (`spec/api.md`, "Violations and payments"): the camera feed's
//! ingestion for the system role (one record, or an NDJSON batch whose bad lines are
//! reported by number), the caller's list with `can_handle` and `why_not`, and handling
//! (a penalty decision and its payment). The rules are the violation lifecycle's
//! (`crate::violations`, `domain::violation`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::pagination::{next_cursor, page_limit};
use super::payments::{PaymentView, view_of as payment_view};
use super::problem::{ApiError, ApiResult, Json, Path, Problem, Query};
use crate::clock::rfc3339;
use crate::domain::plate::parse_plate;
use crate::domain::violation::{Refusal, Standing, ViolationStatus, check_record, may_handle};
use crate::violations::{self, NewViolation, ViolationError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest, list))
        .routes(routes!(ingest_batch))
        .routes(routes!(handle))
}

/// A record of the camera feed.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViolationRecord {
    /// The feed's record id: the same record twice is one violation.
    pub source_id: String,
    pub plate_type: String,
    pub plate_number: String,
    /// RFC 3339 with offset.
    pub occurred_at: String,
    pub location: String,
    pub violation_code: String,
    pub description: String,
    pub fine_fen: i64,
    /// 0, 1, 3, 6, 9 or 12.
    pub points: i64,
    pub device_id: String,
}

impl From<crate::domain::violation::RecordError> for ApiError {
    fn from(e: crate::domain::violation::RecordError) -> Self {
        ApiError::invalid_field(e.code, e.field, e.detail)
    }
}

fn checked(record: ViolationRecord) -> ApiResult<NewViolation> {
    let (plate_type, plate_number) = parse_plate(&record.plate_type, &record.plate_number)?;
    let occurred_at = chrono::DateTime::parse_from_rfc3339(record.occurred_at.trim())
        .map_err(|_| {
            ApiError::invalid_field(
                "invalid_occurred_at",
                "occurred_at",
                "occurred_at: RFC 3339 with offset",
            )
        })?
        .timestamp_millis();
    check_record(
        &record.source_id,
        record.fine_fen,
        record.points,
        &[
            ("location", &record.location),
            ("violation_code", &record.violation_code),
            ("description", &record.description),
            ("device_id", &record.device_id),
        ],
    )?;
    Ok(NewViolation {
        source_id: record.source_id,
        plate_type: plate_type.to_string(),
        plate_number: plate_number.to_string(),
        occurred_at,
        location: record.location.trim().into(),
        violation_code: record.violation_code.trim().into(),
        description: record.description.trim().into(),
        fine_fen: record.fine_fen,
        points: record.points,
        device_id: record.device_id.trim().into(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ingested {
    accepted: bool,
    /// False when the `source_id` was known (nothing changed).
    new: bool,
}

/// Records one violation (system role); a repeated `source_id` is accepted and changes
/// nothing.
#[utoipa::path(post, path = "/v1/violations", tag = "violations", security(("bearer" = [])),
    request_body = ViolationRecord,
    responses((status = 202, body = Ingested), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<ViolationRecord>, ApiError>,
) -> ApiResult<Response> {
    caller.require(&[Role::System])?;
    let Json(record) = body?;
    let new = checked(record)?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let inserted = violations::ingest(&state.services, &mut tx, new, now).await?;
    tx.commit().await?;
    state.queue.wake();
    let answer = Ingested {
        accepted: true,
        new: inserted.is_some(),
    };
    Ok((StatusCode::ACCEPTED, axum::Json(answer)).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedLine {
    /// Counted from 1.
    line: usize,
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    accepted: usize,
    rejected: Vec<RejectedLine>,
}

/// Records an NDJSON batch (one record a line; blank lines are skipped): the good lines go
/// in, each bad line is reported with its number (from 1) and a code.
#[utoipa::path(post, path = "/v1/violations/batch", tag = "violations", security(("bearer" = [])),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 202, body = BatchAnswer), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 413, body = Problem)))]
async fn ingest_batch(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require(&[Role::System])?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("malformed_ndjson", "the body is not UTF-8"))?;
    let mut good = Vec::new();
    let mut rejected = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<serde_json::Value>(line)
            .map_err(|_| ApiError::bad_request("malformed_json", "the line is not JSON"))
            .and_then(|value| super::idempotency::typed::<ViolationRecord>(&value))
            .and_then(checked);
        match parsed {
            Ok(new) => good.push(new),
            Err(e) => rejected.push(RejectedLine {
                line: i + 1,
                code: e.code.to_string(),
                field: e.field,
                detail: e.detail,
            }),
        }
    }
    let now = state.clock.now_ms();
    let accepted = good.len();
    let mut tx = state.db.begin().await?;
    for new in good {
        violations::ingest(&state.services, &mut tx, new, now).await?;
    }
    tx.commit().await?;
    state.queue.wake();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(BatchAnswer { accepted, rejected }),
    )
        .into_response())
}

/// A violation as a user who may see it sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViolationView {
    id: String,
    source_id: String,
    plate_type: String,
    plate_number: String,
    occurred_at: String,
    location: String,
    violation_code: String,
    description: String,
    fine_fen: i64,
    points: i64,
    device_id: String,
    status: ViolationStatus,
    decision_number: Option<String>,
    /// The caller's payment, when they handle it.
    payment_id: Option<String>,
    can_handle: bool,
    /// Why not, when `can_handle` is false: `points_before_filing`, `licence_invalid`,
    /// `points_limit`, `already_handled`.
    why_not: Option<Refusal>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListFilter {
    /// `unprocessed` (default), `handling` or `processed`.
    status: Option<String>,
    /// Default 50, at most 500.
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViolationList {
    items: Vec<ViolationView>,
    next_cursor: Option<String>,
}

/// The violations of the vehicles the caller owns or has an approved filing for.
#[utoipa::path(get, path = "/v1/violations", tag = "violations", security(("bearer" = [])), params(ListFilter),
    responses((status = 200, body = ViolationList), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<ListFilter>,
) -> ApiResult<axum::Json<ViolationList>> {
    caller.require(&[Role::User])?;
    let status = match filter.status.as_deref() {
        None => ViolationStatus::Unprocessed,
        Some(s) => ViolationStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "invalid_status",
                "status",
                "status: unprocessed, handling or processed",
            )
        })?,
    };
    let limit = page_limit(filter.limit)?;
    let mut rows = crate::store::violations::list_visible(
        &state.db,
        &caller.sub,
        status,
        filter.cursor.as_deref(),
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        next_cursor(&rows, limit, |v| &v.id)
    } else {
        None
    };
    let mut tx = state.db.begin().await?;
    let licence = violations::licence_of(&mut tx, &caller.sub).await?;
    let mut standings: HashMap<(String, String), Option<Standing>> = HashMap::new();
    let mut items = Vec::with_capacity(rows.len());
    for v in rows {
        let plate = (v.plate_type.clone(), v.plate_number.clone());
        let standing = match standings.get(&plate) {
            Some(s) => *s,
            None => {
                let s = violations::standing(&mut tx, &caller.sub, &v).await?;
                standings.insert(plate, s);
                s
            }
        };
        let verdict = match standing {
            Some(standing) => may_handle(standing, v.status, v.occurred_at, v.points, licence),
            None => Err(Refusal::AlreadyHandled),
        };
        let mine = v.handler_id.as_deref() == Some(caller.sub.as_str());
        items.push(ViolationView {
            id: v.id,
            source_id: v.source_id,
            plate_type: v.plate_type,
            plate_number: v.plate_number,
            occurred_at: rfc3339(v.occurred_at),
            location: v.location,
            violation_code: v.violation_code,
            description: v.description,
            fine_fen: v.fine_fen,
            points: v.points,
            device_id: v.device_id,
            status: v.status,
            decision_number: v.decision_number,
            payment_id: v.payment_id.filter(|_| mine),
            can_handle: verdict.is_ok(),
            why_not: verdict.err(),
        });
    }
    tx.rollback().await?;
    Ok(axum::Json(ViolationList { items, next_cursor }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct HandleRequest {
    /// Must be true: the caller agrees to the rules of electronic-monitoring handling.
    #[serde(default)]
    accept_rules: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Decision {
    decision_number: String,
    payment: PaymentView,
}

impl From<ViolationError> for ApiError {
    fn from(e: ViolationError) -> Self {
        match e {
            ViolationError::NotFound => {
                ApiError::not_found("violation_not_found", "no such violation")
            }
            ViolationError::Refused(refusal) => {
                let detail = match refusal {
                    Refusal::PointsBeforeFiling => {
                        "a violation with points from before the filing is the owner's to handle"
                    }
                    Refusal::LicenceInvalid => "the handler's licence is not valid",
                    Refusal::PointsLimit => "the points after handling would reach 12",
                    Refusal::AlreadyHandled => "the violation is already handled",
                };
                let status = match refusal {
                    Refusal::AlreadyHandled => StatusCode::CONFLICT,
                    Refusal::PointsLimit => StatusCode::UNPROCESSABLE_ENTITY,
                    _ => StatusCode::FORBIDDEN,
                };
                ApiError::new(status, refusal.code(), detail)
            }
            ViolationError::Payment(e) => e.into(),
            ViolationError::Db(e) => e.into(),
        }
    }
}

/// Handles a violation: a penalty decision with its 16-digit number and a payment order
/// (`pending_confirmation`); a confirmation code is texted to the handler's phone.
#[utoipa::path(post, path = "/v1/violations/{id}/handle", tag = "violations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = HandleRequest,
    responses((status = 201, body = Decision), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<HandleRequest>, ApiError>,
) -> ApiResult<Response> {
    caller.require(&[Role::User])?;
    let Json(request) = body?;
    if !request.accept_rules {
        return Err(ApiError::invalid_field(
            "rules_not_accepted",
            "accept_rules",
            "accept_rules: the rules of electronic-monitoring handling must be accepted",
        ));
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let handled = violations::handle(&state.services, &mut tx, &caller.sub, &id, now).await?;
    tx.commit().await?;
    state.queue.wake();
    let answer = Decision {
        payment: payment_view(&state.services, &handled.payment, now),
        decision_number: handled.decision_number,
    };
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

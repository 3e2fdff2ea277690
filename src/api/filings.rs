//! Filings for the filer (role `user`): submit (`POST /v1/filings`, Idempotency-Key
//! required), read and list, hand in the face check, and cancel or unbind. The owner's code
//! endpoints are in `api::filing_code`. Every step goes through the filing lifecycle
//! (`crate::filings`); business checks run in its intake job.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::filing_view::{FilingView, current_view, not_found, view_of, view_with_review};
use super::idempotency::{Idempotency, IdempotencyKey, typed};
use super::pagination::{next_cursor, page_limit};
use super::problem::{ApiError, ApiResult, Json, Path, Problem, Query};
use crate::domain::filing::{FilingMethod, FilingStatus, Relationship};
use crate::domain::plate::parse_plate;
use crate::filings::ending::{EndedBy, end};
use crate::filings::{Application, face, qr, submit as submit_filing};
use crate::store::filings::{self, Filing, HistoryEntry};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit, list))
        .routes(routes!(get_filing, end_filing))
        .routes(routes!(face_check))
}

/// `POST /v1/filings`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct NewFiling {
    pub method: FilingMethod,
    /// `02` or `52` (others are refused by intake with `plate_type_not_allowed`). SMS method;
    /// optional for the QR method (the token names the vehicle; if given, it must be the
    /// token's, or intake rejects `qr_token_invalid`).
    #[serde(default)]
    pub plate_type: Option<String>,
    /// e.g. `京A12345`; normalised (case, spaces, the middle dot). As `plate_type`.
    #[serde(default)]
    pub plate_number: Option<String>,
    /// The last six characters of the engine number. SMS method; optional for the QR method
    /// (checked when given).
    #[serde(default)]
    pub engine_last6: Option<String>,
    pub relationship: Relationship,
    /// QR method: the token the owner's QR code carries (`POST /v1/vehicles/{plate_type}/{plate_number}/qr`).
    /// Not a token at all: 422 `qr_token_invalid`; forged, expired at submission or for
    /// another vehicle: intake rejects the filing with reason `qr_token_invalid`.
    #[serde(default)]
    pub qr_token: Option<String>,
}

/// The caller's filing, locked for the transaction; someone else's is 404 (its existence
/// is private).
pub(crate) async fn own_filing(
    state: &AppState,
    tx: &mut crate::store::Tx,
    caller: &Caller,
    id: &str,
) -> ApiResult<Filing> {
    filings::load_for_update(&state.db, tx, id)
        .await?
        .filter(|f| f.filer_id == caller.sub)
        .ok_or_else(not_found)
}

fn required<'a>(value: &'a Option<String>, field: &str) -> ApiResult<&'a str> {
    value.as_deref().ok_or_else(|| {
        ApiError::invalid_field("invalid_field", field, format!("{field}: required"))
    })
}

fn engine_last6_of(value: &str) -> ApiResult<String> {
    let engine = value.trim().to_uppercase();
    if engine.chars().count() != 6 || !engine.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid_field(
            "invalid_engine_last6",
            "engine_last6",
            "engine_last6: six letters or digits",
        ));
    }
    Ok(engine)
}

/// The form checks of a new filing (the business checks are intake's): the application,
/// and the QR token of a QR filing.
fn application_of(caller: &Caller, new: &NewFiling) -> ApiResult<(Application, Option<String>)> {
    if new.method == FilingMethod::Qr {
        return qr_application_of(caller, new);
    }
    let plate_type = required(&new.plate_type, "plate_type")?;
    let plate_number = required(&new.plate_number, "plate_number")?;
    let engine = engine_last6_of(required(&new.engine_last6, "engine_last6")?)?;
    let (plate_type, plate_number) = parse_plate(plate_type, plate_number)?;
    let application = Application {
        filer_id: caller.sub.clone(),
        plate_type: plate_type.to_string(),
        plate_number: plate_number.to_string(),
        engine_last6: engine,
        relationship: new.relationship,
    };
    Ok((application, None))
}

fn qr_token_invalid(detail: &str) -> ApiError {
    ApiError::invalid_field(
        "qr_token_invalid",
        "qr_token",
        format!("qr_token: {detail}"),
    )
}

/// A QR filing: the token must at least be one (its signature, expiry and vehicle are
/// intake's checks, against the submission time); the vehicle is the token's unless the
/// filer names it (then intake holds the token to it). The engine number is optional.
fn qr_application_of(caller: &Caller, new: &NewFiling) -> ApiResult<(Application, Option<String>)> {
    let token = new.qr_token.as_deref().map(str::trim).unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "qr_token",
            "qr_token: required for the QR method",
        ));
    }
    if token.len() > 1024 {
        return Err(qr_token_invalid("not a QR token of this service"));
    }
    let claims = crate::domain::qr::read_unverified(token)
        .map_err(|_| qr_token_invalid("not a QR token of this service"))?;
    let (plate_type, plate_number) = match (&new.plate_type, &new.plate_number) {
        (None, None) => parse_plate(&claims.plate_type, &claims.plate_number)
            .map_err(|_| qr_token_invalid("not a QR token of this service"))?,
        (plate_type, plate_number) => parse_plate(
            required(plate_type, "plate_type")?,
            required(plate_number, "plate_number")?,
        )?,
    };
    let engine = match &new.engine_last6 {
        Some(engine) => engine_last6_of(engine)?,
        None => String::new(),
    };
    let application = Application {
        filer_id: caller.sub.clone(),
        plate_type: plate_type.to_string(),
        plate_number: plate_number.to_string(),
        engine_last6: engine,
        relationship: new.relationship,
    };
    Ok((application, Some(token.to_string())))
}

/// Submits a filing; intake runs as a job. The answer is `received`, with `Location`.
#[utoipa::path(post, path = "/v1/filings", tag = "filings", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "required; a repeat with the same body returns the first answer")),
    request_body = NewFiling,
    responses((status = 202, body = FilingView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    body: Result<Json<serde_json::Value>, ApiError>,
) -> ApiResult<Response> {
    caller.require(&[Role::User])?;
    let Json(body) = body?;
    let idempotency = Idempotency::new(&caller.sub, "POST /v1/filings", Some(key), &body);
    if let Some(repeat) = idempotency.repeat(&state.db).await? {
        return Ok(repeat);
    }
    let new: NewFiling = typed(&body)?;
    let (application, qr_token) = application_of(&caller, &new)?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let filing = match qr_token {
        None => submit_filing(&state.services, &mut tx, application, now).await?,
        Some(token) => qr::submit(&state.services, &mut tx, application, &token, now).await?,
    };
    let history = [HistoryEntry {
        status: FilingStatus::Received,
        at: now,
        cause: "submitted".into(),
    }];
    let location = format!("/v1/filings/{}", filing.id);
    let response = idempotency
        .commit(
            &state.db,
            tx,
            StatusCode::ACCEPTED,
            &view_of(&filing, &history),
            Some(location),
            now,
        )
        .await?;
    state.queue.wake();
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListFilter {
    /// Only filings in this status.
    status: Option<String>,
    /// Default 50, at most 500.
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FilingList {
    items: Vec<FilingView>,
    next_cursor: Option<String>,
}

/// The caller's filings, newest first.
#[utoipa::path(get, path = "/v1/filings", tag = "filings", security(("bearer" = [])), params(ListFilter),
    responses((status = 200, body = FilingList), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<ListFilter>,
) -> ApiResult<axum::Json<FilingList>> {
    caller.require(&[Role::User])?;
    let status = match &filter.status {
        None => None,
        Some(status) => Some(FilingStatus::parse(status).ok_or_else(|| {
            ApiError::invalid_field("invalid_status", "status", "status: not a filing state")
        })?),
    };
    let limit = page_limit(filter.limit)?;
    let rows = filings::list_for_filer(
        &state.db,
        &caller.sub,
        status,
        filter.cursor.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = next_cursor(&rows, limit, |f| &f.id);
    let mut items = Vec::with_capacity(rows.len());
    for f in &rows {
        let history = filings::history(state.db.pool(), &f.id).await?;
        let review = crate::store::reviews::find(state.db.pool(), &f.id).await?;
        items.push(view_with_review(f, &history, review.as_ref()));
    }
    Ok(axum::Json(FilingList { items, next_cursor }))
}

/// One of the caller's filings with its whole history.
#[utoipa::path(get, path = "/v1/filings/{id}", tag = "filings", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = FilingView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_filing(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<FilingView>> {
    caller.require(&[Role::User])?;
    let filing = filings::find(state.db.pool(), &id)
        .await?
        .filter(|f| f.filer_id == caller.sub)
        .ok_or_else(not_found)?;
    let history = filings::history(state.db.pool(), &id).await?;
    let review = crate::store::reviews::find(state.db.pool(), &id).await?;
    Ok(axum::Json(view_with_review(
        &filing,
        &history,
        review.as_ref(),
    )))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct FaceCheck {
    /// The certification id the front end's liveness SDK produced.
    certify_id: String,
}

/// Hands in the face check; the `face.verify` job approves or asks for documents. Handing
/// in a certification whose check failed for good (the provider failed every attempt) runs
/// it again.
#[utoipa::path(post, path = "/v1/filings/{id}/face", tag = "filings", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = FaceCheck,
    responses((status = 202, body = FilingView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn face_check(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<FaceCheck>, ApiError>,
) -> ApiResult<Response> {
    caller.require(&[Role::User])?;
    let Json(check) = body?;
    let certify_id = check.certify_id.trim().to_string();
    if certify_id.is_empty()
        || certify_id.len() > 128
        || !certify_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::invalid_field(
            "invalid_certify_id",
            "certify_id",
            "certify_id: 1-128 visible characters",
        ));
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let filing = own_filing(&state, &mut tx, &caller, &id).await?;
    face::hand_in(&state.services, &mut tx, &filing, &certify_id, now).await?;
    tx.commit().await?;
    state.queue.wake();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(current_view(&state, &id).await?),
    )
        .into_response())
}

/// Ends a filing: one in progress is `cancelled`, an approved one `unbound`; either frees
/// the place at once.
#[utoipa::path(delete, path = "/v1/filings/{id}", tag = "filings", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = FilingView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn end_filing(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<FilingView>> {
    caller.require(&[Role::User])?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let mut filing = own_filing(&state, &mut tx, &caller, &id).await?;
    end(&state.services, &mut tx, &mut filing, EndedBy::Filer, now).await?;
    tx.commit().await?;
    Ok(axum::Json(current_view(&state, &id).await?))
}

//! Filings for the filer (role `user`): submit (`POST /v1/filings`, Idempotency-Key
//! required), read and list, enter the owner's code, ask for a new one, hand in the face
//! check, and cancel or unbind. Business checks run in the `filing.intake` job.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::idempotency::{IdempotencyKey, fingerprint, replay};
use super::problem::{ApiError, ApiResult, Json, Path, Problem, Query};
use crate::clock::{rfc3339, shanghai};
use crate::domain::filing::{FilingMethod, FilingStatus, Relationship, code_matches};
use crate::domain::masking::mask_phone;
use crate::domain::plate::parse_plate;
use crate::store::filings::{self, Filing, HistoryEntry};
use crate::store::idempotency::{self, StoredAnswer};
use crate::workers::face_verify::FaceVerify;
use crate::workers::filing_code::{IssueError, cancel_code_timers, issue_code};
use crate::workers::filing_intake::FilingIntake;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit, list))
        .routes(routes!(get_filing, end_filing))
        .routes(routes!(enter_code))
        .routes(routes!(resend_code))
        .routes(routes!(face_check))
        .routes(routes!(messages))
}

/// `POST /v1/filings`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct NewFiling {
    pub method: FilingMethod,
    /// `02` or `52` (others are refused by intake with `plate_type_not_allowed`). SMS method.
    #[serde(default)]
    pub plate_type: Option<String>,
    /// e.g. `京A12345`; normalised (case, spaces, the middle dot). SMS method.
    #[serde(default)]
    pub plate_number: Option<String>,
    /// The last six characters of the engine number. SMS method.
    #[serde(default)]
    pub engine_last6: Option<String>,
    pub relationship: Relationship,
    /// QR method: the token the owner's QR code carries.
    #[serde(default)]
    pub qr_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    deadline: Option<String>,
    at_risk: bool,
    breached: bool,
    decided_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    status: String,
    at: String,
    cause: String,
}

/// A filing as its filer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilingView {
    id: String,
    method: String,
    status: FilingStatus,
    reason: Option<String>,
    plate_type: String,
    plate_number: String,
    own_vehicle: bool,
    owner_phone_masked: Option<String>,
    code_expires_at: Option<String>,
    review: ReviewView,
    created_at: String,
    updated_at: String,
    history: Vec<HistoryView>,
}

fn view_of(f: &Filing, history: &[HistoryEntry]) -> FilingView {
    let code_pending = matches!(f.status, FilingStatus::CodeSent | FilingStatus::CodeExpired);
    FilingView {
        id: f.id.clone(),
        method: f.method.clone(),
        status: f.status,
        reason: f.reason.clone(),
        plate_type: f.plate_type.clone(),
        plate_number: f.plate_number.clone(),
        own_vehicle: f.own_vehicle,
        owner_phone_masked: f.owner_phone.as_deref().map(mask_phone),
        code_expires_at: f.code_expires_at.filter(|_| code_pending).map(rfc3339),
        review: ReviewView {
            deadline: None,
            at_risk: false,
            breached: false,
            decided_at: None,
        },
        created_at: rfc3339(f.created_at),
        updated_at: rfc3339(f.updated_at),
        history: history
            .iter()
            .map(|h| HistoryView {
                status: h.status.clone(),
                at: rfc3339(h.at),
                cause: h.cause.clone(),
            })
            .collect(),
    }
}

async fn view(state: &AppState, id: &str) -> ApiResult<FilingView> {
    let filing = filings::find(state.db.pool(), id)
        .await?
        .ok_or_else(not_found)?;
    let history = filings::history(&state.db, id).await?;
    Ok(view_of(&filing, &history))
}

fn not_found() -> ApiError {
    ApiError::not_found("filing_not_found", "no such filing")
}

/// The caller's filing, locked for the transaction; someone else's is 404 (its existence
/// is private).
async fn own_filing(
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
        ApiError::invalid_field(
            "missing_field",
            field,
            format!("{field}: required for the SMS method"),
        )
    })
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
    body: Result<Json<NewFiling>, ApiError>,
) -> ApiResult<Response> {
    caller.require(&[Role::User])?;
    let Json(new) = body?;
    if new.method == FilingMethod::Qr {
        return Err(ApiError::invalid_field(
            "method_not_available",
            "method",
            "method: the QR method is not available yet; use \"sms\"",
        ));
    }
    let plate_type = required(&new.plate_type, "plate_type")?;
    let plate_number = required(&new.plate_number, "plate_number")?;
    let engine = required(&new.engine_last6, "engine_last6")?
        .trim()
        .to_uppercase();
    let (plate_type, plate_number) = parse_plate(plate_type, plate_number).map_err(|e| {
        let field = if e.code() == "invalid_plate_type" {
            "plate_type"
        } else {
            "plate_number"
        };
        ApiError::invalid_field(e.code(), field, e.to_string())
    })?;
    if engine.chars().count() != 6 || !engine.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid_field(
            "invalid_engine_last6",
            "engine_last6",
            "engine_last6: six letters or digits",
        ));
    }
    let scope = format!("{}:POST /v1/filings", caller.sub);
    let hash = fingerprint(&new);
    let now = state.clock.now_ms();
    let local = crate::clock::from_ms(now).with_timezone(&shanghai());
    let filing = Filing {
        id: crate::store::new_id(),
        method: FilingMethod::Sms.as_str().into(),
        filer_id: caller.sub.clone(),
        plate_type: plate_type.to_string(),
        plate_number: plate_number.to_string(),
        engine_last6: engine,
        relationship: new.relationship.as_str().into(),
        status: FilingStatus::Received,
        reason: None,
        own_vehicle: false,
        owner_phone: None,
        code_number: 0,
        code_hash: None,
        code_sent_at: None,
        code_expires_at: None,
        code_attempts: 0,
        local_date: local.format("%Y-%m-%d").to_string(),
        local_year: local.format("%Y").to_string(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.db.begin().await?;
    if let Some(stored) = idempotency::find(&mut tx, &scope, &key).await? {
        tx.rollback().await?;
        return Ok(replay(stored, &hash));
    }
    filings::insert(&mut tx, &filing).await?;
    state
        .queue
        .enqueue(
            &mut tx,
            &FilingIntake {
                filing_id: filing.id.clone(),
            },
            now,
        )
        .await?;
    let history = [HistoryEntry {
        status: "received".into(),
        at: now,
        cause: "submitted".into(),
    }];
    let body = serde_json::to_string(&view_of(&filing, &history))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let location = format!("/v1/filings/{}", filing.id);
    let answer = StoredAnswer {
        request_hash: hash.clone(),
        status: 202,
        body: body.clone(),
        location: Some(location.clone()),
    };
    if !idempotency::record(&mut tx, &scope, &key, &answer, now).await? {
        tx.rollback().await?;
        let mut tx = state.db.begin().await?;
        let stored = idempotency::find(&mut tx, &scope, &key).await?;
        tx.rollback().await?;
        return stored
            .map(|s| replay(s, &hash))
            .ok_or_else(|| ApiError::internal("idempotency answer vanished"));
    }
    tx.commit().await?;
    state.queue.wake();
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
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

pub fn page_limit(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(50);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid_field(
            "invalid_limit",
            "limit",
            "limit: between 1 and 500",
        ))
    }
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
    if let Some(status) = &filter.status {
        if FilingStatus::parse(status).is_none() {
            return Err(ApiError::invalid_field(
                "invalid_status",
                "status",
                "status: not a filing state",
            ));
        }
    }
    let limit = page_limit(filter.limit)?;
    let rows = filings::list_for_filer(
        &state.db,
        &caller.sub,
        filter.status.as_deref(),
        filter.cursor.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|f| f.id.clone()))
        .flatten();
    let mut items = Vec::with_capacity(rows.len());
    for f in &rows {
        items.push(view_of(f, &filings::history(&state.db, &f.id).await?));
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
    let filing = view(&state, &id).await?;
    let owner = filings::find(state.db.pool(), &id)
        .await?
        .map(|f| f.filer_id);
    if owner.as_deref() != Some(caller.sub.as_str()) {
        return Err(not_found());
    }
    Ok(axum::Json(filing))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeEntry {
    /// The 6-digit code the owner received.
    code: String,
}

/// Enters the owner's code: 200 `code_verified`; 422 `code_mismatch` with `attempts_left`;
/// 410 `code_expired`; 429 `code_locked` after the last wrong entry.
#[utoipa::path(post, path = "/v1/filings/{id}/code", tag = "filings", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CodeEntry,
    responses((status = 200, body = FilingView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 410, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn enter_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<CodeEntry>, ApiError>,
) -> ApiResult<axum::Json<FilingView>> {
    caller.require(&[Role::User])?;
    let Json(entry) = body?;
    let code = entry.code.trim().to_string();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_field(
            "invalid_code",
            "code",
            "code: six digits",
        ));
    }
    let now = state.clock.now_ms();
    let max = state.config.filing.code_max_attempts as i64;
    let mut tx = state.db.begin().await?;
    let filing = own_filing(&state, &mut tx, &caller, &id).await?;
    match filing.status {
        FilingStatus::CodeSent => {}
        FilingStatus::CodeExpired => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "code_expired",
                "the code expired; ask for a new one",
            ));
        }
        _ => {
            return Err(ApiError::conflict(
                "no_code_pending",
                format!("the filing is {}", filing.status.as_str()),
            ));
        }
    }
    if filing.code_attempts >= max {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "code_locked",
            "too many wrong entries; ask for a new code",
        ));
    }
    if filing.code_expires_at.is_some_and(|at| now >= at) {
        return Err(ApiError::new(
            StatusCode::GONE,
            "code_expired",
            "the code expired; ask for a new one",
        ));
    }
    let stored = filing.code_hash.clone().unwrap_or_default();
    if code_matches(&filing.id, filing.code_number, &code, &stored) {
        filings::transition(
            &mut tx,
            &filing,
            FilingStatus::CodeVerified,
            now,
            "code_verified",
        )
        .await?;
        cancel_code_timers(&state.services, &mut tx, &filing).await?;
        tx.commit().await?;
        return Ok(axum::Json(view(&state, &id).await?));
    }
    let attempts = filings::count_wrong_code(&mut tx, &filing.id).await?;
    tx.commit().await?;
    let left = (max - attempts).max(0);
    Err(
        ApiError::unprocessable("code_mismatch", "the code does not match")
            .with("attempts_left", left),
    )
}

/// Texts the owner a new code (60 s after the last one, within the phone's flow control).
#[utoipa::path(post, path = "/v1/filings/{id}/code/resend", tag = "filings", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = FilingView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 429, description = "resend_too_soon or sms_rate_limited", body = Problem)))]
async fn resend_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(&[Role::User])?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let filing = own_filing(&state, &mut tx, &caller, &id).await?;
    if !matches!(
        filing.status,
        FilingStatus::CodeSent | FilingStatus::CodeExpired
    ) {
        return Err(ApiError::conflict(
            "no_code_to_resend",
            format!("the filing is {}", filing.status.as_str()),
        ));
    }
    let interval = state.config.filing.resend_interval_seconds as i64 * 1000;
    if let Some(sent) = filing.code_sent_at.filter(|sent| now < sent + interval) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "resend_too_soon",
            "a new code can be asked for 60 s after the last",
        );
        e.retry_after = Some(((sent + interval - now) / 1000 + 1) as u64);
        return Err(e);
    }
    let vehicle =
        crate::store::registry::find_vehicle(&mut *tx, &filing.plate_type, &filing.plate_number)
            .await?
            .ok_or_else(|| {
                ApiError::conflict("vehicle_not_found", "the vehicle left the registry")
            })?;
    let filer = crate::store::registry::find_driver(&mut *tx, &filing.filer_id).await?;
    let name = filer.map(|d| d.fields.name).unwrap_or_default();
    match issue_code(
        &state.services,
        &mut tx,
        &filing,
        &vehicle.fields.owner_phone,
        &name,
        now,
    )
    .await
    {
        Ok(_) => {}
        Err(IssueError::RateLimited) => {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "sms_rate_limited",
                "the owner's phone is over its SMS flow control; try later",
            ));
        }
        Err(IssueError::Db(e)) => return Err(e.into()),
    }
    filings::transition(&mut tx, &filing, FilingStatus::CodeSent, now, "code_resent").await?;
    tx.commit().await?;
    state.queue.wake();
    state.queue.timers_changed();
    Ok((StatusCode::ACCEPTED, axum::Json(view(&state, &id).await?)).into_response())
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct FaceCheck {
    /// The certification id the front end's liveness SDK produced.
    certify_id: String,
}

/// Hands in the face check; the `face.verify` job approves or asks for documents.
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
    let Json(face) = body?;
    let certify_id = face.certify_id.trim().to_string();
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
    if filing.status != FilingStatus::CodeVerified {
        return Err(ApiError::conflict(
            "face_check_not_expected",
            format!("the filing is {}", filing.status.as_str()),
        ));
    }
    state
        .queue
        .enqueue(
            &mut tx,
            &FaceVerify {
                filing_id: filing.id.clone(),
                certify_id,
            },
            now,
        )
        .await?;
    tx.commit().await?;
    state.queue.wake();
    Ok((StatusCode::ACCEPTED, axum::Json(view(&state, &id).await?)).into_response())
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
    let filing = own_filing(&state, &mut tx, &caller, &id).await?;
    end(&state, &mut tx, &filing, now, "by_filer").await?;
    tx.commit().await?;
    Ok(axum::Json(view(&state, &id).await?))
}

/// Cancels (in progress) or unbinds (approved) a filing; 409 when it already ended.
pub async fn end(
    state: &AppState,
    tx: &mut crate::store::Tx,
    filing: &Filing,
    now: i64,
    by: &str,
) -> ApiResult<FilingStatus> {
    let (status, cause) = if filing.status == FilingStatus::Approved {
        (FilingStatus::Unbound, format!("unbound_{by}"))
    } else if filing.status.is_in_progress() {
        (FilingStatus::Cancelled, format!("cancelled_{by}"))
    } else {
        return Err(ApiError::conflict(
            "filing_ended",
            format!("the filing is already {}", filing.status.as_str()),
        ));
    };
    filings::transition(tx, filing, status, now, &cause).await?;
    cancel_code_timers(&state.services, tx, filing).await?;
    Ok(status)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct Page {
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageList {
    items: Vec<filings::Message>,
    next_cursor: Option<String>,
}

/// The caller's in-app messages (decisions, payment results), newest first.
#[utoipa::path(get, path = "/v1/messages", tag = "filings", security(("bearer" = [])), params(Page),
    responses((status = 200, body = MessageList), (status = 401, body = Problem)))]
async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<axum::Json<MessageList>> {
    let limit = page_limit(page.limit)?;
    let items = filings::messages(&state.db, &caller.sub, page.cursor.as_deref(), limit).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|m| m.id.clone()))
        .flatten();
    Ok(axum::Json(MessageList { items, next_cursor }))
}

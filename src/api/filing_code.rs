//! The owner's code, from the filer's side (role `user`): enter it, ask for a new one. The
//! rules (expiry, lock, resend interval, flow control) are the filing lifecycle's
//! (`filings::code`, `domain::filing::code`); this file only maps them to HTTP.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::filing_view::{FilingView, current_view};
use super::filings::own_filing;
use super::idempotency::{Idempotency, OptionalIdempotencyKey};
use super::problem::{ApiError, ApiResult, Json, Path, Problem};
use crate::filings::code::{self, Entry};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enter_code))
        .routes(routes!(resend_code))
}

/// A texted code entered by its holder (the owner's code of a filing, a payment's
/// confirmation code).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeEntry {
    /// The 6-digit code that was texted.
    code: String,
}

impl CodeEntry {
    /// The code, trimmed, when it is six digits; 422 `invalid_code` otherwise.
    pub fn six_digits(&self) -> ApiResult<String> {
        let entered = self.code.trim();
        if entered.len() != 6 || !entered.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid_field(
                "invalid_code",
                "code",
                "code: six digits",
            ));
        }
        Ok(entered.to_string())
    }
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
    let entered = entry.six_digits()?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let mut filing = own_filing(&state, &mut tx, &caller, &id).await?;
    let entry = code::enter(&state.services, &mut tx, &mut filing, &entered, now).await?;
    tx.commit().await?;
    if entry == Entry::Verified {
        // A QR filing went on to review, whose opening may enqueue work and schedule timers.
        state.queue.wake();
        state.queue.timers_changed();
    }
    match entry {
        Entry::Verified => Ok(axum::Json(current_view(&state, &id).await?)),
        Entry::Mismatch { attempts_left } => Err(ApiError::unprocessable(
            "code_mismatch",
            "the code does not match",
        )
        .with("attempts_left", attempts_left)),
    }
}

/// Texts the owner a new code (after `filing.resend_interval_seconds`, within the phone's
/// flow control). Takes an optional `Idempotency-Key`: a repeat answers as the first did
/// and texts nothing.
#[utoipa::path(post, path = "/v1/filings/{id}/code/resend", tag = "filings", security(("bearer" = [])),
    params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "a repeat returns the first answer")),
    responses((status = 202, body = FilingView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, description = "idempotency_key_reused", body = Problem),
        (status = 429, description = "resend_too_soon or sms_rate_limited", body = Problem)))]
async fn resend_code(
    State(state): State<AppState>,
    caller: Caller,
    OptionalIdempotencyKey(key): OptionalIdempotencyKey,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(&[Role::User])?;
    let idempotency = Idempotency::new(
        &caller.sub,
        "POST /v1/filings/{id}/code/resend",
        key,
        &serde_json::json!({ "filing_id": id }),
    );
    if let Some(repeat) = idempotency.repeat(&state.db).await? {
        return Ok(repeat);
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let mut filing = own_filing(&state, &mut tx, &caller, &id).await?;
    code::resend(&state.services, &mut tx, &mut filing, now).await?;
    let history = crate::store::filings::history(&mut *tx, &id).await?;
    let view = super::filing_view::view_of(&filing, &history);
    let response = idempotency
        .commit(&state.db, tx, StatusCode::ACCEPTED, &view, None, now)
        .await?;
    state.queue.wake();
    state.queue.timers_changed();
    Ok(response)
}

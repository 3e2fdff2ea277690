//! Payments over HTTP (role `user`, the handler's own): read one (fine, surcharge from the
//! clock, total, due time), confirm it with the texted code, ask for a new code, and check
//! out with WeChat Pay or Alipay. The rules are the payment lifecycle's
//! (`crate::payments`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::filing_code::CodeEntry;
use super::problem::{ApiError, ApiResult, Json, Path, Problem};
use crate::clock::rfc3339;
use crate::domain::filing::code::{EntryRefused, ResendRefused};
use crate::domain::payment::PaymentStatus;
use crate::payments::checkout::{Channel, CheckoutAnswer, checkout as check_out};
use crate::payments::code::{self, Entry};
use crate::payments::{PaymentError, late_fee_at};
use crate::services::Services;
use crate::store::payments::{self, Payment};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_payment))
        .routes(routes!(confirm))
        .routes(routes!(resend_code))
        .routes(routes!(checkout))
}

/// A payment as its handler sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    id: String,
    decision_number: String,
    plate_number: String,
    occurred_at: String,
    fine_fen: i64,
    /// 3% of the fine per calendar date after the due date, capped at the fine.
    late_fee_fen: i64,
    total_fen: i64,
    /// The end of the due date (Asia/Shanghai).
    due_at: String,
    status: PaymentStatus,
    channel: Option<String>,
    code_expires_at: Option<String>,
    paid_at: Option<String>,
}

pub fn view_of(services: &Services, p: &Payment, now: i64) -> PaymentView {
    let late = late_fee_at(services, p, now);
    let due_at = chrono::NaiveDate::parse_from_str(&p.due_date, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(crate::clock::shanghai()).single())
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    PaymentView {
        id: p.id.clone(),
        decision_number: p.decision_number.clone(),
        plate_number: p.plate_number.clone(),
        occurred_at: rfc3339(p.occurred_at),
        fine_fen: p.fine_fen,
        late_fee_fen: late,
        total_fen: p.fine_fen + late,
        due_at,
        status: p.status,
        channel: p.channel.clone(),
        code_expires_at: (p.status == PaymentStatus::PendingConfirmation)
            .then_some(p.code_expires_at)
            .flatten()
            .map(rfc3339),
        paid_at: p.paid_at.map(rfc3339),
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("payment_not_found", "no such payment")
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        let too_many =
            |code, detail: &str| ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, detail);
        match e {
            PaymentError::NotFound => not_found(),
            PaymentError::State(PaymentStatus::Paid) => {
                ApiError::conflict("already_paid", "the payment is paid")
            }
            PaymentError::State(status) => ApiError::conflict(
                "payment_state_conflict",
                format!("the payment is {}", status.as_str()),
            ),
            PaymentError::Entry(EntryRefused::Expired) => ApiError::new(
                StatusCode::GONE,
                "code_expired",
                "the code expired; ask for a new one",
            ),
            PaymentError::Entry(EntryRefused::Locked) => {
                too_many("code_locked", "too many wrong entries; ask for a new code")
            }
            PaymentError::Entry(EntryRefused::NoCodePending(status)) => ApiError::conflict(
                "no_code_pending",
                format!("the payment is {}", status.as_str()),
            ),
            PaymentError::Resend(ResendRefused::NoCode(status)) => ApiError::conflict(
                "no_code_to_resend",
                format!("the payment is {}", status.as_str()),
            ),
            PaymentError::Resend(ResendRefused::TooSoon {
                retry_after_s,
                interval_s,
            }) => {
                let mut e = too_many(
                    "resend_too_soon",
                    &format!("a new code can be asked for {interval_s} s after the last"),
                );
                e.retry_after = Some(retry_after_s);
                e
            }
            PaymentError::SmsRateLimited => too_many(
                "sms_rate_limited",
                "the handler's phone is over its SMS flow control; try later",
            ),
            PaymentError::Provider(detail) => {
                tracing::warn!(detail = %detail, "payment provider call failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_unavailable",
                    "the payment provider did not take the order; try again",
                )
            }
            PaymentError::Db(e) => e.into(),
        }
    }
}

/// The caller's payment, locked for the transaction; someone else's is 404.
async fn own_payment(
    state: &AppState,
    tx: &mut crate::store::Tx,
    caller: &Caller,
    id: &str,
) -> ApiResult<Payment> {
    payments::load_for_update(&state.db, tx, id)
        .await?
        .filter(|p| p.handler_id == caller.sub)
        .ok_or_else(not_found)
}

/// One of the caller's payments, with the surcharge as of now.
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PaymentView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PaymentView>> {
    caller.require(&[Role::User])?;
    let payment = payments::find(state.db.pool(), &id)
        .await?
        .filter(|p| p.handler_id == caller.sub)
        .ok_or_else(not_found)?;
    Ok(axum::Json(view_of(
        &state.services,
        &payment,
        state.clock.now_ms(),
    )))
}

/// Confirms the payment with the texted code: 200 `awaiting_payment`; 422 `code_mismatch`
/// with `attempts_left`; 410 `code_expired`; 429 `code_locked`.
#[utoipa::path(post, path = "/v1/payments/{id}/confirm", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CodeEntry,
    responses((status = 200, body = PaymentView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 410, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<CodeEntry>, ApiError>,
) -> ApiResult<axum::Json<PaymentView>> {
    caller.require(&[Role::User])?;
    let Json(entry) = body?;
    let entered = entry.six_digits()?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let mut payment = own_payment(&state, &mut tx, &caller, &id).await?;
    let entry = code::enter(&state.services, &mut tx, &mut payment, &entered, now).await?;
    tx.commit().await?;
    match entry {
        Entry::Confirmed => Ok(axum::Json(view_of(&state.services, &payment, now))),
        Entry::Mismatch { attempts_left } => Err(ApiError::unprocessable(
            "code_mismatch",
            "the code does not match",
        )
        .with("attempts_left", attempts_left)),
    }
}

/// Texts the handler a new confirmation code (after `filing.resend_interval_seconds`,
/// within the phone's SMS flow control).
#[utoipa::path(post, path = "/v1/payments/{id}/code/resend", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = PaymentView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 429, body = Problem)))]
async fn resend_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<PaymentView>)> {
    caller.require(&[Role::User])?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let mut payment = own_payment(&state, &mut tx, &caller, &id).await?;
    code::resend(&state.services, &mut tx, &mut payment, now).await?;
    tx.commit().await?;
    state.queue.wake();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(view_of(&state.services, &payment, now)),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// `wechat` or `alipay`.
    channel: String,
    /// WeChat JSAPI: the payer's openid (without it: a Native order with a `code_url`).
    #[serde(default)]
    openid: Option<String>,
}

/// Checks out with a provider: WeChat JSAPI (with `openid`: the prepay id and the signed
/// parameters for the app) or Native (`code_url`); Alipay: the signed order string and a
/// pay URL. The amount is the total as of now.
#[utoipa::path(post, path = "/v1/payments/{id}/checkout", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CheckoutRequest,
    responses((status = 200, body = CheckoutAnswer), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 502, body = Problem)))]
async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<CheckoutRequest>, ApiError>,
) -> ApiResult<axum::Json<CheckoutAnswer>> {
    caller.require(&[Role::User])?;
    let Json(request) = body?;
    let channel = match request.channel.as_str() {
        "wechat" => Channel::Wechat,
        "alipay" => Channel::Alipay,
        _ => {
            return Err(ApiError::invalid_field(
                "invalid_channel",
                "channel",
                "channel: wechat or alipay",
            ));
        }
    };
    let openid = request
        .openid
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty());
    if openid.is_some_and(|o| o.len() > 128 || !o.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(ApiError::invalid_field(
            "invalid_openid",
            "openid",
            "openid: 1-128 visible characters",
        ));
    }
    let payment = payments::find(state.db.pool(), &id)
        .await?
        .filter(|p| p.handler_id == caller.sub)
        .ok_or_else(not_found)?;
    let now = state.clock.now_ms();
    Ok(axum::Json(
        check_out(&state.services, &payment, channel, openid, now).await?,
    ))
}

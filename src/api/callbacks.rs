//! Provider callbacks (`spec/api.md`, "Provider callbacks"; no bearer token): every check
//! of `spec/providers.md` runs before anything is read (WeChat Pay: signature over the raw
//! body, 5-minute freshness against real time, SIGNTEST probes, the platform key serial,
//! AES-256-GCM; Alipay: the sorted-parameter RSA2 check). A verified notification is handed
//! to the `payment.callback` job in well under the providers' time limits; that job checks
//! merchant, order and amount, and records what does not match as a discrepancy.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::payments::{PaidNotice, PaymentCallback};
use crate::providers::real_now_s;
use crate::providers::wechatpay::notify::{NotifyHeaders, Refused};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(wechatpay))
        .routes(routes!(alipay))
}

fn fail(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": "FAIL", "message": message })),
    )
        .into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Hands a verified notice to `payment.callback` (a repeat is the same job: nothing new).
async fn hand_over(state: &AppState, notice: PaidNotice) -> Result<(), sqlx::Error> {
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    state
        .queue
        .enqueue(&mut tx, &PaymentCallback { notice }, now)
        .await?;
    tx.commit().await?;
    state.queue.wake();
    Ok(())
}

/// WeChat Pay API v3 payment notification: 204 when accepted (duplicates too); 401
/// `{"code":"FAIL"}` for a bad signature, stale timestamp, probe or unknown serial; 400 for
/// a body that cannot be decrypted.
#[utoipa::path(post, path = "/v1/callbacks/wechatpay", tag = "callbacks",
    request_body(content = String, content_type = "application/json"),
    responses((status = 204, description = "accepted"), (status = 400, description = "undecryptable"),
        (status = 401, description = "signature, freshness or serial refused")))]
async fn wechatpay(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(providers) = state.services.payments.providers().await else {
        return fail(StatusCode::SERVICE_UNAVAILABLE, "payments unavailable");
    };
    let notify = NotifyHeaders {
        timestamp: header(&headers, "wechatpay-timestamp"),
        nonce: header(&headers, "wechatpay-nonce"),
        signature: header(&headers, "wechatpay-signature"),
        serial: header(&headers, "wechatpay-serial"),
        signature_type: header(&headers, "wechatpay-signature-type"),
    };
    let verified = match providers
        .wechat
        .identity
        .verify_notification(&notify, &body, real_now_s())
    {
        Ok(verified) => verified,
        Err(Refused::Unauthorized(why)) => {
            tracing::warn!(reason = why, "WeChat Pay notification refused");
            return fail(StatusCode::UNAUTHORIZED, why);
        }
        Err(Refused::Malformed(why)) => {
            tracing::warn!(reason = why, "WeChat Pay notification unreadable");
            return fail(StatusCode::BAD_REQUEST, why);
        }
    };
    let t = verified.transaction;
    let success = verified.event_type == "TRANSACTION.SUCCESS" && t.trade_state == "SUCCESS";
    if !success {
        return StatusCode::NO_CONTENT.into_response();
    }
    let notice = PaidNotice {
        channel: "wechat".into(),
        transaction_id: t.transaction_id,
        out_trade_no: t.out_trade_no,
        app_id: t.appid,
        merchant_id: t.mchid,
        total_fen: t.amount.total,
        success,
        source: "notification".into(),
    };
    match hand_over(&state, notice).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "WeChat Pay notification not recorded");
            fail(StatusCode::SERVICE_UNAVAILABLE, "try again")
        }
    }
}

/// Alipay asynchronous notification (form-encoded, RSA2): body `success` when accepted
/// (duplicates too), `failure` otherwise.
#[utoipa::path(post, path = "/v1/callbacks/alipay", tag = "callbacks",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "`success` or `failure`", body = String)))]
async fn alipay(State(state): State<AppState>, body: Bytes) -> Response {
    let answer = |text: &'static str| (StatusCode::OK, text).into_response();
    let Ok(providers) = state.services.payments.providers().await else {
        return answer("failure");
    };
    let Some(params) = form_decode(&body) else {
        return answer("failure");
    };
    let notice = match providers.alipay.identity.verify_notification(&params) {
        Ok(notice) => notice,
        Err(why) => {
            tracing::warn!(reason = why, "Alipay notification refused");
            return answer("failure");
        }
    };
    let success = matches!(
        notice.trade_status.as_str(),
        "TRADE_SUCCESS" | "TRADE_FINISHED"
    );
    if !success {
        return answer("success");
    }
    let paid = PaidNotice {
        channel: "alipay".into(),
        transaction_id: notice.trade_no,
        out_trade_no: notice.out_trade_no,
        app_id: notice.app_id,
        merchant_id: notice.seller_id,
        total_fen: notice.total_fen,
        success,
        source: "notification".into(),
    };
    match hand_over(&state, paid).await {
        Ok(()) => answer("success"),
        Err(e) => {
            tracing::error!(error = %e, "Alipay notification not recorded");
            answer("failure")
        }
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded (`+` is a space); `None` if not UTF-8.
pub fn form_decode(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b'%' => return None,
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_as_alipay_sends_them() {
        let pairs =
            form_decode(b"a=1&subject=%E4%BA%A4+x&empty=&t=2026-11-24+10%3A00%3A00").unwrap();
        assert_eq!(pairs[1], ("subject".into(), "交 x".into()));
        assert_eq!(pairs[2], ("empty".into(), "".into()));
        assert_eq!(pairs[3].1, "2026-11-24 10:00:00");
        assert!(form_decode(b"a=%E").is_none());
        assert!(form_decode(b"a=%").is_none());
    }
}

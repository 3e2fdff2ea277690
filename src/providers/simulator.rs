//! The simulators' pay link (`payments.mode = "simulated"`): `GET
//! /v1/simulator/pay/{channel}/{out_trade_no}` "pays" the order at the simulated provider,
//! which then posts its real-format, really signed notification to the service's own
//! callback endpoint over HTTP, as the provider would. The answer says what the callback
//! answered. `app` mounts these routes only in simulated mode.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::alipay::encode;
use super::payments::Payments;

pub fn router(payments: Arc<Payments>) -> axum::Router {
    axum::Router::new()
        .route("/v1/simulator/pay/{channel}/{out_trade_no}", get(pay))
        .with_state(payments)
}

/// The pay link of an order in simulated mode.
pub fn pay_link(payments: &Payments, channel: &str, out_trade_no: &str) -> String {
    format!(
        "{}/v1/simulator/pay/{channel}/{out_trade_no}",
        payments.self_url()
    )
}

async fn pay(
    State(payments): State<Arc<Payments>>,
    Path((channel, out_trade_no)): Path<(String, String)>,
) -> Response {
    let problem = |status: StatusCode, detail: &str| {
        (
            status,
            axum::Json(json!({ "paid": false, "detail": detail })),
        )
            .into_response()
    };
    let Ok(providers) = payments.providers().await else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the simulators are not available",
        );
    };
    let Some((wechat, alipay)) = &providers.simulated else {
        return problem(StatusCode::NOT_FOUND, "payments.mode is not \"simulated\"");
    };
    let base = payments.self_url();
    let request = match channel.as_str() {
        "wechat" => {
            let Some(note) = wechat.pay(&out_trade_no) else {
                return problem(
                    StatusCode::NOT_FOUND,
                    "no such order at the simulated WeChat Pay",
                );
            };
            let mut request = payments
                .client
                .post(format!("{base}/v1/callbacks/wechatpay"))
                .body(note.body);
            for (k, v) in note.headers {
                request = request.header(k, v);
            }
            request
        }
        "alipay" => {
            let Some(params) = alipay.pay(&out_trade_no) else {
                return problem(
                    StatusCode::NOT_FOUND,
                    "no such order at the simulated Alipay",
                );
            };
            payments
                .client
                .post(format!("{base}/v1/callbacks/alipay"))
                .header(
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )
                .body(encode(&params))
        }
        _ => return problem(StatusCode::NOT_FOUND, "channel is wechat or alipay"),
    };
    match request.send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let body = answer.text().await.unwrap_or_default();
            axum::Json(json!({
                "paid": true,
                "channel": channel,
                "out_trade_no": out_trade_no,
                "notification": { "status": status, "body": body },
            }))
            .into_response()
        }
        Err(e) => problem(
            StatusCode::BAD_GATEWAY,
            &format!("notification not delivered: {e}"),
        ),
    }
}

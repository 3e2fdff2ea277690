//! Checkout: the order at the chosen provider for the payment's total now (fine plus
//! surcharge). WeChat Pay: a JSAPI order with the payer's openid (answered with the signed
//! parameters for `wx.requestPayment`) or a Native one (a `code_url`). Alipay: the signed
//! `alipay.trade.app.pay` order string and a pay URL (`alipay.trade.page.pay`). In simulated
//! mode the pay URL is the simulator's pay link. The provider call is made outside any
//! transaction; the order is recorded after it.

use serde::Serialize;

use super::{PaymentError, PaymentResult, total_at};
use crate::domain::payment::PaymentStatus;
use crate::providers::wechatpay::{Created, JsapiParams, NewOrder};
use crate::providers::{CallError, real_now_s, simulator};
use crate::services::Services;
use crate::store::payments::{self, Payment};

/// A payment channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Wechat,
    Alipay,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Wechat => "wechat",
            Channel::Alipay => "alipay",
        }
    }
}

/// What the front end needs to open the provider's payment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckoutAnswer {
    pub payment_id: String,
    pub channel: String,
    pub total_fen: i64,
    /// `jsapi`, `native` (WeChat) or `app` (Alipay).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepay_id: Option<String>,
    /// JSAPI: the signed parameters for `wx.requestPayment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pay_params: Option<JsapiParams>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_url: Option<String>,
    /// Alipay: the signed `alipay.trade.app.pay` order string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_string: Option<String>,
    /// A URL that opens the payment (simulated mode: the simulator's pay link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pay_url: Option<String>,
}

fn provider_error(e: CallError) -> PaymentError {
    PaymentError::Provider(e.to_string())
}

/// Checks out `payment` (which must be `awaiting_payment`) with `channel`.
pub async fn checkout(
    services: &Services,
    payment: &Payment,
    channel: Channel,
    openid: Option<&str>,
    now: i64,
) -> PaymentResult<CheckoutAnswer> {
    if payment.status != PaymentStatus::AwaitingPayment {
        return Err(PaymentError::State(payment.status));
    }
    let total = total_at(services, payment, now);
    let providers = services
        .payments
        .providers()
        .await
        .map_err(|e| PaymentError::Provider(format!("{e:#}")))?;
    let description = format!("交通违法罚款 {}", payment.decision_number);
    let simulated = providers.simulated.is_some();
    let sim_link = |c: Channel| {
        simulated.then(|| simulator::pay_link(&services.payments, c.as_str(), &payment.id))
    };
    let mut answer = CheckoutAnswer {
        payment_id: payment.id.clone(),
        channel: channel.as_str().into(),
        total_fen: total,
        kind: String::new(),
        prepay_id: None,
        pay_params: None,
        code_url: None,
        order_string: None,
        pay_url: sim_link(channel),
    };
    match channel {
        Channel::Wechat => {
            let order = NewOrder {
                out_trade_no: &payment.id,
                description: &description,
                total_fen: total,
                openid,
            };
            match providers
                .wechat
                .create_order(&order)
                .await
                .map_err(provider_error)?
            {
                Created::Jsapi { prepay_id } => {
                    answer.kind = "jsapi".into();
                    answer.pay_params = Some(
                        providers
                            .wechat
                            .identity
                            .jsapi_params(&prepay_id, real_now_s()),
                    );
                    answer.prepay_id = Some(prepay_id);
                }
                Created::Native { code_url } => {
                    answer.kind = "native".into();
                    answer.code_url = Some(code_url);
                }
            }
        }
        Channel::Alipay => {
            let alipay = &providers.alipay;
            let notify = alipay.notify_url.clone();
            answer.kind = "app".into();
            answer.order_string = Some(alipay.identity.order_string(
                "alipay.trade.app.pay",
                &payment.id,
                total,
                &description,
                &notify,
                real_now_s(),
            ));
            if let Some(gateway) = alipay.gateway_url() {
                let page = alipay.identity.order_string(
                    "alipay.trade.page.pay",
                    &payment.id,
                    total,
                    &description,
                    &notify,
                    real_now_s(),
                );
                answer.pay_url = Some(format!("{gateway}?{page}"));
            }
            alipay.announce(&payment.id, total);
        }
    }
    let mut tx = services.db.begin().await?;
    payments::set_checkout(&mut tx, &payment.id, channel.as_str(), total, now).await?;
    tx.commit().await?;
    Ok(answer)
}

//! The payloads of the jobs the payment lifecycle enqueues (handlers in `workers/`). No
//! payload holds an openid, a phone or a code.

use serde::{Deserialize, Serialize};

/// What a verified provider notification (or an order query) says was paid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PaidNotice {
    /// `wechat` or `alipay`.
    pub channel: String,
    /// The provider's transaction id (`transaction_id`, Alipay's `trade_no`).
    pub transaction_id: String,
    pub out_trade_no: String,
    /// `appid` / `app_id` as the provider sent it.
    pub app_id: String,
    /// `mchid` / `seller_id` as the provider sent it.
    pub merchant_id: String,
    pub total_fen: i64,
    /// Whether the provider says the payment succeeded.
    pub success: bool,
    /// Where it came from: `notification` or `query`.
    pub source: String,
}

/// `payment.callback`: applies a verified notification, idempotent on the provider's
/// transaction id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentCallback {
    pub notice: PaidNotice,
}

impl PaymentCallback {
    pub fn dedup_key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.notice.channel, self.notice.transaction_id, self.notice.out_trade_no
        )
    }
}

/// `payment.query`: asks the provider about one order still unpaid after a while.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentQuery {
    pub payment_id: String,
    /// The sweep that asked (one query per order per sweep).
    pub slot_ms: i64,
}

impl PaymentQuery {
    pub fn dedup_key(&self) -> String {
        format!("{}:{}", self.payment_id, self.slot_ms)
    }
}

/// `payment.query_sweep` (cron `payment_query`): finds the stale orders and enqueues a
/// `payment.query` for each.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentQuerySweep {
    pub slot_ms: i64,
}

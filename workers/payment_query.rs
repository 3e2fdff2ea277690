//! `payment.query_sweep` (cron `payment_query`) finds orders checked out more than
//! [`STALE_AFTER_MS`] ago and still unpaid, and enqueues a `payment.query` for each; that
//! job asks the provider and, if the order is paid there (a lost notification), applies it
//! as a notification would (`payments::settle`).

use crate::payments::settle::apply;
pub use crate::payments::{PaidNotice, PaymentQuery, PaymentQuerySweep};
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;
use crate::store::payments;

/// How long an order may wait for its notification before it is queried.
pub const STALE_AFTER_MS: i64 = 10 * 60 * 1000;

impl Job for PaymentQuerySweep {
    type Context = Services;
    const NAME: &'static str = "payment.query_sweep";
    const QUEUE: &'static str = "payment";

    fn key(&self) -> String {
        self.slot_ms.to_string()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let now = ctx.clock().now_ms();
        let stale = payments::stale_orders(ctx.db(), now - STALE_AFTER_MS, 500).await?;
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        let jobs: Vec<PaymentQuery> = stale
            .into_iter()
            .map(|p| PaymentQuery {
                payment_id: p.id,
                slot_ms: self.slot_ms,
            })
            .collect();
        ctx.queue().enqueue_many(&mut tx, &jobs, now).await?;
        tx.commit().await?;
        ctx.queue().wake();
        Ok(Outcome::Done)
    }
}

impl Job for PaymentQuery {
    type Context = Services;
    const NAME: &'static str = "payment.query";
    const QUEUE: &'static str = "payment";

    fn key(&self) -> String {
        self.dedup_key()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(payment) = payments::find(ctx.db().pool(), &self.payment_id).await? else {
            return Err(JobError::permanent("no such payment"));
        };
        let Some(channel) = payment.channel.clone() else {
            return Ok(Outcome::Done);
        };
        let providers = ctx.app().payments.providers().await?;
        let notice = match channel.as_str() {
            "wechat" => providers
                .wechat
                .query_order(&payment.id)
                .await
                .map_err(|e| JobError::Retry(e.into()))?
                .filter(|t| t.trade_state == "SUCCESS")
                .map(|t| PaidNotice {
                    channel: channel.clone(),
                    transaction_id: t.transaction_id,
                    out_trade_no: t.out_trade_no,
                    app_id: t.appid,
                    merchant_id: t.mchid,
                    total_fen: t.amount.total,
                    success: true,
                    source: "query".into(),
                }),
            _ => providers
                .alipay
                .query(&payment.id)
                .await
                .map_err(|e| JobError::Retry(e.into()))?
                .filter(|t| matches!(t.trade_status.as_str(), "TRADE_SUCCESS" | "TRADE_FINISHED"))
                .map(|t| PaidNotice {
                    channel: channel.clone(),
                    transaction_id: t.trade_no,
                    out_trade_no: payment.id.clone(),
                    app_id: providers.alipay.identity.app_id.clone(),
                    merchant_id: providers.alipay.identity.seller_id.clone(),
                    total_fen: t.total_fen,
                    success: true,
                    source: "query".into(),
                }),
        };
        let Some(notice) = notice else {
            return Ok(Outcome::Done);
        };
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        apply(ctx.app(), &mut tx, &notice, ctx.clock().now_ms()).await?;
        tx.commit().await?;
        ctx.queue().wake();
        Ok(Outcome::Done)
    }
}

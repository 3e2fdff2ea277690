//! `payment.callback`: applies a verified provider notification (`payments::settle`),
//! idempotent on the provider's transaction id: the effect commits once with the record of
//! its key, and the payment is paid at most once whatever arrives.

use crate::payments::settle::apply;
pub use crate::payments::{PaidNotice, PaymentCallback};
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;

impl Job for PaymentCallback {
    type Context = Services;
    const NAME: &'static str = "payment.callback";
    const QUEUE: &'static str = "payment";

    fn key(&self) -> String {
        self.dedup_key()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        // The providers are made before the transaction (no outside work inside it).
        ctx.app().payments.providers().await?;
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        let now = ctx.clock().now_ms();
        let applied = apply(ctx.app(), &mut tx, &self.notice, now).await?;
        tx.commit().await?;
        tracing::info!(channel = %self.notice.channel, out_trade_no = %self.notice.out_trade_no, applied = ?applied, "payment notice");
        ctx.queue().wake();
        Ok(Outcome::Done)
    }
}

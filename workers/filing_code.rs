//! The owner's code timers: `filing.code_expire` (an unused code expires) and
//! `filing.abandon` (a filing left in `code_expired` is cancelled). Both run the filing
//! lifecycle's steps (`filings::code`); issuing codes is there too.

use crate::filings::code::{abandon, expire};
pub use crate::filings::jobs::{Abandon, CodeExpire};
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;

impl Job for CodeExpire {
    type Context = Services;
    const NAME: &'static str = "filing.code_expire";
    const QUEUE: &'static str = "filing";

    fn key(&self) -> String {
        self.dedup_key()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        let now = ctx.clock().now_ms();
        let scheduled = expire(ctx.app(), &mut tx, &self, now).await?;
        tx.commit().await?;
        if scheduled {
            ctx.queue().timers_changed();
        }
        Ok(Outcome::Done)
    }
}

impl Job for Abandon {
    type Context = Services;
    const NAME: &'static str = "filing.abandon";
    const QUEUE: &'static str = "filing";

    fn key(&self) -> String {
        self.dedup_key()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        abandon(ctx.app(), &mut tx, &self, ctx.clock().now_ms()).await?;
        tx.commit().await?;
        Ok(Outcome::Done)
    }
}

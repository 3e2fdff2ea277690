//! `reconcile.bill`: one run of the reconciliation lifecycle (`crate::reconcile`). It makes
//! the run's row when cron asked (one run per slot), fetches the bill (or takes the upload),
//! reconciles it and keeps the report. A bill not published yet leaves the run
//! `waiting_for_bill` and asks again in an hour, until two days after the bill's date, when
//! the day is reconciled without a bill. A file that is not a bill fails the run.

use std::sync::Arc;

use chrono::NaiveDate;

use crate::providers::CallError;
use crate::providers::bills::Progress;
use crate::providers::wechatpay::bill::Fetched;
use crate::queue::{Job, JobContext, JobError, Outcome};
pub use crate::reconcile::ReconcileBill;
use crate::reconcile::{self, DONE, FAILED, QUEUED, RunError, WAITING_FOR_BILL};
use crate::services::Services;
use crate::store::reconciliations::{self as store, Run};

/// How long to wait before asking for an unpublished bill again.
pub const BILL_RETRY_MS: i64 = 60 * 60 * 1000;
/// Days after the bill's date when an unpublished bill is given up on.
pub const BILL_WAIT_DAYS: i64 = 2;

impl Job for ReconcileBill {
    type Context = Services;
    const NAME: &'static str = "reconcile.bill";
    const QUEUE: &'static str = "reconcile";

    fn key(&self) -> String {
        self.dedup_key()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let services = ctx.app();
        let now = ctx.clock().now_ms();
        let date =
            NaiveDate::parse_from_str(&self.bill_date, "%Y-%m-%d").map_err(JobError::permanent)?;
        if store::find(ctx.db().pool(), &self.run_id).await?.is_none() {
            let run = Run {
                id: self.run_id.clone(),
                channel: self.channel.clone(),
                bill_date: self.bill_date.clone(),
                source: self.source.clone(),
                status: QUEUED.into(),
                created_at: now,
                ..Run::default()
            };
            let mut tx = ctx.db().begin().await?;
            store::insert(&mut tx, ctx.db().backend(), &run).await?;
            tx.commit().await?;
        }
        let Some(run) = store::find(ctx.db().pool(), &self.run_id).await? else {
            return Err(JobError::retry("the run is not there yet"));
        };
        if run.status == DONE || run.status == FAILED {
            return Ok(Outcome::Duplicate);
        }
        let bill = match &run.file_path {
            Some(path) => Some(path.into()),
            None => {
                let dest = reconcile::bill_path(services, &run.id);
                match reconcile::fetch(services, &run, &dest).await {
                    Ok(Fetched::Bill) => Some(dest),
                    Ok(Fetched::NotYet) => {
                        let give_up = reconcile::day_bounds(date).1 + BILL_WAIT_DAYS * 86_400_000;
                        if now < give_up {
                            return self.wait(&ctx, now).await;
                        }
                        None
                    }
                    Err(e) => match e.downcast_ref::<CallError>() {
                        Some(CallError::Refused(why)) => {
                            store::fail(
                                ctx.db(),
                                &run.id,
                                &format!("the provider refused: {why}"),
                                now,
                            )
                            .await?;
                            return Err(JobError::permanent(why));
                        }
                        _ => return Err(JobError::Retry(e)),
                    },
                }
            }
        };
        match reconcile::execute(
            services,
            &run,
            bill.as_deref(),
            Arc::new(Progress::default()),
        )
        .await
        {
            Ok(_) => {}
            Err(RunError::Bill(why)) => {
                store::fail(ctx.db(), &run.id, &why, ctx.clock().now_ms()).await?;
            }
            Err(RunError::Db(e)) => return Err(e.into()),
            Err(RunError::Other(e)) => return Err(JobError::Retry(e)),
        }
        let Some(tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        tx.commit().await?;
        Ok(Outcome::Done)
    }
}

impl ReconcileBill {
    /// The bill is not published yet: the run waits, and asks again later.
    async fn wait(&self, ctx: &JobContext<Services>, now: i64) -> Result<Outcome, JobError> {
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        store::set_status(&mut **tx, &self.run_id, WAITING_FOR_BILL, now).await?;
        let next = ReconcileBill {
            attempt: self.attempt + 1,
            ..self.clone()
        };
        let key = format!("reconcile:{}", next.dedup_key());
        ctx.queue()
            .schedule_timer(&mut tx, &key, &next, now + BILL_RETRY_MS, now)
            .await?;
        tx.commit().await?;
        tracing::info!(run = %self.run_id, "the bill is not published yet; asking again later");
        Ok(Outcome::Done)
    }
}

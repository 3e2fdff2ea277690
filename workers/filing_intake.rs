//! `filing.intake`: the registry checks and the limits, then the owner's code, or a
//! rejection with its reason. The filer and the vehicle are locked for the transaction
//! (advisory locks on PostgreSQL, the single writer on SQLite), so concurrent intakes
//! cannot exceed a limit. The registered owner filing their own vehicle is approved at once.

use serde::{Deserialize, Serialize};

use super::filing_code::{IssueError, issue_code};
use super::notify_decision::NotifyDecision;
use crate::domain::filing::{
    FilingLimits, FilingStatus, RejectReason, check_limits, check_vehicle,
};
use crate::domain::plate::is_fileable;
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;
use crate::store::filings;
use crate::store::registry::{find_driver, find_vehicle};

#[derive(Debug, Serialize, Deserialize)]
pub struct FilingIntake {
    pub filing_id: String,
}

impl Job for FilingIntake {
    type Context = Services;
    const NAME: &'static str = "filing.intake";
    const QUEUE: &'static str = "filing";

    fn key(&self) -> String {
        self.filing_id.clone()
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.filing_id).await? else {
            return Ok(Outcome::Duplicate);
        };
        let db = ctx.db();
        let Some(filing) = filings::load_for_update(db, &mut tx, &self.filing_id).await? else {
            return Err(JobError::permanent(format!(
                "filing {} does not exist",
                self.filing_id
            )));
        };
        if filing.status != FilingStatus::Received {
            tx.commit().await?;
            return Ok(Outcome::Done);
        }
        filings::lock_subject(db, &mut tx, &format!("filer:{}", filing.filer_id)).await?;
        filings::lock_subject(
            db,
            &mut tx,
            &format!("vehicle:{}:{}", filing.plate_type, filing.plate_number),
        )
        .await?;
        let now = ctx.clock().now_ms();
        let vehicle = find_vehicle(&mut **tx, &filing.plate_type, &filing.plate_number).await?;
        let checked = if !is_fileable(&filing.plate_type) {
            Err(RejectReason::PlateTypeNotAllowed)
        } else {
            match &vehicle {
                None => Err(RejectReason::VehicleNotFound),
                Some(v) => check_vehicle(v, &filing.engine_last6),
            }
        };
        if let Err(reason) = checked {
            filings::reject(&mut tx, &filing, reason.code(), now).await?;
            tx.commit().await?;
            return Ok(Outcome::Done);
        }
        let vehicle = vehicle.expect("checked above");
        let filer = find_driver(&mut **tx, &filing.filer_id).await?;
        let filer_name = filer
            .as_ref()
            .map(|d| d.fields.name.clone())
            .unwrap_or_default();
        let own = filer
            .as_ref()
            .is_some_and(|d| d.fields.id_number.trim() == vehicle.fields.owner_id_number.trim());
        if own {
            filings::mark_own_vehicle(&mut tx, &filing.id).await?;
            filings::transition(&mut tx, &filing, FilingStatus::Approved, now, "own_vehicle")
                .await?;
            let notify = NotifyDecision {
                filing_id: filing.id.clone(),
                decision: "approved".into(),
            };
            ctx.queue().enqueue(&mut tx, &notify, now).await?;
            tx.commit().await?;
            ctx.queue().wake();
            return Ok(Outcome::Done);
        }
        let cfg = &ctx.config().filing;
        let limits = FilingLimits {
            per_filer: cfg.max_non_owned_per_user,
            per_vehicle: cfg.max_filers_per_vehicle,
            per_day: cfg.max_applications_per_day,
            per_year: cfg.max_applications_per_year,
        };
        let counts = filings::counts(
            &mut tx,
            &filing.filer_id,
            &filing.plate_type,
            &filing.plate_number,
            &filing.local_date,
            &filing.local_year,
            &filing.id,
        )
        .await?;
        if let Err(reason) = check_limits(&counts, &limits) {
            filings::reject(&mut tx, &filing, reason.code(), now).await?;
            tx.commit().await?;
            return Ok(Outcome::Done);
        }
        match issue_code(
            ctx.app(),
            &mut tx,
            &filing,
            &vehicle.fields.owner_phone,
            &filer_name,
            now,
        )
        .await
        {
            Ok(_) => {
                filings::transition(&mut tx, &filing, FilingStatus::CodeSent, now, "code_issued")
                    .await?
            }
            Err(IssueError::RateLimited) => {
                filings::reject(&mut tx, &filing, RejectReason::SmsRateLimited.code(), now).await?
            }
            Err(IssueError::Db(e)) => return Err(e.into()),
        }
        tx.commit().await?;
        ctx.queue().wake();
        ctx.queue().timers_changed();
        Ok(Outcome::Done)
    }
}

//! The review lifecycle (人工审核): the one place that opens, claims, decides and escalates
//! a manual review. The filing lifecycle calls [`open`] when a filing enters
//! `under_review` (documents uploaded after a failed face check, or a QR filing's code
//! verified) and [`withdraw`] when a filing under review ends; the HTTP handlers call
//! [`decision::claim`] and [`decision::decide`]; the `review.sla_check` timers call
//! [`sla::checkpoint`]. The SLA rules are `domain::review`'s, counted in the working
//! calendar of [`Services::calendar`]; rows are `store::reviews`.
//! Layering: this module imports no `filings` (which calls it), no `api` and no `workers`.

pub mod decision;
pub mod jobs;
pub mod sla;

use crate::clock::from_ms;
use crate::domain::filing::ForbiddenMove;
use crate::domain::review::SlaRules;
use crate::services::Services;
use crate::store::Tx;
use crate::store::filings::Filing;
use crate::store::reviews;
use jobs::{Checkpoint, SlaCheck, checkpoint_key};

/// Why the review lifecycle refused a step (the API turns these into problems).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no review of this filing")]
    NotFound,
    /// Another reviewer holds the lease until `until` (Unix ms).
    #[error("the review is claimed by {by}")]
    AlreadyClaimed { by: String, until: i64 },
    #[error("the review is already decided")]
    Decided,
    #[error("a rejection needs a reason")]
    ReasonRequired,
    #[error(transparent)]
    Forbidden(#[from] ForbiddenMove),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub type ReviewResult<T> = Result<T, ReviewError>;

/// The SLA rules of the configuration.
pub fn sla_rules(services: &Services) -> SlaRules {
    SlaRules {
        working_days: services.config.review.sla_working_days,
        at_risk_ratio: services.config.review.at_risk_ratio,
    }
}

/// Opens the review of `filing`, which has just entered `under_review`, in the caller's
/// transaction: the deadline is `review.sla_working_days` of working time from `now_ms`,
/// the at-risk moment `review.at_risk_ratio` of it; a durable timer is scheduled for each.
/// A filing that has a review already keeps it (nothing changes).
pub async fn open(
    tx: &mut Tx,
    services: &Services,
    filing: &Filing,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let sla = sla_rules(services).checkpoints(&services.calendar, from_ms(now_ms));
    let (at_risk_at, deadline) = (
        sla.at_risk_at.timestamp_millis(),
        sla.deadline.timestamp_millis(),
    );
    if !reviews::insert(tx, &filing.id, now_ms, deadline, at_risk_at).await? {
        return Ok(());
    }
    reviews::add_audit(tx, &filing.id, now_ms, "system", "opened", None).await?;
    let checkpoints = [
        (Checkpoint::AtRisk, at_risk_at),
        (Checkpoint::Escalation { level: 1 }, deadline),
    ];
    for (checkpoint, due_ms) in checkpoints {
        schedule(tx, services, &filing.id, checkpoint, due_ms, now_ms).await?;
    }
    Ok(())
}

/// Schedules the timer of one checkpoint.
pub(crate) async fn schedule(
    tx: &mut Tx,
    services: &Services,
    filing_id: &str,
    checkpoint: Checkpoint,
    due_ms: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let job = SlaCheck {
        filing_id: filing_id.to_string(),
        checkpoint,
        due_ms,
    };
    let key = checkpoint_key(filing_id, checkpoint);
    services
        .queue
        .schedule_timer(tx, &key, &job, due_ms, now_ms)
        .await
}

/// Cancels the timers a review still has pending: the at-risk checkpoint and the next
/// escalation (only one escalation timer is pending at a time).
pub(crate) async fn cancel_timers(
    tx: &mut Tx,
    services: &Services,
    review: &reviews::Review,
) -> Result<(), sqlx::Error> {
    let next = Checkpoint::Escalation {
        level: review.escalation_level + 1,
    };
    for checkpoint in [Checkpoint::AtRisk, next] {
        services
            .queue
            .cancel_timer(tx, &checkpoint_key(&review.filing_id, checkpoint))
            .await?;
    }
    Ok(())
}

/// The filing under review ended (cancelled by its filer or removed by the owner): its
/// review, if open, is closed as `withdrawn` and its timers are cancelled.
pub async fn withdraw(
    tx: &mut Tx,
    services: &Services,
    filing_id: &str,
    by: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let Some(review) = reviews::load_for_update(&services.db, tx, filing_id).await? else {
        return Ok(());
    };
    if !review.is_open() {
        return Ok(());
    }
    reviews::decide(tx, filing_id, "withdrawn", None, by, now_ms).await?;
    reviews::add_audit(tx, filing_id, now_ms, by, "withdrawn", None).await?;
    cancel_timers(tx, services, &review).await
}

//! The SLA checkpoints of an open review, run by the `review.sla_check` timers: at the
//! at-risk moment the review is flagged; at the deadline it is breached and escalation
//! level 1 texts the supervisors (`review.escalation_phones`); each further working day
//! without a decision escalates once more. Each checkpoint is one timer; the next
//! escalation is scheduled by the one before, under the review's row lock, so levels go
//! 1, 2, 3... never skipping or repeating however many schedulers and workers run.
//! Also the review gauges (`beian_reviews_at_risk`, `beian_reviews_breached`).

use std::collections::BTreeMap;

use super::jobs::{Checkpoint, SlaCheck, escalation_message_id};
use super::schedule;
use crate::clock::{from_ms, rfc3339};
use crate::domain::review::next_escalation;
use crate::providers::sms::{SmsMessage, template};
use crate::services::Services;
use crate::store::{Db, Tx, filings, reviews};

/// What a checkpoint did.
#[derive(Debug, Default)]
pub struct CheckpointOutcome {
    /// The escalation SMS to send (one per supervisor), each with a stable `message_id`;
    /// the caller enqueues them in the same transaction.
    pub texts: Vec<SmsMessage>,
    /// A further checkpoint was scheduled (wake the scheduler after the commit).
    pub scheduled: bool,
}

/// Applies `check` to its review, held locked in `tx`. A decided (or withdrawn) review, an
/// at-risk flag already set and an escalation level already reached change nothing.
pub async fn checkpoint(
    services: &Services,
    tx: &mut Tx,
    check: &SlaCheck,
    now: i64,
) -> Result<CheckpointOutcome, sqlx::Error> {
    let mut outcome = CheckpointOutcome::default();
    let Some(review) = reviews::load_for_update(&services.db, tx, &check.filing_id).await? else {
        return Ok(outcome);
    };
    if !review.is_open() {
        return Ok(outcome);
    }
    match check.checkpoint {
        Checkpoint::AtRisk => {
            if !review.at_risk {
                reviews::set_at_risk(tx, &review.filing_id).await?;
                reviews::add_audit(tx, &review.filing_id, now, "system", "at_risk", None).await?;
            }
        }
        Checkpoint::Escalation { level } => {
            if review.escalation_level + 1 != level {
                // Reached already (a repeat), or not the next one (never scheduled so).
                if review.escalation_level < level {
                    tracing::warn!(filing_id = %review.filing_id, level, at = review.escalation_level,
                        "an escalation checkpoint out of turn was ignored");
                }
                return Ok(outcome);
            }
            reviews::escalate(tx, &review.filing_id, level).await?;
            let detail = format!("level {level}");
            reviews::add_audit(
                tx,
                &review.filing_id,
                now,
                "system",
                "escalated",
                Some(&detail),
            )
            .await?;
            let plate = filings::find(&mut **tx, &review.filing_id)
                .await?
                .map(|f| f.plate_number)
                .unwrap_or_default();
            for phone in &services.config.review.escalation_phones {
                let params = BTreeMap::from([
                    ("filing_id".to_string(), review.filing_id.clone()),
                    ("plate_number".to_string(), plate.clone()),
                    ("level".to_string(), level.to_string()),
                    ("deadline".to_string(), rfc3339(review.deadline_at)),
                ]);
                outcome.texts.push(SmsMessage {
                    message_id: escalation_message_id(&review.filing_id, level, phone),
                    phone: phone.clone(),
                    template: template::REVIEW_ESCALATION.into(),
                    params,
                });
            }
            let next_due =
                next_escalation(&services.calendar, from_ms(check.due_ms)).timestamp_millis();
            let next = Checkpoint::Escalation { level: level + 1 };
            schedule(tx, services, &review.filing_id, next, next_due, now).await?;
            outcome.scheduled = true;
        }
    }
    Ok(outcome)
}

/// Sets the review gauges from the database (open reviews at risk but not yet breached,
/// and breached).
pub async fn report_gauges(db: &Db) {
    if let Ok((at_risk, breached)) = reviews::open_counts(db).await {
        metrics::gauge!("beian_reviews_at_risk").set(at_risk as f64);
        metrics::gauge!("beian_reviews_breached").set(breached as f64);
    }
}

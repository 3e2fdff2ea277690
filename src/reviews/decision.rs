//! A reviewer's steps: claiming a review (a lease of `review.claim_lease_seconds`, renewed by
//! the same reviewer, refused to another while it lives) and deciding it (approve, or reject
//! with a reason). A decision moves the filing through the domain's move table, is audited
//! (who, when, why), cancels the review's timers and enqueues the decision notifications to
//! filer and owner, all in the caller's transaction.

use super::jobs::NotifyDecision;
use super::{ReviewError, ReviewResult, cancel_timers};
use crate::domain::filing::FilingStatus;
use crate::services::Services;
use crate::store::Tx;
use crate::store::filings;
use crate::store::reviews::{self, Review};

/// The longest reason a reviewer may give, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// What a reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    /// The review's `decision`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approved",
            Verdict::Reject => "rejected",
        }
    }

    /// Where the filing goes.
    pub fn status(self) -> FilingStatus {
        match self {
            Verdict::Approve => FilingStatus::Approved,
            Verdict::Reject => FilingStatus::ReviewRejected,
        }
    }
}

/// The open review of `filing_id`, locked for the transaction.
async fn open_review(services: &Services, tx: &mut Tx, filing_id: &str) -> ReviewResult<Review> {
    let review = reviews::load_for_update(&services.db, tx, filing_id)
        .await?
        .ok_or(ReviewError::NotFound)?;
    if !review.is_open() {
        return Err(ReviewError::Decided);
    }
    Ok(review)
}

/// `reviewer` claims the review of `filing_id` for `review.claim_lease_seconds`; the same
/// reviewer claiming again renews the lease. Answers the review as it now stands.
pub async fn claim(
    services: &Services,
    tx: &mut Tx,
    filing_id: &str,
    reviewer: &str,
    now: i64,
) -> ReviewResult<Review> {
    let mut review = open_review(services, tx, filing_id).await?;
    if let Some(holder) = review.claim_holder(now).filter(|h| *h != reviewer) {
        return Err(ReviewError::AlreadyClaimed {
            by: holder.to_string(),
            until: review.claim_expires_at.unwrap_or(now),
        });
    }
    let renewing = review.claim_holder(now).is_some();
    let until = now + services.config.review.claim_lease_seconds as i64 * 1000;
    reviews::claim(tx, filing_id, reviewer, until).await?;
    let action = if renewing { "claim_renewed" } else { "claimed" };
    reviews::add_audit(tx, filing_id, now, reviewer, action, None).await?;
    review.claimed_by = Some(reviewer.to_string());
    review.claim_expires_at = Some(until);
    Ok(review)
}

/// `reviewer` decides the review of `filing_id`: the filing becomes `approved` or
/// `review_rejected` (a rejection needs a reason). Refused when the review is decided, or
/// claimed by another reviewer whose lease lives; an unclaimed review may be decided.
pub async fn decide(
    services: &Services,
    tx: &mut Tx,
    filing_id: &str,
    reviewer: &str,
    verdict: Verdict,
    reason: Option<&str>,
    now: i64,
) -> ReviewResult<Review> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if verdict == Verdict::Reject && reason.is_none() {
        return Err(ReviewError::ReasonRequired);
    }
    // The filing first, then its review: the order every path that holds both takes.
    let filing = filings::load_for_update(&services.db, tx, filing_id)
        .await?
        .ok_or(ReviewError::NotFound)?;
    let mut review = open_review(services, tx, filing_id).await?;
    if let Some(holder) = review.claim_holder(now).filter(|h| *h != reviewer) {
        return Err(ReviewError::AlreadyClaimed {
            by: holder.to_string(),
            until: review.claim_expires_at.unwrap_or(now),
        });
    }
    let step = filing.status.move_to(verdict.status())?;
    let cause = match verdict {
        Verdict::Approve => "review_approved",
        Verdict::Reject => "review_rejected",
    };
    filings::transition(tx, filing_id, step, now, cause).await?;
    reviews::decide(tx, filing_id, verdict.as_str(), reason, reviewer, now).await?;
    reviews::add_audit(tx, filing_id, now, reviewer, verdict.as_str(), reason).await?;
    cancel_timers(tx, services, &review).await?;
    let notify = NotifyDecision {
        filing_id: filing_id.to_string(),
        decision: verdict.status().as_str().to_string(),
    };
    services.queue.enqueue(tx, &notify, now).await?;
    review.decision = Some(verdict.as_str().to_string());
    review.reason = reason.map(str::to_string);
    review.decided_by = Some(reviewer.to_string());
    review.decided_at = Some(now);
    Ok(review)
}

//! The face check of an SMS filing: handing in the certification id (which enqueues
//! `face.verify`, or runs a dead one of the same id again), and applying the provider's
//! verdict: passed approves and notifies filer and owner, failed asks for documents.

use super::jobs::{FaceVerify, NotifyDecision};
use super::{FilingError, FilingResult, step};
use crate::domain::filing::FilingStatus;
use crate::queue::Job;
use crate::services::Services;
use crate::store::Tx;
use crate::store::filings::{self, Filing};

/// Hands in `certify_id` for `filing` (held locked by the caller). A check already asked for
/// with the same id is not asked twice, but one whose job is dead (the provider failed every
/// attempt) is run again with fresh attempts: the filer asking again is the retry.
pub async fn hand_in(
    services: &Services,
    tx: &mut Tx,
    filing: &Filing,
    certify_id: &str,
    now: i64,
) -> FilingResult<()> {
    if filing.status != FilingStatus::CodeVerified {
        return Err(FilingError::FaceNotExpected(filing.status));
    }
    let job = FaceVerify {
        filing_id: filing.id.clone(),
        certify_id: certify_id.to_string(),
    };
    if !services.queue.enqueue(tx, &job, now).await? {
        crate::store::jobs::requeue_dead_by_key(tx, FaceVerify::NAME, &job.dedup_key(), now)
            .await?;
    }
    Ok(())
}

/// Applies the provider's verdict, if the filing still waits for it (held by the caller).
pub async fn apply_verdict(
    services: &Services,
    tx: &mut Tx,
    filing_id: &str,
    passed: bool,
    now: i64,
) -> FilingResult<()> {
    let filing = filings::load_for_update(&services.db, tx, filing_id).await?;
    let Some(mut filing) = filing.filter(|f| f.status == FilingStatus::CodeVerified) else {
        return Ok(());
    };
    if passed {
        step(tx, &mut filing, FilingStatus::Approved, now, "face_passed").await?;
        let notify = NotifyDecision {
            filing_id: filing.id.clone(),
            decision: "approved".into(),
        };
        services.queue.enqueue(tx, &notify, now).await?;
    } else {
        step(
            tx,
            &mut filing,
            FilingStatus::DocumentsRequired,
            now,
            "face_failed",
        )
        .await?;
    }
    Ok(())
}

//! Entering manual review: a filing moves to `under_review` (documents uploaded after a
//! failed face check, or a QR filing's code verified) and its review is opened, in the same
//! transaction, so the SLA clock starts exactly when the state changes.

use super::{FilingResult, step};
use crate::domain::filing::FilingStatus;
use crate::services::Services;
use crate::store::Tx;
use crate::store::filings::Filing;

/// Moves `filing` (held by the caller) to `under_review` with `cause` and opens its review.
pub async fn enter_review(
    services: &Services,
    tx: &mut Tx,
    filing: &mut Filing,
    now: i64,
    cause: &str,
) -> FilingResult<()> {
    step(tx, filing, FilingStatus::UnderReview, now, cause).await?;
    crate::reviews::open(tx, services, filing, now).await?;
    Ok(())
}

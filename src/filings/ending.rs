//! Ending a filing: the filer cancels one in progress or unbinds an approved one; the owner
//! removes any filer of their vehicle the same way. Either frees the place at once, and the
//! code's timers go with it.

use super::{FilingError, FilingResult, code};
use crate::services::Services;
use crate::store::Tx;
use crate::store::filings::{self, Filing};

/// Who ended the filing (it shows in the history's cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    Filer,
    Owner,
}

impl EndedBy {
    fn as_str(self) -> &'static str {
        match self {
            EndedBy::Filer => "by_filer",
            EndedBy::Owner => "by_owner",
        }
    }
}

/// Cancels (in progress) or unbinds (approved) `filing`, which the caller holds locked;
/// [`FilingError::AlreadyEnded`] when it ended before.
pub async fn end(
    services: &Services,
    tx: &mut Tx,
    filing: &mut Filing,
    by: EndedBy,
    now: i64,
) -> FilingResult<()> {
    let step = filing
        .status
        .ending()
        .map_err(|_| FilingError::AlreadyEnded(filing.status))?;
    let verb = if step.to() == crate::domain::filing::FilingStatus::Unbound {
        "unbound"
    } else {
        "cancelled"
    };
    let cause = format!("{verb}_{}", by.as_str());
    filings::transition(tx, &filing.id, step, now, &cause).await?;
    filing.status = step.to();
    filing.updated_at = now;
    code::cancel_timers(services, tx, filing).await?;
    if step.from() == crate::domain::filing::FilingStatus::UnderReview {
        crate::reviews::withdraw(tx, services, &filing.id, by.as_str(), now).await?;
    }
    Ok(())
}

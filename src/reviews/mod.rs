//! Manual review of filings (helper R2's module).
// SHIM R1 (merge: R2's module replaces this file)

use crate::services::Services;
use crate::store::Tx;
use crate::store::filings::Filing;

/// Opens the review of `filing`, which has just entered `under_review` in `tx`.
pub async fn open(
    _tx: &mut Tx,
    _services: &Services,
    _filing: &Filing,
    _now_ms: i64,
) -> Result<(), sqlx::Error> {
    Ok(())
}

//! Putting a filing under review in tests, before the documents upload exists in this
//! branch: a `documents_required` filing is moved to `under_review` and its review opened
//! exactly as the lifecycle does it (`reviews::open`, in the same transaction).

#![allow(dead_code)]

use beian::domain::filing::FilingStatus;

use super::TestApp;

// MERGE R1: replace with the documents upload (`POST /v1/filings/{id}/documents`), which
// moves the filing to `under_review` and calls `reviews::open` itself.
pub async fn enter_review(app: &TestApp, filing_id: &str) {
    let services = app.services();
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    let filing = beian::store::filings::load_for_update(&services.db, &mut tx, filing_id)
        .await
        .unwrap()
        .expect("the filing exists");
    let step = filing
        .status
        .move_to(FilingStatus::UnderReview)
        .expect("a documents_required filing");
    beian::store::filings::transition(&mut tx, filing_id, step, now, "documents_uploaded")
        .await
        .unwrap();
    beian::reviews::open(&mut tx, services, &filing, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    services.queue.timers_changed();
}

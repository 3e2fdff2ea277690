//! The application's own background tasks: following the shared manual test clock, and
//! the review gauges.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::services::Services;

/// Every process follows the shared manual clock: the offset is re-read from the database
/// a few times a second.
pub async fn follow_shared_clock(services: Arc<Services>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Ok(Some(offset)) = crate::store::clock::load_offset(&services.db).await {
            services.clock.adopt_offset(offset);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The review gauges (`beian_reviews_at_risk`, `beian_reviews_breached`), reported every few
/// seconds by the processes that run the scheduler, like the queue gauges.
pub async fn review_gauges(services: Arc<Services>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        crate::reviews::sla::report_gauges(&services.db).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => {}
        }
    }
}

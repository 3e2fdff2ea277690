//! The application's own background task: following the shared manual test clock.

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

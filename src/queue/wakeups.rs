//! Wake-ups across processes (PostgreSQL `LISTEN`): work enqueued and timers scheduled by
//! other processes wake this one's workers, relay and scheduler at once instead of at their
//! next poll. SQLite has no such thing: there, polling and in-process wake-ups do.

use std::time::Duration;

use tokio::sync::watch;

use super::Queue;
use crate::store::{Db, jobs, timers};

/// Listens until `stop`, reconnecting after a lost connection (and then looking for work
/// anyway, as notifications may have been missed). Returns at once on SQLite.
pub async fn run(db: Db, queue: Queue, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let mut listener = match db.listen(&[jobs::WAKE_CHANNEL, timers::WAKE_CHANNEL]).await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(_) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        loop {
            tokio::select! {
                message = listener.try_recv() => match message {
                    Ok(Some(n)) if n.channel() == timers::WAKE_CHANNEL => queue.timers_changed(),
                    Ok(Some(_)) => queue.wake(),
                    // Reconnected (notifications may have been missed): look for work anyway.
                    Ok(None) => { queue.wake(); queue.timers_changed(); }
                    Err(_) => break,
                },
                _ = stop.changed() => return,
            }
        }
    }
}

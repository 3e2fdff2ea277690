//! The runtime's gauges, reported by every process every few seconds: queue depth by queue
//! and state (`beian_queue_depth`) and pending timers (`beian_timers_pending`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Runtime;
use crate::store::{jobs, timers};

const STATES: [&str; 5] = ["ready", "running", "scheduled", "retrying", "dead"];

pub async fn run<C: Send + Sync + 'static>(
    runtime: Arc<Runtime<C>>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        report(&runtime).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn report<C: Send + Sync + 'static>(runtime: &Runtime<C>) {
    if let Ok(counts) = jobs::open_counts(runtime.db(), runtime.clock().now_ms()).await {
        // Every named queue (zero when empty), and any other queue that holds jobs.
        let mut queues: Vec<String> = runtime.settings().queues().map(String::from).collect();
        for (queue, _, _) in &counts {
            if !queues.contains(queue) {
                queues.push(queue.clone());
            }
        }
        for queue in queues {
            for state in STATES {
                let n = counts
                    .iter()
                    .find(|(q, s, _)| *q == queue && s == state)
                    .map(|(_, _, n)| *n)
                    .unwrap_or(0);
                metrics::gauge!("beian_queue_depth", "queue" => queue.clone(), "state" => state)
                    .set(n as f64);
            }
        }
    }
    if let Ok(n) = timers::pending_count(runtime.db()).await {
        metrics::gauge!("beian_timers_pending").set(n as f64);
    }
}

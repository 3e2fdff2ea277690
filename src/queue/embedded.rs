//! The embedded transport: the jobs table is the queue. Each queue has a claim loop that
//! takes due rows under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on
//! SQLite) up to its concurrency, woken in-process or by `NOTIFY`, polling as a fallback.
//! A lease that expires means a crashed worker: the row goes back to the queue and is claimed
//! again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::{Runtime, runner};
use crate::store::jobs;

/// Runs the claim loops of `queues` until `shutdown` turns true, then finishes or hands back
/// what it holds within `shutdown.grace_seconds`.
pub async fn run<C: Send + Sync + 'static>(
    runtime: Arc<Runtime<C>>,
    queues: Vec<String>,
    worker: String,
    shutdown: watch::Receiver<bool>,
) {
    let mut loops = vec![tokio::spawn(rescue_loop(runtime.clone(), shutdown.clone()))];
    for queue in queues {
        loops.push(tokio::spawn(claim_loop(
            runtime.clone(),
            queue,
            worker.clone(),
            shutdown.clone(),
        )));
    }
    for handle in loops {
        let _ = handle.await;
    }
}

/// Puts the jobs of crashed workers (their lease ran out) back in the queue, checking every
/// half lease (at most every 5 s), and wakes the claim loops when it found any. At start it
/// also takes back jobs left queued in a broker by an earlier AMQP deployment.
async fn rescue_loop<C: Send + Sync + 'static>(
    runtime: Arc<Runtime<C>>,
    mut shutdown: watch::Receiver<bool>,
) {
    match jobs::adopt_published(runtime.db(), runtime.clock().now_ms()).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            adopted = n,
            "queued jobs once handed to a broker run here now"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot look for jobs handed to a broker"),
    }
    let lease_ms = runtime.settings().queue.lease_seconds * 1000;
    let every = Duration::from_millis((lease_ms / 2).clamp(100, 5_000));
    while !*shutdown.borrow() {
        if super::rescue_crashed(runtime.db(), runtime.clock()).await > 0 {
            runtime.queue().wake();
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn claim_loop<C: Send + Sync + 'static>(
    runtime: Arc<Runtime<C>>,
    queue: String,
    worker: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let settings = runtime.settings().queue_settings(&queue);
    let concurrency = settings.concurrency as usize;
    let permits = Arc::new(Semaphore::new(concurrency));
    let poll = Duration::from_millis(runtime.settings().queue.poll_interval_ms.max(10));
    let lease_ms = runtime.settings().queue.lease_seconds as i64 * 1000;
    let mut failures = 0u32;
    while !*shutdown.borrow() {
        let ready = runtime.queue().jobs_ready().notified();
        tokio::pin!(ready);
        ready.as_mut().enable();
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                permit = permits.clone().acquire_owned() => drop(permit),
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let claimed = jobs::claim(
            runtime.db(),
            &queue,
            free as i64,
            runtime.clock().now_ms(),
            chrono::Utc::now().timestamp_millis(),
            lease_ms,
            &worker,
        )
        .await;
        let claimed = match claimed {
            Ok(c) => {
                failures = 0;
                c
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures % 30 == 0 {
                    tracing::warn!(queue = %queue, error = %e, "cannot claim jobs; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500 * failures.min(10) as u64)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = &mut ready => {}
                _ = tokio::time::sleep(poll) => {}
                _ = runtime.clock().moved() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        for job in claimed {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            let runtime = runtime.clone();
            tokio::spawn(async move {
                runner::run(&runtime, job).await;
                drop(permit);
            });
        }
    }
    // Shutdown: wait for the jobs in hand, then hand back whatever is still running.
    let grace = Duration::from_secs(runtime.settings().shutdown.grace_seconds);
    let all = permits.acquire_many(concurrency as u32);
    if tokio::time::timeout(grace, all).await.is_err() {
        match jobs::release_held(
            runtime.db(),
            &worker,
            Some(&queue),
            runtime.clock().now_ms(),
        )
        .await
        {
            Ok(n) => {
                tracing::warn!(queue = %queue, returned = n, "shutdown: jobs still running were handed back")
            }
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "shutdown: could not hand jobs back; their leases will expire")
            }
        }
    }
}

//! Runs one claimed job: its handler inside a tracing span (job id, kind, attempt), then the
//! outcome recorded (done, retry with backoff, or dead with every attempt's error kept) and
//! counted in the metrics. Both transports call this.

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::json;
use tracing::Instrument;

use super::{JobContext, JobError, Outcome, Runtime, retry};
use crate::clock::rfc3339;
use crate::store::jobs::{self, ClaimedJob};

/// What became of a run, for the transport (AMQP acks or dead-letters by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Done,
    Retrying,
    Dead,
    /// The outcome could not be written (the database is unreachable): the job must come
    /// back. A claimed job does when its lease expires; an AMQP message is not acked.
    Unrecorded,
}

pub async fn run<C: Send + Sync + 'static>(
    runtime: &std::sync::Arc<Runtime<C>>,
    job: ClaimedJob,
) -> Finished {
    let started_ms = runtime.clock().now_ms();
    let wait = (started_ms - job.run_at).max(0) as f64 / 1000.0;
    metrics::histogram!("beian_job_wait_seconds", "queue" => job.queue.clone()).record(wait);
    let span = tracing::info_span!("job", id = %job.id, kind = %job.kind, queue = %job.queue, attempt = job.attempts);
    let clock = Instant::now();
    let work = async {
        let handler = runtime
            .registry()
            .handler(&job.kind)
            .ok_or_else(|| JobError::permanent(format!("no handler for job kind {}", job.kind)))?;
        let alone = runtime.registry().commits_alone(&job.kind);
        let mut ctx = JobContext::for_runner(runtime.clone(), job.id.clone(), job.attempts, alone);
        let mut result = handler(ctx.clone(), &job.payload)?.await;
        if result.is_err() && ctx.flags().rerun.load(Ordering::Relaxed) {
            // Another job spoiled the group commit this effect was in: nothing of it was
            // committed. Run again at once, on a transaction of its own.
            tracing::debug!("group commit rolled back by another job; running again alone");
            ctx = JobContext::for_runner(runtime.clone(), job.id.clone(), job.attempts, true);
            result = handler(ctx.clone(), &job.payload)?.await;
        }
        result.map(|outcome| (outcome, ctx.flags().completed.load(Ordering::Relaxed)))
    }
    .instrument(span.clone());
    // A panicking handler is a failed attempt like any other, recorded and retried.
    let work = futures_lite::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(work));
    tokio::pin!(work);
    // A job that runs long keeps its lease: renewed every third of it, so no other worker
    // takes it for a crashed one.
    let lease_ms = runtime.settings().queue.lease_seconds as i64 * 1000;
    let renew_every = std::time::Duration::from_millis((lease_ms / 3).max(200) as u64);
    let result = loop {
        tokio::select! {
            done = &mut work => break done.unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(JobError::retry(format!("the handler panicked: {what}")))
            }),
            _ = tokio::time::sleep(renew_every) => {
                let until = chrono::Utc::now().timestamp_millis() + lease_ms;
                if let Err(e) = jobs::renew_lease(runtime.db(), &job.id, until).await {
                    span.in_scope(|| tracing::warn!(error = %e, "could not renew the job's lease"));
                }
            }
        }
    };
    let run_secs = clock.elapsed().as_secs_f64();
    metrics::histogram!("beian_job_run_seconds", "queue" => job.queue.clone()).record(run_secs);
    let now = runtime.clock().now_ms();
    match result {
        Ok((outcome, completed)) => {
            let label = if outcome == Outcome::Duplicate {
                "duplicate"
            } else {
                "done"
            };
            count(&job, label);
            span.in_scope(|| {
                tracing::debug!(outcome = label, ms = run_secs * 1000.0, "job finished")
            });
            // An effect committed marks the job done with it; otherwise mark it now.
            if completed {
                return Finished::Done;
            }
            match jobs::mark_done(runtime.db(), &job.id, job.attempts, now).await {
                Ok(()) => Finished::Done,
                Err(e) => {
                    // The effect is committed; a re-run finds its key and does nothing.
                    span.in_scope(|| tracing::warn!(error = %e, "could not mark the job done; it will run again as a duplicate"));
                    Finished::Unrecorded
                }
            }
        }
        Err(error) => {
            let message = error.to_string();
            let history = append_history(&job.history, job.attempts, started_ms, now, &message);
            let permanent = matches!(error, JobError::Permanent(_));
            let settings = runtime.settings().queue_settings(&job.queue);
            let stored = if permanent || job.attempts >= job.max_attempts {
                count(&job, "dead");
                span.in_scope(|| tracing::error!(error = %message, permanent, "job is dead"));
                jobs::mark_dead(runtime.db(), &job.id, job.attempts, &message, &history, now)
                    .await
                    .map(|_| Finished::Dead)
            } else {
                count(&job, "retried");
                let delay = retry::backoff_ms(&settings, job.attempts);
                span.in_scope(|| tracing::warn!(error = %message, retry_in_ms = delay, "job failed; will retry"));
                jobs::mark_retry(
                    runtime.db(),
                    &job.id,
                    job.attempts,
                    now + delay,
                    &message,
                    &history,
                    now,
                )
                .await
                .map(|_| Finished::Retrying)
            };
            match stored {
                Ok(finished) => finished,
                Err(e) => {
                    // The job comes back (lease expiry, or the message not acked).
                    span.in_scope(|| tracing::warn!(error = %e, "could not record the failure"));
                    Finished::Unrecorded
                }
            }
        }
    }
}

fn count(job: &ClaimedJob, outcome: &'static str) {
    metrics::counter!("beian_jobs_total", "queue" => job.queue.clone(), "job" => job.kind.clone(), "outcome" => outcome)
        .increment(1);
}

fn append_history(
    history: &str,
    attempt: i64,
    started_ms: i64,
    finished_ms: i64,
    error: &str,
) -> String {
    let mut list: Vec<serde_json::Value> = serde_json::from_str(history).unwrap_or_default();
    list.push(json!({
        "attempt": attempt,
        "started_at": rfc3339(started_ms),
        "finished_at": rfc3339(finished_ms),
        "error": error,
    }));
    serde_json::Value::Array(list).to_string()
}

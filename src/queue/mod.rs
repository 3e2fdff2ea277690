//! The job runtime (`spec/jobs.md`): the [`Job`] trait, enqueueing inside the caller's
//! transaction (the outbox), idempotent execution, retries with backoff, durable timers and
//! cron. The transports (`embedded`, `amqp`) only decide how a queued row reaches a worker;
//! the database row stays the truth about a job's state, attempts and errors.

pub mod amqp;
pub mod cron;
pub mod effects;
pub mod embedded;
pub mod retry;
pub mod runner;
pub mod timers;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::{Config, Transport};
use crate::store::{Backend, Db, DbResult, Tx, jobs};
pub use effects::EffectTx;

/// The job queues of `spec/jobs.md` (moved here from `config`; `jobs.<queue>` names are
/// checked against it at start).
pub const QUEUES: &[&str] = &[
    "filing",
    "sms",
    "face",
    "review",
    "notify",
    "violation",
    "payment",
    "reconcile",
    "maintenance",
];

/// A kind of background work: a struct with a serde payload and an idempotent handler.
/// A new job is a struct and an impl (see `workers/`).
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The job kind, e.g. `filing.intake`.
    const NAME: &'static str;
    /// The queue it runs on, e.g. `filing`.
    const QUEUE: &'static str;
    /// The idempotency key: two jobs with one key are one job.
    fn key(&self) -> String;
    /// Does the work. Effects commit with [`JobContext::begin_effect`]'s transaction.
    fn run(self, ctx: JobContext) -> impl Future<Output = Result<Outcome, JobError>> + Send;
}

/// How a run ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The effect was already committed by an earlier run: nothing was done again.
    Duplicate,
}

/// A failed run: retried with backoff, or dead at once when permanent (bad data).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0:#}")]
    Retry(anyhow::Error),
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

impl JobError {
    pub fn permanent(msg: impl std::fmt::Display) -> Self {
        JobError::Permanent(anyhow::anyhow!("{msg}"))
    }
    pub fn retry(msg: impl std::fmt::Display) -> Self {
        JobError::Retry(anyhow::anyhow!("{msg}"))
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Retry(e.into())
    }
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        JobError::Retry(e)
    }
}

/// What a handler gets: the shared services and which run this is.
#[derive(Clone)]
pub struct JobContext {
    pub services: Arc<crate::app::Services>,
    pub job_id: String,
    pub attempt: i64,
    /// Effects on a transaction of their own instead of a group commit (a re-run after
    /// another job spoiled the batch, and direct calls from tests).
    solo: bool,
    flags: effects::SharedFlags,
}

// SHIM (merge: drop): helper A's `ctx.app()`, so B's workers compile in B's branch.
impl JobContext {
    pub fn app(&self) -> &crate::app::Services {
        &self.services
    }
}

impl From<effects::EffectError> for JobError {
    fn from(e: effects::EffectError) -> Self {
        JobError::Retry(e.into())
    }
}

impl JobContext {
    /// A context for running a job by hand (tests, tools): its effect commits on its own.
    pub fn new(services: Arc<crate::app::Services>, job_id: String, attempt: i64) -> JobContext {
        JobContext::for_runner(services, job_id, attempt, true)
    }

    pub(crate) fn for_runner(
        services: Arc<crate::app::Services>,
        job_id: String,
        attempt: i64,
        solo: bool,
    ) -> JobContext {
        JobContext {
            services,
            job_id,
            attempt,
            solo,
            flags: Default::default(),
        }
    }

    pub(crate) fn flags(&self) -> &effects::EffectFlags {
        &self.flags
    }

    pub fn db(&self) -> &Db {
        &self.services.db
    }
    pub fn clock(&self) -> &Clock {
        &self.services.clock
    }
    pub fn config(&self) -> &Config {
        &self.services.config
    }
    pub fn queue(&self) -> &Queue {
        &self.services.queue
    }

    /// Opens the transaction a handler's effect commits in, with the record of `key`
    /// and the job's completion already written; `None` when an earlier run committed that
    /// effect (do nothing). The transaction is usually a share of a group commit
    /// (`queue::effects`): write the effect, then [`EffectTx::commit`] at once, with no
    /// outside calls in between. On PostgreSQL a concurrent run with the same key waits
    /// here for the first to commit.
    pub async fn begin_effect(&self, kind: &str, key: &str) -> Result<Option<EffectTx>, JobError> {
        let mut tx = if self.solo {
            EffectTx::own(self.db().begin().await?, self.flags.clone())
        } else {
            EffectTx::shared(self.services.effects.borrow().await?, self.flags.clone())
        };
        let now = self.clock().now_ms();
        // The job is done when its effect commits: one transaction for both.
        if jobs::record_effect_and_done(
            &mut tx,
            self.db().backend(),
            kind,
            key,
            (&self.job_id, self.attempt),
            now,
        )
        .await?
        {
            Ok(Some(tx))
        } else {
            // Nothing written: handing the transaction back whole spoils nothing.
            tx.finish(false).await?;
            Ok(None)
        }
    }
}

type BoxedRun = Pin<Box<dyn Future<Output = Result<Outcome, JobError>> + Send>>;
type Handler = Arc<dyn Fn(JobContext, &str) -> Result<BoxedRun, JobError> + Send + Sync>;

/// Every job kind the process can run, by name.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, (&'static str, Handler)>,
}

impl Registry {
    pub fn register<J: Job>(&mut self) -> &mut Self {
        let handler: Handler = Arc::new(|ctx, payload| {
            let job: J = serde_json::from_str(payload)
                .map_err(|e| JobError::permanent(format!("payload of {}: {e}", J::NAME)))?;
            Ok(Box::pin(job.run(ctx)))
        });
        self.handlers.insert(J::NAME, (J::QUEUE, handler));
        self
    }

    pub(crate) fn handler(&self, kind: &str) -> Option<&Handler> {
        self.handlers.get(kind).map(|(_, h)| h)
    }

    pub fn kinds(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.handlers.iter().map(|(k, (q, _))| (*k, *q))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerStatus {
    NotUsed,
    Up,
    Down,
}

/// The handle to the job runtime that API handlers and jobs hold: enqueue, schedule, wake.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<QueueInner>,
}

struct QueueInner {
    config: Arc<Config>,
    backend: Backend,
    /// Woken after a commit that enqueued work (workers on the embedded transport, the
    /// AMQP relay) or scheduled a timer (the scheduler).
    jobs_ready: Notify,
    timers_changed: Notify,
    broker: AtomicU8,
}

impl Queue {
    pub fn new(config: Arc<Config>, backend: Backend) -> Queue {
        let broker = match config.queue.transport {
            Transport::Embedded => BrokerStatus::NotUsed,
            Transport::Amqp => BrokerStatus::Down,
        };
        Queue {
            inner: Arc::new(QueueInner {
                config,
                backend,
                jobs_ready: Notify::new(),
                timers_changed: Notify::new(),
                broker: AtomicU8::new(broker as u8),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Adds `job` to the outbox inside the caller's transaction: it runs only if that
    /// transaction commits. A job whose (kind, key) exists already is not added again.
    /// Call [`Queue::wake`] after the commit.
    pub async fn enqueue<J: Job>(&self, tx: &mut Tx, job: &J, now_ms: i64) -> DbResult<bool> {
        self.enqueue_at(tx, job, now_ms, now_ms).await
    }

    /// Adds many jobs of one kind in the caller's transaction with multi-row inserts;
    /// returns how many were new.
    pub async fn enqueue_many<J: Job>(
        &self,
        tx: &mut Tx,
        jobs: &[J],
        now_ms: i64,
    ) -> DbResult<u64> {
        let mut rows = Vec::with_capacity(jobs.len());
        for job in jobs {
            let payload = serde_json::to_string(job).map_err(|e| sqlx::Error::Encode(e.into()))?;
            rows.push((J::NAME, J::QUEUE, job.key(), payload));
        }
        let max_attempts = self.inner.config.queue_settings(J::QUEUE).max_attempts;
        jobs::insert_many(tx, self.inner.backend, &rows, max_attempts, now_ms, now_ms).await
    }

    /// As [`Queue::enqueue`], to run no earlier than `run_at_ms`.
    pub async fn enqueue_at<J: Job>(
        &self,
        tx: &mut Tx,
        job: &J,
        run_at_ms: i64,
        now_ms: i64,
    ) -> DbResult<bool> {
        let payload = serde_json::to_string(job).map_err(|e| sqlx::Error::Encode(e.into()))?;
        self.enqueue_raw(
            tx,
            J::NAME,
            J::QUEUE,
            &job.key(),
            &payload,
            run_at_ms,
            now_ms,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn enqueue_raw(
        &self,
        tx: &mut Tx,
        kind: &str,
        queue: &str,
        key: &str,
        payload: &str,
        run_at_ms: i64,
        now_ms: i64,
    ) -> DbResult<bool> {
        let max_attempts = self.inner.config.queue_settings(queue).max_attempts;
        jobs::insert(
            tx,
            self.inner.backend,
            kind,
            queue,
            key,
            payload,
            max_attempts,
            run_at_ms,
            now_ms,
        )
        .await
    }

    /// Wakes whatever carries queued work (call after the enqueueing commit).
    pub fn wake(&self) {
        self.inner.jobs_ready.notify_waiters();
    }

    /// Signalled by [`Queue::wake`]; enable a `notified()` before looking for work so no
    /// wake-up between the look and the wait is lost.
    pub(crate) fn jobs_ready(&self) -> &Notify {
        &self.inner.jobs_ready
    }

    /// Schedules (or moves) the durable timer `key` to enqueue `job` at `due_ms`.
    pub async fn schedule_timer<J: Job>(
        &self,
        tx: &mut Tx,
        key: &str,
        job: &J,
        due_ms: i64,
        now_ms: i64,
    ) -> DbResult<()> {
        let payload = serde_json::to_string(job).map_err(|e| sqlx::Error::Encode(e.into()))?;
        timers::schedule(tx, key, J::NAME, &payload, due_ms, now_ms).await?;
        if self.inner.backend == Backend::Postgres {
            jobs::notify(tx, "beian_timers", key).await?;
        }
        Ok(())
    }

    /// Cancels the timer `key` if it has not fired; true when it was pending.
    pub async fn cancel_timer(&self, tx: &mut Tx, key: &str) -> DbResult<bool> {
        timers::cancel(tx, key).await
    }

    /// Wakes the scheduler (call after a commit that scheduled a timer).
    pub fn timers_changed(&self) {
        self.inner.timers_changed.notify_waiters();
    }

    pub(crate) fn timers_changed_signal(&self) -> &Notify {
        &self.inner.timers_changed
    }

    pub(crate) fn set_broker_status(&self, status: BrokerStatus) {
        self.inner.broker.store(status as u8, Ordering::Relaxed);
    }

    pub fn broker_status(&self) -> BrokerStatus {
        match self.inner.broker.load(Ordering::Relaxed) {
            0 => BrokerStatus::NotUsed,
            1 => BrokerStatus::Up,
            _ => BrokerStatus::Down,
        }
    }
}

/// Puts the jobs of workers that died (their lease ran out) back in the queue, unpublished
/// so the AMQP relay sends them again; logs and returns how many. Both transports call it.
pub(crate) async fn rescue_crashed(services: &crate::app::Services) -> u64 {
    match jobs::rescue_expired(
        &services.db,
        chrono::Utc::now().timestamp_millis(),
        services.clock.now_ms(),
    )
    .await
    {
        Ok(0) => 0,
        Ok(rescued) => {
            tracing::warn!(rescued, "jobs of workers that died went back to the queue");
            rescued
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot look for expired leases now");
            0
        }
    }
}

/// A name for this process in leases and logs: host, pid and a random suffix.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    )
}

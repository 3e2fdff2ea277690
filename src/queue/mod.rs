//! The job runtime (`spec/jobs.md`): the [`Job`] trait, enqueueing inside the caller's
//! transaction (the outbox), idempotent execution, retries with backoff, durable timers and
//! cron. The transports (`embedded`, `amqp`) only decide how a queued row reaches a worker;
//! the database row stays the truth about a job's state, attempts and errors.
//!
//! The runtime knows no application. It is generic over the context its jobs get
//! ([`Job::Context`], reached with [`JobContext::app`]), like `crates_io_worker`'s
//! `Runner<Context>`. The application hands it a [`Runtime`]: the database, the clock, the
//! [`Queue`] handle with its [`Settings`], the [`Registry`] of job kinds and its context;
//! the scheduler also gets the [`CronTable`] (schedule name -> job). All SQL is in `store`.

pub mod amqp;
pub mod cron;
pub mod effects;
pub mod embedded;
pub mod gauges;
pub mod retry;
pub mod runner;
pub mod timers;
pub mod wakeups;

mod context;
mod handle;
mod registry;
mod runtime;
mod settings;

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use context::JobContext;
pub use cron::CronTable;
pub use effects::EffectTx;
pub use handle::{BrokerStatus, Queue};
pub use registry::Registry;
pub use runtime::Runtime;
pub use settings::Settings;

use crate::clock::Clock;
use crate::store::{Db, jobs};

/// A kind of background work: a struct with a serde payload and an idempotent handler.
/// A new job is a struct and an impl (see `workers/`).
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// What the application hands its jobs (its shared services), as
    /// [`JobContext::app`].
    type Context: Send + Sync + 'static;
    /// The job kind, e.g. `filing.intake`.
    const NAME: &'static str;
    /// The queue it runs on, e.g. `filing`.
    const QUEUE: &'static str;
    /// Whether the effect commits on a transaction of its own instead of a share of a group
    /// commit. A job that takes locks beyond its own rows (advisory locks on a filer, a
    /// vehicle, a phone) must: a lane holding locks of several jobs could wait on another
    /// lane that holds the rest, a deadlock PostgreSQL breaks only by failing a batch.
    const COMMITS_ALONE: bool = false;
    /// The idempotency key: two jobs with one key are one job.
    fn key(&self) -> String;
    /// Does the work. Effects commit with [`JobContext::begin_effect`]'s transaction.
    fn run(
        self,
        ctx: JobContext<Self::Context>,
    ) -> impl Future<Output = Result<Outcome, JobError>> + Send;
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

impl From<effects::EffectError> for JobError {
    fn from(e: effects::EffectError) -> Self {
        JobError::Retry(e.into())
    }
}

/// Puts the jobs of workers that died (their lease ran out) back in the queue, unpublished
/// so the AMQP relay sends them again; logs and returns how many. Both transports call it.
pub(crate) async fn rescue_crashed(db: &Db, clock: &Clock) -> u64 {
    match jobs::rescue_expired(db, chrono::Utc::now().timestamp_millis(), clock.now_ms()).await {
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

//! [`Queue`]: the handle to the job runtime that API handlers and jobs hold, to enqueue
//! (in the caller's transaction), schedule and cancel timers, and wake whatever carries
//! queued work after the commit. It also carries the runtime's [`Settings`] and the broker's
//! status for `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

use super::{Job, Settings};
use crate::config::Transport;
use crate::store::{Backend, DbResult, Tx, jobs, timers};

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
    settings: Arc<Settings>,
    backend: Backend,
    /// Woken after a commit that enqueued work (workers on the embedded transport, the
    /// AMQP relay) or scheduled a timer (the scheduler).
    jobs_ready: Notify,
    timers_changed: Notify,
    broker: AtomicU8,
}

impl Queue {
    pub fn new(settings: Arc<Settings>, backend: Backend) -> Queue {
        let broker = match settings.queue.transport {
            Transport::Embedded => BrokerStatus::NotUsed,
            Transport::Amqp => BrokerStatus::Down,
        };
        Queue {
            inner: Arc::new(QueueInner {
                settings,
                backend,
                jobs_ready: Notify::new(),
                timers_changed: Notify::new(),
                broker: AtomicU8::new(broker as u8),
            }),
        }
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.inner.settings
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
            rows.push((J::NAME, J::QUEUE, job.key(), payload_of(job)?));
        }
        let max_attempts = self.inner.settings.queue_settings(J::QUEUE).max_attempts;
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
        let new = (J::NAME, J::QUEUE, job.key(), payload_of(job)?);
        self.enqueue_raw(tx, &new, run_at_ms, now_ms).await
    }

    /// Adds a job given as (kind, queue, key, payload) (timers and cron slots).
    pub(crate) async fn enqueue_raw(
        &self,
        tx: &mut Tx,
        (kind, queue, key, payload): &jobs::NewJob<'_>,
        run_at_ms: i64,
        now_ms: i64,
    ) -> DbResult<bool> {
        let max_attempts = self.inner.settings.queue_settings(queue).max_attempts;
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
        let payload = payload_of(job)?;
        timers::schedule(
            tx,
            self.inner.backend,
            key,
            J::NAME,
            &payload,
            due_ms,
            now_ms,
        )
        .await
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

/// A job's payload as stored (JSON text).
pub(crate) fn payload_of<J: serde::Serialize>(job: &J) -> DbResult<String> {
    serde_json::to_string(job).map_err(|e| sqlx::Error::Encode(e.into()))
}

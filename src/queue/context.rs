//! [`JobContext`]: what a handler gets. The application's context (`app()`), the runtime's
//! own parts (database, clock, queue handle, settings), which run this is, and
//! [`JobContext::begin_effect`], the transaction a handler's effect commits in.

use std::sync::Arc;

use super::effects::{self, EffectTx};
use super::{JobError, Queue, Runtime, Settings};
use crate::clock::Clock;
use crate::store::{Db, jobs};

/// What a handler gets: the application's context, the runtime, and which run this is.
pub struct JobContext<C> {
    runtime: Arc<Runtime<C>>,
    pub job_id: String,
    pub attempt: i64,
    /// Effects on a transaction of their own instead of a group commit (a re-run after
    /// another job spoiled the batch, and direct calls from tests).
    solo: bool,
    flags: effects::SharedFlags,
}

impl<C> Clone for JobContext<C> {
    fn clone(&self) -> Self {
        JobContext {
            runtime: self.runtime.clone(),
            job_id: self.job_id.clone(),
            attempt: self.attempt,
            solo: self.solo,
            flags: self.flags.clone(),
        }
    }
}

impl<C: Send + Sync + 'static> JobContext<C> {
    /// A context for running a job by hand (tests, tools): its effect commits on its own.
    pub fn new(runtime: Arc<Runtime<C>>, job_id: String, attempt: i64) -> JobContext<C> {
        JobContext::for_runner(runtime, job_id, attempt, true)
    }

    pub(crate) fn for_runner(
        runtime: Arc<Runtime<C>>,
        job_id: String,
        attempt: i64,
        solo: bool,
    ) -> JobContext<C> {
        JobContext {
            runtime,
            job_id,
            attempt,
            solo,
            flags: Default::default(),
        }
    }

    pub(crate) fn flags(&self) -> &effects::EffectFlags {
        &self.flags
    }

    /// The application's shared context (its services).
    pub fn app(&self) -> &C {
        self.runtime.app()
    }
    pub fn db(&self) -> &Db {
        self.runtime.db()
    }
    pub fn clock(&self) -> &Clock {
        self.runtime.clock()
    }
    pub fn queue(&self) -> &Queue {
        self.runtime.queue()
    }
    pub fn settings(&self) -> &Settings {
        self.runtime.settings()
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
            EffectTx::shared(self.runtime.effects().borrow().await?, self.flags.clone())
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

//! [`Registry`]: every job kind a process can run, by name, with the queue it runs on and
//! its handler (payload decoded, then the job's `run`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{Job, JobContext, JobError, Outcome};

type BoxedRun = Pin<Box<dyn Future<Output = Result<Outcome, JobError>> + Send>>;
pub(crate) type Handler<C> =
    Arc<dyn Fn(JobContext<C>, &str) -> Result<BoxedRun, JobError> + Send + Sync>;

/// A registered kind: its queue, whether it commits alone, its handler.
struct Kind<C> {
    queue: &'static str,
    commits_alone: bool,
    handler: Handler<C>,
}

impl<C> Clone for Kind<C> {
    fn clone(&self) -> Self {
        Kind {
            queue: self.queue,
            commits_alone: self.commits_alone,
            handler: self.handler.clone(),
        }
    }
}

/// Every job kind the process can run, by name; `C` is the context its jobs get.
pub struct Registry<C> {
    handlers: HashMap<&'static str, Kind<C>>,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry {
            handlers: HashMap::new(),
        }
    }
}

impl<C> Clone for Registry<C> {
    fn clone(&self) -> Self {
        Registry {
            handlers: self.handlers.clone(),
        }
    }
}

impl<C: Send + Sync + 'static> Registry<C> {
    pub fn register<J: Job<Context = C>>(&mut self) -> &mut Self {
        let handler: Handler<C> = Arc::new(|ctx, payload| {
            let job: J = serde_json::from_str(payload)
                .map_err(|e| JobError::permanent(format!("payload of {}: {e}", J::NAME)))?;
            Ok(Box::pin(job.run(ctx)))
        });
        self.handlers.insert(
            J::NAME,
            Kind {
                queue: J::QUEUE,
                commits_alone: J::COMMITS_ALONE,
                handler,
            },
        );
        self
    }

    pub(crate) fn handler(&self, kind: &str) -> Option<&Handler<C>> {
        self.handlers.get(kind).map(|k| &k.handler)
    }

    /// (kind, queue) of every registered job.
    pub fn kinds(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.handlers.iter().map(|(name, k)| (*name, k.queue))
    }

    /// Whether a job kind's effect commits on a transaction of its own
    /// ([`Job::COMMITS_ALONE`]).
    pub fn commits_alone(&self, kind: &str) -> bool {
        self.handlers.get(kind).is_some_and(|k| k.commits_alone)
    }

    /// The queue a job kind runs on.
    pub fn queue_of(&self, kind: &str) -> Option<&'static str> {
        self.handlers.get(kind).map(|k| k.queue)
    }
}

//! Group commit for job effects. A handler's effect and the record of its idempotency key
//! commit in one transaction (promise 2); committing every job's transaction on its own
//! costs a commit per job. Instead, effects go through a few *lanes*: a lane holds one open
//! transaction and lends it to one job's effect at a time. When the effect is written the
//! job hands the transaction back and waits; the lane lends it to the next job already
//! waiting, and commits when nobody is waiting or the batch is full. Every job of the batch
//! learns the outcome of that one commit before it reports done (and, on AMQP, acks).
//!
//! A job that fails inside its effect (an error, a panic, a cancelled task) hands the
//! transaction back unfinished: the lane rolls the whole batch back, the failing job is
//! retried as usual, and the others are told to run again at once on a transaction of their
//! own ([`EffectError::BatchRolledBack`]); their effects were never committed, and they are
//! idempotent. Locks taken in an effect are held until the batch commits, so an effect must
//! not wait on anything outside the database while it holds the transaction.
//!
//! [`EffectTx`] is what a handler holds: a share of a lane, or, on such a re-run (and when a
//! job is run by hand), a transaction of its own.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::JobError;
use crate::store::{Backend, Db, Tx};

/// Why a borrowed effect did not commit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EffectError {
    /// Another job of the batch failed, so nothing in it was committed: run again.
    #[error("another job's effect failed in the same group commit; nothing was committed")]
    BatchRolledBack,
    #[error("group commit failed: {0}")]
    Commit(String),
    #[error("the effect lane is gone (shutting down)")]
    LaneGone,
}

/// The lanes of one process.
pub struct EffectLanes {
    lanes: Vec<mpsc::UnboundedSender<Request>>,
    next: AtomicUsize,
    stats: Arc<Stats>,
}

/// What the lanes committed so far (also the `beian_effect_batch_size` histogram).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EffectCounts {
    /// Group commits that committed.
    pub commits: u64,
    /// Effects those commits held.
    pub effects: u64,
    /// The most effects one commit held.
    pub largest_batch: u64,
}

#[derive(Debug, Default)]
struct Stats {
    commits: AtomicU64,
    effects: AtomicU64,
    largest_batch: AtomicU64,
}

impl Stats {
    fn committed(&self, effects: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.effects.fetch_add(effects as u64, Ordering::Relaxed);
        self.largest_batch
            .fetch_max(effects as u64, Ordering::Relaxed);
    }
}

struct Request {
    reply: oneshot::Sender<Result<Lent, sqlx::Error>>,
}

/// What the lane hears back from a job: the transaction, and whether its effect is whole.
struct Returned {
    tx: Tx,
    complete: bool,
}

/// The shared transaction, lent to one job.
struct Lent {
    tx: Tx,
    back: oneshot::Sender<Returned>,
    outcome: oneshot::Receiver<Result<(), EffectError>>,
}

impl EffectLanes {
    /// Starts `lanes` lane tasks on `db` (on the current runtime); a batch holds at most
    /// `batch_max` effects.
    pub fn start(db: &Db, lanes: usize, batch_max: usize) -> EffectLanes {
        let stats = Arc::new(Stats::default());
        let lanes = (0..lanes.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run_lane(db.clone(), rx, batch_max.max(1), stats.clone()));
                tx
            })
            .collect();
        EffectLanes {
            lanes,
            next: AtomicUsize::new(0),
            stats,
        }
    }

    /// What these lanes committed so far.
    pub fn counts(&self) -> EffectCounts {
        EffectCounts {
            commits: self.stats.commits.load(Ordering::Relaxed),
            effects: self.stats.effects.load(Ordering::Relaxed),
            largest_batch: self.stats.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// How many lanes to run when the configuration says 0 (automatic): SQLite has one
    /// writer, so one lane; PostgreSQL commits in parallel, so a few lanes keep one lane
    /// gathering while another waits for its commit.
    pub fn auto_count(backend: Backend) -> usize {
        match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        }
    }

    /// Borrows a lane's transaction for one effect (waits for the jobs ahead on the lane).
    pub async fn borrow(&self) -> Result<Effect, EffectError> {
        let lane = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        let (reply, answer) = oneshot::channel();
        self.lanes[lane]
            .send(Request { reply })
            .map_err(|_| EffectError::LaneGone)?;
        match answer.await {
            Ok(Ok(lent)) => Ok(Effect {
                tx: Some(lent.tx),
                back: Some(lent.back),
                outcome: Some(lent.outcome),
            }),
            Ok(Err(e)) => Err(EffectError::Commit(e.to_string())),
            Err(_) => Err(EffectError::LaneGone),
        }
    }
}

/// A job's share of a group-committed transaction. Use it as a [`Tx`]; [`Effect::commit`]
/// hands it back and waits for the batch's commit. Dropped without a commit, it spoils the
/// batch (everything in it is rolled back).
pub struct Effect {
    tx: Option<Tx>,
    back: Option<oneshot::Sender<Returned>>,
    outcome: Option<oneshot::Receiver<Result<(), EffectError>>>,
}

impl Effect {
    pub async fn commit(mut self) -> Result<(), EffectError> {
        let tx = self
            .tx
            .take()
            .expect("effect holds its transaction until commit");
        let back = self.back.take().expect("effect holds its way back");
        let outcome = self.outcome.take().expect("effect holds its outcome");
        back.send(Returned { tx, complete: true })
            .map_err(|_| EffectError::LaneGone)?;
        outcome.await.unwrap_or(Err(EffectError::LaneGone))
    }
}

impl Deref for Effect {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        self.tx
            .as_ref()
            .expect("effect holds its transaction until commit")
    }
}

impl DerefMut for Effect {
    fn deref_mut(&mut self) -> &mut Tx {
        self.tx
            .as_mut()
            .expect("effect holds its transaction until commit")
    }
}

impl Drop for Effect {
    fn drop(&mut self) {
        if let (Some(tx), Some(back)) = (self.tx.take(), self.back.take()) {
            let _ = back.send(Returned {
                tx,
                complete: false,
            });
        }
    }
}

async fn run_lane(
    db: Db,
    mut requests: mpsc::UnboundedReceiver<Request>,
    batch_max: usize,
    stats: Arc<Stats>,
) {
    let mut pending: Option<Request> = None;
    'batches: loop {
        let first = match pending.take() {
            Some(r) => r,
            None => match requests.recv().await {
                Some(r) => r,
                None => return,
            },
        };
        if first.reply.is_closed() {
            continue;
        }
        let mut tx = match db.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                let _ = first.reply.send(Err(e));
                continue;
            }
        };
        let mut members: Vec<oneshot::Sender<Result<(), EffectError>>> = Vec::new();
        let mut spoiled = false;
        let mut next = Some(first);
        while let Some(request) = next.take() {
            let (back, returned) = oneshot::channel();
            let (tell, outcome) = oneshot::channel();
            match request.reply.send(Ok(Lent { tx, back, outcome })) {
                Ok(()) => {}
                Err(Ok(lent)) => {
                    // The job went away before it got the transaction: lend it on.
                    tx = lent.tx;
                    next = requests.try_recv().ok();
                    continue;
                }
                Err(Err(_)) => unreachable!("only lent transactions are sent"),
            }
            let Ok(Returned {
                tx: back_tx,
                complete,
            }) = returned.await
            else {
                // Lost with its borrower (cannot happen: `Effect`'s Drop returns it); the
                // dropped transaction rolls back, so the batch runs again.
                tracing::error!("a group-commit transaction was lost; its batch runs again");
                for member in members.drain(..) {
                    let _ = member.send(Err(EffectError::BatchRolledBack));
                }
                continue 'batches;
            };
            tx = back_tx;
            members.push(tell);
            if !complete {
                spoiled = true;
                break;
            }
            if members.len() < batch_max {
                next = requests.try_recv().ok();
            }
        }
        if members.is_empty() {
            let _ = tx.rollback().await;
            continue;
        }
        let outcome = if spoiled {
            let _ = tx.rollback().await;
            Err(EffectError::BatchRolledBack)
        } else {
            tx.commit()
                .await
                .map_err(|e| EffectError::Commit(e.to_string()))
        };
        metrics::histogram!("beian_effect_batch_size").record(members.len() as f64);
        if outcome.is_ok() {
            stats.committed(members.len());
        }
        for member in members {
            let _ = member.send(outcome.clone());
        }
        // A request that arrived while the batch was full starts the next one.
        if pending.is_none() {
            pending = requests.try_recv().ok();
        }
    }
}

/// Shared between a job's context and its runner: set when an effect committed the job's
/// completion with it, and when a group commit asked the job to run again.
#[derive(Default, Debug)]
pub struct EffectFlags {
    pub(crate) completed: std::sync::atomic::AtomicBool,
    pub(crate) rerun: std::sync::atomic::AtomicBool,
}

pub type SharedFlags = Arc<EffectFlags>;

/// The transaction of one job's effect (see [`crate::queue::JobContext::begin_effect`]); use it as a
/// [`Tx`]. Dropped without [`EffectTx::commit`], nothing of the effect is committed.
pub struct EffectTx {
    held: Held,
    flags: SharedFlags,
}

enum Held {
    Own(Tx),
    Shared(Effect),
}

impl EffectTx {
    pub(crate) fn own(tx: Tx, flags: SharedFlags) -> EffectTx {
        EffectTx {
            held: Held::Own(tx),
            flags,
        }
    }

    pub(crate) fn shared(effect: Effect, flags: SharedFlags) -> EffectTx {
        EffectTx {
            held: Held::Shared(effect),
            flags,
        }
    }

    /// Commits the effect with its idempotency record and the job's completion.
    pub async fn commit(self) -> Result<(), JobError> {
        self.finish(true).await
    }

    pub(crate) async fn finish(self, completes_job: bool) -> Result<(), JobError> {
        match self.held {
            Held::Own(tx) => tx.commit().await?,
            Held::Shared(effect) => {
                if let Err(e) = effect.commit().await {
                    if matches!(e, EffectError::BatchRolledBack) {
                        self.flags.rerun.store(true, Ordering::Relaxed);
                    }
                    return Err(e.into());
                }
            }
        }
        if completes_job {
            self.flags.completed.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl std::ops::Deref for EffectTx {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        match &self.held {
            Held::Own(tx) => tx,
            Held::Shared(effect) => effect,
        }
    }
}

impl std::ops::DerefMut for EffectTx {
    fn deref_mut(&mut self) -> &mut Tx {
        match &mut self.held {
            Held::Own(tx) => tx,
            Held::Shared(effect) => effect,
        }
    }
}

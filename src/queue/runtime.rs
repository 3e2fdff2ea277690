//! [`Runtime`]: the job runtime of one process, generic over the context `C` its jobs get.
//! The application builds it from what the runtime needs (database, clock, the [`Queue`]
//! handle with its settings, the [`Registry`] of job kinds, its context) and starts its
//! parts: workers ([`Runtime::run_workers`]), the scheduler ([`Runtime::run_scheduler`]),
//! and on AMQP the outbox relay (`amqp::run_relay`).

use std::sync::Arc;

use tokio::sync::watch;

use super::effects::EffectLanes;
use super::{Queue, Registry, Settings, amqp, cron, embedded, gauges, timers};
use crate::clock::Clock;
use crate::config::Transport;
use crate::store::Db;

pub struct Runtime<C> {
    app: Arc<C>,
    db: Db,
    clock: Clock,
    queue: Queue,
    registry: Arc<Registry<C>>,
    /// Group commit of job effects (see `queue::effects`).
    effects: Arc<EffectLanes>,
}

impl<C: Send + Sync + 'static> Runtime<C> {
    /// The runtime of `registry`'s jobs with context `app`; starts the group-commit lanes
    /// (`queue.effect_lanes`, `queue.effect_batch_max`) on the current Tokio runtime.
    pub fn new(
        app: Arc<C>,
        db: Db,
        clock: Clock,
        queue: Queue,
        registry: Registry<C>,
    ) -> Arc<Runtime<C>> {
        let settings = queue.settings().clone();
        let lanes = match settings.queue.effect_lanes {
            0 => EffectLanes::auto_count(db.backend()),
            n => n as usize,
        };
        let effects = Arc::new(EffectLanes::start(
            &db,
            lanes,
            settings.queue.effect_batch_max as usize,
        ));
        Arc::new(Runtime {
            app,
            db,
            clock,
            queue,
            registry: Arc::new(registry),
            effects,
        })
    }

    /// The same runtime (context, lanes, queue handle) with another set of job kinds
    /// (benchmarks and tests).
    pub fn with_registry(&self, registry: Registry<C>) -> Arc<Runtime<C>> {
        Arc::new(Runtime {
            app: self.app.clone(),
            db: self.db.clone(),
            clock: self.clock.clone(),
            queue: self.queue.clone(),
            registry: Arc::new(registry),
            effects: self.effects.clone(),
        })
    }

    pub fn app(&self) -> &C {
        &self.app
    }
    pub fn db(&self) -> &Db {
        &self.db
    }
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
    pub fn settings(&self) -> &Settings {
        self.queue.settings()
    }
    pub fn registry(&self) -> &Registry<C> {
        &self.registry
    }
    pub fn effects(&self) -> &EffectLanes {
        &self.effects
    }

    /// Runs workers for `queues` on the configured transport until `shutdown` turns true,
    /// then finishes or hands back what they hold within `shutdown.grace_seconds`.
    pub async fn run_workers(
        self: Arc<Self>,
        queues: Vec<String>,
        worker: String,
        shutdown: watch::Receiver<bool>,
    ) {
        match self.settings().queue.transport {
            Transport::Embedded => embedded::run(self, queues, worker, shutdown).await,
            Transport::Amqp => amqp::run_consumers(self, queues, worker, shutdown).await,
        }
    }

    /// Runs the scheduler until `shutdown`: durable timers and the cron `schedules`
    /// (see [`cron::schedules`]).
    pub async fn run_scheduler(
        self: Arc<Self>,
        schedules: Vec<cron::Schedule>,
        shutdown: watch::Receiver<bool>,
    ) {
        let timers = tokio::spawn(timers::run(self.clone(), shutdown.clone()));
        let cron = tokio::spawn(cron::run(self, schedules, shutdown.clone()));
        let _ = tokio::join!(timers, cron);
    }

    /// Reports the queue gauges (`beian_queue_depth`, `beian_timers_pending`) every few
    /// seconds until `shutdown`. Every process runs it, so any process's `/metrics` answers.
    pub async fn run_gauges(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        gauges::run(self, shutdown).await
    }
}

//! Startup: builds the shared [`Services`] from configuration and runs the parts a process
//! was asked for (API, workers, scheduler), then shuts them down gracefully on SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::config::{Config, Transport};
use crate::providers::{face::FaceProvider, sms::SmsGateway};
use crate::queue::effects::EffectLanes;
use crate::queue::{self, Queue, Registry};
use crate::store::{Backend, Db};

/// Everything handlers and jobs share.
pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Clock,
    pub queue: Queue,
    pub registry: Arc<Registry>,
    pub sms: SmsGateway,
    pub face: FaceProvider,
    /// The secret owner codes are derived from (`filing.code_secret`; never in the database;
    /// see `domain::filing::code`).
    pub code_key: Vec<u8>,
    /// Group commit of job effects (see `queue::effects`).
    pub effects: Arc<EffectLanes>,
}

impl Services {
    /// The same services with another set of job kinds (benchmarks and tests).
    pub fn with_registry(&self, registry: Registry) -> Arc<Services> {
        Arc::new(Services {
            config: self.config.clone(),
            db: self.db.clone(),
            clock: self.clock.clone(),
            queue: self.queue.clone(),
            registry: Arc::new(registry),
            sms: self.sms.clone(),
            face: self.face.clone(),
            code_key: self.code_key.clone(),
            effects: self.effects.clone(),
        })
    }

    /// The queue a job kind runs on.
    pub fn registry_queue(&self, kind: &str) -> Option<&'static str> {
        self.registry
            .kinds()
            .find(|(k, _)| *k == kind)
            .map(|(_, q)| q)
    }
}

/// Which parts a process runs.
#[derive(Debug, Clone)]
pub struct Parts {
    pub api: bool,
    pub workers: Option<Vec<String>>,
    pub scheduler: bool,
    /// Apply migrations at start (`serve`); other parts refuse an older schema.
    pub migrate: bool,
}

impl Parts {
    pub fn serve(config: &Config) -> Parts {
        Parts {
            api: true,
            workers: Some(all_queues()),
            scheduler: true,
            migrate: config.database.migrate_on_start,
        }
    }
}

pub fn all_queues() -> Vec<String> {
    crate::queue::QUEUES.iter().map(|q| q.to_string()).collect()
}

/// Connects, migrates or checks the schema, and sets up the clock and the services.
pub async fn build_services(config: Arc<Config>, migrate: bool) -> anyhow::Result<Arc<Services>> {
    let db = Db::connect(&config.database).await?;
    if migrate {
        db.migrate().await?;
    } else {
        db.check_schema().await?;
    }
    let clock = manual_or_system_clock(&config, &db).await?;
    let queue = Queue::new(config.clone(), db.backend());
    let registry = Arc::new(crate::workers::registry());
    let sms = SmsGateway::from_config(&config)?;
    let face = FaceProvider::from_config(&config)?;
    let code_key = config.filing.code_secret_bytes()?;
    let lanes = match config.queue.effect_lanes {
        0 => EffectLanes::auto_count(db.backend()),
        n => n as usize,
    };
    let effects = Arc::new(EffectLanes::start(
        &db,
        lanes,
        config.queue.effect_batch_max as usize,
    ));
    Ok(Arc::new(Services {
        config,
        db,
        clock,
        queue,
        registry,
        sms,
        face,
        code_key,
        effects,
    }))
}

async fn manual_or_system_clock(config: &Config, db: &Db) -> anyhow::Result<Clock> {
    if !config.clock.manual {
        return Ok(Clock::system());
    }
    let stored = crate::store::clock::load_offset(db).await?;
    let offset = match (stored, config.clock.start) {
        (Some(offset), _) => offset,
        (None, Some(start)) => {
            let offset = start.timestamp_millis() - chrono::Utc::now().timestamp_millis();
            crate::store::clock::raise_offset(db, offset).await?
        }
        (None, None) => 0,
    };
    tracing::warn!(
        "!!! THE MANUAL TEST CLOCK IS ON (clock.manual = true): anyone with the admin role can move \
         time with PUT /v1/test/clock. Never run this in production. !!!"
    );
    Ok(Clock::manual(offset))
}

/// A started process: its address, and the switch that stops it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub services: Arc<Services>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops taking work, lets jobs in hand finish (or hands them back) within
    /// `shutdown.grace_seconds`, then closes the HTTP server and the pool.
    pub async fn shutdown(self) {
        let grace = Duration::from_secs(self.services.config.shutdown.grace_seconds + 2);
        let _ = self.stop.send(true);
        let tasks = self.tasks;
        let _ = tokio::time::timeout(grace, async move {
            for task in tasks {
                let _ = task.await;
            }
        })
        .await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        self.services.db.close().await;
    }
}

/// Starts the requested parts and returns once the HTTP listener is bound.
pub async fn start(config: Config, parts: Parts) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let metrics = crate::telemetry::metrics_handle();
    let services = build_services(config.clone(), parts.migrate).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    if services.clock.is_manual() {
        tasks.push(tokio::spawn(follow_shared_clock(
            services.clone(),
            stop_rx.clone(),
        )));
    }
    if services.db.backend() == Backend::Postgres {
        tasks.push(tokio::spawn(listen_for_wakeups(
            services.clone(),
            stop_rx.clone(),
        )));
    }
    if config.queue.transport == Transport::Amqp {
        tasks.push(tokio::spawn(queue::amqp::run_relay(
            services.clone(),
            stop_rx.clone(),
        )));
    }
    if let Some(queues) = &parts.workers {
        let worker = queue::worker_name();
        tracing::info!(worker = %worker, queues = ?queues, transport = ?config.queue.transport, "workers starting");
        let registry = services.registry.clone();
        tasks.push(match config.queue.transport {
            Transport::Embedded => tokio::spawn(queue::embedded::run(
                services.clone(),
                registry,
                queues.clone(),
                worker,
                stop_rx.clone(),
            )),
            Transport::Amqp => tokio::spawn(queue::amqp::run_consumers(
                services.clone(),
                registry,
                queues.clone(),
                worker,
                stop_rx.clone(),
            )),
        });
    }
    if parts.scheduler {
        let schedules = queue::cron::schedules(&services)?;
        tasks.push(tokio::spawn(queue::timers::run(
            services.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(queue::cron::run(
            services.clone(),
            schedules,
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(report_gauges(
            services.clone(),
            stop_rx.clone(),
        )));
    }

    let tokens = api::auth::TokenKeys::from_config(&config.auth)?;
    let state = AppState {
        config: config.clone(),
        db: services.db.clone(),
        clock: services.clock.clone(),
        tokens,
        metrics,
        queue: services.queue.clone(),
        services: services.clone(),
    };
    let router = if parts.api {
        api::router(state)
    } else {
        api::ops_router(state)
    };
    let listener = TcpListener::bind(config.http.addr)
        .await
        .map_err(|e| anyhow::anyhow!("http.addr {}: {e}", config.http.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(addr = %addr, api = parts.api, "listening");

    let mut http_stop = stop_rx.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move { server.await });
    Ok(Running {
        addr,
        services,
        stop: stop_tx,
        tasks,
        server,
    })
}

/// Runs the requested parts until SIGTERM or SIGINT.
pub async fn run(config: Config, parts: Parts) -> anyhow::Result<()> {
    let running = start(config, parts).await?;
    tracing::info!(addr = %running.addr, "beian listening on http://{}", running.addr);
    shutdown_signal().await;
    tracing::info!(
        grace_seconds = running.services.config.shutdown.grace_seconds,
        "shutting down: no new work is taken"
    );
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Every process follows the shared manual clock: the offset is re-read from the database
/// a few times a second.
async fn follow_shared_clock(services: Arc<Services>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Ok(Some(offset)) = crate::store::clock::load_offset(&services.db).await {
            services.clock.adopt_offset(offset);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// PostgreSQL `LISTEN`: work enqueued and timers scheduled by other processes wake this one.
async fn listen_for_wakeups(services: Arc<Services>, mut stop: watch::Receiver<bool>) {
    let url = services.config.database.url.expose().to_string();
    while !*stop.borrow() {
        let mut listener = match sqlx::postgres::PgListener::connect(&url).await {
            Ok(l) => l,
            Err(_) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        if listener
            .listen_all(["beian_jobs", "beian_timers"])
            .await
            .is_err()
        {
            continue;
        }
        loop {
            tokio::select! {
                message = listener.try_recv() => match message {
                    Ok(Some(n)) if n.channel() == "beian_timers" => services.queue.timers_changed(),
                    Ok(Some(_)) => services.queue.wake(),
                    // Reconnected (notifications may have been missed): look for work anyway.
                    Ok(None) => { services.queue.wake(); services.queue.timers_changed(); }
                    Err(_) => break,
                },
                _ = stop.changed() => return,
            }
        }
    }
}

/// Queue depth and pending timers as gauges, every few seconds.
async fn report_gauges(services: Arc<Services>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Ok(counts) =
            crate::store::jobs::open_counts(&services.db, services.clock.now_ms()).await
        {
            for queue in crate::queue::QUEUES {
                for state in ["ready", "running", "scheduled", "retrying", "dead"] {
                    let n = counts
                        .iter()
                        .find(|(q, s, _)| q == queue && s == state)
                        .map(|(_, _, n)| *n)
                        .unwrap_or(0);
                    metrics::gauge!("beian_queue_depth", "queue" => *queue, "state" => state)
                        .set(n as f64);
                }
            }
        }
        if let Ok(n) = queue::timers::pending_count(&services).await {
            metrics::gauge!("beian_timers_pending").set(n as f64);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => {}
        }
    }
}

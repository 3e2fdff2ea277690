//! Startup: builds the shared [`Services`] and the job runtime from configuration, checks
//! configuration names against what this binary offers, runs the parts a process was asked
//! for (API, workers, scheduler), then shuts them down gracefully on SIGTERM. The pieces:
//! [`build`] (services, runtime), [`checks`] (`[jobs.*]`, `[cron.*]` names), [`background`]
//! (the shared test clock).

pub mod background;
pub mod build;
pub mod calendar;
pub mod checks;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::{Config, Transport};
use crate::queue::{self, Runtime};
use crate::services::Services;

pub use build::{build_runtime, build_services, runtime_settings};

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

/// Every queue of `spec/jobs.md` (`workers::QUEUES`).
pub fn all_queues() -> Vec<String> {
    crate::workers::QUEUES
        .iter()
        .map(|q| q.to_string())
        .collect()
}

/// A started process: its address, and the switch that stops it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub services: Arc<Services>,
    /// The job runtime (its registry is every job kind of `workers`).
    pub runtime: Arc<Runtime<Services>>,
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
    let cron_table = crate::workers::cron_table();
    checks::check_names(&config, crate::workers::QUEUES, &cron_table)?;
    let config = Arc::new(config);
    let metrics = crate::telemetry::metrics_handle();
    let services = build_services(config.clone(), parts.migrate).await?;
    let runtime = build_runtime(&services, crate::workers::registry());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    if services.clock.is_manual() {
        tasks.push(tokio::spawn(background::follow_shared_clock(
            services.clone(),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(queue::wakeups::run(
        services.db.clone(),
        services.queue.clone(),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(runtime.clone().run_gauges(stop_rx.clone())));
    if config.queue.transport == Transport::Amqp {
        tasks.push(tokio::spawn(queue::amqp::run_relay(
            runtime.clone(),
            stop_rx.clone(),
        )));
    }
    if let Some(queues) = &parts.workers {
        let worker = queue::worker_name();
        tracing::info!(worker = %worker, queues = ?queues, transport = ?config.queue.transport, "workers starting");
        tasks.push(tokio::spawn(runtime.clone().run_workers(
            queues.clone(),
            worker,
            stop_rx.clone(),
        )));
    }
    if parts.scheduler {
        let schedules = queue::cron::schedules(&config.cron, &cron_table)?;
        tasks.push(tokio::spawn(
            runtime.clone().run_scheduler(schedules, stop_rx.clone()),
        ));
        tasks.push(tokio::spawn(background::review_gauges(
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
    let mut router = if parts.api {
        api::router(state)
    } else {
        api::ops_router(state)
    };
    if parts.api && services.payments.is_simulated() {
        router = router.merge(crate::providers::simulator::router(
            services.payments.clone(),
        ));
    }
    let listener = TcpListener::bind(config.http.addr)
        .await
        .map_err(|e| anyhow::anyhow!("http.addr {}: {e}", config.http.addr))?;
    let addr = listener.local_addr()?;
    services.payments.set_self_url(self_url(addr));
    // An event, not a print: with `log.format = "json"` every line is a JSON object.
    tracing::info!(addr = %addr, api = parts.api, "beian listening on http://{addr}");

    let mut http_stop = stop_rx.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move { server.await });
    Ok(Running {
        addr,
        services,
        runtime,
        stop: stop_tx,
        tasks,
        server,
    })
}

/// How the service reaches itself (the simulators' pay links and notifications).
fn self_url(addr: std::net::SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", addr.port())
}

/// Runs the requested parts until SIGTERM or SIGINT.
pub async fn run(config: Config, parts: Parts) -> anyhow::Result<()> {
    let running = start(config, parts).await?;
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

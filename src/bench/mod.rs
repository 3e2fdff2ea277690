//! Benchmarks that print figures. `beian bench jobs`: throughput and latency of the job
//! runtime on the configured database and transport, with a job whose effect is one row
//! committed with its idempotency key. `beian bench timers`: see [`timers`].
//! `beian bench filings`: see [`filings`]. `beian bench reconcile`: see [`reconcile`].

mod filings;
pub mod reconcile;
mod timers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::Config;
use crate::queue::{self, Job, JobContext, JobError, Outcome, Registry, Runtime};
use crate::services::Services;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Enqueue N jobs (each with a DB effect) and drain them: jobs/s and enqueue->start latency.
    Jobs {
        #[arg(long, default_value_t = 20_000)]
        count: usize,
    },
    /// Schedule N durable timers due over the next seconds: firing lag (due -> job start).
    Timers {
        #[arg(long, default_value_t = 5_000)]
        count: usize,
        /// Spread the due times over this many seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
    /// Reconcile a generated WeChat Pay bill of N lines against N orders paid that day
    /// (scratch SQLite database): time and peak RSS.
    Reconcile {
        #[arg(long, default_value_t = 1_000_000)]
        lines: usize,
    },
    /// Submit filings over HTTP at a steady rate to a running copy of the service with a
    /// fake SMS gateway: submit -> code SMS latency p50/p99.
    Filings {
        /// Filings per second.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// How long to keep the rate up.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
}

/// The benchmark's job: one effect row with its idempotency record.
#[derive(Serialize, Deserialize)]
struct Touch {
    n: usize,
    enqueued_ms: i64,
}

impl Job for Touch {
    type Context = ();
    const NAME: &'static str = "bench.touch";
    const QUEUE: &'static str = "bench";
    fn key(&self) -> String {
        format!("bench-{}-{}", self.enqueued_ms, self.n)
    }
    async fn run(self, ctx: JobContext<()>) -> Result<Outcome, JobError> {
        let latency = ctx.clock().now_ms() - self.enqueued_ms;
        metrics::histogram!("beian_bench_latency_ms").record(latency as f64);
        let Some(tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        tx.commit().await?;
        LATENCIES.lock().expect("lock").push(latency);
        Ok(Outcome::Done)
    }
}

static LATENCIES: std::sync::Mutex<Vec<i64>> = std::sync::Mutex::new(Vec::new());

pub async fn run(config: Config, what: BenchCommand) -> anyhow::Result<()> {
    match what {
        BenchCommand::Jobs { count } => jobs(config, count).await,
        BenchCommand::Timers { count, seconds } => timers::run(config, count, seconds).await,
        BenchCommand::Filings { rate, seconds } => filings::run(config, rate, seconds).await,
        BenchCommand::Reconcile { lines } => reconcile::run(config, lines).await,
    }
}

async fn jobs(config: Config, count: usize) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let services = crate::app::build_services(config.clone(), true).await?;
    let mut registry = Registry::default();
    registry.register::<Touch>();
    let runtime = bench_runtime(&services, registry);
    LATENCIES.lock().expect("lock").clear();
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = start_workers(&runtime, Touch::QUEUE, stop_rx);
    let started = Instant::now();
    let now = services.clock.now_ms();
    for chunk_start in (0..count).step_by(500) {
        let batch: Vec<Touch> = (chunk_start..(chunk_start + 500).min(count))
            .map(|n| Touch {
                n,
                enqueued_ms: services.clock.now_ms(),
            })
            .collect();
        let mut tx = services.db.begin().await?;
        services.queue.enqueue_many(&mut tx, &batch, now).await?;
        tx.commit().await?;
        services.queue.wake();
    }
    let enqueue_secs = started.elapsed().as_secs_f64();
    loop {
        if LATENCIES.lock().expect("lock").len() >= count {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("benchmark did not drain within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let _ = workers.await;
    let mut lat = LATENCIES.lock().expect("lock").clone();
    lat.sort_unstable();
    let pct = |p: f64| quantile(&lat, p);
    println!(
        "bench jobs: database={:?} transport={:?} jobs={count} enqueue={:.0}/s drain={:.0} jobs/s \
         enqueue->start p50={} ms p99={} ms rss={} MiB",
        services.db.backend(),
        config.queue.transport,
        count as f64 / enqueue_secs,
        count as f64 / total,
        pct(0.50),
        pct(0.99),
        rss_mib()
    );
    Ok(())
}

/// A job runtime of the benchmark's own jobs, which need no application context: the
/// runtime knows no application.
fn bench_runtime(services: &Services, registry: Registry<()>) -> Arc<Runtime<()>> {
    Runtime::new(
        Arc::new(()),
        services.db.clone(),
        services.clock.clone(),
        services.queue.clone(),
        registry,
    )
}

/// Workers (and, on AMQP, the relay) for one queue, until `stop` turns true.
fn start_workers(
    runtime: &Arc<Runtime<()>>,
    queue_name: &str,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    if runtime.settings().queue.transport == crate::config::Transport::Amqp {
        tokio::spawn(queue::amqp::run_relay(runtime.clone(), stop.clone()));
    }
    tokio::spawn(runtime.clone().run_workers(
        vec![queue_name.to_string()],
        queue::worker_name(),
        stop,
    ))
}

/// The p-th quantile of sorted values.
fn quantile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Resident memory of this process, from /proc.
pub fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

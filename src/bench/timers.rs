//! `beian bench timers`: schedules N durable timers due evenly over the next seconds (in
//! batches, as handlers do, each in its transaction), runs the scheduler and the workers,
//! and measures the firing lag a user sees: from a timer's due time to its job starting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::Config;
use crate::queue::{self, Job, JobContext, JobError, Outcome, Registry};

/// The job a bench timer enqueues: records its lag, commits its effect.
#[derive(Serialize, Deserialize)]
struct TimerFired {
    n: usize,
    due_ms: i64,
}

static LAGS: Mutex<Vec<i64>> = Mutex::new(Vec::new());

impl Job for TimerFired {
    type Context = ();
    const NAME: &'static str = "bench.timer_fired";
    const QUEUE: &'static str = "bench";
    fn key(&self) -> String {
        format!("bench-timer-{}-{}", self.due_ms, self.n)
    }
    async fn run(self, ctx: JobContext<()>) -> Result<Outcome, JobError> {
        let lag = ctx.clock().now_ms() - self.due_ms;
        let Some(tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        tx.commit().await?;
        LAGS.lock().expect("lock").push(lag);
        Ok(Outcome::Done)
    }
}

pub async fn run(config: Config, count: usize, seconds: u32) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let services = crate::app::build_services(config.clone(), true).await?;
    let mut registry = Registry::default();
    registry.register::<TimerFired>();
    let runtime = super::bench_runtime(&services, registry);
    LAGS.lock().expect("lock").clear();
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = super::start_workers(&runtime, TimerFired::QUEUE, stop_rx.clone());
    let scheduler = tokio::spawn(queue::timers::run(runtime.clone(), stop_rx));

    // Due from 1 s from now, evenly over `seconds`.
    let start = services.clock.now_ms() + 1_000;
    let spread = seconds.max(1) as i64 * 1_000;
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        let now = services.clock.now_ms();
        let mut tx = services.db.begin().await?;
        for &n in chunk {
            let due_ms = start + spread * n as i64 / count.max(1) as i64;
            let job = TimerFired { n, due_ms };
            let key = job.key();
            services
                .queue
                .schedule_timer(&mut tx, &key, &job, due_ms, now)
                .await?;
        }
        tx.commit().await?;
    }
    services.queue.timers_changed();
    let deadline = std::time::Instant::now() + Duration::from_millis((spread + 120_000) as u64);
    while LAGS.lock().expect("lock").len() < count {
        if std::time::Instant::now() > deadline {
            anyhow::bail!("the timers did not all fire within two minutes of the last due time");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let _ = workers.await;
    let _ = scheduler.await;
    let mut lags = LAGS.lock().expect("lock").clone();
    lags.sort_unstable();
    println!(
        "bench timers: database={:?} transport={:?} timers={count} over {seconds} s \
         ({:.0}/s) firing lag (due -> job start) p50={} ms p99={} ms max={} ms rss={} MiB",
        services.db.backend(),
        config.queue.transport,
        count as f64 / seconds.max(1) as f64,
        super::quantile(&lags, 0.50),
        super::quantile(&lags, 0.99),
        lags.last().copied().unwrap_or(0),
        super::rss_mib()
    );
    Ok(())
}

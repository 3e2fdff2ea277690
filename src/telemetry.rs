//! Logs and metrics, set up once per process: tracing (pretty or JSON) and the Prometheus
//! recorder behind `/metrics`. Personal data never goes into a log field.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the log subscriber (once; later calls do nothing). Call it before anything of a
/// service starts, so that with `log.format = "json"` every line on stderr is JSON.
pub fn init_logging(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_env("BEIAN_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{},sqlx=warn,lapin=warn,hyper=warn,tower_http=warn",
            cfg.level
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match cfg.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    if installed.is_ok() && cfg.format == LogFormat::Json {
        // The default hook writes a plain-text line; with JSON logs a panic (a handler's,
        // caught and answered as a problem or a failed attempt) is one JSON event too.
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %payload, location = %location, "panicked");
        }));
    }
}

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "beian_jobs_total",
        "jobs finished, by queue, job kind and outcome (done, retried, dead, duplicate)"
    );
    metrics::describe_gauge!("beian_queue_depth", "jobs by queue and state");
    metrics::describe_histogram!(
        "beian_job_wait_seconds",
        "time from a job being due to its start"
    );
    metrics::describe_histogram!("beian_job_run_seconds", "time a job's handler ran");
    metrics::describe_gauge!("beian_timers_pending", "durable timers not yet fired");
    metrics::describe_histogram!(
        "beian_timer_lag_seconds",
        "time from a timer's due time to its firing"
    );
    metrics::describe_counter!(
        "beian_cron_slots_total",
        "cron slots this process claimed and enqueued, by schedule"
    );
    metrics::describe_counter!(
        "beian_http_requests_total",
        "HTTP requests by route template and status"
    );
    metrics::describe_histogram!(
        "beian_http_request_duration_seconds",
        "HTTP request duration by route template"
    );
}

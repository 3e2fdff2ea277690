//! Promises that need separate `beian` processes: a worker killed with SIGKILL mid-job (the
//! job runs again elsewhere and has one effect), two schedulers (each timer fires once), and
//! three schedulers (each cron slot is enqueued once). The processes are the real binary.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use beian::app::Parts;
use beian::providers::sms::SmsMessage;
use beian::workers::sms_send::SmsSend;
use common::{
    Backend, amqp_overrides, amqp_url, eventually, fresh_postgres_database, require_rabbitmq,
    spawn_parts,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `beian` process with its configuration in the environment.
struct Process {
    child: Child,
    port: u16,
}

impl Process {
    fn start(args: &[&str], env: &[(String, String)]) -> Process {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_beian"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BEIAN__HTTP__ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start beian");
        Process { child, port }
    }

    async fn metric(&self, name: &str) -> f64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let text = match reqwest::get(&url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => return 0.0,
        };
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum()
    }

    async fn healthy(&self) {
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        eventually(30, "a beian process to answer /healthz", || async {
            reqwest::get(&url)
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await;
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// The environment every process of one test shares (the database, the transport).
fn shared_env(
    db_url: &str,
    dir: &std::path::Path,
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env = vec![
        ("BEIAN__DATABASE__URL".to_string(), db_url.to_string()),
        ("BEIAN__DATA_DIR".into(), dir.display().to_string()),
        ("BEIAN__CLOCK__MANUAL".into(), "true".into()),
        ("BEIAN__AUTH__JWT_SECRET".into(), common::JWT_SECRET.into()),
        ("BEIAN__LOG__LEVEL".into(), "warn".into()),
        ("BEIAN__QUEUE__LEASE_SECONDS".into(), "2".into()),
        ("BEIAN__QUEUE__POLL_INTERVAL_MS".into(), "100".into()),
        ("BEIAN__SHUTDOWN__GRACE_SECONDS".into(), "2".into()),
    ];
    env.extend(extra.iter().cloned());
    env
}

/// A gateway that holds the first request it gets (the worker is killed while waiting)
/// and accepts the rest.
async fn holding_gateway() -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/sms"), seen)
}

async fn killed_worker_job_completes_once(backend: Backend) {
    let (db_url, db_name) = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let (gateway, seen) = holding_gateway().await;
    let mut extra = vec![
        ("BEIAN__SMS__PROVIDER".to_string(), "webhook".to_string()),
        ("BEIAN__SMS__WEBHOOK_URL".into(), gateway),
        ("BEIAN__SMS__WEBHOOK_SECRET".into(), "s".into()),
    ];
    if backend == Backend::PostgresAmqp {
        require_rabbitmq();
        extra.extend(amqp_overrides(&amqp_url()));
    }
    let env = shared_env(&db_url, dir.path(), &extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The API alone in this process (it migrates): the work happens in worker processes.
    let parts = Parts {
        api: true,
        workers: None,
        scheduler: false,
        migrate: true,
    };
    let app = spawn_parts(
        db_url.clone(),
        Some(db_name),
        tempfile::tempdir().unwrap(),
        &pairs,
        Some(parts),
    )
    .await;
    let services = app.services().clone();

    let mut first = Process::start(&["worker", "--queues", "sms"], &env);
    first.healthy().await;
    let message = SmsMessage {
        message_id: "kill-9-test".into(),
        phone: "13800000000".into(),
        template: "filing_decision".into(),
        params: Default::default(),
    };
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    services
        .queue
        .enqueue(
            &mut tx,
            &SmsSend {
                message,
                code: None,
            },
            now,
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    services.queue.wake();

    eventually(
        30,
        "the first worker to be mid-job (gateway holding it)",
        || async { (seen.load(Ordering::SeqCst) >= 1).then_some(()) },
    )
    .await;
    first.kill_9();
    let second = Process::start(&["worker", "--queues", "sms"], &env);
    second.healthy().await;
    let done = eventually(60, "the job to complete in the second worker", || async {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM jobs WHERE idem_key = 'kill-9-test'")
                .fetch_optional(services.db.pool())
                .await
                .unwrap();
        (state.as_deref() == Some("done")).then_some(())
    });
    done.await;
    let effects: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM job_effects WHERE idem_key = 'kill-9-test'")
            .fetch_one(services.db.pool())
            .await
            .unwrap();
    assert_eq!(effects, 1, "one effect");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "sent again with the same message_id after the crash, once"
    );
    drop(second);
    app.stop().await;
}

/// Promise 4, second half: SIGTERM stops taking work and hands back what the worker holds
/// within `shutdown.grace_seconds`; another worker then finishes it once.
async fn sigterm_hands_back_held_jobs(backend: Backend) {
    let (db_url, db_name) = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let (gateway, seen) = holding_gateway().await;
    let mut extra = vec![
        ("BEIAN__SMS__PROVIDER".to_string(), "webhook".to_string()),
        ("BEIAN__SMS__WEBHOOK_URL".into(), gateway),
        ("BEIAN__SMS__WEBHOOK_SECRET".into(), "s".into()),
    ];
    if backend == Backend::PostgresAmqp {
        require_rabbitmq();
        extra.extend(amqp_overrides(&amqp_url()));
    }
    let env = shared_env(&db_url, dir.path(), &extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let parts = Parts {
        api: true,
        workers: None,
        scheduler: false,
        migrate: true,
    };
    let app = spawn_parts(
        db_url.clone(),
        Some(db_name),
        tempfile::tempdir().unwrap(),
        &pairs,
        Some(parts),
    )
    .await;
    let services = app.services().clone();
    let mut first = Process::start(&["worker", "--queues", "sms"], &env);
    first.healthy().await;
    let message = SmsMessage {
        message_id: "sigterm-test".into(),
        phone: "13800000001".into(),
        template: "filing_decision".into(),
        params: Default::default(),
    };
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    services
        .queue
        .enqueue(
            &mut tx,
            &SmsSend {
                message,
                code: None,
            },
            now,
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    services.queue.wake();
    eventually(30, "the worker to be mid-job", || async {
        (seen.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;

    let pid = first.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = std::time::Instant::now();
    let exited = loop {
        if let Some(status) = first.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the worker did not stop within its grace period"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "a graceful stop exits 0: {exited:?}");
    let (state, attempts): (String, i64) = {
        let row: (String, i64) =
            sqlx::query_as("SELECT state, attempts FROM jobs WHERE idem_key = 'sigterm-test'")
                .fetch_one(services.db.pool())
                .await
                .unwrap();
        row
    };
    assert_eq!(
        (state.as_str(), attempts),
        ("queued", 0),
        "handed back, the interrupted attempt not counted"
    );
    if backend == Backend::PostgresAmqp {
        // On AMQP a first delivery runs without claiming its row, so the row says "queued"
        // whatever the worker did: what hands the job back is the message, unacked and
        // back in the broker's queue, waiting for the next consumer.
        let prefix = env
            .iter()
            .find(|(k, _)| k == "BEIAN__QUEUE__AMQP_PREFIX")
            .map(|(_, v)| v.clone())
            .unwrap();
        let (messages, consumers) =
            eventually(10, "the message back in the broker's queue", || {
                let queue = format!("{prefix}.sms");
                async move {
                    let counts = broker_queue_counts(&queue).await;
                    (counts.0 == 1).then_some(counts)
                }
            })
            .await;
        assert_eq!((messages, consumers), (1, 0));
    } else {
        let published: bool = beian::store::get_bool(
            &sqlx::query("SELECT published FROM jobs WHERE idem_key = 'sigterm-test'")
                .fetch_one(services.db.pool())
                .await
                .unwrap(),
            "published",
        )
        .unwrap();
        assert!(!published, "handed back to the embedded claim loops");
    }

    let second = Process::start(&["worker", "--queues", "sms"], &env);
    second.healthy().await;
    eventually(
        60,
        "another worker to finish the handed-back job",
        || async {
            let state: String =
                sqlx::query_scalar("SELECT state FROM jobs WHERE idem_key = 'sigterm-test'")
                    .fetch_one(services.db.pool())
                    .await
                    .unwrap();
            (state == "done").then_some(())
        },
    )
    .await;
    let effects: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM job_effects WHERE idem_key = 'sigterm-test'")
            .fetch_one(services.db.pool())
            .await
            .unwrap();
    assert_eq!(effects, 1);
    drop(second);
    app.stop().await;
}

async fn two_schedulers_fire_each_timer_once(backend: Backend) {
    let (db_url, db_name) = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let mut extra = Vec::new();
    if backend == Backend::PostgresAmqp {
        require_rabbitmq();
        extra.extend(amqp_overrides(&amqp_url()));
    }
    let env = shared_env(&db_url, dir.path(), &extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let parts = Parts {
        api: true,
        workers: None,
        scheduler: false,
        migrate: true,
    };
    let app = spawn_parts(
        db_url,
        Some(db_name),
        tempfile::tempdir().unwrap(),
        &pairs,
        Some(parts),
    )
    .await;
    let services = app.services().clone();
    let a = Process::start(&["scheduler"], &env);
    let b = Process::start(&["scheduler"], &env);
    a.healthy().await;
    b.healthy().await;

    const TIMERS: usize = 200;
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    for n in 0..TIMERS {
        let job = beian::workers::maintenance::Prune { slot_ms: n as i64 };
        services
            .queue
            .schedule_timer(
                &mut tx,
                &format!("timer-test-{n}"),
                &job,
                now + 500 + (n as i64 % 10) * 50,
                now,
            )
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    eventually(30, "every timer fired", || async {
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM timers WHERE state = 'pending'")
                .fetch_one(services.db.pool())
                .await
                .unwrap();
        (pending == 0).then_some(())
    })
    .await;
    let fired_a = a.metric("beian_timer_lag_seconds_count").await;
    let fired_b = b.metric("beian_timer_lag_seconds_count").await;
    assert_eq!(
        fired_a + fired_b,
        TIMERS as f64,
        "each timer fired once across both schedulers ({fired_a} + {fired_b})"
    );
    let jobs: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE idem_key LIKE 'timer-test-%'")
            .fetch_one(services.db.pool())
            .await
            .unwrap();
    assert_eq!(jobs, TIMERS as i64);
    drop((a, b));
    app.stop().await;
}

async fn three_processes_enqueue_each_cron_slot_once(backend: Backend) {
    let (db_url, db_name) = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let mut extra = vec![(
        "BEIAN__CRON__MAINTENANCE_PRUNE".to_string(),
        "* * * * *".to_string(),
    )];
    if backend == Backend::PostgresAmqp {
        require_rabbitmq();
        extra.extend(amqp_overrides(&amqp_url()));
    }
    let env = shared_env(&db_url, dir.path(), &extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let parts = Parts {
        api: true,
        workers: None,
        scheduler: false,
        migrate: true,
    };
    let app = spawn_parts(
        db_url,
        Some(db_name),
        tempfile::tempdir().unwrap(),
        &pairs,
        Some(parts),
    )
    .await;
    let services = app.services().clone();
    // Move the shared clock a minute at a time: each move makes exactly one new slot due.
    // Moves land a few seconds into a minute, so the real time a test takes never crosses
    // a minute on its own.
    let admin = Some(("ops", beian::api::auth::Role::Admin));
    let to_next_minute = || async {
        let (_, now) = app.get("/v1/test/clock", admin).await;
        let now = chrono::DateTime::parse_from_rfc3339(now["now"].as_str().unwrap()).unwrap();
        let minute = now.timestamp() - now.timestamp().rem_euclid(60);
        let next = chrono::DateTime::from_timestamp(minute + 60 + 5, 0).unwrap();
        let (status, _) = app
            .put(
                "/v1/test/clock",
                admin,
                &serde_json::json!({"now": next.to_rfc3339()}),
            )
            .await;
        assert_eq!(status, 200);
    };
    to_next_minute().await;
    let schedulers: Vec<Process> = (0..3)
        .map(|_| Process::start(&["scheduler"], &env))
        .collect();
    for s in &schedulers {
        s.healthy().await;
    }
    let count_slots = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM cron_slots WHERE name = 'maintenance_prune'",
        )
        .fetch_one(services.db.pool())
        .await
        .unwrap()
    };
    // At start each scheduler catches up the slot of the current minute: one slot.
    eventually(20, "the caught-up slot", || async {
        (count_slots().await == 1).then_some(())
    })
    .await;
    for moved in 1..=3 {
        to_next_minute().await;
        eventually(
            20,
            "the slot of the minute the clock moved into",
            || async { (count_slots().await == 1 + moved).then_some(()) },
        )
        .await;
    }
    let slots = count_slots().await;
    assert_eq!(slots, 4, "the caught-up slot and one per minute moved");
    // A process counts its slot just after its commit: wait for the counts to settle.
    let claimed = eventually(10, "every claimed slot counted", || async {
        let mut claimed = 0.0;
        for s in &schedulers {
            // This schedule's slots only (the binary has other schedules, e.g. payment_query).
            claimed += s
                .metric("beian_cron_slots_total{schedule=\"maintenance_prune\"}")
                .await;
        }
        (claimed >= slots as f64).then_some(claimed)
    })
    .await;
    assert_eq!(
        claimed, slots as f64,
        "each slot enqueued by exactly one of three processes"
    );
    let jobs: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'maintenance.prune'")
            .fetch_one(services.db.pool())
            .await
            .unwrap();
    assert_eq!(jobs, slots, "one job per slot");
    drop(schedulers);
    app.stop().await;
}

/// (ready messages, consumers) of a broker queue.
async fn broker_queue_counts(queue: &str) -> (u32, u32) {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let declared = channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let counts = (declared.message_count(), declared.consumer_count());
    let _ = connection.close(200, "bye".into()).await;
    counts
}

macro_rules! on_postgres_and_amqp {
    ($($name:ident => $body:ident;)+) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$body(super::Backend::Postgres).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres_amqp() {
                    super::$body(super::Backend::PostgresAmqp).await
                }
            }
        )+
    };
}

on_postgres_and_amqp! {
    worker_killed_mid_job => killed_worker_job_completes_once;
    worker_sigterm => sigterm_hands_back_held_jobs;
    two_schedulers => two_schedulers_fire_each_timer_once;
    three_cron_processes => three_processes_enqueue_each_cron_slot_once;
}

/// A gateway that takes `hold` to answer each request and records every `message_id` it
/// was sent (a repeat is a code texted twice).
async fn slow_recording_gateway(hold: Duration) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |body: axum::body::Bytes| {
            let record = record.clone();
            async move {
                let message: serde_json::Value = serde_json::from_slice(&body).unwrap();
                record
                    .lock()
                    .unwrap()
                    .push(message["message_id"].as_str().unwrap().to_string());
                tokio::time::sleep(hold).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/sms"), seen)
}

/// Promise 4 on RabbitMQ with two workers: SIGTERM to one of them while it is sending lets
/// the sends in hand finish and be acked before its connection closes, so the other worker
/// never gets those messages back and nothing is texted twice; the worker exits 0 within
/// its grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_amqp_sends_nothing_twice() {
    require_rabbitmq();
    let (db_url, db_name) = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let (gateway, seen) = slow_recording_gateway(Duration::from_millis(1500)).await;
    let mut extra = vec![
        ("BEIAN__SMS__PROVIDER".to_string(), "webhook".to_string()),
        ("BEIAN__SMS__WEBHOOK_URL".into(), gateway),
        ("BEIAN__SMS__WEBHOOK_SECRET".into(), "s".into()),
        ("BEIAN__JOBS__SMS__CONCURRENCY".into(), "4".into()),
        ("BEIAN__JOBS__SMS__PREFETCH".into(), "4".into()),
        ("BEIAN__QUEUE__AMQP_JOBS_PER_MESSAGE".into(), "1".into()),
    ];
    extra.extend(amqp_overrides(&amqp_url()));
    let mut env = shared_env(&db_url, dir.path(), &extra);
    env.retain(|(k, _)| {
        k != "BEIAN__SHUTDOWN__GRACE_SECONDS" && k != "BEIAN__QUEUE__LEASE_SECONDS"
    });
    env.push(("BEIAN__SHUTDOWN__GRACE_SECONDS".into(), "10".into()));
    env.push(("BEIAN__QUEUE__LEASE_SECONDS".into(), "30".into()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let parts = Parts {
        api: true,
        workers: None,
        scheduler: false,
        migrate: true,
    };
    let app = spawn_parts(
        db_url.clone(),
        Some(db_name),
        tempfile::tempdir().unwrap(),
        &pairs,
        Some(parts),
    )
    .await;
    let services = app.services().clone();
    let mut first = Process::start(&["worker", "--queues", "sms"], &env);
    let second = Process::start(&["worker", "--queues", "sms"], &env);
    first.healthy().await;
    second.healthy().await;

    // Few enough that both workers have room: a message returned by the first is taken at
    // once by the second.
    const SENDS: usize = 4;
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    for i in 0..SENDS {
        let message = SmsMessage {
            message_id: format!("sigterm-amqp-{i}"),
            phone: "13800000002".into(),
            template: "filing_decision".into(),
            params: Default::default(),
        };
        services
            .queue
            .enqueue(
                &mut tx,
                &SmsSend {
                    message,
                    code: None,
                },
                now,
            )
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    services.queue.wake();
    eventually(30, "every send in hand", || async {
        (seen.lock().unwrap().len() >= SENDS).then_some(())
    })
    .await;

    let pid = first.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = std::time::Instant::now();
    let exited = loop {
        if let Some(status) = first.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(14),
            "the worker did not stop within its grace period"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "a graceful stop exits 0: {exited:?}");

    eventually(60, "every send done", || async {
        let done: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'sms.send' AND state = 'done'",
        )
        .fetch_one(services.db.pool())
        .await
        .unwrap();
        (done == SENDS as i64).then_some(())
    })
    .await;
    let mut sent = seen.lock().unwrap().clone();
    sent.sort();
    let mut once = sent.clone();
    once.dedup();
    assert_eq!(
        sent.len(),
        once.len(),
        "message ids sent more than once: {:?}",
        sent.iter()
            .filter(|id| sent.iter().filter(|s| s == id).count() > 1)
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert_eq!(once.len(), SENDS);
    drop(second);
    app.stop().await;
}

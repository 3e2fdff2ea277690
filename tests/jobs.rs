//! The job runtime's promises on the embedded transport, on SQLite and PostgreSQL, driven
//! through the real service (admin API over HTTP) with a test job on a queue of its own.

mod common;

use std::sync::Arc;

use beian::api::auth::Role;
use beian::queue::{Job, JobContext, JobError, Outcome, Registry, Runtime};
use beian::services::Services;
use common::{Backend, eventually, spawn_app_with};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

/// Per job tag: how many runs fail (tests run in parallel, each with its own tags).
static FAIL_UNTIL: std::sync::Mutex<Vec<(String, usize)>> = std::sync::Mutex::new(Vec::new());
static RUNS: std::sync::Mutex<Vec<(String, usize)>> = std::sync::Mutex::new(Vec::new());

fn fail_until(tag: &str, runs: usize) {
    let mut map = FAIL_UNTIL.lock().unwrap();
    map.retain(|(t, _)| t != tag);
    map.push((tag.to_string(), runs));
}

fn next_run(tag: &str) -> (usize, usize) {
    let mut runs = RUNS.lock().unwrap();
    let run = match runs.iter_mut().find(|(t, _)| t == tag) {
        Some((_, n)) => {
            *n += 1;
            *n
        }
        None => {
            runs.push((tag.to_string(), 1));
            1
        }
    };
    let limit = FAIL_UNTIL
        .lock()
        .unwrap()
        .iter()
        .find(|(t, _)| t == tag)
        .map(|(_, n)| *n)
        .unwrap_or(0);
    (run, limit)
}

/// Fails (retryably, or permanently when asked) until `FAIL_UNTIL` runs have happened; its
/// effect is a row in `job_effects` under its key.
#[derive(Serialize, Deserialize)]
struct Flaky {
    tag: String,
    permanent: bool,
}

impl Job for Flaky {
    type Context = Services;
    const NAME: &'static str = "test.flaky";
    const QUEUE: &'static str = "testq";
    fn key(&self) -> String {
        self.tag.clone()
    }
    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let (run, limit) = next_run(&self.tag);
        if run <= limit {
            return Err(if self.permanent {
                JobError::permanent("bad data")
            } else {
                JobError::retry(format!("flaked on run {run}"))
            });
        }
        let Some(tx) = ctx.begin_effect(Self::NAME, &self.tag).await? else {
            return Ok(Outcome::Duplicate);
        };
        tx.commit().await?;
        Ok(Outcome::Done)
    }
}

/// Runs longer than its lease; counts its runs per tag.
#[derive(Serialize, Deserialize)]
struct Slow {
    tag: String,
}

impl Job for Slow {
    type Context = Services;
    const NAME: &'static str = "test.slow";
    const QUEUE: &'static str = "testq";
    fn key(&self) -> String {
        self.tag.clone()
    }
    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        next_run(&self.tag);
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        let Some(tx) = ctx.begin_effect(Self::NAME, &self.tag).await? else {
            return Ok(Outcome::Duplicate);
        };
        tx.commit().await?;
        Ok(Outcome::Done)
    }
}

/// Dies at once, quoting personal data in its error (as a gateway's refusal might).
#[derive(Serialize, Deserialize)]
struct Refused {
    tag: String,
    phone: String,
    id_number: String,
}

impl Job for Refused {
    type Context = Services;
    const NAME: &'static str = "test.refused";
    const QUEUE: &'static str = "testq";
    fn key(&self) -> String {
        self.tag.clone()
    }
    async fn run(self, _ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        Err(JobError::permanent(format!(
            "the gateway refused {} (holder {})",
            self.phone, self.id_number
        )))
    }
}

fn runs_of(tag: &str) -> usize {
    RUNS.lock()
        .unwrap()
        .iter()
        .find(|(t, _)| t == tag)
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

/// The app's runtime with the test jobs instead of the app's.
fn runtime_with_test_jobs(app: &common::TestApp) -> Arc<Runtime<Services>> {
    let mut registry = Registry::default();
    registry
        .register::<Flaky>()
        .register::<Slow>()
        .register::<Refused>();
    app.runtime().with_registry(registry)
}

async fn enqueue(services: &Services, job: &Flaky) {
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    services.queue.enqueue(&mut tx, job, now).await.unwrap();
    tx.commit().await.unwrap();
    services.queue.wake();
}

async fn effects(services: &Services, tag: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM job_effects WHERE idem_key = $1")
        .bind(tag)
        .fetch_one(services.db.pool())
        .await
        .unwrap()
}

const ADMIN: Option<(&str, Role)> = Some(("ops", Role::Admin));

/// Claim loops for the test queue, with their own handler list.
struct TestWorkers {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl TestWorkers {
    fn start(runtime: &Arc<Runtime<Services>>, name: &str) -> TestWorkers {
        let (stop, stopped) = watch::channel(false);
        let queues = vec!["testq".to_string()];
        let handle = tokio::spawn(runtime.clone().run_workers(queues, name.into(), stopped));
        TestWorkers { stop, handle }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}
const FAST_RETRIES: &[(&str, &str)] = &[
    ("BEIAN__JOBS__DEFAULT__MAX_ATTEMPTS", "3"),
    ("BEIAN__JOBS__DEFAULT__BACKOFF_BASE_MS", "10"),
    ("BEIAN__JOBS__DEFAULT__BACKOFF_CAP_MS", "40"),
];

/// Promise 3: retries with backoff; after the last attempt the job is dead with every
/// attempt's error; the admin API lists it and replays it, and the replay runs.
/// Also promise 2: the replayed run commits its effect once.
async fn retries_then_dead_then_replayed(backend: Backend) {
    let app = spawn_app_with(backend, FAST_RETRIES).await;
    let services = app.services().clone();
    let workers = TestWorkers::start(&runtime_with_test_jobs(&app), "w1");
    let tag = format!("retry-{backend:?}");
    fail_until(&tag, 1000);
    enqueue(
        &services,
        &Flaky {
            tag: tag.clone(),
            permanent: false,
        },
    )
    .await;

    let dead = eventually(20, "the job to be dead after 3 attempts", || async {
        let (_, list) = app.get("/v1/admin/jobs?state=dead", ADMIN).await;
        list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|j| j["key"] == tag.as_str()).cloned())
    })
    .await;
    assert_eq!(dead["attempts"], 3);
    let history = dead["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "every attempt is kept: {dead}");
    assert!(history.iter().all(|h| h["error"].as_str().unwrap().contains("flaked") && h["started_at"].is_string()));
    assert_eq!(effects(&services, &tag).await, 0);
    let (_, overview) = app.get("/v1/admin/queues", ADMIN).await;
    let testq = overview["items"]
        .as_array()
        .and_then(|items| items.iter().find(|q| q["queue"] == "testq"))
        .unwrap_or_else(|| panic!("the overview lists every queue holding jobs: {overview}"));
    assert_eq!(testq["dead"], 1, "{testq}");
    assert_eq!(testq["ready"], 0, "{testq}");
    // The depth gauge's counts (partial indexes only) see the dead job.
    let counts = beian::store::jobs::open_counts(&services.db, services.clock.now_ms())
        .await
        .unwrap();
    assert!(
        counts.contains(&("testq".to_string(), "dead".to_string(), 1)),
        "{counts:?}"
    );

    fail_until(&tag, 0);
    let path = format!("/v1/admin/jobs/{}/retry", dead["id"].as_str().unwrap());
    let key = uuid::Uuid::new_v4().to_string();
    let replay = || {
        app.request(reqwest::Method::POST, &path, ADMIN)
            .header("Idempotency-Key", key.clone())
            .send()
    };
    let first = replay().await.unwrap();
    assert_eq!(first.status().as_u16(), 202);
    let second = replay().await.unwrap();
    assert_eq!(
        second.status().as_u16(),
        202,
        "the same key replays the first answer"
    );
    assert_eq!(
        second
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    eventually(20, "the replayed job to commit its effect", || async {
        (effects(&services, &tag).await == 1).then_some(())
    })
    .await;
    let (status, problem) = app.post(&path, ADMIN, &Value::Null).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("job_not_dead"))
    );
    let (status, _) = app
        .post("/v1/admin/jobs/nope/retry", ADMIN, &Value::Null)
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        app.get("/v1/admin/jobs?state=dead", Some(("u", Role::User)))
            .await
            .0,
        403
    );
    assert_eq!(app.get("/v1/admin/queues", None).await.0, 401);
    workers.stop().await;
    app.stop().await;
}

/// Promise 3: an error marked permanent goes straight to dead (one attempt).
async fn permanent_error_goes_straight_to_dead(backend: Backend) {
    let app = spawn_app_with(backend, FAST_RETRIES).await;
    let services = app.services().clone();
    let workers = TestWorkers::start(&runtime_with_test_jobs(&app), "w1");
    let tag = format!("permanent-{backend:?}");
    fail_until(&tag, 1000);
    enqueue(
        &services,
        &Flaky {
            tag: tag.clone(),
            permanent: true,
        },
    )
    .await;
    let dead = eventually(20, "the job to be dead", || async {
        let (_, list) = app
            .get("/v1/admin/jobs?state=dead&queue=testq", ADMIN)
            .await;
        list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|j| j["key"] == tag.as_str()).cloned())
    })
    .await;
    assert_eq!(dead["attempts"], 1);
    assert!(dead["last_error"].as_str().unwrap().contains("permanent"));
    if services.config.queue.transport == beian::config::Transport::Amqp {
        // The dead-letter exchange takes a copy: the dead job's id reaches its queue.
        let id = dead["id"].as_str().unwrap().to_string();
        let dead_letters = format!("{}.dead", services.config.queue.amqp_prefix);
        let connection = lapin::Connection::connect(
            services.config.queue.amqp_url.expose(),
            lapin::ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let copied = eventually(20, "the dead job's id in the dead-letter queue", || async {
            let got = channel
                .basic_get(
                    dead_letters.as_str().into(),
                    lapin::options::BasicGetOptions { no_ack: true },
                )
                .await
                .unwrap()?;
            Some(String::from_utf8_lossy(&got.delivery.data).to_string())
        })
        .await;
        assert!(copied.lines().any(|line| line == id), "{copied}");
        let _ = connection.close(200, "bye".into()).await;
    }
    workers.stop().await;
    app.stop().await;
}

/// A deployment moving from RabbitMQ back to the embedded transport: a queued job that was
/// handed to the broker is taken back by the embedded workers and runs (promise 1).
async fn job_handed_to_a_broker_runs_after_moving_to_embedded(backend: Backend) {
    let app = spawn_app_with(backend, FAST_RETRIES).await;
    let services = app.services().clone();
    let runtime = runtime_with_test_jobs(&app);
    let tag = format!("adopted-{backend:?}");
    enqueue(
        &services,
        &Flaky {
            tag: tag.clone(),
            permanent: false,
        },
    )
    .await;
    sqlx::query("UPDATE jobs SET published = $1 WHERE idem_key = $2")
        .bind(true)
        .bind(&tag)
        .execute(services.db.pool())
        .await
        .unwrap();
    let workers = TestWorkers::start(&runtime, "w1");
    eventually(20, "the job once handed to a broker to run", || async {
        (effects(&services, &tag).await == 1).then_some(())
    })
    .await;
    workers.stop().await;
    app.stop().await;
}

/// Joins a group commit (`queue::effects`); the one with `spoil` fails inside its effect.
#[derive(Serialize, Deserialize)]
struct Grouped {
    tag: String,
    spoil: bool,
}

impl Job for Grouped {
    type Context = Services;
    const NAME: &'static str = "test.grouped";
    const QUEUE: &'static str = "testq";
    fn key(&self) -> String {
        self.tag.clone()
    }
    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(tx) = ctx.begin_effect(Self::NAME, &self.tag).await? else {
            return Ok(Outcome::Duplicate);
        };
        if self.spoil {
            drop(tx);
            return Err(JobError::permanent("failed inside its effect"));
        }
        tx.commit().await?;
        Ok(Outcome::Done)
    }
}

/// Promise 2 with group commit: effects share commits (one lane, 16 jobs at once); one job
/// failing inside its effect spoils the transaction it shared with others; they run again
/// at once, alone, and every effect commits exactly once, with no attempt counted for the
/// re-run. The failing job is dead, with no effect.
async fn one_failing_effect_loses_nothing_of_its_batch(backend: Backend) {
    let mut overrides = FAST_RETRIES.to_vec();
    overrides.extend([
        ("BEIAN__QUEUE__EFFECT_LANES", "1"),
        ("BEIAN__JOBS__DEFAULT__CONCURRENCY", "16"),
    ]);
    let app = spawn_app_with(backend, &overrides).await;
    let mut registry = Registry::default();
    registry.register::<Grouped>();
    let services = app.services().clone();
    let runtime = app.runtime().with_registry(registry);
    let before = runtime.effects().counts();
    let prefix = format!("grouped-{}", uuid::Uuid::new_v4().simple());
    let jobs: Vec<Grouped> = (0..60)
        .map(|n| Grouped {
            tag: format!("{prefix}-{n}"),
            spoil: n % 20 == 7,
        })
        .collect();
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    services
        .queue
        .enqueue_many(&mut tx, &jobs, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    services.queue.wake();
    let workers = TestWorkers::start(&runtime, "w1");
    let like = format!("{prefix}-%");
    eventually(30, "every job to be done or dead", || async {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE idem_key LIKE $1 AND state NOT IN ('done', 'dead')",
        )
        .bind(&like)
        .fetch_one(services.db.pool())
        .await
        .unwrap();
        (open == 0).then_some(())
    })
    .await;
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT idem_key, state, attempts FROM jobs WHERE idem_key LIKE $1")
            .bind(&like)
            .fetch_all(services.db.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 60);
    for (key, state, attempts) in rows {
        let spoil = jobs.iter().find(|j| j.tag == key).unwrap().spoil;
        let expected = if spoil { "dead" } else { "done" };
        assert_eq!((state.as_str(), attempts), (expected, 1), "{key}");
        assert_eq!(effects(&services, &key).await, i64::from(!spoil), "{key}");
    }
    // The commits were shared: some commit held more than one job's effect.
    let after = runtime.effects().counts();
    let (commits, committed) = (
        after.commits - before.commits,
        after.effects - before.effects,
    );
    assert!(
        committed > commits && after.largest_batch > 1,
        "no group commit held more than one effect ({committed} effects in {commits} commits)"
    );
    workers.stop().await;
    app.stop().await;
}

/// The group commit itself, step by step: a job that hands its share back unfinished rolls
/// back the batch, and the job that had committed its share before learns it must run again.
async fn spoiled_group_commit_rolls_back_every_share(backend: Backend) {
    use beian::queue::effects::{EffectError, EffectLanes};
    let app = spawn_app_with(backend, &[]).await;
    let db = app.services().db.clone();
    let lanes = EffectLanes::start(&db, 1, 10);
    let tag = format!("lane-{}", uuid::Uuid::new_v4().simple());
    let record = |n: u32| {
        sqlx::query("INSERT INTO job_effects (kind, idem_key, done_at) VALUES ('test.lane', $1, 0)")
            .bind(format!("{tag}-{n}"))
    };
    // The first job holds the lane's transaction and writes its effect.
    let mut first = lanes.borrow().await.unwrap();
    record(1).execute(&mut **first).await.unwrap();
    // The second asks for the lane while the first holds it: it waits in line.
    let second = lanes.borrow();
    tokio::pin!(second);
    assert!(futures_lite::future::poll_once(&mut second).await.is_none());
    // The first commits its share: the lane lends the transaction on before committing.
    let first_outcome = tokio::spawn(first.commit());
    let mut second = second.await.unwrap();
    record(2).execute(&mut **second).await.unwrap();
    drop(second); // fails inside its effect
    let outcome = first_outcome.await.unwrap();
    assert!(
        matches!(outcome, Err(EffectError::BatchRolledBack)),
        "{outcome:?}"
    );
    let written: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM job_effects WHERE kind = 'test.lane'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(written, 0, "nothing of a spoiled batch is committed");
    // The lane goes on: the next batch commits.
    let mut third = lanes.borrow().await.unwrap();
    record(3).execute(&mut **third).await.unwrap();
    third.commit().await.unwrap();
    let written: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM job_effects WHERE kind = 'test.lane'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(written, 1);
    app.stop().await;
}

/// Promise 2: a duplicate (the same job enqueued twice, and a second run of a finished
/// job) has no second effect.
async fn duplicate_delivery_has_no_second_effect(backend: Backend) {
    let app = spawn_app_with(backend, FAST_RETRIES).await;
    let services = app.services().clone();
    let runtime = runtime_with_test_jobs(&app);
    let tag = format!("dup-{backend:?}");
    let job = Flaky {
        tag: tag.clone(),
        permanent: false,
    };
    enqueue(&services, &job).await;
    enqueue(&services, &job).await;
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE idem_key = $1")
        .bind(&tag)
        .fetch_one(services.db.pool())
        .await
        .unwrap();
    assert_eq!(queued, 1, "one job per (kind, key)");
    fail_until(&tag, 0);
    let ctx = |attempt| JobContext::new(runtime.clone(), "x".into(), attempt);
    let first = Flaky {
        tag: tag.clone(),
        permanent: false,
    }
    .run(ctx(1))
    .await
    .unwrap();
    let again = Flaky {
        tag: tag.clone(),
        permanent: false,
    }
    .run(ctx(2))
    .await
    .unwrap();
    assert_eq!((first, again), (Outcome::Done, Outcome::Duplicate));
    assert_eq!(effects(&services, &tag).await, 1);
    app.stop().await;
}

/// Promise 4 (embedded): a job whose worker died mid-run (its lease expired) runs again
/// and completes once.
async fn expired_lease_runs_again(backend: Backend) {
    let app = spawn_app_with(backend, FAST_RETRIES).await;
    let services = app.services().clone();
    let runtime = runtime_with_test_jobs(&app);
    let tag = format!("crash-{backend:?}");
    enqueue(
        &services,
        &Flaky {
            tag: tag.clone(),
            permanent: false,
        },
    )
    .await;
    // A worker claims it with a 1 ms lease and "dies" without finishing.
    let now = services.clock.now_ms();
    let real = chrono::Utc::now().timestamp_millis();
    let held = beian::store::jobs::claim(&services.db, "testq", 10, now, real, 1, "dead-worker")
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    fail_until(&tag, 0);
    let workers = TestWorkers::start(&runtime, "w2");
    eventually(20, "the abandoned job to complete", || async {
        (effects(&services, &tag).await == 1).then_some(())
    })
    .await;
    let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE idem_key = $1")
        .bind(&tag)
        .fetch_one(services.db.pool())
        .await
        .unwrap();
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM jobs WHERE idem_key = $1")
        .bind(&tag)
        .fetch_one(services.db.pool())
        .await
        .unwrap();
    assert_eq!((state.as_str(), attempts), ("done", 2));
    workers.stop().await;
    app.stop().await;
}

/// Promise 4 without false alarms: a job that runs longer than its lease keeps it (the lease
/// is renewed), so a rescue finds nothing to take back and a second worker never takes it
/// for a crashed one. On AMQP a first delivery runs under the broker's hold, with no lease
/// in the table; a redelivered message claims its jobs under a lease. So there the test has
/// the broker redeliver: it takes the message first and gives it back unacked.
async fn long_job_keeps_its_lease(backend: Backend) {
    let app = spawn_app_with(backend, &[("BEIAN__QUEUE__LEASE_SECONDS", "1")]).await;
    let services = app.services().clone();
    let runtime = runtime_with_test_jobs(&app);
    let tag = format!("slow-{backend:?}");
    let amqp = services.config.queue.transport == beian::config::Transport::Amqp;
    let broker = if amqp {
        let connection = lapin::Connection::connect(
            services.config.queue.amqp_url.expose(),
            lapin::ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let channel = connection.create_channel().await.unwrap();
        beian::queue::amqp::declare(runtime.settings(), &channel, &["testq".to_string()])
            .await
            .unwrap();
        Some((connection, channel))
    } else {
        None
    };
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    services
        .queue
        .enqueue(&mut tx, &Slow { tag: tag.clone() }, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    services.queue.wake();
    if let Some((connection, channel)) = broker {
        let queue = format!("{}.testq", services.config.queue.amqp_prefix);
        let first = eventually(20, "the relay to publish the job", || async {
            channel
                .basic_get(
                    queue.as_str().into(),
                    lapin::options::BasicGetOptions { no_ack: false },
                )
                .await
                .unwrap()
        })
        .await;
        assert!(!first.delivery.redelivered);
        // Closing without an ack hands the message back, marked redelivered.
        connection.close(200, "bye".into()).await.unwrap();
    }
    let a = TestWorkers::start(&runtime, "w1");
    let b = TestWorkers::start(&runtime, "w2");
    let lease = |db: beian::store::Db, tag: String| async move {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT lease_until FROM jobs WHERE idem_key = $1 AND state = 'running'",
        )
        .bind(tag)
        .fetch_optional(db.pool())
        .await
        .unwrap()
        .flatten()
    };
    let first_lease = eventually(20, "the slow job to run under a lease", || {
        lease(services.db.clone(), tag.clone())
    })
    .await;
    eventually(20, "the job's first lease to run out", || async {
        (chrono::Utc::now().timestamp_millis() > first_lease + 300).then_some(())
    })
    .await;
    let real_now = chrono::Utc::now().timestamp_millis();
    let rescued =
        beian::store::jobs::rescue_expired(&services.db, real_now, services.clock.now_ms())
            .await
            .unwrap();
    assert_eq!(
        rescued, 0,
        "a running job's lease was taken for a crashed worker's"
    );
    let renewed = lease(services.db.clone(), tag.clone()).await;
    assert!(
        renewed.is_some_and(|until| until > real_now),
        "still running, its lease renewed past {real_now}: {renewed:?} (first {first_lease})"
    );
    eventually(30, "the slow job to finish", || async {
        (effects(&services, &tag).await == 1).then_some(())
    })
    .await;
    assert_eq!(
        runs_of(&tag),
        1,
        "ran once although it outlived its 1 s lease four times"
    );
    a.stop().await;
    b.stop().await;
    app.stop().await;
}

/// Admin views mask personal data: an `sms.send` payload (the recipient's phone, a name in
/// its parameters), and a dead job's error and history quoting a phone and an ID number.
async fn admin_views_mask_personal_data(backend: Backend) {
    let app = spawn_app_with(backend, FAST_RETRIES).await;
    let services = app.services().clone();
    let workers = TestWorkers::start(&runtime_with_test_jobs(&app), "w1");
    let (phone, id_number, name) = ("13912345678", "11010119900307123X", "张小三");
    let message_id = format!("mask-{}", uuid::Uuid::new_v4().simple());
    let sms = beian::workers::sms_send::SmsSend {
        message: beian::providers::sms::SmsMessage {
            message_id: message_id.clone(),
            phone: phone.into(),
            template: "filing_decision".into(),
            params: [("filer_name".to_string(), name.to_string())].into(),
        },
        code: None,
    };
    let tag = format!("refused-{}", uuid::Uuid::new_v4().simple());
    let refused = Refused {
        tag: tag.clone(),
        phone: phone.into(),
        id_number: id_number.into(),
    };
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    services.queue.enqueue(&mut tx, &sms, now).await.unwrap();
    services
        .queue
        .enqueue(&mut tx, &refused, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    services.queue.wake();

    let find = |list: &Value, key: &str| {
        list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|j| j["key"] == key).cloned())
    };
    let (dead_list, dead) = eventually(20, "the refused job to be dead", || async {
        let (_, list) = app.get("/v1/admin/jobs?state=dead", ADMIN).await;
        find(&list, &tag).map(|job| (list, job))
    })
    .await;
    let (sms_list, sms_job) = eventually(20, "the sms.send job to be listed", || async {
        let (_, list) = app.get("/v1/admin/jobs?queue=sms", ADMIN).await;
        find(&list, &message_id).map(|job| (list, job))
    })
    .await;
    let (_, all) = app.get("/v1/admin/jobs", ADMIN).await;
    for answer in [&dead_list, &sms_list, &all] {
        let text = answer.to_string();
        for personal in [phone, id_number, name] {
            assert!(!text.contains(personal), "{personal} shown whole: {text}");
        }
    }
    assert_eq!(sms_job["payload"]["message"]["phone"], "139****5678");
    assert_eq!(
        sms_job["payload"]["message"]["params"]["filer_name"],
        "张*三"
    );
    assert_eq!(sms_job["payload"]["message"]["template"], "filing_decision");
    assert_eq!(dead["payload"]["phone"], "139****5678");
    assert_eq!(dead["payload"]["id_number"], "1101**********123X");
    let error = dead["last_error"].as_str().unwrap();
    assert!(
        error.contains("139****5678") && error.contains("1101**********123X"),
        "{error}"
    );
    workers.stop().await;
    app.stop().await;
}

on_every_deployment! {
    long_job_keeps_its_lease_while_it_runs => long_job_keeps_its_lease;
    retries_with_backoff_then_dead_then_replay => retries_then_dead_then_replayed;
    permanent_error_is_dead_at_once => permanent_error_goes_straight_to_dead;
    duplicate_has_no_second_effect => duplicate_delivery_has_no_second_effect;
    crashed_worker_job_runs_again => expired_lease_runs_again;
    failing_effect_in_a_group_commit_loses_nothing => one_failing_effect_loses_nothing_of_its_batch;
}

on_both_databases! {
    admin_views_mask_personal_data => admin_views_mask_personal_data;
    spoiled_group_commit_rolls_back_every_share => spoiled_group_commit_rolls_back_every_share;
    embedded_takes_back_jobs_left_in_a_broker => job_handed_to_a_broker_runs_after_moving_to_embedded;
}

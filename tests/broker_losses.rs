//! What the broker loses or withholds never strands or blocks accepted work (issue 10,
//! holes 1 and 3), on private RabbitMQ nodes:
//! - messages purged after the relay's confirm are published again once
//!   `queue.amqp_republish_after_seconds` have passed (moved with the test clock), and every
//!   job completes once;
//! - while the broker blocks publishers (a memory alarm), submissions still answer 202 at
//!   once, on SQLite and on PostgreSQL, because the relay holds no database lock while it
//!   waits for confirms; once the alarm clears, everything is delivered.

mod common;

use std::time::{Duration, Instant};

use beian::queue::{Job, JobContext, JobError, Outcome, Registry};
use beian::services::Services;
use common::private_rabbitmq::PrivateRabbitmq;
use common::world::World;
use common::{Backend, amqp_overrides, answer, eventually, fresh_postgres_database, spawn_on};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Count {
    n: usize,
}

impl Job for Count {
    type Context = Services;
    const NAME: &'static str = "test.count";
    const QUEUE: &'static str = "testq";
    fn key(&self) -> String {
        format!("count-{}", self.n)
    }
    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        tx.commit().await?;
        Ok(Outcome::Done)
    }
}

async fn count_where(services: &Services, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(services.db.pool())
        .await
        .unwrap()
}

fn overrides_for(rabbit: &PrivateRabbitmq, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut overrides = amqp_overrides(&rabbit.url());
    for (k, v) in extra {
        overrides.retain(|(key, _)| key != k);
        overrides.push((k.to_string(), v.to_string()));
    }
    overrides
}

/// Hole 1: the broker confirmed the messages, then lost them (a purge here; a TTL or
/// max-length policy, a lost node or a delivery limit do the same). The rows say "handed
/// over" for good unless they are published again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_messages_are_published_again() {
    let rabbit = PrivateRabbitmq::start();
    let (url, name) = fresh_postgres_database().await;
    let overrides = overrides_for(&rabbit, &[("BEIAN__QUEUE__AMQP_PREFIX", "lost")]);
    let pairs: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let app = spawn_on(url, Some(name), tempfile::tempdir().unwrap(), &pairs).await;
    let services = app.services().clone();
    let mut registry = Registry::default();
    registry.register::<Count>();
    let runtime = app.runtime().with_registry(registry);
    // The test queue exists on the broker before anything is published to it.
    let connection = lapin::Connection::connect(&rabbit.url(), Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    beian::queue::amqp::declare(runtime.settings(), &channel, &["testq".to_string()])
        .await
        .unwrap();
    let _ = connection.close(200, "declared".into()).await;

    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    for n in 0..30 {
        services
            .queue
            .enqueue(&mut tx, &Count { n }, now)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    services.queue.wake();
    eventually(30, "all 30 jobs confirmed by the broker", || async {
        (count_where(
            &services,
            "SELECT COUNT(*) FROM jobs WHERE kind = 'test.count' AND published",
        )
        .await
            == 30)
            .then_some(())
    })
    .await;
    rabbit.ctl(&["purge_queue", "lost.testq"]);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumers = tokio::spawn(beian::queue::amqp::run_consumers(
        runtime,
        vec!["testq".into()],
        "after-purge".into(),
        stopped,
    ));
    // Past `queue.amqp_republish_after_seconds` (300 by default) on the test clock.
    let w = World::new(&app);
    w.advance(301).await;
    eventually(60, "every purged job to run after all", || async {
        (count_where(
            &services,
            "SELECT COUNT(*) FROM jobs WHERE kind = 'test.count' AND state = 'done'",
        )
        .await
            == 30)
            .then_some(())
    })
    .await;
    assert_eq!(
        count_where(
            &services,
            "SELECT COUNT(*) FROM job_effects WHERE kind = 'test.count'"
        )
        .await,
        30,
        "each job's effect once"
    );
    let _ = stop.send(true);
    let _ = consumers.await;
    app.stop().await;
}

/// Hole 3: a broker that stops taking messages (a memory alarm blocks every publisher) must
/// not hold up submissions: on SQLite the relay's transaction would be the single write
/// lock, on PostgreSQL it would hold row locks on the batch.
async fn submissions_go_on_while_the_broker_blocks(backend: Backend) {
    let rabbit = PrivateRabbitmq::start();
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("beian.db").display()),
            None,
        ),
        _ => {
            let (url, name) = fresh_postgres_database().await;
            (url, Some(name))
        }
    };
    let overrides = overrides_for(
        &rabbit,
        &[
            ("BEIAN__QUEUE__AMQP_CONFIRM_TIMEOUT_SECONDS", "2"),
            ("BEIAN__FILING__MAX_APPLICATIONS_PER_DAY", "100"),
        ],
    );
    let pairs: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let app = spawn_on(url, pg, dir, &pairs).await;
    let w = World::new(&app);
    eventually(30, "readyz with the broker up", || async {
        (app.get("/readyz", None).await.0 == 200).then_some(())
    })
    .await;

    rabbit.ctl(&["set_vm_memory_high_watermark", "0"]);
    let filer = w.driver().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let car = w.vehicle().await;
        let started = Instant::now();
        let (status, body) = answer(
            app.request(reqwest::Method::POST, "/v1/filings", filer.who())
                .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                .json(&car.filing_body())
                .send()
                .await
                .unwrap(),
        )
        .await;
        let took = started.elapsed();
        assert_eq!(status, 202, "{body}");
        assert!(
            took < Duration::from_secs(1),
            "a submission took {took:?} while the broker blocked publishers"
        );
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    rabbit.ctl(&["set_vm_memory_high_watermark", "0.4"]);
    for id in &ids {
        let path = format!("/v1/filings/{id}");
        eventually(
            90,
            "the filing's intake after the alarm cleared",
            || async {
                let (_, f) = app.get(&path, filer.who()).await;
                (f["status"] != "received").then_some(())
            },
        )
        .await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_blocked_sqlite() {
    submissions_go_on_while_the_broker_blocks(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_blocked_postgres() {
    submissions_go_on_while_the_broker_blocks(Backend::Postgres).await
}

//! The database goes away under a running service (a private PostgreSQL, stopped and
//! started by these tests): `/readyz` says `database: down` with 503 while `/healthz` stays
//! 200, requests answer 503 `database_unavailable` with `Retry-After`, and the pool recovers
//! by itself when the database is back. Jobs in flight when it goes lose nothing (promises 1
//! and 4), on the embedded transport and on RabbitMQ.

mod common;

use std::time::Duration;

use beian::api::auth::Role;
use beian::queue::{Job, JobContext, JobError, Outcome, Registry};
use beian::services::Services;
use common::private_postgres::PrivatePostgres;
use common::{amqp_overrides, amqp_url, eventually, plate_path, require_rabbitmq, spawn_on};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Takes a little while before its effect, so that jobs are in flight when the database
/// goes away.
#[derive(Serialize, Deserialize)]
struct Steady {
    n: usize,
}

impl Job for Steady {
    type Context = Services;
    const NAME: &'static str = "test.steady";
    const QUEUE: &'static str = "testq";
    fn key(&self) -> String {
        format!("steady-{}", self.n)
    }
    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Some(tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        tx.commit().await?;
        Ok(Outcome::Done)
    }
}

async fn count(services: &Services, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(services.db.pool())
        .await
        .unwrap_or(-1)
}

async fn jobs_in_flight_survive_a_database_restart(amqp: bool) {
    let pg = PrivatePostgres::start();
    let mut overrides: Vec<(String, String)> = vec![
        (
            "BEIAN__DATABASE__CONNECT_TIMEOUT_SECONDS".into(),
            "1".into(),
        ),
        ("BEIAN__JOBS__DEFAULT__CONCURRENCY".into(), "16".into()),
        ("BEIAN__JOBS__DEFAULT__BACKOFF_BASE_MS".into(), "20".into()),
        ("BEIAN__JOBS__DEFAULT__BACKOFF_CAP_MS".into(), "500".into()),
        ("BEIAN__JOBS__DEFAULT__MAX_ATTEMPTS".into(), "1000".into()),
        ("BEIAN__QUEUE__LEASE_SECONDS".into(), "2".into()),
    ];
    if amqp {
        require_rabbitmq();
        overrides.extend(amqp_overrides(&amqp_url()));
    }
    let overrides: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_on(pg.url("postgres"), None, dir, &overrides).await;
    let mut registry = Registry::default();
    registry.register::<Steady>();
    let services = app.services().clone();
    let runtime = app.runtime().with_registry(registry);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(runtime.run_workers(vec!["testq".into()], "w1".into(), stopped));
    let now = services.clock.now_ms();
    let jobs: Vec<Steady> = (0..400).map(|n| Steady { n }).collect();
    let mut tx = services.db.begin().await.unwrap();
    services
        .queue
        .enqueue_many(&mut tx, &jobs, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    services.queue.wake();
    let effects = "SELECT COUNT(*) FROM job_effects WHERE kind = 'test.steady'";
    eventually(60, "some jobs done before the outage", || async {
        (count(&services, effects).await >= 40).then_some(())
    })
    .await;
    // Jobs are running (16 at a time, 20 ms each) when the database stops.
    pg.down();
    eventually(30, "readyz to report the database down", || async {
        (app.get("/readyz", None).await.0 == 503).then_some(())
    })
    .await;
    pg.up();
    eventually(
        120,
        "every job done after the database came back",
        || async {
            let open = count(
                &services,
                "SELECT COUNT(*) FROM jobs WHERE kind = 'test.steady' AND state <> 'done'",
            )
            .await;
            (open == 0 && count(&services, effects).await == 400).then_some(())
        },
    )
    .await;
    let _ = stop.send(true);
    let _ = workers.await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_in_flight_survive_a_database_restart_embedded() {
    jobs_in_flight_survive_a_database_restart(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_in_flight_survive_a_database_restart_amqp() {
    jobs_in_flight_survive_a_database_restart(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_a_postgres_outage_and_the_pool_recovers() {
    let pg = PrivatePostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_on(
        pg.url("postgres"),
        None,
        dir,
        &[("BEIAN__DATABASE__CONNECT_TIMEOUT_SECONDS", "1")],
    )
    .await;
    let system = Some(("feed", Role::System));
    let body = json!({"owner_id_number": "110101199003071234", "owner_name": "张三", "owner_phone": "13812345678",
                      "owner_kind": "person", "engine_number": "LB12345678", "usage": "non_operating", "status": "normal"});
    let path = format!("/v1/registry/vehicles/{}", plate_path("02", "京A12345"));
    assert_eq!(app.put(&path, system, &body).await.0, 201);
    assert_eq!(app.get("/readyz", None).await.0, 200);

    pg.down();
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!(status, 503);
    assert_eq!(ready["database"], "down");
    assert_eq!(
        app.get("/healthz", None).await.0,
        200,
        "the process itself is up"
    );
    let response = app
        .request(reqwest::Method::PUT, &path, system)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "database_unavailable");

    pg.up();
    eventually(
        30,
        "readyz back to 200 after the database returned",
        || async { (app.get("/readyz", None).await.0 == 200).then_some(()) },
    )
    .await;
    let (status, _) = app.put(&path, system, &body).await;
    assert_eq!(
        status, 200,
        "what was accepted before the outage is still there"
    );
    app.stop().await;
}

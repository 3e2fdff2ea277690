//! Promises 1 and 4 on the AMQP transport against a private RabbitMQ node: the broker is
//! stopped and started (`rabbitmqctl stop_app` / `start_app`) mid-stream; submissions are
//! still accepted meanwhile, `/readyz` says the broker is down, and afterwards every job has
//! run exactly once.

mod common;

use beian::api::auth::Role;
use beian::queue::{Job, JobContext, JobError, Outcome, Registry};
use beian::services::Services;
use common::private_rabbitmq::PrivateRabbitmq;
use common::{amqp_overrides, eventually, fresh_postgres_database, plate_path, spawn_on};
use serde::{Deserialize, Serialize};
use serde_json::json;

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

async fn effects(services: &Services) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM job_effects WHERE kind = 'test.count'")
        .fetch_one(services.db.pool())
        .await
        .unwrap()
}

async fn enqueue(services: &Services, range: std::ops::Range<usize>) {
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await.unwrap();
    for n in range {
        services
            .queue
            .enqueue(&mut tx, &Count { n }, now)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    services.queue.wake();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing() {
    let rabbit = PrivateRabbitmq::start();
    let (url, name) = fresh_postgres_database().await;
    let mut overrides = amqp_overrides(&rabbit.url());
    overrides.push(("BEIAN__JOBS__DEFAULT__BACKOFF_BASE_MS".into(), "20".into()));
    overrides.push(("BEIAN__JOBS__DEFAULT__BACKOFF_CAP_MS".into(), "500".into()));
    let overrides: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let app = spawn_on(url, Some(name), tempfile::tempdir().unwrap(), &overrides).await;
    let mut registry = Registry::default();
    registry.register::<Count>();
    let services = app.services().clone();
    let runtime = app.runtime().with_registry(registry);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumers = tokio::spawn(beian::queue::amqp::run_consumers(
        runtime,
        vec!["testq".into()],
        "faulty".into(),
        stopped,
    ));
    eventually(30, "readyz with the broker up", || async {
        (app.get("/readyz", None).await.0 == 200).then_some(())
    })
    .await;

    enqueue(&services, 0..300).await;
    eventually(30, "some jobs done before the outage", || async {
        (effects(&services).await >= 50).then_some(())
    })
    .await;
    rabbit.ctl(&["stop_app"]);

    // The broker is down: readiness says so, submissions are still accepted.
    let (status, ready) = eventually(30, "readyz to report the broker down", || async {
        let (status, body) = app.get("/readyz", None).await;
        (status == 503).then_some((status, body))
    })
    .await;
    assert_eq!(
        (status, ready["broker"].as_str(), ready["database"].as_str()),
        (503, Some("down"), Some("ok"))
    );
    enqueue(&services, 300..400).await;
    let system = Some(("feed", Role::System));
    let driver = json!({"name": "李四", "id_number": "110101199105051238", "phone": "13912345678",
                        "licence_number": "110101199105051238", "licence_status": "valid", "points": 0});
    assert_eq!(
        app.put("/v1/registry/drivers/U1", system, &driver).await.0,
        201
    );
    let vehicle = json!({"owner_id_number": "110101199003071234", "owner_name": "张三", "owner_phone": "13812345678",
                         "owner_kind": "person", "engine_number": "LB12345678", "usage": "non_operating", "status": "normal"});
    let plate = format!("/v1/registry/vehicles/{}", plate_path("02", "京A12345"));
    assert_eq!(app.put(&plate, system, &vehicle).await.0, 201);
    let submitted = app
        .request(reqwest::Method::POST, "/v1/filings", Some(("U1", Role::User)))
        .header("Idempotency-Key", "outage-1")
        .json(&json!({"method": "sms", "plate_type": "02", "plate_number": "京A12345", "engine_last6": "345678", "relationship": "friend"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        submitted.status().as_u16(),
        202,
        "accepted through the outbox while the broker is down"
    );
    let filing: serde_json::Value = submitted.json().await.unwrap();

    rabbit.ctl(&["start_app"]);
    rabbit.await_startup();
    eventually(
        90,
        "every job to run after the broker came back",
        || async { (effects(&services).await == 400).then_some(()) },
    )
    .await;
    let not_done: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'test.count' AND state <> 'done'",
    )
    .fetch_one(services.db.pool())
    .await
    .unwrap();
    assert_eq!(not_done, 0);
    let path = format!("/v1/filings/{}", filing["id"].as_str().unwrap());
    eventually(
        60,
        "the filing accepted during the outage to get its code",
        || async {
            let (_, f) = app.get(&path, Some(("U1", Role::User))).await;
            (f["status"] == "code_sent").then_some(())
        },
    )
    .await;
    assert_eq!(app.get("/readyz", None).await.0, 200);
    let _ = stop.send(true);
    let _ = consumers.await;
    app.stop().await;
}

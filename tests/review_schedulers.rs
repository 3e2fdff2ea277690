//! The SLA checkpoints with two scheduler processes (the real binary), one of them killed
//! with SIGKILL between the levels: each checkpoint fires once, `escalation_level` goes 1,
//! then 2 a working day later, never skipping or repeating, and each supervisor gets each
//! escalation SMS once. The review gauges show on the schedulers' `/metrics`.

mod common;

use std::process::{Child, Command, Stdio};

use beian::api::auth::Role;
use beian::app::Parts;
use common::fakes::{FakeFaceProvider, FakeSmsGateway, SMS_SECRET};
use common::review_entry::enter_review;
use common::world::World;
use common::{
    Backend, TestApp, amqp_overrides, amqp_url, eventually, fresh_postgres_database,
    require_rabbitmq, spawn_parts,
};
use serde_json::Value;

const SUPERVISORS: [&str; 2] = ["13700000011", "13700000012"];
const REVIEWER: Option<(&str, Role)> = Some(("reviewer-a", Role::Reviewer));

/// A `beian scheduler` process; killed with SIGKILL when dropped.
struct Scheduler {
    child: Child,
    port: u16,
}

impl Scheduler {
    fn start(env: &[(String, String)]) -> Scheduler {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_beian"))
            .arg("scheduler")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BEIAN__HTTP__ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start beian scheduler");
        Scheduler { child, port }
    }

    async fn healthy(&self) {
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        eventually(30, "a scheduler to answer /healthz", || async {
            reqwest::get(&url)
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await;
    }

    async fn metric(&self, name: &str) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
        text.lines()
            .find(|l| l.split(' ').next() == Some(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn t(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap()
}

async fn review(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/reviews/{id}"), REVIEWER).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The escalation levels of the review's audit trail, in order.
fn escalation_audit(review: &Value) -> Vec<String> {
    review["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "escalated")
        .map(|a| a["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn escalations(sms: &FakeSmsGateway, id: &str, level: i64, phone: &str) -> usize {
    sms.deliveries()
        .iter()
        .filter(|m| m.template == "review_escalation" && m.phone == phone)
        .filter(|m| m.params.get("filing_id").map(String::as_str) == Some(id))
        .filter(|m| m.params.get("level") == Some(&level.to_string()))
        .count()
}

async fn two_schedulers_escalate_once(backend: Backend) {
    let (db_url, db_name) = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let sms = FakeSmsGateway::start(SMS_SECRET).await;
    let face = FakeFaceProvider::start().await;
    let mut env: Vec<(String, String)> = [
        ("BEIAN__DATABASE__URL", db_url.as_str()),
        ("BEIAN__CLOCK__MANUAL", "true"),
        ("BEIAN__CLOCK__START", "2026-11-20T10:00:00+08:00"),
        ("BEIAN__AUTH__JWT_SECRET", common::JWT_SECRET),
        ("BEIAN__LOG__LEVEL", "warn"),
        ("BEIAN__QUEUE__POLL_INTERVAL_MS", "50"),
        ("BEIAN__QUEUE__LEASE_SECONDS", "2"),
        ("BEIAN__SHUTDOWN__GRACE_SECONDS", "2"),
        ("BEIAN__SMS__PROVIDER", "webhook"),
        ("BEIAN__SMS__WEBHOOK_URL", &sms.url()),
        ("BEIAN__SMS__WEBHOOK_SECRET", SMS_SECRET),
        ("BEIAN__SMS__LIMIT_PER_MINUTE", "1000"),
        ("BEIAN__SMS__LIMIT_PER_HOUR", "1000"),
        ("BEIAN__SMS__LIMIT_PER_DAY", "1000"),
        ("BEIAN__FACE__PROVIDER", "http"),
        ("BEIAN__FACE__URL", &face.url()),
        ("BEIAN__JOBS__DEFAULT__BACKOFF_BASE_MS", "20"),
        ("BEIAN__JOBS__DEFAULT__BACKOFF_CAP_MS", "200"),
        ("BEIAN__REVIEW__ESCALATION_PHONES", &SUPERVISORS.join(",")),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("BEIAN__DATA_DIR".into(), dir.path().display().to_string()));
    if backend == Backend::PostgresAmqp {
        require_rabbitmq();
        env.extend(amqp_overrides(&amqp_url()));
    }
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The API and the workers here; the timers are fired by the two scheduler processes.
    let parts = Parts {
        api: true,
        workers: Some(beian::app::all_queues()),
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
    let mut a = Scheduler::start(&env);
    let b = Scheduler::start(&env);
    a.healthy().await;
    b.healthy().await;

    let w = World::new(&app);
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let filer = w.driver().await;
    let id = w.file(&filer, &car).await;
    let code = sms.wait_for(&owner.phone, "filing_code", 0).await;
    w.wait_status(&filer, &id, "code_sent").await;
    let (status, body) = w.enter_code(&filer, &id, &code.params["code"]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.face(&filer, &id, "fail-face").await;
    assert_eq!(status, 202, "{body}");
    w.wait_status(&filer, &id, "documents_required").await;

    w.set_clock(t("2026-11-23T08:59:00+08:00")).await; // Monday: due 17:00
    enter_review(&app, &id).await;

    w.set_clock(t("2026-11-23T17:00:01+08:00")).await;
    let r = eventually(20, "level 1", || async {
        let r = review(&app, &id).await;
        (r["review"]["escalation_level"] == 1).then_some(r)
    })
    .await;
    assert_eq!(r["review"]["breached"], true, "{r}");
    for phone in SUPERVISORS {
        eventually(20, "the level 1 SMS", || async {
            (escalations(&sms, &id, 1, phone) == 1).then_some(())
        })
        .await;
    }
    eventually(20, "the breached gauge", || async {
        (b.metric("beian_reviews_breached").await == Some(1.0)).then_some(())
    })
    .await;

    // One scheduler dies hard; the other fires the next checkpoint.
    a.kill_9();
    w.set_clock(t("2026-11-24T17:00:01+08:00")).await;
    let r = eventually(20, "level 2", || async {
        let r = review(&app, &id).await;
        (r["review"]["escalation_level"] == 2).then_some(r)
    })
    .await;
    for phone in SUPERVISORS {
        eventually(20, "the level 2 SMS", || async {
            (escalations(&sms, &id, 2, phone) == 1).then_some(())
        })
        .await;
    }
    // Let anything that would fire twice do so, then count.
    w.advance(5).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let r2 = review(&app, &id).await;
    assert_eq!(r2["review"]["escalation_level"], 2, "{r2}");
    assert_eq!(escalation_audit(&r2), ["level 1", "level 2"], "{r}");
    for phone in SUPERVISORS {
        assert_eq!(escalations(&sms, &id, 1, phone), 1, "level 1 to {phone}");
        assert_eq!(escalations(&sms, &id, 2, phone), 1, "level 2 to {phone}");
    }
    let at_risk: Vec<&Value> = r2["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "at_risk")
        .collect();
    // At 17:00:01 the at-risk and the breach checkpoints fall due together: the flag is set
    // once, by whichever runs first (the breach sets it too).
    assert!(at_risk.len() <= 1, "{r2}");
    assert_eq!(r2["review"]["at_risk"], true, "{r2}");
    drop((a, b));
    app.stop().await;
}

mod two_schedulers {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::two_schedulers_escalate_once(super::Backend::Postgres).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_amqp() {
        super::two_schedulers_escalate_once(super::Backend::PostgresAmqp).await
    }
}

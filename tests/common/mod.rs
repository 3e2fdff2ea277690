//! The integration-test harness: `spawn_app()` starts the real service (API, workers,
//! scheduler) on port 0 with a fresh database (a temp SQLite file, or a new PostgreSQL
//! database), and gives a small HTTP client with tokens for each role.
#![allow(dead_code)]

pub mod private_postgres;
pub mod private_rabbitmq;

pub mod fakes;
pub mod payfakes;
pub mod review_entry;
pub mod world;

use std::time::Duration;

use beian::api::auth::{Role, TokenKeys};
use beian::app::{Parts, Running};
use beian::config::Config;
use serde_json::Value;
use sqlx::Connection;

pub const JWT_SECRET: &str = "integration-test-secret-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// PostgreSQL with the RabbitMQ transport (queues under a prefix of their own).
    PostgresAmqp,
}

/// The RabbitMQ tests use; `TEST_AMQP_URL` overrides.
pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Panics with a clear message when RabbitMQ is not reachable (tests never pass by skipping).
pub fn require_rabbitmq() {
    let url = amqp_url();
    let hostport = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5672")
        .to_string();
    if std::net::TcpStream::connect_timeout(
        &hostport.parse().expect("host:port"),
        Duration::from_secs(3),
    )
    .is_err()
    {
        panic!(
            "RabbitMQ is needed for this test and is not reachable at {hostport}. Start it (`rabbitmq-server -detached`, or run `bash .ci/run`), or point TEST_AMQP_URL at one."
        );
    }
}

/// The overrides that put an app on RabbitMQ with queues of its own.
pub fn amqp_overrides(url: &str) -> Vec<(String, String)> {
    vec![
        ("BEIAN__QUEUE__TRANSPORT".into(), "amqp".into()),
        ("BEIAN__QUEUE__AMQP_URL".into(), url.into()),
        (
            "BEIAN__QUEUE__AMQP_PREFIX".into(),
            format!("test-{}", uuid::Uuid::new_v4().simple()),
        ),
        (
            "BEIAN__QUEUE__AMQP_QUEUE_EXPIRES_MS".into(),
            "600000".into(),
        ),
    ]
}

/// The PostgreSQL server tests use; `TEST_DATABASE_URL` overrides.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates a fresh database on the test PostgreSQL; panics with a clear message when the
/// server is not reachable (tests never pass by skipping).
pub async fn fresh_postgres_database() -> (String, String) {
    let admin = postgres_admin_url();
    let mut conn = sqlx::postgres::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is needed for this test and is not reachable at {admin} ({e}). \
             Start it (`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or run `bash .ci/run`), or point TEST_DATABASE_URL at one."
            )
        });
    let name = format!("beian_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin.clone());
    (format!("{base}/{name}"), name)
}

pub async fn drop_postgres_database(name: &str) {
    if let Ok(mut conn) = sqlx::postgres::PgConnection::connect(&postgres_admin_url()).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub config: Config,
    pub dir: tempfile::TempDir,
    running: Option<Running>,
    pg_database: Option<String>,
    tokens: std::sync::Arc<TokenKeys>,
}

/// Configuration for a test instance: defaults, then `overrides` as `BEIAN__...` pairs.
pub fn test_config(
    database_url: &str,
    dir: &std::path::Path,
    overrides: &[(&str, &str)],
) -> Config {
    let mut env: Vec<(String, String)> = vec![
        ("BEIAN__PROFILE".into(), "test".into()),
        ("BEIAN__HTTP__ADDR".into(), "127.0.0.1:0".into()),
        ("BEIAN__DATABASE__URL".into(), database_url.into()),
        ("BEIAN__DATABASE__MAX_CONNECTIONS".into(), "8".into()),
        // A loaded CI machine must not turn a slow pool into a 503.
        (
            "BEIAN__DATABASE__CONNECT_TIMEOUT_SECONDS".into(),
            "30".into(),
        ),
        ("BEIAN__DATA_DIR".into(), dir.display().to_string()),
        (
            "BEIAN__SMS__OUTBOX_FILE".into(),
            dir.join("sms-outbox.ndjson").display().to_string(),
        ),
        ("BEIAN__CLOCK__MANUAL".into(), "true".into()),
        ("BEIAN__AUTH__JWT_SECRET".into(), JWT_SECRET.into()),
        ("BEIAN__QUEUE__POLL_INTERVAL_MS".into(), "200".into()),
        ("BEIAN__SHUTDOWN__GRACE_SECONDS".into(), "5".into()),
        ("BEIAN__LOG__LEVEL".into(), "warn".into()),
    ];
    for (k, v) in overrides {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    Config::load_from(None, env).expect("test configuration is valid")
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, pg_database) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("beian.db").display()),
            None,
        ),
        Backend::Postgres | Backend::PostgresAmqp => {
            let (url, name) = fresh_postgres_database().await;
            (url, Some(name))
        }
    };
    if backend == Backend::PostgresAmqp {
        require_rabbitmq();
        let mut all = amqp_overrides(&amqp_url());
        all.extend(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        return spawn_on(url, pg_database, dir, &all).await;
    }
    spawn_on(url, pg_database, dir, overrides).await
}

pub async fn spawn_on(
    url: String,
    pg_database: Option<String>,
    dir: tempfile::TempDir,
    overrides: &[(&str, &str)],
) -> TestApp {
    spawn_parts(url, pg_database, dir, overrides, None).await
}

/// As [`spawn_on`], running only `parts` (e.g. the API alone, beside worker processes).
pub async fn spawn_parts(
    url: String,
    pg_database: Option<String>,
    dir: tempfile::TempDir,
    overrides: &[(&str, &str)],
    parts: Option<Parts>,
) -> TestApp {
    let config = test_config(&url, dir.path(), overrides);
    let tokens = TokenKeys::from_config(&config.auth).expect("token keys");
    let parts = parts.unwrap_or_else(|| Parts::serve(&config));
    let running = beian::app::start(config.clone(), parts)
        .await
        .expect("service starts");
    TestApp {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        config,
        dir,
        running: Some(running),
        pg_database,
        tokens,
    }
}

impl TestApp {
    pub fn token(&self, sub: &str, role: Role) -> String {
        self.tokens.sign(sub, role, 4_102_444_800).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with a bearer token for `sub` in `role` (None: anonymous).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        who: Option<(&str, Role)>,
    ) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match who {
            Some((sub, role)) => builder.bearer_auth(self.token(sub, role)),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, who: Option<(&str, Role)>) -> (u16, Value) {
        answer(
            self.request(reqwest::Method::GET, path, who)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn put(&self, path: &str, who: Option<(&str, Role)>, body: &Value) -> (u16, Value) {
        answer(
            self.request(reqwest::Method::PUT, path, who)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, who: Option<(&str, Role)>, body: &Value) -> (u16, Value) {
        answer(
            self.request(reqwest::Method::POST, path, who)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub fn services(&self) -> &std::sync::Arc<beian::services::Services> {
        &self.running.as_ref().expect("running").services
    }

    /// The app's job runtime (every job kind of `workers`).
    pub fn runtime(&self) -> &std::sync::Arc<beian::queue::Runtime<beian::services::Services>> {
        &self.running.as_ref().expect("running").runtime
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        if let Some(name) = self.pg_database.take() {
            drop_postgres_database(&name).await;
        }
    }
}

pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `京A12345` as a URL path segment.
pub fn plate_path(plate_type: &str, plate: &str) -> String {
    let encoded: String = plate
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{plate_type}/{encoded}")
}

/// Runs `body` with a SQLite-backed app and a PostgreSQL-backed app: one behaviour, two
/// databases.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident => $body:ident;)+) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$body($crate::common::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$body($crate::common::Backend::Postgres).await
                }
            }
        )+
    };
}

/// Runs `body` on every supported deployment: SQLite + embedded, PostgreSQL + embedded,
/// PostgreSQL + RabbitMQ.
#[macro_export]
macro_rules! on_every_deployment {
    ($($name:ident => $body:ident;)+) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$body($crate::common::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$body($crate::common::Backend::Postgres).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres_amqp() {
                    super::$body($crate::common::Backend::PostgresAmqp).await
                }
            }
        )+
    };
}

/// Polls `probe` until it returns Some, for at most `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{what}: not within {seconds} s");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Sends a request over a raw socket, ignoring a write cut short by the server (which may
/// answer 413 and close before reading a large body); returns the status code.
pub async fn raw_status(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    for chunk in body.chunks(64 * 1024) {
        if stream.write_all(chunk).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

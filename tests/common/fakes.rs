//! Fakes of the outside parties the filing flow talks to, as real HTTP servers on
//! 127.0.0.1:0 (an SMS gateway that checks the webhook signature, a face provider), and the
//! helpers that point a test service at them. Registry data and filing steps are in `world`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ring::hmac;
use serde::Deserialize;
use serde_json::json;

use super::{Backend, TestApp, spawn_app_with};

/// Serves `router` on a fresh local port until the returned handle is aborted.
async fn serve(router: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port for a fake");
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, handle)
}

/// Takes one from a "fail the next N requests" counter; true when this request must fail.
fn take_failure(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

// ---------------------------------------------------------------------------------------
// SMS gateway
// ---------------------------------------------------------------------------------------

/// One message as the gateway received it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Sms {
    pub message_id: String,
    pub phone: String,
    pub template: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

struct SmsState {
    key: hmac::Key,
    deliveries: Mutex<Vec<Sms>>,
    refused: AtomicUsize,
    requests: AtomicUsize,
    fail_next: AtomicUsize,
}

/// `POST /sms`: checks `X-Beian-Signature` = hex(HMAC-SHA256(secret, raw body)), records
/// every accepted delivery in order (duplicates included) and answers 200; a bad signature
/// is 401 and counted; `fail_next(n)` makes the next n requests answer 500.
pub struct FakeSmsGateway {
    addr: SocketAddr,
    state: Arc<SmsState>,
    handle: tokio::task::JoinHandle<()>,
}

async fn sms_endpoint(
    State(state): State<Arc<SmsState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if take_failure(&state.fail_next) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response();
    }
    let signature = headers
        .get("x-beian-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| hex::decode(v.trim()).ok());
    let verified = signature.is_some_and(|sig| hmac::verify(&state.key, &body, &sig).is_ok());
    if !verified {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let sms: Sms = match serde_json::from_slice(&body) {
        Ok(sms) => sms,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    state.deliveries.lock().unwrap().push(sms);
    (StatusCode::OK, axum::Json(json!({"ok": true}))).into_response()
}

impl FakeSmsGateway {
    pub async fn start(secret: &str) -> FakeSmsGateway {
        let state = Arc::new(SmsState {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            deliveries: Mutex::new(Vec::new()),
            refused: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            fail_next: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/sms", post(sms_endpoint))
            .with_state(state.clone());
        let (addr, handle) = serve(router).await;
        FakeSmsGateway {
            addr,
            state,
            handle,
        }
    }

    /// The webhook URL (`sms.webhook_url`).
    pub fn url(&self) -> String {
        format!("http://{}/sms", self.addr)
    }

    /// Every accepted delivery, in order, duplicates included.
    pub fn deliveries(&self) -> Vec<Sms> {
        self.state.deliveries.lock().unwrap().clone()
    }

    /// Accepted deliveries to `phone` with `template`, one per `message_id` (first seen).
    pub fn messages_to(&self, phone: &str, template: &str) -> Vec<Sms> {
        let mut seen = std::collections::HashSet::new();
        self.deliveries()
            .into_iter()
            .filter(|m| m.phone == phone && m.template == template)
            .filter(|m| seen.insert(m.message_id.clone()))
            .collect()
    }

    /// How many accepted deliveries carried `message_id` (duplicates included).
    pub fn deliveries_of(&self, message_id: &str) -> usize {
        self.deliveries()
            .iter()
            .filter(|m| m.message_id == message_id)
            .count()
    }

    /// The number of deliveries so far: a mark for [`FakeSmsGateway::wait_for`].
    pub fn mark(&self) -> usize {
        self.state.deliveries.lock().unwrap().len()
    }

    /// Waits (up to 10 s) for a delivery to `phone` with `template` at or after `since`.
    pub async fn wait_for(&self, phone: &str, template: &str, since: usize) -> Sms {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .deliveries()
                .into_iter()
                .skip(since)
                .find(|m| m.phone == phone && m.template == template);
            if let Some(sms) = found {
                return sms;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "no {template} SMS to {phone} within 10 s; deliveries: {:?}",
                    self.deliveries()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Requests refused for a bad signature.
    pub fn refused_count(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Every request that reached the gateway (failed ones included).
    pub fn request_count(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The next `n` requests answer 500.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }
}

impl Drop for FakeSmsGateway {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Face provider
// ---------------------------------------------------------------------------------------

/// One call to the face provider and what it answered.
#[derive(Debug, Clone)]
pub struct FaceCall {
    pub certify_id: String,
    pub user_id: String,
    pub status: u16,
}

#[derive(Deserialize)]
struct FaceRequest {
    certify_id: String,
    user_id: String,
}

struct FaceState {
    calls: Mutex<Vec<FaceCall>>,
    fail_next: AtomicUsize,
}

/// `POST /face/verify` with `{certify_id, user_id}`: `{"passed": !certify_id.starts_with("fail"),
/// "score"}`; `fail_next(n)` makes the next n calls answer 503.
pub struct FakeFaceProvider {
    addr: SocketAddr,
    state: Arc<FaceState>,
    handle: tokio::task::JoinHandle<()>,
}

async fn face_endpoint(
    State(state): State<Arc<FaceState>>,
    axum::Json(request): axum::Json<FaceRequest>,
) -> Response {
    let failing = take_failure(&state.fail_next);
    let status = if failing { 503 } else { 200 };
    state.calls.lock().unwrap().push(FaceCall {
        certify_id: request.certify_id.clone(),
        user_id: request.user_id.clone(),
        status,
    });
    if failing {
        return (StatusCode::SERVICE_UNAVAILABLE, "injected outage").into_response();
    }
    let passed = !request.certify_id.starts_with("fail");
    let score = if passed { 0.97 } else { 0.12 };
    axum::Json(json!({"passed": passed, "score": score})).into_response()
}

impl FakeFaceProvider {
    pub async fn start() -> FakeFaceProvider {
        let state = Arc::new(FaceState {
            calls: Mutex::new(Vec::new()),
            fail_next: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/face/verify", post(face_endpoint))
            .with_state(state.clone());
        let (addr, handle) = serve(router).await;
        FakeFaceProvider {
            addr,
            state,
            handle,
        }
    }

    /// The verification URL (`face.url`).
    pub fn url(&self) -> String {
        format!("http://{}/face/verify", self.addr)
    }

    pub fn calls(&self) -> Vec<FaceCall> {
        self.state.calls.lock().unwrap().clone()
    }

    /// The next `n` calls answer 503.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }
}

impl Drop for FakeFaceProvider {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

// ---------------------------------------------------------------------------------------
// The service pointed at the fakes
// ---------------------------------------------------------------------------------------

pub const SMS_SECRET: &str = "fake-sms-gateway-secret";

/// A service whose SMS and face calls go to fresh fakes, with fast retries and a generous
/// SMS flow control (tests that exercise it override the limits); `extra` wins.
pub async fn spawn_filing_app(
    backend: Backend,
    extra: &[(&str, &str)],
) -> (TestApp, FakeSmsGateway, FakeFaceProvider) {
    spawn_with_fakes(backend, extra, None).await
}

/// As [`spawn_filing_app`], but no worker takes the `filing` queue: the test runs the intake
/// jobs itself (`FilingIntake::run`), in the order it chooses. Timers of that queue (code
/// expiry, abandonment) do not run either.
pub async fn spawn_filing_app_without_intake(
    backend: Backend,
    extra: &[(&str, &str)],
) -> (TestApp, FakeSmsGateway, FakeFaceProvider) {
    spawn_with_fakes(backend, extra, Some("filing")).await
}

async fn spawn_with_fakes(
    backend: Backend,
    extra: &[(&str, &str)],
    without_queue: Option<&str>,
) -> (TestApp, FakeSmsGateway, FakeFaceProvider) {
    let sms = FakeSmsGateway::start(SMS_SECRET).await;
    let face = FakeFaceProvider::start().await;
    let sms_url = sms.url();
    let face_url = face.url();
    let mut overrides: Vec<(&str, &str)> = vec![
        ("BEIAN__SMS__PROVIDER", "webhook"),
        ("BEIAN__SMS__WEBHOOK_URL", &sms_url),
        ("BEIAN__SMS__WEBHOOK_SECRET", SMS_SECRET),
        ("BEIAN__SMS__LIMIT_PER_MINUTE", "1000"),
        ("BEIAN__SMS__LIMIT_PER_HOUR", "1000"),
        ("BEIAN__SMS__LIMIT_PER_DAY", "1000"),
        ("BEIAN__FACE__PROVIDER", "http"),
        ("BEIAN__FACE__URL", &face_url),
        ("BEIAN__JOBS__DEFAULT__BACKOFF_BASE_MS", "20"),
        ("BEIAN__JOBS__DEFAULT__BACKOFF_CAP_MS", "200"),
        ("BEIAN__QUEUE__POLL_INTERVAL_MS", "50"),
    ];
    overrides.extend_from_slice(extra);
    let app = match without_queue {
        None => spawn_app_with(backend, &overrides).await,
        Some(queue) => spawn_without_queue(backend, &overrides, queue).await,
    };
    (app, sms, face)
}

/// `spawn_app_with`, with every part of `serve` except the workers of `queue`.
async fn spawn_without_queue(backend: Backend, overrides: &[(&str, &str)], queue: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, pg_database) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("beian.db").display()),
            None,
        ),
        _ => {
            let (url, name) = super::fresh_postgres_database().await;
            (url, Some(name))
        }
    };
    let mut all: Vec<(String, String)> = Vec::new();
    if backend == Backend::PostgresAmqp {
        super::require_rabbitmq();
        all = super::amqp_overrides(&super::amqp_url());
    }
    all.extend(
        overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let parts = beian::app::Parts {
        api: true,
        workers: Some(
            beian::app::all_queues()
                .into_iter()
                .filter(|q| q != queue)
                .collect(),
        ),
        scheduler: true,
        migrate: true,
    };
    super::spawn_parts(url, pg_database, dir, &all, Some(parts)).await
}

/// Runs the `filing.intake` job of `filing_id` once, here and now.
pub async fn run_intake(app: &TestApp, filing_id: &str) -> beian::queue::Outcome {
    use beian::queue::Job;
    let job = beian::workers::filing_intake::FilingIntake {
        filing_id: filing_id.to_string(),
    };
    let ctx =
        beian::queue::JobContext::new(app.runtime().clone(), format!("by-hand-{filing_id}"), 1);
    job.run(ctx).await.expect("intake runs")
}

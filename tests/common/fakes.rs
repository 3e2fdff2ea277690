//! Fakes of the outside parties the filing flow talks to, as real HTTP servers on
//! 127.0.0.1:0 (an SMS gateway that checks the webhook signature, a face provider), the
//! helpers that point a test service at them, and a small "world" of registry data
//! (drivers, vehicles, unique plates, phones and ID numbers) with filing helpers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use beian::api::auth::Role;
use ring::hmac;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Backend, TestApp, plate_path, spawn_app_with};

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
    let ctx = beian::queue::JobContext {
        services: app.services().clone(),
        job_id: format!("by-hand-{filing_id}"),
        attempt: 1,
    };
    job.run(ctx).await.expect("intake runs")
}

// ---------------------------------------------------------------------------------------
// Registry data
// ---------------------------------------------------------------------------------------

static NEXT: AtomicU64 = AtomicU64::new(1);

fn next() -> u64 {
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Letters (without I and O) and digits, as plate serials use them.
const PLATE_ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
const PLATE_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const PROVINCES: &[char] = &['京', '沪', '粤', '苏', '浙', '川', '鲁', '豫'];
const SURNAMES: &[char] = &['王', '李', '张', '刘', '陈', '杨', '赵', '黄'];
const GIVEN: &[char] = &['伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋'];

/// A unique 11-digit mobile number starting with 139.
pub fn unique_phone() -> String {
    format!("139{:08}", next() % 100_000_000)
}

/// A unique 18-character ID number.
pub fn unique_id_number() -> String {
    format!("110101{:012}", next())
}

/// A three-character name (masked like `王*伟`).
pub fn unique_name() -> String {
    let n = next() as usize;
    format!(
        "{}{}{}",
        SURNAMES[n % SURNAMES.len()],
        GIVEN[(n / 8) % GIVEN.len()],
        GIVEN[(n / 80 + 3) % GIVEN.len()]
    )
}

/// A unique, valid plate number for `02` (or any ordinary type such as `01`).
pub fn unique_plate_02() -> String {
    let mut n = next();
    let province = PROVINCES[(n % PROVINCES.len() as u64) as usize];
    let office = PLATE_LETTERS[((n / 8) % PLATE_LETTERS.len() as u64) as usize] as char;
    let mut serial = String::new();
    for _ in 0..5 {
        serial.push(PLATE_ALNUM[(n % PLATE_ALNUM.len() as u64) as usize] as char);
        n /= PLATE_ALNUM.len() as u64;
    }
    format!("{province}{office}{serial}")
}

/// A unique, valid small new-energy (`52`) plate number.
pub fn unique_plate_52() -> String {
    let n = next();
    let province = PROVINCES[(n % PROVINCES.len() as u64) as usize];
    let office = PLATE_LETTERS[((n / 8) % PLATE_LETTERS.len() as u64) as usize] as char;
    let kind = if n % 2 == 0 { 'D' } else { 'F' };
    let second = PLATE_ALNUM[((n / 10_000) % PLATE_ALNUM.len() as u64) as usize] as char;
    format!("{province}{office}{kind}{second}{:04}", n % 10_000)
}

/// A person: a driver (`user_id` set when registered) or just a vehicle owner.
#[derive(Debug, Clone)]
pub struct Person {
    pub user_id: String,
    pub name: String,
    pub id_number: String,
    pub phone: String,
}

impl Person {
    pub fn new() -> Person {
        Person {
            user_id: format!("U{}", next()),
            name: unique_name(),
            id_number: unique_id_number(),
            phone: unique_phone(),
        }
    }

    /// As the caller of a request in role `user`.
    pub fn who(&self) -> Option<(&str, Role)> {
        Some((self.user_id.as_str(), Role::User))
    }
}

impl Default for Person {
    fn default() -> Self {
        Person::new()
    }
}

/// A vehicle as registered.
#[derive(Debug, Clone)]
pub struct Car {
    pub plate_type: String,
    pub plate_number: String,
    pub engine_number: String,
    pub owner: Person,
    pub owner_kind: String,
    pub usage: String,
    pub status: String,
}

impl Car {
    /// A normal small car owned by `owner`, not yet registered.
    pub fn new(owner: &Person) -> Car {
        Car {
            plate_type: "02".into(),
            plate_number: unique_plate_02(),
            engine_number: format!("EN{:08}", next() % 100_000_000),
            owner: owner.clone(),
            owner_kind: "person".into(),
            usage: "non_operating".into(),
            status: "normal".into(),
        }
    }

    /// The last six characters of the engine number, as a filer types them.
    pub fn engine_last6(&self) -> String {
        let chars: Vec<char> = self.engine_number.chars().collect();
        chars[chars.len() - 6..].iter().collect()
    }

    /// `02/%E4...` for paths.
    pub fn path(&self) -> String {
        plate_path(&self.plate_type, &self.plate_number)
    }

    /// The `POST /v1/filings` body for this car.
    pub fn filing_body(&self) -> Value {
        json!({"method": "sms", "plate_type": self.plate_type, "plate_number": self.plate_number,
               "engine_last6": self.engine_last6(), "relationship": "friend"})
    }
}

pub const SYSTEM: Option<(&str, Role)> = Some(("registry-feed", Role::System));
pub const ADMIN: Option<(&str, Role)> = Some(("ops", Role::Admin));

/// The registry and the filings of one test service.
pub struct World<'a> {
    pub app: &'a TestApp,
}

impl<'a> World<'a> {
    pub fn new(app: &'a TestApp) -> World<'a> {
        World { app }
    }

    /// Registers `person` as a driver (201).
    pub async fn register_driver(&self, person: &Person) {
        let (status, body) = self
            .app
            .put(
                &format!("/v1/registry/drivers/{}", person.user_id),
                SYSTEM,
                &json!({"name": person.name, "id_number": person.id_number, "phone": person.phone,
                        "licence_number": person.id_number, "licence_status": "valid", "points": 0}),
            )
            .await;
        assert!(
            status == 201 || status == 200,
            "driver upsert: {status} {body}"
        );
    }

    /// A new registered driver.
    pub async fn driver(&self) -> Person {
        let person = Person::new();
        self.register_driver(&person).await;
        person
    }

    /// `n` new registered drivers.
    pub async fn drivers(&self, n: usize) -> Vec<Person> {
        let mut people = Vec::with_capacity(n);
        for _ in 0..n {
            people.push(self.driver().await);
        }
        people
    }

    /// Registers (upserts) `car`.
    pub async fn register_vehicle(&self, car: &Car) {
        let (status, body) = self
            .app
            .put(
                &format!("/v1/registry/vehicles/{}", car.path()),
                SYSTEM,
                &json!({"owner_id_number": car.owner.id_number, "owner_name": car.owner.name,
                        "owner_phone": car.owner.phone, "owner_kind": car.owner_kind,
                        "engine_number": car.engine_number, "usage": car.usage, "status": car.status}),
            )
            .await;
        assert!(
            status == 201 || status == 200,
            "vehicle upsert: {status} {body}"
        );
    }

    /// A new registered small car of a new owner (who is not a registered driver).
    pub async fn vehicle(&self) -> Car {
        self.vehicle_of(&Person::new()).await
    }

    /// A new registered small car of `owner`.
    pub async fn vehicle_of(&self, owner: &Person) -> Car {
        let car = Car::new(owner);
        self.register_vehicle(&car).await;
        car
    }

    /// A new car of a new owner, changed by `change` before it is registered.
    pub async fn vehicle_with(&self, change: impl FnOnce(&mut Car)) -> Car {
        let mut car = Car::new(&Person::new());
        change(&mut car);
        self.register_vehicle(&car).await;
        car
    }

    /// Submits a filing with a fresh Idempotency-Key: (status, body, Location).
    pub async fn submit(&self, filer: &Person, body: &Value) -> (u16, Value, Option<String>) {
        self.submit_with_key(filer, body, Some(&uuid::Uuid::new_v4().to_string()))
            .await
    }

    pub async fn submit_with_key(
        &self,
        filer: &Person,
        body: &Value,
        key: Option<&str>,
    ) -> (u16, Value, Option<String>) {
        let mut request = self
            .app
            .request(reqwest::Method::POST, "/v1/filings", filer.who())
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("POST /v1/filings");
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (status, body) = super::answer(response).await;
        (status, body, location)
    }

    /// Files `car` as `filer` and returns the filing id (asserting 202 `received`).
    pub async fn file(&self, filer: &Person, car: &Car) -> String {
        let (status, body, _) = self.submit(filer, &car.filing_body()).await;
        assert_eq!(status, 202, "submit: {body}");
        assert_eq!(body["status"], "received", "{body}");
        body["id"].as_str().expect("filing id").to_string()
    }

    /// The filing as its filer sees it.
    pub async fn filing(&self, filer: &Person, id: &str) -> Value {
        let (status, body) = self
            .app
            .get(&format!("/v1/filings/{id}"), filer.who())
            .await;
        assert_eq!(status, 200, "GET filing {id}: {body}");
        body
    }

    /// Waits until the filing left `received` (intake ran) and returns it.
    pub async fn settled(&self, filer: &Person, id: &str) -> Value {
        self.wait_until(filer, id, "intake to run", |f| f["status"] != "received")
            .await
    }

    /// Waits until the filing is in `status` and returns it.
    pub async fn wait_status(&self, filer: &Person, id: &str, status: &str) -> Value {
        self.wait_until(filer, id, &format!("status {status}"), |f| {
            f["status"] == status
        })
        .await
    }

    pub async fn wait_until(
        &self,
        filer: &Person,
        id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let filing = self.filing(filer, id).await;
            if done(&filing) {
                return filing;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("filing {id}: {what} not within 15 s; last seen {filing}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Files `car` as `filer` and waits for intake: the filing after it.
    pub async fn file_and_settle(&self, filer: &Person, car: &Car) -> Value {
        let id = self.file(filer, car).await;
        self.settled(filer, &id).await
    }

    /// Files and expects a rejection with `reason`.
    pub async fn expect_rejected(&self, filer: &Person, car: &Car, reason: &str) -> Value {
        let filing = self.file_and_settle(filer, car).await;
        assert_eq!(
            (filing["status"].as_str(), filing["reason"].as_str()),
            (Some("rejected"), Some(reason)),
            "{filing}"
        );
        filing
    }

    /// Files and expects `code_sent`.
    pub async fn expect_code_sent(&self, filer: &Person, car: &Car) -> Value {
        let filing = self.file_and_settle(filer, car).await;
        assert_eq!(filing["status"], "code_sent", "{filing}");
        filing
    }

    /// Enters a code: (status, body).
    pub async fn enter_code(&self, filer: &Person, id: &str, code: &str) -> (u16, Value) {
        self.app
            .post(
                &format!("/v1/filings/{id}/code"),
                filer.who(),
                &json!({"code": code}),
            )
            .await
    }

    pub async fn resend(&self, filer: &Person, id: &str) -> (u16, Value) {
        self.app
            .post(
                &format!("/v1/filings/{id}/code/resend"),
                filer.who(),
                &json!({}),
            )
            .await
    }

    pub async fn face(&self, filer: &Person, id: &str, certify_id: &str) -> (u16, Value) {
        self.app
            .post(
                &format!("/v1/filings/{id}/face"),
                filer.who(),
                &json!({"certify_id": certify_id}),
            )
            .await
    }

    pub async fn delete(&self, who: Option<(&str, Role)>, path: &str) -> (u16, Value) {
        super::answer(
            self.app
                .request(reqwest::Method::DELETE, path, who)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// The service clock.
    pub async fn now(&self) -> chrono::DateTime<chrono::FixedOffset> {
        let (status, body) = self.app.get("/v1/test/clock", ADMIN).await;
        assert_eq!(status, 200, "{body}");
        chrono::DateTime::parse_from_rfc3339(body["now"].as_str().unwrap()).unwrap()
    }

    /// Moves the service clock to `to`.
    pub async fn set_clock(&self, to: chrono::DateTime<chrono::FixedOffset>) {
        let (status, body) = self
            .app
            .put("/v1/test/clock", ADMIN, &json!({"now": to.to_rfc3339()}))
            .await;
        assert_eq!(status, 200, "PUT clock: {body}");
    }

    /// Moves the service clock `seconds` forward.
    pub async fn advance(&self, seconds: i64) {
        let now = self.now().await;
        self.set_clock(now + chrono::Duration::seconds(seconds))
            .await;
    }
}

/// `13912345678` -> `139****5678`.
pub fn masked_phone(phone: &str) -> String {
    format!("{}****{}", &phone[..3], &phone[phone.len() - 4..])
}

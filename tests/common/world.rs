//! A small "world" of registry data for filing tests (drivers, vehicles, unique plates,
//! phones and ID numbers) with the filing steps as helpers.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use beian::api::auth::Role;
use serde_json::{Value, json};

use super::{TestApp, plate_path};

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

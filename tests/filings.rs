//! The filing flow (非本人机动车备案) end to end, on SQLite, PostgreSQL and PostgreSQL +
//! RabbitMQ: the service runs
//! in-process with its SMS gateway and face provider pointed at real HTTP fakes
//! (`common::fakes`); behaviour is asserted over the HTTP interface and at the fakes.

mod common;

use std::collections::BTreeMap;

use beian::api::auth::Role;
use beian::providers::sms::SmsMessage;
use beian::queue::{Job, JobContext, Outcome};
use beian::workers::sms_send::{CodeRef, SmsSend};
use common::fakes::{run_intake, spawn_filing_app, spawn_filing_app_without_intake};
use common::world::{Car, Person, World, masked_phone};
use common::{Backend, answer, eventually};
use serde_json::{Value, json};

/// Many applications a day per filer (tests that need several filings per filer).
const MANY_A_DAY: (&str, &str) = ("BEIAN__FILING__MAX_APPLICATIONS_PER_DAY", "100");

fn statuses(filing: &Value) -> Vec<String> {
    filing["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_string())
        .collect()
}

fn last_cause(filing: &Value) -> String {
    filing["history"]
        .as_array()
        .and_then(|h| h.last())
        .and_then(|h| h["cause"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("{value}")))
        .unwrap_or_else(|e| panic!("{value}: {e}"))
}

/// A code that is not `code`.
fn wrong(code: &str) -> String {
    if code == "000000" {
        "111111".into()
    } else {
        "000000".into()
    }
}

fn problem_code(body: &Value) -> Option<&str> {
    body["code"].as_str()
}

/// The caller's in-app messages about `filing_id`.
async fn messages_about(world: &World<'_>, person: &Person, filing_id: &str) -> Vec<Value> {
    let (status, body) = world.app.get("/v1/messages", person.who()).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|m| m["filing_id"] == filing_id)
        .cloned()
        .collect()
}

/// Submits one filing per (filer, car) at once; returns the filing ids in the same order.
async fn submit_concurrently(world: &World<'_>, pairs: &[(Person, Car)]) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (filer, car)) in pairs.iter().enumerate() {
        let request = world
            .app
            .request(reqwest::Method::POST, "/v1/filings", filer.who())
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&car.filing_body());
        tasks.spawn(async move { (i, answer(request.send().await.unwrap()).await) });
    }
    let mut ids = vec![String::new(); pairs.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, (status, body)) = done.unwrap();
        assert_eq!(status, 202, "{body}");
        ids[i] = body["id"].as_str().unwrap().to_string();
    }
    ids
}

/// Waits until every filing left `received`; returns them in order.
async fn all_settled(world: &World<'_>, pairs: &[(Person, Car)], ids: &[String]) -> Vec<Value> {
    eventually(20, "every intake ran", || async {
        let mut filings = Vec::with_capacity(ids.len());
        for ((filer, _), id) in pairs.iter().zip(ids) {
            let filing = world.filing(filer, id).await;
            if filing["status"] == "received" {
                return None;
            }
            filings.push(filing);
        }
        Some(filings)
    })
    .await
}

fn tally(filings: &[Value]) -> BTreeMap<String, usize> {
    let mut tally = BTreeMap::new();
    for f in filings {
        let key = match f["reason"].as_str() {
            Some(reason) => format!("{}:{reason}", f["status"].as_str().unwrap()),
            None => f["status"].as_str().unwrap().to_string(),
        };
        *tally.entry(key).or_insert(0) += 1;
    }
    tally
}

// ---------------------------------------------------------------------------------------
// 1. The SMS method, start to finish
// ---------------------------------------------------------------------------------------

async fn happy_path(backend: Backend) {
    let (app, sms, face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let filer = w.driver().await;

    let (status, body, location) = w.submit(&filer, &car.filing_body()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "received", "{body}");
    let id = body["id"].as_str().expect("id").to_string();
    assert_eq!(location, Some(format!("/v1/filings/{id}")));

    let filing = w.wait_status(&filer, &id, "code_sent").await;
    assert_eq!(
        filing["owner_phone_masked"],
        masked_phone(&owner.phone),
        "{filing}"
    );
    assert!(
        filing["owner_phone_masked"]
            .as_str()
            .unwrap()
            .contains("****")
    );
    assert_eq!(filing["own_vehicle"], false);
    assert!(filing["code_expires_at"].is_string(), "{filing}");

    let code_sms = sms.wait_for(&owner.phone, "filing_code", 0).await;
    let code = code_sms.params.get("code").expect("code param").clone();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code_sms:?}"
    );
    assert_eq!(code_sms.params.get("plate_number"), Some(&car.plate_number));
    assert_eq!(
        code_sms.params.get("minutes").map(String::as_str),
        Some("5")
    );
    let filer_name = code_sms.params.get("filer_name").expect("filer_name");
    assert!(filer_name.contains('*'), "{filer_name}");
    assert_ne!(filer_name, &filer.name);
    assert!(filer_name.starts_with(filer.name.chars().next().unwrap()));
    assert!(code_sms.message_id.contains(&id), "{code_sms:?}");
    assert!(
        sms.messages_to(&filer.phone, "filing_code").is_empty(),
        "the code goes to the owner only"
    );

    // Someone else's filing does not exist for them.
    let (status, body) = app.get(&format!("/v1/filings/{id}"), owner.who()).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = w.enter_code(&owner, &id, &code).await;
    assert_eq!(status, 404, "{body}");

    let (status, body) = w.enter_code(&filer, &id, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "code_verified", "{body}");
    assert!(body["code_expires_at"].is_null(), "{body}");

    let (status, body) = w.face(&filer, &id, "ok-1").await;
    assert_eq!(status, 202, "{body}");
    let filing = w.wait_status(&filer, &id, "approved").await;
    assert_eq!(
        statuses(&filing),
        ["received", "code_sent", "code_verified", "approved"]
    );
    let mut previous = None;
    for entry in filing["history"].as_array().unwrap() {
        let at = time(&entry["at"]);
        assert!(
            previous.is_none_or(|p| p <= at),
            "history out of order: {filing}"
        );
        previous = Some(at);
        assert!(
            !entry["cause"].as_str().unwrap_or_default().is_empty(),
            "{entry}"
        );
    }
    assert_eq!(filing["history"][0]["cause"], "submitted");
    let calls = face.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].certify_id, "ok-1");
    assert_eq!(calls[0].user_id, filer.user_id);

    // The decision reaches both the filer and the owner: SMS and in-app message.
    let to_filer = sms.wait_for(&filer.phone, "filing_decision", 0).await;
    let to_owner = sms.wait_for(&owner.phone, "filing_decision", 0).await;
    assert_ne!(to_filer.message_id, to_owner.message_id);
    for person in [&filer, &owner] {
        let found = eventually(10, "in-app decision message", || async {
            let items = messages_about(&w, person, &id).await;
            (!items.is_empty()).then_some(items)
        })
        .await;
        assert_eq!(found.len(), 1, "{found:?}");
    }
    assert_eq!(sms.refused_count(), 0);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 2. Every intake reason code
// ---------------------------------------------------------------------------------------

/// Registry checks (type, existence, engine number, eligibility) and the yearly limit.
async fn rejections_registry_and_yearly(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(
        backend,
        &[
            MANY_A_DAY,
            ("BEIAN__FILING__MAX_APPLICATIONS_PER_YEAR", "2"),
        ],
    )
    .await;
    let w = World::new(&app);

    let large_car = w.vehicle_with(|c| c.plate_type = "01".into()).await;
    w.expect_rejected(&w.driver().await, &large_car, "plate_type_not_allowed")
        .await;

    let unregistered = Car::new(&Person::new());
    w.expect_rejected(&w.driver().await, &unregistered, "vehicle_not_found")
        .await;

    let car = w.vehicle().await;
    let filer = w.driver().await;
    let mut body = car.filing_body();
    body["engine_last6"] = json!("ZZ9999");
    let (status, answer, _) = w.submit(&filer, &body).await;
    assert_eq!(status, 202, "{answer}");
    let filing = w.settled(&filer, answer["id"].as_str().unwrap()).await;
    assert_eq!(
        (filing["status"].as_str(), filing["reason"].as_str()),
        (Some("rejected"), Some("engine_mismatch")),
        "{filing}"
    );

    let unit_operating = w
        .vehicle_with(|c| {
            c.owner_kind = "unit".into();
            c.usage = "operating".into();
        })
        .await;
    let filer = w.driver().await;
    w.expect_rejected(&filer, &unit_operating, "vehicle_not_eligible")
        .await;
    // A unit's non-operating vehicle can be filed (the same filer, a second application).
    let unit_private = w.vehicle_with(|c| c.owner_kind = "unit".into()).await;
    w.expect_code_sent(&filer, &unit_private).await;

    let scrapped = w.vehicle_with(|c| c.status = "scrapped".into()).await;
    w.expect_rejected(&w.driver().await, &scrapped, "vehicle_not_eligible")
        .await;

    // The yearly limit (2 here), with a small new-energy vehicle among the filings.
    let new_energy = w
        .vehicle_with(|c| {
            c.plate_type = "52".into();
            c.plate_number = common::world::unique_plate_52();
        })
        .await;
    let filer = w.driver().await;
    w.expect_code_sent(&filer, &new_energy).await;
    w.expect_code_sent(&filer, &w.vehicle().await).await;
    w.expect_rejected(&filer, &w.vehicle().await, "yearly_limit")
        .await;

    for rejected in [&large_car, &unit_operating, &scrapped] {
        assert!(
            sms.messages_to(&rejected.owner.phone, "filing_code")
                .is_empty(),
            "no code for a rejected filing"
        );
    }
    app.stop().await;
}

/// The same vehicle twice, the filer's and the vehicle's quotas.
async fn rejections_quotas(backend: Backend) {
    let (app, _sms, _face) = spawn_filing_app(backend, &[MANY_A_DAY]).await;
    let w = World::new(&app);

    let filer = w.driver().await;
    let car = w.vehicle().await;
    w.expect_code_sent(&filer, &car).await;
    w.expect_rejected(&filer, &car, "already_filed").await;

    let filer = w.driver().await;
    for _ in 0..3 {
        w.expect_code_sent(&filer, &w.vehicle().await).await;
    }
    w.expect_rejected(&filer, &w.vehicle().await, "user_quota_exceeded")
        .await;

    let car = w.vehicle().await;
    for filer in w.drivers(3).await {
        w.expect_code_sent(&filer, &car).await;
    }
    w.expect_rejected(&w.driver().await, &car, "vehicle_quota_exceeded")
        .await;
    app.stop().await;
}

/// The daily limit (default 1) and the owner's phone over its SMS flow control (at intake, and
/// on a resend).
async fn rejections_daily_and_sms_rate(backend: Backend) {
    let (app, sms, _face) =
        spawn_filing_app(backend, &[("BEIAN__SMS__LIMIT_PER_MINUTE", "1")]).await;
    let w = World::new(&app);

    let filer = w.driver().await;
    w.expect_code_sent(&filer, &w.vehicle().await).await;
    w.expect_rejected(&filer, &w.vehicle().await, "daily_limit")
        .await;

    let owner = Person::new();
    let first = w.vehicle_of(&owner).await;
    let second = w.vehicle_of(&owner).await;
    let first_filer = w.driver().await;
    let first_id = w.expect_code_sent(&first_filer, &first).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let second_filer = w.driver().await;
    w.expect_rejected(&second_filer, &second, "sms_rate_limited")
        .await;
    sms.wait_for(&owner.phone, "filing_code", 0).await;
    assert_eq!(sms.messages_to(&owner.phone, "filing_code").len(), 1);

    // A minute later the phone takes a code again, and the same filer tries again (api.md:
    // "the filer may try again later"): the refusal used up none of their daily limit.
    // A resend that would make two within a minute is refused with 429 sms_rate_limited,
    // and the filing keeps its code.
    w.advance(61).await;
    w.expect_code_sent(&second_filer, &second).await;
    let (status, body) = w.resend(&first_filer, &first_id).await;
    assert_eq!(
        (status, problem_code(&body)),
        (429, Some("sms_rate_limited")),
        "{body}"
    );
    assert_eq!(
        w.filing(&first_filer, &first_id).await["status"],
        "code_sent"
    );
    eventually(10, "the second vehicle's code", || async {
        (sms.messages_to(&owner.phone, "filing_code").len() == 2).then_some(())
    })
    .await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 3. Codes: wrong entries, lock, resend, expiry, abandonment
// ---------------------------------------------------------------------------------------

async fn codes(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);

    // Wrong entries count down, then the code is dead.
    let filer = w.driver().await;
    let car = w.vehicle().await;
    let id = w.file(&filer, &car).await;
    w.wait_status(&filer, &id, "code_sent").await;
    let first = sms.wait_for(&car.owner.phone, "filing_code", 0).await;
    let code = first.params["code"].clone();
    for left in [4, 3, 2, 1, 0] {
        let (status, body) = w.enter_code(&filer, &id, &wrong(&code)).await;
        assert_eq!(
            (status, problem_code(&body)),
            (422, Some("code_mismatch")),
            "{body}"
        );
        assert_eq!(body["attempts_left"], left, "{body}");
    }
    let (status, body) = w.enter_code(&filer, &id, &code).await;
    assert_eq!(
        (status, problem_code(&body)),
        (429, Some("code_locked")),
        "{body}"
    );

    // A new code only after 60 s; it is a new message with a new code that verifies.
    let (status, body) = w.resend(&filer, &id).await;
    assert_eq!(
        (status, problem_code(&body)),
        (429, Some("resend_too_soon")),
        "{body}"
    );
    let mark = sms.mark();
    w.advance(61).await;
    let (status, body) = w.resend(&filer, &id).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "code_sent", "{body}");
    let second = sms.wait_for(&car.owner.phone, "filing_code", mark).await;
    assert_ne!(second.message_id, first.message_id);
    let (status, body) = w.enter_code(&filer, &id, &second.params["code"]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "code_verified", "{body}");

    // Wrong entries sent at once are counted one by one: five mismatches, then locked.
    let filer = w.driver().await;
    let car = w.vehicle().await;
    let id = w.file(&filer, &car).await;
    w.wait_status(&filer, &id, "code_sent").await;
    let code = sms
        .wait_for(&car.owner.phone, "filing_code", 0)
        .await
        .params["code"]
        .clone();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let request = app
            .request(
                reqwest::Method::POST,
                &format!("/v1/filings/{id}/code"),
                filer.who(),
            )
            .json(&json!({"code": wrong(&code)}));
        tasks.spawn(async move { answer(request.send().await.unwrap()).await });
    }
    let mut left = Vec::new();
    let mut locked = 0;
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        match (status, problem_code(&body)) {
            (422, Some("code_mismatch")) => left.push(body["attempts_left"].as_i64().unwrap()),
            (429, Some("code_locked")) => locked += 1,
            other => panic!("unexpected answer {other:?}: {body}"),
        }
    }
    left.sort();
    assert_eq!((left, locked), (vec![0, 1, 2, 3, 4], 5));

    // Expiry: the timer fires, the code is gone, a resend starts again.
    let filer = w.driver().await;
    let car = w.vehicle().await;
    let id = w.file(&filer, &car).await;
    let sent = w.wait_status(&filer, &id, "code_sent").await;
    let expires_at = time(&sent["code_expires_at"]);
    let first = sms.wait_for(&car.owner.phone, "filing_code", 0).await;
    w.advance(301).await;
    let expired = w.wait_status(&filer, &id, "code_expired").await;
    let entry = expired["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(entry["status"], "code_expired");
    assert!(
        time(&entry["at"]) >= expires_at,
        "a timer's history entry is never before its due time: {expired}"
    );
    let (status, body) = w.enter_code(&filer, &id, &first.params["code"]).await;
    assert_eq!(
        (status, problem_code(&body)),
        (410, Some("code_expired")),
        "{body}"
    );
    let mark = sms.mark();
    let (status, body) = w.resend(&filer, &id).await;
    assert_eq!(status, 202, "{body}");
    w.wait_status(&filer, &id, "code_sent").await;
    let second = sms.wait_for(&car.owner.phone, "filing_code", mark).await;
    assert_ne!(second.message_id, first.message_id);

    // Abandonment: 24 hours in code_expired without a resend cancels the filing.
    w.advance(301).await;
    w.wait_status(&filer, &id, "code_expired").await;
    w.advance(24 * 3600 + 60).await;
    let cancelled = w.wait_status(&filer, &id, "cancelled").await;
    assert_eq!(last_cause(&cancelled), "abandoned", "{cancelled}");
    assert_eq!(
        statuses(&cancelled),
        [
            "received",
            "code_sent",
            "code_expired",
            "code_sent",
            "code_expired",
            "cancelled"
        ]
    );
    let (status, body) = w.resend(&filer, &id).await;
    assert_eq!(status, 409, "no code for a cancelled filing: {body}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 4. Idempotency-Key
// ---------------------------------------------------------------------------------------

async fn idempotency(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let filer = w.driver().await;
    let car = w.vehicle().await;
    let key = uuid::Uuid::new_v4().to_string();

    let (status, first, first_location) = w
        .submit_with_key(&filer, &car.filing_body(), Some(&key))
        .await;
    assert_eq!(status, 202, "{first}");
    let (status, again, again_location) = w
        .submit_with_key(&filer, &car.filing_body(), Some(&key))
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again_location, first_location);

    let mut other = car.filing_body();
    other["relationship"] = json!("relative");
    let (status, body, _) = w.submit_with_key(&filer, &other, Some(&key)).await;
    assert_eq!(
        (status, problem_code(&body)),
        (422, Some("idempotency_key_reused")),
        "{body}"
    );
    let (status, body, _) = w.submit_with_key(&filer, &car.filing_body(), None).await;
    assert_eq!(
        (status, problem_code(&body)),
        (400, Some("idempotency_key_required")),
        "{body}"
    );

    // The same key sent by ten clients at once: one filing, the same answer for all.
    let other_car = w.vehicle().await;
    let other_filer = w.driver().await;
    let shared_key = uuid::Uuid::new_v4().to_string();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let request = app
            .request(reqwest::Method::POST, "/v1/filings", other_filer.who())
            .header("Idempotency-Key", shared_key.clone())
            .json(&other_car.filing_body());
        tasks.spawn(async move { answer(request.send().await.unwrap()).await });
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, 202, "{body}");
        seen.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 1, "one filing for one key: {seen:?}");
    let (status, list) = app.get("/v1/filings", other_filer.who()).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    // Keys are the caller's own: the first filer's key means nothing to another filer.
    let (status, body, _) = w
        .submit_with_key(
            &w.driver().await,
            &w.vehicle().await.filing_body(),
            Some(&key),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_ne!(body["id"], first["id"]);

    let id = first["id"].as_str().unwrap();
    w.wait_status(&filer, id, "code_sent").await;
    let (status, list) = app.get("/v1/filings", filer.who()).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["id"], id);
    sms.wait_for(&car.owner.phone, "filing_code", 0).await;
    assert_eq!(sms.messages_to(&car.owner.phone, "filing_code").len(), 1);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 5, 6. Races on the limits
// ---------------------------------------------------------------------------------------

/// 30 filers, one vehicle, all at once: exactly 3 places.
async fn race_one_vehicle(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let car = w.vehicle().await;
    let pairs: Vec<(Person, Car)> = w
        .drivers(30)
        .await
        .into_iter()
        .map(|filer| (filer, car.clone()))
        .collect();
    let ids = submit_concurrently(&w, &pairs).await;
    let filings = all_settled(&w, &pairs, &ids).await;
    let tally = tally(&filings);
    assert_eq!(
        tally,
        BTreeMap::from([
            ("code_sent".to_string(), 3),
            ("rejected:vehicle_quota_exceeded".to_string(), 27)
        ]),
        "{tally:?}"
    );
    eventually(10, "three codes at the owner", || async {
        (sms.messages_to(&car.owner.phone, "filing_code").len() == 3).then_some(())
    })
    .await;
    app.stop().await;
}

/// One filer, six vehicles, all at once: exactly 3 places.
async fn race_one_filer(backend: Backend) {
    let (app, _sms, _face) = spawn_filing_app(
        backend,
        &[
            MANY_A_DAY,
            ("BEIAN__FILING__MAX_APPLICATIONS_PER_YEAR", "100"),
        ],
    )
    .await;
    let w = World::new(&app);
    let filer = w.driver().await;
    let mut pairs = Vec::new();
    for _ in 0..6 {
        pairs.push((filer.clone(), w.vehicle().await));
    }
    let ids = submit_concurrently(&w, &pairs).await;
    let filings = all_settled(&w, &pairs, &ids).await;
    let tally = tally(&filings);
    assert_eq!(
        tally,
        BTreeMap::from([
            ("code_sent".to_string(), 3),
            ("rejected:user_quota_exceeded".to_string(), 3)
        ]),
        "{tally:?}"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 7. The daily limit follows the test clock (Asia/Shanghai days)
// ---------------------------------------------------------------------------------------

async fn daily_limit_next_day(backend: Backend) {
    let (app, _sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let filer = w.driver().await;
    w.expect_code_sent(&filer, &w.vehicle().await).await;
    w.expect_rejected(&filer, &w.vehicle().await, "daily_limit")
        .await;

    let now = w.now().await;
    assert_eq!(now.offset().local_minus_utc(), 8 * 3600, "{now}");
    let tomorrow = now.date_naive().succ_opt().unwrap();
    let ten = tomorrow
        .and_hms_opt(10, 0, 0)
        .unwrap()
        .and_local_timezone(*now.offset())
        .unwrap();
    w.set_clock(ten).await;
    let third = w.expect_code_sent(&filer, &w.vehicle().await).await;
    assert_eq!(time(&third["created_at"]).date_naive(), tomorrow, "{third}");
    app.stop().await;
}

/// Intake counts the applications a filer started *before* this one: with the default of one
/// a day, the first application of the day goes on and the second is `daily_limit`, even when
/// both are submitted before either intake job runs (jobs.md: ordering is not promised, so
/// an intake may well find later applications still `received`). Here both are submitted
/// first and intake is then run by hand in submission order.
async fn daily_limit_counts_earlier_applications_only(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app_without_intake(backend, &[]).await;
    let w = World::new(&app);
    let outcome = |f: &Value| {
        format!(
            "{}{}",
            f["status"].as_str().unwrap(),
            f["reason"]
                .as_str()
                .map(|r| format!(":{r}"))
                .unwrap_or_default()
        )
    };

    // Two valid applications: the first goes on, the second is over the daily limit.
    let filer = w.driver().await;
    let first_car = w.vehicle().await;
    let first = w.file(&filer, &first_car).await;
    let second = w.file(&filer, &w.vehicle().await).await;
    assert_eq!(run_intake(&app, &first).await, Outcome::Done);
    assert_eq!(run_intake(&app, &second).await, Outcome::Done);
    let two_valid = [
        outcome(&w.filing(&filer, &first).await),
        outcome(&w.filing(&filer, &second).await),
    ];

    // A valid application, then a mistyped one: the valid one goes on.
    let filer = w.driver().await;
    let good = w.file(&filer, &w.vehicle().await).await;
    let mut typo = w.vehicle().await.filing_body();
    typo["engine_last6"] = json!("ZZ9999");
    let (status, body, _) = w.submit(&filer, &typo).await;
    assert_eq!(status, 202, "{body}");
    let typo = body["id"].as_str().unwrap().to_string();
    run_intake(&app, &good).await;
    run_intake(&app, &typo).await;
    let valid_then_typo = [
        outcome(&w.filing(&filer, &good).await),
        outcome(&w.filing(&filer, &typo).await),
    ];

    assert_eq!(
        (two_valid, valid_then_typo),
        (
            ["code_sent".to_string(), "rejected:daily_limit".to_string()],
            [
                "code_sent".to_string(),
                "rejected:engine_mismatch".to_string()
            ]
        ),
        "intake judged the first application of the day by a later one"
    );
    sms.wait_for(&first_car.owner.phone, "filing_code", 0).await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 8. Cancelling and unbinding free the place; the owner's view and removal
// ---------------------------------------------------------------------------------------

async fn approve(
    w: &World<'_>,
    sms: &common::fakes::FakeSmsGateway,
    filer: &Person,
    car: &Car,
    id: &str,
) {
    let sent = sms
        .messages_to(&car.owner.phone, "filing_code")
        .into_iter()
        .find(|m| m.message_id.contains(id))
        .expect("the filing's code SMS");
    let (status, body) = w.enter_code(filer, id, &sent.params["code"]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.face(filer, id, "ok-approve").await;
    assert_eq!(status, 202, "{body}");
    w.wait_status(filer, id, "approved").await;
}

async fn cancel_unbind_and_owner(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let filers = w.drivers(5).await;

    let mut ids = Vec::new();
    for filer in &filers[..3] {
        ids.push(
            w.expect_code_sent(filer, &car).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    w.expect_rejected(&filers[3], &car, "vehicle_quota_exceeded")
        .await;

    // The filer cancels: the place is free at once.
    let (status, body) = w
        .delete(filers[0].who(), &format!("/v1/filings/{}", ids[0]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled", "{body}");
    let fifth = w.expect_code_sent(&filers[4], &car).await;
    let fifth_id = fifth["id"].as_str().unwrap().to_string();

    // Wait until every code went out (the approvals below read them).
    eventually(10, "four codes at the owner", || async {
        (sms.messages_to(&owner.phone, "filing_code").len() == 4).then_some(())
    })
    .await;

    // An approved filing is unbound by its filer.
    approve(&w, &sms, &filers[1], &car, &ids[1]).await;
    let (status, body) = w
        .delete(filers[1].who(), &format!("/v1/filings/{}", ids[1]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "unbound", "{body}");
    let (status, body) = w
        .delete(filers[1].who(), &format!("/v1/filings/{}", ids[1]))
        .await;
    assert_eq!(status, 409, "already ended: {body}");

    // The owner sees the live filers, names masked; a stranger may not look.
    approve(&w, &sms, &filers[2], &car, &ids[2]).await;
    let list_path = format!("/v1/vehicles/{}/filings", car.path());
    let (status, list) = app.get(&list_path, owner.who()).await;
    assert_eq!(status, 200, "{list}");
    let mut listed: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut live = vec![ids[2].clone(), fifth_id.clone()];
    live.sort();
    assert_eq!(listed, live, "{list}");
    let text = list.to_string();
    for filer in &filers {
        assert!(!text.contains(&filer.name), "a full name in {text}");
    }
    for item in list["items"].as_array().unwrap() {
        assert!(
            item["filer_name_masked"].as_str().unwrap().contains('*'),
            "{item}"
        );
    }
    let (status, body) = app.get(&list_path, filers[3].who()).await;
    assert_eq!(status, 403, "a stranger: {body}");

    // The owner removes an approved filer (unbound) and one in progress (cancelled).
    let (status, body) = w
        .delete(owner.who(), &format!("{list_path}/{}", ids[2]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "unbound", "{body}");
    assert_eq!(w.filing(&filers[2], &ids[2]).await["status"], "unbound");
    let (status, body) = w
        .delete(owner.who(), &format!("{list_path}/{fifth_id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.filing(&filers[4], &fifth_id).await["status"], "cancelled");
    let (status, body) = w
        .delete(filers[3].who(), &format!("{list_path}/{fifth_id}"))
        .await;
    assert_eq!(status, 403, "a stranger removes nothing: {body}");
    let (status, list) = app.get(&list_path, owner.who()).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    // Every place is free again.
    for filer in w.drivers(3).await {
        w.expect_code_sent(&filer, &car).await;
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 9. sms.send: retried through gateway errors, effects once
// ---------------------------------------------------------------------------------------

async fn sms_send_retries_and_dedups(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let filer = w.driver().await;
    let car = w.vehicle().await;

    sms.fail_next(2);
    let id = w.file(&filer, &car).await;
    let code_sms = sms.wait_for(&car.owner.phone, "filing_code", 0).await;
    assert!(sms.request_count() >= 3, "two failures, then the delivery");
    assert_eq!(sms.messages_to(&car.owner.phone, "filing_code").len(), 1);
    let (status, body) = w.enter_code(&filer, &id, &code_sms.params["code"]).await;
    assert_eq!(status, 200, "{body}");

    let ctx = |attempt| {
        JobContext::new(
            app.runtime().clone(),
            format!("direct-{}-{attempt}", uuid::Uuid::new_v4()),
            attempt,
        )
    };
    // The code message again: the effect is recorded, nothing is sent. (The gateway may
    // have the message before its job recorded the send: wait for the record.)
    eventually(10, "the code send recorded", || async {
        beian::store::jobs::effect_done(&app.services().db, "sms.send", &code_sms.message_id)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    let replay = SmsSend {
        message: SmsMessage {
            message_id: code_sms.message_id.clone(),
            phone: code_sms.phone.clone(),
            template: code_sms.template.clone(),
            params: BTreeMap::from([("plate_number".to_string(), car.plate_number.clone())]),
        },
        code: Some(CodeRef {
            filing_id: id.clone(),
            code_number: 1,
        }),
    };
    assert_eq!(replay.run(ctx(1)).await.unwrap(), Outcome::Duplicate);
    assert_eq!(sms.deliveries_of(&code_sms.message_id), 1);

    // A fresh message run twice: delivered once.
    let message_id = format!("test:direct:{}", uuid::Uuid::new_v4());
    let job = SmsSend {
        message: SmsMessage {
            message_id: message_id.clone(),
            phone: filer.phone.clone(),
            template: "filing_decision".into(),
            params: BTreeMap::from([("filing_id".to_string(), id.clone())]),
        },
        code: None,
    };
    assert_eq!(job.clone().run(ctx(1)).await.unwrap(), Outcome::Done);
    assert_eq!(job.run(ctx(2)).await.unwrap(), Outcome::Duplicate);
    assert_eq!(sms.deliveries_of(&message_id), 1);
    assert_eq!(sms.refused_count(), 0);

    // The gateway does check signatures: a forged message is refused and not delivered.
    let forged = json!({"message_id": "forged-1", "phone": filer.phone, "template": "filing_code",
                        "params": {"code": "123456"}});
    let response = reqwest::Client::new()
        .post(sms.url())
        .header("X-Beian-Signature", "00".repeat(32))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(sms.refused_count(), 1);
    assert_eq!(sms.deliveries_of("forged-1"), 0);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 10. The owner filing their own vehicle
// ---------------------------------------------------------------------------------------

async fn own_vehicle(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;

    let own = w.file_and_settle(&owner, &car).await;
    assert_eq!(own["status"], "approved", "{own}");
    assert_eq!(own["own_vehicle"], true, "{own}");
    assert_eq!(statuses(&own), ["received", "approved"]);
    let own_id = own["id"].as_str().unwrap().to_string();
    sms.wait_for(&owner.phone, "filing_decision", 0).await;
    assert!(
        sms.messages_to(&owner.phone, "filing_code").is_empty(),
        "no owner code for one's own vehicle"
    );

    // Not counted: the owner still has today's application, and the vehicle three places.
    w.expect_code_sent(&owner, &w.vehicle().await).await;
    for filer in w.drivers(3).await {
        w.expect_code_sent(&filer, &car).await;
    }
    w.expect_rejected(&w.driver().await, &car, "vehicle_quota_exceeded")
        .await;
    let (status, list) = app
        .get(&format!("/v1/vehicles/{}/filings", car.path()), owner.who())
        .await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{list}");
    assert!(items.iter().all(|i| i["id"] != own_id.as_str()), "{list}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 11. The face provider: outages are retried; a failed check asks for documents
// ---------------------------------------------------------------------------------------

async fn face_outage_and_failure(backend: Backend) {
    let (app, sms, face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);

    let filer = w.driver().await;
    let car = w.vehicle().await;
    let id = w.file(&filer, &car).await;
    let code = sms.wait_for(&car.owner.phone, "filing_code", 0).await;
    w.wait_status(&filer, &id, "code_sent").await;
    let (status, body) = w.enter_code(&filer, &id, &code.params["code"]).await;
    assert_eq!(status, 200, "{body}");
    face.fail_next(2);
    let (status, body) = w.face(&filer, &id, "ok-outage").await;
    assert_eq!(status, 202, "{body}");
    let approved = w.wait_status(&filer, &id, "approved").await;
    assert_eq!(last_cause(&approved), "face_passed", "{approved}");
    let calls: Vec<u16> = face
        .calls()
        .iter()
        .filter(|c| c.certify_id == "ok-outage")
        .map(|c| c.status)
        .collect();
    assert_eq!(calls, [503, 503, 200]);

    let filer = w.driver().await;
    let car = w.vehicle().await;
    let id = w.file(&filer, &car).await;
    let code = sms.wait_for(&car.owner.phone, "filing_code", 0).await;
    w.wait_status(&filer, &id, "code_sent").await;
    let (status, body) = w.enter_code(&filer, &id, &code.params["code"]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.face(&filer, &id, "fail-1").await;
    assert_eq!(status, 202, "{body}");
    let filing = w.wait_status(&filer, &id, "documents_required").await;
    assert_eq!(last_cause(&filing), "face_failed", "{filing}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// 12. Defects of issue 9
// ---------------------------------------------------------------------------------------

/// The owner's own vehicle, still waiting for its intake, counts for nothing: a later
/// application of the same person for another vehicle goes on whichever intake runs first.
async fn own_vehicle_pending_counts_for_nothing(backend: Backend) {
    let (app, _sms, _face) = spawn_filing_app_without_intake(backend, &[]).await;
    let w = World::new(&app);
    let outcome = |f: &Value| {
        format!(
            "{}{}",
            f["status"].as_str().unwrap(),
            f["reason"]
                .as_str()
                .map(|r| format!(":{r}"))
                .unwrap_or_default()
        )
    };
    let mut seen = Vec::new();
    for others_first in [true, false] {
        let owner = w.driver().await;
        let own_car = w.vehicle_of(&owner).await;
        let own = w.file(&owner, &own_car).await;
        let other = w.file(&owner, &w.vehicle().await).await;
        let order = if others_first {
            [&other, &own]
        } else {
            [&own, &other]
        };
        for id in order {
            assert_eq!(run_intake(&app, id).await, Outcome::Done);
        }
        seen.push([
            outcome(&w.filing(&owner, &own).await),
            outcome(&w.filing(&owner, &other).await),
        ]);
    }
    let expected = ["approved".to_string(), "code_sent".to_string()];
    assert_eq!(
        seen,
        [expected.clone(), expected],
        "(others first, own first): the pending own filing counted"
    );
    app.stop().await;
}

/// `GET /v1/messages` is the `user` role's (api.md).
async fn messages_need_the_user_role(backend: Backend) {
    let (app, _sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let user = w.driver().await;
    let (status, body) = app.get("/v1/messages", user.who()).await;
    assert_eq!(status, 200, "{body}");
    for role in [Role::Reviewer, Role::Admin, Role::System] {
        let (status, body) = app.get("/v1/messages", Some((&user.user_id, role))).await;
        assert_eq!(
            (status, problem_code(&body)),
            (403, Some("forbidden")),
            "{role:?}: {body}"
        );
    }
    let (status, body) = app.get("/v1/messages", None).await;
    assert_eq!(status, 401, "{body}");
    app.stop().await;
}

/// The owner's list shows only filings past intake, in pages; removing a filer answers the
/// filing itself.
async fn owner_list_pages_and_removal_answers_the_filing(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app_without_intake(backend, &[]).await;
    let w = World::new(&app);
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let filers = w.drivers(3).await;
    let mut ids = Vec::new();
    for filer in &filers {
        ids.push(w.file(filer, &car).await);
    }
    let list_path = format!("/v1/vehicles/{}/filings", car.path());
    let listed = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };

    // Nothing passed intake yet: nothing to show.
    let (status, list) = app.get(&list_path, owner.who()).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(listed(&list), Vec::<String>::new(), "{list}");
    // Nor can the owner remove what they cannot see.
    let (status, body) = w
        .delete(owner.who(), &format!("{list_path}/{}", ids[2]))
        .await;
    assert_eq!(status, 404, "{body}");

    run_intake(&app, &ids[0]).await;
    run_intake(&app, &ids[1]).await;
    eventually(10, "two codes at the owner", || async {
        (sms.messages_to(&owner.phone, "filing_code").len() == 2).then_some(())
    })
    .await;

    // Pages of one.
    let (status, first) = app.get(&format!("{list_path}?limit=1"), owner.who()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(listed(&first).len(), 1, "{first}");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (status, second) = app
        .get(&format!("{list_path}?limit=1&cursor={cursor}"), owner.who())
        .await;
    assert_eq!(status, 200, "{second}");
    let mut both = [listed(&first), listed(&second)].concat();
    both.sort();
    let mut expected = vec![ids[0].clone(), ids[1].clone()];
    expected.sort();
    assert_eq!(both, expected, "{first} {second}");
    let (status, bad) = app.get(&format!("{list_path}?limit=0"), owner.who()).await;
    assert_eq!(
        (status, problem_code(&bad)),
        (422, Some("invalid_limit")),
        "{bad}"
    );

    // Removing one in progress answers the filing, now cancelled, with its history.
    let (status, body) = w
        .delete(owner.who(), &format!("{list_path}/{}", ids[0]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], ids[0].as_str(), "{body}");
    assert_eq!(body["status"], "cancelled", "{body}");
    assert_eq!(body["plate_number"], car.plate_number.as_str(), "{body}");
    assert_eq!(last_cause(&body), "cancelled_by_owner", "{body}");
    assert_eq!(body, w.filing(&filers[0], &ids[0]).await);
    app.stop().await;
}

/// A face check whose job died (the provider failed every attempt) runs again when the filer
/// hands the same certification in again.
async fn face_check_of_a_dead_job_runs_again(backend: Backend) {
    let (app, sms, face) =
        spawn_filing_app(backend, &[("BEIAN__JOBS__FACE__MAX_ATTEMPTS", "1")]).await;
    let w = World::new(&app);
    let filer = w.driver().await;
    let car = w.vehicle().await;
    let id = w.file(&filer, &car).await;
    let code = sms.wait_for(&car.owner.phone, "filing_code", 0).await;
    w.wait_status(&filer, &id, "code_sent").await;
    let (status, body) = w.enter_code(&filer, &id, &code.params["code"]).await;
    assert_eq!(status, 200, "{body}");

    face.fail_next(1);
    let (status, body) = w.face(&filer, &id, "ok-dead").await;
    assert_eq!(status, 202, "{body}");
    eventually(20, "the face job dead", || async {
        let (status, body) = app
            .get("/v1/admin/jobs?state=dead", common::world::ADMIN)
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["kind"] == "face.verify")
            .then_some(())
    })
    .await;
    assert_eq!(w.filing(&filer, &id).await["status"], "code_verified");

    let (status, body) = w.face(&filer, &id, "ok-dead").await;
    assert_eq!(status, 202, "{body}");
    let approved = w.wait_status(&filer, &id, "approved").await;
    assert_eq!(last_cause(&approved), "face_passed", "{approved}");
    let calls: Vec<u16> = face
        .calls()
        .iter()
        .filter(|c| c.certify_id == "ok-dead")
        .map(|c| c.status)
        .collect();
    assert_eq!(calls, [503, 200]);
    app.stop().await;
}

/// The key is looked up before the body is validated; the resend endpoint honours it.
async fn idempotency_key_first_and_on_resend(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let filer = w.driver().await;
    let car = w.vehicle().await;
    let key = uuid::Uuid::new_v4().to_string();
    let (status, first, _) = w
        .submit_with_key(&filer, &car.filing_body(), Some(&key))
        .await;
    assert_eq!(status, 202, "{first}");
    let mut invalid = car.filing_body();
    invalid["plate_number"] = json!("not a plate");
    let (status, body, _) = w.submit_with_key(&filer, &invalid, Some(&key)).await;
    assert_eq!(
        (status, problem_code(&body)),
        (422, Some("idempotency_key_reused")),
        "{body}"
    );
    let mut missing = car.filing_body();
    missing.as_object_mut().unwrap().remove("relationship");
    let (status, body, _) = w.submit_with_key(&filer, &missing, Some(&key)).await;
    assert_eq!(
        (status, problem_code(&body)),
        (422, Some("idempotency_key_reused")),
        "{body}"
    );

    // The resend, twice with one key: one new code.
    let id = first["id"].as_str().unwrap().to_string();
    w.wait_status(&filer, &id, "code_sent").await;
    sms.wait_for(&car.owner.phone, "filing_code", 0).await;
    w.advance(61).await;
    let resend_key = uuid::Uuid::new_v4().to_string();
    let resend = || {
        app.request(
            reqwest::Method::POST,
            &format!("/v1/filings/{id}/code/resend"),
            filer.who(),
        )
        .header("Idempotency-Key", resend_key.clone())
    };
    let (status, once) = answer(resend().send().await.unwrap()).await;
    assert_eq!(status, 202, "{once}");
    w.advance(61).await;
    let response = resend().send().await.unwrap();
    assert_eq!(
        response
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let (status, again) = answer(response).await;
    assert_eq!((status, &again), (202, &once));
    eventually(10, "the resent code", || async {
        (sms.messages_to(&car.owner.phone, "filing_code").len() >= 2).then_some(())
    })
    .await;
    let filing = w.filing(&filer, &id).await;
    let resent = filing["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["cause"] == "code_resent")
        .count();
    assert_eq!(resent, 1, "one resend for one key: {filing}");
    assert_eq!(sms.messages_to(&car.owner.phone, "filing_code").len(), 2);
    app.stop().await;
}

/// The key that derives codes is not in the database, and the stored hash is keyed: whoever
/// reads the database cannot try the million codes against it. Codes still verify.
async fn code_secret_stays_out_of_the_database(backend: Backend) {
    let (app, sms, _face) = spawn_filing_app(backend, &[]).await;
    let w = World::new(&app);
    let filer = w.driver().await;
    let car = w.vehicle().await;
    let id = w.file(&filer, &car).await;
    let code = sms.wait_for(&car.owner.phone, "filing_code", 0).await;
    w.wait_status(&filer, &id, "code_sent").await;
    let db = app.services().db.pool();
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM service_keys")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(keys, 0, "a key in service_keys");
    let stored: String = sqlx::query_scalar("SELECT code_hash FROM filings WHERE id = $1")
        .bind(&id)
        .fetch_one(db)
        .await
        .unwrap();
    let guessable = (0..1_000_000u32).any(|n| {
        let digest =
            ring::digest::digest(&ring::digest::SHA256, format!("{id}:1:{n:06}").as_bytes());
        hex::encode(digest.as_ref()) == stored
    });
    assert!(!guessable, "the stored hash is an unkeyed hash of the code");
    let (status, body) = w.enter_code(&filer, &id, &code.params["code"]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "code_verified", "{body}");
    app.stop().await;
}

on_every_deployment! {
    happy_path_sms_method => happy_path;
    intake_rejects_registry_checks_and_yearly_limit => rejections_registry_and_yearly;
    intake_rejects_over_quotas => rejections_quotas;
    intake_rejects_daily_limit_and_sms_rate => rejections_daily_and_sms_rate;
    owner_codes_mismatch_lock_resend_expiry_abandon => codes;
    idempotency_key => idempotency;
    race_thirty_filers_one_vehicle => race_one_vehicle;
    race_one_filer_six_vehicles => race_one_filer;
    daily_limit_follows_the_test_clock => daily_limit_next_day;
    daily_limit_counts_earlier_applications_only => daily_limit_counts_earlier_applications_only;
    cancel_unbind_and_owner_removal_free_places => cancel_unbind_and_owner;
    sms_send_retried_and_deduplicated => sms_send_retries_and_dedups;
    own_vehicle_is_approved_at_once_and_not_counted => own_vehicle;
    face_outage_retried_and_failure_needs_documents => face_outage_and_failure;
    own_vehicle_waiting_for_intake_counts_for_nothing => own_vehicle_pending_counts_for_nothing;
    messages_need_the_user_role => messages_need_the_user_role;
    owner_list_pages_and_removal_answers_the_filing => owner_list_pages_and_removal_answers_the_filing;
    face_check_of_a_dead_job_runs_again => face_check_of_a_dead_job_runs_again;
    idempotency_key_first_and_on_resend => idempotency_key_first_and_on_resend;
    code_secret_stays_out_of_the_database => code_secret_stays_out_of_the_database;
}

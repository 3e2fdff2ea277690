//! Manual review end to end over HTTP, driven by the test clock: the SLA deadline across the
//! National Day holiday and a weekend, the at-risk and breach flips with the supervisors'
//! escalation SMS (level 1, then 2 a working day later, each once), the claim race, and
//! decisions (approve; reject with a reason) that are audited, notify filer and owner, and
//! cancel the review's timers. Two scheduler processes: `tests/review_schedulers.rs`.

mod common;

use beian::api::auth::Role;
use common::fakes::{FakeFaceProvider, FakeSmsGateway, spawn_filing_app};
use common::review_entry::enter_review;
use common::world::{Car, Person, World, masked_phone};
use common::{Backend, TestApp, eventually};
use serde_json::{Value, json};

const SUPERVISORS: [&str; 2] = ["13700000001", "13700000002"];
const REVIEWER_A: Option<(&str, Role)> = Some(("reviewer-a", Role::Reviewer));
const REVIEWER_B: Option<(&str, Role)> = Some(("reviewer-b", Role::Reviewer));
const SUPERVISOR: Option<(&str, Role)> = Some(("supervisor-1", Role::Supervisor));

fn t(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap()
}

/// A service on the fakes (keep them while the service runs) whose clock starts at
/// `start`, supervisors configured.
async fn review_app(backend: Backend, start: &str) -> (TestApp, FakeSmsGateway, FakeFaceProvider) {
    let phones = SUPERVISORS.join(",");
    spawn_filing_app(
        backend,
        &[
            ("BEIAN__CLOCK__START", start),
            ("BEIAN__REVIEW__ESCALATION_PHONES", &phones),
        ],
    )
    .await
}

/// A filing of a new filer for a new car of a registered owner, taken through the code
/// and a failed face check to `documents_required`.
async fn documents_required(w: &World<'_>, sms: &FakeSmsGateway) -> (Person, Car, String) {
    let owner = w.driver().await;
    let car = w.vehicle_of(&owner).await;
    let filer = w.driver().await;
    let id = w.file(&filer, &car).await;
    let code = sms.wait_for(&owner.phone, "filing_code", 0).await;
    w.wait_status(&filer, &id, "code_sent").await;
    let (status, body) = w.enter_code(&filer, &id, &code.params["code"]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.face(&filer, &id, &format!("fail-{id}")).await;
    assert_eq!(status, 202, "{body}");
    w.wait_status(&filer, &id, "documents_required").await;
    (filer, car, id)
}

async fn review(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/reviews/{id}"), REVIEWER_A).await;
    assert_eq!(status, 200, "{body}");
    // Every review came in through the upload: both photos are linked for the reviewer.
    let mut kinds: Vec<&str> = body["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["holding_photo", "id_document"], "{body}");
    assert!(
        body["documents"][0]["href"]
            .as_str()
            .unwrap()
            .starts_with("/v1/documents/"),
        "{body}"
    );
    body
}

/// Waits until the review of `id` satisfies `done`.
async fn review_until(app: &TestApp, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(20, what, || async {
        let r = review(app, id).await;
        done(&r).then_some(r)
    })
    .await
}

/// Escalation SMS of `id` at `level` to `phone`, duplicates included.
fn escalations(sms: &FakeSmsGateway, id: &str, level: i64, phone: &str) -> usize {
    sms.deliveries()
        .iter()
        .filter(|m| m.template == "review_escalation" && m.phone == phone)
        .filter(|m| m.params.get("filing_id").map(String::as_str) == Some(id))
        .filter(|m| m.params.get("level") == Some(&level.to_string()))
        .count()
}

async fn decide(app: &TestApp, who: Option<(&str, Role)>, id: &str, body: Value) -> (u16, Value) {
    app.post(&format!("/v1/reviews/{id}/decision"), who, &body)
        .await
}

async fn timer_state(app: &TestApp, key: &str) -> Option<String> {
    sqlx::query_scalar("SELECT state FROM timers WHERE key = $1")
        .bind(key)
        .fetch_optional(app.services().db.pool())
        .await
        .unwrap()
}

/// The filing's review is due at `expected`: the clock runs on from where it was set, so the
/// review opened a few milliseconds after it, and is due as many after `expected`.
fn assert_due(filing: &Value, expected: &str) {
    let due = t(filing["review"]["deadline"].as_str().expect("a deadline"));
    let late = due - t(expected);
    assert!(
        late >= chrono::Duration::zero() && late < chrono::Duration::seconds(5),
        "due {due}, expected {expected}: {filing}"
    );
}

// ---------------------------------------------------------------------------------------

/// The deadline is one working day of working time after the filing entered review.
async fn deadlines_follow_the_calendar(backend: Backend) {
    let (app, sms, _face) = review_app(backend, "2026-09-28T10:00:00+08:00").await;
    let w = World::new(&app);
    let (holiday_filer, _, holiday) = documents_required(&w, &sms).await;
    let (sunday_filer, _, sunday) = documents_required(&w, &sms).await;

    w.set_clock(t("2026-09-30T16:00:00+08:00")).await;
    enter_review(&app, &holiday).await;
    let filing = w.filing(&holiday_filer, &holiday).await;
    assert_eq!(filing["status"], "under_review", "{filing}");
    assert_due(&filing, "2026-10-08T16:00:00+08:00");
    assert_eq!(filing["review"]["at_risk"], false);
    assert_eq!(filing["review"]["breached"], false);
    assert!(filing["review"]["decided_at"].is_null());
    let (status, body) = decide(&app, REVIEWER_A, &holiday, json!({"decision": "approve"})).await;
    assert_eq!(status, 200, "{body}");

    w.set_clock(t("2026-11-22T10:00:00+08:00")).await;
    enter_review(&app, &sunday).await;
    let filing = w.filing(&sunday_filer, &sunday).await;
    assert_due(&filing, "2026-11-23T17:00:00+08:00");
    app.stop().await;
}

/// At-risk at 75%, breached at the deadline with an SMS to each supervisor, escalated again
/// a working day later; each escalation once; a decision cancels what is left.
async fn at_risk_breach_and_escalation(backend: Backend) {
    let (app, sms, _face) = review_app(backend, "2026-11-20T10:00:00+08:00").await;
    let w = World::new(&app);
    let (filer, car, first) = documents_required(&w, &sms).await;
    let (_, _, second) = documents_required(&w, &sms).await;

    // Monday before opening: the SLA counts from 09:00 (due 17:00, at risk 15:00).
    w.set_clock(t("2026-11-23T08:59:00+08:00")).await;
    enter_review(&app, &first).await;
    w.set_clock(t("2026-11-23T11:00:00+08:00")).await;
    enter_review(&app, &second).await;
    let (status, list) = app.get("/v1/reviews?state=pending", REVIEWER_A).await;
    assert_eq!(status, 200, "{list}");
    let order: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["filing_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [first.as_str(), second.as_str()],
        "nearest deadline first"
    );
    let item = &list["items"][0];
    assert_eq!(item["escalation_level"], 0, "{item}");
    assert!(item["claimed_by"].is_null(), "{item}");
    assert_eq!(item["filer"]["phone_masked"], masked_phone(&filer.phone));
    assert_eq!(
        item["owner"]["phone_masked"],
        masked_phone(&car.owner.phone)
    );
    for secret in [
        &filer.phone,
        &filer.id_number,
        &car.owner.phone,
        &car.owner.id_number,
    ] {
        assert!(
            !list.to_string().contains(secret.as_str()),
            "unmasked in {list}"
        );
    }

    // 75% of 8 h after 09:00 is 15:00: the first is at risk; the second (in just after
    // 11:00, due just after 11:00 on Tuesday) is at risk only on Tuesday.
    w.set_clock(t("2026-11-23T15:00:01+08:00")).await;
    review_until(&app, &first, "at risk", |r| r["review"]["at_risk"] == true).await;
    let filing = w.filing(&filer, &first).await;
    assert_eq!(filing["review"]["at_risk"], true, "{filing}");
    assert_eq!(filing["review"]["breached"], false, "{filing}");
    assert!(
        SUPERVISORS
            .iter()
            .all(|p| escalations(&sms, &first, 1, p) == 0)
    );

    // The deadline: breached, level 1, each supervisor texted once.
    w.set_clock(t("2026-11-23T17:00:01+08:00")).await;
    let r = review_until(&app, &first, "breached", |r| {
        r["review"]["escalation_level"] == 1
    })
    .await;
    assert_eq!(r["review"]["breached"], true, "{r}");
    for phone in SUPERVISORS {
        eventually(20, "the escalation SMS", || async {
            (escalations(&sms, &first, 1, phone) == 1).then_some(())
        })
        .await;
    }
    let (_, list) = app.get("/v1/reviews?state=pending", SUPERVISOR).await;
    assert_eq!(
        list["items"][0]["filing_id"],
        first.as_str(),
        "breached first: {list}"
    );
    assert_eq!(list["items"][0]["breached"], true, "{list}");

    // A working day later: level 2 (the second review breaches on Tuesday meanwhile).
    w.set_clock(t("2026-11-24T17:00:01+08:00")).await;
    review_until(&app, &first, "level 2", |r| {
        r["review"]["escalation_level"] == 2
    })
    .await;
    for phone in SUPERVISORS {
        eventually(20, "the level 2 SMS", || async {
            (escalations(&sms, &first, 2, phone) == 1).then_some(())
        })
        .await;
        assert_eq!(escalations(&sms, &first, 1, phone), 1, "level 1 once");
    }
    let r = review_until(&app, &second, "the second breached", |r| {
        r["review"]["breached"] == true
    })
    .await;
    assert_eq!(r["review"]["escalation_level"], 1, "{r}");

    // A decision cancels the next escalation.
    let (status, body) = decide(&app, SUPERVISOR, &first, json!({"decision": "approve"})).await;
    assert_eq!(status, 200, "{body}");
    let next = format!("review:{first}:escalation:3");
    assert_eq!(timer_state(&app, &next).await.as_deref(), Some("cancelled"));
    assert_eq!(
        timer_state(&app, &format!("review:{first}:escalation:2"))
            .await
            .as_deref(),
        Some("fired")
    );
    let filing = w.filing(&filer, &first).await;
    assert_eq!(filing["status"], "approved", "{filing}");
    assert!(filing["review"]["decided_at"].is_string(), "{filing}");
    let (_, list) = app.get("/v1/reviews?state=pending", REVIEWER_A).await;
    let open: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["filing_id"].as_str().unwrap())
        .collect();
    assert_eq!(open, [second.as_str()], "{list}");
    app.stop().await;
}

/// Two reviewers claim at once: one lease, one 409; the lease is renewed by its holder and
/// passes to the other once it ran out.
async fn claim_race(backend: Backend) {
    let (app, sms, _face) = review_app(backend, "2026-11-20T10:00:00+08:00").await;
    let w = World::new(&app);
    let (_, _, id) = documents_required(&w, &sms).await;
    w.set_clock(t("2026-11-23T10:00:00+08:00")).await;
    enter_review(&app, &id).await;

    let path = format!("/v1/reviews/{id}/claim");
    let empty = json!({});
    let (a, b) = tokio::join!(
        app.post(&path, REVIEWER_A, &empty),
        app.post(&path, REVIEWER_B, &empty)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let (winner, loser) = if a.0 == 200 {
        (REVIEWER_A, REVIEWER_B)
    } else {
        (REVIEWER_B, REVIEWER_A)
    };
    let refused = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(refused["code"], "already_claimed", "{refused}");

    let (status, body) = app.post(&path, winner, &json!({})).await;
    assert_eq!(status, 200, "the holder renews: {body}");
    let (status, body) = decide(&app, loser, &id, json!({"decision": "approve"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_claimed")),
        "{body}"
    );
    let r = review(&app, &id).await;
    assert_eq!(r["review"]["claimed_by"], winner.unwrap().0, "{r}");

    let (status, _) = app.post(&path, Some(("U1", Role::User)), &json!({})).await;
    assert_eq!(status, 403);
    let (status, body) = app.post("/v1/reviews/nope/claim", winner, &json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("review_not_found"))
    );

    w.advance(901).await; // the 15-minute lease ran out
    let (status, body) = app.post(&path, loser, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claimed_by"], loser.unwrap().0, "{body}");
    app.stop().await;
}

/// Approve and reject (with a reason): audited, both parties told, the filing moved.
async fn decisions(backend: Backend) {
    let (app, sms, _face) = review_app(backend, "2026-11-20T10:00:00+08:00").await;
    let w = World::new(&app);
    let (filer, car, approved) = documents_required(&w, &sms).await;
    let (other_filer, other_car, rejected) = documents_required(&w, &sms).await;
    w.set_clock(t("2026-11-23T10:00:00+08:00")).await;
    enter_review(&app, &approved).await;
    enter_review(&app, &rejected).await;

    let (status, body) = app
        .post(
            &format!("/v1/reviews/{approved}/claim"),
            REVIEWER_A,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = decide(&app, REVIEWER_A, &approved, json!({"decision": "approve"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["filing"]["status"], "approved", "{body}");
    assert_eq!(body["review"]["decision"], "approved");
    assert_eq!(body["review"]["decided_by"], "reviewer-a");
    let actions: Vec<&str> = body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["opened", "claimed", "approved"], "{body}");
    assert_eq!(body["audit"][2]["actor"], "reviewer-a");
    assert!(body["documents"].is_array());
    assert_eq!(
        body["filer"]["id_number_masked"].as_str().unwrap().len(),
        filer.id_number.len()
    );
    assert!(!body.to_string().contains(&filer.id_number), "{body}");
    assert!(!body.to_string().contains(&car.owner.phone), "{body}");
    let (status, body) = decide(
        &app,
        REVIEWER_A,
        &approved,
        json!({"decision": "reject", "reason": "late"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("review_decided")),
        "{body}"
    );

    // Reject: a reason is required, and kept.
    let (status, body) = decide(&app, REVIEWER_B, &rejected, json!({"decision": "reject"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("reason_required")),
        "{body}"
    );
    let (status, body) = decide(&app, REVIEWER_B, &rejected, json!({"decision": "maybe"})).await;
    assert_eq!(status, 422, "{body}");
    let reason = "the holding photo does not show the ID card";
    let (status, body) = decide(
        &app,
        REVIEWER_B,
        &rejected,
        json!({"decision": "reject", "reason": reason}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["filing"]["status"], "review_rejected", "{body}");
    assert_eq!(body["review"]["reason"], reason);
    let last = body["audit"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["actor"].as_str(),
            last["action"].as_str(),
            last["detail"].as_str()
        ),
        (Some("reviewer-b"), Some("rejected"), Some(reason)),
        "{body}"
    );
    for key in ["at_risk", "escalation:1"] {
        let state = timer_state(&app, &format!("review:{rejected}:{key}")).await;
        assert_eq!(state.as_deref(), Some("cancelled"), "{key}");
    }

    // Both parties of both filings are told: SMS and in-app message.
    for (person, id, decision) in [
        (&filer, &approved, "approved"),
        (&car.owner, &approved, "approved"),
        (&other_filer, &rejected, "review_rejected"),
        (&other_car.owner, &rejected, "review_rejected"),
    ] {
        let text = sms.wait_for(&person.phone, "filing_decision", 0).await;
        assert_eq!(text.params["decision"], decision, "{text:?}");
        assert_eq!(&text.params["filing_id"], id);
        eventually(20, "the in-app decision message", || async {
            let (_, body) = app.get("/v1/messages", person.who()).await;
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["filing_id"] == id.as_str())
                .then_some(())
        })
        .await;
    }
    let (status, _) = app
        .get(&format!("/v1/reviews/{approved}"), filer.who())
        .await;
    assert_eq!(status, 403, "a user is no reviewer");
    app.stop().await;
}

/// The filer cancelling a filing under review closes the review and cancels its timers.
async fn cancelled_filing_withdraws_its_review(backend: Backend) {
    let (app, sms, _face) = review_app(backend, "2026-11-20T10:00:00+08:00").await;
    let w = World::new(&app);
    let (filer, _, id) = documents_required(&w, &sms).await;
    w.set_clock(t("2026-11-23T10:00:00+08:00")).await;
    enter_review(&app, &id).await;
    let (status, body) = w.delete(filer.who(), &format!("/v1/filings/{id}")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
    let r = review(&app, &id).await;
    assert_eq!(r["review"]["decision"], "withdrawn", "{r}");
    let (status, body) = decide(&app, REVIEWER_A, &id, json!({"decision": "approve"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("review_decided")),
        "{body}"
    );
    let state = timer_state(&app, &format!("review:{id}:escalation:1")).await;
    assert_eq!(state.as_deref(), Some("cancelled"));
    let (_, list) = app.get("/v1/reviews", REVIEWER_A).await;
    assert_eq!(list["items"], json!([]), "{list}");
    app.stop().await;
}

on_both_databases! {
    deadlines_follow_the_calendar => deadlines_follow_the_calendar;
    claim_race_between_two_reviewers => claim_race;
    cancelled_filing_withdraws_its_review => cancelled_filing_withdraws_its_review;
}

on_every_deployment! {
    at_risk_breach_and_escalation => at_risk_breach_and_escalation;
    decisions_are_audited_and_notified => decisions;
}

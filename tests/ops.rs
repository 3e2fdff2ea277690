//! Operations over HTTP: health, readiness, metrics, the OpenAPI document, the docs page and
//! the test clock's rules (admin only, forward only, shared through the database).

mod common;

use beian::api::auth::Role;
use common::{Backend, spawn_app};
use serde_json::json;

const ADMIN: Option<(&str, Role)> = Some(("admin-1", Role::Admin));

async fn probes_and_documents(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz", None).await.0, 200);
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!(status, 200);
    assert_eq!(ready, json!({"database": "ok", "broker": "not_used"}));
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("beian_http_requests_total"), "{metrics}");
    let (status, doc) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/registry/vehicles/{plate_type}/{plate_number}",
        "/v1/registry/drivers/{user_id}",
        "/v1/test/clock",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    assert!(!docs.text().await.unwrap().is_empty());
    app.stop().await;
}

async fn test_clock_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/v1/test/clock", None).await.0, 401);
    assert_eq!(
        app.get("/v1/test/clock", Some(("U1", Role::User))).await.0,
        403
    );
    let (status, now) = app.get("/v1/test/clock", ADMIN).await;
    assert_eq!(status, 200);
    let now = chrono::DateTime::parse_from_rfc3339(now["now"].as_str().unwrap()).unwrap();
    assert!(now.to_rfc3339().ends_with("+08:00"));
    let target = now + chrono::Duration::days(30);
    let (status, _) = app
        .put(
            "/v1/test/clock",
            Some(("r", Role::Reviewer)),
            &json!({"now": target.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, moved) = app
        .put(
            "/v1/test/clock",
            ADMIN,
            &json!({"now": target.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    let moved = chrono::DateTime::parse_from_rfc3339(moved["now"].as_str().unwrap()).unwrap();
    assert!((moved - target).num_seconds().abs() <= 2);
    let back = target - chrono::Duration::hours(1);
    let (status, problem) = app
        .put("/v1/test/clock", ADMIN, &json!({"now": back.to_rfc3339()}))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("clock_backwards"))
    );
    let (status, problem) = app
        .put("/v1/test/clock", ADMIN, &json!({"now": "tomorrow"}))
        .await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("now")));
    // The offset is shared through the database: another process would read it.
    let stored = beian::store::clock::load_offset(&app.services().db)
        .await
        .unwrap()
        .unwrap();
    assert!(stored > 29 * 86_400_000);
    app.stop().await;
}

on_both_databases! {
    ops_probes => probes_and_documents;
    ops_test_clock => test_clock_rules;
}

/// Every process checks `[jobs.<queue>]` and `[cron.<name>]` names at start against what
/// the binary offers, and the message names the key (the configuration here skips the
/// loader's own checks, as a configuration built in code would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_unknown_queue_and_schedule_names() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("beian.db").display());
    let config = common::test_config(&url, dir.path(), &[]);
    let mut unknown_queue = config.clone();
    let default = unknown_queue.jobs["default"].clone();
    unknown_queue.jobs.insert("smss".into(), default);
    let mut unknown_schedule = config.clone();
    let entry = unknown_schedule.cron["maintenance_prune"].clone();
    unknown_schedule.cron.insert("nightly_report".into(), entry);
    for (config, key) in [
        (unknown_queue, "jobs.smss: unknown queue"),
        (unknown_schedule, "cron.nightly_report: no such schedule"),
    ] {
        for parts in [
            beian::app::Parts::serve(&config),
            beian::app::Parts {
                api: false,
                workers: Some(vec!["sms".into()]),
                scheduler: false,
                migrate: true,
            },
        ] {
            let error = match beian::app::start(config.clone(), parts).await {
                Ok(_) => panic!("started with {key}"),
                Err(e) => e.to_string(),
            };
            assert!(error.starts_with(key), "{error}");
        }
    }
}

/// With `log.format = "json"` every line the process writes is a JSON object, the
/// "listening" line and the manual-clock warning included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_on_every_line() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_beian"))
        .arg("serve")
        .env("BEIAN__PROFILE", "test")
        .env("BEIAN__HTTP__ADDR", "127.0.0.1:0")
        .env(
            "BEIAN__DATABASE__URL",
            format!("sqlite://{}", dir.path().join("beian.db").display()),
        )
        .env("BEIAN__DATA_DIR", dir.path())
        .env("BEIAN__CLOCK__MANUAL", "true")
        .env("BEIAN__AUTH__JWT_SECRET", common::JWT_SECRET)
        .env("BEIAN__LOG__FORMAT", "json")
        .env("BEIAN__LOG__LEVEL", "info")
        .env_remove("BEIAN_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start beian");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|pipe| {
        let lines_tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        })
    })
    .collect();
    drop(lines_tx);
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !lines
        .iter()
        .any(|l: &String| l.contains("beian listening on"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no listening line within 30 s: {lines:#?}");
            }
        }
    }
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(child.wait().unwrap().success());
    for reader in readers {
        reader.join().unwrap();
    }
    lines.extend(lines_rx.try_iter());
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(parsed.is_object(), "{line}");
    }
    let event = |needle: &str| {
        lines
            .iter()
            .any(|l| l.contains(needle) && l.starts_with('{'))
    };
    assert!(event("beian listening on http://127.0.0.1:"), "{lines:#?}");
    assert!(event("MANUAL TEST CLOCK IS ON"), "{lines:#?}");
}

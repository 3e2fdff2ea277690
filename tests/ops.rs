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

/// Every operation of `/openapi.json` declares the shared problem answers as
/// application/problem+json with the `Problem` schema, so generated clients know them.
async fn openapi_declares_problem_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, doc) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(
        doc["components"]["schemas"]["Problem"].is_object(),
        "no Problem schema"
    );
    let resolve = |response: &serde_json::Value| -> serde_json::Value {
        match response["$ref"].as_str() {
            Some(r) => {
                let name = r
                    .strip_prefix("#/components/responses/")
                    .unwrap_or_else(|| panic!("unexpected $ref {r}"));
                doc["components"]["responses"][name].clone()
            }
            None => response.clone(),
        }
    };
    let mut operations = 0;
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if ![
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                continue;
            }
            operations += 1;
            for code in [
                "400", "401", "403", "404", "409", "413", "422", "429", "503",
            ] {
                let response = resolve(&operation["responses"][code]);
                let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                if schema.as_str() != Some("#/components/schemas/Problem") {
                    missing.push(format!("{method} {path} {code}"));
                }
            }
        }
    }
    assert!(
        operations > 10,
        "only {operations} operations in the document"
    );
    assert!(
        missing.is_empty(),
        "answers not declared as application/problem+json Problem:\n{}",
        missing.join("\n")
    );
    // What the document declares is what the service answers.
    let response = app
        .http
        .get(app.url("/v1/test/clock"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    app.stop().await;
}

on_both_databases! {
    ops_openapi_problems => openapi_declares_problem_answers;
}

/// The lines a child process writes to one stream, collected as they come.
fn collect_lines(
    stream: impl std::io::Read + Send + 'static,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::thread::JoinHandle<()>,
) {
    use std::io::BufRead;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            match line {
                Ok(line) => sink.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    });
    (lines, reader)
}

/// Lines that are not one JSON object each (empty lines aside).
fn not_json_objects(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v.is_object()))
        .cloned()
        .collect()
}

fn beian_command(dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_beian"));
    command
        .current_dir(dir)
        .env_remove("BEIAN_LOG")
        .env_remove("BEIAN_CONFIG")
        .env(
            "BEIAN__DATABASE__URL",
            format!("sqlite://{}", dir.join("beian.db").display()),
        )
        .env("BEIAN__DATA_DIR", dir.display().to_string())
        .env(
            "BEIAN__SMS__OUTBOX_FILE",
            dir.join("sms-outbox.ndjson").display().to_string(),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// Runs a command that must end by itself; kills it and fails after `seconds`.
fn output_within(command: &mut std::process::Command, seconds: u64) -> std::process::Output {
    let mut child = command.spawn().expect("start beian");
    let (stdout, stdout_reader) = collect_lines(child.stdout.take().unwrap());
    let (stderr, stderr_reader) = collect_lines(child.stderr.take().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "beian did not stop within {seconds} s; stderr:\n{}",
                stderr.lock().unwrap().join("\n")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    stdout_reader.join().unwrap();
    stderr_reader.join().unwrap();
    let join = |lines: &std::sync::Mutex<Vec<String>>| {
        let mut text = lines.lock().unwrap().join("\n");
        text.push('\n');
        text.into_bytes()
    };
    std::process::Output {
        status,
        stdout: join(&stdout),
        stderr: join(&stderr),
    }
}

/// With `log.format = "json"`, every line `beian serve` writes from start to stop (the
/// manual-clock warning and the address it listens on included) is one JSON object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_objects_from_start_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = beian_command(dir.path())
        .arg("serve")
        .env("BEIAN__LOG__FORMAT", "json")
        .env("BEIAN__LOG__LEVEL", "info")
        .env("BEIAN__CLOCK__MANUAL", "true")
        .env("BEIAN__HTTP__ADDR", "127.0.0.1:0")
        .env("BEIAN__SHUTDOWN__GRACE_SECONDS", "2")
        .spawn()
        .expect("start beian");
    let (stdout, stdout_reader) = collect_lines(child.stdout.take().unwrap());
    let (stderr, stderr_reader) = collect_lines(child.stderr.take().unwrap());
    // Port 0: the process says where it listens (in whichever form it writes it).
    let address = common::eventually(30, "beian to say where it listens", || {
        let lines: Vec<String> = stdout
            .lock()
            .unwrap()
            .iter()
            .chain(stderr.lock().unwrap().iter())
            .cloned()
            .collect();
        async move {
            lines
                .iter()
                .find(|l| l.contains("listening"))
                .and_then(|l| {
                    let at = l.find("127.0.0.1:")?;
                    let port: String = l[at + "127.0.0.1:".len()..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    (!port.is_empty()).then(|| format!("http://127.0.0.1:{port}"))
                })
        }
    })
    .await;
    let ready = format!("{address}/readyz");
    common::eventually(30, "beian to be ready", || async {
        reqwest::get(&ready)
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await;
    // A request that is answered with a problem logs too.
    let _ = reqwest::get(format!("{address}/v1/no-such-thing")).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = common::eventually(30, "beian to stop on SIGTERM", || {
        let exited = child.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert!(exit.success(), "beian exited with {exit}");
    stdout_reader.join().unwrap();
    stderr_reader.join().unwrap();
    let stdout = stdout.lock().unwrap().clone();
    let stderr = stderr.lock().unwrap().clone();
    let all: Vec<String> = stdout.iter().chain(stderr.iter()).cloned().collect();
    assert!(
        all.iter().any(|l| l.contains("MANUAL TEST CLOCK")),
        "no manual-clock warning in:\n{}",
        all.join("\n")
    );
    let bad = not_json_objects(&all);
    assert!(
        bad.is_empty(),
        "lines that are not JSON objects:\n{}",
        bad.join("\n")
    );
}

/// A start refused (bad configuration, an unknown queue) is reported as JSON too when
/// `log.format = "json"`.
#[test]
fn json_start_errors_are_json_objects() {
    let dir = tempfile::tempdir().unwrap();
    let refused = output_within(
        beian_command(dir.path())
            .arg("serve")
            .env("BEIAN__LOG__FORMAT", "json")
            .env("BEIAN__FILING__CODE_TTL_SECONDS", "soon"),
        30,
    );
    let unknown_queue = output_within(
        beian_command(dir.path())
            .args(["worker", "--queues", "sms,nope"])
            .env("BEIAN__LOG__FORMAT", "json"),
        30,
    );
    for (output, names) in [(refused, "code_ttl_seconds"), (unknown_queue, "nope")] {
        assert!(!output.status.success());
        let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&output.stderr).lines())
            .map(str::to_string)
            .collect();
        assert!(
            lines.iter().any(|l| l.contains(names)),
            "{names} not named in:\n{}",
            lines.join("\n")
        );
        let bad = not_json_objects(&lines);
        assert!(bad.is_empty(), "not JSON objects:\n{}", bad.join("\n"));
    }
}

/// The production profile refuses a webhook SMS gateway without its secret, and an owner
/// code secret that is missing or the development one; `beian config` masks the secret.
#[test]
fn production_refuses_missing_secrets_and_config_masks_them() {
    let dir = tempfile::tempdir().unwrap();
    let production = |extra: &[(&str, &str)]| {
        let mut command = beian_command(dir.path());
        command.arg("serve").envs([
            ("BEIAN__PROFILE", "production"),
            ("BEIAN__SMS__PROVIDER", "webhook"),
            ("BEIAN__SMS__WEBHOOK_URL", "https://sms.example/send"),
            ("BEIAN__SMS__WEBHOOK_SECRET", "gateway-secret-0123456789"),
            ("BEIAN__FACE__PROVIDER", "http"),
            ("BEIAN__FACE__URL", "https://face.example/verify"),
            ("BEIAN__PAYMENTS__MODE", "live"),
            (
                "BEIAN__AUTH__JWT_SECRET",
                "production-jwt-secret-0123456789",
            ),
            (
                "BEIAN__FILING__CODE_SECRET",
                "production-code-secret-0123456789",
            ),
            ("BEIAN__HTTP__ADDR", "127.0.0.1:0"),
        ]);
        command.envs(extra.iter().copied());
        let out = output_within(&mut command, 30);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = production(&[("BEIAN__SMS__WEBHOOK_SECRET", "")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("sms.webhook_secret"), "{err}");
    let (code, err) = production(&[("BEIAN__FILING__CODE_SECRET", "")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("filing.code_secret"), "{err}");
    let (code, err) = production(&[(
        "BEIAN__FILING__CODE_SECRET",
        beian::config::DEVELOPMENT_CODE_SECRET,
    )]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("filing.code_secret is the development secret"),
        "{err}"
    );

    let out = output_within(
        beian_command(dir.path())
            .arg("config")
            .env("BEIAN__FILING__CODE_SECRET", "owner-code-secret-xyz-987"),
        30,
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("code_secret = \"****\""), "{text}");
    assert!(!text.contains("owner-code-secret-xyz-987"), "{text}");
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

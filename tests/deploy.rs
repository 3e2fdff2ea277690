//! The operator's kit in deploy/: the compose file parses and has the services and commands
//! of a real deployment (PostgreSQL, RabbitMQ, `beian migrate` once, then `api`, two
//! `worker`s and a `scheduler`), its environment is a configuration the binary accepts in
//! the production profile, and every metric the Grafana dashboard queries is one of the
//! names fixed in spec/api.md and appears in a running service's `/metrics`. No Docker.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use common::eventually;
use serde_json::{Value as Json, json};
use serde_norway::Value as Yaml;

const BIN: &str = env!("CARGO_BIN_EXE_beian");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The metric names spec/api.md fixes for dashboards and alerts.
const FIXED_METRICS: &[&str] = &[
    "beian_jobs_total",
    "beian_queue_depth",
    "beian_job_wait_seconds",
    "beian_job_run_seconds",
    "beian_timers_pending",
    "beian_timer_lag_seconds",
    "beian_reviews_at_risk",
    "beian_reviews_breached",
    "beian_http_requests_total",
    "beian_http_request_duration_seconds",
];

fn compose() -> Yaml {
    let text = std::fs::read_to_string(Path::new(ROOT).join("deploy/compose.yaml")).unwrap();
    serde_norway::from_str(&text).expect("deploy/compose.yaml is YAML")
}

fn dashboard() -> Json {
    let text = std::fs::read_to_string(Path::new(ROOT).join("deploy/grafana/beian.json")).unwrap();
    serde_json::from_str(&text).expect("deploy/grafana/beian.json is JSON")
}

fn command_of(service: &Yaml) -> Vec<String> {
    service["command"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `${NAME:?message}` becomes a stand-in secret (URLs for `..._URL`), `${NAME:-default}` its
/// default: what compose would substitute from a filled-in beian.env.
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').expect("a closed ${...}");
        let inner = &rest[start + 2..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner.split(":?").next().unwrap(), None),
        };
        out.push_str(&match default {
            Some(d) => d.to_string(),
            None if name.ends_with("_URL") => {
                format!("https://{}.example.invalid/", name.to_lowercase())
            }
            None => format!(
                "compose-test-{}-0123456789abcdef0123456789abcdef",
                name.to_lowercase()
            ),
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_compose_file_runs_migrate_once_then_api_two_workers_and_a_scheduler() {
    let doc = compose();
    let services = doc["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    let expected = [
        "api",
        "migrate",
        "postgres",
        "rabbitmq",
        "scheduler",
        "worker-1",
        "worker-2",
    ];
    assert_eq!(names, expected.into_iter().collect());
    assert!(
        doc["services"]["postgres"]["image"]
            .as_str()
            .unwrap()
            .starts_with("postgres:")
    );
    assert!(
        doc["services"]["rabbitmq"]["image"]
            .as_str()
            .unwrap()
            .starts_with("rabbitmq:")
    );

    let beian = ["migrate", "api", "worker-1", "worker-2", "scheduler"];
    let commands: BTreeMap<&str, Vec<String>> = beian
        .iter()
        .map(|name| (*name, command_of(&doc["services"][*name])))
        .collect();
    assert_eq!(commands["migrate"], ["migrate"]);
    assert_eq!(commands["api"], ["api"]);
    assert_eq!(commands["worker-1"], ["worker"]);
    assert_eq!(commands["worker-2"], ["worker"]);
    assert_eq!(commands["scheduler"], ["scheduler"]);
    for (name, command) in &commands {
        let status = Command::new(BIN)
            .args(command)
            .arg("--help")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{name}: `beian {}` is a command",
            command.join(" ")
        );
    }

    // One image, built from deploy/Dockerfile; migrate runs once and the rest wait for it.
    let image = doc["services"]["migrate"]["image"].as_str().unwrap();
    assert_eq!(
        doc["services"]["migrate"]["build"]["dockerfile"],
        "deploy/Dockerfile"
    );
    assert!(Path::new(ROOT).join("deploy/Dockerfile").exists());
    assert_eq!(doc["services"]["migrate"]["restart"], "no");
    let migrate_needs = &doc["services"]["migrate"]["depends_on"];
    assert_eq!(migrate_needs["postgres"]["condition"], "service_healthy");
    for name in ["api", "worker-1", "worker-2", "scheduler"] {
        let service = &doc["services"][name];
        assert_eq!(
            service["image"].as_str(),
            Some(image),
            "{name} runs the same image"
        );
        let needs = &service["depends_on"];
        assert_eq!(
            needs["migrate"]["condition"], "service_completed_successfully",
            "{name}"
        );
        assert_eq!(needs["postgres"]["condition"], "service_healthy", "{name}");
        assert_eq!(needs["rabbitmq"]["condition"], "service_healthy", "{name}");
    }
    assert!(
        doc["services"]["api"]["ports"]
            .as_sequence()
            .is_some_and(|p| !p.is_empty())
    );
}

#[test]
fn the_compose_environment_is_a_production_configuration_the_binary_accepts() {
    let doc = compose();
    let env = doc["services"]["api"]["environment"]
        .as_mapping()
        .expect("environment");
    let mut vars: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Yaml::String(s) => s.clone(),
                other => serde_norway::to_string(other).unwrap().trim().to_string(),
            };
            (k.as_str().unwrap().to_string(), interpolate(&value))
        })
        .collect();
    for name in ["migrate", "worker-1", "worker-2", "scheduler"] {
        assert_eq!(
            &doc["services"][name]["environment"],
            &doc["services"]["api"]["environment"]
        );
    }
    // The image's copy of config/ is this one.
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("deploy/Dockerfile")).unwrap();
    assert!(dockerfile.contains("COPY config /opt/beian/config"));
    for (key, value) in vars.iter_mut() {
        if key == "BEIAN_CONFIG" {
            assert_eq!(value, "/opt/beian/config/production.toml");
            *value = format!("{ROOT}/config/production.toml");
        }
    }
    let output = Command::new(BIN)
        .arg("config")
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(ROOT)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "beian config refused the compose environment: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("profile = \"production\""), "{stdout}");
    assert!(stdout.contains("transport = \"amqp\""), "{stdout}");
}

/// Every `beian_...` name in the dashboard's queries, without a histogram's suffixes.
fn dashboard_metrics(dash: &Json) -> BTreeSet<String> {
    let mut exprs = Vec::new();
    let mut panels: Vec<&Json> = dash["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        if let Some(inner) = panel["panels"].as_array() {
            panels.extend(inner);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(
                target["expr"]
                    .as_str()
                    .expect("a target has an expr")
                    .to_string(),
            );
        }
    }
    for var in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"]["query"].as_str() {
            exprs.push(q.to_string());
        }
    }
    let mut names = BTreeSet::new();
    for expr in exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("beian_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| b.ends_with("_seconds")))
                .unwrap_or(&name);
            names.insert(base.to_string());
        }
    }
    names
}

#[test]
fn the_dashboard_is_grafana_json_over_the_fixed_metric_names() {
    let dash = dashboard();
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    let panels = dash["panels"].as_array().unwrap();
    let ids: Vec<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids.len(),
        ids.iter().collect::<BTreeSet<_>>().len(),
        "panel ids are unique"
    );
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{}",
            panel["title"]
        );
        assert!(
            panel["gridPos"]["w"].as_i64().is_some(),
            "{}",
            panel["title"]
        );
    }
    let used = dashboard_metrics(&dash);
    let fixed: BTreeSet<String> = FIXED_METRICS.iter().map(|s| s.to_string()).collect();
    assert_eq!(used, fixed, "the dashboard queries exactly the fixed names");
}

fn token(sub: &str, role: &str, env: &[(String, String)]) -> String {
    let out = Command::new(BIN)
        .args(["token", "--sub", sub, "--role", role])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn every_metric_of_the_dashboard_is_in_a_running_services_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env: Vec<(String, String)> = [
        ("BEIAN__HTTP__ADDR", format!("127.0.0.1:{port}")),
        ("BEIAN__DATA_DIR", dir.path().display().to_string()),
        (
            "BEIAN__DATABASE__URL",
            format!("sqlite://{}", dir.path().join("beian.db").display()),
        ),
        (
            "BEIAN__SMS__OUTBOX_FILE",
            dir.path().join("sms-outbox.ndjson").display().to_string(),
        ),
        ("BEIAN__CLOCK__MANUAL", "true".into()),
        ("BEIAN__AUTH__JWT_SECRET", common::JWT_SECRET.into()),
        ("BEIAN__QUEUE__POLL_INTERVAL_MS", "100".into()),
        ("BEIAN__LOG__LEVEL", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let _service = Killed(
        Command::new(BIN)
            .arg("serve")
            .current_dir(ROOT)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(30, "the service to answer /healthz", || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;

    // A little traffic: the registry, a filing (intake and SMS jobs), then the clock moved
    // past the owner's code expiry so a durable timer fires.
    let (sys, user, admin) = (
        token("sys", "system", &env),
        token("U1", "user", &env),
        token("ops", "admin", &env),
    );
    let put = |path: &str, token: &str, body: Json| {
        http.put(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let vehicle = json!({"owner_id_number": "110101199003071234", "owner_name": "张小三",
        "owner_phone": "13812345678", "owner_kind": "person", "engine_number": "LB1234567890",
        "usage": "non_operating", "status": "normal"});
    let plate = "/v1/registry/vehicles/02/%E4%BA%ACA12345";
    assert!(
        put(plate, &sys, vehicle)
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let driver = json!({"name": "李小四", "id_number": "110101199205061234", "phone": "13912345678",
        "licence_number": "110101199205061234", "licence_status": "valid", "points": 0});
    assert!(
        put("/v1/registry/drivers/U1", &sys, driver)
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let filing: Json = http
        .post(format!("{base}/v1/filings"))
        .bearer_auth(&user)
        .header("Idempotency-Key", "deploy-1")
        .json(
            &json!({"method": "sms", "plate_type": "02", "plate_number": "京A12345",
            "engine_last6": "567890", "relationship": "friend"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = filing["id"].as_str().expect("a filing id").to_string();
    eventually(30, "the owner's code to be sent", || async {
        let f: Json = http
            .get(format!("{base}/v1/filings/{id}"))
            .bearer_auth(&user)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (f["status"] == "code_sent").then_some(())
    })
    .await;
    let now: Json = http
        .get(format!("{base}/v1/test/clock"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let later = chrono::DateTime::parse_from_rfc3339(now["now"].as_str().unwrap()).unwrap()
        + chrono::Duration::minutes(30);
    let moved = put("/v1/test/clock", &admin, json!({"now": later.to_rfc3339()}))
        .await
        .unwrap();
    assert!(moved.status().is_success());

    let wanted = dashboard_metrics(&dashboard());
    let missing = eventually(30, "every dashboard metric in /metrics", || async {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let present: BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(|n| {
                n.trim_end_matches("_bucket")
                    .trim_end_matches("_count")
                    .trim_end_matches("_sum")
            })
            .collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|n| !present.contains(n.as_str()))
            .collect();
        missing.is_empty().then_some(missing.len())
    })
    .await;
    assert_eq!(missing, 0);
}

/// A child process ended when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

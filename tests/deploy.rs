//! The operator's kit in deploy/: the compose file parses and has the services and commands
//! of a real deployment (PostgreSQL, RabbitMQ, `beian migrate` once, then `api`, two
//! `worker`s and a `scheduler`), its environment is a configuration the binary accepts in
//! the production profile, and every metric the Grafana dashboard queries is one of the
//! names fixed in spec/api.md and appears in a running service's `/metrics`. No Docker.

mod common;
#[path = "deploy/live_metrics.rs"]
mod live_metrics;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value as Json;
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

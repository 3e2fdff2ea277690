//! Loading, layering, the checks and the production refusals.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("beian.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_run_embedded() {
    let c = Config::load_from(None, env(&[])).unwrap();
    assert_eq!(c.profile, Profile::Development);
    assert_eq!(c.queue.transport, Transport::Embedded);
    assert_eq!(c.sms.provider, SmsProvider::Log);
    assert_eq!(c.filing.code_ttl_seconds, 300);
    assert!(c.is_sqlite());
    assert_eq!(c.queue_settings("sms").concurrency, 8);
    assert_eq!(c.queue_settings("filing").max_attempts, 10);
}

#[test]
fn file_then_env_later_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "[filing]\ncode_ttl_seconds = 120\nmax_filers_per_vehicle = 2\n[jobs.sms]\nmax_attempts = 3\n",
    );
    let c = Config::load_from(
        Some(&path),
        env(&[
            ("BEIAN__FILING__CODE_TTL_SECONDS", "90"),
            (
                "BEIAN__REVIEW__ESCALATION_PHONES",
                "13700000001,13700000002",
            ),
            ("OTHER__FILING__CODE_TTL_SECONDS", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(c.filing.code_ttl_seconds, 90, "env beats file");
    assert_eq!(c.filing.max_filers_per_vehicle, 2, "file beats default");
    assert_eq!(c.filing.max_applications_per_day, 1, "default kept");
    assert_eq!(c.review.escalation_phones.len(), 2);
    assert_eq!(c.queue_settings("sms").max_attempts, 3);
    assert_eq!(c.queue_settings("sms").concurrency, 8);
}

#[test]
fn unknown_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "[filing]\ncode_ttl_secs = 120\n");
    let e = Config::load_from(Some(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("code_ttl_secs"), "{e}");
    let e = Config::load_from(None, env(&[("BEIAN__SMS__PROVIDERR", "log")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("providerr"), "{e}");
}

#[test]
fn bad_value_is_named() {
    let e = Config::load_from(None, env(&[("BEIAN__FILING__CODE_TTL_SECONDS", "soon")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("code_ttl_seconds"), "{e}");
    let e = Config::load_from(None, env(&[("BEIAN__SMS__PROVIDER", "carrier-pigeon")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("carrier-pigeon") || e.contains("provider"),
        "{e}"
    );
    let e = Config::load_from(
        None,
        env(&[("BEIAN__CRON__MAINTENANCE_PRUNE", "61 * * * *")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cron.maintenance_prune"), "{e}");
}

#[test]
fn production_refuses_development_parts() {
    let e = Config::load_from(None, env(&[("BEIAN__PROFILE", "production")]))
        .unwrap_err()
        .to_string();
    for part in [
        "clock",
        "sms.provider",
        "face.provider",
        "payments.mode",
        "jwt_secret",
        "filing.code_secret",
    ] {
        if part == "clock" {
            continue; // the default clock is real time
        }
        assert!(e.contains(part), "{part} missing from: {e}");
    }
    let e = Config::load_from(
        None,
        env(&[
            ("BEIAN__PROFILE", "production"),
            ("BEIAN__CLOCK__MANUAL", "true"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("test clock"), "{e}");
}

#[test]
fn masked_output_hides_secrets() {
    let c = Config::load_from(
        None,
        env(&[
            ("BEIAN__AUTH__JWT_SECRET", "s3cr3t-value-xyz"),
            ("BEIAN__SMS__WEBHOOK_SECRET", "another-secret-abc"),
        ]),
    )
    .unwrap();
    let text = c.to_masked_toml();
    assert!(!text.contains("s3cr3t-value-xyz"));
    assert!(!text.contains("another-secret-abc"));
    assert!(text.contains("code_ttl_seconds"));
    assert!(format!("{c:?}").contains("****"));
}

#[test]
fn queue_and_schedule_names_are_not_configs_to_check() {
    // Which queues and schedules exist is the job runtime's to say (at start); config
    // checks only the values, and still refuses an expression that does not parse.
    let c = Config::load_from(
        None,
        env(&[
            ("BEIAN__JOBS__SOMEQUEUE__CONCURRENCY", "2"),
            ("BEIAN__CRON__SOMESCHEDULE", "1 * * * *"),
        ]),
    )
    .unwrap();
    assert_eq!(c.queue_settings("somequeue").concurrency, 2);
    let e = Config::load_from(None, env(&[("BEIAN__JOBS__SMS__CONCURRENCY", "0")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("jobs.sms"), "{e}");
    let e = Config::load_from(None, env(&[("BEIAN__CRON__SOMESCHEDULE", "every day")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cron.someschedule"), "{e}");
}

/// A production configuration that passes; each test below breaks one part of it.
fn production(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs = vec![
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
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k, v));
    }
    env(&pairs)
}

#[test]
fn production_accepts_a_complete_configuration() {
    let c = Config::load_from(None, production(&[])).unwrap();
    assert_eq!(
        c.filing.code_secret_bytes().unwrap(),
        b"production-code-secret-0123456789"
    );
}

#[test]
fn production_refuses_an_empty_webhook_secret_naming_the_key() {
    let e = Config::load_from(None, production(&[("BEIAN__SMS__WEBHOOK_SECRET", "")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sms.webhook_secret"), "{e}");
    // Development runs a webhook without a secret (a local gateway).
    Config::load_from(
        None,
        env(&[
            ("BEIAN__SMS__PROVIDER", "webhook"),
            ("BEIAN__SMS__WEBHOOK_URL", "http://127.0.0.1:9/send"),
        ]),
    )
    .unwrap();
}

#[test]
fn production_refuses_a_missing_or_development_code_secret() {
    // The compiled-in default is the development secret.
    let e = Config::load_from(
        None,
        production(&[("BEIAN__FILING__CODE_SECRET", DEVELOPMENT_CODE_SECRET)]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("filing.code_secret is the development secret"),
        "{e}"
    );
    // Neither a secret nor a file.
    let e = Config::load_from(None, production(&[("BEIAN__FILING__CODE_SECRET", "")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("filing.code_secret"), "{e}");
    let e = Config::load_from(None, production(&[("BEIAN__FILING__CODE_SECRET", "short")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("filing.code_secret is shorter"), "{e}");
    // Development needs a secret too, and has one by default.
    let c = Config::load_from(None, env(&[])).unwrap();
    assert_eq!(
        c.filing.code_secret_bytes().unwrap(),
        DEVELOPMENT_CODE_SECRET.as_bytes()
    );
    let e = Config::load_from(None, env(&[("BEIAN__FILING__CODE_SECRET", "")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("filing.code_secret"), "{e}");
}

#[test]
fn the_code_secret_file_wins_and_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("code.key");
    std::fs::write(&key, "  file-code-secret-0123456789\n").unwrap();
    let key_str = key.display().to_string();
    // The development secret from default.toml is still in `code_secret`: the file wins.
    let c = Config::load_from(
        None,
        production(&[
            ("BEIAN__FILING__CODE_SECRET", DEVELOPMENT_CODE_SECRET),
            ("BEIAN__FILING__CODE_SECRET_FILE", &key_str),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.filing.code_secret_bytes().unwrap(),
        b"file-code-secret-0123456789"
    );
    std::fs::write(&key, "\n  \n").unwrap();
    let e = Config::load_from(
        None,
        production(&[("BEIAN__FILING__CODE_SECRET_FILE", &key_str)]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("filing.code_secret_file") && e.contains("empty"),
        "{e}"
    );
    let missing = dir.path().join("missing.key").display().to_string();
    let e = Config::load_from(None, env(&[("BEIAN__FILING__CODE_SECRET_FILE", &missing)]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("filing.code_secret_file"), "{e}");
}

#[test]
fn masked_output_hides_the_code_secret() {
    let c = Config::load_from(
        None,
        env(&[("BEIAN__FILING__CODE_SECRET", "owner-code-secret-xyz-987")]),
    )
    .unwrap();
    let text = c.to_masked_toml();
    assert!(!text.contains("owner-code-secret-xyz-987"), "{text}");
    assert!(text.contains("code_secret = \"****\""), "{text}");
    assert!(!format!("{c:?}").contains("owner-code-secret-xyz-987"));
}

#[test]
fn errors_at_start_know_the_log_format() {
    let json = log_settings_for_errors(
        None,
        env(&[
            ("BEIAN__LOG__FORMAT", "json"),
            ("BEIAN__FILING__CODE_TTL_SECONDS", "soon"),
        ]),
    );
    assert_eq!(json.format, LogFormat::Json);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let json = log_settings_for_errors(Some(&missing), env(&[("BEIAN__LOG__FORMAT", "json")]));
    assert_eq!(json.format, LogFormat::Json);
    assert_eq!(
        log_settings_for_errors(None, env(&[])).format,
        LogFormat::Pretty
    );
}

#[test]
fn one_escalation_phone_from_the_environment_is_a_list_of_one() {
    let c = Config::load_from(
        None,
        env(&[("BEIAN__REVIEW__ESCALATION_PHONES", "13700000001")]),
    )
    .unwrap();
    assert_eq!(c.review.escalation_phones, ["13700000001"]);
    let error = Config::load_from(None, env(&[("BEIAN__REVIEW__SLA_WORKING_DAYS", "0")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("review.sla_working_days"), "{error}");
}

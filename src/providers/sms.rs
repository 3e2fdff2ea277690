//! The SMS gateway. `webhook`: a signed JSON POST (`X-Beian-Signature` = hex HMAC-SHA256 of
//! the body) with a `message_id` stable per (event, recipient), so the gateway dedups
//! repeats. `log` (development default): the message goes to the log and, as one JSON line,
//! to `sms.outbox_file`, where a developer reads the code.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ring::hmac;
use serde::Serialize;

use crate::config::{Config, SmsProvider};
use crate::domain::masking::mask_phone;

/// Templates of `spec/providers.md`.
pub mod template {
    pub const FILING_CODE: &str = "filing_code";
    pub const FILING_DECISION: &str = "filing_decision";
    pub const PAYMENT_CODE: &str = "payment_code";
    pub const REVIEW_ESCALATION: &str = "review_escalation";
    pub const PAYMENT_RESULT: &str = "payment_result";
    pub const VIOLATION_RECORDED: &str = "violation_recorded";
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SmsMessage {
    pub message_id: String,
    pub phone: String,
    pub template: String,
    pub params: BTreeMap<String, String>,
}

#[derive(Clone)]
pub enum SmsGateway {
    Log {
        outbox: PathBuf,
        lock: Arc<Mutex<()>>,
    },
    Webhook {
        url: String,
        key: hmac::Key,
        client: reqwest::Client,
    },
}

impl SmsGateway {
    pub fn from_config(config: &Config) -> anyhow::Result<SmsGateway> {
        Ok(match config.sms.provider {
            SmsProvider::Log => SmsGateway::Log {
                outbox: config.sms.outbox_file.clone(),
                lock: Arc::new(Mutex::new(())),
            },
            SmsProvider::Webhook => SmsGateway::Webhook {
                url: config.sms.webhook_url.clone(),
                key: hmac::Key::new(
                    hmac::HMAC_SHA256,
                    config.sms.webhook_secret.expose().as_bytes(),
                ),
                client: super::http_client()?,
            },
        })
    }

    /// Delivers one message; an error means "try again later" (the job retries).
    pub async fn send(&self, message: &SmsMessage) -> anyhow::Result<()> {
        match self {
            SmsGateway::Log { outbox, lock } => {
                let line = serde_json::to_string(message)?;
                {
                    let _guard = lock
                        .lock()
                        .map_err(|_| anyhow::anyhow!("outbox lock poisoned"))?;
                    if let Some(parent) = outbox.parent() {
                        if !parent.as_os_str().is_empty() {
                            std::fs::create_dir_all(parent)?;
                        }
                    }
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(outbox)?;
                    writeln!(file, "{line}")?;
                }
                // The development provider shows the code (spec: "code included"); the
                // phone stays masked. Production refuses this provider.
                tracing::info!(
                    message_id = %message.message_id,
                    phone = %mask_phone(&message.phone),
                    template = %message.template,
                    code = message.params.get("code").map(String::as_str).unwrap_or(""),
                    outbox = %outbox.display(),
                    "SMS (log provider)"
                );
                Ok(())
            }
            SmsGateway::Webhook { url, key, client } => {
                let body = serde_json::to_vec(message)?;
                let signature = hex::encode(hmac::sign(key, &body).as_ref());
                let response = client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("X-Beian-Signature", signature)
                    .body(body)
                    .send()
                    .await?;
                let status = response.status();
                if !status.is_success() {
                    anyhow::bail!("SMS gateway answered {status}");
                }
                Ok(())
            }
        }
    }
}

//! The workflow sections: `[filing]` (owner codes, limits, and the secret owner codes are
//! derived with), `[review]` and `[calendar]`.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::Secret;

/// The development owner-code secret from `default.toml`; the production profile refuses it.
pub const DEVELOPMENT_CODE_SECRET: &str = "beian-development-code-secret-not-for-production";

/// The shortest owner-code secret the production profile accepts, in bytes.
pub const MIN_PRODUCTION_CODE_SECRET_BYTES: usize = 16;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilingConfig {
    pub code_ttl_seconds: u64,
    pub code_max_attempts: u32,
    pub resend_interval_seconds: u64,
    pub max_non_owned_per_user: u32,
    pub max_filers_per_vehicle: u32,
    pub max_applications_per_day: u32,
    pub max_applications_per_year: u32,
    pub qr_ttl_seconds: u64,
    pub abandon_after_seconds: u64,
    /// The key owner codes are derived and hashed with; kept out of the database.
    #[serde(default)]
    pub code_secret: Secret,
    /// A file holding that key (its content trimmed); when set it wins over `code_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_secret_file: Option<PathBuf>,
}

impl FilingConfig {
    /// The owner-code key: the trimmed content of `filing.code_secret_file` when set, else
    /// `filing.code_secret`. Empty is an error naming the key.
    pub fn code_secret_bytes(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(path) = &self.code_secret_file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("filing.code_secret_file: cannot read {}", path.display())
            })?;
            let secret = text.trim();
            if secret.is_empty() {
                anyhow::bail!("filing.code_secret_file: {} is empty", path.display());
            }
            return Ok(secret.as_bytes().to_vec());
        }
        if self.code_secret.is_empty() {
            anyhow::bail!("filing.code_secret: empty (or set filing.code_secret_file)");
        }
        Ok(self.code_secret.expose().as_bytes().to_vec())
    }

    pub(super) fn check(&self) -> Result<(), String> {
        if self.code_max_attempts == 0 {
            return Err("filing.code_max_attempts: must be at least 1".into());
        }
        self.code_secret_bytes()
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    }

    pub(super) fn production_refusals(&self, refused: &mut Vec<String>) {
        match self.code_secret_bytes() {
            Ok(key) if key == DEVELOPMENT_CODE_SECRET.as_bytes() => refused.push(
                "filing.code_secret is the development secret (set filing.code_secret or \
                 filing.code_secret_file)"
                    .into(),
            ),
            Ok(key) if key.len() < MIN_PRODUCTION_CODE_SECRET_BYTES => refused.push(format!(
                "filing.code_secret is shorter than {MIN_PRODUCTION_CODE_SECRET_BYTES} bytes"
            )),
            Ok(_) => {}
            Err(e) => refused.push(format!("{e:#}")),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    pub sla_working_days: u32,
    pub at_risk_ratio: f64,
    pub claim_lease_seconds: u64,
    /// Supervisors texted on an SLA breach. `BEIAN__REVIEW__ESCALATION_PHONES=a,b` splits on
    /// commas; a single number given that way is read as a list of one.
    #[serde(deserialize_with = "phone_list")]
    pub escalation_phones: Vec<String>,
}

/// A list of phone numbers, or one (the environment layer reads a lone `13800000000` as a
/// number, not as a list).
fn phone_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Phone {
        Text(String),
        Number(u64),
    }
    impl Phone {
        fn text(self) -> String {
            match self {
                Phone::Text(t) => t.trim().to_string(),
                Phone::Number(n) => n.to_string(),
            }
        }
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Phones {
        Many(Vec<Phone>),
        One(Phone),
    }
    Ok(match Phones::deserialize(d)? {
        Phones::Many(list) => list.into_iter().map(Phone::text).collect(),
        Phones::One(one) => vec![one.text()],
    }
    .into_iter()
    .filter(|p| !p.is_empty())
    .collect())
}

impl ReviewConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.at_risk_ratio) {
            return Err("review.at_risk_ratio: must be between 0 and 1".into());
        }
        if self.sla_working_days == 0 {
            return Err("review.sla_working_days: must be at least 1".into());
        }
        if self.claim_lease_seconds == 0 {
            return Err("review.claim_lease_seconds: must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    pub dir: PathBuf,
    pub timezone: chrono_tz::Tz,
}

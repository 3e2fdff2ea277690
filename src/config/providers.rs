//! The outside providers' sections: `[sms]`, `[face]`, `[payments]`, `[wechat]` and
//! `[alipay]`, with what the production profile refuses of each (simulators, the log SMS
//! provider, a webhook without its secret).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    Log,
    Webhook,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub provider: SmsProvider,
    pub webhook_url: String,
    pub webhook_secret: Secret,
    pub outbox_file: PathBuf,
    pub limit_per_minute: u32,
    pub limit_per_hour: u32,
    pub limit_per_day: u32,
}

impl SmsConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        if self.provider == SmsProvider::Webhook && self.webhook_url.is_empty() {
            return Err("sms.webhook_url: required when sms.provider = \"webhook\"".into());
        }
        Ok(())
    }

    pub(super) fn production_refusals(&self, refused: &mut Vec<String>) {
        match self.provider {
            SmsProvider::Log => refused.push("sms.provider = \"log\"".into()),
            SmsProvider::Webhook if self.webhook_secret.is_empty() => refused.push(
                "sms.webhook_secret is empty (the gateway could not tell our requests from \
                 anyone's)"
                    .into(),
            ),
            SmsProvider::Webhook => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaceProvider {
    Simulated,
    Http,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaceConfig {
    pub provider: FaceProvider,
    pub url: String,
}

impl FaceConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        if self.provider == FaceProvider::Http && self.url.is_empty() {
            return Err("face.url: required when face.provider = \"http\"".into());
        }
        Ok(())
    }

    pub(super) fn production_refusals(&self, refused: &mut Vec<String>) {
        if self.provider == FaceProvider::Simulated {
            refused.push("face.provider = \"simulated\"".into());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentsMode {
    Simulated,
    Live,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    pub mode: PaymentsMode,
    pub due_days: u32,
    pub late_fee_per_day_permille: u32,
}

impl PaymentsConfig {
    pub(super) fn production_refusals(&self, refused: &mut Vec<String>) {
        if self.mode == PaymentsMode::Simulated {
            refused.push("payments.mode = \"simulated\"".into());
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformKey {
    pub serial: String,
    pub public_key_path: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    pub mchid: String,
    pub appid: String,
    pub apiv3_key: Secret,
    pub merchant_key_path: PathBuf,
    pub merchant_serial: String,
    pub platform_keys: Vec<PlatformKey>,
    pub base_url: String,
    pub notify_url: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlipayConfig {
    pub app_id: String,
    pub seller_id: String,
    pub app_private_key_path: PathBuf,
    pub alipay_public_key_path: PathBuf,
    pub gateway_url: String,
    pub notify_url: String,
}

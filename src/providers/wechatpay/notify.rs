//! WeChat Pay API v3 payment notifications (`spec/providers.md`): the checks in the order
//! the protocol wants them, before anything else is read: the signature type, 5-minute
//! freshness against the machine's real time, the `WECHATPAY/SIGNTEST/` probe (must fail),
//! the platform key named by `Wechatpay-Serial`, SHA256withRSA over
//! `timestamp\nnonce\nbody\n`; then the AEAD_AES_256_GCM resource with the APIv3 key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead;
use serde::{Deserialize, Serialize};

use super::{SCHEME, WechatIdentity};

/// How far a notification's timestamp may be from the machine's real time.
pub const FRESHNESS_SECONDS: i64 = 300;

/// Why a notification is refused: `Unauthorized` is a 401 (signature, freshness, serial),
/// `Malformed` a 400 (a body that cannot be read or decrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Unauthorized(&'static str),
    Malformed(&'static str),
}

/// The headers of a notification.
#[derive(Debug, Clone, Default)]
pub struct NotifyHeaders {
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub signature: Option<String>,
    pub serial: Option<String>,
    pub signature_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Resource {
    #[serde(default)]
    pub original_type: String,
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: String,
    pub nonce: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Envelope {
    #[serde(default)]
    id: String,
    #[serde(default)]
    event_type: String,
    resource: Resource,
}

/// The decrypted transaction (`openid` is read by nobody: it is dropped here).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Transaction {
    #[serde(default)]
    pub appid: String,
    #[serde(default)]
    pub mchid: String,
    pub out_trade_no: String,
    #[serde(default)]
    pub transaction_id: String,
    #[serde(default)]
    pub trade_state: String,
    #[serde(default)]
    pub success_time: Option<String>,
    pub amount: Amount,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Amount {
    pub total: i64,
    #[serde(default)]
    pub payer_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
}

/// A verified, decrypted notification.
#[derive(Debug, Clone)]
pub struct Verified {
    pub id: String,
    pub event_type: String,
    pub transaction: Transaction,
}

/// `timestamp\nnonce\nbody\n`: what replies and notifications sign.
pub fn signed_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

impl WechatIdentity {
    /// Checks the signature headers of a reply or notification against `body`.
    pub fn verify_signature(
        &self,
        headers: &NotifyHeaders,
        body: &[u8],
        real_now_s: i64,
    ) -> Result<(), Refused> {
        if headers
            .signature_type
            .as_deref()
            .is_some_and(|t| t != SCHEME)
        {
            return Err(Refused::Unauthorized("unsupported signature type"));
        }
        let (Some(timestamp), Some(nonce), Some(signature), Some(serial)) = (
            headers.timestamp.as_deref(),
            headers.nonce.as_deref(),
            headers.signature.as_deref(),
            headers.serial.as_deref(),
        ) else {
            return Err(Refused::Unauthorized("signature headers missing"));
        };
        if signature.starts_with("WECHATPAY/SIGNTEST/") {
            return Err(Refused::Unauthorized("signature probe"));
        }
        let Ok(at) = timestamp.trim().parse::<i64>() else {
            return Err(Refused::Unauthorized("timestamp is not a number"));
        };
        if (real_now_s - at).abs() > FRESHNESS_SECONDS {
            return Err(Refused::Unauthorized("timestamp too far from now"));
        }
        let Some(key) = self.platform_key(serial) else {
            return Err(Refused::Unauthorized("unknown platform key serial"));
        };
        if !key.verify(&signed_message(timestamp, nonce, body), signature) {
            return Err(Refused::Unauthorized("signature does not verify"));
        }
        Ok(())
    }

    /// Verifies and decrypts a payment notification.
    pub fn verify_notification(
        &self,
        headers: &NotifyHeaders,
        body: &[u8],
        real_now_s: i64,
    ) -> Result<Verified, Refused> {
        self.verify_signature(headers, body, real_now_s)?;
        let envelope: Envelope = serde_json::from_slice(body)
            .map_err(|_| Refused::Malformed("body is not a notification"))?;
        if envelope.resource.algorithm != "AEAD_AES_256_GCM" {
            return Err(Refused::Malformed("unsupported resource algorithm"));
        }
        let plain = self
            .decrypt(&envelope.resource)
            .ok_or(Refused::Malformed("resource cannot be decrypted"))?;
        let transaction: Transaction = serde_json::from_slice(&plain)
            .map_err(|_| Refused::Malformed("resource is not a transaction"))?;
        Ok(Verified {
            id: envelope.id,
            event_type: envelope.event_type,
            transaction,
        })
    }

    /// AEAD_AES_256_GCM with the APIv3 key: `ciphertext` is base64 of ciphertext‖tag.
    pub fn decrypt(&self, resource: &Resource) -> Option<Vec<u8>> {
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, &self.apiv3_key).ok()?;
        let key = aead::LessSafeKey::new(key);
        let nonce = aead::Nonce::try_assume_unique_for_key(resource.nonce.as_bytes()).ok()?;
        let mut sealed = B64.decode(resource.ciphertext.trim()).ok()?;
        let plain = key
            .open_in_place(
                nonce,
                aead::Aad::from(resource.associated_data.as_bytes()),
                &mut sealed,
            )
            .ok()?;
        Some(plain.to_vec())
    }

    /// Encrypts `plain` as a notification resource (the simulator's side of [`Self::decrypt`]).
    pub fn encrypt(&self, plain: &[u8], associated_data: &str, nonce: &str) -> Option<Resource> {
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, &self.apiv3_key).ok()?;
        let key = aead::LessSafeKey::new(key);
        let n = aead::Nonce::try_assume_unique_for_key(nonce.as_bytes()).ok()?;
        let mut data = plain.to_vec();
        key.seal_in_place_append_tag(n, aead::Aad::from(associated_data.as_bytes()), &mut data)
            .ok()?;
        Some(Resource {
            original_type: "transaction".into(),
            algorithm: "AEAD_AES_256_GCM".into(),
            ciphertext: B64.encode(data),
            associated_data: associated_data.into(),
            nonce: nonce.into(),
        })
    }
}

//! The payloads of the jobs the filing lifecycle enqueues, and their keys. The handlers
//! (`impl Job`) live in `workers/`, which call back into this module; keeping the payloads
//! here lets the HTTP handlers and the jobs enqueue through [`crate::filings`] without the
//! API importing any worker.

use serde::{Deserialize, Serialize};

use crate::providers::sms::SmsMessage;

/// `filing.intake`: the registry checks and the limits of one filing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilingIntake {
    pub filing_id: String,
}

impl FilingIntake {
    pub fn dedup_key(&self) -> String {
        self.filing_id.clone()
    }
}

/// `filing.code_expire` (timer): code number `code_number` of a filing expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeExpire {
    pub filing_id: String,
    pub code_number: i64,
}

impl CodeExpire {
    pub fn dedup_key(&self) -> String {
        expire_key(&self.filing_id, self.code_number)
    }
}

/// `filing.abandon` (timer): a filing left in `code_expired` is cancelled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Abandon {
    pub filing_id: String,
    pub code_number: i64,
}

impl Abandon {
    pub fn dedup_key(&self) -> String {
        abandon_key(&self.filing_id, self.code_number)
    }
}

/// `face.verify`: asks the face provider about one certification of a filing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaceVerify {
    pub filing_id: String,
    pub certify_id: String,
}

impl FaceVerify {
    pub fn dedup_key(&self) -> String {
        format!("{}:{}", self.filing_id, self.certify_id)
    }
}

/// `notify.decision`: its payload lives with the review lifecycle, which enqueues it too
/// (`reviews` imports nothing of `filings`).
pub use crate::reviews::jobs::NotifyDecision;

/// The filing code an `sms.send` message carries (derived at send time, never stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRef {
    pub filing_id: String,
    pub code_number: i64,
}

/// `sms.send`: one message through the gateway, keyed by its `message_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmsSend {
    pub message: SmsMessage,
    #[serde(default)]
    pub code: Option<CodeRef>,
}

impl SmsSend {
    pub fn dedup_key(&self) -> String {
        self.message.message_id.clone()
    }
}

/// The `message_id` of code number `n` of a filing.
pub fn code_message_id(filing_id: &str, n: i64) -> String {
    format!("filing:{filing_id}:code:{n}")
}

pub fn expire_key(filing_id: &str, n: i64) -> String {
    format!("filing:{filing_id}:code:{n}:expire")
}

pub fn abandon_key(filing_id: &str, n: i64) -> String {
    format!("filing:{filing_id}:code:{n}:abandon")
}

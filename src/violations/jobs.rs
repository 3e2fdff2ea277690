//! The payloads of the jobs the violation lifecycle enqueues (handlers in `workers/`).

use serde::{Deserialize, Serialize};

/// `violation.ingest`: tells the owner and the active filers of a new violation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViolationIngest {
    pub violation_id: String,
}

impl ViolationIngest {
    pub fn dedup_key(&self) -> String {
        self.violation_id.clone()
    }
}

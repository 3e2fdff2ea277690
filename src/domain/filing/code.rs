//! The owner's SMS code (`spec/domain.md`, SMS method step 3): derived from the service's
//! secret, so a repeated intake or send texts the same code and the code itself is never
//! stored; only a keyed hash of it is. The rules of a code: it expires, it locks after the
//! configured number of wrong entries, and a new one can be asked for only after the resend
//! interval.

use ring::hmac;

use super::FilingStatus;

/// The two keys drawn from the secret (`filing.code_secret`): one derives codes, the other
/// keys the stored hashes. Neither is ever stored; the database holds only the hashes, which
/// cannot be checked against the million possible codes without the secret.
#[derive(Clone)]
pub struct CodeKeys {
    derive: hmac::Key,
    hash: hmac::Key,
}

impl CodeKeys {
    pub fn from_secret(secret: &[u8]) -> CodeKeys {
        let master = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let sub = |purpose: &str| {
            hmac::Key::new(
                hmac::HMAC_SHA256,
                hmac::sign(&master, purpose.as_bytes()).as_ref(),
            )
        };
        CodeKeys {
            derive: sub("beian:filing-code:derive:v1"),
            hash: sub("beian:filing-code:hash:v1"),
        }
    }

    /// The 6-digit code number `n` of a filing. Payments derive their confirmation codes
    /// here too, under their own id (ids are unique across filings and payments).
    pub fn owner_code(&self, filing_id: &str, n: i64) -> String {
        let tag = hmac::sign(
            &self.derive,
            format!("filing-code:{filing_id}:{n}").as_bytes(),
        );
        let bytes = tag.as_ref();
        let value = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) % 1_000_000;
        format!("{value:06}")
    }

    /// What the filing row keeps of a code: an HMAC under the hash key.
    pub fn code_hash(&self, filing_id: &str, n: i64, code: &str) -> String {
        hex::encode(hmac::sign(&self.hash, Self::hashed(filing_id, n, code).as_bytes()).as_ref())
    }

    /// Whether an entered code matches the stored hash (compared in constant time).
    pub fn code_matches(&self, filing_id: &str, n: i64, entered: &str, stored_hash: &str) -> bool {
        let Ok(tag) = hex::decode(stored_hash) else {
            return false;
        };
        hmac::verify(
            &self.hash,
            Self::hashed(filing_id, n, entered.trim()).as_bytes(),
            &tag,
        )
        .is_ok()
    }

    fn hashed(filing_id: &str, n: i64, code: &str) -> String {
        format!("{filing_id}:{n}:{code}")
    }
}

/// The configured rules of codes (`filing.code_*`, `filing.resend_interval_seconds`).
#[derive(Debug, Clone, Copy)]
pub struct CodeRules {
    pub ttl_ms: i64,
    pub max_wrong_entries: i64,
    pub resend_interval_ms: i64,
}

/// Where the holder of a code stands: whether a code is waiting to be entered, and whether
/// it was declared expired (by a timer). Filings and payments both hold codes.
pub trait CodePhase: Copy {
    fn code_pending(self) -> bool;
    fn code_expired(self) -> bool;
}

impl CodePhase for FilingStatus {
    fn code_pending(self) -> bool {
        self == FilingStatus::CodeSent
    }
    fn code_expired(self) -> bool {
        self == FilingStatus::CodeExpired
    }
}

/// What a filing (or another holder, `S`) holds of its current code.
#[derive(Debug, Clone, Copy)]
pub struct CodeState<S = FilingStatus> {
    pub status: S,
    pub sent_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub wrong_entries: i64,
}

/// Why an entered code is not even compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryRefused<S = FilingStatus> {
    /// The filing has no code waiting (it is in this state).
    NoCodePending(S),
    Expired,
    /// The last allowed wrong entry was made: the code is dead.
    Locked,
}

/// Why no new code can be asked for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendRefused<S = FilingStatus> {
    /// The filing has no code to replace (it is in this state).
    NoCode(S),
    /// Too soon after the last code: the wait, in whole seconds (rounded up).
    TooSoon { retry_after_s: u64, interval_s: u64 },
}

impl CodeState {
    /// Entries left after `wrong_entries` wrong ones (0 once the code is dead).
    pub fn attempts_left(wrong_entries: i64, rules: &CodeRules) -> i64 {
        (rules.max_wrong_entries - wrong_entries).max(0)
    }
}

impl<S: CodePhase> CodeState<S> {
    /// Whether an entry may be compared with the code now.
    pub fn check_entry(&self, now_ms: i64, rules: &CodeRules) -> Result<(), EntryRefused<S>> {
        if self.status.code_expired() {
            return Err(EntryRefused::Expired);
        }
        if !self.status.code_pending() {
            return Err(EntryRefused::NoCodePending(self.status));
        }
        if self.wrong_entries >= rules.max_wrong_entries {
            return Err(EntryRefused::Locked);
        }
        if self.expires_at.is_some_and(|at| now_ms >= at) {
            return Err(EntryRefused::Expired);
        }
        Ok(())
    }

    /// Whether a new code may be sent now.
    pub fn can_resend(&self, now_ms: i64, rules: &CodeRules) -> Result<(), ResendRefused<S>> {
        if !(self.status.code_pending() || self.status.code_expired()) {
            return Err(ResendRefused::NoCode(self.status));
        }
        match self.sent_at {
            Some(sent) if now_ms < sent + rules.resend_interval_ms => Err(ResendRefused::TooSoon {
                retry_after_s: ((sent + rules.resend_interval_ms - now_ms) as u64).div_ceil(1000),
                interval_s: (rules.resend_interval_ms as u64).div_ceil(1000),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: CodeRules = CodeRules {
        ttl_ms: 300_000,
        max_wrong_entries: 5,
        resend_interval_ms: 60_000,
    };

    fn sent(at: i64) -> CodeState {
        CodeState {
            status: FilingStatus::CodeSent,
            sent_at: Some(at),
            expires_at: Some(at + RULES.ttl_ms),
            wrong_entries: 0,
        }
    }

    #[test]
    fn codes_are_stable_six_digits_and_only_hashes_match() {
        let keys = CodeKeys::from_secret(b"secret");
        let a = keys.owner_code("f1", 1);
        assert_eq!(a, keys.owner_code("f1", 1));
        assert_eq!(a.len(), 6);
        assert_ne!(
            a,
            keys.owner_code("f1", 2),
            "a resend is a new code (almost surely)"
        );
        let hash = keys.code_hash("f1", 1, &a);
        assert!(keys.code_matches("f1", 1, &a, &hash));
        assert!(keys.code_matches("f1", 1, &format!(" {a} "), &hash));
        assert!(!keys.code_matches("f1", 1, "000000x", &hash));
        assert!(!keys.code_matches("f1", 2, &a, &hash));
        assert!(!keys.code_matches("f1", 1, &a, "not hex"));
    }

    #[test]
    fn the_stored_hash_cannot_be_reproduced_without_the_secret() {
        let keys = CodeKeys::from_secret(b"the real secret");
        let code = keys.owner_code("f1", 1);
        let stored = keys.code_hash("f1", 1, &code);
        // Whoever reads the database has the hash, the filing id and the code number, and
        // can try all million codes: without the secret no guess reproduces the hash.
        let unkeyed = hex::encode(
            ring::digest::digest(&ring::digest::SHA256, format!("f1:1:{code}").as_bytes()).as_ref(),
        );
        assert_ne!(stored, unkeyed, "the hash is keyed");
        let other = CodeKeys::from_secret(b"a guessed secret");
        assert_ne!(other.code_hash("f1", 1, &code), stored);
        assert!(!other.code_matches("f1", 1, &code, &stored));
        // The hash key is not the derivation key: the hash is not the code's own HMAC tag.
        let tag = hmac::sign(&keys.derive, format!("f1:1:{code}").as_bytes());
        assert_ne!(hex::encode(tag.as_ref()), stored);
        // And the secret itself is not a key of either.
        let raw = hmac::Key::new(hmac::HMAC_SHA256, b"the real secret");
        let raw_tag = hmac::sign(&raw, format!("f1:1:{code}").as_bytes());
        assert_ne!(hex::encode(raw_tag.as_ref()), stored);
    }

    #[test]
    fn entries_expire_and_lock() {
        let code = sent(0);
        assert_eq!(code.check_entry(1_000, &RULES), Ok(()));
        assert_eq!(
            code.check_entry(RULES.ttl_ms, &RULES),
            Err(EntryRefused::Expired)
        );
        let locked = CodeState {
            wrong_entries: 5,
            ..code
        };
        assert_eq!(locked.check_entry(1_000, &RULES), Err(EntryRefused::Locked));
        let expired = CodeState {
            status: FilingStatus::CodeExpired,
            ..code
        };
        assert_eq!(expired.check_entry(1, &RULES), Err(EntryRefused::Expired));
        let verified = CodeState {
            status: FilingStatus::CodeVerified,
            ..code
        };
        assert_eq!(
            verified.check_entry(1, &RULES),
            Err(EntryRefused::NoCodePending(FilingStatus::CodeVerified))
        );
        assert_eq!(CodeState::attempts_left(4, &RULES), 1);
        assert_eq!(CodeState::attempts_left(7, &RULES), 0);
    }

    #[test]
    fn resend_waits_for_the_configured_interval() {
        let code = sent(0);
        assert_eq!(
            code.can_resend(59_001, &RULES),
            Err(ResendRefused::TooSoon {
                retry_after_s: 1,
                interval_s: 60
            })
        );
        assert_eq!(code.can_resend(60_000, &RULES), Ok(()));
        let slow = CodeRules {
            resend_interval_ms: 120_000,
            ..RULES
        };
        assert!(matches!(
            code.can_resend(60_000, &slow),
            Err(ResendRefused::TooSoon {
                interval_s: 120,
                ..
            })
        ));
        let ended = CodeState {
            status: FilingStatus::Approved,
            ..code
        };
        assert_eq!(
            ended.can_resend(600_000, &RULES),
            Err(ResendRefused::NoCode(FilingStatus::Approved))
        );
    }
}

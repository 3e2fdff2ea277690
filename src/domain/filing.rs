//! Filing a vehicle not in your name (非本人机动车备案): the states and their meaning, the
//! reasons a filing is rejected, the limits, and the owner's SMS code. Pure rules: the
//! store counts, this module decides.

use ring::hmac;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::registry::{OwnerKind, Vehicle, VehicleUsage};

/// Where a filing is. `live` states hold a place against the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilingStatus {
    Received,
    Rejected,
    CodeSent,
    CodeExpired,
    CodeVerified,
    DocumentsRequired,
    UnderReview,
    Approved,
    ReviewRejected,
    Cancelled,
    Unbound,
}

impl FilingStatus {
    pub const ALL: [FilingStatus; 11] = [
        FilingStatus::Received,
        FilingStatus::Rejected,
        FilingStatus::CodeSent,
        FilingStatus::CodeExpired,
        FilingStatus::CodeVerified,
        FilingStatus::DocumentsRequired,
        FilingStatus::UnderReview,
        FilingStatus::Approved,
        FilingStatus::ReviewRejected,
        FilingStatus::Cancelled,
        FilingStatus::Unbound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FilingStatus::Received => "received",
            FilingStatus::Rejected => "rejected",
            FilingStatus::CodeSent => "code_sent",
            FilingStatus::CodeExpired => "code_expired",
            FilingStatus::CodeVerified => "code_verified",
            FilingStatus::DocumentsRequired => "documents_required",
            FilingStatus::UnderReview => "under_review",
            FilingStatus::Approved => "approved",
            FilingStatus::ReviewRejected => "review_rejected",
            FilingStatus::Cancelled => "cancelled",
            FilingStatus::Unbound => "unbound",
        }
    }

    pub fn parse(s: &str) -> Option<FilingStatus> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Holds a place against the limits (in progress, or approved).
    pub fn is_live(self) -> bool {
        !matches!(
            self,
            FilingStatus::Rejected
                | FilingStatus::ReviewRejected
                | FilingStatus::Cancelled
                | FilingStatus::Unbound
        )
    }

    /// In progress: live and not yet approved (the filer cancels these; approved ones unbind).
    pub fn is_in_progress(self) -> bool {
        self.is_live() && self != FilingStatus::Approved
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilingMethod {
    /// 短信验证备案: the owner passes on an SMS code.
    Sms,
    /// 扫码备案: the owner shows a QR code.
    Qr,
}

impl FilingMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            FilingMethod::Sms => "sms",
            FilingMethod::Qr => "qr",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    Relative,
    Friend,
    Colleague,
    Other,
}

impl Relationship {
    pub fn as_str(self) -> &'static str {
        match self {
            Relationship::Relative => "relative",
            Relationship::Friend => "friend",
            Relationship::Colleague => "colleague",
            Relationship::Other => "other",
        }
    }
}

/// Why intake rejected a filing (the `reason` codes of `spec/api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    PlateTypeNotAllowed,
    VehicleNotFound,
    EngineMismatch,
    VehicleNotEligible,
    UserQuotaExceeded,
    VehicleQuotaExceeded,
    DailyLimit,
    YearlyLimit,
    AlreadyFiled,
    SmsRateLimited,
}

impl RejectReason {
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::PlateTypeNotAllowed => "plate_type_not_allowed",
            RejectReason::VehicleNotFound => "vehicle_not_found",
            RejectReason::EngineMismatch => "engine_mismatch",
            RejectReason::VehicleNotEligible => "vehicle_not_eligible",
            RejectReason::UserQuotaExceeded => "user_quota_exceeded",
            RejectReason::VehicleQuotaExceeded => "vehicle_quota_exceeded",
            RejectReason::DailyLimit => "daily_limit",
            RejectReason::YearlyLimit => "yearly_limit",
            RejectReason::AlreadyFiled => "already_filed",
            RejectReason::SmsRateLimited => "sms_rate_limited",
        }
    }
}

/// The registry checks (limit 1 of the domain rules, then the engine number).
pub fn check_vehicle(vehicle: &Vehicle, engine_last6: &str) -> Result<(), RejectReason> {
    if !vehicle.plate_type.is_fileable() {
        return Err(RejectReason::PlateTypeNotAllowed);
    }
    let engine: Vec<char> = vehicle
        .fields
        .engine_number
        .trim()
        .to_uppercase()
        .chars()
        .collect();
    let last6: String = engine[engine.len().saturating_sub(6)..].iter().collect();
    if last6 != engine_last6.to_uppercase() {
        return Err(RejectReason::EngineMismatch);
    }
    let owner_ok = match vehicle.fields.owner_kind {
        OwnerKind::Person => true,
        OwnerKind::Unit => vehicle.fields.usage == VehicleUsage::NonOperating,
    };
    if !owner_ok || vehicle.fields.status != "normal" {
        return Err(RejectReason::VehicleNotEligible);
    }
    Ok(())
}

/// What the store counted for one filer and one vehicle (the filing being checked left out).
#[derive(Debug, Clone, Copy, Default)]
pub struct FilingCounts {
    /// Live non-owned filings of this filer for this same vehicle.
    pub same_vehicle_live: u32,
    /// Live non-owned filings of this filer.
    pub filer_live: u32,
    /// Live non-owned filings of this vehicle (by any filer).
    pub vehicle_live: u32,
    /// Non-owned applications the filer started today / this year (Asia/Shanghai).
    pub filer_today: u32,
    pub filer_this_year: u32,
}

/// The configured limits (`filing.*`).
#[derive(Debug, Clone, Copy)]
pub struct FilingLimits {
    pub per_filer: u32,
    pub per_vehicle: u32,
    pub per_day: u32,
    pub per_year: u32,
}

/// Limits 2–5 of the domain rules, in that order of report.
pub fn check_limits(counts: &FilingCounts, limits: &FilingLimits) -> Result<(), RejectReason> {
    if counts.same_vehicle_live > 0 {
        return Err(RejectReason::AlreadyFiled);
    }
    if counts.filer_live >= limits.per_filer {
        return Err(RejectReason::UserQuotaExceeded);
    }
    if counts.vehicle_live >= limits.per_vehicle {
        return Err(RejectReason::VehicleQuotaExceeded);
    }
    if counts.filer_today >= limits.per_day {
        return Err(RejectReason::DailyLimit);
    }
    if counts.filer_this_year >= limits.per_year {
        return Err(RejectReason::YearlyLimit);
    }
    Ok(())
}

/// The owner's 6-digit code for code number `n` of a filing: derived with the service's
/// secret key, so a repeated intake or send texts the same code, and the code itself is never
/// stored (only [`code_hash`]).
pub fn owner_code(key: &[u8], filing_id: &str, n: i64) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        format!("filing-code:{filing_id}:{n}").as_bytes(),
    );
    let bytes = tag.as_ref();
    let value = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) % 1_000_000;
    format!("{value:06}")
}

/// What the filing row keeps of a code.
pub fn code_hash(filing_id: &str, n: i64, code: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{filing_id}:{n}:{code}").as_bytes(),
    );
    hex::encode(digest.as_ref())
}

/// Whether an entered code matches the stored hash (hashes are compared, never codes).
pub fn code_matches(filing_id: &str, n: i64, entered: &str, stored_hash: &str) -> bool {
    code_hash(filing_id, n, entered.trim()) == stored_hash
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FilingLimits = FilingLimits {
        per_filer: 3,
        per_vehicle: 3,
        per_day: 1,
        per_year: 5,
    };

    #[test]
    fn limits_report_in_order() {
        let ok = FilingCounts::default();
        assert_eq!(check_limits(&ok, &LIMITS), Ok(()));
        let c = FilingCounts {
            same_vehicle_live: 1,
            filer_live: 3,
            ..ok
        };
        assert_eq!(check_limits(&c, &LIMITS), Err(RejectReason::AlreadyFiled));
        let c = FilingCounts {
            filer_live: 3,
            ..ok
        };
        assert_eq!(
            check_limits(&c, &LIMITS),
            Err(RejectReason::UserQuotaExceeded)
        );
        let c = FilingCounts {
            vehicle_live: 3,
            ..ok
        };
        assert_eq!(
            check_limits(&c, &LIMITS),
            Err(RejectReason::VehicleQuotaExceeded)
        );
        let c = FilingCounts {
            filer_today: 1,
            ..ok
        };
        assert_eq!(check_limits(&c, &LIMITS), Err(RejectReason::DailyLimit));
        let c = FilingCounts {
            filer_this_year: 5,
            ..ok
        };
        assert_eq!(check_limits(&c, &LIMITS), Err(RejectReason::YearlyLimit));
    }

    #[test]
    fn codes_are_stable_six_digits_and_only_hashes_match() {
        let a = owner_code(b"key", "f1", 1);
        assert_eq!(a, owner_code(b"key", "f1", 1));
        assert_eq!(a.len(), 6);
        assert_ne!(
            a,
            owner_code(b"key", "f1", 2),
            "a resend is a new code (almost surely)"
        );
        let hash = code_hash("f1", 1, &a);
        assert!(code_matches("f1", 1, &a, &hash));
        assert!(!code_matches("f1", 1, "000000x", &hash));
        assert!(!code_matches("f1", 2, &a, &hash));
    }

    #[test]
    fn statuses_round_trip_and_liveness() {
        for s in FilingStatus::ALL {
            assert_eq!(FilingStatus::parse(s.as_str()), Some(s));
        }
        assert!(FilingStatus::CodeExpired.is_live());
        assert!(!FilingStatus::Rejected.is_live());
        assert!(!FilingStatus::Approved.is_in_progress());
    }
}

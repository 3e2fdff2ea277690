//! The limits on filing vehicles not in your name (`spec/domain.md`, "Limits"): the
//! registry checks, and the counts a filing must stay under. What counts as an application
//! is decided here too; the store only counts what this module names.

use crate::domain::registry::{OwnerKind, Vehicle, VehicleUsage};

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
    /// QR method: the owner's token is forged, expired at submission, or for another vehicle.
    QrTokenInvalid,
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
            RejectReason::QrTokenInvalid => "qr_token_invalid",
        }
    }

    /// Whether an application rejected for this reason still counts against the daily and
    /// yearly limits. A rejected application counts ("a rejected or expired application
    /// still counts"), except refusals for those very limits, and the owner's phone being
    /// over its SMS flow control, which says nothing of the filer: api.md lets them try
    /// again later.
    pub fn counts_as_application(self) -> bool {
        !matches!(
            self,
            RejectReason::DailyLimit | RejectReason::YearlyLimit | RejectReason::SmsRateLimited
        )
    }

    /// The reasons whose rejections do not count as applications (for the store's query).
    pub fn not_counted() -> [RejectReason; 3] {
        [
            RejectReason::DailyLimit,
            RejectReason::YearlyLimit,
            RejectReason::SmsRateLimited,
        ]
    }
}

/// The registry checks (limit 1 of the domain rules, then the engine number).
pub fn check_vehicle(vehicle: &Vehicle, engine_last6: &str) -> Result<(), RejectReason> {
    check_vehicle_with(vehicle, Some(engine_last6))
}

/// As [`check_vehicle`], the engine number compared only when given: a QR filing names its
/// vehicle by the owner's signed token, and the filer may leave the engine number out.
pub fn check_vehicle_with(
    vehicle: &Vehicle,
    engine_last6: Option<&str>,
) -> Result<(), RejectReason> {
    if !vehicle.plate_type.is_fileable() {
        return Err(RejectReason::PlateTypeNotAllowed);
    }
    if let Some(engine_last6) = engine_last6 {
        check_engine(vehicle, engine_last6)?;
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

fn check_engine(vehicle: &Vehicle, engine_last6: &str) -> Result<(), RejectReason> {
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
    /// Non-owned applications the filer started today / this year (Asia/Shanghai) before
    /// this one.
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
    fn refusals_that_say_nothing_of_the_filer_do_not_count() {
        assert!(RejectReason::EngineMismatch.counts_as_application());
        assert!(!RejectReason::SmsRateLimited.counts_as_application());
        assert!(!RejectReason::DailyLimit.counts_as_application());
        for r in RejectReason::not_counted() {
            assert!(!r.counts_as_application());
        }
    }
}

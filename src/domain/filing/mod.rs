//! Filing a vehicle not in your name (非本人机动车备案): the states and the moves allowed
//! between them, the method and the relationship. The limits are in [`limits`], the owner's
//! SMS code in [`code`]. Pure rules: the store counts and records, this module decides.

pub mod code;
pub mod limits;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use limits::{
    FilingCounts, FilingLimits, RejectReason, check_limits, check_vehicle, check_vehicle_with,
};

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

    /// Passed intake (a `received` filing is not yet checked; nobody but its filer sees it).
    pub fn passed_intake(self) -> bool {
        !matches!(self, FilingStatus::Received | FilingStatus::Rejected)
    }

    /// The moves of `spec/domain.md` ("Filing states"): the one table every transition is
    /// checked against.
    pub fn allows(self, to: FilingStatus) -> bool {
        use FilingStatus::*;
        if to == Cancelled {
            return self.is_in_progress();
        }
        matches!(
            (self, to),
            (Received, Rejected)
                | (Received, CodeSent)
                | (Received, Approved) // the owner's own vehicle
                | (CodeSent, CodeExpired)
                | (CodeSent, CodeSent) // a resend
                | (CodeExpired, CodeSent)
                | (CodeSent, CodeVerified)
                | (CodeVerified, Approved)
                | (CodeVerified, DocumentsRequired)
                | (CodeVerified, UnderReview) // QR method
                | (DocumentsRequired, UnderReview)
                | (UnderReview, Approved)
                | (UnderReview, ReviewRejected)
                | (Approved, Unbound)
        )
    }

    /// The move to `to`, if the domain allows it. The store records only [`Move`]s, so a
    /// forbidden transition is refused here and nowhere else.
    pub fn move_to(self, to: FilingStatus) -> Result<Move, ForbiddenMove> {
        if self.allows(to) {
            Ok(Move { from: self, to })
        } else {
            Err(ForbiddenMove { from: self, to })
        }
    }

    /// The move to `to` for a filing of `method`: the table's moves, less the one the other
    /// method takes after the code is verified (an SMS filing goes on to the face check, a
    /// QR filing always to review: `received(QR) -> code_sent -> code_verified -> under_review`).
    pub fn move_for(self, method: FilingMethod, to: FilingStatus) -> Result<Move, ForbiddenMove> {
        use FilingStatus::*;
        let other_method = matches!(
            (method, self, to),
            (FilingMethod::Qr, CodeVerified, Approved | DocumentsRequired)
                | (FilingMethod::Qr, DocumentsRequired, _)
                | (FilingMethod::Sms, CodeVerified, UnderReview)
        );
        if other_method {
            Err(ForbiddenMove { from: self, to })
        } else {
            self.move_to(to)
        }
    }

    /// How a filing that is still live ends: approved ones are unbound, others cancelled.
    pub fn ending(self) -> Result<Move, ForbiddenMove> {
        if self == FilingStatus::Approved {
            self.move_to(FilingStatus::Unbound)
        } else {
            self.move_to(FilingStatus::Cancelled)
        }
    }
}

/// An allowed transition (made only by [`FilingStatus::move_to`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    from: FilingStatus,
    to: FilingStatus,
}

impl Move {
    pub fn from(self) -> FilingStatus {
        self.from
    }
    pub fn to(self) -> FilingStatus {
        self.to
    }
}

/// A transition the domain does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a filing cannot move from {} to {}", from.as_str(), to.as_str())]
pub struct ForbiddenMove {
    pub from: FilingStatus,
    pub to: FilingStatus,
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

    pub fn parse(s: &str) -> Option<FilingMethod> {
        [FilingMethod::Sms, FilingMethod::Qr]
            .into_iter()
            .find(|m| m.as_str() == s)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_liveness() {
        for s in FilingStatus::ALL {
            assert_eq!(FilingStatus::parse(s.as_str()), Some(s));
        }
        assert!(FilingStatus::CodeExpired.is_live());
        assert!(!FilingStatus::Rejected.is_live());
        assert!(!FilingStatus::Approved.is_in_progress());
    }

    #[test]
    fn only_the_moves_of_the_state_diagram_are_allowed() {
        use FilingStatus::*;
        assert!(Received.move_to(CodeSent).is_ok());
        assert!(CodeExpired.move_to(CodeSent).is_ok());
        assert!(CodeSent.move_to(CodeSent).is_ok(), "a resend");
        assert!(Approved.move_to(Unbound).is_ok());
        assert!(Approved.move_to(Cancelled).is_err(), "approved ones unbind");
        assert!(Received.move_to(CodeVerified).is_err());
        assert!(CodeExpired.move_to(CodeVerified).is_err());
        assert!(Rejected.move_to(CodeSent).is_err());
        for ended in [Rejected, ReviewRejected, Cancelled, Unbound] {
            for to in FilingStatus::ALL {
                assert!(ended.move_to(to).is_err(), "{ended:?} -> {to:?}");
            }
        }
        for live in FilingStatus::ALL.into_iter().filter(|s| s.is_in_progress()) {
            assert_eq!(live.ending().map(Move::to), Ok(Cancelled));
        }
        assert_eq!(Approved.ending().map(Move::to), Ok(Unbound));
        assert!(Unbound.ending().is_err());
    }

    #[test]
    fn each_method_takes_its_own_way_after_the_code() {
        use FilingMethod::*;
        use FilingStatus::*;
        assert!(CodeVerified.move_for(Qr, UnderReview).is_ok());
        assert!(CodeVerified.move_for(Qr, Approved).is_err());
        assert!(CodeVerified.move_for(Qr, DocumentsRequired).is_err());
        assert!(CodeVerified.move_for(Sms, UnderReview).is_err());
        assert!(CodeVerified.move_for(Sms, Approved).is_ok());
        assert!(DocumentsRequired.move_for(Sms, UnderReview).is_ok());
        assert!(DocumentsRequired.move_for(Qr, UnderReview).is_err());
        for method in [Sms, Qr] {
            assert!(Received.move_for(method, CodeSent).is_ok());
            assert!(CodeSent.move_for(method, CodeVerified).is_ok());
            assert!(UnderReview.move_for(method, Approved).is_ok());
            assert!(UnderReview.move_for(method, ReviewRejected).is_ok());
            assert!(UnderReview.move_for(method, Cancelled).is_ok());
            assert_eq!(FilingMethod::parse(method.as_str()), Some(method));
        }
    }
}

//! The registry copies the service keeps: vehicles (by plate) and drivers (by user id), with
//! the checks an upsert or an import line must pass. Pure data, no I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::plate::{PlateNumber, PlateType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    Person,
    Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VehicleUsage {
    NonOperating,
    Operating,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LicenceStatus {
    Valid,
    Suspended,
    Revoked,
}

impl OwnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Person => "person",
            OwnerKind::Unit => "unit",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "person" => Some(OwnerKind::Person),
            "unit" => Some(OwnerKind::Unit),
            _ => None,
        }
    }
}

impl VehicleUsage {
    pub fn as_str(self) -> &'static str {
        match self {
            VehicleUsage::NonOperating => "non_operating",
            VehicleUsage::Operating => "operating",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "non_operating" => Some(VehicleUsage::NonOperating),
            "operating" => Some(VehicleUsage::Operating),
            _ => None,
        }
    }
}

impl LicenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenceStatus::Valid => "valid",
            LicenceStatus::Suspended => "suspended",
            LicenceStatus::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "valid" => Some(LicenceStatus::Valid),
            "suspended" => Some(LicenceStatus::Suspended),
            "revoked" => Some(LicenceStatus::Revoked),
            _ => None,
        }
    }
}

/// The body of a vehicle upsert (`PUT /v1/registry/vehicles/{plate_type}/{plate_number}`).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VehicleFields {
    pub owner_id_number: String,
    pub owner_name: String,
    /// The 11-digit mainland number the owner's SMS codes go to.
    pub owner_phone: String,
    pub owner_kind: OwnerKind,
    pub engine_number: String,
    pub usage: VehicleUsage,
    /// `normal`, `scrapped`, `stolen`, ...: only `normal` vehicles can be filed.
    pub status: String,
}

/// The body of a driver upsert (`PUT /v1/registry/drivers/{user_id}`).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DriverFields {
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub licence_number: String,
    pub licence_status: LicenceStatus,
    pub points: i64,
}

/// A vehicle as the registry holds it.
#[derive(Debug, Clone)]
pub struct Vehicle {
    pub plate_type: PlateType,
    pub plate_number: PlateNumber,
    pub fields: VehicleFields,
}

#[derive(Debug, Clone)]
pub struct Driver {
    pub user_id: String,
    pub fields: DriverFields,
}

impl Driver {
    /// Whether this driver is the registered owner of `vehicle` (api.md: their ID number is
    /// the vehicle's owner ID number).
    pub fn owns(&self, vehicle: &Vehicle) -> bool {
        self.fields.id_number.trim() == vehicle.fields.owner_id_number.trim()
    }
}

/// A field that failed a registry check: which one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

fn field_error(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

/// A mainland mobile number: 11 digits starting with 1.
pub fn is_mobile_number(phone: &str) -> bool {
    phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit())
}

fn require_text(field: &'static str, value: &str, max_chars: usize) -> Result<(), FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(field_error(field, "must not be empty"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(field_error(
            field,
            format!("longer than {max_chars} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(field_error(field, "contains control characters"));
    }
    Ok(())
}

impl VehicleFields {
    pub fn validate(&self) -> Result<(), FieldError> {
        require_text("owner_id_number", &self.owner_id_number, 32)?;
        require_text("owner_name", &self.owner_name, 100)?;
        if !is_mobile_number(&self.owner_phone) {
            return Err(field_error(
                "owner_phone",
                "expected an 11-digit mainland mobile number",
            ));
        }
        require_text("engine_number", &self.engine_number, 32)?;
        if self.engine_number.trim().chars().count() < 6 {
            return Err(field_error("engine_number", "shorter than 6 characters"));
        }
        let status_ok = !self.status.is_empty()
            && self.status.len() <= 32
            && self
                .status
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_');
        if !status_ok {
            return Err(field_error(
                "status",
                "expected a lower-case status word such as normal or scrapped",
            ));
        }
        Ok(())
    }
}

impl DriverFields {
    pub fn validate(&self) -> Result<(), FieldError> {
        require_text("name", &self.name, 100)?;
        require_text("id_number", &self.id_number, 32)?;
        if !is_mobile_number(&self.phone) {
            return Err(field_error(
                "phone",
                "expected an 11-digit mainland mobile number",
            ));
        }
        require_text("licence_number", &self.licence_number, 32)?;
        if !(0..=12).contains(&self.points) {
            return Err(field_error("points", "must be between 0 and 12"));
        }
        Ok(())
    }
}

/// A user id (`sub`) as the registry keys drivers: 1–64 printable ASCII characters.
pub fn validate_user_id(user_id: &str) -> Result<(), FieldError> {
    let ok = !user_id.is_empty()
        && user_id.len() <= 64
        && user_id.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if ok {
        Ok(())
    } else {
        Err(field_error(
            "user_id",
            "expected 1-64 printable ASCII characters without '/'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vehicle() -> VehicleFields {
        VehicleFields {
            owner_id_number: "110101199003071234".into(),
            owner_name: "张三".into(),
            owner_phone: "13812345678".into(),
            owner_kind: OwnerKind::Person,
            engine_number: "LB12345678".into(),
            usage: VehicleUsage::NonOperating,
            status: "normal".into(),
        }
    }

    #[test]
    fn vehicle_checks_name_the_field() {
        assert!(vehicle().validate().is_ok());
        let mut v = vehicle();
        v.owner_phone = "1381234".into();
        assert_eq!(v.validate().unwrap_err().field, "owner_phone");
        let mut v = vehicle();
        v.engine_number = "123".into();
        assert_eq!(v.validate().unwrap_err().field, "engine_number");
        let mut v = vehicle();
        v.status = "DROP TABLE".into();
        assert_eq!(v.validate().unwrap_err().field, "status");
    }

    #[test]
    fn driver_points_are_bounded() {
        let mut d = DriverFields {
            name: "李四".into(),
            id_number: "110101199003071234".into(),
            phone: "13912345678".into(),
            licence_number: "110101199003071234".into(),
            licence_status: LicenceStatus::Valid,
            points: 3,
        };
        assert!(d.validate().is_ok());
        d.points = 13;
        assert_eq!(d.validate().unwrap_err().field, "points");
    }
}

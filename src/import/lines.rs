//! The shape of one import line, field by field, and the reasons a line is refused: each
//! names the field (or column) and what it must be, never the value, which may be a phone
//! or an ID number.

use serde::de::DeserializeOwned;
use serde::de::value::StrDeserializer;
use serde_json::{Map, Value};

use super::ImportKind;
use crate::domain::registry::{LicenceStatus, OwnerKind, VehicleUsage};

/// One field of a line: its name, what it must be (for the report), and checks of a value's
/// shape as a JSON value (NDJSON) and as a CSV cell. Reports name the field and this
/// description, never the value.
pub(super) struct FieldSpec {
    name: &'static str,
    expected: &'static str,
    fits: fn(&Value) -> bool,
    fits_cell: fn(&str) -> bool,
}

fn fits<T: DeserializeOwned>(value: &Value) -> bool {
    T::deserialize(value).is_ok()
}

fn cell_fits<T: DeserializeOwned>(cell: &str) -> bool {
    T::deserialize(StrDeserializer::<serde::de::value::Error>::new(cell)).is_ok()
}

fn any_cell(_: &str) -> bool {
    true
}

const fn text(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        expected: "a string",
        fits: fits::<String>,
        fits_cell: any_cell,
    }
}

/// A field whose values are the names of `T`'s variants.
const fn one_of<T: DeserializeOwned>(name: &'static str, expected: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        expected,
        fits: fits::<T>,
        fits_cell: cell_fits::<T>,
    }
}

pub(super) const VEHICLE_FIELDS: &[FieldSpec] = &[
    text("plate_type"),
    text("plate_number"),
    text("owner_id_number"),
    text("owner_name"),
    text("owner_phone"),
    one_of::<OwnerKind>("owner_kind", "person or unit"),
    text("engine_number"),
    one_of::<VehicleUsage>("usage", "non_operating or operating"),
    text("status"),
];

pub(super) const DRIVER_FIELDS: &[FieldSpec] = &[
    text("user_id"),
    text("name"),
    text("id_number"),
    text("phone"),
    text("licence_number"),
    one_of::<LicenceStatus>("licence_status", "valid, suspended or revoked"),
    FieldSpec {
        name: "points",
        expected: "an integer",
        fits: fits::<i64>,
        fits_cell: |cell| cell.parse::<i64>().is_ok(),
    },
];

impl ImportKind {
    fn fields(self) -> &'static [FieldSpec] {
        match self {
            ImportKind::Vehicles => VEHICLE_FIELDS,
            ImportKind::Drivers => DRIVER_FIELDS,
        }
    }
}

/// A name from the file, shown only when it looks like a field name: a file without a
/// header row would otherwise print its first line's values as column names.
fn shown_name(name: &str) -> String {
    let looks_like_a_field = (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if looks_like_a_field {
        format!("`{name}`")
    } else {
        "(a name that is not a field name; not shown)".into()
    }
}

/// Checks an NDJSON line's shape field by field, with reasons that carry no value.
pub(super) fn json_line<T: DeserializeOwned>(raw: &str, fields: &[FieldSpec]) -> Result<T, String> {
    let map: Map<String, Value> = serde_json::from_str(raw).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => "not a JSON object".to_string(),
        serde_json::error::Category::Eof => "not valid JSON: the line ends early".to_string(),
        _ => format!("not valid JSON (column {})", e.column()),
    })?;
    if let Some(unknown) = map.keys().find(|k| !fields.iter().any(|f| f.name == *k)) {
        return Err(format!("unknown field {}", shown_name(unknown)));
    }
    for field in fields {
        match map.get(field.name) {
            None => return Err(format!("{}: missing", field.name)),
            Some(value) if !(field.fits)(value) => {
                return Err(format!("{}: expected {}", field.name, field.expected));
            }
            Some(_) => {}
        }
    }
    serde_json::from_value(Value::Object(map)).map_err(|_| "not a valid line".to_string())
}

/// The header row names every field once and nothing else.
pub(super) fn check_csv_header(
    kind: ImportKind,
    headers: &csv::StringRecord,
) -> Result<(), String> {
    let fields = kind.fields();
    if let Some(unknown) = headers
        .iter()
        .find(|h| !fields.iter().any(|f| f.name == *h))
    {
        return Err(format!(
            "unknown column {} in the header row (columns are: {})",
            shown_name(unknown),
            fields.iter().map(|f| f.name).collect::<Vec<_>>().join(",")
        ));
    }
    if let Some(missing) = fields.iter().find(|f| !headers.iter().any(|h| h == f.name)) {
        return Err(format!("the header row has no column {}", missing.name));
    }
    Ok(())
}

/// Checks a CSV line's cells column by column, with reasons that carry no value.
pub(super) fn check_csv_record(
    kind: ImportKind,
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
) -> Result<(), String> {
    for (i, (header, cell)) in headers.iter().zip(record.iter()).enumerate() {
        if let Some(spec) = kind.fields().iter().find(|f| f.name == header) {
            if !(spec.fits_cell)(cell) {
                return Err(format!(
                    "column {} ({}): expected {}",
                    i + 1,
                    spec.name,
                    spec.expected
                ));
            }
        }
    }
    Ok(())
}

/// Why a CSV line was refused, naming the column and what it must be, never its value.
pub(super) fn csv_reason(kind: ImportKind, headers: &csv::StringRecord, e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            use csv::DeserializeErrorKind as K;
            let spec = err
                .field()
                .and_then(|i| headers.get(i as usize))
                .and_then(|name| kind.fields().iter().find(|f| f.name == name));
            let what = match err.kind() {
                K::UnexpectedEndOfRow => "missing".to_string(),
                K::InvalidUtf8(_) => "not valid UTF-8".to_string(),
                _ => match spec {
                    Some(spec) => format!("expected {}", spec.expected),
                    None => "not a valid value".to_string(),
                },
            };
            match (err.field(), spec) {
                (Some(i), Some(spec)) => format!("column {} ({}): {what}", i + 1, spec.name),
                (Some(i), None) => format!("column {}: {what}", i + 1),
                (None, _) => what,
            }
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} columns, found {len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        _ => "unreadable line".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "13899990000";
    const ID: &str = "110101199912319999";

    fn vehicle_with(field: &str, value: Value) -> String {
        let mut line = serde_json::json!({
            "plate_type": "02", "plate_number": "京A12345", "owner_id_number": "110101199003071234",
            "owner_name": "张三", "owner_phone": "13812345678", "owner_kind": "person",
            "engine_number": "LB12345678", "usage": "non_operating", "status": "normal"
        });
        line[field] = value;
        line.to_string()
    }

    fn refusal(raw: &str) -> String {
        json_line::<Map<String, Value>>(raw, VEHICLE_FIELDS)
            .err()
            .unwrap_or_default()
    }

    #[test]
    fn json_reasons_name_the_field_never_the_value() {
        let cases = [
            (
                vehicle_with("owner_phone", serde_json::json!(13899990000u64)),
                "owner_phone: expected a string",
            ),
            (
                vehicle_with("owner_id_number", serde_json::json!(110101199912319999u64)),
                "owner_id_number: expected a string",
            ),
            (
                vehicle_with("owner_kind", serde_json::json!(PHONE)),
                "owner_kind: expected person or unit",
            ),
            (
                vehicle_with("usage", serde_json::json!(ID)),
                "usage: expected non_operating or operating",
            ),
        ];
        for (raw, expected) in cases {
            let reason = refusal(&raw);
            assert_eq!(reason, expected, "{raw}");
        }
        // A key that is itself personal data is not echoed either.
        let raw = vehicle_with("owner_phone", serde_json::json!("13812345678")).replacen(
            '{',
            &format!("{{\"{PHONE}\":1,"),
            1,
        );
        let reason = refusal(&raw);
        assert!(
            reason.starts_with("unknown field") && !reason.contains(PHONE),
            "{reason}"
        );
        let raw = vehicle_with("status", serde_json::json!("normal"))
            .replace("\"status\":\"normal\"", "\"status\":");
        let reason = refusal(&raw);
        assert!(reason.starts_with("not valid JSON"), "{reason}");
        let reason = refusal(&format!("[\"{PHONE}\"]"));
        assert_eq!(reason, "not a JSON object");
    }

    #[test]
    fn missing_fields_are_named() {
        let raw = vehicle_with("status", Value::Null).replace(",\"status\":null", "");
        let reason = refusal(&raw);
        assert_eq!(reason, "status: missing", "{raw}");
    }

    #[test]
    fn only_field_like_names_are_shown() {
        assert_eq!(shown_name("owner_phon"), "`owner_phon`");
        for value in [PHONE, ID, "张三", "U1", "京A12345"] {
            assert!(!shown_name(value).contains(value), "{value}");
        }
    }
}

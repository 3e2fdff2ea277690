//! How the admin API shows a job: times in RFC 3339, and personal data masked. Payloads,
//! errors and keys can hold phones, ID numbers, names and codes (an `sms.send` payload holds
//! the recipient's phone): values under keys that name such data are masked by key, and any
//! text that looks like a mainland mobile or ID number is masked wherever it stands.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::domain::masking::{mask_id_number, mask_name, mask_phone};
use crate::store::jobs::JobRow;

/// A job as the admin API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub key: String,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    /// Every failed attempt: `{attempt, started_at, finished_at, error}`.
    #[schema(value_type = Vec<Object>)]
    pub history: Value,
    /// The job's payload, personal data masked.
    #[schema(value_type = Object)]
    pub payload: Value,
    pub run_at: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<JobRow> for JobView {
    fn from(row: JobRow) -> JobView {
        let json = |text: &str| {
            let mut value: Value = serde_json::from_str(text).unwrap_or_default();
            mask_personal_data(&mut value);
            value
        };
        JobView {
            history: json(&row.history),
            payload: json(&row.payload),
            key: mask_text(&row.key),
            last_error: row.last_error.as_deref().map(mask_text),
            run_at: rfc3339(row.run_at_ms),
            created_at: rfc3339(row.created_at_ms),
            updated_at: rfc3339(row.updated_at_ms),
            id: row.id,
            queue: row.queue,
            kind: row.kind,
            state: row.state,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
        }
    }
}

/// What a key says its value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Personal {
    Phone,
    IdNumber,
    Name,
    /// An SMS or owner code: hidden whole.
    Code,
}

fn personal_key(key: &str) -> Option<Personal> {
    let key = key.to_ascii_lowercase();
    let is = |word: &str| key == word || key.ends_with(&format!("_{word}"));
    if is("phone") || is("phones") || is("mobile") {
        Some(Personal::Phone)
    } else if is("id_number") || is("id_card") || is("licence_number") || is("license_number") {
        Some(Personal::IdNumber)
    } else if is("name") {
        Some(Personal::Name)
    } else if is("code") || is("sms_code") {
        Some(Personal::Code)
    } else {
        None
    }
}

/// Masks personal data everywhere in `value` (see the module comment).
pub fn mask_personal_data(value: &mut Value) {
    mask_under(value, None);
}

fn mask_under(value: &mut Value, personal: Option<Personal>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                mask_under(inner, personal_key(key));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_under(v, personal)),
        Value::String(text) => {
            *text = match personal {
                Some(kind) => mask_as(kind, text),
                None => mask_text(text),
            }
        }
        Value::Number(n) => {
            if let Some(kind) = personal {
                *value = Value::String(mask_as(kind, &n.to_string()));
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

fn mask_as(kind: Personal, text: &str) -> String {
    match kind {
        Personal::Phone => mask_phone(text),
        Personal::IdNumber => mask_id_number(text),
        Personal::Name => mask_name(text),
        Personal::Code => text.chars().map(|_| '*').collect(),
    }
}

/// Masks, in free text, every run of digits standing on its own (not part of a longer
/// word of letters and digits, such as an id) that looks like a mainland mobile (11 digits
/// from `13`–`19`, also after `86`) or an ID number (18 characters, the last a digit or `X`;
/// or 15 digits).
pub fn mask_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if !(starts_word && chars[i].is_ascii_digit()) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut end = i;
        while end < chars.len() && chars[end].is_ascii_alphanumeric() {
            end += 1;
        }
        let word: String = chars[i..end].iter().collect();
        out.push_str(&mask_word(&word));
        i = end;
    }
    out
}

fn mask_word(word: &str) -> String {
    let digits = word.bytes().all(|b| b.is_ascii_digit());
    let mobile =
        |w: &str| w.len() == 11 && w.starts_with('1') && (b'3'..=b'9').contains(&w.as_bytes()[1]);
    let id18 = word.len() == 18
        && word[..17].bytes().all(|b| b.is_ascii_digit())
        && matches!(word.as_bytes()[17], b'0'..=b'9' | b'X' | b'x');
    if digits
        && (mobile(word) || (word.len() == 13 && word.starts_with("86") && mobile(&word[2..])))
    {
        mask_phone(word)
    } else if id18 || (digits && word.len() == 15) {
        mask_id_number(word)
    } else {
        word.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_sms_payload_shows_no_whole_phone_or_code() {
        let mut payload = json!({
            "message": {"message_id": "filing:0192ab:code:1", "phone": "13812345678",
                "template": "filing_code",
                "params": {"filer_name": "张小三", "code": "123456", "plate_number": "京A12345"}},
            "code": {"filing_id": "0192ab", "code_number": 1}
        });
        mask_personal_data(&mut payload);
        assert_eq!(payload["message"]["phone"], "138****5678");
        assert_eq!(payload["message"]["params"]["code"], "******");
        assert_eq!(payload["message"]["params"]["filer_name"], "张*三");
        assert_eq!(payload["message"]["params"]["plate_number"], "京A12345");
        assert_eq!(payload["message"]["message_id"], "filing:0192ab:code:1");
        assert_eq!(
            payload["code"],
            json!({"filing_id": "0192ab", "code_number": 1})
        );
    }

    #[test]
    fn keys_name_the_data() {
        let mut value = json!({"owner_phone": 13812345678u64, "escalation_phones": ["13900000000"],
            "id_number": "110101199003071234", "driver": {"name": "欧阳小明"}});
        mask_personal_data(&mut value);
        assert_eq!(value["owner_phone"], "138****5678");
        assert_eq!(value["escalation_phones"][0], "139****0000");
        assert_eq!(value["id_number"], "1101**********1234");
        assert_eq!(value["driver"]["name"], "欧**明");
    }

    #[test]
    fn free_text_masks_what_looks_personal_and_nothing_else() {
        assert_eq!(
            mask_text("gateway refused 13812345678 (+8613812345678), id 11010119900307123X"),
            "gateway refused 138****5678 (+861******5678), id 1101**********123X"
        );
        assert_eq!(mask_text("电话13812345678。"), "电话138****5678。");
        for unchanged in [
            "maintenance_prune:1732500000000",
            "0192f3a413812345678abc",
            "timeout after 12345678901 ms",
            "filing:0192ab:code:1",
        ] {
            assert_eq!(mask_text(unchanged), unchanged);
        }
    }
}

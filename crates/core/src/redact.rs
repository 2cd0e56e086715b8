//! Redaction of provider data before it is stored or shown: provider answers may carry
//! passwords, connection strings or tokens (a database's credentials, a deploy hook's secret).

use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

/// Field names whose values are never kept. Compared case-insensitively against the whole
/// name and as a suffix (`db_password`, `x-api-key`).
const SECRET_FIELDS: &[&str] = &[
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "private_key",
    "connection_string",
    "uri",
    "user_data",
];

fn is_secret_field(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_FIELDS.iter().any(|f| {
        lower == *f || lower.ends_with(&format!("_{f}")) || lower.ends_with(&format!("-{f}"))
    })
}

/// Replaces the values of secret-looking fields, at any depth.
pub fn redact_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_field(k) && !v.is_null() {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// Removes every occurrence of each known secret from free text (an error message that
/// echoed a header, say).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_fields_are_redacted_at_any_depth() {
        let mut v = json!({
            "name": "db",
            "connection": {"password": "hunter2", "host": "h", "db_password": "x", "uri": "postgres://u:p@h"},
            "users": [{"name": "doadmin", "password": "p2"}],
            "user_data": "#!/bin/sh\nexport TOKEN=abc",
            "tags": ["token"]
        });
        redact_json(&mut v);
        let text = v.to_string();
        for leaked in ["hunter2", "p2", "postgres://", "TOKEN=abc"] {
            assert!(!text.contains(leaked), "{leaked} leaked: {text}");
        }
        assert_eq!(v["connection"]["host"], "h");
        assert_eq!(v["tags"][0], "token", "values are not field names");
    }

    #[test]
    fn scrub_removes_known_secrets_from_text() {
        assert_eq!(
            scrub("bad token dop_v1_abc given", &["dop_v1_abc"]),
            "bad token [redacted] given"
        );
    }
}

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

/// Runs for every key of every provider answer that is stored, so it allocates nothing.
fn is_secret_field(name: &str) -> bool {
    let name = name.as_bytes();
    SECRET_FIELDS.iter().any(|f| {
        let f = f.as_bytes();
        let Some(cut) = name.len().checked_sub(f.len()) else {
            return false;
        };
        name[cut..].eq_ignore_ascii_case(f) && (cut == 0 || matches!(name[cut - 1], b'_' | b'-'))
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
/// echoed a header, say), in the forms a secret travels in too: base64 (a Basic header),
/// hex and percent-encoded (a query string).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        for form in encoded_forms(s) {
            out = out.replace(&form, REDACTED);
        }
    }
    out
}

/// The forms a secret is found in when it leaks: as it is, base64 (standard and URL-safe, at
/// each of the three alignments it can have inside a longer encoded text), hex (both cases)
/// and percent-encoded (every byte, and only the reserved ones). Tests search for each.
pub fn encoded_forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

    let bytes = secret.as_bytes();
    let mut forms = vec![secret.to_string()];
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for pad in 0..3usize {
            // Encoded after `pad` other bytes, the secret's own characters start at the first
            // whole group of 4 that holds only its bytes and end before the last partial one.
            let mut buf = vec![0u8; pad];
            buf.extend_from_slice(bytes);
            let text = engine.encode(&buf);
            let start = pad.div_ceil(3) * 4;
            let end = ((pad + bytes.len()) / 3) * 4;
            if end > start + 4 {
                forms.push(text[start..end].to_string());
            }
        }
    }
    forms.push(hex::encode(bytes));
    forms.push(hex::encode_upper(bytes));
    forms.push(bytes.iter().map(|b| format!("%{b:02X}")).collect());
    let reserved: String = secret
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.~".contains(c) {
                c.to_string()
            } else {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect();
    forms.push(reserved);
    forms.sort();
    forms.dedup();
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_forms_find_a_secret_inside_longer_encoded_text() {
        use base64::Engine as _;
        let secret = "dop_v1_canary0123456789abcdef";
        let forms = encoded_forms(secret);
        for prefix in ["", "a", "ab", "abc", "Authorization: Basic user:"] {
            let whole = format!("{prefix}{secret}:tail");
            let b64 = base64::engine::general_purpose::STANDARD.encode(&whole);
            assert!(
                forms.iter().any(|f| b64.contains(f.as_str())),
                "base64 after {prefix:?}: {b64}"
            );
            let url = base64::engine::general_purpose::URL_SAFE.encode(&whole);
            assert!(forms.iter().any(|f| url.contains(f.as_str())), "{url}");
        }
        assert!(forms.contains(&hex::encode(secret)));
        let scrubbed = scrub(&format!("x={}&y=1", hex::encode(secret)), &[secret]);
        assert_eq!(scrubbed, format!("x={REDACTED}&y=1"));
        let with_slash = encoded_forms("a/b+c=d");
        assert!(
            with_slash.contains(&"a%2Fb%2Bc%3Dd".to_string()),
            "{with_slash:?}"
        );
    }
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
    fn secret_names_match_whole_or_as_a_separated_suffix_in_any_case() {
        for name in [
            "password",
            "DB_PASSWORD",
            "X-Api-Key",
            "uri",
            "private_key",
            "Token",
        ] {
            assert!(is_secret_field(name), "{name} should be secret");
        }
        for name in [
            "tokens",
            "uris",
            "secretary",
            "passwordless",
            "tokenless",
            "ur",
            "id",
            "",
        ] {
            assert!(!is_secret_field(name), "{name} should be kept");
        }
        // A suffix counts only after a separator: "unsecret" is a word, not a secret.
        assert!(!is_secret_field("unsecret"));
        assert!(is_secret_field("client-secret"));
    }

    #[test]
    fn scrub_removes_known_secrets_from_text() {
        assert_eq!(
            scrub("bad token dop_v1_abc given", &["dop_v1_abc"]),
            "bad token [redacted] given"
        );
    }
}

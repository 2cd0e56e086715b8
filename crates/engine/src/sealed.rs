//! Sensitive config at rest: the fields an adapter's config type marks `x-sensitive` (a
//! droplet's cloud-init `user_data`, say) are sealed under the keyring when a request is
//! recorded, kept in the operation's input as `{"$sealed": "<sealed value>"}`, and opened in
//! memory only when a run hands the config to the adapter.
//!
//! Each value is sealed for its resource and field (the AEAD's associated data), so a sealed
//! value copied onto another resource or field does not open. A value that cannot be opened
//! stops the run with an error naming the field: the adapter never sees an empty or wrong one.

use serde_json::{Map, Value};
use stackdock_core::crypto::CryptoError;
use stackdock_core::{Keyring, ResourceId, SealedSecret, SecretString};

use crate::EngineError;

/// The key of the one-field object a sealed value is stored as.
pub const SEALED_KEY: &str = "$sealed";

/// Beside [`SEALED_KEY`] when the value sealed was not a string but JSON (sealed as its text).
const JSON_KEY: &str = "$json";

/// What a sealed value reads as wherever it is shown.
pub const SEALED_SHOWN: &str = "[sealed]";

fn context(resource: ResourceId, field: &str) -> String {
    format!("{resource}/config/{field}")
}

/// Seals the `sensitive` fields of `config` that hold a value, in place.
pub(crate) fn seal(
    keyring: &Keyring,
    resource: ResourceId,
    sensitive: &[String],
    config: &mut Map<String, Value>,
) {
    for field in sensitive {
        let Some(value) = config.get_mut(field) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        // Strings are sealed as they are; anything else as its JSON text, and said so.
        let (text, json) = match value.take() {
            Value::String(s) => (s, false),
            other => (other.to_string(), true),
        };
        let sealed = keyring.seal(&SecretString::new(text), &context(resource, field));
        let mut m = Map::new();
        m.insert(SEALED_KEY.into(), Value::String(sealed.as_str().into()));
        if json {
            m.insert(JSON_KEY.into(), Value::Bool(true));
        }
        *value = Value::Object(m);
    }
}

/// The sealed text of `value` if it is a sealed value, and whether it holds JSON text.
fn as_sealed(value: &Value) -> Option<(&str, bool)> {
    let Value::Object(m) = value else {
        return None;
    };
    let json = m.get(JSON_KEY) == Some(&Value::Bool(true));
    if m.len() != 1 + usize::from(json) {
        return None;
    }
    Some((m.get(SEALED_KEY)?.as_str()?, json))
}

/// Opens every sealed field of `config` in place.
pub(crate) fn open(
    keyring: &Keyring,
    resource: ResourceId,
    config: &mut Map<String, Value>,
) -> Result<(), EngineError> {
    for (field, value) in config.iter_mut() {
        let Some((text, json)) = as_sealed(value) else {
            continue;
        };
        let failed = |source: CryptoError| EngineError::SealedConfig {
            field: field.clone(),
            source,
        };
        let sealed = SealedSecret::parse(text).map_err(failed)?;
        let opened = keyring
            .open(&sealed, &context(resource, field))
            .map_err(failed)?;
        *value = if json {
            serde_json::from_str(opened.expose()).map_err(|_| failed(CryptoError::Malformed))?
        } else {
            Value::String(opened.expose().to_string())
        };
    }
    Ok(())
}

/// The plaintext of every field of `opened` that was sealed in `stored` (each string within
/// it, for a field sealed as JSON): what a run keeps out of its deploy log.
pub(crate) fn opened_secrets(stored: &Value, opened: &Map<String, Value>) -> Vec<SecretString> {
    fn strings(v: &Value, out: &mut Vec<SecretString>) {
        match v {
            Value::String(s) => out.push(SecretString::new(s.clone())),
            Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
            Value::Object(m) => m.values().for_each(|i| strings(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (field, _) in sealed_fields(stored) {
        if let Some(v) = opened.get(&field) {
            strings(v, &mut out);
        }
    }
    out
}

/// `value` with every sealed value and every sealed secret string replaced by
/// [`SEALED_SHOWN`], at any depth: what a view may show of stored input or step output.
pub fn shown(value: &Value) -> Value {
    match value {
        v if as_sealed(v).is_some() => Value::String(SEALED_SHOWN.into()),
        Value::String(s) if SealedSecret::parse(s).is_ok() => Value::String(SEALED_SHOWN.into()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shown(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(shown).collect()),
        other => other.clone(),
    }
}

/// Every sealed value in `config`, with the field it is in.
pub(crate) fn sealed_fields(config: &Value) -> Vec<(String, SealedSecret)> {
    let Some(m) = config.as_object() else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(field, v)| {
            let (text, _) = as_sealed(v)?;
            Some((field.clone(), SealedSecret::parse(text).ok()?))
        })
        .collect()
}

/// `config` with every value sealed under another key than the current one sealed again under
/// the current one; `None` when there is none.
pub(crate) fn reseal_config(
    keyring: &Keyring,
    resource: ResourceId,
    config: &Value,
) -> Result<Option<Value>, EngineError> {
    let current = keyring.current_id();
    let stale: Vec<(String, SealedSecret)> = sealed_fields(config)
        .into_iter()
        .filter(|(_, s)| s.key_id() != current.as_str())
        .collect();
    if stale.is_empty() {
        return Ok(None);
    }
    let mut out = config.clone();
    for (field, sealed) in stale {
        let failed = |source: CryptoError| EngineError::SealedConfig {
            field: field.clone(),
            source,
        };
        let context = context(resource, &field);
        let opened = keyring.open(&sealed, &context).map_err(failed)?;
        let again = keyring.seal(&opened, &context);
        if let Some(slot) = out[&field].get_mut(SEALED_KEY) {
            *slot = Value::String(again.as_str().into());
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use stackdock_core::MasterKey;

    use super::*;

    fn config(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn sensitive_fields_are_sealed_and_open_back_to_what_was_given() {
        let keyring = Keyring::new(MasterKey::generate());
        let rid = ResourceId::new();
        let given = config(json!({
            "name": "web-1",
            "user_data": "#!/bin/sh\necho canary-5f2e",
            "env": {"TOKEN": "t0k"},
            "looks_like_json": "{\"a\": 1}",
            "unset": null
        }));
        let mut c = given.clone();
        let sensitive = [
            "user_data".to_string(),
            "env".into(),
            "looks_like_json".into(),
            "unset".into(),
            "absent".into(),
        ];
        seal(&keyring, rid, &sensitive, &mut c);

        let text = Value::Object(c.clone()).to_string();
        assert!(
            !text.contains("canary-5f2e") && !text.contains("t0k"),
            "{text}"
        );
        assert_eq!(c["name"], "web-1", "fields not marked stay as they are");
        assert_eq!(c["unset"], Value::Null, "nothing to seal in a null");
        assert!(as_sealed(&c["user_data"]).is_some() && as_sealed(&c["env"]).is_some());
        assert_eq!(shown(&c["user_data"]), json!(SEALED_SHOWN));

        let stored = Value::Object(c.clone());
        open(&keyring, rid, &mut c).expect("opens");
        assert_eq!(c, given);

        let mut secrets: Vec<String> = opened_secrets(&stored, &c)
            .iter()
            .map(|s| s.expose().to_string())
            .collect();
        secrets.sort();
        assert_eq!(
            secrets,
            ["#!/bin/sh\necho canary-5f2e", "t0k", "{\"a\": 1}"],
            "the opened values of the sealed fields, each string of a JSON one"
        );
    }

    #[test]
    fn a_value_sealed_for_another_resource_or_field_does_not_open() {
        let keyring = Keyring::new(MasterKey::generate());
        let rid = ResourceId::new();
        let mut c = config(json!({"user_data": "secret"}));
        seal(&keyring, rid, &["user_data".into()], &mut c);

        let mut elsewhere = c.clone();
        let err = open(&keyring, ResourceId::new(), &mut elsewhere).expect_err("other resource");
        assert!(err.to_string().contains("user_data"), "{err}");

        let mut moved = config(json!({"other": c["user_data"].clone()}));
        assert!(open(&keyring, rid, &mut moved).is_err(), "other field");

        let stranger = Keyring::new(MasterKey::generate());
        assert!(
            open(&stranger, rid, &mut c.clone()).is_err(),
            "other master key"
        );
    }

    #[test]
    fn shown_hides_sealed_values_at_any_depth_and_keeps_the_rest() {
        let v = json!({
            "found": 2,
            "token": "v1:k1:bm9uY2U:Y3Q",
            "nested": [{"$sealed": "v1:k1:bm9uY2U:Y3Q"}, "plain"]
        });
        assert_eq!(
            shown(&v),
            json!({"found": 2, "token": SEALED_SHOWN, "nested": [SEALED_SHOWN, "plain"]})
        );
    }
}

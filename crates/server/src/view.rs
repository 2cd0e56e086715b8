//! The JSON shapes of the API. Field names are snake_case and match the domain's.

use serde::Serialize;
use serde_json::Value;
use stackdock_core::{Dock, Operation, Resource, Timestamp};

/// A dock as shown: never the key, sealed or not; `key_id` names the master key that seals it.
#[derive(Serialize)]
pub struct DockView {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub api_url: Option<String>,
    pub key_id: String,
    /// The rate limit calls on this dock keep to: the owner's, or the provider's documented.
    pub rate_limit: String,
    /// The provider's own dock settings (a Turso organization); never secret.
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub created_at: Timestamp,
}

impl From<&Dock> for DockView {
    fn from(d: &Dock) -> Self {
        Self {
            id: d.id.to_string(),
            name: d.name.to_string(),
            provider: d.provider.to_string(),
            api_url: d.api_base_url.clone(),
            key_id: d.sealed_api_key.key_id().to_string(),
            rate_limit: stackdock_engine::rate_limit_of(d).to_string(),
            settings: d
                .settings
                .as_object()
                .map(|s| {
                    s.iter()
                        .filter(|(k, _)| k.as_str() != "rate_limit")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            created_at: d.created_at,
        }
    }
}

/// A resource, with the operation just queued for it when there is one.
pub fn resource(r: &Resource, operation: Option<&Operation>) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let (Some(obj), Some(op)) = (v.as_object_mut(), operation) {
        obj.insert("operation_id".into(), Value::String(op.id.to_string()));
    }
    v
}

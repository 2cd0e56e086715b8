//! Typed config: what an adapter accepts for a resource kind, as one Rust type per kind.
//!
//! The type is the single source of truth. Requests are checked by deserializing into it
//! (`deny_unknown_fields`, newtypes that parse once), so a bad field is an error naming the
//! field before anything is recorded; the schema users and forms see is derived from the same
//! type ([`ConfigSchema::of`]); fields that may carry secrets are marked in the type with
//! `#[schemars(extend("x-sensitive" = true))]` and listed by [`ConfigSchema::sensitive`].
//! There is never a second, hand-kept copy of the rules.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The JSON Schema keyword that marks a field whose value may be a secret.
pub const SENSITIVE: &str = "x-sensitive";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses a request's config into the adapter's type for its kind. The error names the field
/// (`tags[1]`, `region`), or the missing one.
pub fn parse<T: DeserializeOwned>(config: &Map<String, Value>) -> Result<T, ConfigError> {
    let value = Value::Object(config.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // serde reports a missing or unknown field at the object itself (`.`); the field's name
        // is in the message, between backticks.
        let named = |prefix: &str| {
            message
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
                .map(str::to_string)
        };
        let field = if path == "." {
            named("missing field `")
                .or_else(|| named("unknown field `"))
                .unwrap_or_else(|| "config".into())
        } else {
            path
        };
        ConfigError::new(field, message)
    })
}

/// The config an adapter accepts for one kind: its JSON Schema and how to check a request.
/// Cheap to clone: an adapter builds it once and hands out copies.
#[derive(Clone)]
pub struct ConfigSchema {
    schema: std::sync::Arc<Value>,
    sensitive: std::sync::Arc<[String]>,
    check: fn(&Map<String, Value>) -> Result<(), ConfigError>,
}

impl fmt::Debug for ConfigSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSchema")
            .field("schema", &self.schema)
            .field("sensitive", &self.sensitive)
            .finish_non_exhaustive()
    }
}

impl ConfigSchema {
    /// The schema of `T`, derived from the type itself.
    pub fn of<T: JsonSchema + DeserializeOwned>() -> Self {
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value();
        let sensitive: Vec<String> = schema["properties"]
            .as_object()
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, p)| p[SENSITIVE] == Value::Bool(true))
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            schema: std::sync::Arc::new(schema),
            sensitive: sensitive.into(),
            check: |config| parse::<T>(config).map(drop),
        }
    }

    /// The JSON Schema (draft 2020-12) users and forms see.
    pub fn json(&self) -> &Value {
        &self.schema
    }

    /// Top-level fields whose values may be secrets.
    pub fn sensitive(&self) -> &[String] {
        &self.sensitive
    }

    /// Checks a request's config; the first problem found is named.
    pub fn validate(&self, config: &Map<String, Value>) -> Result<(), ConfigError> {
        (self.check)(config)
    }
}

/// Declares a string newtype that parses once, serializes as its text, and shows in schemas as
/// a string with `$description`.
macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $description:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(&s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({"type": "string", "minLength": 1, "description": $description})
            }
        }
    };
}

fn non_empty(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(())
    }
}

text_newtype!(
    /// A hostname: dot-separated labels of letters, digits and inner dashes.
    Hostname,
    "A hostname: letters, digits, dots and inner dashes",
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a valid hostname (letters, digits, dots and inner dashes)"
            ))
        }
    }
);

text_newtype!(
    /// A provider slug: lowercase letters, digits and dashes (`nyc3`, `s-1vcpu-1gb`).
    Slug,
    "A slug: lowercase letters, digits and dashes",
    |s| {
        non_empty(s)?;
        if s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a slug (lowercase letters, digits, dashes)"
            ))
        }
    }
);

text_newtype!(
    /// A fully qualified domain name with at least two labels (`example.com`).
    DomainName,
    "A domain name such as example.com",
    |s| {
        Hostname::try_from(s.to_string())?;
        if s.contains('.') {
            Ok(())
        } else {
            Err(format!("{s:?} is not a domain name (it needs a dot)"))
        }
    }
);

text_newtype!(
    /// A DNS record's name relative to its domain: `@` for the apex, or dot-separated labels
    /// of letters, digits, dashes and underscores (`www`, `_dmarc`, `_sip._tcp`), the first
    /// of which may be the wildcard `*`.
    RecordName,
    "A record name: @ for the apex, or labels such as www, _dmarc, *.app",
    |s| {
        let ok = s == "@"
            || (s.len() <= 253
                && s.split('.').enumerate().all(|(i, label)| {
                    !label.is_empty()
                        && label.len() <= 63
                        && ((i == 0 && label == "*")
                            || label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
                }));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a record name (@, or labels of letters, digits, dashes and underscores)"
            ))
        }
    }
);

text_newtype!(
    /// Any non-empty text.
    Text,
    "Non-empty text",
    non_empty
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A made-up config exercising each rule.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        name: Hostname,
        region: Slug,
        #[serde(default)]
        ipv6: Option<bool>,
        #[serde(default)]
        tags: Vec<Text>,
        #[schemars(extend("x-sensitive" = true))]
        #[serde(default)]
        secret: Option<String>,
    }

    fn check(v: Value) -> Result<(), ConfigError> {
        ConfigSchema::of::<Demo>().validate(v.as_object().unwrap())
    }

    #[test]
    fn accepts_valid_config() {
        assert_eq!(
            check(json!({"name": "a", "region": "nyc3", "ipv6": true, "tags": ["x"]})),
            Ok(())
        );
    }

    #[test]
    fn names_the_problem_field() {
        assert_eq!(check(json!({"region": "nyc3"})).unwrap_err().field, "name");
        let e = check(json!({"name": 3, "region": "nyc3"})).unwrap_err();
        assert_eq!(e.field, "name");
        let e = check(json!({"name": "a b", "region": "nyc3"})).unwrap_err();
        assert!(e.message.contains("not a valid hostname"), "{e}");
        assert_eq!(
            check(json!({"name": "a", "region": "NYC"}))
                .unwrap_err()
                .field,
            "region"
        );
        assert_eq!(
            check(json!({"name": "a", "region": "x", "ipv6": "yes"}))
                .unwrap_err()
                .field,
            "ipv6"
        );
        assert_eq!(
            check(json!({"name": "a", "region": "x", "tags": ["ok", ""]}))
                .unwrap_err()
                .field,
            "tags[1]"
        );
        let unknown = check(json!({"name": "a", "region": "x", "colour": "red"})).unwrap_err();
        assert_eq!(unknown.field, "colour");
        assert!(unknown.message.contains("name"), "{unknown}");
    }

    #[test]
    fn the_schema_comes_from_the_type_and_marks_secrets() {
        let schema = ConfigSchema::of::<Demo>();
        let json = schema.json();
        assert_eq!(json["additionalProperties"], json!(false));
        assert_eq!(json["properties"]["region"]["type"], "string");
        let required: Vec<&str> = json["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(required, ["name", "region"]);
        assert_eq!(schema.sensitive(), ["secret"]);
    }

    #[test]
    fn newtypes_parse_once() {
        assert!(DomainName::try_from("example.com".to_string()).is_ok());
        assert!(DomainName::try_from("localhost".to_string()).is_err());
        for bad in ["web_1", "-web", "web-", "a..b", "sp ace", ""] {
            assert!(Hostname::try_from(bad.to_string()).is_err(), "{bad:?}");
        }
        for good in ["@", "www", "_dmarc", "_sip._tcp", "*.app", "a-b.c"] {
            assert!(RecordName::try_from(good.to_string()).is_ok(), "{good:?}");
        }
        for bad in ["", "a..b", "www.", "a*", "x.*", "sp ace", "@.x"] {
            assert!(RecordName::try_from(bad.to_string()).is_err(), "{bad:?}");
        }
    }
}

//! The config an adapter accepts for a resource kind, as data. The server validates every
//! request against it before anything is recorded, so a bad field is a 422 naming the field,
//! never a half-made resource.

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Boolean,
    Integer,
    StringList,
}

/// An extra check of a string value, returning why it is wrong.
pub type ValueCheck = fn(&str) -> Result<(), String>;

#[derive(Clone, Debug, Serialize)]
pub struct Field {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub ty: FieldType,
    pub required: bool,
    pub description: &'static str,
    #[serde(skip)]
    pub check: Option<ValueCheck>,
}

impl Field {
    pub const fn required(name: &'static str, ty: FieldType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            required: true,
            description,
            check: None,
        }
    }

    pub const fn optional(name: &'static str, ty: FieldType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            required: false,
            description,
            check: None,
        }
    }

    pub const fn with_check(mut self, check: ValueCheck) -> Self {
        self.check = Some(check);
        self
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ConfigSchema {
    pub fields: Vec<Field>,
}

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

impl ConfigSchema {
    /// Checks `config` field by field; the first problem found is named.
    pub fn validate(&self, config: &Map<String, Value>) -> Result<(), ConfigError> {
        for key in config.keys() {
            if !self.fields.iter().any(|f| f.name == key) {
                let known: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
                return Err(ConfigError::new(
                    key,
                    format!("unknown field; expected one of: {}", known.join(", ")),
                ));
            }
        }
        for field in &self.fields {
            match config.get(field.name) {
                None | Some(Value::Null) if field.required => {
                    return Err(ConfigError::new(field.name, "is required"));
                }
                None | Some(Value::Null) => {}
                Some(v) => field_value_ok(field, v)?,
            }
        }
        Ok(())
    }
}

fn field_value_ok(field: &Field, v: &Value) -> Result<(), ConfigError> {
    let wrong = |what: &str| ConfigError::new(field.name, format!("must be {what}"));
    match field.ty {
        FieldType::String => {
            let s = v.as_str().ok_or_else(|| wrong("a string"))?;
            if s.trim().is_empty() {
                return Err(wrong("a non-empty string"));
            }
            if let Some(check) = field.check {
                check(s).map_err(|m| ConfigError::new(field.name, m))?;
            }
        }
        FieldType::Boolean => {
            v.as_bool().ok_or_else(|| wrong("true or false"))?;
        }
        FieldType::Integer => {
            v.as_i64().ok_or_else(|| wrong("an integer"))?;
        }
        FieldType::StringList => {
            let items = v.as_array().ok_or_else(|| wrong("a list of strings"))?;
            for item in items {
                let s = item.as_str().ok_or_else(|| wrong("a list of strings"))?;
                if let Some(check) = field.check {
                    check(s).map_err(|m| ConfigError::new(field.name, m))?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> ConfigSchema {
        ConfigSchema {
            fields: vec![
                Field::required("name", FieldType::String, "").with_check(|s| {
                    if s.contains(' ') {
                        Err("must not contain spaces".into())
                    } else {
                        Ok(())
                    }
                }),
                Field::optional("ipv6", FieldType::Boolean, ""),
                Field::optional("tags", FieldType::StringList, ""),
            ],
        }
    }

    fn check(v: Value) -> Result<(), ConfigError> {
        schema().validate(v.as_object().unwrap())
    }

    #[test]
    fn accepts_valid_config() {
        assert_eq!(
            check(json!({"name": "a", "ipv6": true, "tags": ["x"]})),
            Ok(())
        );
    }

    #[test]
    fn names_the_problem_field() {
        assert_eq!(check(json!({})).unwrap_err().field, "name");
        assert_eq!(
            check(json!({"name": 3})).unwrap_err().message,
            "must be a string"
        );
        assert_eq!(
            check(json!({"name": "a b"})).unwrap_err().message,
            "must not contain spaces"
        );
        assert_eq!(
            check(json!({"name": "a", "ipv6": "yes"}))
                .unwrap_err()
                .field,
            "ipv6"
        );
        assert_eq!(
            check(json!({"name": "a", "tags": [1]})).unwrap_err().field,
            "tags"
        );
        let unknown = check(json!({"name": "a", "colour": "red"})).unwrap_err();
        assert_eq!(unknown.field, "colour");
        assert!(unknown.message.contains("name, ipv6, tags"));
    }
}

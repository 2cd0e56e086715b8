//! A provision form made from an adapter's config schema (JSON Schema, derived from the
//! config type), and the form's answers made back into the config that schema describes.
//!
//! Each top-level property is one field: a string an input, an enum a select, an integer a
//! number input, a boolean a checkbox, an array of strings a text area with one value a line,
//! anything else a text area of JSON. A sensitive field (`x-sensitive`) is never filled back
//! in. The form only shapes the input; the config type checks it, and its errors come back
//! next to the field they name.

use serde_json::{Map, Value};

use super::templates::Choice;

/// The prefix of a config field's form input, so no field can take the name of the form's
/// own inputs (`csrf`, `dock`, `collection`).
const PREFIX: &str = "f.";

/// How a field is entered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Text,
    Number,
    Checkbox,
    Select,
    Lines,
    Json,
    Secret,
}

pub(crate) struct Field {
    /// The config's name for it.
    pub(crate) name: String,
    /// The form input's name.
    pub(crate) input: String,
    pub(crate) help: String,
    pub(crate) control: Control,
    pub(crate) required: bool,
    pub(crate) value: String,
    pub(crate) checked: bool,
    pub(crate) options: Vec<Choice>,
    pub(crate) error: Option<String>,
    /// Whether the field takes the focus when the page opens: the first field in error.
    pub(crate) autofocus: bool,
}

/// Puts the focus on the first field in error, so a keyboard or screen reader user lands on it.
pub(crate) fn focus_first_error(fields: &mut [Field]) {
    if let Some(f) = fields.iter_mut().find(|f| f.error.is_some()) {
        f.autofocus = true;
    }
}

impl Field {
    /// The control's name, for the template to branch on.
    pub(crate) fn kind(&self) -> &'static str {
        match self.control {
            Control::Text => "text",
            Control::Number => "number",
            Control::Checkbox => "checkbox",
            Control::Select => "select",
            Control::Lines => "lines",
            Control::Json => "json",
            Control::Secret => "secret",
        }
    }

    /// The id of the element that holds the field's error, for `aria-describedby`.
    pub(crate) fn error_id(&self) -> String {
        format!("{}-error", self.input)
    }
}

/// The fields of a config schema, the required ones first, with their defaults filled in.
pub(crate) fn fields(schema: &Value, sensitive: &[String]) -> Vec<Field> {
    let mut all = each_field(schema, sensitive);
    // Stable: within each group the schema's order stays.
    all.sort_by_key(|f| !f.required);
    all
}

fn each_field(schema: &Value, sensitive: &[String]) -> Vec<Field> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, raw)| {
            let p = resolve(schema, raw);
            let is_required = required.contains(&name.as_str());
            let help = raw["description"]
                .as_str()
                .or_else(|| p["description"].as_str())
                .unwrap_or_default()
                .to_string();
            let choices = enum_values(&p);
            let control = if sensitive.iter().any(|s| s == name) {
                Control::Secret
            } else if !choices.is_empty() {
                Control::Select
            } else {
                match type_of(&p) {
                    Some("boolean") => Control::Checkbox,
                    Some("integer") | Some("number") => Control::Number,
                    Some("string") => Control::Text,
                    Some("array") if type_of(&resolve(schema, &p["items"])) == Some("string") => {
                        Control::Lines
                    }
                    _ => Control::Json,
                }
            };
            let default = raw.get("default").or_else(|| p.get("default"));
            let mut field = Field {
                name: name.clone(),
                input: format!("{PREFIX}{name}"),
                help,
                control,
                required: is_required,
                value: String::new(),
                checked: false,
                options: Vec::new(),
                error: None,
                autofocus: false,
            };
            if let Some(d) = default.filter(|d| !d.is_null()) {
                field.fill(d);
            }
            if control == Control::Select {
                let mut options: Vec<(String, String)> = Vec::new();
                if !is_required {
                    options.push((String::new(), "(not set)".into()));
                }
                options.extend(choices.into_iter().map(|c| (c.clone(), c)));
                field.options = Choice::list(options, Some(field.value.as_str()));
            }
            field
        })
        .collect()
}

impl Field {
    /// Shows `v` as the field's value (never for a secret).
    fn fill(&mut self, v: &Value) {
        match (self.control, v) {
            (Control::Secret, _) => {}
            (Control::Checkbox, Value::Bool(b)) => self.checked = *b,
            (Control::Lines, Value::Array(items)) => {
                self.value = items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            (Control::Json, v) => self.value = v.to_string(),
            (_, Value::String(s)) => self.value = s.clone(),
            (_, v) => self.value = v.to_string(),
        }
    }
}

/// A property's schema with a local `$ref` followed and an `Option`'s `null` branch dropped.
fn resolve(root: &Value, p: &Value) -> Value {
    if let Some(r) = p["$ref"].as_str()
        && let Some(name) = r.strip_prefix("#/$defs/")
    {
        return resolve(root, &root["$defs"][name]);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = p[key].as_array() {
            let real: Vec<&Value> = branches
                .iter()
                .filter(|b| b["type"].as_str() != Some("null"))
                .collect();
            if let [one] = real.as_slice() {
                return resolve(root, one);
            }
        }
    }
    p.clone()
}

/// The type a property takes besides `null`.
fn type_of(p: &Value) -> Option<&str> {
    match &p["type"] {
        Value::String(t) => Some(t.as_str()),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn enum_values(p: &Value) -> Vec<String> {
    p["enum"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The config the form's answers make, or the fields whose answers could not be read. What a
/// field's answers are shown back as is kept in `fields` (never a secret's).
pub(crate) fn config(
    fields: &mut [Field],
    answers: &[(String, String)],
) -> Result<Map<String, Value>, ()> {
    let answer = |input: &str| {
        answers
            .iter()
            .find(|(k, _)| k == input)
            .map(|(_, v)| v.as_str())
    };
    let mut config = Map::new();
    let mut failed = false;
    for f in fields.iter_mut() {
        let raw = answer(&f.input);
        if f.control == Control::Checkbox {
            f.checked = raw.is_some();
            if f.checked || f.required {
                config.insert(f.name.clone(), Value::Bool(f.checked));
            }
            continue;
        }
        let text = raw.unwrap_or_default();
        if f.control != Control::Secret {
            f.value = text.to_string();
            for o in &mut f.options {
                o.selected = o.value == text;
            }
        }
        if text.trim().is_empty() {
            continue;
        }
        let value = match f.control {
            Control::Number => match text.trim().parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => match text.trim().parse::<f64>() {
                    Ok(x) => Value::from(x),
                    Err(_) => {
                        f.error = Some("must be a number".into());
                        failed = true;
                        continue;
                    }
                },
            },
            Control::Lines => Value::Array(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::String(l.to_string()))
                    .collect(),
            ),
            Control::Json => match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => {
                    f.error = Some(format!("is not valid JSON: {e}"));
                    failed = true;
                    continue;
                }
            },
            Control::Text | Control::Select | Control::Secret => Value::String(text.to_string()),
            Control::Checkbox => continue,
        };
        config.insert(f.name.clone(), value);
    }
    if failed { Err(()) } else { Ok(config) }
}

/// Puts an error the config's check named (`tags[1]`, `name`) next to its field; answers
/// whether a field took it.
pub(crate) fn place_error(fields: &mut [Field], field: &str, message: &str) -> bool {
    let top = field.split(['[', '.']).next().unwrap_or(field);
    match fields.iter_mut().find(|f| f.name == top) {
        Some(f) => {
            let detail = if field == top {
                message.to_string()
            } else {
                format!("{field}: {message}")
            };
            f.error = Some(detail);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["name", "size"],
            "properties": {
                "name": {"$ref": "#/$defs/Hostname", "description": "Droplet hostname."},
                "size": {"type": "string", "enum": ["small", "large"]},
                "count": {"type": ["integer", "null"], "default": 1},
                "ipv6": {"type": ["boolean", "null"]},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/Text"}},
                "user_data": {"type": ["string", "null"], "x-sensitive": true},
                "env": {"anyOf": [{"type": "object"}, {"type": "null"}]}
            },
            "$defs": {
                "Hostname": {"type": "string", "pattern": "^[a-z]+$"},
                "Text": {"type": "string"}
            }
        })
    }

    #[test]
    fn each_property_gets_the_control_its_type_asks_for() {
        let fs = fields(&schema(), &["user_data".into()]);
        let kinds: Vec<(&str, &str, bool)> = fs
            .iter()
            .map(|f| (f.name.as_str(), f.kind(), f.required))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("name", "text", true),
                ("size", "select", true),
                ("count", "number", false),
                ("env", "json", false),
                ("ipv6", "checkbox", false),
                ("tags", "lines", false),
                ("user_data", "secret", false),
            ]
        );
        assert_eq!(fs[0].help, "Droplet hostname.");
        assert_eq!(fs[2].value, "1", "the default is filled in");
        assert_eq!(
            fs[1].options.len(),
            2,
            "a required select has no empty choice"
        );
    }

    #[test]
    fn answers_become_typed_config_and_bad_ones_stay_at_their_field() {
        let mut fs = fields(&schema(), &["user_data".into()]);
        let answers: Vec<(String, String)> = [
            ("f.name", "web"),
            ("f.size", "large"),
            ("f.count", "3"),
            ("f.ipv6", "on"),
            ("f.tags", "a\n\n b \n"),
            ("f.user_data", "secret-stuff"),
            ("f.env", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = config(&mut fs, &answers).expect("config");
        assert_eq!(
            Value::Object(config),
            json!({"name": "web", "size": "large", "count": 3, "ipv6": true,
                   "tags": ["a", "b"], "user_data": "secret-stuff"})
        );
        assert!(fs[6].value.is_empty(), "a secret is never shown back");
        assert!(
            fs[1]
                .options
                .iter()
                .any(|o| o.selected && o.value == "large")
        );

        let mut fs = fields(&schema(), &[]);
        let bad = vec![("f.count".to_string(), "three".to_string())];
        assert!(super::config(&mut fs, &bad).is_err());
        assert_eq!(fs[2].error.as_deref(), Some("must be a number"));
        assert_eq!(fs[2].value, "three", "what was typed is shown back");

        assert!(place_error(&mut fs, "tags[1]", "too long"));
        assert_eq!(fs[5].error.as_deref(), Some("tags[1]: too long"));
        assert!(!place_error(&mut fs, "config", "something"));
    }

    #[test]
    fn every_builtin_adapter_schema_makes_a_form_with_each_required_field() {
        let registry = stackdock_docks::Registry::builtin();
        let mut forms = 0;
        for provider in registry.providers() {
            let adapter = registry.get(provider).expect("adapter");
            for kind in stackdock_core::ResourceKind::ALL {
                let Some(schema) = adapter.config_schema(kind) else {
                    continue;
                };
                let fs = fields(schema.json(), schema.sensitive());
                let required = schema.json()["required"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for name in required.iter().filter_map(Value::as_str) {
                    let f = fs.iter().find(|f| f.name == name);
                    assert!(f.is_some_and(|f| f.required), "{provider} {kind}: {name}");
                }
                for s in schema.sensitive() {
                    let f = fs.iter().find(|f| &f.name == s);
                    assert!(
                        f.is_none_or(|f| f.control == Control::Secret),
                        "{provider} {kind}: {s} is sensitive"
                    );
                }
                assert!(!fs.is_empty(), "{provider} {kind}");
                forms += 1;
            }
        }
        assert!(forms >= 10, "only {forms} forms");
    }
}

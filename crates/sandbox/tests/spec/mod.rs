//! A provider's published OpenAPI 3.0 or Swagger 2.0 document, loaded at test time, and the
//! checks the contract tests make with it: that a request a client sent matches one of the
//! document's operations and validates against its request schema, and that an answer
//! validates against the response schema documented for its status. Validation is done by the
//! `jsonschema` crate; this module only turns the documents' dialects of JSON Schema into one
//! it reads, and reads both shapes of operation: OpenAPI 3's `requestBody` and
//! `content/application/json/schema` (or `multipart/form-data`, whose text fields the sandbox
//! logs as a JSON object), Swagger 2's `in: body` parameter, query parameters typed
//! on the parameter itself, response `schema`, `basePath`, and `$ref`s into `#/definitions`,
//! `#/parameters` and `#/responses`.
//!
//! Shared by every provider's `contract_<provider>.rs` (`mod spec;`). A provider names what
//! its document gets wrong in one list of [`Tolerance`]s, each with its reason.

// Each contract test binary uses a part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use stackdock_sandbox::RecordedRequest;

/// Where the provider specs are: `$STACKDOCK_SPECS_DIR`, else `provider-specs` beside the
/// repository clone.
pub fn specs_dir() -> PathBuf {
    std::env::var_os("STACKDOCK_SPECS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/provider-specs")
        })
}

/// A status the document does not list for an operation although the provider answers it,
/// with the reason. Such an answer is checked against `body` instead (the provider's error
/// envelope), so even a tolerated answer must have the provider's shape.
pub struct Tolerance {
    pub status: u16,
    pub body: Value,
    pub reason: &'static str,
}

/// One operation of the document.
pub struct Operation<'a> {
    pub method: String,
    /// The path as the document writes it, e.g. `/v1/organizations/{organizationSlug}`.
    pub template: &'a str,
    pub id: String,
    doc: &'a Value,
    /// The path item, whose `parameters` apply to each of its operations.
    item: &'a Value,
}

/// A path parameter the document types as one segment although the provider's clients send
/// `/` inside it (a file's path), with the reason: requests to `template` match with the
/// parameter taking the rest of the path.
pub struct GreedyTail {
    pub template: &'static str,
    pub reason: &'static str,
}

/// The body every error answer has where the document lists an error status with no body at
/// all (Vercel's), with the reason: such an answer is checked against `body`.
pub struct BodylessErrors {
    pub body: Value,
    pub reason: &'static str,
}

/// A correction a provider's document needs before its schemas can be used at all (a type
/// JSON Schema does not have, say), applied once at load, with the reason.
pub struct Fix {
    pub reason: &'static str,
    pub apply: fn(&mut Value),
}

pub struct Spec {
    name: String,
    /// The document with OpenAPI's schema dialect turned into plain JSON Schema.
    doc: Value,
    tolerances: Vec<Tolerance>,
    /// Swagger 2's `basePath`, stripped from a request's path before it is matched.
    base_path: String,
    greedy: Vec<GreedyTail>,
    fixes: Vec<&'static str>,
    bodyless_errors: Option<BodylessErrors>,
}

/// How many requests and answers were checked, for the test's report.
#[derive(Default)]
pub struct Tally {
    pub requests: usize,
    pub responses: usize,
    pub tolerated: usize,
    pub operations: std::collections::BTreeSet<String>,
}

impl Spec {
    /// Loads `file` (relative to [`specs_dir`]); JSON, or YAML by its extension.
    pub fn load(name: &str, file: &str, tolerances: Vec<Tolerance>) -> Self {
        Self::load_fixed(name, file, tolerances, Vec::new())
    }

    /// [`Spec::load`], correcting the document with `fixes` first.
    pub fn load_fixed(name: &str, file: &str, tolerances: Vec<Tolerance>, fixes: Vec<Fix>) -> Self {
        let path = specs_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the {name} spec at {} ({e}). The contract tests need the provider \
                 specs: set STACKDOCK_SPECS_DIR to the provider-specs directory, or place it \
                 beside the repository clone.",
                path.display()
            )
        });
        let mut doc: Value = if file.ends_with(".json") {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
        } else {
            serde_yaml::from_str::<SpecValue>(&text)
                .map(|SpecValue(doc)| doc)
                .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
        };
        let openapi3 = doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0"));
        let swagger2 = doc["swagger"] == "2.0";
        assert!(
            openapi3 || swagger2,
            "{} is neither an OpenAPI 3.0 nor a Swagger 2.0 document",
            path.display()
        );
        for fix in &fixes {
            (fix.apply)(&mut doc);
        }
        to_json_schema(&mut doc);
        let base_path = doc["basePath"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        Self {
            name: name.to_string(),
            doc,
            tolerances,
            base_path,
            greedy: Vec::new(),
            fixes: fixes.iter().map(|f| f.reason).collect(),
            bodyless_errors: None,
        }
    }

    /// Strips `path` from a request's path before it is matched, for an OpenAPI 3 document
    /// whose server URL has a path its `paths` leave out (`https://api.cloudflare.com/client/v4`).
    pub fn with_base_path(mut self, path: &str) -> Self {
        self.base_path = path.trim_end_matches('/').to_string();
        self
    }

    /// Lets the last parameter of each listed template take the rest of a request's path;
    /// see [`GreedyTail`]. Each is named in the report.
    pub fn with_greedy_tails(mut self, greedy: Vec<GreedyTail>) -> Self {
        self.greedy = greedy;
        self
    }

    /// Checks error answers the document lists without a body against `errors.body`; see
    /// [`BodylessErrors`]. Named in the report.
    pub fn with_bodyless_errors(mut self, errors: BodylessErrors) -> Self {
        self.bodyless_errors = Some(errors);
        self
    }

    /// The operation `method path` is sent to, matching path templates segment by segment.
    pub fn operation(&self, method: &str, path: &str) -> Option<Operation<'_>> {
        let method = method.to_ascii_lowercase();
        let path = path.strip_prefix(&self.base_path).unwrap_or(path);
        let sent: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        self.doc["paths"]
            .as_object()?
            .iter()
            .find_map(|(template, item)| {
                let parts: Vec<&str> = template.split('/').collect();
                let greedy = self.greedy.iter().any(|g| g.template == template);
                let param = |t: &str| t.starts_with('{') && t.ends_with('}');
                let segment = |(t, s): (&&str, &&str)| (param(t) && !s.is_empty()) || t == s;
                let fits = if greedy && parts.len() <= sent.len() {
                    let last = parts.len() - 1;
                    parts[..last].iter().zip(&sent).all(segment)
                        && param(parts[last])
                        && sent[last..].iter().all(|s| !s.is_empty())
                } else {
                    parts.len() == sent.len() && parts.iter().zip(&sent).all(segment)
                };
                let op = item.get(&method)?;
                fits.then(|| Operation {
                    method: method.clone(),
                    template,
                    id: op["operationId"].as_str().unwrap_or(template).to_string(),
                    doc: op,
                    item,
                })
            })
    }

    /// Checks what a client sent: a documented operation, query parameters it declares with
    /// values their schemas take, and a body its request schema takes (or none, if it has
    /// none).
    pub fn check_request(&self, req: &RecordedRequest) -> Result<String, Vec<String>> {
        let at = format!("{} {}", req.method, req.path);
        let op = self
            .operation(&req.method, &req.path)
            .ok_or_else(|| vec![format!("{at}: no operation of the {} spec", self.name)])?;
        let mut errors = Vec::new();
        let params: Vec<&Value> = op.doc["parameters"]
            .as_array()
            .into_iter()
            .chain(op.item["parameters"].as_array())
            .flatten()
            .map(|p| self.resolve(p))
            .collect();
        for (name, value) in query_pairs(req.query.as_deref()) {
            let Some(param) = params
                .iter()
                .find(|p| p["in"] == "query" && p["name"] == name.as_str())
            else {
                errors.push(format!("{at}: query parameter {name:?} is not declared"));
                continue;
            };
            let schema = self.resolve(&param_schema(param)).clone();
            let value = typed_like(&schema, &value);
            errors.extend(self.validate(&schema, &value, &format!("{at} ?{name}")));
        }
        let (schema, required, takes_body) = match params.iter().find(|p| p["in"] == "body") {
            // Swagger 2: the body is a parameter. One typed as binary is raw bytes (a file's
            // contents, which may happen to read as JSON): there is nothing to validate.
            Some(body) if body["schema"]["format"] == "binary" => {
                return if errors.is_empty() {
                    Ok(op.id)
                } else {
                    Err(errors)
                };
            }
            Some(body) => (body["schema"].clone(), body["required"] == true, true),
            None => {
                let request = self.resolve(&op.doc["requestBody"]);
                // A form (`multipart/form-data`) is logged as a JSON object of its text
                // fields, which its schema describes the same way.
                let content = &request["content"];
                let schema = match &content["application/json"]["schema"] {
                    Value::Null => content["multipart/form-data"]["schema"].clone(),
                    json => json.clone(),
                };
                // A media type without a schema takes a body of any shape (Cloudflare's
                // deletes: `{"application/json": {}}`, required).
                let takes_body = content.get("application/json").is_some()
                    || content.get("multipart/form-data").is_some();
                (schema, request["required"] == true, takes_body)
            }
        };
        let schema = &schema;
        match (&req.body, schema.is_null()) {
            (Some(body), false) => {
                errors.extend(self.validate(schema, body, &format!("{at} body")))
            }
            (Some(_), true) if !takes_body => {
                errors.push(format!("{at}: a body, where the operation takes none"))
            }
            (Some(_), true) => {}
            (None, _) if required => errors.push(format!("{at}: no body, where one is required")),
            (None, _) => {}
        }
        if errors.is_empty() {
            Ok(op.id)
        } else {
            Err(errors)
        }
    }

    /// Checks an answer the sandbox gave against the response documented for its status (or
    /// a tolerance for it). Answers never sent (the connection was dropped) are not checked.
    pub fn check_response(&self, req: &RecordedRequest) -> Result<Checked, Vec<String>> {
        let at = format!("{} {} -> {}", req.method, req.path, req.status);
        if req.disconnected || req.status == 0 {
            return Ok(Checked::NotSent);
        }
        let op = self
            .operation(&req.method, &req.path)
            .ok_or_else(|| vec![format!("{at}: no operation of the {} spec", self.name)])?;
        let responses = &op.doc["responses"];
        // An exact status, else OpenAPI 3's range key (`4XX`), else `default`.
        let documented = responses
            .get(req.status.to_string())
            .or_else(|| responses.get(format!("{}XX", req.status / 100)))
            .or_else(|| responses.get("default"));
        let (schema, tolerated) = match documented {
            Some(response) => {
                let response = self.resolve(response);
                // OpenAPI 3 nests the schema by media type; Swagger 2 gives it directly.
                let schema = match response.get("schema") {
                    Some(schema) => schema.clone(),
                    None => response["content"]["application/json"]["schema"].clone(),
                };
                match &self.bodyless_errors {
                    Some(errors) if schema.is_null() && req.status >= 400 => {
                        (errors.body.clone(), true)
                    }
                    _ => (schema, false),
                }
            }
            None => {
                let tolerance = self
                    .tolerances
                    .iter()
                    .find(|t| t.status == req.status)
                    .ok_or_else(|| vec![format!("{at}: status not documented for {}", op.id)])?;
                (tolerance.body.clone(), true)
            }
        };
        let errors = match (&req.response_body, schema.is_null()) {
            (Some(body), false) => self.validate(&schema, body, &at),
            (None, false) => vec![format!("{at}: no JSON body, where one is documented")],
            (Some(body), true) => vec![format!("{at}: a body where none is documented: {body}")],
            (None, true) => Vec::new(),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(if tolerated {
            Checked::Tolerated
        } else {
            Checked::Documented
        })
    }

    /// Checks every request and answer in `log`, adding them to `tally`; panics listing every
    /// mismatch.
    pub fn check_log(&self, log: &[RecordedRequest], tally: &mut Tally) {
        let mut errors = Vec::new();
        for req in log {
            match self.check_request(req) {
                Ok(id) => {
                    tally.requests += 1;
                    tally.operations.insert(id);
                }
                Err(e) => errors.extend(e),
            }
            match self.check_response(req) {
                Ok(Checked::Documented) => tally.responses += 1,
                Ok(Checked::Tolerated) => {
                    tally.responses += 1;
                    tally.tolerated += 1;
                }
                Ok(Checked::NotSent) => {}
                Err(e) => errors.extend(e),
            }
        }
        assert!(
            errors.is_empty(),
            "{} contract mismatches:\n{}",
            self.name,
            errors.join("\n")
        );
    }

    /// Checks every request and answer of `log` (panicking on a mismatch), prints the report,
    /// and requires that every entry was checked, that each of `operations` was exercised and
    /// each of `statuses` answered.
    pub fn check_covering(&self, log: &[RecordedRequest], operations: &[&str], statuses: &[u16]) {
        let mut tally = Tally::default();
        self.check_log(log, &mut tally);
        publish(&self.report(&tally));
        assert_eq!(tally.requests, log.len(), "every request was checked");
        assert_eq!(tally.responses, log.len(), "every answer was checked");
        for op in operations {
            assert!(tally.operations.contains(*op), "{op} was never exercised");
        }
        let answered: std::collections::BTreeSet<u16> = log.iter().map(|r| r.status).collect();
        for status in statuses {
            assert!(answered.contains(status), "no {status} among {answered:?}");
        }
    }

    /// What the report line says.
    pub fn report(&self, tally: &Tally) -> String {
        let mut line = format!(
            "{} spec: {} requests and {} responses validated ({} of them under a named \
             tolerance), over {} operations",
            self.name,
            tally.requests,
            tally.responses,
            tally.tolerated,
            tally.operations.len()
        );
        for t in &self.tolerances {
            let _ = write!(
                line,
                "\n  tolerated: undocumented {}: {}",
                t.status, t.reason
            );
        }
        for g in &self.greedy {
            let _ = write!(
                line,
                "\n  tolerated: the last parameter of {} takes the rest of the path: {}",
                g.template, g.reason
            );
        }
        if let Some(errors) = &self.bodyless_errors {
            let _ = write!(
                line,
                "\n  tolerated: error statuses documented without a body: {}",
                errors.reason
            );
        }
        for reason in &self.fixes {
            let _ = write!(line, "\n  corrected: {reason}");
        }
        line
    }

    /// The error messages of `value` against `schema`, each prefixed with `at`.
    pub fn validate(&self, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        // References point into the document (`#/components/...`, Swagger's
        // `#/definitions/...`), so the schema is checked as part of a root that carries them.
        let mut root = json!({ "allOf": [schema] });
        for key in ["components", "definitions"] {
            if let Some(held) = self.doc.get(key) {
                root[key] = held.clone();
            }
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(&root)
            .unwrap_or_else(|e| panic!("{at}: the spec's schema does not compile: {e}"));
        validator
            .iter_errors(value)
            .map(|e| format!("{at}: {} at {}", e, e.instance_path))
            .collect()
    }

    /// Follows a `$ref` chain to the object it names.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return value;
            };
            value = reference
                .strip_prefix('#')
                .and_then(|p| self.doc.pointer(p))
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
        }
        panic!("$ref chain too deep")
    }
}

/// A spec document as JSON values. Deserialized by hand because a spec may hold integers
/// beyond 64 bits (a MySQL setting's maximum in DigitalOcean's) that neither `serde_json::Value` nor
/// `serde_yaml::Value` can hold; those become floats, which is all a bound needs.
pub struct SpecValue(pub Value);

impl<'de> serde::Deserialize<'de> for SpecValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SpecVisitor).map(SpecValue)
    }
}

struct SpecVisitor;

impl<'de> serde::de::Visitor<'de> for SpecVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::from(v as f64))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(Value::from(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(SpecVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(SpecValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some((SpecValue(key), SpecValue(value))) = map.next_entry()? {
            // YAML allows non-string keys (e.g. unquoted status codes).
            let key = match key {
                Value::String(s) => s,
                other => other.to_string(),
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A made-up log entry, answered 200 with no body, for a test of the checks themselves.
pub fn entry(
    method: &str,
    path: &str,
    query: Option<&str>,
    body: Option<Value>,
) -> RecordedRequest {
    RecordedRequest {
        method: method.into(),
        path: path.into(),
        query: query.map(str::to_string),
        at: std::time::Instant::now(),
        status: 200,
        disconnected: false,
        body,
        response_body: None,
    }
}

/// What [`Spec::check_response`] made of an answer.
pub enum Checked {
    Documented,
    Tolerated,
    NotSent,
}

/// OpenAPI 3.0's and Swagger 2.0's schema dialects as plain JSON Schema (draft 4, which they
/// extend): the one place they differ for these checks is `nullable: true` (Swagger's
/// `x-nullable: true`), which becomes `null` among the allowed types. Everything else
/// (`example`, `deprecated`, `description`) is annotation.
fn to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let nullable = map.remove("nullable") == Some(Value::Bool(true));
            let x_nullable = map.remove("x-nullable") == Some(Value::Bool(true));
            if nullable || x_nullable {
                make_nullable(map);
            }
            map.values_mut().for_each(to_json_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        _ => {}
    }
}

fn make_nullable(map: &mut Map<String, Value>) {
    match map.get_mut("type") {
        Some(Value::String(t)) => {
            let t = t.clone();
            map.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(types)) if !types.contains(&json!("null")) => types.push(json!("null")),
        _ => {}
    }
    if let Some(Value::Array(values)) = map.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

/// A query parameter's schema: OpenAPI 3 gives it under `schema`, Swagger 2 on the parameter
/// itself (`type`, `format`, `enum`, `items`).
fn param_schema(param: &Value) -> Value {
    if param.get("schema").is_some() {
        return param["schema"].clone();
    }
    let mut schema = Map::new();
    for key in [
        "type", "format", "enum", "items", "minimum", "maximum", "pattern",
    ] {
        if let Some(v) = param.get(key) {
            schema.insert(key.into(), v.clone());
        }
    }
    Value::Object(schema)
}

/// `a=1&b=two` as pairs, percent-decoded.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query value as the type its schema declares: query text is all strings on the wire.
fn typed_like(schema: &Value, text: &str) -> Value {
    match schema["type"].as_str() {
        Some("integer") => text
            .parse::<i64>()
            .map_or_else(|_| json!(text), Value::from),
        Some("number") => text
            .parse::<f64>()
            .map_or_else(|_| json!(text), Value::from),
        Some("boolean") => text
            .parse::<bool>()
            .map_or_else(|_| json!(text), Value::from),
        _ => json!(text),
    }
}

// ---- driving an adapter in a contract test ----

/// A recorder that keeps nothing: the adapter keeps its steps in its `Ctx`, and the contract
/// tests read the calls from the sandbox's (or the engine front's) own log.
pub struct Recording;

#[async_trait::async_trait]
impl stackdock_docks::Recorder for Recording {
    async fn journal(&self, _call: stackdock_core::ApiCall) {}

    async fn checkpoint(
        &self,
        _step: stackdock_core::Step,
        _tracks: Option<String>,
    ) -> Result<(), stackdock_docks::DockError> {
        Ok(())
    }
}

/// A config as a request body gives it.
pub fn config(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

/// Undoes what `ctx` recorded as done, newest first, as the engine's unwind would.
pub async fn unwind(
    adapter: &dyn stackdock_docks::DockAdapter,
    ctx: &mut stackdock_docks::Ctx,
    dock: &stackdock_docks::DockAccess,
) {
    let steps: Vec<stackdock_core::Step> = ctx.records().to_vec();
    for step in steps
        .iter()
        .rev()
        .filter(|s| s.status == stackdock_core::StepStatus::Done)
    {
        adapter.undo(ctx, dock, step).await.expect("undone");
    }
}

/// Prints a contract test's report, and appends it to the file named by
/// `STACKDOCK_CONTRACT_REPORT` when set: the test command shows those lines after the run,
/// where a passing test's own output is not shown.
pub fn publish(report: &str) {
    println!("{report}");
    let Some(path) = std::env::var_os("STACKDOCK_CONTRACT_REPORT") else {
        return;
    };
    let mut text = report.to_string();
    text.push('\n');
    // One write per report: appends from tests running side by side do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()));
    if let Err(e) = written {
        panic!("could not append the contract report to {path:?}: {e}");
    }
}

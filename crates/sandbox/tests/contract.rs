//! Contract test: real sandbox responses checked against DigitalOcean's published
//! OpenAPI document.
//!
//! The spec is read at test time from `$STACKDOCK_SPECS_DIR` or, failing that, from
//! `provider-specs` beside the repository clone. Every test here is named
//! `provider_spec_contract_*`: without the specs, `scripts/test` skips them by that name and
//! says so. It is never copied into the repo, so
//! the sandbox is held to the provider's document, not to a copy we could drift.
//!
//! The schema checker below understands the parts of OpenAPI 3.0 that DigitalOcean's
//! response schemas use: `$ref`, `allOf`/`anyOf`/`oneOf`, `properties`, `required`,
//! `type`, `items`, `nullable`, `enum`, `multipleOf`, `minimum` and the `date-time`,
//! `ipv4` and `ipv6` formats. It also reports properties the spec does not declare, so
//! a misspelt field name fails instead of slipping past as an "extra".

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stackdock_sandbox::{DigitalOceanSandbox, DoSandboxConfig, Fault};

const TOKEN: &str = "dop_v1_contract";
const SPEC_FILE: &str = "digitalocean/openapi.subset.yaml";

struct Spec {
    doc: Value,
}

impl Spec {
    fn load() -> Self {
        let dir = std::env::var_os("STACKDOCK_SPECS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/provider-specs")
            });
        let file = dir.join(SPEC_FILE);
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "cannot read the DigitalOcean spec at {} ({e}). The contract test needs the \
                 provider specs: set STACKDOCK_SPECS_DIR to the provider-specs directory, or \
                 place it beside the repository clone.",
                file.display()
            )
        });
        let SpecValue(doc) = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", file.display()));
        assert!(
            doc["paths"]["/v2/droplets"].is_object(),
            "{} does not look like the DigitalOcean spec",
            file.display()
        );
        Self { doc }
    }

    /// Follows `$ref` chains inside the document.
    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
                return schema;
            };
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external $ref not supported: {reference}"));
            schema = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
        }
        panic!("$ref chain too deep")
    }

    /// The documented response for an operation and status, falling back to `default`
    /// as OpenAPI does.
    fn response(&self, path: &str, method: &str, status: u16) -> &Value {
        let responses = &self.doc["paths"][path][method]["responses"];
        assert!(
            responses.is_object(),
            "spec has no operation {method} {path}"
        );
        let response = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .unwrap_or_else(|| panic!("spec documents no {status} for {method} {path}"));
        self.resolve(response)
    }
}

/// The spec as JSON values. Deserialized by hand because the spec holds integers
/// beyond 64 bits (a MySQL setting's maximum) that neither `serde_json::Value` nor
/// `serde_yaml::Value` can hold; those become floats, which is all a bound needs.
struct SpecValue(Value);

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

#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    fn add(&mut self, at: &str, what: impl std::fmt::Display) {
        self.0.push(format!("{at}: {what}"));
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

struct Checker<'a> {
    spec: &'a Spec,
}

impl Checker<'_> {
    fn check(&self, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let mut out = Mismatches::default();
        self.walk(schema, value, at, true, &mut out);
        out.0
    }

    fn passes(&self, schema: &Value, value: &Value, at: &str) -> Result<(), Vec<String>> {
        let errors = self.check(schema, value, at);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// `closed` is false inside an `allOf` branch: a branch sees only part of the
    /// properties, so only the composition as a whole can spot undeclared ones.
    fn walk(&self, schema: &Value, value: &Value, at: &str, closed: bool, out: &mut Mismatches) {
        let schema = self.spec.resolve(schema);
        let nullable = schema.get("nullable") == Some(&Value::Bool(true));
        if value.is_null() {
            if nullable {
                return;
            }
            let constrained = ["type", "properties", "required", "items", "enum"]
                .iter()
                .any(|k| schema.get(*k).is_some());
            if constrained {
                out.add(at, "null where the spec does not allow null");
                return;
            }
        }

        if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
            for branch in branches {
                self.walk(branch, value, at, false, out);
            }
        }
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            let results: Vec<_> = branches.iter().map(|b| self.passes(b, value, at)).collect();
            if !results.iter().any(Result::is_ok) {
                out.add(at, format!("matches none of anyOf: {results:?}"));
            }
        }
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            let results: Vec<_> = branches.iter().map(|b| self.passes(b, value, at)).collect();
            let passing = results.iter().filter(|r| r.is_ok()).count();
            if passing != 1 {
                out.add(
                    at,
                    format!("matches {passing} oneOf branches, not 1: {results:?}"),
                );
            }
        }

        if let Some(expected) = schema.get("type").and_then(Value::as_str) {
            let actual = kind(value);
            let ok = actual == expected || (expected == "number" && actual == "integer");
            if !ok {
                out.add(at, format!("expected {expected}, got {actual} ({value})"));
                return;
            }
        }
        let outside_enum = schema
            .get("enum")
            .and_then(Value::as_array)
            .filter(|allowed| !allowed.contains(value));
        if let Some(allowed) = outside_enum {
            out.add(at, format!("{value} is not one of {allowed:?}"));
        }
        self.check_number(schema, value, at, out);
        self.check_format(schema, value, at, out);

        if let Some(object) = value.as_object() {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    if let Some(child) = object.get(name) {
                        self.walk(property, child, &format!("{at}.{name}"), true, out);
                    }
                }
            }
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        out.add(at, format!("missing required property `{name}`"));
                    }
                }
            }
            let declared = if closed {
                self.declared_properties(schema)
            } else {
                None
            };
            if let Some(known) = declared {
                for name in object.keys().filter(|k| !known.contains(*k)) {
                    out.add(&format!("{at}.{name}"), "property not declared by the spec");
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                self.walk(items, item, &format!("{at}[{i}]"), true, out);
            }
        }
    }

    fn check_number(&self, schema: &Value, value: &Value, at: &str, out: &mut Mismatches) {
        let Some(number) = value.as_f64() else { return };
        let off_step = schema
            .get("multipleOf")
            .and_then(Value::as_f64)
            .filter(|step| *step > 0.0 && (number / step).fract() != 0.0);
        if let Some(step) = off_step {
            out.add(at, format!("{number} is not a multiple of {step}"));
        }
        let too_small = schema
            .get("minimum")
            .and_then(Value::as_f64)
            .filter(|minimum| number < *minimum);
        if let Some(minimum) = too_small {
            out.add(at, format!("{number} is below the minimum {minimum}"));
        }
    }

    fn check_format(&self, schema: &Value, value: &Value, at: &str, out: &mut Mismatches) {
        let (Some(format), Some(text)) =
            (schema.get("format").and_then(Value::as_str), value.as_str())
        else {
            return;
        };
        let ok = match format {
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
            "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
            "uri" => text.starts_with("http://") || text.starts_with("https://"),
            _ => true,
        };
        if !ok {
            out.add(at, format!("{text:?} is not a valid {format}"));
        }
    }

    /// Property names declared by a schema and its `allOf` parts. `None` when the
    /// schema is open (declares nothing, or leaves the shape to `anyOf`/`oneOf`).
    fn declared_properties(&self, schema: &Value) -> Option<BTreeSet<String>> {
        let schema = self.spec.resolve(schema);
        if schema.get("anyOf").is_some() || schema.get("oneOf").is_some() {
            return None;
        }
        let mut names: BTreeSet<String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
            for branch in branches {
                let branch = self.spec.resolve(branch);
                if branch.get("anyOf").is_some() || branch.get("oneOf").is_some() {
                    return None;
                }
                names.extend(self.declared_properties(branch).unwrap_or_default());
            }
        }
        (!names.is_empty()).then_some(names)
    }
}

struct Observed {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Option<Value>,
}

async fn observe(
    sb: &DigitalOceanSandbox,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> Observed {
    let mut request = reqwest::Client::new().request(method, format!("{}{}", sb.base_url(), path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request reaches the sandbox");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let body = (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).expect("JSON body"));
    Observed {
        status,
        headers,
        body,
    }
}

/// Checks status, documented headers and body of one real answer against the spec's
/// response for `method spec_path`.
fn assert_conforms(spec: &Spec, method: &str, spec_path: &str, observed: &Observed) {
    let status = observed.status.as_u16();
    let response = spec.response(spec_path, method, status);
    let label = format!("{} {spec_path} -> {status}", method.to_uppercase());
    let mut problems = Vec::new();

    if let Some(headers) = response.get("headers").and_then(Value::as_object) {
        for (name, header) in headers {
            let header = spec.resolve(header);
            match observed
                .headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
            {
                None => problems.push(format!("header `{name}` missing")),
                Some(text) => {
                    let wants_integer = header["schema"]["type"] == "integer";
                    if wants_integer && text.parse::<i64>().is_err() {
                        problems.push(format!("header `{name}` = {text:?} is not an integer"));
                    }
                }
            }
        }
    }

    match (
        response["content"]["application/json"].get("schema"),
        &observed.body,
    ) {
        (Some(schema), Some(body)) => {
            problems.extend(Checker { spec }.check(schema, body, "$"));
            let content_type = observed
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !content_type.starts_with("application/json") {
                problems.push(format!("content-type {content_type:?} is not JSON"));
            }
        }
        (Some(_), None) => problems.push("spec documents a JSON body, got none".into()),
        (None, Some(body)) => problems.push(format!("spec documents no body, got {body}")),
        (None, None) => {}
    }
    assert!(
        problems.is_empty(),
        "{label} does not match the spec:\n  {}",
        problems.join("\n  ")
    );
}

async fn sandbox() -> DigitalOceanSandbox {
    DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![TOKEN.to_owned()],
        ready_after: Duration::from_millis(100),
        ..DoSandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn create_body(name: &str) -> Value {
    json!({
        "name": name,
        "region": "nyc3",
        "size": "s-1vcpu-1gb",
        "image": "ubuntu-24-04-x64",
        "ipv6": true,
        "backups": true,
        "monitoring": true,
        "tags": ["env:prod", "web"],
    })
}

#[tokio::test]
async fn provider_spec_contract_droplet_responses() {
    let spec = Spec::load();
    let sb = sandbox().await;

    let created = observe(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("contract-1")),
        Some(TOKEN),
    )
    .await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    assert_conforms(&spec, "post", "/v2/droplets", &created);
    let id = created.body.as_ref().unwrap()["droplet"]["id"]
        .as_u64()
        .unwrap();

    let mut multi = create_body("unused");
    multi.as_object_mut().unwrap().remove("name");
    multi["names"] = json!(["contract-2", "contract-3"]);
    let created_many = observe(&sb, Method::POST, "/v2/droplets", Some(multi), Some(TOKEN)).await;
    assert_eq!(created_many.status, StatusCode::ACCEPTED);
    assert_conforms(&spec, "post", "/v2/droplets", &created_many);

    let fresh = observe(
        &sb,
        Method::GET,
        &format!("/v2/droplets/{id}"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_conforms(&spec, "get", "/v2/droplets/{droplet_id}", &fresh);

    let deadline = Instant::now() + Duration::from_secs(10);
    let active = loop {
        let got = observe(
            &sb,
            Method::GET,
            &format!("/v2/droplets/{id}"),
            None,
            Some(TOKEN),
        )
        .await;
        if got.body.as_ref().unwrap()["droplet"]["status"] == "active" {
            break got;
        }
        assert!(Instant::now() < deadline, "droplet never became active");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_conforms(&spec, "get", "/v2/droplets/{droplet_id}", &active);
    let networks = &active.body.as_ref().unwrap()["droplet"]["networks"];
    assert!(
        !networks["v4"].as_array().unwrap().is_empty()
            && !networks["v6"].as_array().unwrap().is_empty()
    );

    for query in [
        "",
        "?per_page=1",
        "?per_page=1&page=2",
        "?per_page=1&page=3",
        "?tag_name=web",
    ] {
        let listed = observe(
            &sb,
            Method::GET,
            &format!("/v2/droplets{query}"),
            None,
            Some(TOKEN),
        )
        .await;
        assert_eq!(listed.status, StatusCode::OK);
        assert_conforms(&spec, "get", "/v2/droplets", &listed);
    }

    let deleted = observe(
        &sb,
        Method::DELETE,
        &format!("/v2/droplets/{id}"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_conforms(&spec, "delete", "/v2/droplets/{droplet_id}", &deleted);
    let by_tag = observe(
        &sb,
        Method::DELETE,
        "/v2/droplets?tag_name=web",
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(by_tag.status, StatusCode::NO_CONTENT);
    assert_conforms(&spec, "delete", "/v2/droplets", &by_tag);
}

#[tokio::test]
async fn provider_spec_contract_error_bodies() {
    let spec = Spec::load();
    let sb = sandbox().await;

    let unauthorized = observe(&sb, Method::GET, "/v2/account", None, None).await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    assert_conforms(&spec, "get", "/v2/account", &unauthorized);

    let missing = observe(&sb, Method::GET, "/v2/droplets/12345", None, Some(TOKEN)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_conforms(&spec, "get", "/v2/droplets/{droplet_id}", &missing);

    let mut invalid = create_body("x");
    invalid["size"] = json!("s-99vcpu");
    let unprocessable = observe(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(invalid),
        Some(TOKEN),
    )
    .await;
    assert_eq!(unprocessable.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_conforms(&spec, "post", "/v2/droplets", &unprocessable);

    sb.inject(Fault::rate_limited(None, "/v2/account", 3, 1));
    let limited = observe(&sb, Method::GET, "/v2/account", None, Some(TOKEN)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_conforms(&spec, "get", "/v2/account", &limited);

    sb.inject(Fault::error(Some("POST"), "/v2/droplets", 500, 1));
    let failed = observe(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("x")),
        Some(TOKEN),
    )
    .await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_conforms(&spec, "post", "/v2/droplets", &failed);
}

#[tokio::test]
async fn provider_spec_contract_account_regions_and_sizes() {
    let spec = Spec::load();
    let sb = sandbox().await;

    let account = observe(&sb, Method::GET, "/v2/account", None, Some(TOKEN)).await;
    assert_eq!(account.status, StatusCode::OK);
    assert_conforms(&spec, "get", "/v2/account", &account);

    for query in ["", "?per_page=3&page=2"] {
        let regions = observe(
            &sb,
            Method::GET,
            &format!("/v2/regions{query}"),
            None,
            Some(TOKEN),
        )
        .await;
        assert_eq!(regions.status, StatusCode::OK);
        assert_conforms(&spec, "get", "/v2/regions", &regions);
        let sizes = observe(
            &sb,
            Method::GET,
            &format!("/v2/sizes{query}"),
            None,
            Some(TOKEN),
        )
        .await;
        assert_eq!(sizes.status, StatusCode::OK);
        assert_conforms(&spec, "get", "/v2/sizes", &sizes);
    }
}

#[tokio::test]
async fn provider_spec_contract_action_responses() {
    let spec = Spec::load();
    let sb = sandbox().await;
    let created = observe(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("acted")),
        Some(TOKEN),
    )
    .await;
    let action_id = created.body.as_ref().unwrap()["links"]["actions"][0]["id"]
        .as_u64()
        .unwrap();
    let action = observe(
        &sb,
        Method::GET,
        &format!("/v2/actions/{action_id}"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(action.status, StatusCode::OK);
    assert_conforms(&spec, "get", "/v2/actions/{action_id}", &action);
}

/// The checker itself must catch the mistakes it exists for; otherwise the tests
/// above could pass vacuously.
#[tokio::test]
async fn provider_spec_contract_checker_reports_broken_droplets() {
    let spec = Spec::load();
    let sb = sandbox().await;
    let droplet = sb.create_droplet_directly(
        "victim",
        "nyc3",
        "s-1vcpu-1gb",
        "ubuntu-24-04-x64",
        &["web"],
    );
    let schema = spec.response("/v2/droplets/{droplet_id}", "get", 200)["content"]["application/json"]["schema"].clone();
    let checker = Checker { spec: &spec };

    let pristine = json!({ "droplet": droplet.clone() });
    assert_eq!(checker.check(&schema, &pristine, "$"), Vec::<String>::new());

    let mut broken = droplet;
    let object = broken.as_object_mut().unwrap();
    object.remove("size_slug");
    object.insert("memory".into(), json!("1024"));
    object.insert("status".into(), json!("booting"));
    object.insert("locked".into(), Value::Null);
    object.insert("sizeslug".into(), json!("s-1vcpu-1gb"));
    broken["networks"]["v4"][0]["type"] = json!("elastic");
    broken["region"]["available"] = json!("yes");
    broken["created_at"] = json!("yesterday");

    let errors = checker.check(&schema, &json!({ "droplet": broken }), "$");
    let expect = [
        "$.droplet: missing required property `size_slug`",
        "$.droplet.memory: expected integer, got string",
        "$.droplet.status: \"booting\" is not one of",
        "$.droplet.locked: null where the spec does not allow null",
        "$.droplet.sizeslug: property not declared by the spec",
        "$.droplet.networks.v4[0].type: \"elastic\" is not one of",
        "$.droplet.region.available: expected boolean, got string",
        "$.droplet.created_at: \"yesterday\" is not a valid date-time",
    ];
    for wanted in expect {
        assert!(
            errors.iter().any(|e| e.starts_with(wanted)),
            "checker missed `{wanted}`; it reported:\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(
        errors.len(),
        expect.len(),
        "unexpected extra reports:\n{}",
        errors.join("\n")
    );
}

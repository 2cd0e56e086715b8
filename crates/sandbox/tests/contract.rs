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
//!
//! Requests are checked too, with the checker every provider's contract test shares
//! (`spec/`, on the `jsonschema` crate): the DigitalOcean adapter is run against the sandbox
//! and every request it sent must be an operation of the spec, with declared query parameters
//! and a body valid against the operation's request schema, and every answer it got must
//! validate against the response schema for its status. The answers of the tests that call
//! the sandbox directly go through that checker as well.
//!
//! One thing of the spec is not applied: the `discriminator` of a domain record's create
//! body. Its `anyOf` branches for `TXT`, `NS` and `SRV` records require `flags` and `tag`,
//! which are CAA's fields and which DigitalOcean's own attribute table does not ask of those
//! types; a body valid against any branch of the `anyOf` passes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stackdock_sandbox::{DigitalOceanSandbox, DoSandboxConfig, Fault};

mod spec;

use spec::SpecValue;

const TOKEN: &str = "dop_v1_contract";
const SPEC_FILE: &str = "digitalocean/openapi.subset.yaml";

struct Spec {
    doc: Value,
}

impl Spec {
    fn load() -> Self {
        let file = spec::specs_dir().join(SPEC_FILE);
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
        // Clusters are held at `creating` by the tests that look at it.
        database_ready_after: Duration::ZERO,
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

    let droplet_id = created.body.as_ref().unwrap()["droplet"]["id"]
        .as_u64()
        .unwrap();
    let actions = observe(
        &sb,
        Method::GET,
        &format!("/v2/droplets/{droplet_id}/actions"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(actions.status, StatusCode::OK);
    assert_eq!(
        actions.body.as_ref().unwrap()["actions"][0]["id"].as_u64(),
        Some(action_id)
    );
    assert_conforms(&spec, "get", "/v2/droplets/{droplet_id}/actions", &actions);
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

/// Calls the sandbox and holds the answer to its status and to the spec, counting them.
struct Checked<'a> {
    spec: &'a Spec,
    sb: &'a DigitalOceanSandbox,
    count: usize,
}

impl Checked<'_> {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        spec_path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Observed {
        let got = observe(self.sb, method.clone(), path, body, Some(TOKEN)).await;
        assert_eq!(got.status, status, "{method} {path}: {:?}", got.body);
        assert_conforms(self.spec, &method.as_str().to_lowercase(), spec_path, &got);
        self.count += 1;
        got
    }
}

/// DigitalOcean's document in the shared checker. It documents every status the sandbox
/// answers (errors fall to `default`), so nothing is tolerated.
fn shared_spec() -> spec::Spec {
    spec::Spec::load("DigitalOcean", SPEC_FILE, Vec::new())
}

/// Checks every answer in the sandbox's log with the shared checker (the requests of the
/// tests that use it are sent wrong on purpose, so only the answers are checked).
fn check_answers(sb: &DigitalOceanSandbox) -> usize {
    let spec = shared_spec();
    let log = sb.requests();
    let errors: Vec<String> = log
        .iter()
        .filter_map(|req| spec.check_response(req).err())
        .flatten()
        .collect();
    assert!(
        errors.is_empty(),
        "answers off the spec:\n{}",
        errors.join("\n")
    );
    log.len()
}

fn body_of(observed: &Observed) -> &Value {
    observed.body.as_ref().expect("a JSON body")
}

#[tokio::test]
async fn provider_spec_contract_domain_and_record_responses() {
    let spec = Spec::load();
    let sb = sandbox().await;
    let mut checked = Checked {
        spec: &spec,
        sb: &sb,
        count: 0,
    };

    let domains = "/v2/domains";
    let records = "/v2/domains/{domain_name}/records";
    let (post, created, refused) = (
        Method::POST,
        StatusCode::CREATED,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let on_example = "/v2/domains/example.com/records";
    for (path, spec_path, body, status) in [
        (
            domains,
            domains,
            json!({"name": "example.com", "ip_address": "192.0.2.1"}),
            created,
        ),
        (domains, domains, json!({"name": "example.org"}), created),
        (domains, domains, json!({"name": "example.com"}), refused),
        (domains, domains, json!({"name": "not a domain"}), refused),
        (
            on_example,
            records,
            json!({"type": "A", "name": "www", "data": "192.0.2.2", "ttl": 300}),
            created,
        ),
        (
            on_example,
            records,
            json!({"type": "AAAA", "name": "www", "data": "2001:db8::2"}),
            created,
        ),
        (
            on_example,
            records,
            json!({"type": "CNAME", "name": "blog", "data": "www.example.com."}),
            created,
        ),
        (
            on_example,
            records,
            json!({"type": "MX", "data": "mail.example.com.", "priority": 10}),
            created,
        ),
        (
            on_example,
            records,
            json!({"type": "TXT", "name": "_stackdock", "data": "stackdock-0123456789ab"}),
            created,
        ),
        (
            on_example,
            records,
            json!({"type": "SRV", "name": "_sip._tcp", "data": "sip.example.com.", "priority": 1, "port": 5060, "weight": 5}),
            created,
        ),
        (
            on_example,
            records,
            json!({"type": "CAA", "name": "@", "data": "letsencrypt.org.", "flags": 0, "tag": "issue"}),
            created,
        ),
        (
            on_example,
            records,
            json!({"type": "MX", "data": "mail.example.com."}),
            refused,
        ),
        (
            "/v2/domains/example.net/records",
            records,
            json!({"type": "A", "name": "www", "data": "192.0.2.2"}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        checked
            .call(post.clone(), path, spec_path, Some(body), status)
            .await;
    }

    let one = checked
        .call(
            Method::GET,
            "/v2/domains/example.com",
            "/v2/domains/{domain_name}",
            None,
            StatusCode::OK,
        )
        .await;
    let zone = body_of(&one)["domain"]["zone_file"].as_str().unwrap();
    assert!(
        zone.contains("_stackdock.example.com. 1800 IN TXT \"stackdock-0123456789ab\""),
        "{zone}"
    );
    checked
        .call(
            Method::GET,
            "/v2/domains/example.net",
            "/v2/domains/{domain_name}",
            None,
            StatusCode::NOT_FOUND,
        )
        .await;

    for query in ["", "?per_page=1", "?per_page=1&page=2"] {
        checked
            .call(
                Method::GET,
                &format!("/v2/domains{query}"),
                "/v2/domains",
                None,
                StatusCode::OK,
            )
            .await;
    }
    let page = checked
        .call(
            Method::GET,
            "/v2/domains?per_page=1",
            "/v2/domains",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body_of(&page)["meta"]["total"], 2);
    assert!(body_of(&page)["links"]["pages"]["next"].is_string());

    for query in [
        "",
        "?per_page=2&page=3",
        "?type=A&name=www.example.com",
        "?type=NS&name=example.com",
    ] {
        checked
            .call(
                Method::GET,
                &format!("/v2/domains/example.com/records{query}"),
                records,
                None,
                StatusCode::OK,
            )
            .await;
    }
    let filtered = checked
        .call(
            Method::GET,
            "/v2/domains/example.com/records?type=A&name=www.example.com",
            records,
            None,
            StatusCode::OK,
        )
        .await;
    let found = body_of(&filtered)["domain_records"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(found.len(), 1, "the apex A record is left out: {found:?}");
    let id = found[0]["id"].as_u64().unwrap();
    let record = "/v2/domains/{domain_name}/records/{domain_record_id}";
    let got = checked
        .call(
            Method::GET,
            &format!("/v2/domains/example.com/records/{id}"),
            record,
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body_of(&got)["domain_record"]["data"], "192.0.2.2");
    checked
        .call(
            Method::DELETE,
            &format!("/v2/domains/example.com/records/{id}"),
            record,
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    checked
        .call(
            Method::GET,
            &format!("/v2/domains/example.com/records/{id}"),
            record,
            None,
            StatusCode::NOT_FOUND,
        )
        .await;

    checked
        .call(
            Method::DELETE,
            "/v2/domains/example.com",
            "/v2/domains/{domain_name}",
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    checked
        .call(
            Method::DELETE,
            "/v2/domains/example.com",
            "/v2/domains/{domain_name}",
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    let answers = check_answers(&sb);
    spec::publish(&format!(
        "DigitalOcean spec: 0 requests and {answers} responses validated (domains: {} checked \
         field by field too)",
        checked.count
    ));
}

#[tokio::test]
async fn provider_spec_contract_database_responses() {
    let spec = Spec::load();
    let sb = sandbox().await;
    sb.hold_databases_creating(true);
    let mut checked = Checked {
        spec: &spec,
        sb: &sb,
        count: 0,
    };
    let one = "/v2/databases/{database_cluster_uuid}";

    let empty = checked
        .call(
            Method::GET,
            "/v2/databases",
            "/v2/databases",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body_of(&empty)["databases"], json!([]));
    let created = checked
        .call(
            Method::POST,
            "/v2/databases",
            "/v2/databases",
            Some(
                json!({"name": "backend", "engine": "pg", "version": "16", "region": "nyc3",
                    "size": "db-s-2vcpu-4gb", "num_nodes": 2, "storage_size_mib": 61440,
                    "tags": ["production"]}),
            ),
            StatusCode::CREATED,
        )
        .await;
    let id = body_of(&created)["database"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(body_of(&created)["database"]["status"], "creating");
    checked
        .call(
            Method::POST,
            "/v2/databases",
            "/v2/databases",
            Some(
                json!({"name": "cache", "engine": "valkey", "region": "fra1",
                    "size": "db-s-1vcpu-1gb", "num_nodes": 1}),
            ),
            StatusCode::CREATED,
        )
        .await;
    // An unknown engine, then a name already taken.
    for body in [
        json!({"name": "x1", "engine": "postgres", "region": "nyc3", "size": "db-s-1vcpu-1gb", "num_nodes": 1}),
        json!({"name": "backend", "engine": "pg", "region": "nyc3", "size": "db-s-1vcpu-1gb", "num_nodes": 1}),
    ] {
        let refused = StatusCode::UNPROCESSABLE_ENTITY;
        checked
            .call(
                Method::POST,
                "/v2/databases",
                "/v2/databases",
                Some(body),
                refused,
            )
            .await;
    }

    let creating = checked
        .call(
            Method::GET,
            &format!("/v2/databases/{id}"),
            one,
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body_of(&creating)["database"]["status"], "creating");
    sb.hold_databases_creating(false);
    let online = checked
        .call(
            Method::GET,
            &format!("/v2/databases/{id}"),
            one,
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body_of(&online)["database"]["status"], "online");
    assert!(body_of(&online)["database"]["standby_connection"].is_object());

    let tagged = checked
        .call(
            Method::GET,
            "/v2/databases?tag_name=production",
            "/v2/databases",
            None,
            StatusCode::OK,
        )
        .await;
    let listed = body_of(&tagged)["databases"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "the untagged cluster is left out");
    assert_eq!(listed[0]["id"], id.as_str());
    let all = checked
        .call(
            Method::GET,
            "/v2/databases",
            "/v2/databases",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(body_of(&all)["databases"].as_array().unwrap().len(), 2);

    checked
        .call(
            Method::DELETE,
            &format!("/v2/databases/{id}"),
            one,
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    checked
        .call(
            Method::GET,
            &format!("/v2/databases/{id}"),
            one,
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    let answers = check_answers(&sb);
    spec::publish(&format!(
        "DigitalOcean spec: 0 requests and {answers} responses validated (databases: {} checked \
         field by field too)",
        checked.count
    ));
}

mod adapter_run {
    //! Just enough of the engine to drive the adapter: a recorder that keeps nothing.
    use std::sync::Arc;

    use stackdock_core::{ApiCall, DockId, OperationId, OrgId, Provider, ResourceId, Step};
    use stackdock_docks::prelude::async_trait;
    use stackdock_docks::{Budget, CallScope, Ctx, DockAccess, DockError, RateLimit, Recorder};

    struct Nothing;

    #[async_trait]
    impl Recorder for Nothing {
        async fn journal(&self, _call: ApiCall) {}
        async fn checkpoint(&self, _step: Step, _tracks: Option<String>) -> Result<(), DockError> {
            Ok(())
        }
    }

    pub fn dock(base_url: &str, key: &str) -> DockAccess {
        DockAccess {
            id: DockId::new(),
            org_id: OrgId::new(),
            provider: Provider::DigitalOcean,
            name: "contract".into(),
            api_key: stackdock_core::SecretString::new(key),
            base_url: Some(base_url.to_string()),
            settings: serde_json::Value::Null,
            budget: Arc::new(Budget::new(RateLimit::None)),
        }
    }

    /// A fresh operation on a fresh resource.
    pub fn ctx(dock: &DockAccess) -> Ctx {
        let resource = ResourceId::new();
        let scope = CallScope {
            org_id: dock.org_id,
            dock_id: dock.id,
            resource_id: Some(resource),
            operation_id: Some(OperationId::new()),
            recorder: Arc::new(Nothing),
        };
        Ctx::new(
            scope,
            Some(stackdock_core::Marker::for_resource(&resource)),
            1,
            Vec::new(),
        )
    }
}

/// Every request the DigitalOcean adapter sends while it provisions, checks, discovers and
/// deletes each kind is an operation of the spec, with declared query parameters and a body
/// valid against the operation's request schema; every answer the sandbox gave it validates
/// against the response schema for its status (the shared `spec` module, with `jsonschema`).
#[tokio::test]
async fn provider_spec_contract_adapter_requests() {
    use stackdock_core::ResourceKind;
    use stackdock_docks::adapter::provision;
    use stackdock_docks::digitalocean::DigitalOceanAdapter;
    use stackdock_docks::{DockAdapter, Progress, Tracked};

    let sb = sandbox().await;
    // Every check of a droplet still `new` asks about its create action too, so that call
    // is checked against the document as well.
    let adapter = DigitalOceanAdapter::new(reqwest::Client::new())
        .with_stuck_after(std::time::Duration::ZERO);
    let dock = adapter_run::dock(&sb.base_url(), TOKEN);
    sb.create_domain_directly("theirs.example.org");
    sb.create_database_directly("theirs", "mysql", "fra1", "db-s-1vcpu-1gb", &[]);

    let configs = [
        (ResourceKind::Server, create_body("contract-web")),
        (
            ResourceKind::Domain,
            json!({"name": "contract.example.com", "ip_address": "192.0.2.1", "records": [
                {"type": "A", "name": "www", "data": "192.0.2.2", "ttl": 300},
                {"type": "AAAA", "name": "www", "data": "2001:db8::2"},
                {"type": "CNAME", "name": "blog", "data": "www.contract.example.com"},
                {"type": "MX", "data": "mail.contract.example.com", "priority": 10},
                {"type": "TXT", "name": "_dmarc", "data": "v=DMARC1; p=none"},
                {"type": "SRV", "name": "_sip._tcp", "data": "sip.contract.example.com", "priority": 1, "port": 5060, "weight": 5},
                {"type": "CAA", "data": "letsencrypt.org", "flags": 0, "tag": "issue"},
                {"type": "NS", "name": "sub", "data": "ns1.example.net"},
            ]}),
        ),
        (ResourceKind::Database, json!({"name": "contract-db"})),
        (
            ResourceKind::Database,
            json!({"name": "contract-db-2", "engine": "mysql", "version": "8", "size": "db-s-2vcpu-4gb",
                   "region": "ams3", "num_nodes": 3, "storage_size_mib": 40960, "tags": ["reporting"]}),
        ),
    ];
    let mut made = Vec::new();
    for (kind, config) in configs {
        let mut config = config.as_object().unwrap().clone();
        if kind == ResourceKind::Server {
            // The server config names its own fields; the droplet body above is the API's.
            config.remove("backups");
        }
        let mut ctx = adapter_run::ctx(&dock);
        let progress = provision(&adapter, kind, &mut ctx, &dock, &config)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e:?}"));
        let marker = ctx.marker.clone().unwrap();
        let found = adapter
            .find_by_marker(&mut ctx, &dock, kind, &marker)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{kind}: not found by its marker"));
        let target = Tracked {
            kind,
            provider_resource_id: found.provider_resource_id,
            marker: Some(marker),
            last_seen: Value::Null,
        };
        if let Progress::Pending { .. } = progress {
            adapter
                .observe_many(&mut ctx, &dock, kind, std::slice::from_ref(&target))
                .await
                .unwrap();
        }
        made.push((ctx, target));
    }
    let mut ctx = adapter_run::ctx(&dock);
    adapter.discover(&mut ctx, &dock).await.unwrap();
    for (mut ctx, target) in made {
        adapter.deprovision(&mut ctx, &dock, &target).await.unwrap();
    }

    let requests = sb.requests();
    for path in ["/v2/droplets", "/v2/domains", "/v2/databases"] {
        assert!(
            requests
                .iter()
                .any(|r| r.method == "POST" && r.path == path),
            "no create sent to {path}"
        );
    }
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/actions")),
        "no droplet's create action was asked about"
    );
    let spec = shared_spec();
    let mut tally = spec::Tally::default();
    spec.check_log(&requests, &mut tally);
    let bodies = requests.iter().filter(|r| r.body.is_some()).count();
    assert!(
        bodies >= 12,
        "only {bodies} request bodies were checked; the adapter did not run as expected"
    );
    spec::publish(&spec.report(&tally));
}

/// The shared checker, on DigitalOcean's document, catches what it exists for.
#[test]
fn provider_spec_contract_request_checks_catch_bad_requests() {
    let spec = shared_spec();
    let request = |method: &str, path: &str, query: Option<&str>, body: Option<Value>| {
        stackdock_sandbox::RecordedRequest {
            method: method.into(),
            path: path.into(),
            query: query.map(str::to_string),
            body,
            response_body: None,
            at: Instant::now(),
            status: 201,
            disconnected: false,
        }
    };
    let database = |body: Value| request("POST", "/v2/databases", None, Some(body));
    let cases = [
        (
            database(
                json!({"name": "a", "engine": "postgres", "num_nodes": 1, "size": "s", "region": "r"}),
            ),
            "is not one of",
        ),
        (
            database(json!({"name": "a", "engine": "pg", "num_nodes": 1})),
            "\"size\" is a required property",
        ),
        (
            request("POST", "/v2/domains", None, Some(json!({"name": 3}))),
            "is not of type",
        ),
        (
            request("GET", "/v2/databases", Some("page=2"), None),
            "query parameter \"page\" is not declared",
        ),
        (
            request("PATCH", "/v2/databases", None, None),
            "no operation of the DigitalOcean spec",
        ),
    ];
    for (req, expected) in cases {
        let problems = spec.check_request(&req).expect_err("refused");
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{} {}: expected `{expected}`, got {problems:?}",
            req.method,
            req.path
        );
    }
    let fine = request(
        "POST",
        "/v2/domains/a.com/records",
        None,
        Some(json!({"type": "MX", "name": "@", "data": "mail.a.com", "priority": 10})),
    );
    assert!(spec.check_request(&fine).is_ok());
}

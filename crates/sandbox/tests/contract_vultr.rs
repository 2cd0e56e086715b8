//! Contract tests against Vultr's published OpenAPI document: every request the Vultr
//! adapter sends, through everything it does (key checks, provisions, a refused create, a
//! lost answer adopted, a 429 sent again, lookups, listings, deprovisions, unwinds), matches
//! an operation of the document and validates against its request schema; every answer the
//! Vultr sandbox gives validates against the response schema for its status.
//!
//! The spec is read at test time (see `spec::specs_dir`); every test here is named
//! `provider_spec_contract_vultr_*`, which `scripts/test` skips, saying so, when the specs
//! are absent.

mod spec;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use stackdock_core::{
    ApiCall, DockId, Keyring, Marker, MasterKey, OperationId, OrgId, Provider, ResourceId,
    ResourceKind, SealedSecret, SecretString, Step,
};
use stackdock_docks::vultr::VultrAdapter;
use stackdock_docks::{
    Budget, CallScope, Ctx, DockAccess, DockAdapter, DockError, RateLimit, Recorder, Tracked,
};
use stackdock_sandbox::{Fault, RecordedRequest, VultrSandbox, VultrSandboxConfig};

use spec::{Fix, Spec, Tally, Tolerance, config, unwind};

const SPEC_FILE: &str = "vultr/openapi.json";
const KEY: &str = "vultr-contract-key";

/// Vultr's error envelope as its introduction describes it ("All 4xx errors will return a
/// JSON response object with an `error` attribute"); the sandbox adds `status`, as Vultr does.
fn envelope() -> Value {
    json!({"type": "object",
           "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
           "required": ["error", "status"]})
}

/// Statuses Vultr answers that some operations do not list, each checked against the error
/// envelope. The one place the upstream document's omissions are tolerated.
fn tolerances() -> Vec<Tolerance> {
    vec![
        Tolerance {
            status: 400,
            body: envelope(),
            reason: "create-dns-domain documents only 200, though a bad or taken domain is a 400",
        },
        Tolerance {
            status: 401,
            body: envelope(),
            reason: "get-account and the DNS creates document no 401, though every call needs the key",
        },
        Tolerance {
            status: 429,
            body: envelope(),
            reason: "the introduction documents 429 for the rate limit; no operation lists it",
        },
        Tolerance {
            status: 500,
            body: envelope(),
            reason: "the introduction documents 5xx for server-side problems; no operation lists it",
        },
    ]
}

/// Vultr's document uses types JSON Schema does not have (`float`, `int`, `mixed`, `enum`)
/// and gives its 4xx answers no body; both corrected in schemas, never in examples.
fn fixes() -> Vec<Fix> {
    vec![
        Fix {
            reason: "`type: float`/`int`/`mixed`/`enum` are not JSON Schema types: float is \
                     number, int is integer, mixed and enum constrain nothing by type",
            apply: |doc| {
                for part in ["paths", "components"] {
                    retype(&mut doc[part]);
                }
            },
        },
        Fix {
            reason: "no 4xx response declares a body, though the introduction says every 4xx \
                     carries the `error` envelope",
            apply: |doc| {
                let Some(paths) = doc["paths"].as_object_mut() else {
                    return;
                };
                for item in paths.values_mut().filter_map(Value::as_object_mut) {
                    for op in item.values_mut() {
                        // Path items hold `parameters` (an array) beside the operations.
                        let Some(responses) =
                            op.get_mut("responses").and_then(Value::as_object_mut)
                        else {
                            continue;
                        };
                        for (status, response) in responses.iter_mut() {
                            if status.starts_with('4') && response.get("content").is_none() {
                                response["content"] =
                                    json!({"application/json": {"schema": envelope()}});
                            }
                        }
                    }
                }
            },
        },
    ]
}

/// Rewrites the types JSON Schema does not know, skipping examples (whose `type` fields are
/// data, not schema).
fn retype(value: &mut Value) {
    match value {
        Value::Object(map) => {
            match map.get("type").and_then(Value::as_str) {
                Some("float") => {
                    map.insert("type".into(), json!("number"));
                }
                Some("int") => {
                    map.insert("type".into(), json!("integer"));
                }
                Some("mixed" | "enum") => {
                    map.remove("type");
                }
                _ => {}
            }
            for (key, child) in map.iter_mut() {
                if !matches!(key.as_str(), "example" | "examples" | "x-examples") {
                    retype(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(retype),
        _ => {}
    }
}

fn load() -> Spec {
    let spec = Spec::load_fixed("Vultr", SPEC_FILE, tolerances(), fixes());
    assert!(
        spec.operation("POST", "/instances").is_some(),
        "{SPEC_FILE} does not look like Vultr's spec"
    );
    spec
}

/// Keeps steps nowhere (the adapter keeps them in its `Ctx`) and seals as the engine does.
struct Recording {
    keyring: Keyring,
}

#[async_trait]
impl Recorder for Recording {
    async fn journal(&self, _call: ApiCall) {}

    async fn checkpoint(&self, _step: Step, _tracks: Option<String>) -> Result<(), DockError> {
        Ok(())
    }

    fn seal(&self, secret: &SecretString) -> Result<SealedSecret, DockError> {
        Ok(self.keyring.seal(secret, "resource"))
    }
}

fn dock(sandbox: &VultrSandbox, key: &str) -> DockAccess {
    DockAccess {
        id: DockId::new(),
        org_id: OrgId::new(),
        provider: Provider::Vultr,
        name: "contract".into(),
        api_key: SecretString::new(key),
        base_url: Some(sandbox.base_url()),
        settings: Value::Null,
        budget: Arc::new(Budget::new(RateLimit::None)),
    }
}

fn ctx(dock: &DockAccess) -> Ctx {
    let resource_id = ResourceId::new();
    let scope = CallScope {
        org_id: dock.org_id,
        dock_id: dock.id,
        resource_id: Some(resource_id),
        operation_id: Some(OperationId::new()),
        recorder: Arc::new(Recording {
            keyring: Keyring::new(MasterKey::generate()),
        }),
    };
    let mut ctx = Ctx::new(
        scope,
        Some(Marker::for_resource(&resource_id)),
        1,
        Vec::new(),
    );
    ctx.retry.base_delay = std::time::Duration::from_millis(10);
    ctx
}

async fn sandbox() -> VultrSandbox {
    VultrSandbox::start(VultrSandboxConfig {
        tokens: vec![KEY.into()],
        ready_after: std::time::Duration::ZERO,
        ..VultrSandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn server(name: &str) -> Map<String, Value> {
    config(json!({"name": name, "region": "ewr", "plan": "vc2-1c-1gb", "os_id": 2284}))
}

/// What follows a provision of `kind` carrying `marker`: found by its marker, observed,
/// discovered, then deleted twice (the second time it is already gone) and observed gone.
async fn look_up_and_delete(
    adapter: &VultrAdapter,
    good: &DockAccess,
    kind: ResourceKind,
    marker: Marker,
) {
    let mut look = ctx(good);
    let found = adapter
        .find_by_marker(&mut look, good, kind, &marker)
        .await
        .expect("looked up")
        .expect("found");
    let unknown = Marker::for_resource(&ResourceId::new());
    assert!(
        adapter
            .find_by_marker(&mut look, good, kind, &unknown)
            .await
            .expect("looked up")
            .is_none()
    );
    let target = Tracked {
        kind,
        provider_resource_id: found.provider_resource_id,
        marker: Some(marker),
        last_seen: Value::Null,
    };
    adapter
        .observe_many(&mut look, good, kind, std::slice::from_ref(&target))
        .await
        .expect("observed");
    adapter.discover(&mut look, good).await.expect("discovered");
    for _ in 0..2 {
        adapter
            .deprovision(&mut look, good, &target)
            .await
            .expect("deleted");
    }
    adapter
        .observe_many(&mut look, good, kind, std::slice::from_ref(&target))
        .await
        .expect("observed gone");
}

/// Everything the adapter does with servers, against one sandbox.
async fn servers_at_work(sb: &VultrSandbox, adapter: &VultrAdapter, good: &DockAccess) {
    let bad = dock(sb, "not-the-key");
    adapter
        .verify_credentials(&mut ctx(good), good)
        .await
        .expect("a good key");
    adapter
        .verify_credentials(&mut ctx(&bad), &bad)
        .await
        .expect_err("a bad key");

    // Every field set.
    let mut first = ctx(good);
    adapter
        .provision_server(
            &mut first,
            good,
            &config(
                json!({"name": "web-1", "region": "ewr", "plan": "vc2-1c-1gb",
                           "os_id": 2284, "hostname": "web-1.example.com", "ipv6": true,
                           "backups": true, "user_data": "#cloud-config\n",
                           "ssh_keys": ["key-1"], "firewall_group_id": "fw-1",
                           "tags": ["web"]}),
            ),
        )
        .await
        .expect("provisioned");
    // Refused: an operating system Vultr does not have.
    adapter
        .provision_server(
            &mut ctx(good),
            good,
            &config(
                json!({"name": "web-2", "region": "ewr", "plan": "vc2-1c-1gb",
                           "os_id": 1}),
            ),
        )
        .await
        .expect_err("refused");
    // A lost answer, adopted; a 429, sent again.
    sb.inject(Fault::lose_response(Some("POST"), "/instances", 1));
    let mut lost = ctx(good);
    adapter
        .provision_server(&mut lost, good, &server("web-3"))
        .await
        .expect("adopted");
    sb.inject(Fault::rate_limited(Some("POST"), "/instances", 1, 1));
    let mut limited = ctx(good);
    adapter
        .provision_server(&mut limited, good, &server("web-4"))
        .await
        .expect("sent again");
    unwind(adapter, &mut limited, good).await;

    sb.create_instance_directly("by-hand", "ams", "vc2-1c-2gb", &[]);
    let marker = first.marker().expect("a marker").clone();
    look_up_and_delete(adapter, good, ResourceKind::Server, marker).await;
}

/// Everything the adapter does with domains, against one sandbox.
async fn domains_at_work(sb: &VultrSandbox, adapter: &VultrAdapter, good: &DockAccess) {
    let mut first = ctx(good);
    adapter
        .provision_domain(
            &mut first,
            good,
            &config(
                json!({"name": "example.com", "ip": "203.0.113.10", "records": [
                    {"type": "A", "name": "api", "data": "203.0.113.11", "ttl": 600},
                    {"type": "MX", "data": "mail.example.com", "priority": 10},
                ]}),
            ),
        )
        .await
        .expect("provisioned");
    // Lost, then adopted.
    sb.inject(Fault::lose_response(Some("POST"), "/domains", 1));
    adapter
        .provision_domain(
            &mut ctx(good),
            good,
            &config(json!({"name": "example.net"})),
        )
        .await
        .expect("adopted");
    // The user's own: refused after one read.
    sb.create_domain_directly("example.org");
    adapter
        .provision_domain(
            &mut ctx(good),
            good,
            &config(json!({"name": "example.org"})),
        )
        .await
        .expect_err("taken");
    // A record refused, and the unwind.
    sb.inject(Fault::error(
        Some("POST"),
        "/domains/example.io/records",
        400,
        1,
    ));
    let mut refused = ctx(good);
    adapter
        .provision_domain(&mut refused, good, &config(json!({"name": "example.io"})))
        .await
        .expect_err("refused");
    unwind(adapter, &mut refused, good).await;

    let marker = first.marker().expect("a marker").clone();
    look_up_and_delete(adapter, good, ResourceKind::Domain, marker).await;
}

/// Everything the adapter does with managed databases, against one sandbox.
async fn databases_at_work(sb: &VultrSandbox, adapter: &VultrAdapter, good: &DockAccess) {
    let mut first = ctx(good);
    adapter
        .provision_database(
            &mut first,
            good,
            &config(
                json!({"name": "orders", "engine": "mysql", "engine_version": "8",
                           "region": "ewr", "plan": "vultr-dbaas-startup-cc-1-55-2",
                           "vpc_id": "vpc-1", "maintenance_dow": "sunday",
                           "maintenance_time": "06:00", "trusted_ips": ["203.0.113.0/24"]}),
            ),
        )
        .await
        .expect("provisioned");
    let pg = json!({"name": "audit", "engine": "pg", "engine_version": "16", "region": "ewr",
                    "plan": "vultr-dbaas-hobbyist-cc-1-25-1"});
    sb.inject(Fault::lose_response(Some("POST"), "/databases", 1));
    adapter
        .provision_database(&mut ctx(good), good, &config(pg.clone()))
        .await
        .expect("adopted");
    let mut refused = pg.clone();
    refused["plan"] = json!("no-such-plan");
    adapter
        .provision_database(&mut ctx(good), good, &config(refused))
        .await
        .expect_err("refused");
    let mut cancelled = ctx(good);
    adapter
        .provision_database(&mut cancelled, good, &config(pg))
        .await
        .expect("provisioned");
    unwind(adapter, &mut cancelled, good).await;

    sb.create_database_directly(
        "theirs",
        "redis",
        "7",
        "ams",
        "vultr-dbaas-startup-cc-1-55-2",
    );
    let marker = first.marker().expect("a marker").clone();
    look_up_and_delete(adapter, good, ResourceKind::Database, marker).await;
}

fn check(spec: &Spec, log: &[RecordedRequest]) -> Tally {
    let mut tally = Tally::default();
    spec.check_log(log, &mut tally);
    spec::publish(&spec.report(&tally));
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_vultr_server_requests_and_sandbox_answers() {
    let spec = load();
    let sb = sandbox().await;
    let adapter = VultrAdapter::new(reqwest::Client::new());
    let good = dock(&sb, KEY);
    servers_at_work(&sb, &adapter, &good).await;
    spec.check_covering(
        &sb.requests(),
        &[
            "get-account",
            "create-instance",
            "list-instances",
            "get-instance",
            "delete-instance",
        ],
        &[200, 202, 204, 400, 401, 404, 429, 500],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_vultr_domain_requests_and_sandbox_answers() {
    let spec = load();
    let sb = sandbox().await;
    let adapter = VultrAdapter::new(reqwest::Client::new());
    let good = dock(&sb, KEY);
    domains_at_work(&sb, &adapter, &good).await;
    spec.check_covering(
        &sb.requests(),
        &[
            "create-dns-domain",
            "get-dns-domain",
            "list-dns-domains",
            "delete-dns-domain",
            "create-dns-domain-record",
            "list-dns-domain-records",
        ],
        &[200, 201, 204, 400, 404, 500],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_vultr_database_requests_and_sandbox_answers() {
    let spec = load();
    let sb = sandbox().await;
    let adapter = VultrAdapter::new(reqwest::Client::new());
    let good = dock(&sb, KEY);
    databases_at_work(&sb, &adapter, &good).await;
    spec.check_covering(
        &sb.requests(),
        &["create-database", "list-databases", "delete-database"],
        &[200, 202, 204, 400, 404, 500],
    );
}

/// Answers the adapter never provokes, straight from the sandbox: bad bodies, unknown ids,
/// a cursor walked page by page, a bad cursor, the rate limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_vultr_error_answers_and_pages() {
    let spec = load();
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", sb.base_url());
    for n in 0..5 {
        sb.create_instance_directly(&format!("i-{n}"), "ewr", "vc2-1c-1gb", &["t"]);
    }
    // Three pages of two, followed by their cursors.
    let mut cursor = String::new();
    let mut seen = 0;
    for _ in 0..3 {
        let page: Value = http
            .get(url("/instances"))
            .bearer_auth(KEY)
            .query(&[("per_page", "2"), ("cursor", cursor.as_str())])
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        seen += page["instances"].as_array().expect("instances").len();
        assert_eq!(page["meta"]["total"], 5);
        cursor = page["meta"]["links"]["next"].as_str().expect("next").into();
    }
    assert_eq!((seen, cursor.as_str()), (5, ""));

    let bad_cursor = http
        .get(url("/instances?cursor=nope"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("answered");
    assert_eq!(bad_cursor.status(), 400);
    // Bodies the document takes (it requires only region and plan) that Vultr refuses.
    for body in [
        json!({"region": "ewr", "plan": "vc2-1c-1gb"}),
        json!({"region": "xyz", "plan": "vc2-1c-1gb", "os_id": 2284}),
    ] {
        let refused = http
            .post(url("/instances"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .expect("answered");
        assert_eq!(refused.status(), 400, "{body}");
    }
    // A domain that exists, and a record Vultr does not have a type for.
    for _ in 0..2 {
        http.post(url("/domains"))
            .bearer_auth(KEY)
            .json(&json!({"domain": "example.com"}))
            .send()
            .await
            .expect("answered");
    }
    let record = http
        .post(url("/domains/example.com/records"))
        .bearer_auth(KEY)
        .json(&json!({"name": "x", "type": "SPF", "data": "v=spf1"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(record.status(), 400);
    let statuses: Vec<u16> = sb.requests().iter().map(|r| r.status).collect();
    assert!(statuses.ends_with(&[200, 400, 400]), "{statuses:?}");
    let no_database = http
        .get(url("/databases/none"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("answered");
    assert_eq!(no_database.status(), 404);
    sb.create_database_directly(
        "theirs",
        "pg",
        "15",
        "ewr",
        "vultr-dbaas-hobbyist-cc-1-25-1",
    );
    let id = sb.databases()[0]["id"].as_str().expect("an id").to_string();
    let one = http
        .get(url(&format!("/databases/{id}")))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("answered");
    assert_eq!(one.status(), 200);
    let gone = http
        .get(url("/instances/none"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("answered");
    assert_eq!(gone.status(), 404);
    assert_eq!(
        gone.json::<Value>().await.expect("json"),
        json!({"error": "Invalid instance-id.", "status": 404})
    );

    // Past the configured limit: 429 with Retry-After, in Vultr's envelope.
    sb.set_rate_limit(Some(2));
    let mut limited = None;
    for _ in 0..3 {
        let answer = http
            .get(url("/account"))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("answered");
        if answer.status() == 429 {
            limited = Some(answer);
        }
    }
    let limited = limited.expect("the third call within a second is refused");
    assert!(limited.headers().contains_key("retry-after"));
    sb.set_rate_limit(None);

    let log = sb.requests();
    let tally = check(&spec, &log);
    assert_eq!(tally.responses, log.len());
}

/// The checks fail where they should: an undocumented path, a body of the wrong type, an
/// undeclared parameter, an answer of the wrong shape, an error without the envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_vultr_checker_reports_mismatches() {
    let spec = load();
    let entry =
        |method: &str, path: &str, query: Option<&str>, body: Option<Value>| RecordedRequest {
            method: method.into(),
            path: path.into(),
            query: query.map(str::to_string),
            at: std::time::Instant::now(),
            status: 200,
            disconnected: false,
            body,
            response_body: None,
        };
    assert!(
        spec.check_request(&entry("GET", "/v2/instances", None, None))
            .is_err()
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            "/instances",
            None,
            Some(json!({"region": "ewr", "plan": "p", "os_id": "ubuntu"}))
        ))
        .is_err()
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            "/instances",
            None,
            Some(json!({"region": "ewr"}))
        ))
        .is_err(),
        "plan is required"
    );
    assert!(
        spec.check_request(&entry("GET", "/instances", Some("page=2"), None))
            .is_err()
    );
    assert!(
        spec.check_request(&entry("GET", "/instances", Some("per_page=x"), None))
            .is_err()
    );

    let mut answer = entry("GET", "/instances/i", None, None);
    answer.response_body = Some(json!({"instance": {"id": "i", "ram": "lots"}}));
    assert!(spec.check_response(&answer).is_err());
    answer.status = 404;
    answer.response_body = Some(json!({"message": "no"}));
    assert!(
        spec.check_response(&answer).is_err(),
        "a 4xx must carry Vultr's envelope"
    );
    answer.status = 418;
    answer.response_body = Some(json!({"error": "teapot", "status": 418}));
    assert!(
        spec.check_response(&answer).is_err(),
        "418 is not documented"
    );
}

//! Contract tests against the OpenAPI document Vercel publishes: every request the Vercel
//! adapter sends, through everything it does (key checks, in a team too, a deployment answered
//! `missing_files` and its uploads, a failed provision and its unwind, a cancelled one,
//! lookups, listings over pages, deprovisions), matches an operation of the document and
//! validates against its request schema; every answer the Vercel sandbox gives validates
//! against the response schema for its status.
//!
//! The spec is read at test time (see `spec::specs_dir`); every test here is named
//! `provider_spec_contract_vercel_*`, which `scripts/test` skips, saying so, when the specs
//! are absent.

mod spec;

use std::sync::Arc;

use serde_json::{Value, json};
use stackdock_core::{
    DockId, Marker, OperationId, OrgId, Provider, ResourceId, ResourceKind, SecretString,
};
use stackdock_docks::vercel::VercelAdapter;
use stackdock_docks::{
    Budget, CallScope, Ctx, DockAccess, DockAdapter, MemoryFiles, RateLimit, Tracked,
};
use stackdock_sandbox::vercel::TEAM_ID;
use stackdock_sandbox::{Fault, RecordedRequest, VercelSandbox, VercelSandboxConfig};

use spec::{BodylessErrors, Fix, Recording, Spec, Tally, Tolerance, config, entry, unwind};

const SPEC_FILE: &str = "vercel/openapi.subset.json";
const KEY: &str = "vercel-contract-key";

/// Vercel's error envelope, from its REST docs ("Errors"): the document gives none.
fn error_envelope() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "missing": {"type": "array", "items": {"type": "string"}},
                "limit": {
                    "type": "object",
                    "required": ["remaining", "reset", "resetMs", "total"],
                    "properties": {
                        "remaining": {"type": "integer"},
                        "reset": {"type": "integer"},
                        "resetMs": {"type": "integer"},
                        "total": {"type": "integer"},
                    },
                },
            },
        }},
    })
}

/// What Vercel's document gets wrong, in one place.
fn tolerances() -> Vec<Tolerance> {
    vec![
        Tolerance {
            status: 404,
            body: error_envelope(),
            reason: "a project or deployment that is not there is answered 404 (Vercel's \
                     REST docs) by operations whose documented statuses leave it out \
                     (GET and DELETE /v9/projects/{idOrName})",
        },
        Tolerance {
            status: 401,
            body: error_envelope(),
            reason: "a missing or wrong token is answered 401 everywhere, which some \
                     operations (GET /v13/deployments/{idOrUrl}) do not list",
        },
        Tolerance {
            status: 429,
            body: error_envelope(),
            reason: "Vercel limits every endpoint (its REST docs, \"Rate limits\"), while the \
                     document lists 429 for a few operations only",
        },
        Tolerance {
            status: 500,
            body: error_envelope(),
            reason: "an internal error may answer any operation",
        },
    ]
}

fn bodyless_errors() -> BodylessErrors {
    BodylessErrors {
        body: error_envelope(),
        reason: "the document lists its error statuses with a description only; Vercel's \
                 REST docs give the body as {\"error\": {\"code\", \"message\"}}, with \
                 `missing` on missing_files and `limit` on a 429",
    }
}

/// Removes every `oneOf: []` under `value`.
fn drop_empty_one_of(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map
                .get("oneOf")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                map.remove("oneOf");
            }
            map.values_mut().for_each(drop_empty_one_of);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_empty_one_of),
        _ => {}
    }
}

/// The 200 answers whose `oneOf` lists variants that overlap, read as `anyOf`.
fn overlapping_variants_any_of(doc: &mut Value) {
    for path in [
        "/v13/deployments/{idOrUrl}",
        "/v9/projects/{idOrName}/domains",
    ] {
        let pointer = format!(
            "/paths/{}/get/responses/200/content/application~1json/schema",
            path.replace('~', "~0").replace('/', "~1")
        );
        if let Some(Value::Object(schema)) = doc.pointer_mut(&pointer)
            && let Some(variants) = schema.remove("oneOf")
        {
            schema.insert("anyOf".into(), variants);
        }
    }
}

/// What Vercel's document gets wrong in its schemas, corrected once at load.
fn fixes() -> Vec<Fix> {
    vec![
        Fix {
            reason: "empty `oneOf: []` (an upstream defect the specs' README lists: a union \
                     the generator left without members) is dropped, leaving the property \
                     unconstrained instead of matching nothing",
            apply: drop_empty_one_of,
        },
        Fix {
            reason: "getDeployment answers `oneOf` the deployment with its private fields and \
                     the deployment with only its public ones (a subset of the first that \
                     allows more properties), and getProjectDomains `oneOf` two listings whose \
                     `pagination` schemas are the same: every answer matches both variants, so \
                     none could satisfy `oneOf`; both are read as `anyOf`",
            apply: overlapping_variants_any_of,
        },
    ]
}

fn load() -> Spec {
    let spec = Spec::load_fixed("Vercel", SPEC_FILE, tolerances(), fixes())
        .with_bodyless_errors(bodyless_errors());
    assert!(
        spec.operation("POST", "/v13/deployments").is_some(),
        "{SPEC_FILE} does not look like Vercel's spec"
    );
    spec
}

fn dock(sandbox: &VercelSandbox, key: &str, settings: Value) -> DockAccess {
    DockAccess {
        id: DockId::new(),
        org_id: OrgId::new(),
        provider: Provider::Vercel,
        name: "contract".into(),
        api_key: SecretString::new(key),
        base_url: Some(sandbox.api_url()),
        settings,
        budget: Arc::new(Budget::new(RateLimit::None)),
    }
}

fn ctx(files: &Arc<MemoryFiles>) -> Ctx {
    let resource_id = ResourceId::new();
    let scope = CallScope {
        org_id: OrgId::new(),
        dock_id: DockId::new(),
        resource_id: Some(resource_id),
        operation_id: Some(OperationId::new()),
        recorder: Arc::new(Recording),
    };
    Ctx::new(
        scope,
        Some(Marker::for_resource(&resource_id)),
        1,
        Vec::new(),
    )
    .with_files(files.clone())
}

fn manifest(files: &MemoryFiles, entries: &[(&str, &[u8])]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|(p, b)| json!({"path": p, "sha256": files.put(b), "size": b.len()}))
            .collect(),
    )
}

async fn sandbox() -> VercelSandbox {
    VercelSandbox::start(VercelSandboxConfig {
        tokens: vec![KEY.into()],
        queue_after: std::time::Duration::from_millis(20),
        build_after: std::time::Duration::from_millis(20),
        ..VercelSandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// The project a run tracks.
fn project_of(ctx: &Ctx) -> Tracked {
    let id = ctx
        .records()
        .iter()
        .find(|s| s.name == "project_created")
        .and_then(|s| s.output["project_id"].as_str())
        .expect("a project")
        .to_string();
    Tracked {
        kind: ResourceKind::WebService,
        provider_resource_id: id,
        marker: ctx.marker.clone(),
        last_seen: Value::Null,
    }
}

/// Everything the adapter does, against one sandbox; answers the sandbox's request log.
async fn adapter_at_work() -> Vec<RecordedRequest> {
    let sb = sandbox().await;
    let adapter = VercelAdapter::new(reqwest::Client::new());
    let files = Arc::new(MemoryFiles::default());
    let good = dock(&sb, KEY, Value::Null);
    let team = dock(&sb, KEY, json!({"team_id": TEAM_ID}));
    adapter
        .verify_credentials(&mut ctx(&files), &good)
        .await
        .expect("a good key");
    adapter
        .verify_credentials(&mut ctx(&files), &dock(&sb, "not-the-key", Value::Null))
        .await
        .expect_err("a bad key");
    adapter
        .verify_credentials(
            &mut ctx(&files),
            &dock(&sb, KEY, json!({"team_id": "team_stranger"})),
        )
        .await
        .expect_err("a team the key is not in");

    // A small site, in the team, to ready: refused for missing files, uploaded, made.
    let small = config(json!({"name": "small", "files": manifest(&files, &[
        ("index.html", b"<h1>hi</h1>"),
        ("assets/site.css", b"body{}"),
    ])}));
    let mut first = ctx(&files);
    adapter
        .provision_web_service(&mut first, &team, &small)
        .await
        .expect("provisioned");
    let site = project_of(&first);
    let started = std::time::Instant::now();
    loop {
        let seen = adapter
            .observe_many(
                &mut first,
                &team,
                ResourceKind::WebService,
                std::slice::from_ref(&site),
            )
            .await
            .expect("observed");
        if seen[0].as_ref().is_some_and(|o| o.ready) {
            break;
        }
        assert!(started.elapsed().as_secs() < 10, "never ready: {seen:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // A later run of the same operation reads what the first made.
    let mut again = Ctx::new(
        first.scope.clone(),
        first.marker.clone(),
        first.attempt + 1,
        first.records().to_vec(),
    )
    .with_files(files.clone());
    assert!(matches!(
        adapter
            .provision_web_service(&mut again, &team, &small)
            .await
            .expect("resumed"),
        stackdock_docks::Progress::Done(_)
    ));

    // A provision whose deployment Vercel refuses, unwound: the project goes.
    let one: &[(&str, &[u8])] = &[("x.html", b"x")];
    sb.inject(Fault::error(Some("POST"), "/v13/deployments", 400, 1));
    let mut refused = ctx(&files);
    adapter
        .provision_web_service(
            &mut refused,
            &good,
            &config(json!({"name": "refused", "files": manifest(&files, one)})),
        )
        .await
        .expect_err("the deployment was refused");
    unwind(&adapter, &mut refused, &good).await;
    // One cancelled while Vercel builds it: the deployment is cancelled, then the project goes.
    sb.hold_deployments_building(true);
    let mut cancelled = ctx(&files);
    adapter
        .provision_web_service(
            &mut cancelled,
            &good,
            &config(json!({"name": "cancelled", "files": manifest(&files, one)})),
        )
        .await
        .expect("asked");
    unwind(&adapter, &mut cancelled, &good).await;
    sb.hold_deployments_building(false);
    assert_eq!(sb.projects().len(), 1, "only the live project is left");

    // Lookups and listings over more than one page.
    for i in 0..=stackdock_docks::vercel::api::PAGE_LIMIT {
        sb.create_project_directly(&format!("by-hand-{i}"));
    }
    let mut look = ctx(&files);
    let marker = first.marker.clone().expect("a marker");
    assert!(
        adapter
            .find_by_marker(&mut look, &team, ResourceKind::WebService, &marker)
            .await
            .expect("found")
            .is_some()
    );
    let unknown = Marker::for_resource(&ResourceId::new());
    assert!(
        adapter
            .find_by_marker(&mut look, &good, ResourceKind::WebService, &unknown)
            .await
            .expect("looked up")
            .is_none()
    );
    adapter.discover(&mut look, &good).await.expect("found");

    // A domain of its own project, and one for the site's project; observed, found,
    // listed, deleted twice.
    let mut domain_run = ctx(&files);
    adapter
        .provision_domain(
            &mut domain_run,
            &good,
            &config(json!({"name": "www.example.com"})),
        )
        .await
        .expect("provisioned");
    let mut site_domain = ctx(&files);
    adapter
        .provision_domain(
            &mut site_domain,
            &team,
            &config(json!({"name": "shop.example.com", "project": site.provider_resource_id})),
        )
        .await
        .expect("provisioned");
    let domains: Vec<Tracked> = [&domain_run, &site_domain]
        .iter()
        .map(|run| {
            let id = run
                .records()
                .iter()
                .find(|s| s.name == "domain_added")
                .and_then(|s| s.output["id"].as_str())
                .expect("a domain")
                .to_string();
            Tracked {
                kind: ResourceKind::Domain,
                provider_resource_id: id,
                marker: run.marker.clone(),
                last_seen: Value::Null,
            }
        })
        .collect();
    adapter
        .observe_many(&mut look, &good, ResourceKind::Domain, &domains[..1])
        .await
        .expect("observed");
    let marker = domain_run.marker.clone().expect("a marker");
    assert!(
        adapter
            .find_by_marker(&mut look, &good, ResourceKind::Domain, &marker)
            .await
            .expect("found")
            .is_some()
    );
    adapter.discover(&mut look, &good).await.expect("found");
    for _ in 0..2 {
        adapter
            .deprovision(&mut look, &good, &domains[0])
            .await
            .expect("deleted");
        adapter
            .deprovision(&mut look, &team, &domains[1])
            .await
            .expect("deleted");
    }

    // Deleting, twice.
    for _ in 0..2 {
        adapter
            .deprovision(&mut look, &team, &site)
            .await
            .expect("deleted");
    }
    sb.requests()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_vercel_adapter_requests_and_sandbox_answers() {
    let spec = load();
    let log = adapter_at_work().await;
    spec.check_covering(
        &log,
        &[
            "getAuthUser",
            "createProject",
            "getProjects",
            "getProject",
            "deleteProject",
            "createDeployment",
            "getDeployment",
            "getDeployments",
            "cancelDeployment",
            "uploadFile",
            "addProjectDomain",
            "getProjectDomain",
            "getProjectDomains",
            "removeProjectDomain",
        ],
        &[200, 204, 400, 401, 403, 404],
    );
}

/// Answers the adapter never provokes, straight from the sandbox: a taken name, a bad name,
/// a bad digest, a body without files, a 429 with its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_vercel_error_answers() {
    let spec = load();
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", sb.api_url());
    let post = |path: &str, body: Value| http.post(url(path)).bearer_auth(KEY).json(&body).send();

    let made = post("/v11/projects", json!({"name": "taken"}))
        .await
        .unwrap();
    assert_eq!(made.status(), 200);
    let taken = post("/v11/projects", json!({"name": "taken"}))
        .await
        .unwrap();
    assert_eq!(taken.status(), 409);
    assert_eq!(
        taken.json::<Value>().await.unwrap()["error"]["code"],
        "conflict"
    );
    assert_eq!(
        post("/v11/projects", json!({"name": "Not A Name"}))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post("/v13/deployments", json!({"name": "taken", "files": []}))
            .await
            .unwrap()
            .status(),
        400
    );
    let missing = post(
        "/v13/deployments",
        json!({"name": "taken", "project": "taken", "files": [
            {"file": "a.txt", "sha": "a9993e364706816aba3e25717850c26c9cd0d89d", "size": 3}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["missing"],
        json!(["a9993e364706816aba3e25717850c26c9cd0d89d"])
    );
    let domains = "/v10/projects/taken/domains";
    assert_eq!(
        post(domains, json!({"name": "www.example.com"}))
            .await
            .unwrap()
            .status(),
        200
    );
    // The document: "If the domain already exists on the project, the request will fail
    // with a `400` status code"; 409 is for another project's.
    assert_eq!(
        post(domains, json!({"name": "www.example.com"}))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post(domains, json!({"name": "not a domain"}))
            .await
            .unwrap()
            .status(),
        400
    );
    // Files are named by their SHA-1: "abc"'s is this one.
    let upload = |body: &'static str| {
        http.post(url("/v2/files"))
            .bearer_auth(KEY)
            .header(
                "x-vercel-digest",
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            )
            .body(body)
            .send()
    };
    assert_eq!(upload("not abc").await.unwrap().status(), 400);
    // A project's first deployment must bring its project settings; the ones after it keep
    // them.
    assert_eq!(upload("abc").await.unwrap().status(), 200);
    let deployment = |settings: Option<Value>| {
        let mut body = json!({"name": "taken", "project": "taken", "files": [
            {"file": "a.txt", "sha": "a9993e364706816aba3e25717850c26c9cd0d89d", "size": 3}
        ]});
        if let Some(settings) = settings {
            body["projectSettings"] = settings;
        }
        post("/v13/deployments", body)
    };
    let bare = deployment(None).await.unwrap();
    assert_eq!(bare.status(), 400);
    let said = bare.json::<Value>().await.unwrap();
    assert!(
        said["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("projectSettings")),
        "{said}"
    );
    let first = deployment(Some(json!({"framework": null}))).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(deployment(None).await.unwrap().status(), 200);
    sb.inject(Fault::rate_limited(Some("GET"), "/v10/projects", 1, 1));
    let limited = http
        .get(url("/v10/projects?limit=1"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("x-ratelimit-reset"));
    let body: Value = limited.json().await.unwrap();
    assert!(body["error"]["limit"]["resetMs"].is_number(), "{body}");
    for path in ["/v9/projects/none", "/v13/deployments/dpl_none"] {
        let gone = http.get(url(path)).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(gone.status(), 404);
        assert_eq!(
            gone.json::<Value>().await.unwrap()["error"]["code"],
            "not_found"
        );
    }

    let log = sb.requests();
    let mut tally = Tally::default();
    spec.check_log(&log, &mut tally);
    spec::publish(&spec.report(&tally));
    assert_eq!(tally.responses, log.len());
}

/// The checks fail where they should: an unknown operation, a file without its digest, an
/// undocumented parameter, a state outside the enum, and an error without its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_vercel_checker_reports_mismatches() {
    let spec = load();
    assert!(
        spec.check_request(&entry("GET", "/v1/nothing", None, None))
            .is_err()
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            "/v13/deployments",
            None,
            Some(json!({"name": "n", "files": [{"file": "a", "sha": "abc", "size": "one"}]}))
        ))
        .is_err(),
        "a file's size is an integer"
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            "/v13/deployments",
            None,
            Some(json!({"name": "n", "project": "p", "target": "production",
                        "files": [{"file": "a", "sha": "abc", "size": 1}]}))
        ))
        .is_ok()
    );
    assert!(
        spec.check_request(&entry("GET", "/v10/projects", Some("colour=red"), None))
            .is_err()
    );
    let mut answer = entry("GET", "/v6/deployments", None, None);
    answer.response_body = Some(json!({"deployments": [], "pagination": {"count": 0}}));
    assert!(
        spec.check_response(&answer).is_err(),
        "next and prev are required"
    );
    answer.status = 400;
    answer.response_body = Some(json!({"error": {"message": "no code"}}));
    assert!(
        spec.check_response(&answer).is_err(),
        "the envelope needs a code"
    );
    answer.response_body = Some(json!({"error": {"code": "bad_request", "message": "m"}}));
    assert!(spec.check_response(&answer).is_ok());
}

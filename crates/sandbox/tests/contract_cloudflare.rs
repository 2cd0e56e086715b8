//! Contract tests against Cloudflare's published OpenAPI document: every request the
//! Cloudflare adapter sends, through everything it does (the token check, zones with records,
//! a refused zone, a failed provision and its unwind, Pages projects with direct-upload
//! deployments, a refused deployment and its unwind, lookups, listings, deprovisions), matches
//! an operation of the document and validates against its request schema; every answer the
//! Cloudflare sandbox gives validates against the response schema for its status. The calls
//! of a direct upload that the document leaves out are named in one place,
//! [`outside_the_document`].
//!
//! The spec is read at test time (see `spec::specs_dir`); every test here is named
//! `provider_spec_contract_cloudflare_*`, which `scripts/test` skips, saying so, when the
//! specs are absent.

mod spec;

use std::sync::Arc;

use serde_json::{Value, json};
use stackdock_core::{
    DockId, Marker, OperationId, OrgId, Provider, ResourceId, ResourceKind, SecretString,
};
use stackdock_docks::cloudflare::CloudflareAdapter;
use stackdock_docks::{
    Budget, CallScope, Ctx, DockAccess, DockAdapter, MemoryFiles, Progress, RateLimit, Tracked,
};
use stackdock_sandbox::cloudflare::ACCOUNT_ID;
use stackdock_sandbox::{CloudflareSandbox, CloudflareSandboxConfig, Fault, RecordedRequest};

use spec::{Fix, Recording, Spec, Tally, Tolerance, config, entry, unwind};

const SPEC_FILE: &str = "cloudflare/openapi.subset.json";
const KEY: &str = "cloudflare-contract-token";

/// What Cloudflare's document gets wrong, in one place.
fn fixes() -> Vec<Fix> {
    vec![
        Fix {
            reason: "the DNS records operations key their error responses `4xx`; OpenAPI's \
                     range keys are upper case (`4XX`, as the zones operations write them)",
            apply: |doc| {
                for item in doc["paths"]
                    .as_object_mut()
                    .into_iter()
                    .flat_map(|p| p.values_mut())
                {
                    for op in item
                        .as_object_mut()
                        .into_iter()
                        .flat_map(|o| o.values_mut())
                    {
                        if let Some(responses) = op["responses"].as_object_mut()
                            && let Some(range) = responses.remove("4xx")
                        {
                            responses.insert("4XX".into(), range);
                        }
                    }
                }
            },
        },
        Fix {
            reason: "the failure answers of the token check, the DNS records and the Pages \
                     operations combine (allOf) the success envelope (`success: true`, a typed `result`) \
                     with the failure one (`success: false`, `result: null`), which no body can \
                     satisfy; they are checked against the failure envelope alone",
            apply: |doc| {
                for item in doc["paths"]
                    .as_object_mut()
                    .into_iter()
                    .flat_map(|p| p.values_mut())
                {
                    for op in item
                        .as_object_mut()
                        .into_iter()
                        .flat_map(|o| o.values_mut())
                    {
                        let schema =
                            &mut op["responses"]["4XX"]["content"]["application/json"]["schema"];
                        let failure = schema["allOf"].as_array().and_then(|parts| {
                            parts.iter().find(|p| {
                                p["$ref"]
                                    .as_str()
                                    .is_some_and(|r| r.ends_with("api-response-common-failure"))
                            })
                        });
                        if let Some(failure) = failure.cloned() {
                            *schema = failure;
                        }
                    }
                }
            },
        },
        Fix {
            reason: "`GET /accounts/{account_id}/pages/projects` declares no query parameter, \
                     but Cloudflare pages the listing with `page` and `per_page` (the digest of \
                     the document names the gap); both are added, as integers from 1",
            apply: |doc| {
                let op = &mut doc["paths"]["/accounts/{account_id}/pages/projects"]["get"];
                let page = |name: &str| {
                    json!({"in": "query", "name": name,
                           "schema": {"type": "integer", "minimum": 1}})
                };
                if let Some(params) = op["parameters"].as_array_mut() {
                    params.push(page("page"));
                    params.push(page("per_page"));
                }
            },
        },
        Fix {
            reason: "`dns-records_dns-record` serves as both the create's body and the answer, \
                     and requires the read-only `id`, `proxiable`, `created_on` and \
                     `modified_on`, which OpenAPI exempts requests from; they are not required",
            apply: |doc| {
                let read_only = ["id", "proxiable", "created_on", "modified_on"];
                if let Some(required) =
                    doc["components"]["schemas"]["dns-records_dns-record"]["required"]
                        .as_array_mut()
                {
                    required.retain(|r| !read_only.iter().any(|n| r == n));
                }
            },
        },
    ]
}

/// Statuses the document does not list although Cloudflare answers them, checked against
/// the failure envelope.
fn tolerances() -> Vec<Tolerance> {
    vec![Tolerance {
        status: 500,
        body: json!({
            "type": "object",
            "required": ["success", "errors", "messages", "result"],
            "properties": {
                "success": {"enum": [false]},
                "errors": {"type": "array", "minItems": 1},
                "result": {"type": "null"},
            },
        }),
        reason: "the document lists no 5xx answer; Cloudflare's failures all carry the envelope",
    }]
}

/// The calls of a Pages direct upload that Cloudflare's document leaves out (it documents
/// only `branch` for a deployment's create): the project's upload token (`GET
/// .../pages/projects/{project_name}/upload-token`) and the asset calls made with it
/// (`/pages/assets/check-missing`, `/upload`, `/upsert-hashes`), which the adapter makes as
/// Cloudflare's own CLI, wrangler, does. They cannot be checked against the document; they are
/// set aside here, counted, and checked by the adapter's and the sandbox's own tests.
fn outside_the_document(req: &RecordedRequest) -> bool {
    req.path.starts_with("/client/v4/pages/assets/") || req.path.ends_with("/upload-token")
}

/// The log without the calls [`outside_the_document`]; how many were set aside is printed.
fn documented(log: Vec<RecordedRequest>) -> Vec<RecordedRequest> {
    let (outside, inside): (Vec<_>, Vec<_>) = log.into_iter().partition(outside_the_document);
    println!(
        "Cloudflare: {} calls of the direct upload set aside, outside the document",
        outside.len()
    );
    inside
}

fn load() -> Spec {
    // The document's server URL is `https://api.cloudflare.com/client/v4`.
    let spec = Spec::load_fixed("Cloudflare", SPEC_FILE, tolerances(), fixes())
        .with_base_path("/client/v4");
    assert!(
        spec.operation("POST", "/client/v4/zones/abc/dns_records")
            .is_some(),
        "{SPEC_FILE} does not look like Cloudflare's spec"
    );
    spec
}

fn dock(sandbox: &CloudflareSandbox, key: &str) -> DockAccess {
    DockAccess {
        id: DockId::new(),
        org_id: OrgId::new(),
        provider: Provider::Cloudflare,
        name: "contract".into(),
        api_key: SecretString::new(key),
        base_url: Some(sandbox.api_url()),
        settings: json!({ "account_id": ACCOUNT_ID }),
        budget: Arc::new(Budget::new(RateLimit::None)),
    }
}

fn ctx() -> Ctx {
    ctx_with(&Arc::new(MemoryFiles::default()))
}

fn ctx_with(files: &Arc<MemoryFiles>) -> Ctx {
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

async fn sandbox() -> CloudflareSandbox {
    CloudflareSandbox::start(CloudflareSandboxConfig {
        tokens: vec![KEY.into()],
        queue_after: std::time::Duration::from_millis(20),
        build_after: std::time::Duration::from_millis(20),
        ..CloudflareSandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn tracked(id: &str, ctx: &Ctx) -> Tracked {
    tracked_as(ResourceKind::Domain, id, ctx)
}

fn tracked_as(kind: ResourceKind, id: &str, ctx: &Ctx) -> Tracked {
    Tracked {
        kind,
        provider_resource_id: id.to_string(),
        marker: ctx.marker.clone(),
        last_seen: Value::Null,
    }
}

/// Everything the adapter does, on one sandbox; the sandbox's log of it.
async fn adapter_at_work() -> Vec<RecordedRequest> {
    let sb = sandbox().await;
    let adapter = CloudflareAdapter::new(reqwest::Client::new());
    let good = dock(&sb, KEY);

    // Key checks: a good token, and a refused one.
    adapter
        .verify_credentials(&mut ctx(), &good)
        .await
        .expect("a good token");
    adapter
        .verify_credentials(&mut ctx(), &dock(&sb, "wrong"))
        .await
        .expect_err("refused");

    // A zone with records.
    let mut zone_run = ctx();
    let Progress::Done(Some(zone)) = adapter
        .provision_domain(
            &mut zone_run,
            &good,
            &config(json!({"name": "example.com", "records": [
                {"type": "A", "name": "www", "value": "192.0.2.1", "ttl": 300, "proxied": true},
                {"type": "MX", "value": "mail.example.com", "priority": 10},
                {"type": "TXT", "name": "_dmarc", "value": "v=DMARC1; p=none"},
            ]})),
        )
        .await
        .expect("provisioned")
    else {
        panic!("a zone is usable once made");
    };
    assert_eq!(zone.status.as_deref(), Some("pending"));

    // A zone that existed before is refused, not adopted.
    sb.create_zone_directly("by-hand.example.net");
    adapter
        .provision_domain(
            &mut ctx(),
            &good,
            &config(json!({"name": "by-hand.example.net"})),
        )
        .await
        .expect_err("refused");

    // A provision failing on a record Cloudflare refuses, unwound.
    // The first POST under /zones/ is the marker record's; the second, the A record's.
    sb.inject(
        Fault::error_with(
            Some("POST"),
            "/client/v4/zones/",
            400,
            "1004",
            "DNS Validation Error",
            1,
        )
        .after(1),
    );
    let mut failed = ctx();
    adapter
        .provision_domain(
            &mut failed,
            &good,
            &config(json!({"name": "example.org", "records": [
                {"type": "A", "value": "192.0.2.2"},
            ]})),
        )
        .await
        .expect_err("the record is refused");
    unwind(&adapter, &mut failed, &good).await;

    // Lookups and listings.
    let mut look = ctx();
    let marker = zone_run.marker.clone().expect("a marker");
    assert!(
        adapter
            .find_by_marker(&mut look, &good, ResourceKind::Domain, &marker)
            .await
            .expect("found")
            .is_some()
    );
    let target = tracked(&zone.provider_resource_id, &zone_run);
    adapter
        .observe_many(
            &mut look,
            &good,
            ResourceKind::Domain,
            std::slice::from_ref(&target),
        )
        .await
        .expect("observed");
    adapter.discover(&mut look, &good).await.expect("found");

    // Deleting, twice.
    for _ in 0..2 {
        adapter
            .deprovision(&mut look, &good, &target)
            .await
            .expect("deleted");
    }
    let names: Vec<Value> = sb.zones().iter().map(|z| z["name"].clone()).collect();
    assert_eq!(
        names,
        vec![json!("by-hand.example.net")],
        "only the user's zone is left"
    );

    pages_at_work(&adapter, &sb, &good).await;
    sb.requests()
}

/// Web services: a site to ready, a resumed run, a deployment Cloudflare refuses and the
/// unwind, a name taken by the user, lookups, listings over pages, deletes.
async fn pages_at_work(adapter: &CloudflareAdapter, sb: &CloudflareSandbox, good: &DockAccess) {
    let files = Arc::new(MemoryFiles::default());
    let site = config(json!({"name": "site", "files": [
        {"path": "index.html", "sha256": files.put(b"<h1>hi</h1>"), "size": 11},
        {"path": "css/site.css", "sha256": files.put(b"body{}"), "size": 6},
    ]}));
    let mut first = ctx_with(&files);
    adapter
        .provision_web_service(&mut first, good, &site)
        .await
        .expect("provisioned");
    let name = first.marker.clone().expect("a marker").as_str().to_string();
    let project = tracked_as(ResourceKind::WebService, &name, &first);
    let started = std::time::Instant::now();
    loop {
        let seen = adapter
            .observe_many(
                &mut first,
                good,
                ResourceKind::WebService,
                std::slice::from_ref(&project),
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
        2,
        first.records().to_vec(),
    )
    .with_files(files.clone());
    assert!(matches!(
        adapter
            .provision_web_service(&mut again, good, &site)
            .await
            .expect("resumed"),
        Progress::Done(_)
    ));

    // A deployment Cloudflare refuses, unwound: the project goes.
    sb.inject(Fault::error_with(
        Some("POST"),
        &format!("/client/v4/accounts/{ACCOUNT_ID}/pages/projects/"),
        400,
        "8000000",
        "An unknown error occurred",
        1,
    ));
    let mut refused = ctx_with(&files);
    adapter
        .provision_web_service(&mut refused, good, &site)
        .await
        .expect_err("refused");
    unwind(adapter, &mut refused, good).await;

    // A name the user holds is refused after one read.
    let mut taken = ctx_with(&files);
    sb.create_project_directly(taken.marker.as_ref().expect("a marker").as_str());
    adapter
        .provision_web_service(&mut taken, good, &site)
        .await
        .expect_err("refused");

    // Lookups and listings, over more than a page.
    for i in 0..stackdock_docks::cloudflare::api::PROJECTS_PER_PAGE {
        sb.create_project_directly(&format!("by-hand-{i}"));
    }
    let mut look = ctx_with(&files);
    let marker = first.marker.clone().expect("a marker");
    assert!(
        adapter
            .find_by_marker(&mut look, good, ResourceKind::WebService, &marker)
            .await
            .expect("found")
            .is_some()
    );
    adapter.discover(&mut look, good).await.expect("found");

    // Deleting, twice.
    for _ in 0..2 {
        adapter
            .deprovision(&mut look, good, &project)
            .await
            .expect("deleted");
    }
    assert!(
        sb.pages_projects().iter().all(|p| p["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("by-hand-")
                || n == taken.marker.as_ref().expect("a marker").as_str())),
        "only the user's projects are left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_cloudflare_adapter_requests_and_sandbox_answers() {
    let spec = load();
    let log = adapter_at_work().await;
    assert!(
        log.iter().filter(|r| outside_the_document(r)).count() >= 4,
        "the direct upload's own calls were made"
    );
    let log = documented(log);
    spec.check_covering(
        &log,
        &[
            "pages-project-create-project",
            "pages-project-get-project",
            "pages-project-get-projects",
            "pages-project-delete-project",
            "pages-deployment-create-deployment",
            "pages-deployment-get-deployment-info",
            "user-api-tokens-verify-token",
            "zones-post",
            "zones-get",
            "zones-0-get",
            "zones-0-delete",
            "dns-records-for-a-zone-list-dns-records",
            "dns-records-for-a-zone-create-dns-record",
            "dns-records-for-a-zone-delete-dns-record",
        ],
        &[200, 400, 401, 404],
    );
}

/// Answers the adapter never provokes, straight from the sandbox: a taken name, a bad
/// body, another account, paging out of bounds, unknown ids, a refused token, a lost answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_cloudflare_error_answers() {
    let spec = load();
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", sb.api_url());
    let post = |path: &str, body: Value| http.post(url(path)).bearer_auth(KEY).json(&body).send();
    let account = json!({ "id": ACCOUNT_ID });

    let zone = post("/zones", json!({"name": "taken.com", "account": account}))
        .await
        .unwrap();
    assert_eq!(zone.status(), 200);
    let zone: Value = zone.json().await.unwrap();
    assert_eq!(zone["success"], true);
    let taken = post("/zones", json!({"name": "taken.com", "account": account}))
        .await
        .unwrap();
    assert_eq!(taken.status(), 400);
    let taken: Value = taken.json().await.unwrap();
    assert_eq!(taken["success"], false);
    assert_eq!(taken["errors"][0]["code"], 1061);
    assert_eq!(taken["result"], Value::Null);
    for (body, status) in [
        (json!({"name": "no-dot", "account": account}), 400),
        (json!({"name": "other.com", "account": {"id": "0123"}}), 403),
    ] {
        assert_eq!(post("/zones", body).await.unwrap().status(), status);
    }
    let records = format!(
        "/zones/{}/dns_records",
        zone["result"]["id"].as_str().unwrap()
    );
    for body in [
        json!({"type": "MX", "name": "@", "content": "mail.taken.com"}),
        json!({"type": "TXT", "name": "x", "content": "y", "proxied": true}),
        json!({"type": "A", "name": "x", "content": "192.0.2.1", "ttl": 5}),
    ] {
        assert_eq!(post(&records, body).await.unwrap().status(), 400);
    }
    let get = |path: &str| http.get(url(path)).bearer_auth(KEY).send();
    assert_eq!(get("/zones?per_page=4").await.unwrap().status(), 400);
    assert_eq!(get("/zones?per_page=51").await.unwrap().status(), 400);
    let paged: Value = get("/zones?page=2&per_page=5")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paged["result"], json!([]));
    assert_eq!(paged["result_info"]["total_count"], 1);
    for path in ["/zones/none", "/zones/none/dns_records"] {
        let gone = get(path).await.unwrap();
        assert_eq!(gone.status(), 404);
        let gone: Value = gone.json().await.unwrap();
        assert_eq!(gone["errors"][0]["code"], 7003, "{gone}");
    }
    let refused = http
        .get(url("/user/tokens/verify"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["errors"][0]["code"],
        10000
    );
    // An answer lost after the work was done still carries the envelope.
    sb.inject(Fault::lose_response(Some("GET"), "/client/v4/user", 1));
    let lost = get("/user/tokens/verify").await.unwrap();
    assert_eq!(lost.status(), 500);
    assert_eq!(lost.json::<Value>().await.unwrap()["success"], false);

    // Pages: a name Cloudflare does not take, a name taken, an unknown project, and
    // deployments whose manifest is missing or names contents never uploaded.
    let projects = format!("/accounts/{ACCOUNT_ID}/pages/projects");
    let made = post(
        &projects,
        json!({"name": "site", "production_branch": "main"}),
    )
    .await
    .unwrap();
    assert_eq!(made.status(), 200);
    for (body, status, code) in [
        (json!({"name": "Not A Name"}), 400, 8000003),
        (json!({"name": "site"}), 409, 8000002),
    ] {
        let refused = post(&projects, body).await.unwrap();
        assert_eq!(refused.status(), status);
        assert_eq!(
            refused.json::<Value>().await.unwrap()["errors"][0]["code"],
            code
        );
    }
    let unknown = get(&format!("{projects}/none")).await.unwrap();
    assert_eq!(unknown.status(), 404);
    let deploy = |form: reqwest::multipart::Form| {
        http.post(url(&format!("{projects}/site/deployments")))
            .bearer_auth(KEY)
            .multipart(form)
            .send()
    };
    let never = r#"{"/index.html": "0123456789abcdef0123456789abcdef"}"#;
    for form in [
        reqwest::multipart::Form::new().text("branch", "main"),
        reqwest::multipart::Form::new().text("manifest", never),
    ] {
        let refused = deploy(form).await.unwrap();
        assert_eq!(refused.status(), 400);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["success"], false, "{body}");
    }

    // The requests are wrong on purpose: only the answers are checked.
    let log = sb.requests();
    let mismatches: Vec<String> = log
        .iter()
        .filter_map(|req| spec.check_response(req).err())
        .flatten()
        .collect();
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(log.len() >= 14, "every answer above was logged");
}

/// A 429 carries the envelope and `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_cloudflare_rate_limited_answers() {
    let spec = load();
    let sb = CloudflareSandbox::start(CloudflareSandboxConfig {
        tokens: vec![KEY.into()],
        rate_limit: Some(1),
        retry_after: std::time::Duration::from_secs(7),
        ..CloudflareSandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    let http = reqwest::Client::new();
    let verify = format!("{}/user/tokens/verify", sb.api_url());
    assert_eq!(
        http.get(&verify)
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let limited = http.get(&verify).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"][0]["code"], 1015);

    let log = sb.requests();
    let mut tally = Tally::default();
    spec.check_log(&log, &mut tally);
    assert_eq!(tally.responses, log.len());
}

/// The checks fail where they should: an unknown operation, a body missing what is
/// required, a `per_page` out of bounds, and answers of the wrong shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_cloudflare_checker_reports_mismatches() {
    let spec = load();
    assert!(
        spec.check_request(&entry("GET", "/client/v4/nothing", None, None))
            .is_err()
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            "/client/v4/zones",
            None,
            Some(json!({"name": "a.com"}))
        ))
        .is_err(),
        "account is required"
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            "/client/v4/zones",
            None,
            Some(json!({"name": "a.com", "account": {"id": ACCOUNT_ID}}))
        ))
        .is_ok()
    );
    assert!(
        spec.check_request(&entry(
            "GET",
            "/client/v4/zones",
            Some("per_page=100"),
            None
        ))
        .is_err(),
        "per_page is at most 50"
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            "/client/v4/zones/z/dns_records",
            None,
            Some(json!({"type": "MX", "name": "a.com", "content": "mx.a.com"}))
        ))
        .is_err(),
        "an MX record needs its priority"
    );

    // A deployment is a form: its fields are checked, and it must have one.
    let deployments = format!("/client/v4/accounts/{ACCOUNT_ID}/pages/projects/p/deployments");
    assert!(
        spec.check_request(&entry(
            "POST",
            &deployments,
            None,
            Some(json!({"manifest": "{}", "branch": "main"}))
        ))
        .is_ok()
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            &deployments,
            None,
            Some(json!({"branch": 5}))
        ))
        .is_err(),
        "a branch is text"
    );
    assert!(
        spec.check_request(&entry("POST", &deployments, None, None))
            .is_err(),
        "a deployment has a form"
    );
    let projects = format!("/client/v4/accounts/{ACCOUNT_ID}/pages/projects");
    assert!(
        spec.check_request(&entry("GET", &projects, Some("page=0"), None))
            .is_err(),
        "pages count from 1"
    );
    assert!(
        spec.check_request(&entry("GET", &projects, Some("sort=name"), None))
            .is_err(),
        "only the paging parameters are added"
    );

    let mut answer = entry("GET", "/client/v4/zones/z", None, None);
    answer.response_body = Some(json!({"success": true, "errors": [], "messages": [],
                                       "result": {"id": 5}}));
    assert!(spec.check_response(&answer).is_err(), "ids are strings");
    // The records operations' failure envelope says `success: false`; the zones' does not.
    answer = entry("GET", "/client/v4/zones/z/dns_records", None, None);
    answer.status = 404;
    answer.response_body = Some(json!({"success": true, "errors": [], "messages": [],
                                       "result": null}));
    assert!(spec.check_response(&answer).is_err(), "a failure says so");
    answer.response_body = Some(json!({"success": false, "messages": [], "result": null}));
    assert!(
        spec.check_response(&answer).is_err(),
        "a failure has its errors"
    );
}

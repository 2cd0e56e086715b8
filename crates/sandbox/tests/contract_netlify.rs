//! Contract tests against Netlify's published Swagger 2.0 document: every request the Netlify
//! adapter sends, through everything it does (key checks, small and large deploys, a failed
//! provision and its unwind, DNS zones with records, lookups, listings, deprovisions), matches
//! an operation of the document and validates against its request schema; every answer the
//! Netlify sandbox gives validates against the response schema for its status.
//!
//! The spec is read at test time (see `spec::specs_dir`); every test here is named
//! `provider_spec_contract_netlify_*`, which `scripts/test` skips, saying so, when the specs
//! are absent.

mod spec;

use std::sync::Arc;

use serde_json::{Value, json};
use stackdock_core::{
    DockId, Marker, OperationId, OrgId, Provider, ResourceId, ResourceKind, SecretString,
};
use stackdock_docks::netlify::{ASYNC_ABOVE, NetlifyAdapter};
use stackdock_docks::{
    Budget, CallScope, Ctx, DockAccess, DockAdapter, MemoryFiles, Progress, RateLimit, Tracked,
    adapter::provision,
};
use stackdock_sandbox::{Fault, NetlifySandbox, NetlifySandboxConfig, RecordedRequest};

use spec::{GreedyTail, Recording, Spec, Tally, config, entry, unwind};

const SPEC_FILE: &str = "netlify/swagger.yml";
const KEY: &str = "netlify-contract-key";

/// What Netlify's document gets wrong, in one place. Every status the sandbox answers is
/// covered by the document's `default` error response, so no status needs a tolerance.
fn greedy_tails() -> Vec<GreedyTail> {
    vec![GreedyTail {
        template: "/deploys/{deploy_id}/files/{path}",
        reason: "uploadDeployFile's {path} is a file's path within the site, which Netlify's \
                 own clients send with its / between directories",
    }]
}

fn load() -> Spec {
    let spec = Spec::load("Netlify", SPEC_FILE, Vec::new()).with_greedy_tails(greedy_tails());
    assert!(
        spec.operation("POST", "/api/v1/sites/abc/deploys")
            .is_some(),
        "{SPEC_FILE} does not look like Netlify's spec"
    );
    spec
}

fn dock(sandbox: &NetlifySandbox, key: &str) -> DockAccess {
    DockAccess {
        id: DockId::new(),
        org_id: OrgId::new(),
        provider: Provider::Netlify,
        name: "contract".into(),
        api_key: SecretString::new(key),
        base_url: Some(sandbox.api_url()),
        settings: Value::Null,
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

/// A later run of the operation of `first`, with its steps.
fn resumed(first: &Ctx, files: &Arc<MemoryFiles>) -> Ctx {
    Ctx::new(
        first.scope.clone(),
        first.marker.clone(),
        first.attempt + 1,
        first.records().to_vec(),
    )
    .with_files(files.clone())
}

fn manifest(files: &MemoryFiles, entries: &[(String, Vec<u8>)]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|(p, b)| json!({"path": p, "sha256": files.put(b), "size": b.len()}))
            .collect(),
    )
}

async fn sandbox() -> NetlifySandbox {
    NetlifySandbox::start(NetlifySandboxConfig {
        tokens: vec![KEY.into()],
        prepare_after: std::time::Duration::from_millis(20),
        process_after: std::time::Duration::from_millis(20),
        ..NetlifySandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn tracked(kind: ResourceKind, id: &str, ctx: &Ctx) -> Tracked {
    Tracked {
        kind,
        provider_resource_id: id.to_string(),
        marker: ctx.marker.clone(),
        last_seen: Value::Null,
    }
}

/// Observes `target` until `done` holds.
async fn until(
    adapter: &NetlifyAdapter,
    ctx: &mut Ctx,
    dock: &DockAccess,
    target: &Tracked,
    done: impl Fn(&stackdock_docks::Observed) -> bool,
) {
    let started = std::time::Instant::now();
    loop {
        let seen = adapter
            .observe_many(ctx, dock, target.kind, std::slice::from_ref(target))
            .await
            .expect("observed");
        if seen[0].as_ref().is_some_and(&done) {
            return;
        }
        assert!(started.elapsed().as_secs() < 10, "never came: {seen:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The site a run tracks.
fn site_of(ctx: &Ctx) -> String {
    ctx.records()
        .iter()
        .find(|s| s.name == "site_created")
        .and_then(|s| s.output["site_id"].as_str())
        .expect("a site")
        .to_string()
}

/// Everything the adapter does, against one sandbox; answers the sandbox's request log.
async fn adapter_at_work() -> Vec<RecordedRequest> {
    let sb = sandbox().await;
    let adapter = NetlifyAdapter::new(reqwest::Client::new());
    let files = Arc::new(MemoryFiles::default());
    let good = dock(&sb, KEY);
    let bad = dock(&sb, "not-the-key");
    adapter
        .verify_credentials(&mut ctx(&files), &good)
        .await
        .expect("a good key");
    adapter
        .verify_credentials(&mut ctx(&files), &bad)
        .await
        .expect_err("a bad key");

    // A small site, to ready.
    let small = vec![
        ("index.html".to_string(), b"<h1>hi</h1>".to_vec()),
        ("assets/site.css".to_string(), b"body{}".to_vec()),
    ];
    let mut first = ctx(&files);
    let progress = adapter
        .provision_web_service(
            &mut first,
            &good,
            &config(json!({"name": "small", "files": manifest(&files, &small)})),
        )
        .await
        .expect("provisioned");
    assert!(matches!(progress, Progress::Pending { .. }));
    let site = tracked(ResourceKind::WebService, &site_of(&first), &first);
    until(&adapter, &mut first, &good, &site, |o| o.ready).await;

    // A large one, prepared in the background, then uploaded by a resumed run.
    let large: Vec<(String, Vec<u8>)> = (0..=ASYNC_ABOVE)
        .map(|i| (format!("p/{i}.html"), format!("{i}").into_bytes()))
        .collect();
    let large_config = config(json!({"name": "large", "files": manifest(&files, &large)}));
    let mut big = ctx(&files);
    provision(
        &adapter,
        ResourceKind::WebService,
        &mut big,
        &good,
        &large_config,
    )
    .await
    .expect("asked");
    let big_site = tracked(ResourceKind::WebService, &site_of(&big), &big);
    until(&adapter, &mut big, &good, &big_site, |o| {
        o.status.as_deref() == Some("prepared")
    })
    .await;
    let mut big_again = resumed(&big, &files);
    adapter
        .provision_web_service(&mut big_again, &good, &large_config)
        .await
        .expect("uploaded");

    // A provision whose deploy Netlify refuses, unwound: the site goes.
    let mut refused = ctx(&files);
    sb.inject(Fault::error(Some("POST"), "/api/v1/sites/", 422, 1));
    let one = vec![("x.html".to_string(), b"x".to_vec())];
    adapter
        .provision_web_service(
            &mut refused,
            &good,
            &config(json!({"name": "refused", "files": manifest(&files, &one)})),
        )
        .await
        .expect_err("the deploy was refused");
    unwind(&adapter, &mut refused, &good).await;
    // One cancelled while Netlify processes it: the deploy is cancelled, then the site goes.
    sb.hold_deploys_processing(true);
    let mut cancelled = ctx(&files);
    adapter
        .provision_web_service(
            &mut cancelled,
            &good,
            &config(json!({"name": "cancelled", "files": manifest(&files, &one)})),
        )
        .await
        .expect("asked");
    unwind(&adapter, &mut cancelled, &good).await;
    sb.hold_deploys_processing(false);
    assert_eq!(sb.sites().len(), 2, "only the two live sites are left");

    // A zone with records, and one unwound.
    let mut zone_run = ctx(&files);
    let Progress::Done(Some(zone)) = adapter
        .provision_domain(
            &mut zone_run,
            &good,
            &config(json!({"name": "example.com", "records": [
                {"type": "A", "name": "www", "value": "192.0.2.1", "ttl": 300},
                {"type": "MX", "value": "mail.example.com", "priority": 10},
                {"type": "CAA", "value": "letsencrypt.org", "flag": 0, "tag": "issue"},
            ]})),
        )
        .await
        .expect("provisioned")
    else {
        panic!("a zone is ready once made");
    };
    let mut gone_zone = ctx(&files);
    adapter
        .provision_domain(
            &mut gone_zone,
            &good,
            &config(json!({"name": "example.org"})),
        )
        .await
        .expect("provisioned");
    unwind(&adapter, &mut gone_zone, &good).await;

    // Lookups and listings.
    sb.create_site_directly("by-hand");
    sb.create_zone_directly("by-hand.example.net");
    let mut look = ctx(&files);
    for (kind, run) in [
        (ResourceKind::WebService, &first),
        (ResourceKind::Domain, &zone_run),
    ] {
        let marker = run.marker.clone().expect("a marker");
        assert!(
            adapter
                .find_by_marker(&mut look, &good, kind, &marker)
                .await
                .expect("found")
                .is_some()
        );
        let unknown = Marker::for_resource(&ResourceId::new());
        assert!(
            adapter
                .find_by_marker(&mut look, &good, kind, &unknown)
                .await
                .expect("looked up")
                .is_none()
        );
    }
    let zone_target = tracked(ResourceKind::Domain, &zone.provider_resource_id, &zone_run);
    adapter
        .observe_many(
            &mut look,
            &good,
            ResourceKind::Domain,
            std::slice::from_ref(&zone_target),
        )
        .await
        .expect("observed");
    adapter.discover(&mut look, &good).await.expect("found");

    // Deleting, twice.
    for target in [&site, &big_site, &zone_target] {
        for _ in 0..2 {
            adapter
                .deprovision(&mut look, &good, target)
                .await
                .expect("deleted");
        }
    }
    assert!(sb.zones().iter().all(|z| z["name"] != "example.com"));
    sb.requests()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_netlify_adapter_requests_and_sandbox_answers() {
    let spec = load();
    let log = adapter_at_work().await;
    spec.check_covering(
        &log,
        &[
            "getCurrentUser",
            "createSite",
            "listSites",
            "getSite",
            "deleteSite",
            "createSiteDeploy",
            "listSiteDeploys",
            "getDeploy",
            "uploadDeployFile",
            "cancelSiteDeploy",
            "createDnsZone",
            "getDnsZones",
            "getDnsZone",
            "deleteDnsZone",
            "getDnsRecords",
            "createDnsRecord",
            "deleteDnsRecord",
        ],
        &[200, 201, 204, 401, 404, 422],
    );
}

/// Answers the adapter never provokes, straight from the sandbox: a taken name, a bad body,
/// an upload that does not match its digest, paging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_netlify_error_answers() {
    let spec = load();
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", sb.api_url());
    let post = |path: &str, body: Value| http.post(url(path)).bearer_auth(KEY).json(&body).send();

    let site = post("/sites", json!({"name": "taken"})).await.unwrap();
    assert_eq!(site.status(), 201);
    let site: Value = site.json().await.unwrap();
    assert_eq!(
        post("/sites", json!({"name": "taken"}))
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        post("/sites", json!({"name": "Not A Name"}))
            .await
            .unwrap()
            .status(),
        422
    );
    let deploys = format!("/sites/{}/deploys", site["id"].as_str().unwrap());
    assert_eq!(
        post(&deploys, json!({"files": {"/a": "not-a-sha"}}))
            .await
            .unwrap()
            .status(),
        422
    );
    let deploy: Value = post(
        &deploys,
        json!({"files": {"/a.txt": "a9993e364706816aba3e25717850c26c9cd0d89d"}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let wrong = http
        .put(url(&format!(
            "/deploys/{}/files/a.txt",
            deploy["id"].as_str().unwrap()
        )))
        .bearer_auth(KEY)
        .body("not abc")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 422);
    let paged = http
        .get(url("/sites?page=2&per_page=1&filter=all"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(paged.status(), 200);
    assert_eq!(paged.json::<Value>().await.unwrap(), json!([]));
    for path in ["/sites/none", "/deploys/none", "/dns_zones/none"] {
        let gone = http.get(url(path)).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(gone.status(), 404);
        assert_eq!(
            gone.json::<Value>().await.unwrap(),
            json!({"code": 404, "message": "Not Found"})
        );
    }

    let log = sb.requests();
    let mut tally = Tally::default();
    spec.check_log(&log, &mut tally);
    spec::publish(&spec.report(&tally));
    assert_eq!(tally.responses, log.len());
}

/// The checks fail where they should: an unknown operation, a body of the wrong type, an
/// undocumented parameter, a value outside its enum, and an answer of the wrong shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_netlify_checker_reports_mismatches() {
    let spec = load();
    let deploys = "/api/v1/sites/s1/deploys";
    assert!(
        spec.check_request(&entry("GET", "/api/v1/nothing", None, None))
            .is_err()
    );
    assert!(
        spec.check_request(&entry("POST", deploys, None, Some(json!({"files": []}))))
            .is_err(),
        "files is an object"
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            deploys,
            None,
            Some(json!({"files": {}, "async": true}))
        ))
        .is_ok()
    );
    assert!(
        spec.check_request(&entry("POST", deploys, None, None))
            .is_err(),
        "body required"
    );
    assert!(
        spec.check_request(&entry("GET", "/api/v1/sites", Some("colour=red"), None))
            .is_err()
    );
    assert!(
        spec.check_request(&entry("GET", "/api/v1/sites", Some("filter=mine"), None))
            .is_err(),
        "not in the enum"
    );
    assert!(
        spec.check_request(&entry("GET", "/api/v1/sites", Some("page=two"), None))
            .is_err(),
        "page is an integer"
    );
    assert!(
        spec.check_request(&entry(
            "PUT",
            "/api/v1/deploys/d1/files/a/b/c.css",
            Some("size=3"),
            None
        ))
        .is_ok(),
        "a file's path keeps its slashes"
    );

    let mut answer = entry("GET", "/api/v1/deploys/d1", None, None);
    answer.response_body = Some(json!({"id": "d1", "required": "abc"}));
    assert!(spec.check_response(&answer).is_err());
    answer.response_body = Some(json!({"id": "d1", "required": ["abc"]}));
    assert!(spec.check_response(&answer).is_ok());
    answer.status = 404;
    answer.response_body = Some(json!({"code": 404}));
    assert!(spec.check_response(&answer).is_err(), "message is required");
}

//! Contract tests against Turso's published OpenAPI document: every request the Turso
//! adapter sends, through everything it does (key checks, provisions with and without a
//! group, a refused token and the unwind after it, lookups, listings, deprovisions), matches
//! an operation of the document and validates against its request schema; every answer the
//! Turso sandbox gives validates against the response schema for its status.
//!
//! The spec is read at test time (see `spec::specs_dir`); every test here is named
//! `provider_spec_contract_turso_*`, which `scripts/test` skips, saying so, when the specs
//! are absent.

mod spec;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use stackdock_core::{
    ApiCall, DockId, Keyring, Marker, MasterKey, OperationId, OrgId, Provider, ResourceId,
    ResourceKind, SealedSecret, SecretString, Step,
};
use stackdock_docks::turso::TursoAdapter;
use stackdock_docks::{
    Budget, CallScope, Ctx, DockAccess, DockAdapter, DockError, Progress, RateLimit, Recorder,
    Tracked,
};
use stackdock_sandbox::{Fault, RecordedRequest, TursoSandbox, TursoSandboxConfig};

use spec::{Spec, Tally, Tolerance, config, entry, unwind};

const SPEC_FILE: &str = "turso/openapi.json";
const KEY: &str = "turso-contract-key";
const ORG: &str = "acme";

/// What Turso's document leaves out, each answer the sandbox gives anyway checked against
/// Turso's error envelope (`{"error": "<message>"}`, the shape of every documented error).
/// The only one: the document declares `bearerAuth` but documents no 401 for any operation
/// (and has no top-level `security`), although every call needs the key.
fn tolerances() -> Vec<Tolerance> {
    vec![Tolerance {
        status: 401,
        body: json!({"type": "object", "properties": {"error": {"type": "string"}},
                     "required": ["error"]}),
        reason: "the spec declares bearerAuth but documents no 401 response on any operation",
    }]
}

fn load() -> Spec {
    let spec = Spec::load("Turso", SPEC_FILE, tolerances());
    assert!(
        spec.operation("POST", &format!("/v1/organizations/{ORG}/databases"))
            .is_some(),
        "{SPEC_FILE} does not look like Turso's spec"
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

fn dock(sandbox: &TursoSandbox, key: &str) -> DockAccess {
    DockAccess {
        id: DockId::new(),
        org_id: OrgId::new(),
        provider: Provider::Turso,
        name: "contract".into(),
        api_key: SecretString::new(key),
        base_url: Some(sandbox.base_url()),
        settings: json!({ "organization": ORG }),
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
    Ctx::new(
        scope,
        Some(Marker::for_resource(&resource_id)),
        1,
        Vec::new(),
    )
}

async fn sandbox() -> TursoSandbox {
    TursoSandbox::start(TursoSandboxConfig {
        tokens: vec![KEY.into()],
        organization: ORG.into(),
        ..TursoSandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// Everything the adapter does, against one sandbox; answers the sandbox's request log.
async fn adapter_at_work() -> Vec<RecordedRequest> {
    let sb = sandbox().await;
    let adapter = TursoAdapter::new(reqwest::Client::new());
    let good = dock(&sb, KEY);
    let bad = dock(&sb, "not-the-key");

    adapter
        .verify_credentials(&mut ctx(&good), &good)
        .await
        .expect("a good key");
    adapter
        .verify_credentials(&mut ctx(&bad), &bad)
        .await
        .expect_err("a bad key");

    // A provision with nothing but a name: the group is made.
    let mut first = ctx(&good);
    let Progress::Done(Some(made)) = adapter
        .provision_database(&mut first, &good, &config(json!({"name": "orders"})))
        .await
        .expect("provisioned")
    else {
        panic!("a database is ready once made");
    };
    // One in a group that exists, with every field set.
    let mut second = ctx(&good);
    adapter
        .provision_database(
            &mut second,
            &good,
            &config(json!({"name": "audit", "group": "default",
                           "location": "aws-eu-west-1", "size_limit": "256mb"})),
        )
        .await
        .expect("provisioned");

    // A provision whose token Turso refuses, and its unwind.
    let mut refused = ctx(&good);
    let name = refused.marker().expect("a marker").to_string();
    sb.inject(Fault::error(
        Some("POST"),
        &format!("/v1/organizations/{ORG}/databases/{name}/auth/tokens"),
        400,
        1,
    ));
    adapter
        .provision_database(
            &mut refused,
            &good,
            &config(json!({"name": "refused", "group": "scratch"})),
        )
        .await
        .expect_err("the token was refused");
    unwind(&adapter, &mut refused, &good).await;
    // And a complete provision unwound, as if a later part of its operation had failed: its
    // token is invalidated before the database goes.
    unwind(&adapter, &mut second, &good).await;

    // Lookups and listings.
    sb.create_database_directly("by-hand", "other", "aws-us-west-2");
    let mut look = ctx(&good);
    let marker = first.marker().expect("a marker").clone();
    assert!(
        adapter
            .find_by_marker(&mut look, &good, ResourceKind::Database, &marker)
            .await
            .expect("found")
            .is_some()
    );
    let unknown = Marker::for_resource(&ResourceId::new());
    assert!(
        adapter
            .find_by_marker(&mut look, &good, ResourceKind::Database, &unknown)
            .await
            .expect("looked up")
            .is_none()
    );
    let target = Tracked {
        kind: ResourceKind::Database,
        provider_resource_id: made.provider_resource_id.clone(),
        marker: Some(marker),
        last_seen: Value::Null,
    };
    adapter
        .observe_many(
            &mut look,
            &good,
            ResourceKind::Database,
            std::slice::from_ref(&target),
        )
        .await
        .expect("observed");
    assert_eq!(
        adapter
            .discover(&mut look, &good)
            .await
            .expect("found")
            .len(),
        2
    );

    // Deleting, twice.
    for _ in 0..2 {
        adapter
            .deprovision(&mut look, &good, &target)
            .await
            .expect("deleted");
    }
    sb.requests()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_turso_adapter_requests_and_sandbox_answers() {
    let spec = load();
    let log = adapter_at_work().await;
    spec.check_covering(
        &log,
        &[
            "validateAPIToken",
            "getOrganization",
            "getGroup",
            "createGroup",
            "listDatabases",
            "createDatabase",
            "getDatabase",
            "deleteDatabase",
            "createDatabaseToken",
            "invalidateDatabaseTokens",
            "deleteGroup",
        ],
        &[200, 400, 401, 404],
    );
}

/// Answers the adapter never provokes, straight from the sandbox: conflicts, a missing group,
/// bad bodies, an unknown organization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_turso_error_answers() {
    let spec = load();
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/v1/organizations/{ORG}{path}", sb.base_url());
    let post = |path: &str, body: Value| http.post(url(path)).bearer_auth(KEY).json(&body).send();
    let get = |url: String| http.get(url).bearer_auth(KEY).send();

    let group = json!({"name": "g1", "location": "aws-us-east-1"});
    assert_eq!(post("/groups", group.clone()).await.unwrap().status(), 200);
    assert_eq!(post("/groups", group).await.unwrap().status(), 409);
    let db = json!({"name": "d1", "group": "g1"});
    assert_eq!(post("/databases", db.clone()).await.unwrap().status(), 200);
    assert_eq!(post("/databases", db).await.unwrap().status(), 409);
    let orphan = json!({"name": "d2", "group": "nowhere"});
    assert_eq!(post("/databases", orphan).await.unwrap().status(), 400);
    let bad_expiry = http
        .post(url("/databases/d1/auth/tokens?expiration=soon"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("answered");
    assert_eq!(bad_expiry.status(), 400);
    for path in ["/groups/none", "/databases/none"] {
        let gone = get(url(path)).await.expect("answered");
        assert_eq!(gone.status(), 404);
    }
    let other = get(format!("{}/v1/organizations/other", sb.base_url()))
        .await
        .expect("answered");
    assert_eq!(other.status(), 404);
    assert_eq!(
        other.json::<Value>().await.unwrap(),
        json!({"error": "organization not found"})
    );
    let listed = get(url("/groups")).await.expect("answered");
    assert_eq!(listed.status(), 200);

    let log = sb.requests();
    let mut tally = Tally::default();
    spec.check_log(&log, &mut tally);
    spec::publish(&spec.report(&tally));
    assert_eq!(tally.responses, log.len());
}

/// The checks fail where they should: a request the document does not have, a body of the
/// wrong type, an undocumented parameter, and an answer with a misnamed field's wrong type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_spec_contract_turso_checker_reports_mismatches() {
    let spec = load();
    let dbs = format!("/v1/organizations/{ORG}/databases");
    assert!(
        spec.check_request(&entry("GET", "/v1/nothing", None, None))
            .is_err()
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            &dbs,
            None,
            Some(json!({"name": 1, "group": "g"}))
        ))
        .is_err()
    );
    assert!(
        spec.check_request(&entry(
            "POST",
            &dbs,
            None,
            Some(json!({"name": "n", "group": "g"}))
        ))
        .is_ok()
    );
    assert!(
        spec.check_request(&entry("POST", &dbs, None, None))
            .is_err(),
        "body required"
    );
    assert!(
        spec.check_request(&entry("GET", &dbs, Some("page=2"), None))
            .is_err()
    );
    let tokens = format!("{dbs}/d/auth/tokens");
    assert!(
        spec.check_request(&entry("POST", &tokens, Some("authorization=admin"), None))
            .is_err(),
        "not in the enum"
    );

    let mut answer = entry("GET", &format!("{dbs}/d"), None, None);
    answer.response_body = Some(json!({"database": {"Name": "d", "block_reads": "no"}}));
    assert!(spec.check_response(&answer).is_err());
    answer.response_body = Some(json!({"database": {"Name": "d", "parent": null}}));
    assert!(spec.check_response(&answer).is_ok(), "parent is nullable");
    answer.status = 500;
    assert!(
        spec.check_response(&answer).is_err(),
        "500 is not documented"
    );
    answer.status = 401;
    answer.response_body = Some(json!({"message": "no"}));
    assert!(
        spec.check_response(&answer).is_err(),
        "401 must carry Turso's envelope"
    );
}

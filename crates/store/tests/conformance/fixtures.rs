//! Builders for the conformance suite. Everything is made fresh per call (new ids, unique
//! names), so bodies can create several tenants in one store without collisions.

use std::time::Duration;

use chrono::SubsecRound;
use serde_json::json;
use stackdock_core::{
    AuditEntry, DatabaseDetails, Dock, DockName, DomainDetails, Marker, OpKind, Operation, OrgId,
    Outcome, Provider, ProvisioningSource, ProvisioningState, Resource, ResourceDetails,
    ResourceError, ResourceId, ResourceKind, SealedSecret, ServerDetails, Timestamp, TokenId,
    UserId, WebServiceDetails,
};
use stackdock_store::{Bootstrap, Store, Write};

/// Now at the precision every backend keeps (microseconds), so values compare equal after a
/// round trip.
pub fn now() -> Timestamp {
    chrono::Utc::now().trunc_subsecs(6)
}

/// An organisation with its owner and the owner's token.
pub struct Tenant {
    pub org: OrgId,
    pub user: UserId,
    pub email: String,
    pub token_id: TokenId,
    pub token_hash: String,
}

pub fn bootstrap_of(tenant: &Tenant) -> Bootstrap {
    Bootstrap {
        org_id: tenant.org,
        org_name: format!("org of {}", tenant.email),
        user_id: tenant.user,
        email: tenant.email.clone(),
        token_id: tenant.token_id,
        token_hash: tenant.token_hash.clone(),
    }
}

pub fn new_tenant() -> Tenant {
    let org = OrgId::new();
    Tenant {
        org,
        user: UserId::new(),
        email: format!("owner-{}@example.test", org.as_uuid().simple()),
        token_id: TokenId::new(),
        token_hash: format!("hash-{}", uuid::Uuid::new_v4().simple()),
    }
}

/// A bootstrapped tenant.
pub async fn tenant(store: &dyn Store) -> Tenant {
    let t = new_tenant();
    store
        .bootstrap(&bootstrap_of(&t), audit(t.org, "org.bootstrap"))
        .await
        .expect("bootstrap");
    t
}

pub fn audit(org: OrgId, action: &str) -> AuditEntry {
    AuditEntry::new(org, None, action, Outcome::Success)
}

pub fn sealed(key_id: &str) -> SealedSecret {
    SealedSecret::parse(&format!("v1:{key_id}:bm9uY2U:Y2lwaGVydGV4dA")).expect("sealed form")
}

pub fn dock(org: OrgId, name: &str) -> Dock {
    Dock {
        id: stackdock_core::DockId::new(),
        org_id: org,
        provider: Provider::DigitalOcean,
        name: DockName::try_from(name.to_string()).expect("dock name"),
        sealed_api_key: sealed("0123456789abcdef"),
        api_base_url: Some("http://127.0.0.1:9/v2".into()),
        settings: json!({"region": "nyc3", "tags": ["a", "b"]}),
        created_at: now(),
    }
}

pub async fn add_dock(store: &dyn Store, org: OrgId, name: &str) -> Dock {
    let d = dock(org, name);
    store
        .apply(stackdock_store::Batch::new().push(Write::InsertDock(d.clone())))
        .await
        .expect("insert dock");
    d
}

/// Kind-specific columns with every field set, so a round trip checks each one.
pub fn details(kind: ResourceKind) -> ResourceDetails {
    match kind {
        ResourceKind::Server => ResourceDetails::Server(ServerDetails {
            region: Some("nyc3".into()),
            size: Some("s-1vcpu-1gb".into()),
            image: Some("ubuntu-24-04-x64".into()),
            ipv4: Some("203.0.113.7".into()),
            ipv6: Some("2001:db8::7".into()),
        }),
        ResourceKind::WebService => ResourceDetails::WebService(WebServiceDetails {
            production_url: Some("https://site.example.test".into()),
            source: Some("github.com/acme/site".into()),
        }),
        ResourceKind::Domain => ResourceDetails::Domain(DomainDetails {
            records: json!([{"type": "A", "name": "@", "value": "203.0.113.7", "ttl": 300}]),
        }),
        ResourceKind::Database => ResourceDetails::Database(DatabaseDetails {
            engine: Some("sqlite".into()),
            region: Some("fra".into()),
            host: Some("db.example.test".into()),
        }),
    }
}

/// A resource StackDock is about to create: `api`, `provisioning`, with a marker.
pub fn resource(dock: &Dock, kind: ResourceKind) -> Resource {
    let id = ResourceId::new();
    let at = now();
    Resource {
        id,
        org_id: dock.org_id,
        dock_id: dock.id,
        provider: dock.provider.as_str().into(),
        provider_resource_id: None,
        name: format!(
            "{}-{}",
            kind.as_str().replace('_', "-"),
            &id.as_uuid().simple().to_string()[20..]
        ),
        status: None,
        provisioning_source: ProvisioningSource::Api,
        provisioning_state: ProvisioningState::Provisioning,
        provisioned_at: None,
        full_api_data: json!({}),
        error: None,
        marker: Some(Marker::for_resource(&id)),
        created_at: at,
        updated_at: at,
        version: 1,
        details: details(kind),
    }
}

/// A resource found in the account by discovery.
pub fn discovered(dock: &Dock, kind: ResourceKind, provider_id: &str) -> Resource {
    let mut r = resource(dock, kind);
    r.provisioning_source = ProvisioningSource::Manual;
    r.provisioning_state = ProvisioningState::Provisioned;
    r.provisioned_at = Some(now());
    r.provider_resource_id = Some(provider_id.into());
    r.marker = None;
    r
}

/// Every optional column set, including the error JSON and `provisioned_at`.
pub fn fully_populated(dock: &Dock, kind: ResourceKind) -> Resource {
    let mut r = resource(dock, kind);
    r.provider_resource_id = Some(format!("prov-{}", r.id.as_uuid().simple()));
    r.status = Some("errored".into());
    r.provisioning_state = ProvisioningState::Failed;
    r.provisioned_at = Some(now() - chrono::TimeDelta::seconds(30));
    r.full_api_data =
        json!({"id": 42, "nested": {"list": [1, 2.5, "x", null, true]}, "emoji": "ok ✓"});
    r.error = Some(ResourceError {
        message: "The droplet limit was reached".into(),
        code: "unprocessable_entity".into(),
        timestamp: now(),
    });
    r
}

pub async fn insert(store: &dyn Store, r: Resource) -> Resource {
    let mut written = store
        .apply(stackdock_store::Batch::new().push(Write::InsertResource(r)))
        .await
        .expect("insert resource");
    assert_eq!(written.len(), 1, "one insert, one row back");
    written.remove(0)
}

/// Writes `r` moved to `state`, from the version it holds.
pub async fn move_to(store: &dyn Store, r: &Resource, state: ProvisioningState) -> Resource {
    let mut next = r.clone();
    next.provisioning_state = state;
    if state == ProvisioningState::Provisioned {
        next.provisioned_at = Some(now());
    }
    let mut written = store
        .apply(stackdock_store::Batch::new().push(update(next, r.version)))
        .await
        .unwrap_or_else(|e| panic!("{} -> {state}: {e}", r.provisioning_state));
    written.remove(0)
}

/// Walks an `api` resource from `provisioning` to `deprovisioned`.
pub async fn deprovision_fully(store: &dyn Store, r: &Resource) -> Resource {
    let mut r = r.clone();
    for state in [
        ProvisioningState::Provisioned,
        ProvisioningState::Deprovisioning,
        ProvisioningState::Deprovisioned,
    ] {
        if r.provisioning_state != state {
            r = move_to(store, &r, state).await;
        }
    }
    r
}

pub fn update(resource: Resource, expected_version: i64) -> Write {
    Write::UpdateResource {
        resource,
        expected_version,
    }
}

pub fn operation(dock: &Dock, resource: Option<&Resource>) -> Operation {
    let mut op = Operation::new(
        dock.org_id,
        OpKind::Provision,
        dock.id,
        resource.map(|r| (r.id, r.kind())),
        None,
        json!({"config": {"size": "s-1vcpu-1gb"}}),
    );
    let at = now();
    op.next_run_at = at;
    op.created_at = at;
    op.updated_at = at;
    op
}

pub async fn insert_operation(store: &dyn Store, op: Operation) -> Operation {
    store
        .apply(stackdock_store::Batch::new().push(Write::InsertOperation(op.clone())))
        .await
        .expect("insert operation");
    op
}

/// Polls `claim_operation` until it hands something out or `deadline` passes. Leases expire
/// by the clock, so this is the wait-for-condition a lease test needs.
pub async fn claim_within(
    store: &dyn Store,
    owner: &str,
    lease: Duration,
    deadline: Duration,
) -> Option<Operation> {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(op) = store.claim_operation(owner, lease).await.expect("claim") {
            return Some(op);
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

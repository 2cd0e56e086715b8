//! What the trait cannot reach: rows changed behind the store's back (revoked tokens, data
//! edited by hand), changed with SQL on a connection of the test's own, as another program
//! would.

use chrono::SubsecRound;
use stackdock_core::{
    AuditEntry, Dock, DockName, Marker, OrgId, Outcome, Provider, ProvisioningSource,
    ProvisioningState, Resource, ResourceDetails, ResourceId, ResourceKind, SealedSecret, TokenId,
    UserId,
};

use super::SqliteStore;
use crate::{Batch, Bootstrap, Store, StoreError, Write};

/// A connection of the test's own to the store's file.
fn by_hand(dir: &tempfile::TempDir) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.path().join("t.db")).expect("open by hand");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    conn
}

async fn store_with_resource() -> (tempfile::TempDir, SqliteStore, Bootstrap, Resource) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    let b = Bootstrap {
        org_id: OrgId::new(),
        org_name: "acme".into(),
        user_id: UserId::new(),
        email: "owner@acme.test".into(),
        token_id: TokenId::new(),
        token_hash: "hash".into(),
    };
    let audit = AuditEntry::new(b.org_id, None, "org.bootstrap", Outcome::Success);
    store.bootstrap(&b, audit).await.expect("bootstrap");
    let now = chrono::Utc::now().trunc_subsecs(6);
    let dock = Dock {
        id: stackdock_core::DockId::new(),
        org_id: b.org_id,
        provider: Provider::Docker,
        name: DockName::try_from("local".to_string()).expect("name"),
        sealed_api_key: SealedSecret::parse("v1:k:n:c").expect("sealed"),
        api_base_url: None,
        settings: serde_json::json!({}),
        created_at: now,
    };
    let id = ResourceId::new();
    let r = Resource {
        id,
        org_id: b.org_id,
        dock_id: dock.id,
        provider: "docker".into(),
        provider_resource_id: None,
        name: "web".into(),
        status: None,
        provisioning_source: ProvisioningSource::Api,
        provisioning_state: ProvisioningState::Provisioning,
        provisioned_at: None,
        full_api_data: serde_json::json!({}),
        error: None,
        marker: Some(Marker::for_resource(&id)),
        created_at: now,
        updated_at: now,
        version: 1,
        details: ResourceDetails::empty(ResourceKind::Server),
    };
    store
        .apply(
            Batch::new()
                .push(Write::InsertDock(dock))
                .push(Write::InsertResource(r.clone())),
        )
        .await
        .expect("insert");
    (dir, store, b, r)
}

#[tokio::test]
async fn a_revoked_token_resolves_to_nobody() {
    let (dir, store, b, _) = store_with_resource().await;
    assert!(
        store
            .principal_for_token(&b.token_hash)
            .await
            .expect("lookup")
            .is_some()
    );
    by_hand(&dir)
        .execute(
            "UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2",
            rusqlite::params![
                super::codec::ts(&super::codec::now()),
                b.token_id.to_string()
            ],
        )
        .expect("revoke");
    assert!(
        store
            .principal_for_token(&b.token_hash)
            .await
            .expect("lookup")
            .is_none()
    );
}

#[tokio::test]
async fn rows_edited_by_hand_read_as_corrupt_not_a_panic() {
    for (column, value) in [
        ("created_at", "last tuesday"),
        ("full_api_data", "{not json"),
        ("marker", "not-a-marker"),
        ("dock_id", "42"),
    ] {
        let (dir, store, b, r) = store_with_resource().await;
        // Foreign keys would stop the dock_id edit; a hand edit is what this stands for.
        let conn = by_hand(&dir);
        conn.execute_batch("PRAGMA foreign_keys = OFF")
            .expect("pragma");
        conn.execute(
            &format!("UPDATE servers SET {column} = ?1 WHERE id = ?2"),
            rusqlite::params![value, r.id.to_string()],
        )
        .expect("edit");
        match store.get_resource(b.org_id, r.id).await {
            Err(StoreError::Corrupt(message)) => {
                assert!(message.contains(column), "{column}: {message}");
            }
            other => panic!("{column}: expected Corrupt, got {other:?}"),
        }
    }
}

/// The plan SQLite makes for `sql` on the store's schema, one line a step.
fn plan(conn: &rusqlite::Connection, sql: &str) -> String {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("explain");
    // Left unbound, the parameters read as NULL: the plan does not depend on them.
    let mut rows = stmt.raw_query();
    let mut lines = Vec::new();
    while let Some(row) = rows.next().expect("plan row") {
        lines.push(row.get::<_, String>(3).expect("plan detail"));
    }
    lines.join("; ")
}

#[tokio::test]
async fn one_resources_operations_are_read_through_its_own_index() {
    let (dir, _store, _b, _r) = store_with_resource().await;
    let conn = by_hand(&dir);
    let after = ["(created_at, id) < (?3, ?4)".to_string()];
    let of_resource = ["org_id = ?1".to_string(), "resource_id = ?2".to_string()];
    let paged: Vec<String> = of_resource.iter().chain(&after).cloned().collect();
    for sql in [
        super::operations::active_for_sql(),
        super::operations::list_sql(true, &of_resource, 3),
        super::operations::list_sql(true, &paged, 5),
    ] {
        let plan = plan(&conn, &sql);
        assert!(
            plan.contains("USING INDEX operations_resource (resource_id=?"),
            "{sql}\n=> {plan}"
        );
        assert!(!plan.contains("SCAN"), "{sql}\n=> {plan}");
    }
    // The org's own listing keeps the org's index.
    let plan = plan(
        &conn,
        &super::operations::list_sql(false, &["org_id = ?1".to_string()], 2),
    );
    assert!(
        plan.contains("USING INDEX operations_org_created (org_id=?)"),
        "{plan}"
    );
}

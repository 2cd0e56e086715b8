//! Crash safety: the process dies after the provider created the droplet but before that was
//! recorded. After a restart exactly one droplet exists and the row is provisioned.
//!
//! The lease is set far longer than the test's deadline: the restarted process must take over
//! its own dead workers' leases at once rather than wait them out.

use crate::support::{Options, droplet_ids, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_create_and_record_adopts_the_droplet_after_restart() {
    let mut app = spawn_app_with(Options {
        failpoints: Some("crash-before-create-checkpoint"),
        env: vec![("STACKDOCK_LEASE_MS", "600000")],
        ..Default::default()
    })
    .await;
    let created = app.provision("web-1", "s-1vcpu-1gb").await;
    let id = created["id"].as_str().unwrap().to_string();
    app.wait_for_crash().await;

    // The provider has the droplet; StackDock recorded only the intent.
    assert_eq!(
        droplet_ids(&app).len(),
        1,
        "the create did not reach the sandbox"
    );

    // Read the dead server's database: the crash came before the droplet's id was recorded.
    {
        use stackdock_store::Store;
        let store = stackdock_store::SqliteStore::open(&app.data_dir.path().join("stackdock.db"))
            .await
            .expect("open the database");
        let org = store.first_org().await.unwrap().expect("org");
        let row = store
            .get_resource(org, id.parse().expect("id"))
            .await
            .expect("row");
        assert_eq!(row.provider_resource_id, None, "{row:?}");
        assert_eq!(row.provisioning_state.as_str(), "provisioning");
        store.close().await;
    }

    app.restart(None);

    let ready = app.wait_state(&id, "provisioned").await;
    let ids = droplet_ids(&app);
    assert_eq!(ids.len(), 1, "a second droplet was created: {ids:?}");
    assert_eq!(ready["provider_resource_id"].as_str().unwrap(), ids[0]);

    // The resumed run looked the marker up instead of creating again.
    let calls = app.api_calls(&id).await;
    let posts = calls.iter().filter(|c| c["method"] == "POST").count();
    assert_eq!(posts, 1, "{calls:?}");
    assert!(
        calls
            .iter()
            .any(|c| c["path"].as_str().unwrap().contains("tag_name=stackdock-")),
        "no lookup by marker: {calls:?}"
    );
    let op = app
        .get(&format!(
            "/api/v1/operations/{}",
            created["operation_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(op.body["state"], "succeeded");
    assert_eq!(op.body["attempt"], 2);
    assert_eq!(op.body["steps"][0]["name"], "create_sent");
    assert_eq!(op.body["steps"][1]["output"]["adopted"], true);
    app.finish();
}

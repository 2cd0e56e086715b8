//! Master key rotation while provisioning goes on: everything sealed is sealed again under the
//! new key, every provision completes, and the old key can then be retired — after which the
//! server, restarted from its key file, still opens everything. Keys given in the environment
//! rotate by restart and reseal, and the old key can then leave the environment.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Options, spawn_app_with};

async fn keys(app: &crate::support::TestApp) -> Vec<Value> {
    let r = app.get("/api/v1/keys").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// Deprovisions the server `id`, which needs its dock key opened, and waits until it is gone.
async fn deprovision(app: &crate::support::TestApp, id: &str) {
    let gone = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/servers/{id}"),
            None,
        )
        .await;
    assert_eq!(gone.status, 202, "{}", gone.body);
    app.wait_state(id, "deprovisioned").await;
}

/// The audit log's records of the master keys, newest first.
async fn key_audit(app: &crate::support::TestApp) -> Vec<Value> {
    let audit = app.get("/api/v1/audit?limit=1000").await.body;
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"].as_str().is_some_and(|a| a.starts_with("keys.")))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_during_provisioning_reseals_everything_and_the_old_key_retires() {
    let mut app = spawn_app_with(Options {
        // Long enough that the provisions are still waiting on the provider while the key
        // rotates; they settle on their own afterwards.
        ready_after: Duration::from_millis(1500),
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.provision(&format!("before-{i}"), "s-1vcpu-1gb").await["id"].clone());
    }
    let before = keys(&app).await;
    assert_eq!(before.len(), 1);
    let old = before[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        before[0]["sealed_values"], 4,
        "the dock key and three user_data values"
    );

    let (code, out, err) = app.cli(&["keys", "rotate", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let rotated: Value = serde_json::from_str(&out).expect("JSON");
    let new = rotated["current"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(rotated["previous"], old.as_str());
    assert_eq!(rotated["resealed"]["docks"], 1);
    assert_eq!(rotated["resealed"]["operation_inputs"], 3);
    for i in 0..2 {
        ids.push(app.provision(&format!("after-{i}"), "s-1vcpu-1gb").await["id"].clone());
    }
    for id in &ids {
        app.wait_state(id.as_str().unwrap(), "provisioned").await;
    }

    let after = keys(&app).await;
    assert_eq!(after[0]["id"], new.as_str(), "the current key first");
    assert_eq!(after[0]["sealed_values"], 6, "{after:?}");
    assert_eq!(after[1]["id"], old.as_str());
    assert_eq!(
        after[1]["sealed_values"], 0,
        "nothing left under the old key"
    );

    let current = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/keys/{new}"),
            None,
        )
        .await;
    assert_eq!(current.status, 409, "{}", current.body);
    let unknown = app
        .request(
            reqwest::Method::DELETE,
            "/api/v1/keys/0011223344556677",
            None,
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let (code, out, err) = app.cli(&["keys", "retire", &old]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(keys(&app).await.len(), 1);
    let file = std::fs::read_to_string(app.data_dir.path().join("master.key")).expect("key file");
    assert_eq!(file.lines().count(), 1, "only the new key is kept");

    // Started again from its key file alone, the server opens the dock key to deprovision.
    app.restart(None);
    deprovision(&app, ids[0].as_str().unwrap()).await;

    let actions: Vec<Value> = key_audit(&app)
        .await
        .iter()
        .map(|r| r["action"].clone())
        .collect();
    assert_eq!(actions, ["keys.retire", "keys.rotate"]);
    app.finish();
}

/// Two master keys as `STACKDOCK_MASTER_KEY` takes them (64 hex digits each).
const OLD_KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const NEW_KEY: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const NEW_THEN_OLD: &str = "2222222222222222222222222222222222222222222222222222222222222222,\
                            1111111111111111111111111111111111111111111111111111111111111111";

/// The id of each key and how many values it seals, the current key first.
async fn sealed_by_key(app: &crate::support::TestApp) -> Vec<(String, u64)> {
    keys(app)
        .await
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_string(),
                k["sealed_values"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_the_environment_move_to_a_new_key_by_restart_and_reseal() {
    let mut app = spawn_app_with(Options {
        env: vec![("STACKDOCK_MASTER_KEY", OLD_KEY)],
        ..Options::default()
    })
    .await;
    let id = app.provision("env-keys", "s-1vcpu-1gb").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.wait_state(&id, "provisioned").await;
    let before = sealed_by_key(&app).await;
    assert_eq!(before.len(), 1, "{before:?}");
    let old = before[0].0.clone();
    assert_eq!(before[0].1, 2, "the dock key and the user_data: {before:?}");

    // Nothing to move while there is one key: the reseal answers so and changes nothing.
    let idle = app.post("/api/v1/keys/reseal", serde_json::json!({})).await;
    assert_eq!(idle.status, 200, "{}", idle.body);
    assert_eq!(idle.body["current"], old.as_str());
    assert_eq!(idle.body["resealed"]["docks"], 0);
    assert_eq!(idle.body["resealed"]["operation_inputs"], 0);

    // The new key first: it seals from now on, the old one still opens what it sealed.
    app.env = vec![("STACKDOCK_MASTER_KEY", NEW_THEN_OLD)];
    app.restart(None);
    let both = sealed_by_key(&app).await;
    assert_eq!(both.len(), 2, "{both:?}");
    let new = both[0].0.clone();
    assert_ne!(new, old);
    assert_eq!(
        both[1],
        (old.clone(), 2),
        "nothing moved by the restart itself"
    );

    let (code, out, err) = app.cli(&["keys", "reseal", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let resealed: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(resealed["current"], new.as_str());
    assert_eq!(resealed["resealed"]["docks"], 1, "{resealed}");
    assert_eq!(resealed["resealed"]["operation_inputs"], 1, "{resealed}");
    assert_eq!(resealed["resealed"]["sealed_by_key"][&old], 0, "{resealed}");
    assert_eq!(
        sealed_by_key(&app).await,
        [(new.clone(), 2), (old.clone(), 0)],
        "everything under the new key"
    );

    // Without the old key at all, the server still opens the dock key to deprovision.
    app.env = vec![("STACKDOCK_MASTER_KEY", NEW_KEY)];
    app.restart(None);
    assert_eq!(sealed_by_key(&app).await, [(new, 2)]);
    deprovision(&app, &id).await;

    let reseals = key_audit(&app).await;
    assert_eq!(reseals.len(), 2, "{reseals:?}");
    assert!(
        reseals.iter().all(|r| r["action"] == "keys.reseal"),
        "{reseals:?}"
    );
    assert_eq!(reseals[0]["details"]["report"]["docks"], 1, "newest first");
    app.finish();
}

//! Master key rotation while provisioning goes on: everything sealed is sealed again under the
//! new key, every provision completes, and the old key can then be retired — after which the
//! server, restarted from its key file, still opens everything.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Options, spawn_app_with};

async fn keys(app: &crate::support::TestApp) -> Vec<Value> {
    let r = app.get("/api/v1/keys").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
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
    let id = ids[0].as_str().unwrap();
    let gone = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/servers/{id}"),
            None,
        )
        .await;
    assert_eq!(gone.status, 202, "{}", gone.body);
    app.wait_state(id, "deprovisioned").await;

    let audit = app.get("/api/v1/audit?limit=1000").await.body;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .filter(|a| a.starts_with("keys."))
        .collect();
    assert_eq!(actions, ["keys.retire", "keys.rotate"]);
    app.finish();
}

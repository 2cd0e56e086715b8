//! Discovery: what exists in the account becomes `manual` rows, once.

use serde_json::{Value, json};

use crate::support::{DOCK, TestApp, spawn_app};

async fn sync(app: &TestApp) -> Value {
    app.sync(DOCK).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_adds_droplets_made_elsewhere_once() {
    let app = spawn_app().await;
    // One droplet StackDock made itself, three made in the provider's console.
    let ours = app.provision("ours", "s-1vcpu-1gb").await;
    app.wait_state(ours["id"].as_str().unwrap(), "provisioned")
        .await;
    for name in ["console-1", "console-2", "console-3"] {
        app.sandbox.create_droplet_directly(
            name,
            "ams3",
            "s-1vcpu-2gb",
            "debian-12-x64",
            &["team-a"],
        );
    }

    let first = sync(&app).await;
    assert_eq!(first["state"], "succeeded", "{first}");
    assert_eq!(first["steps"][0]["output"], json!({"found": 4, "added": 3}));
    let manual = app.get("/api/v1/servers?source=manual").await.body;
    let mut names: Vec<&str> = manual["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["console-1", "console-2", "console-3"]);
    for r in manual["items"].as_array().unwrap() {
        assert_eq!(r["provisioning_state"], "provisioned");
        assert_eq!(r["region"], "ams3");
        assert!(r["marker"].is_null());
        assert!(r["provider_resource_id"].is_string());
    }

    let second = sync(&app).await;
    assert_eq!(
        second["steps"][0]["output"],
        json!({"found": 4, "added": 0})
    );
    let all = app.get("/api/v1/servers").await.body;
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    app.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_follows_every_page() {
    let app = spawn_app().await;
    // More than one page of 200.
    for n in 0..205 {
        app.sandbox.create_droplet_directly(
            &format!("bulk-{n}"),
            "nyc3",
            "s-1vcpu-1gb",
            "ubuntu-24-04-x64",
            &[],
        );
    }
    let done = sync(&app).await;
    assert_eq!(done["steps"][0]["output"]["added"], 205, "{done}");
    let pages: Vec<&str> = done["api_calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["path"].as_str())
        .filter(|p| p.starts_with("/v2/droplets?page="))
        .collect();
    // Two pages of the plain listing, and the GPU droplets' own, which it leaves out.
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(pages.iter().filter(|p| p.ends_with("type=gpus")).count(), 1);
    app.finish();
}

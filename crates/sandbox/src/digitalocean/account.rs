//! `GET /v2/account`: a single, active sandbox account.

use axum::Json;
use serde_json::{Value, json};

/// Generous on purpose: the sandbox does not enforce it, and a client that checks it
/// before creating should not be stopped by a benchmark's fleet size.
const DROPLET_LIMIT: u64 = 10_000;

pub(crate) async fn get() -> Json<Value> {
    Json(json!({
        "account": {
            "droplet_limit": DROPLET_LIMIT,
            "floating_ip_limit": 3,
            "email": "sandbox@stackdock.invalid",
            "name": "StackDock Sandbox",
            "uuid": "5d0c5a9db0c4e11e8c0de5ad0c0de5ad0c0de501",
            "email_verified": true,
            "status": "active",
            "status_message": "",
            "team": {
                "uuid": "5d0c5a9db0c4e11e8c0de5ad0c0de5ad0c0de502",
                "name": "StackDock Sandbox Team",
            },
        }
    }))
}

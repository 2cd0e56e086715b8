//! `/healthz` and `/readyz`: what a load balancer or an orchestrator asks each node, without a
//! token. Every node answers them, whatever it runs (a worker-only node serves nothing else).
//!
//! - `/healthz` (liveness): 200 while the process answers HTTP at all.
//! - `/readyz` (readiness): 200 when the node can do its work now, i.e. its database answers a
//!   read within [`DATABASE_DEADLINE`]; else 503, naming what is wrong. A node cut off from
//!   its database is alive but not ready: taking it out of rotation is right, restarting it is
//!   not.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use stackdock_store::Store;

/// How long `/readyz` waits for the database before calling the node unready.
pub const DATABASE_DEADLINE: Duration = Duration::from_secs(2);

/// What this node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// The HTTP API, the event stream and the web UI; no workers.
    Api,
    /// Workers only; HTTP serves the probes and nothing else.
    Worker,
    /// Both: the default, and what one machine runs.
    All,
}

impl NodeRole {
    pub fn serves_api(self) -> bool {
        matches!(self, Self::Api | Self::All)
    }

    pub fn runs_workers(self) -> bool {
        matches!(self, Self::Worker | Self::All)
    }
}

/// Who answers the probes: the node's name (its workers' lease owner prefix) and role.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    #[serde(rename = "node")]
    pub name: String,
    pub role: NodeRole,
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    #[serde(flatten)]
    node: &'a Node,
}

#[derive(Serialize)]
struct Readiness<'a> {
    status: &'static str,
    #[serde(flatten)]
    node: &'a Node,
    /// `ok`, or what went wrong reaching the database (never its URL).
    database: String,
}

/// The two probes, for any router.
pub fn router<S: Clone + Send + Sync + 'static>(store: Arc<dyn Store>, node: Node) -> Router<S> {
    let node = Arc::new(node);
    let live = Arc::clone(&node);
    Router::new()
        .route(
            "/healthz",
            get(move || async move {
                axum::Json(Health {
                    status: "ok",
                    node: &live,
                })
                .into_response()
            }),
        )
        .route(
            "/readyz",
            get(move || ready(Arc::clone(&store), Arc::clone(&node))),
        )
}

async fn ready(store: Arc<dyn Store>, node: Arc<Node>) -> Response {
    let database = match tokio::time::timeout(DATABASE_DEADLINE, store.latest_change()).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            // The probe answers anyone: the error (addresses, users, database names) goes to
            // the node's log, not into the answer.
            tracing::warn!(
                error = %stackdock_core::report::error_chain(&e),
                "readiness: the database failed"
            );
            Some("the database failed; the node's log has the error".into())
        }
        Err(_) => Some(format!(
            "the database did not answer within {} s",
            DATABASE_DEADLINE.as_secs()
        )),
    };
    let (code, status) = match database {
        None => (StatusCode::OK, "ready"),
        Some(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    let body = Readiness {
        status,
        node: &node,
        database: database.unwrap_or_else(|| "ok".into()),
    };
    (code, axum::Json(body)).into_response()
}

/// Serves only the probes on `listener` until `shutdown` completes: a worker-only node.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    node: Node,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app: Router = router(store, node);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_say_what_they_run() {
        assert!(NodeRole::All.serves_api() && NodeRole::All.runs_workers());
        assert!(NodeRole::Api.serves_api() && !NodeRole::Api.runs_workers());
        assert!(!NodeRole::Worker.serves_api() && NodeRole::Worker.runs_workers());
    }
}

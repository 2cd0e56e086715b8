//! StackDock's own HTTP API: JSON under `/api/v1`, the event stream, and the web UI at `/`
//! ([`ui`]: server-rendered pages over the same functions the API's handlers call).
//!
//! `server` depends on `core`, `store`, `docks` and `engine`. Every route authenticates a
//! bearer token ([`auth`]), checks the one permission it needs, parses its input into domain
//! types and hands the work to the engine; errors from below are mapped to HTTP here and only
//! here ([`error`]).
//!
//! **Architecture invariant:** only `server` knows our HTTP/JSON API. The JSON shapes are in
//! [`view`]; the domain types below do not know they are being served.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use stackdock_engine::Engine;
use stackdock_store::Store;
use tokio::net::TcpListener;

pub mod auth;
pub mod error;
mod hub;
pub mod probes;
pub mod routes;
mod ui;
pub mod view;

pub use auth::{Token, ensure_owner};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub store: Arc<dyn Store>,
    /// Turns true when the server is shutting down, so that endless responses (the event
    /// stream) end and graceful shutdown does not wait on them forever.
    closing: tokio::sync::watch::Receiver<bool>,
    /// The file the master keys live in, when they come from one (not from the environment):
    /// a rotation writes it.
    key_file: Option<std::path::PathBuf>,
    /// Failed sign-ins, per account and per address.
    sign_in: Arc<routes::sessions::SignInLimiter>,
    close: Arc<tokio::sync::watch::Sender<bool>>,
    /// The process's one reader of the change feed, which every event stream subscribes to.
    hub: Arc<hub::Hub>,
    /// This node, as `/healthz` and `/readyz` name it.
    node: probes::Node,
}

impl AppState {
    /// Needs a Tokio runtime: it starts the event fan-out's reader.
    pub fn new(engine: Engine) -> Self {
        let store = engine.store().clone();
        let (close, closing) = tokio::sync::watch::channel(false);
        let hub = hub::Hub::start(store.clone(), closing.clone());
        let node = probes::Node {
            name: engine.config().worker_id.clone(),
            role: probes::NodeRole::All,
        };
        Self {
            hub,
            node,
            engine,
            store,
            closing,
            close: Arc::new(close),
            key_file: None,
            sign_in: Arc::default(),
        }
    }

    /// What this node runs, as its probes report it.
    pub fn with_role(mut self, role: probes::NodeRole) -> Self {
        self.node.role = role;
        self
    }

    /// Where the master keys are kept, so `/api/v1/keys` can rotate and retire them.
    pub fn with_key_file(mut self, path: std::path::PathBuf) -> Self {
        self.key_file = Some(path);
        self
    }
}

pub fn router(state: AppState) -> Router {
    routes::router(&state).with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes. The caller binds the socket, so
/// tests can bind port 0 and read the port back.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let close = state.close.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = close.send(true);
    };
    // The peer's address limits failed sign-ins per address.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Each event of a stream is a small write of its own: without TCP_NODELAY one could wait
    // for the peer to acknowledge the one before it (up to its delayed-ACK timer).
    let listener = axum::serve::ListenerExt::tap_io(listener, |conn| {
        if let Err(e) = conn.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

//! What scenarios a–c run on: a SQLite file in a temporary directory, a DigitalOcean sandbox,
//! an engine configured as `stackdock up` configures it, one organisation and one dock whose
//! rate limit the scenario chooses, and the engine's workers running.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use stackdock_core::{
    AuditEntry, Dock, DockId, DockName, Keyring, MasterKey, OrgId, Outcome, Provider, SecretString,
    TokenId, UserId,
};
use stackdock_docks::Registry;
use stackdock_docks::budget::RateLimit;
use stackdock_engine::{Actor, Engine, EngineConfig};
use stackdock_sandbox::{DigitalOceanSandbox, DoSandboxConfig};
use stackdock_store::{Batch, Bootstrap, SqliteStore, Store, Write};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::BenchError;

/// The sandbox accepts this key only; the dock holds it sealed.
pub(crate) const KEY: &str = "dop_v1_bench";

pub(crate) struct Rig {
    pub(crate) engine: Engine,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sandbox: DigitalOceanSandbox,
    pub(crate) actor: Actor,
    pub(crate) dock: Dock,
    /// Turning it true stops the workers.
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    /// Holds the database file until the rig is dropped.
    _dir: tempfile::TempDir,
}

impl Rig {
    /// Starts everything. `sandbox` says how the provider behaves (its tokens are set here);
    /// `rate_limit` is the dock's `settings.rate_limit`, e.g. `"none"` or `"10/s,600/min"`.
    pub(crate) async fn start(
        sandbox: DoSandboxConfig,
        rate_limit: &str,
    ) -> Result<Self, BenchError> {
        let sandbox = DigitalOceanSandbox::start(DoSandboxConfig {
            tokens: vec![KEY.into()],
            // Long runs would otherwise keep every request in memory.
            request_log: false,
            ..sandbox
        })
        .await
        .map_err(BenchError::io("starting the sandbox"))?;
        let dir = tempfile::tempdir().map_err(BenchError::io("making a temporary directory"))?;
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("stackdock.db")).await?);

        let org_id = OrgId::new();
        let user_id = UserId::new();
        let boot = Bootstrap {
            org_id,
            org_name: "bench".into(),
            user_id,
            email: "owner@bench.invalid".into(),
            token_id: TokenId::new(),
            // No API is served here, so no token is ever presented.
            token_hash: "0".repeat(64),
        };
        let audit = AuditEntry::new(org_id, Some(user_id), "org.bootstrap", Outcome::Success);
        store.bootstrap(&boot, audit).await?;

        // `stackdock up`'s settings: the defaults, named after the node.
        let config = EngineConfig {
            worker_id: "bench".into(),
            ..EngineConfig::default()
        };
        let engine = Engine::new(
            store.clone(),
            Registry::builtin(),
            Keyring::new(MasterKey::generate()),
            config,
        );
        let actor = Actor::system(org_id, Some(user_id));
        // Written through the store, settings and all, the way `add_dock` writes a dock: the
        // bench needs a rate limit on it from the first call.
        let id = DockId::new();
        let dock = Dock {
            id,
            org_id,
            provider: Provider::DigitalOcean,
            name: DockName::try_from("bench-do".to_string()).map_err(BenchError::Other)?,
            sealed_api_key: engine
                .keyring()
                .seal(&SecretString::new(KEY), &id.to_string()),
            api_base_url: Some(sandbox.base_url()),
            settings: json!({ "rate_limit": rate_limit }),
            created_at: chrono::Utc::now(),
        };
        store
            .apply(Batch::new().push(Write::InsertDock(dock.clone())))
            .await?;
        let wanted: RateLimit = rate_limit
            .parse()
            .map_err(|e| BenchError::Other(format!("rate limit {rate_limit:?}: {e}")))?;
        let read = stackdock_engine::rate_limit_of(&store.get_dock(org_id, dock.id).await?);
        if read != wanted {
            return Err(BenchError::Other(format!(
                "the dock's rate limit reads back as {read}, not {wanted}"
            )));
        }

        let (stop, stop_rx) = watch::channel(false);
        let workers = engine.spawn_workers(stop_rx);
        Ok(Self {
            engine,
            store,
            sandbox,
            actor,
            dock,
            stop,
            workers,
            _dir: dir,
        })
    }

    /// Stops the workers and the sandbox.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
        self.sandbox.shutdown().await;
    }
}

/// A valid droplet config, as a user would send it.
pub(crate) fn server_config(name: &str) -> Map<String, Value> {
    let mut config = Map::new();
    config.insert("name".into(), name.into());
    config.insert("region".into(), "nyc3".into());
    config.insert("size".into(), "s-1vcpu-1gb".into());
    config.insert("image".into(), "ubuntu-24-04-x64".into());
    config
}

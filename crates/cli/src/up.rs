//! `stackdock up`: everything on one machine — embedded SQLite in the data directory, the API
//! server, the workers, and with `--sandbox` the built-in provider simulators and a dock
//! connected to each.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::RngCore;
use stackdock_core::{DockName, Keyring, MasterKey, Provider, SecretString};
use stackdock_docks::RateLimit;
use stackdock_docks::Registry;
use stackdock_engine::intent::{DockUpdate, NewDock};
use stackdock_engine::{Actor, Engine, EngineConfig, Failpoints};
use stackdock_sandbox::{
    CloudflareSandbox, CloudflareSandboxConfig, DigitalOceanSandbox, DoSandboxConfig,
    NetlifySandbox, NetlifySandboxConfig, TursoSandbox, TursoSandboxConfig, VercelSandbox,
    VercelSandboxConfig, VultrSandbox, VultrSandboxConfig,
};
use stackdock_server::AppState;
use stackdock_server::probes::{self, NodeRole};
use stackdock_store::{SqliteStore, Store, StoreError};

use crate::CliResult;
use crate::client::CliError;

/// The dock `--sandbox` connects to the DigitalOcean simulator.
const SANDBOX_DOCK: &str = "sandbox-digitalocean";
/// The dock `--sandbox` connects to the Turso simulator.
const TURSO_SANDBOX_DOCK: &str = "sandbox-turso";
/// The dock `--sandbox` connects to the Vultr simulator.
const VULTR_SANDBOX_DOCK: &str = "sandbox-vultr";
/// The dock `--sandbox` connects to the Netlify simulator.
const NETLIFY_SANDBOX_DOCK: &str = "sandbox-netlify";
/// The dock `--sandbox` connects to the Cloudflare simulator.
const CLOUDFLARE_SANDBOX_DOCK: &str = "sandbox-cloudflare";
/// The dock `--sandbox` connects to the Vercel simulator.
const VERCEL_SANDBOX_DOCK: &str = "sandbox-vercel";
/// The organization the Turso simulator serves.
const TURSO_SANDBOX_ORG: &str = "sandbox";

#[derive(Args)]
pub(crate) struct UpArgs {
    /// Also start the built-in provider sandboxes and connect a dock to each.
    #[arg(long)]
    sandbox: bool,
    /// Address to serve the API on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: String,
    /// Where the database, the master key and the owner token live.
    #[arg(long, default_value = ".stackdock")]
    data_dir: PathBuf,
    /// The database, instead of <data-dir>/stackdock.db: `postgres://user@host/db` for
    /// several nodes sharing one, or a SQLite file (`sqlite:path` or a plain path).
    #[arg(long, env = "STACKDOCK_DATABASE_URL")]
    database_url: Option<String>,
    /// What this node runs: the HTTP API and the event stream (`api`), the workers
    /// (`worker`, whose HTTP serves only /healthz and /readyz), or both.
    #[arg(long, value_enum, env = "STACKDOCK_ROLE", default_value_t = Role::All)]
    role: Role,
    /// Operations run at once in this process (provider calls are paced per dock by its
    /// rate budget; this bounds memory).
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Operation lease length in milliseconds (how soon another worker takes over from a dead one).
    #[arg(
        long,
        env = "STACKDOCK_LEASE_MS",
        default_value_t = 30_000,
        hide = true
    )]
    lease_ms: u64,
    /// Shortest time between two checks of one dock's waiting operations, in milliseconds.
    #[arg(long, env = "STACKDOCK_POLL_MS", default_value_t = 100, hide = true)]
    poll_ms: u64,
    /// First retry backoff in milliseconds.
    #[arg(
        long,
        env = "STACKDOCK_RETRY_BASE_MS",
        default_value_t = 250,
        hide = true
    )]
    retry_base_ms: u64,
    /// Sandbox droplets and instances turn ready, database clusters online and Vultr
    /// databases running, after this many milliseconds.
    #[arg(long, default_value_t = 3_000, hide = true)]
    sandbox_ready_ms: u64,
}

/// `--role`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    Api,
    Worker,
    All,
}

impl From<Role> for NodeRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Api => NodeRole::Api,
            Role::Worker => NodeRole::Worker,
            Role::All => NodeRole::All,
        }
    }
}

fn fail(what: &str) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::Other(format!("{what}: {e}"))
}

/// Writes a new file readable by its owner only; refuses to overwrite.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}

/// The master keys: from `STACKDOCK_MASTER_KEY` (comma-separated, the current one first),
/// else the data dir's key file (a key a line, the current one first), else a new key written
/// there. Returns the file too when the keys come from one, so a rotation can rewrite it.
fn master_keys(data_dir: &Path) -> Result<(Keyring, Option<PathBuf>), CliError> {
    if let Ok(text) = std::env::var("STACKDOCK_MASTER_KEY") {
        let keyring = Keyring::parse(&text)
            .map_err(|e| CliError::Input(format!("STACKDOCK_MASTER_KEY: {e}")))?;
        return Ok((keyring, None));
    }
    let path = data_dir.join("master.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => Keyring::parse(&text)
            .map(|k| (k, Some(path.clone())))
            .map_err(|e| CliError::Other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            write_private(&path, &key.to_hex()).map_err(fail("cannot write the master key"))?;
            Ok((Keyring::new(key), Some(path)))
        }
        Err(e) => Err(CliError::Other(format!("{}: {e}", path.display()))),
    }
}

/// Holds `<data-dir>/lock` while the server runs: one StackDock per data directory. That is
/// what lets a restarted one take over its own earlier leases at once (see [`node_name`]).
fn lock_data_dir(dir: &Path) -> Result<std::fs::File, CliError> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(CliError::Input(format!(
            "another stackdock is already running on {}",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(CliError::Other(format!("{}: {e}", path.display())))
        }
    }
}

/// This data directory's node name, made once and kept in `<data-dir>/node-id`. Workers are
/// named after it, so leases held under it when the process died are known to be abandoned.
fn node_name(dir: &Path) -> Result<String, CliError> {
    let path = dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        // Empty: a first start died between creating the file and writing it.
        Ok(_) => std::fs::remove_file(&path).map_err(fail("cannot replace the node id"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::Other(format!("{}: {e}", path.display()))),
    }
    let mut raw = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let name = format!(
        "node-{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    write_private(&path, &name).map_err(fail("cannot write the node id"))?;
    Ok(name)
}

/// Why the database `url` could not be opened, without the URL's password: a scheme no store
/// serves is the caller's mistake (exit 2), anything else names its causes.
fn database_error(url: &str, e: &StoreError) -> CliError {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(unsupported) = cause.downcast_ref::<stackdock_store::UnsupportedScheme>() {
            return CliError::Input(format!("STACKDOCK_DATABASE_URL: {unsupported}"));
        }
        source = cause.source();
    }
    CliError::Other(format!(
        "database {}: {}",
        crate::migrate::shown(url),
        stackdock_core::report::error_chain(e)
    ))
}

/// Refuses to start when the database holds dock keys sealed under master keys this node
/// lacks: on a database several nodes share, a node started with a key of its own (a new data
/// directory, no `STACKDOCK_MASTER_KEY`) would otherwise take operations and fail every one.
async fn refuse_foreign_keys(
    store: &dyn Store,
    org: stackdock_core::OrgId,
    keyring: &Keyring,
) -> Result<(), CliError> {
    let known: Vec<String> = keyring
        .key_ids()
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    let mut missing = std::collections::BTreeSet::new();
    let mut page = stackdock_store::PageRequest::first(500);
    loop {
        let docks = store
            .list_docks(org, &page)
            .await
            .map_err(|e| CliError::Other(format!("cannot read the docks: {e}")))?;
        for dock in &docks.items {
            let id = dock.sealed_api_key.key_id();
            if !known.iter().any(|k| k == id) {
                missing.insert(id.to_string());
            }
        }
        match docks.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = missing.into_iter().collect();
    Err(CliError::Input(format!(
        "the database's dock keys are sealed under master key {} which this node does not \
         hold (it holds {}); give every node on one database the same STACKDOCK_MASTER_KEY",
        missing.join(", "),
        known.join(", ")
    )))
}

pub(crate) async fn run(args: UpArgs) -> CliResult {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STACKDOCK_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.data_dir)
        .map_err(fail("cannot create the data directory"))?;
    // It holds the master key and the owner token: owner only, even if it existed before.
    std::fs::set_permissions(&args.data_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(fail("cannot restrict the data directory"))?;
    let _lock = lock_data_dir(&args.data_dir)?;
    let node = node_name(&args.data_dir)?;
    let (keyring, key_file) = master_keys(&args.data_dir)?;
    let store: Arc<dyn Store> = match &args.database_url {
        Some(url) => stackdock_store::open_url(url)
            .await
            .map_err(|e| database_error(url, &e))?,
        None => {
            let path = args.data_dir.join("stackdock.db");
            Arc::new(
                SqliteStore::open(&path)
                    .await
                    .map_err(|e| CliError::Other(format!("database {}: {e}", path.display())))?,
            )
        }
    };

    let (org_id, new_token) = match stackdock_server::ensure_owner(&*store).await {
        Ok(Some((org, token))) => (org, Some(token)),
        Ok(None) => match store.first_org().await {
            Ok(Some(org)) => (org, None),
            _ => return Err(CliError::Other("the database has no organisation".into())),
        },
        Err(e) => {
            return Err(CliError::Other(format!(
                "cannot create the first organisation: {e}"
            )));
        }
    };
    let token_path = args.data_dir.join("owner-token");
    if let Some(token) = &new_token {
        // The organisation and its token are committed: shown before anything else can fail
        // (writing the file, a check below), since no later start mints another.
        println!(
            "Owner token (shown once; saved to {}):",
            token_path.display()
        );
        println!("  {}", token.0);
        // A token file left from an earlier database names a token this one never had.
        let saved = match std::fs::remove_file(&token_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => write_private(&token_path, &token.0),
        };
        saved.map_err(|e| {
            CliError::Other(format!(
                "cannot write the owner token to {}: {e}; it is shown above, keep it",
                token_path.display()
            ))
        })?;
    }
    refuse_foreign_keys(&*store, org_id, &keyring).await?;

    // Our own workers from before a crash or a kill hold leases nobody else will renew.
    match store.expire_leases(&format!("{node}-")).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(operations = n, "resuming operations the previous run left"),
        Err(e) => {
            return Err(CliError::Other(format!(
                "cannot take over earlier leases: {e}"
            )));
        }
    }

    let config = EngineConfig {
        worker_id: node,
        max_in_flight: args.max_in_flight.max(1),
        lease: Duration::from_millis(args.lease_ms.max(100)),
        wait: stackdock_engine::WaitPolicy {
            min_interval: Duration::from_millis(args.poll_ms.max(10)),
            ..Default::default()
        },
        retry: stackdock_docks::RetryPolicy {
            base_delay: Duration::from_millis(args.retry_base_ms),
            ..Default::default()
        },
        reschedule_base: Duration::from_millis(args.retry_base_ms.max(10) * 8),
        failpoints: Failpoints::parse(&std::env::var("STACKDOCK_FAILPOINTS").unwrap_or_default()),
        ..Default::default()
    };
    let engine = Engine::new(store.clone(), Registry::builtin(), keyring, config);
    let blobs = stackdock_engine::blobs::BlobStore::open(args.data_dir.join("blobs"))
        .map_err(fail("cannot open the file store"))?;
    engine.set_blobs(std::sync::Arc::new(blobs));

    // Kept alive for as long as the server runs.
    let _sandbox = if args.sandbox {
        Some(start_sandbox(&engine, org_id, args.sandbox_ready_ms).await?)
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| CliError::Input(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr().map_err(fail("listener"))?;
    let role = NodeRole::from(args.role);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = if role.runs_workers() {
        engine.spawn_workers(stop_rx)
    } else {
        Vec::new()
    };
    if role.serves_api() {
        println!("StackDock listening on http://{addr}");
        println!(
            "Web UI at http://{addr}/ (to sign in, set a password first: `stackdock password`)"
        );
        let mut state = AppState::new(engine).with_role(role);
        if let Some(file) = key_file {
            state = state.with_key_file(file);
        }
        stackdock_server::serve(listener, state, shutdown_signal())
            .await
            .map_err(fail("server"))?;
    } else {
        println!("StackDock listening on http://{addr}");
        println!(
            "Worker node: it serves /healthz and /readyz only; the API runs on the other nodes"
        );
        let node = probes::Node {
            name: engine.config().worker_id.clone(),
            role,
        };
        probes::serve(listener, store.clone(), node, shutdown_signal())
            .await
            .map_err(fail("server"))?;
    }
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The simulators `--sandbox` runs, kept alive for as long as the server runs.
struct Sandboxes {
    _digitalocean: DigitalOceanSandbox,
    _turso: TursoSandbox,
    _vultr: VultrSandbox,
    _netlify: NetlifySandbox,
    _cloudflare: CloudflareSandbox,
    _vercel: VercelSandbox,
}

async fn start_sandbox(
    engine: &Engine,
    org_id: stackdock_core::OrgId,
    ready_ms: u64,
) -> Result<Sandboxes, CliError> {
    let key = sandbox_key();
    let digitalocean = DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![key.clone()],
        ready_after: Duration::from_millis(ready_ms),
        database_ready_after: Duration::from_millis(ready_ms),
        ..Default::default()
    })
    .await
    .map_err(fail("cannot start the sandbox"))?;
    let sandbox = SandboxDock {
        provider: Provider::DigitalOcean,
        name: SANDBOX_DOCK,
        url: digitalocean.base_url(),
        key,
        settings: serde_json::Map::new(),
    };
    connect_sandbox_dock(engine, org_id, sandbox).await?;

    let key = sandbox_key();
    let turso = TursoSandbox::start(TursoSandboxConfig {
        tokens: vec![key.clone()],
        organization: TURSO_SANDBOX_ORG.into(),
        ..Default::default()
    })
    .await
    .map_err(fail("cannot start the Turso sandbox"))?;
    let mut settings = serde_json::Map::new();
    settings.insert("organization".into(), TURSO_SANDBOX_ORG.into());
    let sandbox = SandboxDock {
        provider: Provider::Turso,
        name: TURSO_SANDBOX_DOCK,
        url: turso.base_url(),
        key,
        settings,
    };
    connect_sandbox_dock(engine, org_id, sandbox).await?;

    let key = sandbox_key();
    let vultr = VultrSandbox::start(VultrSandboxConfig {
        tokens: vec![key.clone()],
        ready_after: Duration::from_millis(ready_ms),
        ..Default::default()
    })
    .await
    .map_err(fail("cannot start the Vultr sandbox"))?;
    let sandbox = SandboxDock {
        provider: Provider::Vultr,
        name: VULTR_SANDBOX_DOCK,
        url: vultr.base_url(),
        key,
        settings: serde_json::Map::new(),
    };
    connect_sandbox_dock(engine, org_id, sandbox).await?;

    let key = sandbox_key();
    let netlify = NetlifySandbox::start(NetlifySandboxConfig {
        tokens: vec![key.clone()],
        prepare_after: Duration::from_millis(ready_ms),
        process_after: Duration::from_millis(ready_ms),
        ..Default::default()
    })
    .await
    .map_err(fail("cannot start the Netlify sandbox"))?;
    let sandbox = SandboxDock {
        provider: Provider::Netlify,
        name: NETLIFY_SANDBOX_DOCK,
        url: netlify.api_url(),
        key,
        settings: serde_json::Map::new(),
    };
    connect_sandbox_dock(engine, org_id, sandbox).await?;

    let key = sandbox_key();
    let cloudflare = CloudflareSandbox::start(CloudflareSandboxConfig {
        tokens: vec![key.clone()],
        ..Default::default()
    })
    .await
    .map_err(fail("cannot start the Cloudflare sandbox"))?;
    let mut settings = serde_json::Map::new();
    settings.insert(
        "account_id".into(),
        stackdock_sandbox::cloudflare::ACCOUNT_ID.into(),
    );
    let sandbox = SandboxDock {
        provider: Provider::Cloudflare,
        name: CLOUDFLARE_SANDBOX_DOCK,
        url: cloudflare.api_url(),
        key,
        settings,
    };
    connect_sandbox_dock(engine, org_id, sandbox).await?;

    let key = sandbox_key();
    let vercel = VercelSandbox::start(VercelSandboxConfig {
        tokens: vec![key.clone()],
        queue_after: Duration::from_millis(ready_ms),
        build_after: Duration::from_millis(ready_ms),
        ..Default::default()
    })
    .await
    .map_err(fail("cannot start the Vercel sandbox"))?;
    let sandbox = SandboxDock {
        provider: Provider::Vercel,
        name: VERCEL_SANDBOX_DOCK,
        url: vercel.api_url(),
        key,
        settings: serde_json::Map::new(),
    };
    connect_sandbox_dock(engine, org_id, sandbox).await?;
    Ok(Sandboxes {
        _digitalocean: digitalocean,
        _turso: turso,
        _vultr: vultr,
        _netlify: netlify,
        _cloudflare: cloudflare,
        _vercel: vercel,
    })
}

/// A fresh key each start: a sandbox forgets everything when it stops anyway. It opens only
/// the simulator, so it is printed for a user to point a second dock or curl at.
fn sandbox_key() -> String {
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!(
        "sandbox_{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A running simulator and the dock that reaches it.
struct SandboxDock {
    provider: Provider,
    name: &'static str,
    url: String,
    key: String,
    settings: serde_json::Map<String, serde_json::Value>,
}

/// Connects the dock named `sandbox.name`, or points it at the new simulator when an earlier
/// start connected it.
async fn connect_sandbox_dock(
    engine: &Engine,
    org_id: stackdock_core::OrgId,
    sandbox: SandboxDock,
) -> Result<(), CliError> {
    let actor = Actor::system(org_id, None);
    let name = DockName::try_from(sandbox.name.to_string()).map_err(CliError::Other)?;
    let existing = engine
        .store()
        .find_dock_by_name(org_id, &name)
        .await
        .map_err(|e| CliError::Other(e.to_string()))?;
    let result = match existing {
        Some(dock) => {
            let update = DockUpdate {
                api_base_url: Some(Some(sandbox.url.clone())),
                api_key: Some(SecretString::new(sandbox.key.clone())),
                rate_limit: None,
                // The simulator was started a moment ago with this very key.
                verify: false,
            };
            engine.update_dock(actor, dock, update).await.map(|_| ())
        }
        None => engine
            .add_dock(
                actor,
                NewDock {
                    provider: sandbox.provider,
                    name,
                    api_key: SecretString::new(sandbox.key.clone()),
                    api_base_url: Some(sandbox.url.clone()),
                    // The simulators do not limit; the providers' documented limits would
                    // only slow a demo down.
                    rate_limit: Some(RateLimit::None),
                    settings: sandbox.settings,
                    // The simulator was started a moment ago with this very key.
                    verify: false,
                },
            )
            .await
            .map(|_| ()),
    };
    result.map_err(|e| CliError::Other(format!("cannot connect the sandbox dock: {e}")))?;
    println!(
        "Sandbox {} API at {} (dock {}, key {})",
        sandbox.provider, sandbox.url, sandbox.name, sandbox.key
    );
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

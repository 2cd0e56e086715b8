//! `stackdock`: runs StackDock (`up`) and talks to a running one over its HTTP API.
//!
//! The client commands find the server in `STACKDOCK_URL` and the token in
//! `STACKDOCK_TOKEN` (default: the owner token `stackdock up` wrote). Every command takes
//! `--json` and then prints exactly one JSON document. Exit status: 0 done, 1 the operation
//! failed, 2 bad usage or input, 3 not authenticated or not permitted, 4 server unreachable.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod access;
mod client;
mod commands;
mod migrate;
mod pages;
mod site;
mod up;
mod watch;

use client::CliError;

#[derive(Parser)]
#[command(
    name = "stackdock",
    version = env!("STACKDOCK_VERSION"),
    about = "Self-hosted provisioning engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server is and who we are; shared by every client command.
#[derive(Args, Clone)]
pub(crate) struct Conn {
    /// Server URL.
    #[arg(
        long,
        env = "STACKDOCK_URL",
        default_value = "http://127.0.0.1:7878",
        global = true
    )]
    url: String,
    /// API token; defaults to the owner token in ./.stackdock/owner-token.
    #[arg(long, env = "STACKDOCK_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print exactly one JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run StackDock: API server and workers, with embedded SQLite.
    Up(up::UpArgs),
    /// Move an installation from its SQLite file onto an empty PostgreSQL database, every row
    /// and the event cursor kept.
    Migrate(migrate::MigrateArgs),
    /// Create a resource and follow it until it is provisioned or failed.
    Provision(commands::ProvisionArgs),
    /// Show a resource; --watch follows it until it settles.
    Status {
        id: String,
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List resources.
    List(commands::ListArgs),
    /// Destroy a resource and follow it until it is deprovisioned or failed.
    Deprovision {
        id: String,
        /// Return once the request is recorded instead of following it.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Provision a failed resource again, with the config it was first asked for.
    Retry {
        id: String,
        /// Return once the request is recorded instead of following it.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Stop a provision under way and remove what it created.
    Cancel {
        id: String,
        /// Return once the request is recorded instead of following it.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Manage docks (connected provider accounts).
    Docks {
        #[command(subcommand)]
        command: commands::DocksCommand,
    },
    /// Discover what already exists in a dock's account.
    Sync {
        /// Dock name or id.
        dock: String,
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show the provider calls made for a resource (the journal), oldest first.
    Calls {
        id: String,
        #[command(flatten)]
        page: pages::PageArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a resource's deploy log: what its provider printed while it was provisioned (a
    /// container image's build and push).
    Logs {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Manage the organisation's members.
    Members {
        #[command(subcommand)]
        command: access::MembersCommand,
    },
    /// Add users, each with a one-time invitation to set their password.
    Users {
        #[command(subcommand)]
        command: access::UsersCommand,
    },
    /// Manage API tokens: create, list, revoke.
    Tokens {
        #[command(subcommand)]
        command: access::TokensCommand,
    },
    /// Manage the master keys that seal dock keys and sensitive config: list, rotate, retire.
    Keys {
        #[command(subcommand)]
        command: access::KeysCommand,
    },
    /// Show the audit log, newest first.
    Audit(commands::AuditArgs),
    /// Set your own password, for the web UI, read from standard input: `stackdock password < file`.
    Password {
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a completion script for a shell: `stackdock completions bash > /etc/bash_completion.d/stackdock`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "stackdock", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = match &cli.command {
        Command::Up(_) | Command::Migrate(_) => false,
        Command::Provision(a) => a.conn.json,
        Command::List(a) => a.conn.json,
        Command::Docks { command } => command.conn().json,
        Command::Members { command } => command.conn().json,
        Command::Tokens { command } => command.conn().json,
        Command::Users { command } => command.conn().json,
        Command::Keys { command } => command.conn().json,
        Command::Status { conn, .. }
        | Command::Deprovision { conn, .. }
        | Command::Retry { conn, .. }
        | Command::Cancel { conn, .. }
        | Command::Sync { conn, .. }
        | Command::Calls { conn, .. }
        | Command::Logs { conn, .. }
        | Command::Password { conn } => conn.json,
        Command::Audit(a) => a.conn.json,
        Command::Completions { .. } => false,
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Provision(args) => commands::provision(args).await,
            Command::Status { id, watch, conn } => commands::status(&conn, &id, watch).await,
            Command::List(args) => commands::list(args).await,
            Command::Deprovision { id, no_wait, conn } => {
                commands::deprovision(&conn, &id, no_wait).await
            }
            Command::Retry { id, no_wait, conn } => commands::retry(&conn, &id, no_wait).await,
            Command::Cancel { id, no_wait, conn } => commands::cancel(&conn, &id, no_wait).await,
            Command::Docks { command } => commands::docks(command).await,
            Command::Members { command } => access::members(command).await,
            Command::Tokens { command } => access::tokens(command).await,
            Command::Users { command } => access::users(command).await,
            Command::Keys { command } => access::keys(command).await,
            Command::Sync {
                dock,
                no_wait,
                conn,
            } => commands::sync(&conn, &dock, no_wait).await,
            Command::Calls { id, page, conn } => commands::calls(&conn, &id, &page).await,
            Command::Logs { id, conn } => commands::logs(&conn, &id).await,
            Command::Audit(args) => commands::audit(args).await,
            Command::Password { conn } => access::password(&conn).await,
            // Answered before the runtime starts.
            Command::Completions { .. } => Ok(ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            if json {
                let doc =
                    serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}});
                println!("{doc}");
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_status())
        }
    }
}

/// `./.stackdock`, where `up` keeps its data by default.
pub(crate) fn default_data_dir() -> PathBuf {
    PathBuf::from(".stackdock")
}

pub(crate) type CliResult = Result<ExitCode, CliError>;

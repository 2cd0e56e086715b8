//! `stackdock migrate --from sqlite:… --to postgres://…`: moves an installation from its
//! SQLite file onto an empty PostgreSQL database, every row as it is (ids, timestamps, the
//! change feed's numbers, so event cursors stay valid), in one transaction on the target.
//! Stop the node using the SQLite file first; afterwards start the nodes with `--database-url`
//! set to the PostgreSQL URL and the same master key.

use std::process::ExitCode;

use clap::Args;
use stackdock_core::report::error_chain;
use stackdock_store::{PostgresStore, SqliteStore};

use crate::CliResult;
use crate::client::CliError;

#[derive(Args)]
pub(crate) struct MigrateArgs {
    /// The SQLite database to copy: `sqlite:path`, `sqlite:///abs/path` or a plain path.
    #[arg(long)]
    from: String,
    /// The PostgreSQL database to copy into: `postgres://user@host/db`. It must hold no
    /// StackDock data yet (its schema is made if missing).
    #[arg(long)]
    to: String,
}

/// `url` with its password, if any, shown as `***`.
pub(crate) fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

fn is_postgres(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

pub(crate) async fn run(args: MigrateArgs) -> CliResult {
    if is_postgres(&args.from) {
        return Err(CliError::Input(
            "--from must be a SQLite database (sqlite:path or a path); migrate copies SQLite into PostgreSQL".into(),
        ));
    }
    if !is_postgres(&args.to) {
        return Err(CliError::Input(format!(
            "--to must be a postgres:// or postgresql:// URL, not {:?}",
            shown(&args.to)
        )));
    }
    let path = args
        .from
        .strip_prefix("sqlite://")
        .or_else(|| args.from.strip_prefix("sqlite:"))
        .unwrap_or(&args.from);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    // Opening creates a missing file; a migration from nothing is a mistake worth naming.
    if !std::path::Path::new(path).is_file() {
        return Err(CliError::Input(format!(
            "--from: no SQLite database at {path}"
        )));
    }
    let from = SqliteStore::open_url(&args.from)
        .await
        .map_err(|e| CliError::Other(format!("--from {}: {}", args.from, error_chain(&e))))?;
    let to = PostgresStore::connect(&args.to)
        .await
        .map_err(|e| CliError::Other(format!("--to {}: {}", shown(&args.to), error_chain(&e))))?;
    let copied = stackdock_store::copy::copy_all(&from, &to).await;
    from.close().await;
    to.close().await;
    let report = copied.map_err(|e| match e {
        stackdock_store::StoreError::Refused { message } => CliError::Input(message),
        e => CliError::Other(format!(
            "the copy failed and nothing was written: {}",
            error_chain(&e)
        )),
    })?;
    let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
    println!(
        "Copied {rows} rows from {} to {}:",
        args.from,
        shown(&args.to)
    );
    for (table, n) in &report.tables {
        println!("  {table:<18} {n}");
    }
    println!(
        "Change feed at {}, deploy log at {}: event streams resume where they were.",
        report.latest_change, report.latest_deploy_log
    );
    Ok(ExitCode::SUCCESS)
}

//! `stackdock-bench`: runs the benchmark scenarios, prints a table and one JSON document, and
//! with `--write` rewrites the benchmarks page.
//!
//! `cargo run --release -p stackdock-bench -- [--smoke] [--only a,b,b2,c,d] [--write docs/benchmarks.md]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use stackdock_bench::{Options, Scenario};

#[derive(Parser)]
#[command(
    about = "Benchmarks StackDock against the provider sandbox and runs the stackdock binary"
)]
struct Args {
    /// Tiny sizes, for CI: checks that every scenario runs and reports; judges nothing.
    #[arg(long)]
    smoke: bool,
    /// Run only these scenarios, in this order (a, b, b2, c, d, e, e2, f).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Scenario>,
    /// Sizes instead of the defaults, e.g. a=500,b=100,c=1000,d=100000,f=500,raw=20000.
    #[arg(long)]
    sizes: Option<String>,
    /// The stackdock binary for d; by default the bench runs
    /// `cargo build --release -p stackdock` and uses what it built.
    #[arg(long)]
    stackdock_bin: Option<PathBuf>,
    /// Add a timeline (calls by method, settled resources, CPU every 250 ms) to a–c's figures.
    #[arg(long)]
    timeline: bool,
    /// Rewrite this page (docs/benchmarks.md) with the results.
    #[arg(long)]
    write: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut options = if args.smoke {
        Options::smoke()
    } else {
        Options::full()
    };
    options.only = args.only;
    options.stackdock_bin = args.stackdock_bin;
    options.timeline = args.timeline;
    if let Some(Err(e)) = args.sizes.as_deref().map(|text| options.sizes.apply(text)) {
        eprintln!("--sizes: {e}");
        return ExitCode::from(2);
    }

    let report = stackdock_bench::run(options).await;
    println!("\n{}", report.table());
    match serde_json::to_string_pretty(&report.json()) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("cannot render the JSON document: {e}"),
    }

    if let Some(path) = &args.write {
        let given: Vec<String> = std::env::args().skip(1).collect();
        let command = format!(
            "cargo run --release -p stackdock-bench -- {}",
            page_args(&given).join(" ")
        );
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        let written = parent
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, report.markdown(command.trim_end())));
        if let Err(e) = written {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    if report.completed() {
        ExitCode::SUCCESS
    } else {
        let failed: Vec<&str> = report
            .scenarios
            .iter()
            .filter(|s| !s.completed())
            .map(|s| s.scenario.id())
            .collect();
        eprintln!("did not finish: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

/// The arguments as the page shows them: a binary given with `--stackdock-bin` is named by
/// what it is, not by where it lies on the machine that ran the bench.
fn page_args(given: &[String]) -> Vec<String> {
    const BIN: &str = "--stackdock-bin";
    const SHOWN: &str = "<a release build of stackdock>";
    let mut out = Vec::with_capacity(given.len());
    let mut args = given.iter();
    while let Some(arg) = args.next() {
        if arg == BIN {
            out.push(BIN.to_string());
            if args.next().is_some() {
                out.push(SHOWN.to_string());
            }
        } else if arg.starts_with(&format!("{BIN}=")) {
            out.push(format!("{BIN}={SHOWN}"));
        } else {
            out.push(arg.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::page_args;

    #[test]
    fn the_page_names_no_path_of_the_machine() {
        let given = |args: &[&str]| -> Vec<String> { args.iter().map(|a| a.to_string()).collect() };
        let shown = page_args(&given(&[
            "--stackdock-bin",
            "/opt/build/release/stackdock",
            "--write",
            "docs/benchmarks.md",
        ]));
        assert_eq!(
            shown.join(" "),
            "--stackdock-bin <a release build of stackdock> --write docs/benchmarks.md"
        );
        let shown = page_args(&given(&["--stackdock-bin=/opt/x/stackdock", "--smoke"]));
        assert_eq!(
            shown.join(" "),
            "--stackdock-bin=<a release build of stackdock> --smoke"
        );
        assert_eq!(page_args(&given(&["--only", "a"])), given(&["--only", "a"]));
    }
}

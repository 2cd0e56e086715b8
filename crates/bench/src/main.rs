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
            given.join(" ")
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

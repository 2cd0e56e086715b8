//! Names the build in `stackdock --version`: the package version, then the commit it was built
//! from and that commit's date, read from git when the source is a git checkout
//! (`0.1.0 (9345d63a1b2c 2026-11-26)`); a build from a source tree without git says so.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let build = match (
        git(&["rev-parse", "--short=12", "HEAD"]),
        git(&["log", "-1", "--format=%cs", "HEAD"]),
    ) {
        (Some(rev), Some(date)) => format!("{version} ({rev} {date})"),
        _ => format!("{version} (not built from a git checkout)"),
    };
    println!("cargo:rustc-env=STACKDOCK_VERSION={build}");
    // Built again when HEAD moves: a new commit, a checkout of another branch.
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(reference) = git(&["rev-parse", "--git-path", &branch])
    {
        println!("cargo:rerun-if-changed={reference}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

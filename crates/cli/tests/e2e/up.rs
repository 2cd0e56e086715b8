//! `stackdock up` itself: the README's walkthrough with the built-in sandbox, where it keeps
//! its secrets, and its settings.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};

use serde_json::Value;

use crate::support::{binary, provision_args, start_server};

const SANDBOX_DOCK: &str = "sandbox-digitalocean";
const TURSO_SANDBOX_DOCK: &str = "sandbox-turso";
const VULTR_SANDBOX_DOCK: &str = "sandbox-vultr";
const NETLIFY_SANDBOX_DOCK: &str = "sandbox-netlify";
const CLOUDFLARE_SANDBOX_DOCK: &str = "sandbox-cloudflare";
const VERCEL_SANDBOX_DOCK: &str = "sandbox-vercel";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs the CLI in `cwd` with only the server URL set, as a user following the README would.
async fn cli(cwd: &Path, url: &str, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .env("STACKDOCK_URL", url)
        .env_remove("STACKDOCK_TOKEN")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run cli");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_the_sandbox_runs_the_readme_walkthrough() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join(".stackdock");
    let sandbox = ["--sandbox", "--sandbox-ready-ms", "200"];
    let (child, url) = start_server(&data, None, &sandbox, &[]);

    // Secrets are the owner's alone.
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("owner-token")), 0o600);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    let token = std::fs::read_to_string(data.join("owner-token")).unwrap();

    // The CLI finds the owner token in ./.stackdock on its own.
    let (code, out, err) = cli(
        home.path(),
        &url,
        &provision_args(SANDBOX_DOCK, "web-1", "s-1vcpu-1gb"),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("provisioned") && out.contains("ipv4"), "{out}");
    assert!(
        err.contains("digitalocean status: new"),
        "no live progress: {err}"
    );

    // A Turso database on the Turso sandbox, with nothing but a name.
    let (code, out, err) = cli(
        home.path(),
        &url,
        &[
            "provision",
            "database",
            "--dock",
            TURSO_SANDBOX_DOCK,
            "--name",
            "orders",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("provisioned") && out.contains("turso.io"),
        "{out}"
    );
    // A Vultr instance on the Vultr sandbox: Vultr's CLI requires a plan and an operating
    // system, and so does its config.
    let (code, out, err) = cli(
        home.path(),
        &url,
        &[
            "provision",
            "server",
            "--dock",
            VULTR_SANDBOX_DOCK,
            "--name",
            "web-v",
            "--region",
            "ewr",
            "--set",
            "plan=vc2-1c-1gb",
            "--set",
            "os_id=2284",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("provisioned") && out.contains("ipv4"), "{out}");
    // A Vultr domain from its name alone.
    let (code, out, err) = cli(
        home.path(),
        &url,
        &[
            "provision",
            "domain",
            "--dock",
            VULTR_SANDBOX_DOCK,
            "--name",
            "example.com",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("provisioned"), "{out}");
    // The example site on the Netlify sandbox, as the quick start deploys it, and a Netlify
    // DNS zone from its name alone.
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/site");
    let (code, out, err) = cli(
        home.path(),
        &url,
        &[
            "provision",
            "web-service",
            "--dock",
            NETLIFY_SANDBOX_DOCK,
            "--name",
            "site",
            "--dir",
            site.to_str().expect("a UTF-8 path"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("provisioned") && out.contains(".netlify.app"),
        "{out}"
    );
    let (code, out, err) = cli(
        home.path(),
        &url,
        &[
            "provision",
            "domain",
            "--dock",
            NETLIFY_SANDBOX_DOCK,
            "--name",
            "example.net",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("provisioned"), "{out}");
    // A Cloudflare zone from its name alone, in the account the sandbox dock names.
    let (code, out, err) = cli(
        home.path(),
        &url,
        &[
            "provision",
            "domain",
            "--dock",
            CLOUDFLARE_SANDBOX_DOCK,
            "--name",
            "example.dev",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("provisioned"), "{out}");
    // The same site on the Vercel sandbox, and on the Cloudflare one as a Pages project with
    // a direct-upload deployment.
    for (dock, host) in [
        (VERCEL_SANDBOX_DOCK, ".vercel.app"),
        (CLOUDFLARE_SANDBOX_DOCK, ".pages.dev"),
    ] {
        let (code, out, err) = cli(
            home.path(),
            &url,
            &[
                "provision",
                "web-service",
                "--dock",
                dock,
                "--name",
                "site",
                "--dir",
                site.to_str().expect("a UTF-8 path"),
            ],
        )
        .await;
        assert_eq!(code, 0, "{dock}: {out}\n{err}");
        assert!(out.contains("provisioned") && out.contains(host), "{out}");
    }
    // Each sandbox's URL and key are printed for a second dock or curl to use.
    let stdout = std::fs::read_to_string(data.join("server.stdout")).unwrap();
    for dock in [
        SANDBOX_DOCK,
        TURSO_SANDBOX_DOCK,
        VULTR_SANDBOX_DOCK,
        NETLIFY_SANDBOX_DOCK,
        CLOUDFLARE_SANDBOX_DOCK,
        VERCEL_SANDBOX_DOCK,
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!("(dock {dock}, key sandbox_"))
                    && l.contains("API at http://")),
            "{dock} not announced:\n{stdout}"
        );
    }
    stop(child);

    // A second start reuses the organisation: the token is not printed again, and the sandbox
    // dock is pointed at the new simulator rather than added twice.
    let (child, url) = start_server(&data, None, &sandbox, &[]);
    let stdout = std::fs::read_to_string(data.join("server.stdout")).unwrap();
    assert_eq!(
        stdout.matches(token.trim()).count(),
        1,
        "token printed again:\n{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("owner-token")).unwrap(),
        token
    );
    let (code, out, _) = cli(home.path(), &url, &["docks", "list", "--json"]).await;
    assert_eq!(code, 0);
    let docks: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        docks["items"].as_array().unwrap().len(),
        6,
        "one dock per sandbox: {docks}"
    );
    let (code, out, err) = cli(
        home.path(),
        &url,
        &[
            provision_args(SANDBOX_DOCK, "web-2", "s-1vcpu-1gb"),
            vec!["--json"],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_url_names_the_sqlite_file() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let db = home.path().join("elsewhere.db");
    let url = format!("sqlite://{}", db.display());
    let (child, _) = start_server(
        &data,
        None,
        &[],
        &[("STACKDOCK_DATABASE_URL", url.as_str())],
    );
    assert!(db.exists(), "no database at {}", db.display());
    assert!(!data.join("stackdock.db").exists());
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_master_key_is_refused_with_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(binary())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(home.path().join("data"))
        .env("STACKDOCK_MASTER_KEY", "not-a-key")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("STACKDOCK_MASTER_KEY"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stackdock_on_the_same_data_dir_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let (child, _) = start_server(&data, None, &[], &[]);
    let out = tokio::process::Command::new(binary())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    stop(child);
    // Once the first has stopped, the directory is free again.
    let (child, _) = start_server(&data, None, &[], &[]);
    stop(child);
}

/// The first start commits the organisation and its owner token before it writes the token's
/// file; a later start mints none. So the token is shown first, and a file that cannot be
/// written (here a directory stands in its place) stops the start with the token already
/// in the owner's hands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_token_is_shown_even_when_its_file_cannot_be_written() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join(".stackdock");
    std::fs::create_dir_all(data.join("owner-token")).unwrap();
    let run = tokio::process::Command::new(binary())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("STACKDOCK_DATABASE_URL")
        .env_remove("STACKDOCK_MASTER_KEY")
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("up stops")
        .expect("up runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("Owner token"), "{stdout}{stderr}");
    assert!(
        stdout.lines().any(|l| l.trim().starts_with("sdt_")),
        "the token itself: {stdout}"
    );
    assert!(
        stderr.contains("cannot write the owner token") && stderr.contains("shown above"),
        "{stderr}"
    );
}

//! `provision web-service --dir` (a site's files) and `--context` (a container image's build
//! context): reads a folder into a manifest (`files: [{path, sha256, size, executable}]`),
//! uploads to the server only the contents it does not have yet, and hands the manifest back
//! for the provision's config.
//!
//! Nothing is skipped silently: hidden files go too, and anything that cannot be deployed as
//! a file (a link leading out of the folder, a socket) stops the command, naming it and why.

use std::path::Path;

use serde_json::{Value, json};
use stackdock_docks::{Sha256Hex, SitePath};

use crate::client::{CliError, Client};

/// One file read from the folder.
struct SiteFile {
    path: SitePath,
    sha256: Sha256Hex,
    bytes: Vec<u8>,
    /// Whether its mode lets it run (a container image's binaries need it).
    executable: bool,
}

/// Reads every file under `root`, sorted by path.
fn read_folder(root: &Path, flag: &str) -> Result<Vec<SiteFile>, CliError> {
    let input = |m: String| CliError::Input(m);
    let root = root
        .canonicalize()
        .map_err(|e| input(format!("{flag} {}: {e}", root.display())))?;
    if !root.is_dir() {
        return Err(input(format!("{flag} {}: not a folder", root.display())));
    }
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| input(format!("{}: cannot be read: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| input(format!("{}: {e}", dir.display())))?;
            let full = entry.path();
            let shown = relative(&root, &full)?;
            let meta = std::fs::symlink_metadata(&full)
                .map_err(|e| input(format!("{shown}: cannot be read: {e}")))?;
            let target = if meta.file_type().is_symlink() {
                let target = full.canonicalize().map_err(|e| {
                    input(format!("{shown}: a link whose target cannot be read: {e}"))
                })?;
                if !target.starts_with(&root) {
                    return Err(input(format!(
                        "{shown}: a link to {}, outside the folder; only what is inside the \
                         folder is deployed, so copy the file in or remove the link",
                        target.display()
                    )));
                }
                if target.is_dir() {
                    return Err(input(format!(
                        "{shown}: a link to a folder; link the files instead, or copy the folder"
                    )));
                }
                target
            } else {
                full.clone()
            };
            let kind = std::fs::metadata(&target)
                .map_err(|e| input(format!("{shown}: cannot be read: {e}")))?;
            if kind.is_dir() {
                pending.push(full);
            } else if kind.is_file() {
                let bytes = std::fs::read(&target)
                    .map_err(|e| input(format!("{shown}: cannot be read: {e}")))?;
                let path = SitePath::try_from(shown.clone())
                    .map_err(|e| input(format!("{shown}: cannot be deployed: {e}")))?;
                files.push(SiteFile {
                    path,
                    sha256: Sha256Hex::of(&bytes),
                    bytes,
                    executable: is_executable(&kind),
                });
            } else {
                return Err(input(format!(
                    "{shown}: neither a file nor a folder (a socket or a device), so it cannot \
                     be deployed"
                )));
            }
        }
    }
    if files.is_empty() {
        return Err(input(format!("{flag} {}: holds no files", root.display())));
    }
    files.sort_by(|a, b| a.path.as_str().cmp(b.path.as_str()));
    Ok(files)
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// `full`'s path under `root` with `/` between segments.
fn relative(root: &Path, full: &Path) -> Result<String, CliError> {
    let rel = full
        .strip_prefix(root)
        .map_err(|_| CliError::Input(format!("{} is not under the folder", full.display())))?;
    let parts = rel
        .components()
        .map(|c| {
            c.as_os_str().to_str().map(str::to_string).ok_or_else(|| {
                CliError::Input(format!("{}: the name is not UTF-8", full.display()))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parts.join("/"))
}

/// The most digests one `POST /api/v1/files/missing` asks about (the server's limit).
const ASK_AT_MOST: usize = 10_000;

/// Reads `dir` (given as `flag`, which errors name), uploads what the server lacks, and
/// answers the manifest.
pub(crate) async fn upload_folder(
    client: &Client,
    dir: &Path,
    flag: &str,
) -> Result<Value, CliError> {
    let files = read_folder(dir, flag)?;
    let digests: Vec<&str> = files.iter().map(|f| f.sha256.as_str()).collect();
    let mut missing = std::collections::HashSet::new();
    // The server answers at most this many digests per question.
    for asked in digests.chunks(ASK_AT_MOST) {
        let answer = client
            .post("/api/v1/files/missing", &json!({ "sha256": asked }))
            .await?;
        missing.extend(
            answer["missing"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
    }
    let mut sent = std::collections::HashSet::new();
    for f in &files {
        if !missing.contains(f.sha256.as_str()) || !sent.insert(f.sha256.as_str()) {
            continue;
        }
        let req = client
            .request(reqwest::Method::PUT, &format!("/api/v1/files/{}", f.sha256))
            .query(&[("path", f.path.as_str())])
            .header("content-type", "application/octet-stream")
            .body(f.bytes.clone());
        client.send(req).await?;
    }
    Ok(Value::Array(
        files
            .iter()
            .map(|f| {
                let mut entry = json!({"path": f.path, "sha256": f.sha256, "size": f.bytes.len()});
                if f.executable {
                    entry["executable"] = json!(true);
                }
                entry
            })
            .collect(),
    ))
}

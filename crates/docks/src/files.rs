//! The files of a web service, shared by every provider that deploys files (Netlify, Vercel,
//! Cloudflare Pages).
//!
//! A web service's config carries a manifest, `files: [{path, sha256, size}]`: what the
//! client read from a folder, each file named by its path relative to the folder (`/`
//! between segments) and by the SHA-256 of its contents. The contents themselves are never
//! in the config: the client uploads them beforehand to StackDock's content-addressed store,
//! and an adapter reads them during a run through [`Ctx::file`](crate::Ctx::file), which
//! reaches the store only through the [`FileSource`] the engine hands it. Providers name
//! files by other digests (Netlify and Vercel by SHA-1, Cloudflare by its own hash): an
//! adapter computes those from the bytes ([`sha1_hex`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use async_trait::async_trait;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use sha1::Digest as _;

/// The most files one manifest may list.
pub const MAX_FILES: usize = 10_000;

/// The longest path a manifest may name, in bytes.
pub const MAX_PATH: usize = 1024;

/// One file of a web service: where it goes and what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the site's root, `/` between segments: `index.html`, `css/site.css`.
    pub path: SitePath,
    /// The SHA-256 of the contents, 64 lowercase hex digits.
    pub sha256: Sha256Hex,
    /// The contents' length in bytes.
    pub size: u64,
    /// Whether the file may be run as a program: kept where the provider keeps file modes
    /// (a container image's build context), ignored by providers that serve files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
}

/// A web service's files: at least one, at most [`MAX_FILES`], no path twice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<FileEntry>", into = "Vec<FileEntry>")]
pub struct Files(Vec<FileEntry>);

impl Files {
    pub fn entries(&self) -> &[FileEntry] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<FileEntry>> for Files {
    type Error = String;
    fn try_from(entries: Vec<FileEntry>) -> Result<Self, String> {
        if entries.is_empty() {
            return Err("a web service needs at least one file".into());
        }
        if entries.len() > MAX_FILES {
            return Err(format!(
                "at most {MAX_FILES} files per web service, got {}",
                entries.len()
            ));
        }
        let mut seen = HashSet::new();
        for e in &entries {
            if !seen.insert(e.path.as_str()) {
                return Err(format!("{:?} is listed twice", e.path.as_str()));
            }
        }
        Ok(Self(entries))
    }
}

impl From<Files> for Vec<FileEntry> {
    fn from(f: Files) -> Self {
        f.0
    }
}

impl JsonSchema for Files {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Files".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let items = generator.subschema_for::<FileEntry>();
        json_schema!({"type": "array", "minItems": 1, "maxItems": MAX_FILES, "items": items})
    }
}

/// A path inside a site: relative, `/`-separated, no empty, `.` or `..` segment, no
/// backslash or control character.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SitePath(String);

impl SitePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SitePath {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let why = if s.is_empty() {
            Some("is empty")
        } else if s.len() > MAX_PATH {
            Some("is longer than 1024 bytes")
        } else if s.starts_with('/') {
            Some("must be relative (no leading /)")
        } else if s.contains('\\') {
            Some("must use / between segments, not \\")
        } else if s.chars().any(char::is_control) {
            Some("holds a control character")
        } else if s.split('/').any(|seg| seg.is_empty()) {
            Some("has an empty segment (// or a trailing /)")
        } else if s.split('/').any(|seg| seg == "." || seg == "..") {
            Some("must not hold . or .. segments")
        } else {
            None
        };
        match why {
            Some(why) => Err(format!("path {s:?} {why}")),
            None => Ok(Self(s)),
        }
    }
}

impl From<SitePath> for String {
    fn from(p: SitePath) -> String {
        p.0
    }
}

impl fmt::Display for SitePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for SitePath {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "SitePath".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "minLength": 1, "maxLength": MAX_PATH,
                      "description": "A path relative to the site's root, / between segments"})
    }
}

/// A SHA-256 digest as 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex(&sha2::Sha256::digest(bytes)))
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s))
        } else {
            Err(format!(
                "{s:?} is not a SHA-256 digest (64 lowercase hex digits)"
            ))
        }
    }
}

impl From<Sha256Hex> for String {
    fn from(d: Sha256Hex) -> String {
        d.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Sha256Hex {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Sha256Hex".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^[0-9a-f]{64}$",
                      "description": "SHA-256 of the contents, 64 lowercase hex digits"})
    }
}

/// The SHA-1 of `bytes` as 40 lowercase hex digits: how Netlify and Vercel name a file.
pub fn sha1_hex(bytes: &[u8]) -> String {
    hex(&sha1::Sha1::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a file's contents could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Nothing was uploaded under this digest.
    #[error("no content with SHA-256 {0} was uploaded")]
    Missing(String),
    /// The store failed; reading again later may work.
    #[error("the file store failed: {0}")]
    Store(String),
}

/// Where an adapter gets the bytes of a manifest's files during a run. The engine implements
/// it over its content-addressed store; tests implement it in memory.
#[async_trait]
pub trait FileSource: Send + Sync {
    /// The contents whose SHA-256 is `sha256`, checked against it.
    async fn read(&self, sha256: &Sha256Hex) -> Result<Vec<u8>, FileError>;
}

/// A [`FileSource`] holding contents in memory, for tests and tools.
#[derive(Default)]
pub struct MemoryFiles(std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>);

impl MemoryFiles {
    /// Keeps `bytes`; answers its digest.
    pub fn put(&self, bytes: &[u8]) -> Sha256Hex {
        let digest = Sha256Hex::of(bytes);
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(digest.0.clone(), bytes.to_vec());
        digest
    }
}

#[async_trait]
impl FileSource for MemoryFiles {
    async fn read(&self, sha256: &Sha256Hex) -> Result<Vec<u8>, FileError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sha256.as_str())
            .cloned()
            .ok_or_else(|| FileError::Missing(sha256.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(path: &str) -> serde_json::Value {
        json!({"path": path, "sha256": "a".repeat(64), "size": 1})
    }

    #[test]
    fn manifests_refuse_what_could_escape_or_clash() {
        let parse = |v: serde_json::Value| serde_json::from_value::<Files>(v).map(drop);
        assert!(parse(json!([entry("index.html"), entry("css/a.css")])).is_ok());
        for (bad, says) in [
            (json!([]), "at least one"),
            (json!([entry("/etc/passwd")]), "relative"),
            (json!([entry("a/../../x")]), ".."),
            (json!([entry("a//b")]), "empty segment"),
            (json!([entry("a\\b")]), "not \\"),
            (json!([entry("a"), entry("a")]), "listed twice"),
            (
                json!([{"path": "a", "sha256": "AB", "size": 1}]),
                "not a SHA-256",
            ),
            (
                json!([{"path": "a", "sha256": "a".repeat(64), "size": 1, "x": 1}]),
                "unknown field",
            ),
        ] {
            let err = parse(bad.clone()).expect_err("refused").to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn digests_are_lowercase_hex() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            Sha256Hex::of(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

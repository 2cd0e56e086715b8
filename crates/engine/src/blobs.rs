//! The content-addressed store of web services' files, in the data directory.
//!
//! A file's contents are kept under their SHA-256 (`<dir>/<first two digits>/<digest>`), so
//! the same contents are kept once whatever the path or the resource, and a client asks which
//! digests are missing before it uploads. A write goes to a temporary file in the same
//! directory, is synced, then renamed into place: a reader sees a whole file or none. What is
//! written is hashed as it is received and refused when it is not what its digest says.
//! Adapters read it during a run through [`FileSource`], never the store itself.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use stackdock_docks::{FileError, FileSource, Sha256Hex};

/// The largest file accepted, in bytes.
pub const MAX_BLOB_BYTES: usize = 50 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the content's SHA-256 is {actual}, not {expected}")]
    Mismatch { expected: String, actual: String },
    #[error("the file store failed: {0}")]
    Io(#[from] io::Error),
}

pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the store at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path_of(&self, digest: &Sha256Hex) -> PathBuf {
        self.dir.join(&digest.as_str()[..2]).join(digest.as_str())
    }

    pub fn has(&self, digest: &Sha256Hex) -> bool {
        self.path_of(digest).is_file()
    }

    /// The digests of `wanted` the store does not hold, in the order given, each once.
    pub fn missing<'a>(&self, wanted: impl IntoIterator<Item = &'a Sha256Hex>) -> Vec<Sha256Hex> {
        let mut seen = std::collections::HashSet::new();
        wanted
            .into_iter()
            .filter(|d| seen.insert(d.as_str()) && !self.has(d))
            .cloned()
            .collect()
    }

    /// Keeps `bytes` under `expected`, after checking that they hash to it. Keeping what is
    /// already kept succeeds.
    pub async fn put(&self, expected: &Sha256Hex, bytes: Vec<u8>) -> Result<(), BlobError> {
        let actual = Sha256Hex::of(&bytes);
        if &actual != expected {
            return Err(BlobError::Mismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        let target = self.path_of(expected);
        if target.is_file() {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || write_atomically(&target, &bytes))
            .await
            .map_err(io::Error::other)??;
        Ok(())
    }

    /// The contents kept under `digest`, checked against it; `None` when there are none.
    pub async fn read(&self, digest: &Sha256Hex) -> Result<Option<Vec<u8>>, BlobError> {
        let bytes = match tokio::fs::read(self.path_of(digest)).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let actual = Sha256Hex::of(&bytes);
        if &actual != digest {
            return Err(BlobError::Mismatch {
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(Some(bytes))
    }
}

fn write_atomically(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| io::Error::other("a blob path has a parent"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, target)?;
        // The rename itself lasts once the directory is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[async_trait]
impl FileSource for BlobStore {
    async fn read(&self, sha256: &Sha256Hex) -> Result<Vec<u8>, FileError> {
        match BlobStore::read(self, sha256).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(FileError::Missing(sha256.to_string())),
            Err(e) => Err(FileError::Store(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_contents_under_their_digest_and_refuses_a_wrong_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let digest = Sha256Hex::of(b"hello");
        let other = Sha256Hex::of(b"other");
        assert_eq!(
            store.missing([&digest, &other, &digest]),
            [digest.clone(), other.clone()]
        );

        let err = store.put(&other, b"hello".to_vec()).await.unwrap_err();
        assert!(matches!(err, BlobError::Mismatch { .. }), "{err}");
        assert!(!store.has(&other));

        store.put(&digest, b"hello".to_vec()).await.unwrap();
        store.put(&digest, b"hello".to_vec()).await.unwrap();
        assert_eq!(
            store.missing([&digest, &other]),
            std::slice::from_ref(&other)
        );
        assert_eq!(
            store.read(&digest).await.unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(store.read(&other).await.unwrap(), None);

        // Contents changed on disk are not handed out as what their digest says.
        std::fs::write(store.path_of(&digest), b"tampered").unwrap();
        assert!(store.read(&digest).await.is_err());
        let leftovers: Vec<_> = std::fs::read_dir(store.path_of(&digest).parent().unwrap())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

//! Sealing of dock API keys: AES-256-GCM under a master key, each ciphertext carrying the id
//! of the key that sealed it so keys can be rotated without re-encrypting everything at once.
//!
//! A plaintext key exists only as a [`SecretString`], which cannot be printed, serialized or
//! logged by accident: its `Debug` and `Display` say `[redacted]` and it implements neither
//! `Serialize` nor `Clone` into a plain `String`.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A secret that cannot leak through formatting.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The only way to the plaintext; call sites are easy to audit with a grep.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Names a master key without revealing it: the first 8 bytes of its SHA-256, in hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("master key must be 32 bytes, given as 64 hex digits or base64; got {0} bytes")]
    BadKeyLength(usize),
    #[error("master key is neither hex nor base64")]
    BadKeyEncoding,
    #[error("sealed secret is malformed")]
    Malformed,
    #[error("sealed with key {0}, which this keyring does not hold")]
    UnknownKey(String),
    #[error("sealed secret failed authentication (wrong key, wrong owner or tampered)")]
    Unauthentic,
    #[error("key {0} is the current key; rotate to another before retiring it")]
    CurrentKey(String),
}

/// 32 bytes of key material and its id.
#[derive(Clone)]
pub struct MasterKey {
    id: KeyId,
    bytes: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::digest(bytes);
        Self {
            id: KeyId(hex::encode(&digest[..8])),
            bytes,
        }
    }

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Parses the text form used in `STACKDOCK_MASTER_KEY` and the key file: 64 hex digits or
    /// base64 of 32 bytes, surrounding whitespace ignored.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let raw = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| CryptoError::BadKeyEncoding)?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| B64.decode(text))
                .map_err(|_| CryptoError::BadKeyEncoding)?
        };
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadKeyLength(raw.len()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The text form written to the key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }
}

/// A sealed secret as stored: `v1:<key id>:<nonce>:<ciphertext>` (base64 without padding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSecret(String);

impl SealedSecret {
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 4 || parts[0] != "v1" {
            return Err(CryptoError::Malformed);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key_id(&self) -> &str {
        self.0.split(':').nth(1).unwrap_or_default()
    }
}

/// The master keys in use: one seals, all of them open.
#[derive(Clone, Debug)]
pub struct Keyring {
    /// Shared by every clone: a rotation seen by one is seen by all.
    keys: std::sync::Arc<std::sync::RwLock<Keys>>,
}

#[derive(Debug)]
struct Keys {
    current: MasterKey,
    all: HashMap<String, MasterKey>,
}

impl Keyring {
    pub fn new(current: MasterKey) -> Self {
        let mut all = HashMap::new();
        all.insert(current.id.0.clone(), current.clone());
        Self {
            keys: std::sync::Arc::new(std::sync::RwLock::new(Keys { current, all })),
        }
    }

    /// Adds a retired key that can still open what it sealed.
    pub fn with_retired(self, key: MasterKey) -> Self {
        self.write().all.insert(key.id.0.clone(), key);
        self
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn current_id(&self) -> KeyId {
        self.read().current.id.clone()
    }

    /// Every key held, the current one first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        let keys = self.read();
        let mut ids: Vec<KeyId> = keys
            .all
            .values()
            .filter(|k| k.id != keys.current.id)
            .map(|k| k.id.clone())
            .collect();
        ids.sort_by(|a, b| a.0.cmp(&b.0));
        ids.insert(0, keys.current.id.clone());
        ids
    }

    /// Makes `key` the one that seals from now on; the keys held before still open.
    pub fn rotate_to(&self, key: MasterKey) {
        let mut keys = self.write();
        keys.all.insert(key.id.0.clone(), key.clone());
        keys.current = key;
    }

    /// Makes a key already held the current one again (undoing a rotation that could not be
    /// kept); `false` if it is not held.
    pub fn rotate_to_existing(&self, id: &str) -> bool {
        let mut keys = self.write();
        match keys.all.get(id).cloned() {
            Some(key) => {
                keys.current = key;
                true
            }
            None => false,
        }
    }

    /// Drops a key that is not the current one: what it sealed no longer opens.
    pub fn retire(&self, id: &str) -> Result<(), CryptoError> {
        let mut keys = self.write();
        if keys.current.id.0 == id {
            return Err(CryptoError::CurrentKey(id.to_string()));
        }
        keys.all
            .remove(id)
            .map(drop)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_string()))
    }

    /// Every key, the current one first, as the key file holds them (hex, a line each).
    pub fn to_file_text(&self) -> String {
        let keys = self.read();
        let mut lines = vec![keys.current.to_hex()];
        let mut rest: Vec<&MasterKey> = keys
            .all
            .values()
            .filter(|k| k.id != keys.current.id)
            .collect();
        rest.sort_by(|a, b| a.id.0.cmp(&b.id.0));
        lines.extend(rest.into_iter().map(MasterKey::to_hex));
        lines.join("\n") + "\n"
    }

    /// A keyring from a key file's text or `STACKDOCK_MASTER_KEY`: keys separated by new lines
    /// or commas, the current one first.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let mut keys = text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(MasterKey::parse);
        let current = keys.next().ok_or(CryptoError::BadKeyLength(0))??;
        keys.try_fold(Self::new(current), |ring, key| Ok(ring.with_retired(key?)))
    }

    /// Seals `secret`, binding it to `context` (the owning dock's id) so a ciphertext copied
    /// onto another row fails to open.
    pub fn seal(&self, secret: &SecretString, context: &str) -> SealedSecret {
        let current = self.read().current.clone();
        let cipher = Aes256Gcm::new_from_slice(&current.bytes).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        SealedSecret(format!(
            "v1:{}:{}:{}",
            current.id,
            B64.encode(nonce),
            B64.encode(ct)
        ))
    }

    pub fn open(&self, sealed: &SealedSecret, context: &str) -> Result<SecretString, CryptoError> {
        let parts: Vec<&str> = sealed.0.split(':').collect();
        let [_, key_id, nonce, ct] = parts.as_slice() else {
            return Err(CryptoError::Malformed);
        };
        let key = self
            .read()
            .all
            .get(*key_id)
            .cloned()
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_string()))?;
        let nonce = B64.decode(nonce).map_err(|_| CryptoError::Malformed)?;
        let ct = B64.decode(ct).map_err(|_| CryptoError::Malformed)?;
        if nonce.len() != 12 {
            return Err(CryptoError::Malformed);
        }
        let cipher = Aes256Gcm::new_from_slice(&key.bytes).expect("32-byte key");
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Unauthentic)?;
        String::from_utf8(plain)
            .map(SecretString)
            .map_err(|_| CryptoError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_hides_the_plaintext() {
        let ring = Keyring::new(MasterKey::generate());
        let secret = SecretString::new("dop_v1_canary");
        let sealed = ring.seal(&secret, "dock-1");
        assert!(!sealed.as_str().contains("canary"));
        assert_eq!(sealed.key_id(), ring.current_id().as_str());
        assert_eq!(ring.open(&sealed, "dock-1").unwrap(), secret);
    }

    #[test]
    fn nonces_differ_so_equal_keys_seal_differently() {
        let ring = Keyring::new(MasterKey::generate());
        let s = SecretString::new("same");
        assert_ne!(ring.seal(&s, "d"), ring.seal(&s, "d"));
    }

    #[test]
    fn opening_fails_for_another_context_key_or_tampering() {
        let ring = Keyring::new(MasterKey::generate());
        let sealed = ring.seal(&SecretString::new("k"), "dock-1");
        assert_eq!(ring.open(&sealed, "dock-2"), Err(CryptoError::Unauthentic));

        let other = Keyring::new(MasterKey::generate());
        assert!(matches!(
            other.open(&sealed, "dock-1"),
            Err(CryptoError::UnknownKey(_))
        ));

        let mut text = sealed.as_str().to_string();
        let last = text.pop().unwrap();
        text.push(if last == 'A' { 'B' } else { 'A' });
        let tampered = SealedSecret::parse(&text).unwrap();
        assert!(ring.open(&tampered, "dock-1").is_err());
    }

    #[test]
    fn a_retired_key_still_opens_what_it_sealed() {
        let old = MasterKey::generate();
        let sealed = Keyring::new(old.clone()).seal(&SecretString::new("k"), "d");
        let ring = Keyring::new(MasterKey::generate()).with_retired(old);
        assert_eq!(ring.open(&sealed, "d").unwrap().expose(), "k");
    }

    #[test]
    fn secrets_do_not_format() {
        let s = SecretString::new("dop_v1_canary");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        let k = MasterKey::generate();
        assert!(!format!("{k:?}").contains(&k.to_hex()));
    }

    #[test]
    fn master_key_parses_hex_and_base64_and_names_bad_lengths() {
        let k = MasterKey::generate();
        assert_eq!(MasterKey::parse(&k.to_hex()).unwrap().id(), k.id());
        let b64 = base64::engine::general_purpose::STANDARD.encode(k.bytes);
        assert_eq!(MasterKey::parse(&b64).unwrap().id(), k.id());
        assert_eq!(
            MasterKey::parse("AAAA").unwrap_err(),
            CryptoError::BadKeyLength(3)
        );
        assert_eq!(
            MasterKey::parse("not a key!").unwrap_err(),
            CryptoError::BadKeyEncoding
        );
    }

    #[test]
    fn a_rotated_keyring_seals_with_the_new_key_opens_both_and_retires_the_old() {
        let old = MasterKey::generate();
        let ring = Keyring::new(old.clone());
        let shared = ring.clone();
        let before = ring.seal(&SecretString::new("s3cret"), "dock-1");
        let new = MasterKey::generate();
        shared.rotate_to(new.clone());
        assert_eq!(
            ring.current_id(),
            new.id().clone(),
            "clones share the rotation"
        );
        let after = ring.seal(&SecretString::new("s3cret"), "dock-1");
        assert_eq!(after.key_id(), new.id().as_str());
        assert_eq!(ring.open(&before, "dock-1").unwrap().expose(), "s3cret");
        assert_eq!(ring.key_ids(), [new.id().clone(), old.id().clone()]);

        let text = ring.to_file_text();
        let reread = Keyring::parse(&text).expect("parses back");
        assert_eq!(reread.key_ids(), ring.key_ids());
        assert_eq!(reread.open(&before, "dock-1").unwrap().expose(), "s3cret");

        assert_eq!(
            ring.retire(new.id().as_str()),
            Err(CryptoError::CurrentKey(new.id().to_string()))
        );
        ring.retire(old.id().as_str()).expect("retire the old key");
        assert_eq!(
            ring.open(&before, "dock-1").map(|s| s.expose().to_string()),
            Err(CryptoError::UnknownKey(old.id().to_string()))
        );
        assert!(Keyring::parse(" \n").is_err());
        assert!(Keyring::parse(&format!("{},not-a-key", new.to_hex())).is_err());
    }
}

//! Docks: a provider account connected to an organisation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DockId, OrgId, SealedSecret, Timestamp};

/// The providers StackDock has adapters for. The text form is what users type
/// (`--provider digitalocean`) and what rows store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Vercel,
    Netlify,
    Cloudflare,
    DigitalOcean,
    Vultr,
    Turso,
    Docker,
}

impl Provider {
    pub const ALL: [Provider; 7] = [
        Self::Vercel,
        Self::Netlify,
        Self::Cloudflare,
        Self::DigitalOcean,
        Self::Vultr,
        Self::Turso,
        Self::Docker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vercel => "vercel",
            Self::Netlify => "netlify",
            Self::Cloudflare => "cloudflare",
            Self::DigitalOcean => "digitalocean",
            Self::Vultr => "vultr",
            Self::Turso => "turso",
            Self::Docker => "docker",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                format!("unknown provider {s:?}; known: {}", known.join(", "))
            })
    }
}

/// A dock name: what users type after `--dock`. Lowercase letters, digits and dashes, so it
/// is never mistaken for an id and reads well in a shell.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DockName(String);

impl DockName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DockName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if s.is_empty() || s.len() > 63 {
            return Err("dock name must be 1 to 63 characters".into());
        }
        if !ok_chars || s.starts_with('-') || s.ends_with('-') {
            return Err(format!(
                "dock name {s:?} may hold only lowercase letters, digits and inner dashes"
            ));
        }
        Ok(Self(s))
    }
}

impl From<DockName> for String {
    fn from(n: DockName) -> String {
        n.0
    }
}

impl fmt::Display for DockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A dock as stored. The API key is only ever held sealed here; adapters get it opened, in
/// memory, for the length of one operation.
#[derive(Clone, Debug)]
pub struct Dock {
    pub id: DockId,
    pub org_id: OrgId,
    pub provider: Provider,
    pub name: DockName,
    pub sealed_api_key: SealedSecret,
    /// Overrides the provider's public base URL (sandbox, tests, regional endpoints).
    pub api_base_url: Option<String>,
    pub settings: serde_json::Value,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dock_names_are_checked() {
        assert!(DockName::try_from("do-main".to_string()).is_ok());
        for bad in ["", "Has Caps", "-lead", "trail-", "sp ace", &"a".repeat(64)] {
            assert!(DockName::try_from(bad.to_string()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn providers_parse_and_name_the_known_ones_on_error() {
        assert_eq!(
            "digitalocean".parse::<Provider>(),
            Ok(Provider::DigitalOcean)
        );
        let err = "aws".parse::<Provider>().unwrap_err();
        assert!(err.contains("digitalocean") && err.contains("aws"));
    }
}

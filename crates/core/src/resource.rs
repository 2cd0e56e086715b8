//! The universal resource model: one shape for every server, web service, domain and
//! database, whether StackDock provisioned it (`api`) or found it in the account (`manual`).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{DockId, Marker, OrgId, ProvisioningState, ResourceId, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Server,
    WebService,
    Domain,
    Database,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 4] =
        [Self::Server, Self::WebService, Self::Domain, Self::Database];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::WebService => "web_service",
            Self::Domain => "domain",
            Self::Database => "database",
        }
    }

    /// The universal table that holds this kind.
    pub fn table(self) -> &'static str {
        match self {
            Self::Server => "servers",
            Self::WebService => "web_services",
            Self::Domain => "domains",
            Self::Database => "databases",
        }
    }

    /// The collection name in URLs and on the command line.
    pub fn collection(self) -> &'static str {
        match self {
            Self::Server => "servers",
            Self::WebService => "web-services",
            Self::Domain => "domains",
            Self::Database => "databases",
        }
    }

    pub fn from_collection(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.collection() == s)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s || k.collection() == s)
            .ok_or_else(|| format!("unknown resource kind {s:?}"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProvisioningSource {
    /// Created through StackDock.
    Api,
    /// Found in the provider account by discovery.
    Manual,
}

impl ProvisioningSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Manual => "manual",
        }
    }
}

impl FromStr for ProvisioningSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api" => Ok(Self::Api),
            "manual" => Ok(Self::Manual),
            _ => Err(format!("unknown provisioning source {s:?}")),
        }
    }
}

/// Why a resource failed, in the provider's own words where the provider gave them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceError {
    pub message: String,
    pub code: String,
    pub timestamp: Timestamp,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServerDetails {
    pub region: Option<String>,
    pub size: Option<String>,
    pub image: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebServiceDetails {
    pub production_url: Option<String>,
    pub source: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DomainDetails {
    #[serde(default)]
    pub records: serde_json::Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DatabaseDetails {
    pub engine: Option<String>,
    pub region: Option<String>,
    pub host: Option<String>,
}

/// The kind-specific columns, tagged by `kind` so that a resource serializes flat:
/// `{"kind": "server", "region": "nyc3", ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResourceDetails {
    Server(ServerDetails),
    WebService(WebServiceDetails),
    Domain(DomainDetails),
    Database(DatabaseDetails),
}

impl ResourceDetails {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Self::Server(_) => ResourceKind::Server,
            Self::WebService(_) => ResourceKind::WebService,
            Self::Domain(_) => ResourceKind::Domain,
            Self::Database(_) => ResourceKind::Database,
        }
    }

    pub fn empty(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::Server => Self::Server(ServerDetails::default()),
            ResourceKind::WebService => Self::WebService(WebServiceDetails::default()),
            ResourceKind::Domain => Self::Domain(DomainDetails::default()),
            ResourceKind::Database => Self::Database(DatabaseDetails::default()),
        }
    }
}

/// One row of a universal table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub id: ResourceId,
    pub org_id: OrgId,
    pub dock_id: DockId,
    pub provider: String,
    /// The provider's own id, known once the create call has answered (or the resource was
    /// adopted by its marker).
    pub provider_resource_id: Option<String>,
    pub name: String,
    /// The provider's own status word (`new`, `active`, ...), as last observed.
    pub status: Option<String>,
    pub provisioning_source: ProvisioningSource,
    pub provisioning_state: ProvisioningState,
    pub provisioned_at: Option<Timestamp>,
    /// The provider's last full answer for this resource, with secrets redacted.
    pub full_api_data: serde_json::Value,
    pub error: Option<ResourceError>,
    /// Present on resources StackDock created; `None` on discovered ones.
    pub marker: Option<Marker>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped on every write; a writer that read an older version loses (optimistic
    /// concurrency).
    pub version: i64,
    #[serde(flatten)]
    pub details: ResourceDetails,
}

impl Resource {
    pub fn kind(&self) -> ResourceKind {
        self.details.kind()
    }
}

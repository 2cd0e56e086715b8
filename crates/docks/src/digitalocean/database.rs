//! Provisioning managed database clusters on the v2 contract.
//!
//! A cluster is tagged like a droplet: [`SHARED_TAG`] and its own marker. The marker finds
//! it after a lost answer (`GET /v2/databases?tag_name=<marker>`); the shared tag lets the
//! engine check every waiting cluster of an account with one listing (the database list has
//! no pages).
//!
//! Steps, recorded in order:
//! 1. [`DatabaseStep::ClusterCreateSent`] — before `POST /v2/databases`; undoing it finds
//!    and deletes any cluster carrying the marker.
//! 2. [`DatabaseStep::ClusterCreated`] — the cluster's id, created or adopted; undoing it
//!    deletes the cluster.
//!
//! Readiness is DigitalOcean's own: `status` `online`. The cluster's connection details
//! carry the `doadmin` password; the client removes every credential from the answers as it
//! reads them ([`super::api`]), so none is ever stored, logged or shown.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::adapter::{
    SHARED_TAG, create_once_or_adopt, listed_or_read, progress, tags_with_marker,
};
use super::api::{CreateDatabase, Database, DigitalOceanApi};

/// How soon to look at a new cluster, or one being deleted. DigitalOcean takes minutes to
/// bring one online; the engine spaces its checks by the dock's budget anyway.
const FIRST_CHECK: Duration = Duration::from_millis(500);

/// The engine `doctl databases create` uses when none is given ("Default: pg",
/// https://docs.digitalocean.com/reference/doctl/reference/databases/create/).
fn default_engine() -> Engine {
    Engine::Pg
}

/// The node size `doctl databases create` uses when none is given ("Default:
/// db-s-1vcpu-1gb", same page).
fn default_size() -> Slug {
    Slug::try_from("db-s-1vcpu-1gb".to_string()).unwrap_or_else(|_| unreachable!())
}

/// The region `doctl databases create` uses when none is given ("Default: nyc1", same
/// page).
fn default_region() -> Slug {
    Slug::try_from("nyc1".to_string()).unwrap_or_else(|_| unreachable!())
}

/// The node count `doctl databases create` uses when none is given ("Default: 1", same
/// page).
fn default_nodes() -> NodeCount {
    NodeCount(1)
}

/// The engines of the `database_cluster` schema that can still be created (`redis`
/// creates ended on 2025-04-30).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Pg,
    Mysql,
    Valkey,
    Mongodb,
    Kafka,
    Opensearch,
    AdvancedPg,
    AdvancedMysql,
}

impl Engine {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pg => "pg",
            Self::Mysql => "mysql",
            Self::Valkey => "valkey",
            Self::Mongodb => "mongodb",
            Self::Kafka => "kafka",
            Self::Opensearch => "opensearch",
            Self::AdvancedPg => "advanced_pg",
            Self::AdvancedMysql => "advanced_mysql",
        }
    }
}

/// A cluster's node count: 1 to 3 (a primary and up to two standbys).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(try_from = "u8")]
pub struct NodeCount(u8);

impl JsonSchema for NodeCount {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NodeCount".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "integer", "minimum": 1, "maximum": 3})
    }
}

impl TryFrom<u8> for NodeCount {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        if (1..=3).contains(&n) {
            Ok(Self(n))
        } else {
            Err(format!("{n} nodes: a cluster has 1 to 3"))
        }
    }
}

/// The config of a database cluster (`POST /v2/databases`). Everything but the name has
/// `doctl databases create`'s default.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Cluster name: lowercase letters, digits and dashes.
    pub name: Slug,
    /// pg, mysql, valkey, mongodb, kafka, opensearch, advanced_pg or advanced_mysql.
    #[serde(default = "default_engine")]
    pub engine: Engine,
    /// Engine version, e.g. 17; DigitalOcean's current one when not set.
    #[serde(default)]
    pub version: Option<Text>,
    /// Node size slug.
    #[serde(default = "default_size")]
    pub size: Slug,
    /// Region slug.
    #[serde(default = "default_region")]
    pub region: Slug,
    /// Nodes in the cluster, 1 to 3.
    #[serde(default = "default_nodes")]
    pub num_nodes: NodeCount,
    /// Storage beyond what the size includes, in MiB.
    #[serde(default)]
    pub storage_size_mib: Option<u64>,
    /// VPC to place the cluster in; the region's default VPC when not set.
    #[serde(default)]
    pub private_network_uuid: Option<Text>,
    /// Project to assign the cluster to; the default project when not set.
    #[serde(default)]
    pub project_id: Option<Text>,
    /// Extra tags.
    #[serde(default)]
    pub tags: Vec<Text>,
}

/// The steps of a cluster's provision.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum DatabaseStep {
    ClusterCreateSent { marker: Marker },
    ClusterCreated { cluster_id: String, adopted: bool },
}

impl AdapterStep for DatabaseStep {
    fn name(&self) -> &'static str {
        match self {
            Self::ClusterCreateSent { .. } => "cluster_create_sent",
            Self::ClusterCreated { .. } => "cluster_created",
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::ClusterCreated { cluster_id, .. } => Some(cluster_id),
            Self::ClusterCreateSent { .. } => None,
        }
    }
}

/// The cluster carrying `marker`; the oldest, should an earlier try have made two.
pub async fn by_marker(
    api: &DigitalOceanApi,
    marker: &Marker,
) -> Result<Option<Database>, DockError> {
    let mut found = api.list_databases(Some(marker.as_str())).await?;
    found.sort_by(|a, b| {
        a.raw["created_at"]
            .as_str()
            .cmp(&b.raw["created_at"].as_str())
    });
    Ok(found.into_iter().next())
}

pub fn observe(d: Database) -> Observed {
    Observed {
        provider_resource_id: d.id,
        marker: d.tags.iter().find_map(|t| Marker::try_from(t.clone()).ok()),
        name: d.name,
        ready: d.status == "online",
        failure: None,
        status: Some(d.status),
        details: ResourceDetails::Database(DatabaseDetails {
            engine: d.engine,
            region: d.region,
            host: d.host,
        }),
        full_api_data: d.raw,
    }
}

pub async fn provision(
    ctx: &mut Ctx,
    api: &DigitalOceanApi,
    config: &Map<String, Value>,
) -> Result<Progress, DockError> {
    let config: DatabaseConfig = config::parse(config)?;
    if ctx.step::<DatabaseStep>("cluster_created")?.is_some() {
        // Created by an earlier run: the engine's checks take it from here.
        return Ok(Progress::Pending {
            status: None,
            check_in: FIRST_CHECK,
        });
    }
    let marker = ctx.marker()?.clone();
    let sent_before = ctx.step::<DatabaseStep>("cluster_create_sent")?.is_some();
    ctx.record_before_sending(&DatabaseStep::ClusterCreateSent {
        marker: marker.clone(),
    })
    .await?;

    let tags = tags_with_marker(config.tags, &marker);
    let req = CreateDatabase {
        name: config.name.into(),
        engine: config.engine.as_str().into(),
        version: config.version.map(String::from),
        num_nodes: config.num_nodes.0,
        size: config.size.into(),
        region: config.region.into(),
        tags,
        storage_size_mib: config.storage_size_mib,
        private_network_uuid: config.private_network_uuid.map(String::from),
        project_id: config.project_id.map(String::from),
    };
    let created = create_once_or_adopt(
        ctx,
        "cluster_create_sent",
        sent_before,
        |attempt| api.create_database(&req, attempt),
        || by_marker(api, &marker),
    )
    .await?;
    let adopted = created.adopted();
    let cluster = created.into_inner();
    ctx.record(&DatabaseStep::ClusterCreated {
        cluster_id: cluster.id.clone(),
        adopted,
    })
    .await?;
    Ok(progress(observe(cluster), FIRST_CHECK))
}

pub async fn undo(api: &DigitalOceanApi, step: DatabaseStep) -> Result<(), DockError> {
    match step {
        DatabaseStep::ClusterCreated { cluster_id, .. } => api.delete_database(&cluster_id).await,
        DatabaseStep::ClusterCreateSent { marker } => {
            for cluster in api.list_databases(Some(marker.as_str())).await? {
                api.delete_database(&cluster.id).await?;
            }
            Ok(())
        }
    }
}

/// The tracked clusters as DigitalOcean shows them now: one listing of those carrying the
/// shared tag (the list has no pages), and a read each for the rest.
pub async fn observe_many(
    api: &DigitalOceanApi,
    targets: &[Tracked],
) -> Result<Vec<Option<Observed>>, DockError> {
    let listed = api
        .list_databases(Some(SHARED_TAG))
        .await?
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect();
    listed_or_read(
        targets,
        listed,
        |id| async move { api.get_database(&id).await },
        observe,
    )
    .await
}

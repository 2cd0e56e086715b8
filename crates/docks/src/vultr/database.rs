//! Provisioning Vultr managed databases on the v2 contract.
//!
//! A managed database carries one tag, and StackDock's marker is it: the marker finds the
//! database after a lost answer or a crash (`GET /databases?tag=<marker>`). The user's name
//! is its label.
//!
//! Steps, recorded in order:
//! 1. [`VultrStep::DatabaseCreateSent`] — before `POST /databases` goes out. Undoing it
//!    finds and deletes whatever carries the marker.
//! 2. [`VultrStep::DatabaseCreated`] — the database's id, created or adopted, with its admin
//!    password sealed by the engine the way dock keys are (`Ctx::seal`): the step holds
//!    ciphertext only, and the password never reaches `full_api_data`, the journal or a log
//!    (every answer is read without its credential fields). Undoing it deletes the database.
//!
//! Readiness is Vultr's own: `status` `Running` (`Rebuilding` until then).

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use stackdock_docks::prelude::*;

use super::adapter::{VultrStep, begin_create, create_by_marker};
use super::api::{CreateDatabase, Database, VultrApi};

/// How soon to look at a new database. Vultr takes minutes to build one; the engine spaces its
/// checks by the dock's budget anyway, this is only the earliest.
const FIRST_CHECK: Duration = Duration::from_secs(1);

/// The config of a managed database (`POST /databases`). Vultr's CLI
/// (`vultr-cli database create`) has no default for the engine, its version, the region or
/// the plan, and Vultr requires each: so they are required here too, by name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The database's label, StackDock's name for it.
    pub name: Text,
    /// mysql, pg or redis.
    pub engine: Slug,
    /// The engine's version, e.g. 16 for pg, 8 for mysql.
    pub engine_version: EngineVersion,
    /// Region id, e.g. ewr.
    pub region: Slug,
    /// Plan id, e.g. vultr-dbaas-hobbyist-cc-1-25-1, as `GET /databases/plans` lists them.
    pub plan: Slug,
    /// VPC to attach the database to.
    #[serde(default)]
    pub vpc_id: Option<Text>,
    /// Day of the week for maintenance, e.g. sunday.
    #[serde(default)]
    pub maintenance_dow: Option<Slug>,
    /// Time of day for maintenance, e.g. 06:00.
    #[serde(default)]
    pub maintenance_time: Option<Text>,
    /// Addresses or CIDR ranges allowed to connect.
    #[serde(default)]
    pub trusted_ips: Vec<Text>,
}

/// An engine version: Vultr takes it as text, and a user typing `16` means the same as
/// `"16"`, so either is read.
#[derive(Debug, Deserialize)]
#[serde(try_from = "VersionInput")]
pub struct EngineVersion(String);

#[derive(Deserialize)]
#[serde(untagged)]
enum VersionInput {
    Text(String),
    Number(u32),
}

impl TryFrom<VersionInput> for EngineVersion {
    type Error = String;
    fn try_from(input: VersionInput) -> Result<Self, String> {
        let text = match input {
            VersionInput::Text(text) => text.trim().to_string(),
            VersionInput::Number(n) => n.to_string(),
        };
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Self(text))
    }
}

impl JsonSchema for EngineVersion {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EngineVersion".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "integer"],
            "minLength": 1,
            "description": "The engine's version, as text or a whole number",
        })
    }
}

/// The database carrying `marker`. A marker is unique, so more than one would be our own
/// bug; the oldest is the one an earlier try made first.
pub(crate) async fn by_marker(
    api: &VultrApi,
    marker: &Marker,
) -> Result<Option<Database>, DockError> {
    Ok(api
        .list_databases(Some(marker.as_str()))
        .await?
        .into_iter()
        .filter(|d| d.tag == marker.as_str())
        .min_by(|a, b| date_created(a).cmp(date_created(b))))
}

fn date_created(d: &Database) -> &str {
    d.raw["date_created"].as_str().unwrap_or_default()
}

pub(crate) fn observe(d: Database) -> Observed {
    Observed {
        provider_resource_id: d.id,
        name: d.label,
        ready: d.status == "Running",
        failure: None,
        status: Some(d.status),
        marker: Marker::try_from(d.tag).ok(),
        details: ResourceDetails::Database(DatabaseDetails {
            engine: d.engine,
            region: d.region,
            host: d.host,
        }),
        full_api_data: d.raw,
    }
}

pub(crate) async fn provision(
    ctx: &mut Ctx,
    api: &VultrApi,
    config: &Map<String, Value>,
) -> Result<Progress, DockError> {
    let config: DatabaseConfig = config::parse(config)?;
    let marker = ctx.marker()?.clone();
    let sent = VultrStep::DatabaseCreateSent {
        marker: marker.clone(),
    };
    let Some(sent_before) = begin_create(ctx, "database_created", &sent).await? else {
        // Created by an earlier run: the engine's checks take it from here.
        return Ok(Progress::Pending {
            status: None,
            check_in: FIRST_CHECK,
        });
    };
    let req = CreateDatabase {
        database_engine: config.engine.into(),
        database_engine_version: config.engine_version.0,
        region: config.region.into(),
        plan: config.plan.into(),
        label: config.name.into(),
        tag: marker.to_string(),
        vpc_id: config.vpc_id.map(String::from),
        maintenance_dow: config.maintenance_dow.map(String::from),
        maintenance_time: config.maintenance_time.map(String::from),
        trusted_ips: config.trusted_ips.into_iter().map(String::from).collect(),
    };
    let created = create_by_marker(
        ctx,
        sent.name(),
        sent_before,
        |attempt| api.create_database(&req, attempt),
        || by_marker(api, &marker),
    )
    .await?;
    let adopted = created.adopted();
    let mut database = created.into_inner();
    let sealed = match database.password.take() {
        Some(password) => Some(ctx.seal(&password)?.as_str().to_string()),
        None => None,
    };
    ctx.record(&VultrStep::DatabaseCreated {
        database_id: database.id.clone(),
        adopted,
        sealed_password: sealed,
    })
    .await?;
    let seen = observe(database);
    Ok(if seen.ready {
        Progress::Done(Some(Box::new(seen)))
    } else {
        Progress::Pending {
            status: seen.status,
            check_in: FIRST_CHECK,
        }
    })
}

/// Deletes whatever lost answers made with `marker`.
pub(crate) async fn undo_create_sent(api: &VultrApi, marker: &Marker) -> Result<(), DockError> {
    for database in api.list_databases(Some(marker.as_str())).await? {
        if database.tag == marker.as_str() {
            api.delete_database(&database.id).await?;
        }
    }
    Ok(())
}

/// One listing answers for every database of the account.
pub(crate) async fn observe_many(
    api: &VultrApi,
    targets: &[Tracked],
) -> Result<Vec<Option<Observed>>, DockError> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let mut listed: std::collections::HashMap<String, Database> = api
        .list_databases(None)
        .await?
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect();
    Ok(targets
        .iter()
        .map(|t| listed.remove(&t.provider_resource_id).map(observe))
        .collect())
}

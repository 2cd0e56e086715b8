//! Provisioning Turso databases on the v2 contract.
//!
//! Turso has no tags or labels, so a database StackDock creates is named after its marker:
//! [`database_name`] gives `stackdock-<12 hex digits>`, a valid Turso name that finds the
//! database again after a lost answer or a crash with one read
//! (`GET .../databases/{name}`). The name the user gave is StackDock's name for the row.
//!
//! Steps, recorded in order:
//! 1. [`TursoStep::GroupChecked`] — whether the group existed, recorded before a missing one
//!    is created (`POST .../groups`, repeated on a resumed run: a second create is a 409).
//!    Undoing it deletes a group this operation created, and only while it holds no database:
//!    deleting a group deletes its databases, and one a user added since must stay.
//! 2. [`TursoStep::CreateSent`] — before `POST .../databases` goes out. From here on the
//!    database may exist; undoing it deletes it by its name.
//! 3. [`TursoStep::Created`] — the database, created or adopted; the engine writes its name
//!    onto the resource row with it. Undoing it deletes the database.
//! 4. [`TursoStep::TokenMintSent`] — before a token is asked for. A token's answer that is
//!    lost leaves a working token nobody holds; tokens cannot be looked up, so before minting
//!    again (and by undoing this) every token of the database is revoked.
//! 5. [`TursoStep::TokenMinted`] — a full-access database token, sealed by the engine the way
//!    dock keys are (`Ctx::seal`): the step holds ciphertext only, and the token is never in
//!    `full_api_data`, the journal, a log or an answer. Undoing it invalidates the database's
//!    tokens.
//!
//! Readiness: a Turso database has no status field; it is usable once it exists, so a
//! provision answers `Done` as soon as the token is kept. Turso deletes synchronously too.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::api::{self, CreateDatabase, CreateGroup, Database, TursoApi};

/// The group a database goes to when the config names none: the one Turso's own CLI creates
/// for an account's first database.
const DEFAULT_GROUP: &str = "default";

/// Where a new group is placed when the config names no location. Turso's CLI picks the
/// location closest to the machine it runs on, which a server cannot stand in for; this is
/// the location Turso's API reference uses in its own group example.
const DEFAULT_LOCATION: &str = "aws-us-east-1";

/// The engine of every Turso database.
const ENGINE: &str = "libsql";

/// The settings of a Turso dock: every path of Turso's API names the organization.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockSettings {
    /// The slug of the Turso organization (or personal account) the dock works in, as
    /// `turso org list` shows it.
    pub organization: Slug,
}

/// The config of a database (`POST .../databases`, with its group made sure of first).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// StackDock's name for the database. At Turso the database is named after its marker.
    pub name: Text,
    /// The group to create the database in; made if missing. Default: `default`.
    #[serde(default)]
    pub group: Option<Slug>,
    /// Where a missing group is created, e.g. aws-us-east-1. Default: aws-us-east-1.
    #[serde(default)]
    pub location: Option<Slug>,
    /// The most the database may hold, e.g. 256mb.
    #[serde(default)]
    pub size_limit: Option<Text>,
}

/// The steps of a database's provision.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum TursoStep {
    GroupChecked {
        group: String,
        existed: bool,
    },
    CreateSent {
        marker: Marker,
        database: String,
    },
    Created {
        database: String,
        hostname: Option<String>,
        adopted: bool,
    },
    /// Recorded before a token is asked for: from here on the database may have a working
    /// token nobody holds (its answer lost), so every token of the database is revoked before
    /// another is minted, and by undoing this.
    TokenMintSent {
        database: String,
    },
    /// The token as the engine sealed it (`v1:<key id>:<nonce>:<ciphertext>`).
    TokenMinted {
        database: String,
        sealed: String,
    },
}

impl AdapterStep for TursoStep {
    fn name(&self) -> &'static str {
        match self {
            Self::GroupChecked { .. } => "group_checked",
            Self::CreateSent { .. } => "create_sent",
            Self::Created { .. } => "created",
            Self::TokenMintSent { .. } => "token_mint_sent",
            Self::TokenMinted { .. } => "token_minted",
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::Created { database, .. } => Some(database),
            _ => None,
        }
    }
}

/// The Turso name of the database carrying `marker`.
pub fn database_name(marker: &Marker) -> String {
    marker.as_str().to_string()
}

pub struct TursoAdapter {
    client: reqwest::Client,
    /// Derived once from [`DatabaseConfig`]: every request is checked against it.
    database_schema: ConfigSchema,
    settings_schema: ConfigSchema,
}

impl TursoAdapter {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            database_schema: ConfigSchema::of::<DatabaseConfig>(),
            settings_schema: ConfigSchema::of::<DockSettings>(),
        }
    }

    fn api(&self, ctx: &Ctx, dock: &DockAccess) -> Result<TursoApi, DockError> {
        let http = HttpSession::new(
            self.client.clone(),
            dock,
            super::DEFAULT_BASE_URL,
            ctx,
            api::read_error,
        );
        Ok(TursoApi::new(http, organization(dock)?))
    }

    fn databases_only(&self, kind: ResourceKind) -> Result<(), DockError> {
        if kind == ResourceKind::Database {
            Ok(())
        } else {
            Err(self.unsupported(kind))
        }
    }
}

/// The organization the dock names, checked when it was connected; a dock without one cannot
/// reach any database.
fn organization(dock: &DockAccess) -> Result<&str, DockError> {
    dock.settings["organization"]
        .as_str()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| {
            DockError::InvalidConfig(ConfigError::new(
                "organization",
                format!(
                    "dock {} names no Turso organization; connect it with \
                     `--setting organization=<slug>`",
                    dock.name
                ),
            ))
        })
}

fn observe(db: Database) -> Observed {
    let marker = Marker::try_from(db.name.clone()).ok();
    Observed {
        provider_resource_id: db.name.clone(),
        name: db.name,
        // Turso reports no status: a database that exists is ready.
        status: None,
        ready: true,
        failure: None,
        marker,
        details: ResourceDetails::Database(DatabaseDetails {
            engine: Some(ENGINE.into()),
            region: db.primary_region,
            host: db.hostname,
        }),
        full_api_data: db.raw,
    }
}

/// The database as it was created: the create's answer holds only its id, name and hostname.
fn created(db: Database, group: &str, location: Option<&str>) -> Observed {
    let mut seen = observe(db);
    if let Value::Object(raw) = &mut seen.full_api_data {
        raw.entry("group").or_insert_with(|| json!(group));
    }
    if let ResourceDetails::Database(details) = &mut seen.details
        && details.region.is_none()
    {
        details.region = location.map(str::to_string);
    }
    seen
}

#[async_trait]
impl DockAdapter for TursoAdapter {
    fn provider(&self) -> Provider {
        Provider::Turso
    }

    fn kinds(&self) -> &[ResourceKind] {
        &[ResourceKind::Database]
    }

    fn config_schema(&self, kind: ResourceKind) -> Option<ConfigSchema> {
        (kind == ResourceKind::Database).then(|| self.database_schema.clone())
    }

    fn dock_settings_schema(&self) -> Option<ConfigSchema> {
        Some(self.settings_schema.clone())
    }

    async fn verify_credentials(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<(), DockError> {
        let api = self.api(ctx, dock)?;
        api.validate_token().await?;
        // A key Turso accepts may still not reach the organization the dock names.
        api.get_organization().await.map(drop)
    }

    async fn provision_database(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        let config: DatabaseConfig = config::parse(config)?;
        let api = self.api(ctx, dock)?;
        let group = config
            .group
            .map(String::from)
            .unwrap_or_else(|| DEFAULT_GROUP.into());
        let location = config.location.map(String::from);

        // The group matters only until the database exists.
        if ctx.step::<TursoStep>("created")?.is_none() {
            let existed = match ctx.step::<TursoStep>("group_checked")? {
                Some(TursoStep::GroupChecked { existed, .. }) => existed,
                _ => {
                    let existed = api.group_exists(&group).await?;
                    ctx.record(&TursoStep::GroupChecked {
                        group: group.clone(),
                        existed,
                    })
                    .await?;
                    existed
                }
            };
            if !existed {
                api.create_group(&CreateGroup {
                    name: group.clone(),
                    location: location.clone().unwrap_or_else(|| DEFAULT_LOCATION.into()),
                })
                .await?;
            }
        }

        let marker = ctx.marker()?.clone();
        let name = database_name(&marker);
        let database = match ctx.step::<TursoStep>("created")? {
            // Created by an earlier run: read it back.
            Some(_) => api
                .get_database(&name)
                .await?
                .ok_or_else(|| DockError::ResourceFailed {
                    provider: Provider::Turso,
                    code: "gone".into(),
                    message: format!("database {name} was deleted while it was provisioned"),
                })?,
            None => {
                let sent_before = ctx.step::<TursoStep>("create_sent")?.is_some();
                ctx.record_before_sending(&TursoStep::CreateSent {
                    marker: marker.clone(),
                    database: name.clone(),
                })
                .await?;
                let req = CreateDatabase {
                    name: name.clone(),
                    group: group.clone(),
                    size_limit: config.size_limit.map(String::from),
                };
                let made = create_or_adopt(
                    ctx,
                    sent_before,
                    |attempt| api.create_database(&req, attempt),
                    || api.get_database(&name),
                )
                .await;
                let made = match made {
                    Ok(made) => made,
                    // The name is this resource's own: a database holding it is the one an
                    // earlier try made, whose answer never arrived.
                    Err(DockError::Provider(p)) if p.status == 409 => {
                        match api.get_database(&name).await? {
                            Some(db) => Created::Adopted(db),
                            None => return Err(DockError::Provider(p)),
                        }
                    }
                    Err(e) => return Err(e),
                };
                let adopted = made.adopted();
                let db = made.into_inner();
                ctx.record(&TursoStep::Created {
                    database: db.name.clone(),
                    hostname: db.hostname.clone(),
                    adopted,
                })
                .await?;
                db
            }
        };

        if ctx.step::<TursoStep>("token_minted")?.is_none() {
            let sent_before = ctx.step::<TursoStep>("token_mint_sent")?.is_some();
            ctx.record_before_sending(&TursoStep::TokenMintSent {
                database: name.clone(),
            })
            .await?;
            // A token cannot be looked up: after a lost answer (and before the first try of a
            // run that may follow one) the database's tokens are revoked instead, which leaves
            // nothing to find, so the token is minted again. The database is this resource's
            // own: every token it has was minted for it.
            let token = create_or_adopt(
                ctx,
                sent_before,
                |attempt| api.create_token(&name, attempt),
                || async { api.invalidate_tokens(&name).await.map(|()| None) },
            )
            .await?
            .into_inner();
            let sealed = ctx.seal(&token)?;
            drop(token);
            ctx.record(&TursoStep::TokenMinted {
                database: name.clone(),
                sealed: sealed.as_str().to_string(),
            })
            .await?;
        }
        let location = location.as_deref().or(Some(DEFAULT_LOCATION));
        Ok(Progress::Done(Some(Box::new(created(
            database, &group, location,
        )))))
    }

    async fn deprovision(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        target: &Tracked,
    ) -> Result<Progress, DockError> {
        self.databases_only(target.kind)?;
        // Turso deletes at once: the answer says the database is gone.
        self.api(ctx, dock)?
            .delete_database(&target.provider_resource_id)
            .await?;
        Ok(Progress::Done(None))
    }

    async fn undo(&self, ctx: &mut Ctx, dock: &DockAccess, step: &Step) -> Result<(), DockError> {
        let api = self.api(ctx, dock)?;
        match decode_step::<TursoStep>(step)? {
            TursoStep::GroupChecked { existed: true, .. } => Ok(()),
            TursoStep::GroupChecked {
                group,
                existed: false,
            } => api.delete_group_if_empty(&group).await.map(drop),
            TursoStep::CreateSent { database, .. } | TursoStep::Created { database, .. } => {
                api.delete_database(&database).await
            }
            TursoStep::TokenMintSent { database } | TursoStep::TokenMinted { database, .. } => {
                api.invalidate_tokens(&database).await
            }
        }
    }

    async fn observe_many(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        targets: &[Tracked],
    ) -> Result<Vec<Option<Observed>>, DockError> {
        self.databases_only(kind)?;
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        // One listing answers for every database of the organization.
        let mut listed: HashMap<String, Database> = self
            .api(ctx, dock)?
            .list_databases(None)
            .await?
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        Ok(targets
            .iter()
            .map(|t| listed.remove(&t.provider_resource_id).map(observe))
            .collect())
    }

    async fn find_by_marker(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        marker: &Marker,
    ) -> Result<Option<Observed>, DockError> {
        self.databases_only(kind)?;
        Ok(self
            .api(ctx, dock)?
            .get_database(&database_name(marker))
            .await?
            .map(observe))
    }

    async fn discover(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<Vec<Observed>, DockError> {
        let databases = self.api(ctx, dock)?.list_databases(None).await?;
        Ok(databases.into_iter().map(observe).collect())
    }
}

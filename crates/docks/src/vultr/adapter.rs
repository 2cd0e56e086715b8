//! The Vultr adapter on the v2 contract: one step type for every kind, and the trait's
//! methods handing each kind to its file (instances in [`super::instance`], domains in
//! [`super::domain`], managed databases in [`super::database`]).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::api::{self, VultrApi};
use super::database::{self, DatabaseConfig};
use super::domain::{self, DomainConfig};
use super::instance::{self, ServerConfig};

/// The steps of a Vultr provision, whatever its kind. Names are unique across kinds, so a
/// recorded step always decodes as what it was.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum VultrStep {
    InstanceCreateSent {
        marker: Marker,
    },
    InstanceCreated {
        instance_id: String,
        adopted: bool,
    },
    DomainCreateSent {
        marker: Marker,
        domain: String,
    },
    DomainCreated {
        domain: String,
        adopted: bool,
    },
    /// The marker's record first, then the config's, in order.
    RecordsCreated {
        domain: String,
        record_ids: Vec<String>,
    },
    DatabaseCreateSent {
        marker: Marker,
    },
    /// The admin password as the engine sealed it (`v1:<key id>:<nonce>:<ciphertext>`).
    DatabaseCreated {
        database_id: String,
        adopted: bool,
        sealed_password: Option<String>,
    },
}

impl AdapterStep for VultrStep {
    fn name(&self) -> &'static str {
        match self {
            Self::InstanceCreateSent { .. } => "instance_create_sent",
            Self::InstanceCreated { .. } => "instance_created",
            Self::DomainCreateSent { .. } => "domain_create_sent",
            Self::DomainCreated { .. } => "domain_created",
            Self::RecordsCreated { .. } => "records_created",
            Self::DatabaseCreateSent { .. } => "database_create_sent",
            Self::DatabaseCreated { .. } => "database_created",
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::InstanceCreated { instance_id, .. } => Some(instance_id),
            Self::DomainCreated { domain, .. } => Some(domain),
            Self::DatabaseCreated { database_id, .. } => Some(database_id),
            Self::InstanceCreateSent { .. }
            | Self::DomainCreateSent { .. }
            | Self::RecordsCreated { .. }
            | Self::DatabaseCreateSent { .. } => None,
        }
    }
}

/// How a create ended: what [`create_or_adopt`] answered, and whether any try may have made
/// the resource all the same (no answer, an answer cut short), which decides whether a
/// refusal means Vultr made nothing.
pub(crate) struct Attempted<T> {
    pub(crate) result: Result<Created<T>, DockError>,
    pub(crate) unsure: bool,
}

/// [`create_or_adopt`], noting whether any try's outcome was unknown. A run resuming after a
/// "create sent" step is unsure from the start.
pub(crate) async fn create_noting<T, C, CF, L, LF>(
    ctx: &Ctx,
    sent_before: bool,
    mut create: C,
    lookup: L,
) -> Attempted<T>
where
    C: FnMut(u32) -> CF,
    CF: Future<Output = Result<T, DockError>>,
    L: FnMut() -> LF,
    LF: Future<Output = Result<Option<T>, DockError>>,
{
    let unsure = AtomicBool::new(sent_before);
    let result = create_or_adopt(
        ctx,
        sent_before,
        |attempt| {
            let sent = create(attempt);
            let unsure = &unsure;
            async move {
                let answer = sent.await;
                if answer.as_ref().is_err_and(DockError::outcome_unknown) {
                    unsure.store(true, Ordering::Relaxed);
                }
                answer
            }
        },
        lookup,
    )
    .await;
    Attempted {
        result,
        unsure: unsure.load(Ordering::Relaxed),
    }
}

/// Where a create stands on this run: `None` when an earlier run already recorded the step
/// named `created`; otherwise `sent` is recorded (a no-op if it was) and the answer says
/// whether an earlier run had sent the create already.
pub(crate) async fn begin_create(
    ctx: &mut Ctx,
    created: &str,
    sent: &VultrStep,
) -> Result<Option<bool>, DockError> {
    if ctx.step::<VultrStep>(created)?.is_some() {
        return Ok(None);
    }
    let sent_before = ctx.step::<VultrStep>(sent.name())?.is_some();
    ctx.record_before_sending(sent).await?;
    Ok(Some(sent_before))
}

/// [`create_noting`] for a resource found by its marker: when Vultr refused every try and no
/// try's outcome was unknown, Vultr made nothing, so the step named `sent` is marked undone
/// and the unwind has nothing to look for. A refusal after a try whose outcome was unknown
/// (a quota reached by that very try, say) is looked up once more: that try may have made
/// the resource, which is then adopted rather than failed and unwound.
pub(crate) async fn create_by_marker<T, C, CF, L, LF>(
    ctx: &mut Ctx,
    sent: &str,
    sent_before: bool,
    create: C,
    mut lookup: L,
) -> Result<Created<T>, DockError>
where
    C: FnMut(u32) -> CF,
    CF: Future<Output = Result<T, DockError>>,
    L: FnMut() -> LF,
    LF: Future<Output = Result<Option<T>, DockError>>,
{
    let attempted = create_noting(ctx, sent_before, create, &mut lookup).await;
    match attempted.result {
        Err(e @ DockError::Provider(_)) if !attempted.unsure => {
            ctx.mark_undone(sent).await?;
            Err(e)
        }
        Err(e @ DockError::Provider(_)) => match lookup().await? {
            Some(found) => Ok(Created::Adopted(found)),
            None => Err(e),
        },
        other => other,
    }
}

pub struct VultrAdapter {
    client: reqwest::Client,
    /// Derived once from each kind's config type: every request is checked against it.
    server_schema: ConfigSchema,
    domain_schema: ConfigSchema,
    database_schema: ConfigSchema,
}

impl VultrAdapter {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            server_schema: ConfigSchema::of::<ServerConfig>(),
            domain_schema: ConfigSchema::of::<DomainConfig>(),
            database_schema: ConfigSchema::of::<DatabaseConfig>(),
        }
    }

    fn api(&self, ctx: &Ctx, dock: &DockAccess) -> VultrApi {
        VultrApi::new(HttpSession::new(
            self.client.clone(),
            dock,
            super::DEFAULT_BASE_URL,
            ctx,
            api::read_error,
        ))
    }

    fn supported(&self, kind: ResourceKind) -> Result<(), DockError> {
        if self.kinds().contains(&kind) {
            Ok(())
        } else {
            Err(self.unsupported(kind))
        }
    }
}

#[async_trait]
impl DockAdapter for VultrAdapter {
    fn provider(&self) -> Provider {
        Provider::Vultr
    }

    fn kinds(&self) -> &[ResourceKind] {
        &[
            ResourceKind::Server,
            ResourceKind::Domain,
            ResourceKind::Database,
        ]
    }

    fn config_schema(&self, kind: ResourceKind) -> Option<ConfigSchema> {
        match kind {
            ResourceKind::Server => Some(self.server_schema.clone()),
            ResourceKind::Domain => Some(self.domain_schema.clone()),
            ResourceKind::Database => Some(self.database_schema.clone()),
            ResourceKind::WebService => None,
        }
    }

    async fn verify_credentials(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<(), DockError> {
        self.api(ctx, dock).get_account().await.map(drop)
    }

    async fn provision_server(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        let api = self.api(ctx, dock);
        instance::provision(ctx, &api, config).await
    }

    async fn provision_domain(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        let api = self.api(ctx, dock);
        domain::provision(ctx, &api, config).await
    }

    async fn provision_database(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        let api = self.api(ctx, dock);
        database::provision(ctx, &api, config).await
    }

    async fn deprovision(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        target: &Tracked,
    ) -> Result<Progress, DockError> {
        self.supported(target.kind)?;
        let api = self.api(ctx, dock);
        match target.kind {
            ResourceKind::Server => instance::deprovision(&api, &target.provider_resource_id).await,
            // Vultr deletes a domain, records and all, before it answers.
            ResourceKind::Domain => {
                api.delete_domain(&target.provider_resource_id).await?;
                Ok(Progress::Done(None))
            }
            // Vultr answers 204 at once and removes the database shortly after; it is gone
            // when a check no longer shows it.
            ResourceKind::Database => {
                api.delete_database(&target.provider_resource_id).await?;
                Ok(Progress::Pending {
                    status: Some("deleting".into()),
                    check_in: std::time::Duration::ZERO,
                })
            }
            other => Err(self.unsupported(other)),
        }
    }

    async fn undo(&self, ctx: &mut Ctx, dock: &DockAccess, step: &Step) -> Result<(), DockError> {
        let api = self.api(ctx, dock);
        match decode_step::<VultrStep>(step)? {
            VultrStep::InstanceCreateSent { marker } => {
                instance::undo_create_sent(&api, &marker).await
            }
            VultrStep::InstanceCreated { instance_id, .. } => {
                api.delete_instance(&instance_id).await
            }
            // Recorded only after a read showed the name free: whatever holds it is ours.
            VultrStep::DomainCreateSent { domain, .. }
            | VultrStep::DomainCreated { domain, .. } => api.delete_domain(&domain).await,
            // The records go with their domain, whose own step is undone next.
            VultrStep::RecordsCreated { .. } => Ok(()),
            VultrStep::DatabaseCreateSent { marker } => {
                database::undo_create_sent(&api, &marker).await
            }
            VultrStep::DatabaseCreated { database_id, .. } => {
                api.delete_database(&database_id).await
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
        self.supported(kind)?;
        let api = self.api(ctx, dock);
        match kind {
            ResourceKind::Server => instance::observe_many(&api, targets).await,
            ResourceKind::Domain => domain::observe_many(&api, targets).await,
            ResourceKind::Database => database::observe_many(&api, targets).await,
            other => Err(self.unsupported(other)),
        }
    }

    async fn find_by_marker(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        marker: &Marker,
    ) -> Result<Option<Observed>, DockError> {
        self.supported(kind)?;
        let api = self.api(ctx, dock);
        match kind {
            ResourceKind::Server => Ok(instance::by_marker(&api, marker)
                .await?
                .map(instance::observe)),
            ResourceKind::Domain => domain::by_marker(&api, marker).await,
            ResourceKind::Database => Ok(database::by_marker(&api, marker)
                .await?
                .map(database::observe)),
            other => Err(self.unsupported(other)),
        }
    }

    async fn discover(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<Vec<Observed>, DockError> {
        let api = self.api(ctx, dock);
        let mut found: Vec<Observed> = api
            .list_instances(None)
            .await?
            .into_iter()
            .map(instance::observe)
            .collect();
        found.extend(domain::read_all(&api).await?);
        let databases = api.list_databases(None).await?;
        found.extend(databases.into_iter().map(database::observe));
        Ok(found)
    }
}

//! The Cloudflare dock on the v2 contract: web services (a Pages project and a direct-upload
//! deployment, in `pages.rs`) and domains (a zone with its DNS records, in `domain.rs`).
//!
//! Zones and Pages projects belong to an account, which `POST /zones` names (`account.id`)
//! and every Pages path holds (`/accounts/{account_id}/pages/...`): a Cloudflare dock carries
//! it in its settings (`account_id`), and listings are filtered to it, so a token reaching
//! several accounts only sees the dock's. The token is checked with `GET /user/tokens/verify`
//! before the dock is saved.

use schemars::JsonSchema;
use serde::Deserialize;
use stackdock_docks::prelude::*;

use super::api::{self, CloudflareApi};
use super::{domain, pages};

/// The settings of a Cloudflare dock.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockSettings {
    /// The id of the Cloudflare account the dock's zones and Pages projects are made in (32 hex digits, shown on
    /// the account's overview page in the dashboard).
    pub account_id: Slug,
}

pub struct CloudflareAdapter {
    client: reqwest::Client,
    web_schema: ConfigSchema,
    domain_schema: ConfigSchema,
    settings_schema: ConfigSchema,
}

impl CloudflareAdapter {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            web_schema: ConfigSchema::of::<pages::WebServiceConfig>(),
            domain_schema: ConfigSchema::of::<domain::DomainConfig>(),
            settings_schema: ConfigSchema::of::<DockSettings>(),
        }
    }

    fn http(&self, ctx: &Ctx, dock: &DockAccess) -> HttpSession {
        HttpSession::new(
            self.client.clone(),
            dock,
            super::DEFAULT_BASE_URL,
            ctx,
            api::read_error,
        )
    }

    fn api(&self, ctx: &Ctx, dock: &DockAccess) -> Result<CloudflareApi, DockError> {
        Ok(CloudflareApi::new(
            self.http(ctx, dock),
            account_id(dock)?.to_string(),
        ))
    }
}

/// The account the dock names; a dock without one can make nothing.
fn account_id(dock: &DockAccess) -> Result<&str, DockError> {
    dock.settings["account_id"]
        .as_str()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            DockError::InvalidConfig(ConfigError::new(
                "account_id",
                format!(
                    "dock {} names no Cloudflare account; connect it with \
                     `--setting account_id=<account id>`",
                    dock.name
                ),
            ))
        })
}

#[async_trait]
impl DockAdapter for CloudflareAdapter {
    fn provider(&self) -> Provider {
        Provider::Cloudflare
    }

    fn kinds(&self) -> &[ResourceKind] {
        &[ResourceKind::WebService, ResourceKind::Domain]
    }

    fn config_schema(&self, kind: ResourceKind) -> Option<ConfigSchema> {
        match kind {
            ResourceKind::WebService => Some(self.web_schema.clone()),
            ResourceKind::Domain => Some(self.domain_schema.clone()),
            _ => None,
        }
    }

    fn dock_settings_schema(&self) -> Option<ConfigSchema> {
        Some(self.settings_schema.clone())
    }

    async fn verify_credentials(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<(), DockError> {
        self.api(ctx, dock)?.verify_token().await
    }

    async fn provision_web_service(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        pages::provision(ctx, &self.api(ctx, dock)?, config).await
    }

    async fn provision_domain(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Progress, DockError> {
        domain::provision(ctx, &self.api(ctx, dock)?, config).await
    }

    async fn deprovision(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        target: &Tracked,
    ) -> Result<Progress, DockError> {
        let api = self.api(ctx, dock)?;
        match target.kind {
            // Deleting the project deletes its deployments; the row tracks it by name.
            ResourceKind::WebService => api.delete_project(&target.provider_resource_id).await?,
            // Deleting the zone deletes its records; Cloudflare answers once it is gone.
            ResourceKind::Domain => api.delete_zone(&target.provider_resource_id).await?,
            other => return Err(self.unsupported(other)),
        }
        Ok(Progress::Done(None))
    }

    async fn undo(&self, ctx: &mut Ctx, dock: &DockAccess, step: &Step) -> Result<(), DockError> {
        let api = self.api(ctx, dock)?;
        if pages::is_pages_step(&step.name) {
            return pages::undo(&api, decode_step(step)?).await;
        }
        domain::undo(&api, decode_step(step)?).await
    }

    async fn observe_many(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        targets: &[Tracked],
    ) -> Result<Vec<Option<Observed>>, DockError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        match kind {
            ResourceKind::WebService => pages::observe_many(&self.api(ctx, dock)?, targets).await,
            ResourceKind::Domain => domain::observe_many(&self.api(ctx, dock)?, targets).await,
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
        match kind {
            ResourceKind::WebService => pages::find_by_marker(&self.api(ctx, dock)?, marker).await,
            ResourceKind::Domain => domain::find_by_marker(&self.api(ctx, dock)?, marker).await,
            other => Err(self.unsupported(other)),
        }
    }

    async fn discover(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<Vec<Observed>, DockError> {
        let api = self.api(ctx, dock)?;
        let mut found = pages::discover(&api).await?;
        found.extend(domain::discover(&api).await?);
        Ok(found)
    }
}

//! The Cloudflare dock on the v2 contract: domains (a zone with its DNS records, in
//! `domain.rs`).
//!
//! Zones belong to an account, which `POST /zones` names (`account.id`): a Cloudflare dock
//! carries it in its settings (`account_id`), and listings are filtered to it, so a token
//! reaching several accounts only sees the dock's. The token is checked with
//! `GET /user/tokens/verify` before the dock is saved.

use schemars::JsonSchema;
use serde::Deserialize;
use stackdock_docks::prelude::*;

use super::api::{self, CloudflareApi};
use super::domain;

/// The settings of a Cloudflare dock.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockSettings {
    /// The id of the Cloudflare account the dock's zones are made in (32 hex digits, shown on
    /// the account's overview page in the dashboard).
    pub account_id: Slug,
}

pub struct CloudflareAdapter {
    client: reqwest::Client,
    domain_schema: ConfigSchema,
    settings_schema: ConfigSchema,
}

impl CloudflareAdapter {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
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

    fn domains_only(&self, kind: ResourceKind) -> Result<(), DockError> {
        if kind == ResourceKind::Domain {
            Ok(())
        } else {
            Err(self.unsupported(kind))
        }
    }
}

/// The account the dock names; a dock without one can make no zone.
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
        &[ResourceKind::Domain]
    }

    fn config_schema(&self, kind: ResourceKind) -> Option<ConfigSchema> {
        (kind == ResourceKind::Domain).then(|| self.domain_schema.clone())
    }

    fn dock_settings_schema(&self) -> Option<ConfigSchema> {
        Some(self.settings_schema.clone())
    }

    async fn verify_credentials(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<(), DockError> {
        self.api(ctx, dock)?.verify_token().await
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
        self.domains_only(target.kind)?;
        // Deleting the zone deletes its records; Cloudflare answers once it is gone.
        self.api(ctx, dock)?
            .delete_zone(&target.provider_resource_id)
            .await?;
        Ok(Progress::Done(None))
    }

    async fn undo(&self, ctx: &mut Ctx, dock: &DockAccess, step: &Step) -> Result<(), DockError> {
        domain::undo(&self.api(ctx, dock)?, decode_step(step)?).await
    }

    async fn observe_many(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        targets: &[Tracked],
    ) -> Result<Vec<Option<Observed>>, DockError> {
        self.domains_only(kind)?;
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        domain::observe_many(&self.api(ctx, dock)?, targets).await
    }

    async fn find_by_marker(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        marker: &Marker,
    ) -> Result<Option<Observed>, DockError> {
        self.domains_only(kind)?;
        domain::find_by_marker(&self.api(ctx, dock)?, marker).await
    }

    async fn discover(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<Vec<Observed>, DockError> {
        domain::discover(&self.api(ctx, dock)?).await
    }
}

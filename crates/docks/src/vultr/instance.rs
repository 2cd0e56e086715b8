//! Provisioning Vultr instances (servers) on the v2 contract.
//!
//! Every instance StackDock creates carries two tags: [`SHARED_TAG`], common to all of them,
//! and its own marker. The marker finds one instance after a lost answer or a crash
//! (`GET /instances?tag=<marker>`); the shared tag lets the engine check every waiting
//! instance of an account with one listing (pages of 500) instead of one read each.
//!
//! Steps, recorded in order:
//! 1. [`VultrStep::InstanceCreateSent`] — before `POST /instances` goes out. From here on an
//!    instance carrying the marker may exist; undoing it finds and deletes any.
//! 2. [`VultrStep::InstanceCreated`] — the instance's id, created or adopted by marker; the
//!    engine writes the id onto the resource row with it. Undoing it deletes the instance.
//!
//! Readiness is Vultr's own: `status` `active`, `power_status` `running` and `server_status`
//! `ok` together.

use std::time::Duration;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::Deserialize;
use stackdock_docks::prelude::*;

use super::adapter::{VultrStep, begin_create, create_by_marker};
use super::api::{CreateInstance, Instance, VultrApi};

/// Carried by every instance StackDock creates, beside the instance's own marker.
pub const SHARED_TAG: &str = "stackdock";

/// How soon to look at a new instance, or at one being deleted. Vultr installs an instance
/// in about a minute, but the engine spaces its checks by the dock's budget anyway; this is
/// only the earliest.
const FIRST_CHECK: Duration = Duration::from_millis(500);

/// The config of an instance (`POST /instances`). Vultr's CLI (`vultr-cli instance create`)
/// requires `--region` and `--plan` and an operating system, with no default for any, so
/// they are required here too; what it defaults (`backups` disabled, IPv6 off) defaults the
/// same.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The instance's label, StackDock's name for it.
    pub name: Text,
    /// Region id, e.g. ewr.
    pub region: Slug,
    /// Plan id, e.g. vc2-1c-1gb.
    pub plan: Slug,
    /// Operating system id, e.g. 2284 (Ubuntu 24.04 x64), as `GET /os` lists them.
    pub os_id: u32,
    /// The hostname the instance gives itself.
    #[serde(default)]
    pub hostname: Option<Hostname>,
    /// Enable IPv6. Default: off.
    #[serde(default)]
    pub ipv6: Option<bool>,
    /// Automatic backups (charged). Default: off.
    #[serde(default)]
    pub backups: Option<bool>,
    /// Cloud-init user data as plain text (sent base64-encoded); often holds passwords.
    #[serde(default)]
    #[schemars(extend("x-sensitive" = true))]
    pub user_data: Option<String>,
    /// SSH key ids to install.
    #[serde(default)]
    pub ssh_keys: Vec<Text>,
    /// Firewall group to place the instance in.
    #[serde(default)]
    pub firewall_group_id: Option<Text>,
    /// Extra tags.
    #[serde(default)]
    pub tags: Vec<Text>,
}

/// The instance carrying `marker`. A marker is unique, so more than one would be our own
/// bug; the oldest is the one an earlier try made first.
pub(crate) async fn by_marker(
    api: &VultrApi,
    marker: &Marker,
) -> Result<Option<Instance>, DockError> {
    Ok(api
        .list_instances(Some(marker.as_str()))
        .await?
        .into_iter()
        .filter(|i| i.tags.iter().any(|t| t == marker.as_str()))
        .min_by(|a, b| date_created(a).cmp(date_created(b))))
}

fn date_created(i: &Instance) -> &str {
    i.raw["date_created"].as_str().unwrap_or_default()
}

pub(crate) fn carries_shared_tag(instance: &Value) -> bool {
    instance["tags"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t == SHARED_TAG))
}

pub(crate) fn observe(i: Instance) -> Observed {
    let marker = i.tags.iter().find_map(|t| Marker::try_from(t.clone()).ok());
    Observed {
        provider_resource_id: i.id.clone(),
        ready: i.ready(),
        name: i.label,
        failure: None,
        status: Some(i.status),
        marker,
        details: ResourceDetails::Server(ServerDetails {
            region: i.region,
            size: i.plan,
            image: i.os,
            ipv4: i.main_ip,
            ipv6: i.v6_main_ip,
        }),
        full_api_data: i.raw,
    }
}

fn progress(i: Instance) -> Progress {
    let seen = observe(i);
    if seen.ready {
        Progress::Done(Some(Box::new(seen)))
    } else {
        Progress::Pending {
            status: seen.status,
            check_in: FIRST_CHECK,
        }
    }
}

pub(crate) async fn provision(
    ctx: &mut Ctx,
    api: &VultrApi,
    config: &Map<String, Value>,
) -> Result<Progress, DockError> {
    let config: ServerConfig = config::parse(config)?;
    let marker = ctx.marker()?.clone();
    let sent = VultrStep::InstanceCreateSent {
        marker: marker.clone(),
    };
    let Some(sent_before) = begin_create(ctx, "instance_created", &sent).await? else {
        // Created by an earlier run: the engine's checks take it from here.
        return Ok(Progress::Pending {
            status: None,
            check_in: FIRST_CHECK,
        });
    };

    let mut tags: Vec<String> = config.tags.into_iter().map(String::from).collect();
    tags.extend([SHARED_TAG.to_string(), marker.to_string()]);
    let req = CreateInstance {
        region: config.region.into(),
        plan: config.plan.into(),
        os_id: config.os_id,
        label: config.name.into(),
        tags,
        backups: if config.backups == Some(true) {
            "enabled"
        } else {
            "disabled"
        }
        .into(),
        hostname: config.hostname.map(String::from),
        enable_ipv6: config.ipv6,
        user_data: config
            .user_data
            .map(|u| base64::engine::general_purpose::STANDARD.encode(u)),
        sshkey_id: config.ssh_keys.into_iter().map(String::from).collect(),
        firewall_group_id: config.firewall_group_id.map(String::from),
    };
    let created = create_by_marker(
        ctx,
        sent.name(),
        sent_before,
        |attempt| api.create_instance(&req, attempt),
        || by_marker(api, &marker),
    )
    .await?;
    let adopted = created.adopted();
    let instance = created.into_inner();
    ctx.record(&VultrStep::InstanceCreated {
        instance_id: instance.id.clone(),
        adopted,
    })
    .await?;
    Ok(progress(instance))
}

/// Vultr answers 204 at once and removes the instance shortly after; it is gone when a check
/// no longer shows it.
pub(crate) async fn deprovision(api: &VultrApi, id: &str) -> Result<Progress, DockError> {
    api.delete_instance(id).await?;
    Ok(Progress::Pending {
        status: Some("deleting".into()),
        check_in: Duration::ZERO,
    })
}

/// Deletes whatever lost answers made with `marker`, one by one: deleting by tag would also
/// match instances a user tagged the same by hand.
pub(crate) async fn undo_create_sent(api: &VultrApi, marker: &Marker) -> Result<(), DockError> {
    for instance in api.list_instances(Some(marker.as_str())).await? {
        if instance.tags.iter().any(|t| t == marker.as_str()) {
            api.delete_instance(&instance.id).await?;
        }
    }
    Ok(())
}

pub(crate) async fn observe_many(
    api: &VultrApi,
    targets: &[Tracked],
) -> Result<Vec<Option<Observed>>, DockError> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let mut listed: std::collections::HashMap<String, Instance> = api
        .list_instances(Some(SHARED_TAG))
        .await?
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let seen = match listed.remove(&t.provider_resource_id) {
            Some(i) => Some(observe(i)),
            // Last seen with the shared tag: the listing speaks for it (gone, or for one
            // just created, not listed yet).
            None if carries_shared_tag(&t.last_seen) => None,
            // Discovered instances and ones never seen yet are read one by one.
            None => api
                .get_instance(&t.provider_resource_id)
                .await?
                .map(observe),
        };
        out.push(seen);
    }
    Ok(out)
}

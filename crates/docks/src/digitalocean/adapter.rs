//! Provisioning droplets: create tagged with the marker, wait for `active`, delete, discover.

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use stackdock_core::{Marker, Provider, ResourceDetails, ResourceKind, ServerDetails};

use super::api::{self, CreateDroplet, DigitalOceanApi, Droplet};
use crate::adapter::{self, Ctx, DockAccess, DockAdapter, Observed};
use crate::adopt::create_or_adopt;
use crate::config::{ConfigSchema, Field, FieldType};
use crate::error::DockError;
use crate::http::HttpSession;

pub struct DigitalOceanAdapter {
    client: reqwest::Client,
}

impl DigitalOceanAdapter {
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }

    fn api(&self, ctx: &Ctx, dock: &DockAccess) -> DigitalOceanApi {
        DigitalOceanApi::new(HttpSession::new(
            self.client.clone(),
            Provider::DigitalOcean,
            dock.base_url.as_deref().unwrap_or(super::DEFAULT_BASE_URL),
            dock.api_key.clone(),
            ctx.scope.clone(),
            ctx.retry,
            api::read_error,
        ))
    }
}

/// DigitalOcean accepts hostnames: letters, digits, dots and dashes.
fn hostname(s: &str) -> Result<(), String> {
    let ok = s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid hostname (letters, digits, dots and inner dashes)"
        ))
    }
}

fn slug(s: &str) -> Result<(), String> {
    if s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DigitalOcean slug (lowercase letters, digits, dashes)"
        ))
    }
}

fn server_schema() -> ConfigSchema {
    use FieldType::*;
    ConfigSchema {
        fields: vec![
            Field::required("name", String, "Droplet hostname").with_check(hostname),
            Field::required("region", String, "Region slug, e.g. nyc3").with_check(slug),
            Field::required("size", String, "Size slug, e.g. s-1vcpu-1gb").with_check(slug),
            Field::required("image", String, "Image slug or id, e.g. ubuntu-24-04-x64"),
            Field::optional("ipv6", Boolean, "Enable IPv6"),
            Field::optional("monitoring", Boolean, "Install the monitoring agent"),
            Field::optional("user_data", String, "Cloud-init user data"),
            Field::optional("ssh_keys", StringList, "SSH key ids or fingerprints"),
            Field::optional("vpc_uuid", String, "VPC to place the droplet in"),
            Field::optional("tags", StringList, "Extra tags"),
        ],
    }
}

fn text(config: &Map<String, Value>, key: &str) -> Option<String> {
    config.get(key).and_then(Value::as_str).map(str::to_string)
}

fn texts(config: &Map<String, Value>, key: &str) -> Vec<String> {
    config
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn observe(d: Droplet) -> Observed {
    let marker = d.tags.iter().find_map(|t| Marker::try_from(t.clone()).ok());
    Observed {
        provider_resource_id: d.id.to_string(),
        name: d.name,
        ready: d.status == "active",
        status: Some(d.status),
        marker,
        details: ResourceDetails::Server(ServerDetails {
            region: d.region,
            size: d.size_slug,
            image: d.image,
            ipv4: d.public_ipv4,
            ipv6: d.public_ipv6,
        }),
        full_api_data: d.raw,
    }
}

#[async_trait]
impl DockAdapter for DigitalOceanAdapter {
    fn provider(&self) -> Provider {
        Provider::DigitalOcean
    }

    fn kinds(&self) -> &[ResourceKind] {
        &[ResourceKind::Server]
    }

    fn config_schema(&self, kind: ResourceKind) -> Option<ConfigSchema> {
        (kind == ResourceKind::Server).then(server_schema)
    }

    async fn provision_server(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        config: &Map<String, Value>,
    ) -> Result<Observed, DockError> {
        let api = self.api(ctx, dock);
        let droplet_id = match ctx
            .step("create")
            .and_then(|o| o["provider_resource_id"].as_str())
        {
            Some(id) => id.to_string(),
            None => {
                let marker = ctx.marker()?.to_string();
                let mut tags = texts(config, "tags");
                tags.push(marker.clone());
                let req = CreateDroplet {
                    name: text(config, "name").unwrap_or_default(),
                    region: text(config, "region"),
                    size: text(config, "size").unwrap_or_default(),
                    image: text(config, "image").unwrap_or_default(),
                    tags,
                    ipv6: config.get("ipv6").and_then(Value::as_bool),
                    monitoring: config.get("monitoring").and_then(Value::as_bool),
                    user_data: text(config, "user_data"),
                    ssh_keys: texts(config, "ssh_keys"),
                    vpc_uuid: text(config, "vpc_uuid"),
                };
                let created = create_or_adopt(
                    ctx,
                    |attempt| api.create_droplet(&req, attempt),
                    || async {
                        // A marker is unique, so more than one match would be our own bug;
                        // adopt the oldest and let discovery show the rest.
                        Ok(api
                            .list_droplets(Some(&marker))
                            .await?
                            .into_iter()
                            .min_by_key(|d| d.id))
                    },
                )
                .await?;
                let adopted = created.adopted();
                let droplet = created.into_inner();
                let id = droplet.id.to_string();
                ctx.checkpoint(
                    "create",
                    json!({"provider_resource_id": id, "adopted": adopted}),
                    json!({"delete_droplet": id}),
                )
                .await?;
                id
            }
        };
        let ready = adapter::wait_until_ready(ctx, Provider::DigitalOcean, || async {
            Ok(api.get_droplet(&droplet_id).await?.map(observe))
        })
        .await?;
        Ok(ready)
    }

    async fn refresh(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        provider_resource_id: &str,
    ) -> Result<Option<Observed>, DockError> {
        if kind != ResourceKind::Server {
            return Err(self.unsupported(kind));
        }
        let api = self.api(ctx, dock);
        Ok(api.get_droplet(provider_resource_id).await?.map(observe))
    }

    async fn deprovision(
        &self,
        ctx: &mut Ctx,
        dock: &DockAccess,
        kind: ResourceKind,
        provider_resource_id: &str,
    ) -> Result<(), DockError> {
        if kind != ResourceKind::Server {
            return Err(self.unsupported(kind));
        }
        self.api(ctx, dock)
            .delete_droplet(provider_resource_id)
            .await
    }

    async fn discover(&self, ctx: &mut Ctx, dock: &DockAccess) -> Result<Vec<Observed>, DockError> {
        let droplets = self.api(ctx, dock).list_droplets(None).await?;
        Ok(droplets.into_iter().map(observe).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_checked_like_digitalocean_does() {
        assert!(hostname("web-1").is_ok());
        assert!(hostname("web-1.example.com").is_ok());
        for bad in ["web_1", "-web", "web-", "a..b", "sp ace", ""] {
            assert!(hostname(bad).is_err(), "{bad:?}");
        }
    }
}

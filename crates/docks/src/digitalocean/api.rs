//! A thin typed client of DigitalOcean's droplet API (`/v2/droplets`), written against its
//! published OpenAPI description: bodies as documented, errors as `{id, message, request_id}`,
//! pages of at most 200 with `meta.total`.

use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

/// The page size for listings; DigitalOcean allows up to 200.
const PER_PAGE: u32 = 200;

/// The body of `POST /v2/droplets` (the single-droplet form).
#[derive(Clone, Debug, Serialize)]
pub struct CreateDroplet {
    pub name: String,
    pub region: Option<String>,
    pub size: String,
    pub image: String,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_uuid: Option<String>,
}

/// The fields of a droplet StackDock reads; the whole answer is kept in `raw`.
#[derive(Clone, Debug)]
pub struct Droplet {
    pub id: i64,
    pub name: String,
    /// `new`, `active`, `off` or `archive`.
    pub status: String,
    pub size_slug: Option<String>,
    pub region: Option<String>,
    pub image: Option<String>,
    pub tags: Vec<String>,
    pub public_ipv4: Option<String>,
    pub public_ipv6: Option<String>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireDroplet {
    id: i64,
    name: String,
    status: String,
    #[serde(default)]
    size_slug: Option<String>,
    #[serde(default)]
    region: Option<WireSlug>,
    #[serde(default)]
    image: Option<WireImage>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    networks: WireNetworks,
}

#[derive(Deserialize)]
struct WireSlug {
    slug: Option<String>,
}

#[derive(Deserialize)]
struct WireImage {
    slug: Option<String>,
    id: Option<i64>,
}

#[derive(Default, Deserialize)]
struct WireNetworks {
    #[serde(default)]
    v4: Vec<WireAddress>,
    #[serde(default)]
    v6: Vec<WireAddress>,
}

#[derive(Deserialize)]
struct WireAddress {
    ip_address: String,
    #[serde(rename = "type")]
    kind: String,
}

impl Droplet {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let w = WireDroplet::deserialize(&raw).map_err(|e| protocol(format!("droplet: {e}")))?;
        let public = |list: &[WireAddress]| {
            list.iter()
                .find(|a| a.kind == "public")
                .map(|a| a.ip_address.clone())
        };
        Ok(Self {
            id: w.id,
            name: w.name,
            status: w.status,
            size_slug: w.size_slug,
            region: w.region.and_then(|r| r.slug),
            image: w
                .image
                .and_then(|i| i.slug.or(i.id.map(|id| id.to_string()))),
            tags: w.tags,
            public_ipv4: public(&w.networks.v4),
            public_ipv6: public(&w.networks.v6),
            raw,
        })
    }
}

fn protocol(detail: String) -> DockError {
    DockError::Protocol {
        provider: Provider::DigitalOcean,
        detail,
    }
}

/// DigitalOcean's error body: `{"id": "not_found", "message": "...", "request_id": "..."}`.
pub fn read_error(status: u16, body: &Value) -> (String, String) {
    let code = body["id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| status.to_string());
    let message = body["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    (code, message)
}

pub struct DigitalOceanApi {
    http: HttpSession,
}

impl DigitalOceanApi {
    pub fn new(http: HttpSession) -> Self {
        Self { http }
    }

    /// `POST /v2/droplets`, once: see [`Idempotence::Once`]. `attempt` numbers
    /// this try among the caller's, for the journal.
    pub async fn create_droplet(
        &self,
        req: &CreateDroplet,
        attempt: u32,
    ) -> Result<Droplet, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self.http.post_once("/v2/droplets", &body, attempt).await?;
        Droplet::from_value(resp.body["droplet"].clone())
    }

    /// `GET /v2/droplets/{id}`; `None` if DigitalOcean says it does not exist.
    pub async fn get_droplet(&self, id: &str) -> Result<Option<Droplet>, DockError> {
        match self.http.get(&format!("/v2/droplets/{id}"), &[]).await {
            Ok(resp) => Droplet::from_value(resp.body["droplet"].clone()).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/droplets`, every page, optionally only those with `tag`. The first page says
    /// how many there are (`meta.total`); the rest are fetched side by side.
    pub async fn list_droplets(&self, tag: Option<&str>) -> Result<Vec<Droplet>, DockError> {
        self.list_droplets_expecting(tag, 0).await
    }

    /// [`DigitalOceanApi::list_droplets`] when at least `expected` droplets are known to match:
    /// the pages those fill are fetched side by side at once, and any more the listing reports
    /// after them.
    pub async fn list_droplets_expecting(
        &self,
        tag: Option<&str>,
        expected: usize,
    ) -> Result<Vec<Droplet>, DockError> {
        let pages_of = |n: usize| n.div_ceil(PER_PAGE as usize).max(1) as u32;
        let first = pages_of(expected);
        let mut out = Vec::new();
        let mut total = 0;
        for (droplets, reported) in
            futures::future::try_join_all((1..=first).map(|page| self.list_page(tag, page))).await?
        {
            out.extend(droplets);
            total = total.max(reported);
        }
        let last = pages_of(total);
        for (droplets, _) in
            futures::future::try_join_all((first + 1..=last).map(|page| self.list_page(tag, page)))
                .await?
        {
            out.extend(droplets);
        }
        Ok(out)
    }

    /// One page of `GET /v2/droplets`, with the total the listing reports.
    async fn list_page(
        &self,
        tag: Option<&str>,
        page: u32,
    ) -> Result<(Vec<Droplet>, usize), DockError> {
        let mut query = vec![
            ("page", page.to_string()),
            ("per_page", PER_PAGE.to_string()),
        ];
        if let Some(t) = tag {
            query.push(("tag_name", t.to_string()));
        }
        let resp = self.http.get("/v2/droplets", &query).await?;
        let total = resp.body["meta"]["total"].as_u64();
        let mut body = resp.body;
        let Value::Array(items) = body["droplets"].take() else {
            return Err(protocol("droplet list without `droplets`".into()));
        };
        let droplets = items
            .into_iter()
            .map(Droplet::from_value)
            .collect::<Result<Vec<_>, _>>()?;
        let total = total.map_or(droplets.len(), |t| t as usize);
        Ok((droplets, total))
    }

    /// `GET /v2/account`: whether DigitalOcean accepts the key.
    pub async fn get_account(&self) -> Result<Value, DockError> {
        Ok(self.http.get("/v2/account", &[]).await?.body)
    }

    /// `DELETE /v2/droplets/{id}`; a droplet already gone counts as deleted.
    pub async fn delete_droplet(&self, id: &str) -> Result<(), DockError> {
        match self.http.delete(&format!("/v2/droplets/{id}")).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

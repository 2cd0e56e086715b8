//! A thin typed client of DigitalOcean's API for droplets (`/v2/droplets`), domains and their
//! records (`/v2/domains`) and managed database clusters (`/v2/databases`), written against
//! its published OpenAPI description: bodies as documented, errors as
//! `{id, message, request_id}`, pages of at most 200 with `links.pages` and `meta.total`
//! (the database list has no pages).

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
    /// A slug, or an image's id (snapshots and custom images have no slug), sent as the
    /// number it is: DigitalOcean reads a string as a slug.
    #[serde(serialize_with = "id_or_name")]
    pub image: String,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Key ids (sent as numbers) or fingerprints.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "ids_or_names")]
    pub ssh_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_uuid: Option<String>,
}

/// All digits: an id, sent as a JSON number; anything else as the string it is.
fn id_or_name<S: serde::Serializer>(value: &str, out: S) -> Result<S::Ok, S::Error> {
    match value.parse::<u64>() {
        Ok(id) if value.bytes().all(|b| b.is_ascii_digit()) => out.serialize_u64(id),
        _ => out.serialize_str(value),
    }
}

/// [`id_or_name`] for each of a list.
fn ids_or_names<S: serde::Serializer>(values: &[String], out: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = out.serialize_seq(Some(values.len()))?;
    for value in values {
        seq.serialize_element(&IdOrName(value))?;
    }
    seq.end()
}

struct IdOrName<'a>(&'a str);

impl Serialize for IdOrName<'_> {
    fn serialize<S: serde::Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        id_or_name(self.0, out)
    }
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

    /// The status of the droplet's create action (`in-progress`, `completed` or `errored`),
    /// from `GET /v2/droplets/{id}/actions` (its first page: the create is among a new
    /// droplet's first actions); `None` if the droplet or its create is not there.
    pub async fn create_action_status(&self, id: &str) -> Result<Option<String>, DockError> {
        let query = [("per_page", "20".to_string())];
        let body = match self
            .http
            .get(&format!("/v2/droplets/{id}/actions"), &query)
            .await
        {
            Ok(resp) => resp.body,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(actions) = body["actions"].as_array() else {
            return Err(protocol("droplet actions without `actions`".into()));
        };
        Ok(actions
            .iter()
            .find(|a| a["type"] == "create")
            .and_then(|a| a["status"].as_str())
            .map(str::to_string))
    }

    /// `GET /v2/droplets`, every page, optionally only those with `tag`. The first page says
    /// how many there are (`meta.total`); the rest are fetched side by side.
    pub async fn list_droplets(&self, tag: Option<&str>) -> Result<Vec<Droplet>, DockError> {
        self.list_droplets_expecting(tag, 0).await
    }

    /// [`DigitalOceanApi::list_droplets`] when at least `expected` droplets are known to match:
    /// the pages those fill are fetched side by side at once, then those the listing's total
    /// says follow, and then, one at a time, any further page the last one links to as
    /// `links.pages.next` (the documented way to page: a total counted before droplets were
    /// added, or counted otherwise, never leaves droplets unlisted).
    pub async fn list_droplets_expecting(
        &self,
        tag: Option<&str>,
        expected: usize,
    ) -> Result<Vec<Droplet>, DockError> {
        self.list_filtered(tag.map_or(Filter::None, Filter::Tag), expected)
            .await
    }

    /// Every GPU droplet of the account (`GET /v2/droplets?type=gpus`): the other listings
    /// leave them out, and `type` can not be combined with `tag_name`.
    pub async fn list_gpu_droplets(&self) -> Result<Vec<Droplet>, DockError> {
        self.list_filtered(Filter::Gpus, 0).await
    }

    /// The walk of [`DigitalOceanApi::list_droplets_expecting`], for any `filter`.
    async fn list_filtered(
        &self,
        filter: Filter<'_>,
        expected: usize,
    ) -> Result<Vec<Droplet>, DockError> {
        let pages_of = |n: usize| n.div_ceil(PER_PAGE as usize).max(1) as u32;
        let first = pages_of(expected);
        let mut out = Vec::new();
        let mut total = 0;
        let mut next = false;
        for page in
            futures::future::try_join_all((1..=first).map(|page| self.list_page(filter, page)))
                .await?
        {
            out.extend(page.droplets);
            total = total.max(page.total);
            next = page.next;
        }
        let mut last = first;
        let by_total = pages_of(total);
        if by_total > first {
            for page in futures::future::try_join_all(
                (first + 1..=by_total).map(|page| self.list_page(filter, page)),
            )
            .await?
            {
                out.extend(page.droplets);
                next = page.next;
            }
            last = by_total;
        }
        while next {
            last += 1;
            let page = self.list_page(filter, last).await?;
            // A page with nothing on it ends the listing whatever it links to.
            next = page.next && !page.droplets.is_empty();
            out.extend(page.droplets);
        }
        Ok(out)
    }

    /// One page of `GET /v2/droplets`.
    async fn list_page(&self, filter: Filter<'_>, page: u32) -> Result<DropletPage, DockError> {
        let mut query = vec![
            ("page", page.to_string()),
            ("per_page", PER_PAGE.to_string()),
        ];
        match filter {
            Filter::Tag(t) => query.push(("tag_name", t.to_string())),
            Filter::Gpus => query.push(("type", "gpus".to_string())),
            Filter::None => {}
        }
        let resp = self.http.get("/v2/droplets", &query).await?;
        let total = resp.body["meta"]["total"].as_u64();
        let next = has_next_page(&resp.body);
        let mut body = resp.body;
        let Value::Array(items) = body["droplets"].take() else {
            return Err(protocol("droplet list without `droplets`".into()));
        };
        let droplets = items
            .into_iter()
            .map(Droplet::from_value)
            .collect::<Result<Vec<_>, _>>()?;
        let total = total.map_or(droplets.len(), |t| t as usize);
        Ok(DropletPage {
            droplets,
            total,
            next,
        })
    }

    /// `GET /v2/account`: whether DigitalOcean accepts the key.
    pub async fn get_account(&self) -> Result<Value, DockError> {
        Ok(self.http.get("/v2/account", &[]).await?.body)
    }

    /// `DELETE /v2/droplets/{id}`; a droplet already gone counts as deleted.
    pub async fn delete_droplet(&self, id: &str) -> Result<(), DockError> {
        self.delete_gone_ok(&format!("/v2/droplets/{id}")).await
    }
}

/// One page of a droplet listing.
struct DropletPage {
    droplets: Vec<Droplet>,
    /// The listing's total as it reports it (`meta.total`), else this page's count.
    total: usize,
    /// Whether it links to a next page.
    next: bool,
}

/// A listing's next page, if `links.pages.next` says there is one. The link itself points
/// at DigitalOcean's public host, so only its presence is read: the next page is asked for
/// by number on the dock's own base URL.
fn has_next_page(body: &Value) -> bool {
    body["links"]["pages"]["next"].is_string()
}

/// Which droplets a listing asks for.
#[derive(Clone, Copy)]
enum Filter<'a> {
    None,
    Tag(&'a str),
    /// GPU droplets, which no other listing shows.
    Gpus,
}

/// Takes the array under `key` out of a listing's body.
fn items(body: &mut Value, key: &str) -> Result<Vec<Value>, DockError> {
    match body[key].take() {
        Value::Array(items) => Ok(items),
        // DigitalOcean answers an empty database list with `null`.
        Value::Null if key == "databases" => Ok(Vec::new()),
        _ => Err(protocol(format!("a listing without `{key}`"))),
    }
}

// ---- Domains (`/v2/domains`) and their records ---------------------------------------

/// The body of `POST /v2/domains`.
#[derive(Clone, Debug, Serialize)]
pub struct CreateDomain {
    pub name: String,
    /// DigitalOcean adds an `A` record for the apex pointing here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

/// A domain as DigitalOcean shows it; the whole answer is kept in `raw`.
#[derive(Clone, Debug)]
pub struct Domain {
    pub name: String,
    /// The zone file: every record of the domain, the SOA included. `None` right after
    /// the create.
    pub zone_file: Option<String>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireDomain {
    name: String,
    #[serde(default)]
    zone_file: Option<String>,
}

impl Domain {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let w = WireDomain::deserialize(&raw).map_err(|e| protocol(format!("domain: {e}")))?;
        Ok(Self {
            name: w.name,
            zone_file: w.zone_file,
            raw,
        })
    }
}

/// The body of `POST /v2/domains/{name}/records` (`domain_record`). Fields a type does not
/// use are sent as `null`, not left out: the document's per-type schemas require some of
/// them all the same (a TXT record's `flags` and `tag`; an SRV's `port`), nullable, and its
/// own example sends every one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRecord {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    pub priority: Option<u16>,
    pub port: Option<u16>,
    pub weight: Option<u16>,
    pub flags: Option<u8>,
    pub tag: Option<String>,
}

impl CreateRecord {
    /// The record's name as the records list's `name` filter takes it: fully qualified.
    pub fn qualified_name(&self, domain: &str) -> String {
        if self.name == "@" {
            domain.to_string()
        } else {
            format!("{}.{domain}", self.name)
        }
    }
}

/// A domain record as DigitalOcean shows it.
#[derive(Clone, Debug, Deserialize)]
pub struct Record {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub data: String,
    #[serde(default)]
    pub priority: Option<u16>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub weight: Option<u16>,
    #[serde(default)]
    pub flags: Option<u8>,
    #[serde(default)]
    pub tag: Option<String>,
}

impl Record {
    /// Whether this is the record `wanted` asked for: same type, data and the fields its
    /// type uses. (The name is what the listing was filtered by.)
    pub fn is(&self, wanted: &CreateRecord) -> bool {
        let same_data = match self.kind.as_str() {
            // DigitalOcean may show host names with or without the final dot.
            "CNAME" | "MX" | "NS" | "SRV" => {
                self.data.trim_end_matches('.') == wanted.data.trim_end_matches('.')
            }
            _ => self.data == wanted.data,
        };
        self.kind.eq_ignore_ascii_case(&wanted.kind)
            && same_data
            && (wanted.priority.is_none() || self.priority == wanted.priority)
            && (wanted.port.is_none() || self.port == wanted.port)
            && (wanted.weight.is_none() || self.weight == wanted.weight)
            && (wanted.flags.is_none() || self.flags == wanted.flags)
            && (wanted.tag.is_none() || self.tag == wanted.tag)
    }
}

impl DigitalOceanApi {
    /// `POST /v2/domains`, once: see [`Idempotence::Once`].
    pub async fn create_domain(
        &self,
        req: &CreateDomain,
        attempt: u32,
    ) -> Result<Domain, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self.http.post_once("/v2/domains", &body, attempt).await?;
        Domain::from_value(resp.body["domain"].clone())
    }

    /// `GET /v2/domains/{name}`; `None` if DigitalOcean says it does not exist.
    pub async fn get_domain(&self, name: &str) -> Result<Option<Domain>, DockError> {
        match self.http.get(&format!("/v2/domains/{name}"), &[]).await {
            Ok(resp) => Domain::from_value(resp.body["domain"].clone()).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/domains`, every page.
    pub async fn list_domains(&self) -> Result<Vec<Domain>, DockError> {
        self.every_page("/v2/domains", "domains", &[])
            .await?
            .into_iter()
            .map(Domain::from_value)
            .collect()
    }

    /// `DELETE /v2/domains/{name}`; a domain already gone counts as deleted.
    pub async fn delete_domain(&self, name: &str) -> Result<(), DockError> {
        self.delete_gone_ok(&format!("/v2/domains/{name}")).await
    }

    /// `POST /v2/domains/{domain}/records`, once.
    pub async fn create_record(
        &self,
        domain: &str,
        req: &CreateRecord,
        attempt: u32,
    ) -> Result<Record, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self
            .http
            .post_once(&format!("/v2/domains/{domain}/records"), &body, attempt)
            .await?;
        Record::deserialize(&resp.body["domain_record"])
            .map_err(|e| protocol(format!("domain record: {e}")))
    }

    /// `GET /v2/domains/{domain}/records?type=&name=`, every page: the records of one type
    /// and fully qualified name. `None` if the domain does not exist.
    pub async fn find_records(
        &self,
        domain: &str,
        kind: &str,
        qualified_name: &str,
    ) -> Result<Option<Vec<Record>>, DockError> {
        let query = [
            ("type", kind.to_string()),
            ("name", qualified_name.to_string()),
        ];
        let path = format!("/v2/domains/{domain}/records");
        match self.every_page(&path, "domain_records", &query).await {
            Ok(items) => items
                .iter()
                .map(|r| {
                    Record::deserialize(r).map_err(|e| protocol(format!("domain record: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v2/domains/{domain}/records/{id}`; a record (or domain) already gone counts
    /// as deleted.
    pub async fn delete_record(&self, domain: &str, id: i64) -> Result<(), DockError> {
        self.delete_gone_ok(&format!("/v2/domains/{domain}/records/{id}"))
            .await
    }

    /// Every item under `key` of a paged listing, page after page while `links.pages.next`
    /// says there is another. An empty page ends the walk, and so does passing the pages
    /// `meta.total` makes room for (one over, for an item added during the walk): a server
    /// that always says there is a next page is not walked for ever.
    async fn every_page(
        &self,
        path: &str,
        key: &str,
        filters: &[(&str, String)],
    ) -> Result<Vec<Value>, DockError> {
        let mut out = Vec::new();
        for page in 1usize.. {
            let mut query = filters.to_vec();
            query.push(("page", page.to_string()));
            query.push(("per_page", PER_PAGE.to_string()));
            let mut body = self.http.get(path, &query).await?.body;
            let batch = items(&mut body, key)?;
            let got = batch.len();
            out.extend(batch);
            let pages = body["meta"]["total"]
                .as_u64()
                .map(|t| (t as usize).div_ceil(PER_PAGE as usize));
            if got == 0 || !has_next_page(&body) || pages.is_some_and(|p| page > p) {
                break;
            }
        }
        Ok(out)
    }

    async fn delete_gone_ok(&self, path: &str) -> Result<(), DockError> {
        match self.http.delete(path).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

// ---- Managed database clusters (`/v2/databases`) --------------------------------------

/// The body of `POST /v2/databases` (`database_cluster`).
#[derive(Clone, Debug, Serialize)]
pub struct CreateDatabase {
    pub name: String,
    pub engine: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub num_nodes: u8,
    pub size: String,
    pub region: String,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_size_mib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_network_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// The fields of a cluster DigitalOcean shows that hold credentials: connection strings,
/// passwords, client keys. They are removed from every answer as it is read, so nothing
/// downstream (stored data, logs, answers of StackDock's API) can hold them.
const CREDENTIAL_FIELDS: &[&str] = &["password", "uri", "access_key", "access_cert"];

fn without_credentials(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !CREDENTIAL_FIELDS.contains(&k.as_str()));
            map.values_mut().for_each(without_credentials);
        }
        Value::Array(items) => items.iter_mut().for_each(without_credentials),
        _ => {}
    }
}

/// A database cluster as DigitalOcean shows it, credentials removed; the rest of the answer
/// is kept in `raw`.
#[derive(Clone, Debug)]
pub struct Database {
    pub id: String,
    pub name: String,
    pub engine: Option<String>,
    pub region: Option<String>,
    /// `creating`, `online`, `resizing`, `migrating` or `forking`.
    pub status: String,
    pub tags: Vec<String>,
    /// The public host of the primary node.
    pub host: Option<String>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireDatabase {
    id: String,
    name: String,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    region: Option<String>,
    status: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    connection: Option<WireConnection>,
}

#[derive(Deserialize)]
struct WireConnection {
    #[serde(default)]
    host: Option<String>,
}

impl Database {
    fn from_value(mut raw: Value) -> Result<Self, DockError> {
        without_credentials(&mut raw);
        let w = WireDatabase::deserialize(&raw)
            .map_err(|e| protocol(format!("database cluster: {e}")))?;
        Ok(Self {
            id: w.id,
            name: w.name,
            engine: w.engine,
            region: w.region,
            status: w.status,
            tags: w.tags.unwrap_or_default(),
            host: w.connection.and_then(|c| c.host),
            raw,
        })
    }
}

impl DigitalOceanApi {
    /// `POST /v2/databases`, once: see [`Idempotence::Once`].
    pub async fn create_database(
        &self,
        req: &CreateDatabase,
        attempt: u32,
    ) -> Result<Database, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self.http.post_once("/v2/databases", &body, attempt).await?;
        let mut body = resp.body;
        Database::from_value(body["database"].take())
    }

    /// `GET /v2/databases/{id}`; `None` if DigitalOcean says it does not exist.
    pub async fn get_database(&self, id: &str) -> Result<Option<Database>, DockError> {
        match self.http.get(&format!("/v2/databases/{id}"), &[]).await {
            Ok(resp) => {
                let mut body = resp.body;
                Database::from_value(body["database"].take()).map(Some)
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/databases`, optionally only those with `tag`. The listing has no pages.
    pub async fn list_databases(&self, tag: Option<&str>) -> Result<Vec<Database>, DockError> {
        let query: Vec<(&str, String)> = tag
            .map(|t| ("tag_name", t.to_string()))
            .into_iter()
            .collect();
        let mut body = self.http.get("/v2/databases", &query).await?.body;
        items(&mut body, "databases")?
            .into_iter()
            .map(Database::from_value)
            .collect()
    }

    /// `DELETE /v2/databases/{id}`; a cluster already gone counts as deleted.
    pub async fn delete_database(&self, id: &str) -> Result<(), DockError> {
        self.delete_gone_ok(&format!("/v2/databases/{id}")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_removed_at_any_depth() {
        let mut v = json!({
            "id": "x", "name": "db", "status": "online",
            "connection": {"uri": "postgresql://doadmin:hunter2@h:25060/d", "password": "hunter2", "host": "h", "port": 25060},
            "users": [{"name": "doadmin", "password": "hunter2", "access_key": "k", "access_cert": "c"}],
        });
        without_credentials(&mut v);
        assert!(!v.to_string().contains("hunter2"), "{v}");
        assert_eq!(v["connection"]["host"], "h");
        assert_eq!(v["users"][0]["name"], "doadmin");
        assert!(v["users"][0].get("access_key").is_none());
    }
}

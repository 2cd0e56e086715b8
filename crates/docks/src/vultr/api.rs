//! A thin typed client of Vultr's API v2, written against its published OpenAPI description:
//! paths relative to `https://api.vultr.com/v2`, bodies as documented, every 4xx answered with
//! `{"error": "<message>", "status": N}`, listings paged by cursor (`per_page` and `cursor` in,
//! `meta.links.next` out, empty on the last page).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

/// The page size for listings; Vultr's own CLI says 500 is the most a page holds.
const PER_PAGE: u32 = 500;

/// The body of `POST /instances`.
#[derive(Clone, Debug, Serialize)]
pub struct CreateInstance {
    pub region: String,
    pub plan: String,
    pub os_id: u32,
    pub label: String,
    /// Not in the 2023 spec's request schema (it has the deprecated single `tag`), but in its
    /// own example and in Vultr's CLI and clients: an instance carries a list of tags.
    pub tags: Vec<String>,
    /// `enabled` or `disabled`; Vultr's CLI always sends it, `disabled` unless asked.
    pub backups: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    /// Base64, as Vultr takes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sshkey_id: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall_group_id: Option<String>,
}

/// The fields of an instance StackDock reads; the whole answer is kept in `raw`.
#[derive(Clone, Debug)]
pub struct Instance {
    pub id: String,
    pub label: String,
    /// `pending`, `active`, `suspended` or `resizing`.
    pub status: String,
    /// `running` or `stopped`.
    pub power_status: String,
    /// `none`, `locked`, `installingbooting` or `ok`.
    pub server_status: String,
    pub region: Option<String>,
    pub plan: Option<String>,
    pub os: Option<String>,
    pub main_ip: Option<String>,
    pub v6_main_ip: Option<String>,
    pub tags: Vec<String>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireInstance {
    id: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    power_status: String,
    #[serde(default)]
    server_status: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    main_ip: Option<String>,
    #[serde(default)]
    v6_main_ip: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// Vultr shows an address not assigned yet as `0.0.0.0` (IPv4) or an empty string.
fn assigned(ip: Option<String>) -> Option<String> {
    ip.filter(|ip| !ip.is_empty() && ip != "0.0.0.0" && ip != "::")
}

impl Instance {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let w = WireInstance::deserialize(&raw).map_err(|e| protocol(format!("instance: {e}")))?;
        Ok(Self {
            id: w.id,
            label: w.label,
            status: w.status,
            power_status: w.power_status,
            server_status: w.server_status,
            region: w.region,
            plan: w.plan,
            os: w.os,
            main_ip: assigned(w.main_ip),
            // The schema names only `v6_networks[].main_ip`; `v6_main_ip` is in its examples.
            v6_main_ip: assigned(w.v6_main_ip).or_else(|| {
                assigned(
                    raw["v6_networks"][0]["main_ip"]
                        .as_str()
                        .map(str::to_string),
                )
            }),
            tags: w.tags,
            raw,
        })
    }

    /// Vultr's own readiness: provisioned, powered on and booted.
    pub fn ready(&self) -> bool {
        self.status == "active" && self.power_status == "running" && self.server_status == "ok"
    }
}

pub(crate) fn protocol(detail: String) -> DockError {
    DockError::Protocol {
        provider: Provider::Vultr,
        detail,
    }
}

/// Vultr's error body: `{"error": "<message>", "status": 400}`. It carries no code, so the
/// code is named after the status.
pub fn read_error(status: u16, body: &Value) -> (String, String) {
    let code = match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        422 => "unprocessable_entity",
        429 => "too_many_requests",
        s if s >= 500 => "server_error",
        _ => "error",
    };
    let message = body["error"]
        .as_str()
        .filter(|m| !m.is_empty())
        .or_else(|| body.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    (code.to_string(), message)
}

pub struct VultrApi {
    pub(crate) http: HttpSession,
}

impl VultrApi {
    pub fn new(http: HttpSession) -> Self {
        Self { http }
    }

    /// `GET /account`: whether Vultr accepts the key.
    pub async fn get_account(&self) -> Result<Value, DockError> {
        Ok(self.http.get("/account", &[]).await?.body)
    }

    /// `POST /instances`, once: see [`Idempotence::Once`]. `attempt` numbers this try among
    /// the caller's, for the journal.
    pub async fn create_instance(
        &self,
        req: &CreateInstance,
        attempt: u32,
    ) -> Result<Instance, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self.http.post_once("/instances", &body, attempt).await?;
        Instance::from_value(resp.body["instance"].clone())
    }

    /// `GET /instances/{instance-id}`; `None` if Vultr says it does not exist.
    pub async fn get_instance(&self, id: &str) -> Result<Option<Instance>, DockError> {
        match self.http.get(&format!("/instances/{id}"), &[]).await {
            Ok(resp) => Instance::from_value(resp.body["instance"].clone()).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /instances`, every page, optionally only those carrying `tag`. The 2023 document
    /// marks the `tag` filter deprecated but names no other way to filter by tag; Vultr's own
    /// CLI filters the same way.
    pub async fn list_instances(&self, tag: Option<&str>) -> Result<Vec<Instance>, DockError> {
        let filter: Vec<(&str, String)> = tag.map(|t| ("tag", t.to_string())).into_iter().collect();
        self.list_all("/instances", "instances", &filter)
            .await?
            .into_iter()
            .map(Instance::from_value)
            .collect()
    }

    /// `DELETE /instances/{instance-id}`; an instance already gone counts as deleted.
    pub async fn delete_instance(&self, id: &str) -> Result<(), DockError> {
        self.delete_if_present(&format!("/instances/{id}")).await
    }

    /// A `DELETE` that counts a 404 as done: what it removes is gone either way. Vultr's
    /// document says only that a delete of what does not exist answers "a 4xx error" (its
    /// deletes list 400 beside 404), so any other refusal is checked with a `GET` of the same
    /// path: a delete whose answer was lost, sent again, must not fail because its first try
    /// did the work.
    pub(crate) async fn delete_if_present(&self, path: &str) -> Result<(), DockError> {
        match self.http.delete(path).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(DockError::Provider(refused)) if (400..500).contains(&refused.status) => {
                match self.http.get(path, &[]).await {
                    Err(e) if e.is_not_found() => Ok(()),
                    _ => Err(DockError::Provider(refused)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Every item of a cursor-paged collection: pages of [`PER_PAGE`], each asked for with
    /// the `next` cursor of the one before, until a page names none. A cursor that comes
    /// round again would loop forever, so it is refused as a malformed answer.
    pub(crate) async fn list_all(
        &self,
        path: &str,
        field: &str,
        filter: &[(&str, String)],
    ) -> Result<Vec<Value>, DockError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        loop {
            let mut query: Vec<(&str, String)> = filter.to_vec();
            query.push(("per_page", PER_PAGE.to_string()));
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let mut body = self.http.get(path, &query).await?.body;
            let Value::Array(items) = body[field].take() else {
                return Err(protocol(format!("{path} listing without `{field}`")));
            };
            out.extend(items);
            match body["meta"]["links"]["next"].as_str() {
                Some(next) if !next.is_empty() => {
                    if !seen.insert(next.to_string()) {
                        return Err(protocol(format!("{path} listing repeats a cursor")));
                    }
                    cursor = Some(next.to_string());
                }
                _ => return Ok(out),
            }
        }
    }
}

/// The body of `POST /domains`.
#[derive(Clone, Debug, Serialize)]
pub struct CreateDomain {
    pub domain: String,
    /// When set, Vultr fills the zone with default records pointing at it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// The body of `POST /domains/{dns-domain}/records`, and what a record is compared by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRecord {
    #[serde(rename = "type")]
    pub kind: String,
    /// Relative to the domain; empty for the apex.
    pub name: String,
    pub data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
}

/// A record as Vultr shows it (`dns-record`).
#[derive(Clone, Debug, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub data: String,
}

impl Record {
    /// Whether this is the record `wanted` describes (type, name and data; TTL and priority
    /// are settings of the same record). A TXT value is the same quoted or not.
    pub fn is(&self, wanted: &CreateRecord) -> bool {
        let data = |d: &str| {
            if wanted.kind.eq_ignore_ascii_case("TXT") {
                d.trim_matches('"').to_string()
            } else {
                d.trim_end_matches('.').to_ascii_lowercase()
            }
        };
        self.kind.eq_ignore_ascii_case(&wanted.kind)
            && self.name.eq_ignore_ascii_case(&wanted.name)
            && data(&self.data) == data(&wanted.data)
    }

    /// The record with its name relative to `domain`, as StackDock writes names: Vultr's
    /// document shows them both ways (`www` when made, `foo.example.com` when listed).
    pub fn relative_to(mut self, domain: &str) -> Self {
        let name = self.name.trim_end_matches('.');
        let domain = domain.trim_end_matches('.');
        if name.eq_ignore_ascii_case(domain) {
            self.name = String::new();
        } else if name.len() > domain.len() + 1
            && name.is_char_boundary(name.len() - domain.len() - 1)
            && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.'
        {
            self.name = name[..name.len() - domain.len() - 1].to_string();
        }
        self
    }
}

/// A domain as Vultr shows it (`domain`); the whole answer is kept in `raw`.
#[derive(Clone, Debug)]
pub struct Domain {
    pub domain: String,
    pub raw: Value,
}

impl Domain {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let domain = raw["domain"]
            .as_str()
            .ok_or_else(|| protocol("domain without `domain`".into()))?
            .to_string();
        Ok(Self { domain, raw })
    }
}

impl VultrApi {
    /// `POST /domains`, once: see [`Idempotence::Once`].
    pub async fn create_domain(
        &self,
        req: &CreateDomain,
        attempt: u32,
    ) -> Result<Domain, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self.http.post_once("/domains", &body, attempt).await?;
        Domain::from_value(resp.body["domain"].clone())
    }

    /// `GET /domains/{dns-domain}`; `None` if Vultr says it does not exist.
    pub async fn get_domain(&self, domain: &str) -> Result<Option<Domain>, DockError> {
        match self.http.get(&format!("/domains/{domain}"), &[]).await {
            Ok(resp) => Domain::from_value(resp.body["domain"].clone()).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /domains`, every page.
    pub async fn list_domains(&self) -> Result<Vec<Domain>, DockError> {
        self.list_all("/domains", "domains", &[])
            .await?
            .into_iter()
            .map(Domain::from_value)
            .collect()
    }

    /// `DELETE /domains/{dns-domain}`, which deletes its records too; a domain already gone
    /// counts as deleted.
    pub async fn delete_domain(&self, domain: &str) -> Result<(), DockError> {
        self.delete_if_present(&format!("/domains/{domain}")).await
    }

    /// `GET /domains/{dns-domain}/records`, every page; none for a domain that is gone.
    pub async fn list_records(&self, domain: &str) -> Result<Vec<Record>, DockError> {
        let records = match self
            .list_all(&format!("/domains/{domain}/records"), "records", &[])
            .await
        {
            Ok(records) => records,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        records
            .into_iter()
            .map(|r| {
                Record::deserialize(&r)
                    .map(|r| r.relative_to(domain))
                    .map_err(|e| protocol(format!("record: {e}")))
            })
            .collect()
    }

    /// `POST /domains/{dns-domain}/records`, once: a record repeated would be a second one,
    /// so the caller looks for it before sending.
    pub async fn create_record(
        &self,
        domain: &str,
        req: &CreateRecord,
    ) -> Result<Record, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self
            .http
            .post_once(&format!("/domains/{domain}/records"), &body, 1)
            .await?;
        Record::deserialize(&resp.body["record"]).map_err(|e| protocol(format!("record: {e}")))
    }
}

/// The body of `POST /databases`.
#[derive(Clone, Debug, Serialize)]
pub struct CreateDatabase {
    pub database_engine: String,
    pub database_engine_version: String,
    pub region: String,
    pub plan: String,
    pub label: String,
    /// A managed database carries one tag: StackDock's marker.
    pub tag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_dow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_time: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_ips: Vec<String>,
}

/// The fields of a managed database StackDock reads. Vultr's answer carries the admin
/// password: `raw` keeps the answer without it, and the password leaves here only as a
/// [`SecretString`].
#[derive(Debug)]
pub struct Database {
    pub id: String,
    pub label: String,
    /// `Rebuilding`, `Rebalancing` or `Running`.
    pub status: String,
    pub tag: String,
    pub engine: Option<String>,
    pub region: Option<String>,
    pub host: Option<String>,
    pub password: Option<SecretString>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireDatabase {
    id: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    database_engine: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    host: Option<String>,
}

/// The fields of a database answer that hold credentials, at the top level and in the
/// FerretDB credentials object.
const CREDENTIALS: &[&str] = &["password"];

impl Database {
    fn from_value(mut raw: Value) -> Result<Self, DockError> {
        let w = WireDatabase::deserialize(&raw).map_err(|e| protocol(format!("database: {e}")))?;
        let password = raw["password"]
            .as_str()
            .filter(|p| !p.is_empty())
            .map(SecretString::new);
        withhold_credentials(&mut raw);
        if let Some(ferretdb) = raw.get_mut("ferretdb_credentials") {
            withhold_credentials(ferretdb);
        }
        Ok(Self {
            id: w.id,
            label: w.label,
            status: w.status,
            tag: w.tag,
            engine: w.database_engine,
            region: w.region,
            host: w.host.filter(|h| !h.is_empty()),
            password,
            raw,
        })
    }
}

/// Removes the credential fields of one object of an answer.
fn withhold_credentials(object: &mut Value) {
    if let Value::Object(map) = object {
        for field in CREDENTIALS {
            map.remove(*field);
        }
    }
}

impl VultrApi {
    /// `POST /databases`, once: see [`Idempotence::Once`].
    pub async fn create_database(
        &self,
        req: &CreateDatabase,
        attempt: u32,
    ) -> Result<Database, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self.http.post_once("/databases", &body, attempt).await?;
        Database::from_value(resp.body["database"].clone())
    }

    /// `GET /databases`, optionally only those tagged `tag`. Vultr documents no pagination
    /// for this listing: one answer holds them all.
    pub async fn list_databases(&self, tag: Option<&str>) -> Result<Vec<Database>, DockError> {
        let query: Vec<(&str, String)> = tag.map(|t| ("tag", t.to_string())).into_iter().collect();
        let mut body = self.http.get("/databases", &query).await?.body;
        let Value::Array(items) = body["databases"].take() else {
            return Err(protocol("database list without `databases`".into()));
        };
        items.into_iter().map(Database::from_value).collect()
    }

    /// `DELETE /databases/{database-id}`; a database already gone counts as deleted.
    pub async fn delete_database(&self, id: &str) -> Result<(), DockError> {
        self.delete_if_present(&format!("/databases/{id}")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, name: &str, data: &str) -> Record {
        Record {
            id: "r".into(),
            kind: kind.into(),
            name: name.into(),
            data: data.into(),
        }
    }

    #[test]
    fn an_ipv6_address_is_read_from_v6_networks_when_v6_main_ip_is_absent() {
        let instance = |extra: Value| {
            let mut raw = json!({"id": "i", "label": "web", "status": "active",
                                 "power_status": "running", "server_status": "ok"});
            for (k, v) in extra.as_object().cloned().unwrap_or_default() {
                raw[k] = v;
            }
            Instance::from_value(raw).expect("an instance").v6_main_ip
        };
        assert_eq!(
            instance(json!({"v6_networks": [{"main_ip": "2001:db8::1", "network_size": 64}]})),
            Some("2001:db8::1".to_string())
        );
        assert_eq!(
            instance(json!({"v6_main_ip": "2001:db8::2", "v6_networks": []})),
            Some("2001:db8::2".to_string())
        );
        assert_eq!(instance(json!({"v6_main_ip": ""})), None);
    }

    #[test]
    fn listed_names_are_made_relative_to_the_domain() {
        let relative = |name: &str| {
            record("A", name, "192.0.2.1")
                .relative_to("example.com")
                .name
        };
        assert_eq!(relative("foo.example.com"), "foo");
        assert_eq!(relative("Foo.Example.com."), "Foo");
        assert_eq!(relative("example.com"), "");
        assert_eq!(relative(""), "");
        assert_eq!(relative("www"), "www");
        // Only a whole label of the domain is taken off.
        assert_eq!(relative("fooexample.com"), "fooexample.com");
    }

    #[test]
    fn a_record_is_known_quoted_or_not_and_in_any_case() {
        let wanted = |kind: &str, name: &str, data: &str| CreateRecord {
            kind: kind.into(),
            name: name.into(),
            data: data.into(),
            ttl: None,
            priority: None,
        };
        let marker = wanted("TXT", "_stackdock", "\"sd-1\"");
        assert!(record("TXT", "_stackdock", "sd-1").is(&marker));
        assert!(record("TXT", "_stackdock", "\"sd-1\"").is(&marker));
        assert!(!record("TXT", "_stackdock", "sd-2").is(&marker));
        let cname = wanted("CNAME", "www", "target.example.net");
        assert!(record("CNAME", "WWW", "Target.example.net.").is(&cname));
        assert!(!record("A", "www", "target.example.net").is(&cname));
    }
}

//! Provisioning Vultr DNS domains (with their records) on the v2 contract.
//!
//! Vultr's domains have no tags, and a domain's name is unique at Vultr: the name is the
//! domain's identity and its provider id. So that adopting a domain after a lost answer never
//! takes over one the user already had, a first run reads the name before it records that it
//! sends the create: a domain that exists then is refused (the user's error, naming `name`).
//! A create refused on its first try (Vultr's 400 for a taken name) is the user's error too,
//! never an adoption; only after a try whose outcome is unknown is the name read again and
//! what it finds adopted.
//!
//! The marker is carried in the zone: a `TXT` record named [`MARKER_RECORD`] holding it,
//! created right after the domain. Vultr lists domains without their records, so finding a
//! domain by its marker alone reads the records of each domain of the account; a provision
//! never needs to, since it knows the name.
//!
//! Steps, recorded in order:
//! 1. [`VultrStep::DomainCreateSent`] — before `POST /domains`. Undoing it deletes the domain
//!    of that name if there is one (it can only be this operation's: see above).
//! 2. [`VultrStep::DomainCreated`] — the domain, created or adopted; tracks its name. Undoing
//!    it deletes the domain, and its records with it.
//! 3. [`VultrStep::RecordsCreated`] — the marker record, then each record of the config, each
//!    looked for before it is created so that a resumed run never doubles one. Undoing it
//!    leaves them to the domain's own undo, which removes them all.
//!
//! A domain is usable as soon as it exists: a provision is `Done` once its records are made.

use std::net::{Ipv4Addr, Ipv6Addr};

use schemars::JsonSchema;
use serde::Deserialize;
use stackdock_docks::prelude::*;

use super::adapter::{VultrStep, create_noting};
use super::api::{CreateDomain, CreateRecord, Domain, Record, VultrApi};

/// The name of the `TXT` record that carries a domain's marker.
pub const MARKER_RECORD: &str = "_stackdock";

/// How many records one provision creates at most, besides the marker's.
pub const MAX_RECORDS: usize = 20;

/// The config of a domain (`POST /domains`, then `POST .../records` per record). Vultr's CLI
/// (`vultr-cli dns domain create`) takes the domain and an optional IP; so does this.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The domain, e.g. example.com.
    pub name: DomainName,
    /// When set, Vultr adds default records pointing at this IPv4 address (the apex, www).
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// Records to create once the domain exists, in order (at most 20).
    #[serde(default)]
    pub records: Records,
}

/// The records of a domain's config, each checked: at most [`MAX_RECORDS`].
#[derive(Debug, Default, Deserialize)]
#[serde(try_from = "Vec<RecordConfig>")]
pub struct Records(Vec<RecordConfig>);

impl JsonSchema for Records {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Records".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let items = generator.subschema_for::<RecordFields>();
        schemars::json_schema!({"type": "array", "maxItems": MAX_RECORDS, "items": items})
    }
}

impl TryFrom<Vec<RecordConfig>> for Records {
    type Error = String;
    fn try_from(records: Vec<RecordConfig>) -> Result<Self, String> {
        if records.len() > MAX_RECORDS {
            return Err(format!(
                "at most {MAX_RECORDS} records per provision, got {}",
                records.len()
            ));
        }
        Ok(Self(records))
    }
}

/// The record types Vultr's DNS takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum RecordType {
    A,
    AAAA,
    CNAME,
    NS,
    MX,
    SRV,
    TXT,
    CAA,
    SSHFP,
}

/// One record (`POST .../records`), checked when the config is read: an A record's data is
/// an IPv4 address, an AAAA record's an IPv6 one, and MX and SRV records need `priority`.
/// Its schema is that of the fields it is written with ([`Records`] says so).
#[derive(Debug, Deserialize)]
#[serde(try_from = "RecordFields")]
pub struct RecordConfig(CreateRecord);

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RecordFields {
    /// A, AAAA, CNAME, NS, MX, SRV, TXT, CAA or SSHFP.
    #[serde(rename = "type")]
    kind: RecordType,
    /// Relative to the domain: empty (the default) for the apex, www, _dmarc.
    #[serde(default)]
    name: String,
    /// The address, host name or text the record holds.
    data: Text,
    /// Seconds.
    #[serde(default)]
    ttl: Option<u32>,
    #[serde(default)]
    priority: Option<u16>,
}

impl TryFrom<RecordFields> for RecordConfig {
    type Error = String;
    fn try_from(f: RecordFields) -> Result<Self, String> {
        let data = String::from(f.data);
        let kind = format!("{:?}", f.kind);
        match f.kind {
            RecordType::A if data.parse::<Ipv4Addr>().is_err() => {
                return Err(format!("data: {data:?} is not an IPv4 address"));
            }
            RecordType::AAAA if data.parse::<Ipv6Addr>().is_err() => {
                return Err(format!("data: {data:?} is not an IPv6 address"));
            }
            RecordType::MX | RecordType::SRV if f.priority.is_none() => {
                return Err(format!("priority: a {kind} record needs one"));
            }
            _ => {}
        }
        Ok(Self(CreateRecord {
            kind,
            name: f.name.trim_end_matches('.').to_string(),
            data,
            ttl: f.ttl,
            priority: f.priority,
        }))
    }
}

/// The `TXT` record holding `marker`, quoted as TXT data is.
fn marker_record(marker: &Marker) -> CreateRecord {
    CreateRecord {
        kind: "TXT".into(),
        name: MARKER_RECORD.into(),
        data: format!("\"{marker}\""),
        ttl: None,
        priority: None,
    }
}

/// The marker a zone's records carry, if any.
fn marker_in(records: &[Record]) -> Option<Marker> {
    records
        .iter()
        .filter(|r| r.kind == "TXT" && r.name == MARKER_RECORD)
        .find_map(|r| Marker::try_from(r.data.trim_matches('"').to_string()).ok())
}

/// The domain as StackDock shows it: Vultr's answer with the zone's records beside it.
fn observe(domain: Domain, records: Vec<Record>) -> Observed {
    let marker = marker_in(&records);
    let listed: Vec<Value> = records
        .iter()
        .map(|r| json!({"id": r.id, "type": r.kind, "name": r.name, "data": r.data}))
        .collect();
    let mut raw = domain.raw;
    if let Value::Object(map) = &mut raw {
        map.insert("records".into(), Value::Array(listed.clone()));
    }
    Observed {
        provider_resource_id: domain.domain.clone(),
        name: domain.domain,
        // Vultr reports no status for a domain: one that exists is in use.
        status: None,
        ready: true,
        failure: None,
        marker,
        details: ResourceDetails::Domain(DomainDetails {
            records: Value::Array(listed),
        }),
        full_api_data: raw,
    }
}

/// The domain named `name` as it is now, its records read; `None` if Vultr has none.
pub(crate) async fn read(api: &VultrApi, name: &str) -> Result<Option<Observed>, DockError> {
    match api.get_domain(name).await? {
        Some(domain) => {
            let records = api.list_records(name).await?;
            Ok(Some(observe(domain, records)))
        }
        None => Ok(None),
    }
}

/// Every domain of the account with its records: one listing, then one read of records per
/// domain (Vultr lists domains without them).
pub(crate) async fn read_all(api: &VultrApi) -> Result<Vec<Observed>, DockError> {
    let mut out = Vec::new();
    for domain in api.list_domains().await? {
        let records = api.list_records(&domain.domain).await?;
        out.push(observe(domain, records));
    }
    Ok(out)
}

/// The domain carrying `marker`: see the module's note on what that costs.
pub(crate) async fn by_marker(
    api: &VultrApi,
    marker: &Marker,
) -> Result<Option<Observed>, DockError> {
    for domain in api.list_domains().await? {
        let records = api.list_records(&domain.domain).await?;
        if marker_in(&records).as_ref() == Some(marker) {
            return Ok(Some(observe(domain, records)));
        }
    }
    Ok(None)
}

fn taken(name: &str) -> DockError {
    DockError::InvalidConfig(ConfigError::new(
        "name",
        format!("the domain {name} already exists in this Vultr account"),
    ))
}

pub(crate) async fn provision(
    ctx: &mut Ctx,
    api: &VultrApi,
    config: &Map<String, Value>,
) -> Result<Progress, DockError> {
    let config: DomainConfig = config::parse(config)?;
    let records = config.records.0.into_iter().map(|r| r.0);
    let name = String::from(config.name);
    let marker = ctx.marker()?.clone();

    if ctx.step::<VultrStep>("domain_created")?.is_none() {
        let sent_before = ctx.step::<VultrStep>("domain_create_sent")?.is_some();
        // Before anything is recorded: a domain there now is the user's own.
        if !sent_before && api.get_domain(&name).await?.is_some() {
            return Err(taken(&name));
        }
        ctx.record_before_sending(&VultrStep::DomainCreateSent {
            marker: marker.clone(),
            domain: name.clone(),
        })
        .await?;
        let req = CreateDomain {
            domain: name.clone(),
            ip: config.ip.map(|ip| ip.to_string()),
        };
        let attempted = create_noting(
            ctx,
            sent_before,
            |attempt| api.create_domain(&req, attempt),
            || api.get_domain(&name),
        )
        .await;
        let created = match attempted.result {
            Ok(created) => created,
            // A refusal after a try that may have made it: that try's own domain.
            Err(DockError::Provider(p)) if attempted.unsure => match api.get_domain(&name).await? {
                Some(domain) => Created::Adopted(domain),
                None => return Err(DockError::Provider(p)),
            },
            // Refused outright (taken since it was read, or a name Vultr will not take):
            // Vultr made nothing, so there is nothing to undo.
            Err(DockError::Provider(p)) => {
                ctx.mark_undone("domain_create_sent").await?;
                return Err(if p.status == 400 && p.message.contains("already exists") {
                    taken(&name)
                } else {
                    DockError::Provider(p)
                });
            }
            Err(e) => return Err(e),
        };
        ctx.record(&VultrStep::DomainCreated {
            domain: name.clone(),
            adopted: created.adopted(),
        })
        .await?;
    }

    if ctx.step::<VultrStep>("records_created")?.is_none() {
        let existing = api.list_records(&name).await?;
        let mut ids = Vec::new();
        for wanted in std::iter::once(marker_record(&marker)).chain(records) {
            let id = match existing.iter().find(|r| r.is(&wanted)) {
                Some(r) => r.id.clone(),
                None => api.create_record(&name, &wanted).await?.id,
            };
            ids.push(id);
        }
        ctx.record(&VultrStep::RecordsCreated {
            domain: name.clone(),
            record_ids: ids,
        })
        .await?;
    }

    let seen = read(api, &name)
        .await?
        .ok_or_else(|| DockError::ResourceFailed {
            provider: Provider::Vultr,
            code: "gone".into(),
            message: format!("domain {name} was deleted while it was provisioned"),
        })?;
    Ok(Progress::Done(Some(Box::new(seen))))
}

/// The tracked domains as Vultr shows them: one listing says which exist; the records of
/// those are read for their markers.
pub(crate) async fn observe_many(
    api: &VultrApi,
    targets: &[Tracked],
) -> Result<Vec<Option<Observed>>, DockError> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let mut listed: std::collections::HashMap<String, Domain> = api
        .list_domains()
        .await?
        .into_iter()
        .map(|d| (d.domain.clone(), d))
        .collect();
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        out.push(match listed.remove(&t.provider_resource_id) {
            Some(domain) => {
                let records = api.list_records(&domain.domain).await?;
                Some(observe(domain, records))
            }
            None => None,
        });
    }
    Ok(out)
}

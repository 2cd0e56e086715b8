//! Provisioning domains (with their records) on the v2 contract.
//!
//! DigitalOcean's domains have no tags, and a domain's name is unique across DigitalOcean:
//! the name itself is the domain's identity and its provider id. A create whose answer was
//! lost is adopted by reading `GET /v2/domains/{name}`. So that adoption never takes over a
//! domain the user already had, a first run reads the name before it records that it sends
//! the create: a domain that exists then is refused (the user's error, naming `name`), and
//! whatever exists under the name once "create sent" is recorded was made since. A create
//! refused on its first try (`422`, the name is taken) is also the user's error, never an
//! adoption; a refusal after a try whose outcome is unknown may be that try's own doing, so
//! the name is read once more before giving up.
//!
//! The marker is carried in the zone: a `TXT` record named [`MARKER_RECORD`] holding it,
//! created right after the domain. DigitalOcean shows every record in a domain's
//! `zone_file`, so a listing of the account's domains (200 a page) finds a domain by its
//! marker and tells StackDock's domains from the user's.
//!
//! Steps, recorded in order:
//! 1. [`DomainStep::DomainCreateSent`] — before `POST /v2/domains`; undoing it deletes the
//!    domain of that name if there is one.
//! 2. [`DomainStep::DomainCreated`] — the domain, created or adopted; tracks its name.
//! 3. For the marker record, then each record of the config, in order:
//!    [`DomainStep::RecordSent`] before `POST .../records` (undone by deleting the records
//!    of that type, name and data) and [`DomainStep::RecordCreated`] with its id (undone by
//!    deleting it). A record is looked for (`GET .../records?type=&name=`) before it is
//!    created, so a resumed run never doubles one.
//!
//! A domain is usable as soon as it exists: readiness is `Done` once its records are made.

use std::net::Ipv4Addr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::adapter::create_once_or_adopt;
use super::api::{CreateDomain, CreateRecord, DigitalOceanApi, Domain, Record};

/// The name of the `TXT` record that carries a domain's marker.
pub const MARKER_RECORD: &str = "_stackdock";

/// How many records one provision creates at most, besides the marker's.
pub const MAX_RECORDS: usize = 20;

/// The config of a domain (`POST /v2/domains`, then `POST .../records` per record).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The domain, e.g. example.com.
    pub name: DomainName,
    /// When set, DigitalOcean adds an A record for the apex pointing at this IPv4 address.
    #[serde(default)]
    pub ip_address: Option<Ipv4Addr>,
    /// Records to create once the domain exists, in order (at most 20).
    #[serde(default)]
    pub records: Records,
}

/// The records of a domain's config: at most [`MAX_RECORDS`].
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
        let items = generator.subschema_for::<RecordConfig>();
        schemars::json_schema!({"type": "array", "maxItems": MAX_RECORDS, "items": items})
    }
}

impl TryFrom<Vec<RecordConfig>> for Records {
    type Error = String;
    fn try_from(records: Vec<RecordConfig>) -> Result<Self, String> {
        if records.len() > MAX_RECORDS {
            Err(format!(
                "at most {MAX_RECORDS} records per provision, got {}",
                records.len()
            ))
        } else {
            Ok(Self(records))
        }
    }
}

/// The record types DigitalOcean's records endpoint creates (`SOA` is managed by
/// DigitalOcean).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RecordType {
    A,
    #[allow(clippy::upper_case_acronyms)]
    AAAA,
    #[allow(clippy::upper_case_acronyms)]
    CAA,
    #[allow(clippy::upper_case_acronyms)]
    CNAME,
    MX,
    NS,
    #[allow(clippy::upper_case_acronyms)]
    SRV,
    #[allow(clippy::upper_case_acronyms)]
    TXT,
}

impl RecordType {
    fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::AAAA => "AAAA",
            Self::CAA => "CAA",
            Self::CNAME => "CNAME",
            Self::MX => "MX",
            Self::NS => "NS",
            Self::SRV => "SRV",
            Self::TXT => "TXT",
        }
    }
}

/// One record (`domain_record`). The fields a type needs follow DigitalOcean's attribute
/// table: MX needs `priority`; SRV `priority`, `port` and `weight`; CAA `flags` and `tag`.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RecordFields")]
pub struct RecordConfig(CreateRecord);

/// Users and forms see the fields a record is written with.
impl JsonSchema for RecordConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        RecordFields::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RecordFields::json_schema(generator)
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RecordFields {
    /// A, AAAA, CAA, CNAME, MX, NS, SRV or TXT.
    #[serde(rename = "type")]
    kind: RecordType,
    /// Relative to the domain: @ for the apex, www, _dmarc. Default @.
    #[serde(default)]
    name: Option<RecordName>,
    /// The address, host name or text the record holds.
    data: Text,
    /// Seconds; DigitalOcean's default is 1800, its minimum 30.
    #[serde(default)]
    ttl: Option<u32>,
    #[serde(default)]
    priority: Option<u16>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    weight: Option<u16>,
    /// CAA flags, 0 to 255.
    #[serde(default)]
    flags: Option<u8>,
    /// CAA tag: issue, issuewild or iodef.
    #[serde(default)]
    tag: Option<Text>,
}

impl TryFrom<RecordFields> for RecordConfig {
    type Error = String;
    fn try_from(f: RecordFields) -> Result<Self, String> {
        let kind = f.kind.as_str();
        let data = String::from(f.data);
        let missing = |field: &str| format!("a {kind} record needs `{field}`");
        match f.kind {
            RecordType::A if data.parse::<Ipv4Addr>().is_err() => {
                return Err(format!("data: {data:?} is not an IPv4 address"));
            }
            RecordType::AAAA if data.parse::<std::net::Ipv6Addr>().is_err() => {
                return Err(format!("data: {data:?} is not an IPv6 address"));
            }
            RecordType::MX if f.priority.is_none() => return Err(missing("priority")),
            RecordType::SRV => {
                for (field, v) in [
                    ("priority", f.priority),
                    ("port", f.port),
                    ("weight", f.weight),
                ] {
                    if v.is_none() {
                        return Err(missing(field));
                    }
                }
            }
            RecordType::CAA => {
                if f.flags.is_none() {
                    return Err(missing("flags"));
                }
                match f.tag.as_ref().map(Text::as_str) {
                    Some("issue" | "issuewild" | "iodef") => {}
                    Some(other) => {
                        return Err(format!("tag: {other:?} is not issue, issuewild or iodef"));
                    }
                    None => return Err(missing("tag")),
                }
            }
            _ => {}
        }
        if matches!(f.ttl, Some(ttl) if ttl < 30) {
            return Err("ttl: DigitalOcean's minimum is 30 seconds".into());
        }
        Ok(Self(CreateRecord {
            kind: kind.to_string(),
            name: f.name.map_or_else(|| "@".to_string(), String::from),
            data,
            ttl: f.ttl,
            priority: f.priority,
            port: f.port,
            weight: f.weight,
            flags: f.flags,
            tag: f.tag.map(String::from),
        }))
    }
}

/// The steps of a domain's provision.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum DomainStep {
    DomainCreateSent {
        marker: Marker,
        domain: String,
    },
    DomainCreated {
        domain: String,
        adopted: bool,
    },
    /// Record `index` (0 is the marker's) is about to be created.
    RecordSent {
        index: usize,
        domain: String,
        record: CreateRecord,
    },
    RecordCreated {
        index: usize,
        domain: String,
        record_id: i64,
        adopted: bool,
    },
}

/// Step names are fixed strings; one pair per record a provision may create.
const RECORD_SENT: [&str; MAX_RECORDS + 1] = [
    "marker_record_sent",
    "record_1_sent",
    "record_2_sent",
    "record_3_sent",
    "record_4_sent",
    "record_5_sent",
    "record_6_sent",
    "record_7_sent",
    "record_8_sent",
    "record_9_sent",
    "record_10_sent",
    "record_11_sent",
    "record_12_sent",
    "record_13_sent",
    "record_14_sent",
    "record_15_sent",
    "record_16_sent",
    "record_17_sent",
    "record_18_sent",
    "record_19_sent",
    "record_20_sent",
];
const RECORD_CREATED: [&str; MAX_RECORDS + 1] = [
    "marker_record_created",
    "record_1_created",
    "record_2_created",
    "record_3_created",
    "record_4_created",
    "record_5_created",
    "record_6_created",
    "record_7_created",
    "record_8_created",
    "record_9_created",
    "record_10_created",
    "record_11_created",
    "record_12_created",
    "record_13_created",
    "record_14_created",
    "record_15_created",
    "record_16_created",
    "record_17_created",
    "record_18_created",
    "record_19_created",
    "record_20_created",
];

impl AdapterStep for DomainStep {
    fn name(&self) -> &'static str {
        match self {
            Self::DomainCreateSent { .. } => "domain_create_sent",
            Self::DomainCreated { .. } => "domain_created",
            Self::RecordSent { index, .. } => RECORD_SENT[(*index).min(MAX_RECORDS)],
            Self::RecordCreated { index, .. } => RECORD_CREATED[(*index).min(MAX_RECORDS)],
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::DomainCreated { domain, .. } => Some(domain),
            _ => None,
        }
    }
}

/// The `TXT` record that carries `marker`.
fn marker_record(marker: &Marker) -> CreateRecord {
    CreateRecord {
        kind: "TXT".into(),
        name: MARKER_RECORD.into(),
        data: marker.to_string(),
        ttl: None,
        priority: None,
        port: None,
        weight: None,
        flags: None,
        tag: None,
    }
}

/// A zone file's records, SOA left out, as `{type, name, data, ttl}` with names relative to
/// the domain.
fn zone_records(domain: &str, zone_file: &str) -> Vec<Value> {
    let origin = format!("{domain}.");
    zone_file
        .lines()
        .filter(|line| !line.starts_with('$') && !line.trim().is_empty())
        .filter_map(|line| {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let at = tokens.iter().position(|t| *t == "IN")?;
            let kind = *tokens.get(at + 1)?;
            if kind == "SOA" {
                return None;
            }
            let owner = tokens[0];
            let name = if owner == origin {
                "@".to_string()
            } else {
                owner.strip_suffix(&format!(".{origin}"))?.to_string()
            };
            let ttl = (at == 2).then(|| tokens[1].parse::<u64>().ok()).flatten();
            let data = tokens[at + 2..].join(" ");
            Some(json!({ "type": kind, "name": name, "data": data.trim_matches('"'), "ttl": ttl }))
        })
        .collect()
}

/// The marker a domain's zone carries, if any.
fn zone_marker(domain: &Domain) -> Option<Marker> {
    let zone = domain.zone_file.as_deref()?;
    zone_records(&domain.name, zone)
        .into_iter()
        .filter(|r| r["type"] == "TXT" && r["name"] == MARKER_RECORD)
        .find_map(|r| Marker::try_from(r["data"].as_str()?.to_string()).ok())
}

pub fn observe(domain: Domain) -> Observed {
    let records = domain
        .zone_file
        .as_deref()
        .map(|z| zone_records(&domain.name, z))
        .unwrap_or_default();
    Observed {
        provider_resource_id: domain.name.clone(),
        marker: zone_marker(&domain),
        name: domain.name,
        // DigitalOcean's domains have no status: one that exists is in use.
        status: None,
        ready: true,
        failure: None,
        details: ResourceDetails::Domain(DomainDetails {
            records: Value::Array(records),
        }),
        full_api_data: domain.raw,
    }
}

/// The domain carrying `marker`. DigitalOcean has no filter for domains, so the account's
/// domains are listed (200 a page) and their zone files read. A domain shown without its
/// zone file (the field is nullable, and null right after the create) has its marker record
/// asked for by name and type instead.
pub async fn by_marker(
    api: &DigitalOceanApi,
    marker: &Marker,
) -> Result<Option<Domain>, DockError> {
    for domain in api.list_domains().await? {
        if domain.zone_file.is_some() {
            if zone_marker(&domain).as_ref() == Some(marker) {
                return Ok(Some(domain));
            }
            continue;
        }
        let name = format!("{MARKER_RECORD}.{}", domain.name);
        let records = api
            .find_records(&domain.name, "TXT", &name)
            .await?
            .unwrap_or_default();
        if records
            .iter()
            .any(|r| r.data.trim_matches('"') == marker.as_str())
        {
            return Ok(Some(domain));
        }
    }
    Ok(None)
}

/// The record `wanted` of `domain`, if it exists (the oldest, should there be several).
async fn find_record(
    api: &DigitalOceanApi,
    domain: &str,
    wanted: &CreateRecord,
) -> Result<Option<Record>, DockError> {
    Ok(api
        .find_records(domain, &wanted.kind, &wanted.qualified_name(domain))
        .await?
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.is(wanted))
        .min_by_key(|r| r.id))
}

pub async fn provision(
    ctx: &mut Ctx,
    api: &DigitalOceanApi,
    config: &Map<String, Value>,
) -> Result<Progress, DockError> {
    let config: DomainConfig = config::parse(config)?;
    let domain = config.name.as_str().to_ascii_lowercase();
    let marker = ctx.marker()?.clone();

    if ctx.step::<DomainStep>("domain_created")?.is_none() {
        let sent_before = ctx.step::<DomainStep>("domain_create_sent")?.is_some();
        if !sent_before && api.get_domain(&domain).await?.is_some() {
            return Err(ConfigError::new(
                "name",
                format!(
                    "{domain} already exists in this DigitalOcean account; StackDock does not \
                     take over a domain it did not create (a sync lists it as a manual resource)"
                ),
            )
            .into());
        }
        ctx.record_before_sending(&DomainStep::DomainCreateSent {
            marker: marker.clone(),
            domain: domain.clone(),
        })
        .await?;
        let req = CreateDomain {
            name: domain.clone(),
            ip_address: config.ip_address.map(|ip| ip.to_string()),
        };
        let created = create_once_or_adopt(
            ctx,
            "domain_create_sent",
            sent_before,
            |attempt| api.create_domain(&req, attempt),
            || api.get_domain(&domain),
        )
        .await?;
        ctx.record(&DomainStep::DomainCreated {
            domain: domain.clone(),
            adopted: created.adopted(),
        })
        .await?;
    }

    let records =
        std::iter::once(marker_record(&marker)).chain(config.records.0.into_iter().map(|r| r.0));
    for (index, record) in records.enumerate() {
        if ctx.step::<DomainStep>(RECORD_CREATED[index])?.is_some() {
            continue;
        }
        ctx.record(&DomainStep::RecordSent {
            index,
            domain: domain.clone(),
            record: record.clone(),
        })
        .await?;
        // Looked for before every create, not only after a recorded send: the domain is
        // StackDock's own, so a record just like it can only be an earlier try's (or one
        // DigitalOcean made with the domain, which serves as well), and one read is cheaper
        // than a doubled record.
        let created = create_once_or_adopt(
            ctx,
            RECORD_SENT[index],
            true,
            |attempt| api.create_record(&domain, &record, attempt),
            || find_record(api, &domain, &record),
        )
        .await?;
        let adopted = created.adopted();
        ctx.record(&DomainStep::RecordCreated {
            index,
            domain: domain.clone(),
            record_id: created.into_inner().id,
            adopted,
        })
        .await?;
    }

    // Read once more for the zone file, which shows every record (the create's answer has
    // none yet).
    match api.get_domain(&domain).await? {
        Some(d) => Ok(Progress::Done(Some(Box::new(observe(d))))),
        // Not shown yet: the engine's next check will see it.
        None => Ok(Progress::Pending {
            status: None,
            check_in: std::time::Duration::ZERO,
        }),
    }
}

pub async fn undo(api: &DigitalOceanApi, step: DomainStep) -> Result<(), DockError> {
    match step {
        // Nobody had this name when the create was recorded as sent: what has it now is
        // what the create made.
        DomainStep::DomainCreateSent { domain, .. } | DomainStep::DomainCreated { domain, .. } => {
            api.delete_domain(&domain).await
        }
        DomainStep::RecordCreated {
            domain, record_id, ..
        } => api.delete_record(&domain, record_id).await,
        DomainStep::RecordSent { domain, record, .. } => {
            let found = api
                .find_records(&domain, &record.kind, &record.qualified_name(&domain))
                .await?
                .unwrap_or_default();
            for r in found.into_iter().filter(|r| r.is(&record)) {
                api.delete_record(&domain, r.id).await?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_record_sends_the_fields_a_txt_record_does_not_use_as_null() {
        let marker = Marker::try_from("stackdock-0123456789ab".to_string()).expect("a marker");
        let body = serde_json::to_value(marker_record(&marker)).expect("serialised");
        // `domain_record_txt` requires `flags` and `tag` (nullable); no TTL means DigitalOcean's.
        assert_eq!(
            body,
            serde_json::json!({"type": "TXT", "name": MARKER_RECORD, "data": marker.to_string(),
                   "priority": null, "port": null, "weight": null, "flags": null, "tag": null})
        );
    }

    #[test]
    fn zone_files_give_records_and_the_marker() {
        let zone = "$ORIGIN example.com.\n$TTL 1800\nexample.com. IN SOA ns1.digitalocean.com. hostmaster.example.com. 3 10800 3600 604800 1800\nexample.com. 1800 IN NS ns1.digitalocean.com.\n_stackdock.example.com. 1800 IN TXT \"stackdock-0123456789ab\"\nwww.example.com. 300 IN A 192.0.2.1\n";
        let records = zone_records("example.com", zone);
        assert_eq!(records.len(), 3, "{records:?}");
        assert_eq!(
            records[2],
            json!({"type": "A", "name": "www", "data": "192.0.2.1", "ttl": 300})
        );
        let domain = Domain {
            name: "example.com".into(),
            zone_file: Some(zone.into()),
            raw: Value::Null,
        };
        assert_eq!(
            zone_marker(&domain).map(String::from).as_deref(),
            Some("stackdock-0123456789ab")
        );
        let theirs = Domain {
            zone_file: Some(zone.replace("_stackdock", "_other")),
            ..domain
        };
        assert_eq!(zone_marker(&theirs), None);
    }

    #[test]
    fn record_configs_need_what_their_type_needs() {
        let parse = |v: Value| serde_json::from_value::<RecordConfig>(v).map(|r| r.0);
        let mx = parse(json!({"type": "MX", "data": "mail.example.com", "priority": 10})).unwrap();
        assert_eq!(mx.name, "@");
        for (bad, says) in [
            (
                json!({"type": "MX", "data": "mail.example.com"}),
                "needs `priority`",
            ),
            (json!({"type": "A", "data": "nope"}), "not an IPv4 address"),
            (
                json!({"type": "SRV", "name": "_sip._tcp", "data": "sip.example.com", "priority": 1, "port": 5060}),
                "needs `weight`",
            ),
            (
                json!({"type": "CAA", "data": "letsencrypt.org", "flags": 0, "tag": "x"}),
                "not issue",
            ),
            (
                json!({"type": "TXT", "data": "v", "ttl": 5}),
                "minimum is 30",
            ),
            (json!({"type": "SOA", "data": "v"}), "unknown variant"),
            (
                json!({"type": "TXT", "data": "v", "colour": 1}),
                "unknown field",
            ),
        ] {
            let err = parse(bad.clone()).expect_err("refused").to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}

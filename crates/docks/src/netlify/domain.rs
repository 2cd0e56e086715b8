//! Provisioning Netlify DNS zones (with their records) on the v2 contract.
//!
//! A zone has no tags. As for DigitalOcean's domains, the marker is carried in the zone
//! itself: a `TXT` record named [`MARKER_RECORD`] holding it, created right after the zone,
//! so a listing of the account's zones (`GET /dns_zones`, whose zones carry their records)
//! finds a zone by its marker and tells StackDock's zones from the user's. So that adoption
//! never takes over a zone the user already had, a first run looks for a zone of the name
//! before it records that it sends the create: one that exists then is refused (the user's
//! error, naming `name`).
//!
//! Netlify records have no update: a change is a delete and a create. Steps, in order:
//! 1. [`ZoneStep::ZoneCreateSent`] — before `POST /dns_zones`; undoing it deletes the zone of
//!    that name if there is one.
//! 2. [`ZoneStep::ZoneCreated`] — the zone, created or adopted; tracks its id.
//! 3. For the marker record, then each record of the config: [`ZoneStep::RecordSent`] before
//!    `POST .../dns_records` (undone by deleting the records just like it) and
//!    [`ZoneStep::RecordCreated`] with its id (undone by deleting it). A record is looked
//!    for before it is created, so a resumed run never doubles one.
//!
//! A zone is usable as soon as it exists: readiness is `Done` once its records are made.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::api::{CreateRecord, DnsRecord, NetlifyApi, Zone};

/// The name (under the zone) of the `TXT` record that carries a zone's marker.
pub const MARKER_RECORD: &str = "_stackdock";

/// How many records one provision creates at most, besides the marker's.
pub const MAX_RECORDS: usize = 20;

/// The config of a domain: a DNS zone (`POST /dns_zones`), then its records.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The domain, e.g. example.com.
    pub name: DomainName,
    /// Records to create once the zone exists, in order (at most 20).
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
            return Err(format!(
                "at most {MAX_RECORDS} records per provision, got {}",
                records.len()
            ));
        }
        for (i, r) in records.iter().enumerate() {
            r.check().map_err(|e| format!("records[{i}]: {e}"))?;
        }
        Ok(Self(records))
    }
}

/// The record types a Netlify zone takes from its API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum RecordType {
    A,
    AAAA,
    CAA,
    CNAME,
    MX,
    NS,
    SRV,
    TXT,
}

/// One record (`dnsRecordCreate`), its name relative to the zone.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// A, AAAA, CAA, CNAME, MX, NS, SRV or TXT.
    #[serde(rename = "type")]
    pub kind: RecordType,
    /// Relative to the domain: @ for the apex, www, _dmarc. Default @.
    #[serde(default)]
    pub name: Option<RecordName>,
    /// The address, host name or text the record holds.
    pub value: Text,
    /// Seconds; Netlify's default is 3600.
    #[serde(default)]
    pub ttl: Option<u32>,
    /// MX and SRV.
    #[serde(default)]
    pub priority: Option<u16>,
    /// SRV.
    #[serde(default)]
    pub weight: Option<u16>,
    /// SRV.
    #[serde(default)]
    pub port: Option<u16>,
    /// CAA flag, 0 to 255.
    #[serde(default)]
    pub flag: Option<u8>,
    /// CAA tag: issue, issuewild or iodef.
    #[serde(default)]
    pub tag: Option<Text>,
}

impl RecordConfig {
    /// The fields its type needs are there.
    fn check(&self) -> Result<(), String> {
        let needs = |fields: &str| Err(format!("a {:?} record needs {fields}", self.kind));
        match self.kind {
            RecordType::MX if self.priority.is_none() => needs("`priority`"),
            RecordType::SRV
                if self.priority.is_none() || self.weight.is_none() || self.port.is_none() =>
            {
                needs("`priority`, `weight` and `port`")
            }
            RecordType::CAA if self.flag.is_none() || self.tag.is_none() => {
                needs("`flag` and `tag`")
            }
            _ => Ok(()),
        }
    }

    /// The record as Netlify creates it in `domain`.
    fn to_create(&self, domain: &str) -> CreateRecord {
        CreateRecord {
            kind: format!("{:?}", self.kind),
            hostname: hostname(self.name.as_ref().map_or("@", RecordName::as_str), domain),
            value: self.value.to_string(),
            ttl: self.ttl.map(i64::from),
            priority: self.priority.map(i64::from),
            weight: self.weight.map(i64::from),
            port: self.port.map(i64::from),
            flag: self.flag.map(i64::from),
            tag: self.tag.as_ref().map(|t| t.to_string()),
        }
    }
}

/// A record name relative to `domain` as Netlify's full hostname.
fn hostname(name: &str, domain: &str) -> String {
    if name == "@" {
        domain.to_string()
    } else {
        format!("{name}.{domain}")
    }
}

/// The steps of a domain's provision.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ZoneStep {
    ZoneCreateSent {
        marker: Marker,
        domain: String,
    },
    ZoneCreated {
        zone_id: String,
        domain: String,
        adopted: bool,
    },
    /// Record `index` (0 is the marker's) is about to be created.
    RecordSent {
        index: usize,
        zone_id: String,
        record: CreateRecord,
    },
    RecordCreated {
        index: usize,
        zone_id: String,
        record_id: String,
        adopted: bool,
    },
}

/// Step names are fixed strings: one pair per record a provision may create.
const RECORD_STEPS: [(&str, &str); MAX_RECORDS + 1] = [
    ("marker_record_sent", "marker_record_created"),
    ("zone_record_1_sent", "zone_record_1_created"),
    ("zone_record_2_sent", "zone_record_2_created"),
    ("zone_record_3_sent", "zone_record_3_created"),
    ("zone_record_4_sent", "zone_record_4_created"),
    ("zone_record_5_sent", "zone_record_5_created"),
    ("zone_record_6_sent", "zone_record_6_created"),
    ("zone_record_7_sent", "zone_record_7_created"),
    ("zone_record_8_sent", "zone_record_8_created"),
    ("zone_record_9_sent", "zone_record_9_created"),
    ("zone_record_10_sent", "zone_record_10_created"),
    ("zone_record_11_sent", "zone_record_11_created"),
    ("zone_record_12_sent", "zone_record_12_created"),
    ("zone_record_13_sent", "zone_record_13_created"),
    ("zone_record_14_sent", "zone_record_14_created"),
    ("zone_record_15_sent", "zone_record_15_created"),
    ("zone_record_16_sent", "zone_record_16_created"),
    ("zone_record_17_sent", "zone_record_17_created"),
    ("zone_record_18_sent", "zone_record_18_created"),
    ("zone_record_19_sent", "zone_record_19_created"),
    ("zone_record_20_sent", "zone_record_20_created"),
];

impl AdapterStep for ZoneStep {
    fn name(&self) -> &'static str {
        match self {
            Self::ZoneCreateSent { .. } => "zone_create_sent",
            Self::ZoneCreated { .. } => "zone_created",
            Self::RecordSent { index, .. } => RECORD_STEPS[(*index).min(MAX_RECORDS)].0,
            Self::RecordCreated { index, .. } => RECORD_STEPS[(*index).min(MAX_RECORDS)].1,
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::ZoneCreated { zone_id, .. } => Some(zone_id),
            _ => None,
        }
    }
}

/// The `TXT` record that carries `marker` in `domain`.
fn marker_record(marker: &Marker, domain: &str) -> CreateRecord {
    CreateRecord {
        kind: "TXT".into(),
        hostname: hostname(MARKER_RECORD, domain),
        value: marker.to_string(),
        ttl: None,
        priority: None,
        weight: None,
        port: None,
        flag: None,
        tag: None,
    }
}

/// The marker among a zone's records, if any.
fn records_marker(domain: &str, records: &[DnsRecord]) -> Option<Marker> {
    let name = hostname(MARKER_RECORD, domain);
    records
        .iter()
        .filter(|r| r.kind == "TXT" && r.hostname.eq_ignore_ascii_case(&name))
        .find_map(|r| Marker::try_from(r.value.clone()).ok())
}

/// A zone's records: as its answer carried them, else read. The document leaves it open
/// whether a listing fills `records`, so an empty list is read too: it may only mean the
/// listing left them out, and a zone holding our marker is never empty.
async fn records_of(api: &NetlifyApi, zone: &Zone) -> Result<Vec<DnsRecord>, DockError> {
    match &zone.records {
        Some(records) if !records.is_empty() => Ok(records.clone()),
        _ => Ok(api.list_records(&zone.id).await?.unwrap_or_default()),
    }
}

fn observe(zone: Zone, records: Vec<DnsRecord>) -> Observed {
    Observed {
        provider_resource_id: zone.id.clone(),
        marker: records_marker(&zone.name, &records),
        name: zone.name,
        // Netlify's zones have no status: one that exists is in use.
        status: None,
        ready: true,
        failure: None,
        details: ResourceDetails::Domain(DomainDetails {
            records: Value::Array(records.into_iter().map(|r| r.raw).collect()),
        }),
        full_api_data: zone.raw,
    }
}

/// The zone named `domain` in the account.
async fn zone_named(api: &NetlifyApi, domain: &str) -> Result<Option<Zone>, DockError> {
    Ok(api
        .list_zones()
        .await?
        .into_iter()
        .find(|z| z.name.eq_ignore_ascii_case(domain)))
}

/// The record `wanted` of the zone, if it exists.
async fn find_record(
    api: &NetlifyApi,
    zone_id: &str,
    wanted: &CreateRecord,
) -> Result<Option<DnsRecord>, DockError> {
    Ok(api
        .list_records(zone_id)
        .await?
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.is(wanted)))
}

pub async fn provision(
    ctx: &mut Ctx,
    api: &NetlifyApi,
    config: &Map<String, Value>,
) -> Result<Progress, DockError> {
    let config: DomainConfig = config::parse(config)?;
    let domain = config.name.as_str().to_ascii_lowercase();
    let wanted = config
        .records
        .0
        .iter()
        .map(|r| r.to_create(&domain))
        .collect::<Vec<_>>();
    let marker = ctx.marker()?.clone();

    let zone_id = match ctx.step::<ZoneStep>("zone_created")? {
        Some(ZoneStep::ZoneCreated { zone_id, .. }) => zone_id,
        _ => {
            let sent_before = ctx.step::<ZoneStep>("zone_create_sent")?.is_some();
            if !sent_before && zone_named(api, &domain).await?.is_some() {
                return Err(ConfigError::new(
                    "name",
                    format!(
                        "{domain} already has a DNS zone in this Netlify account; StackDock does \
                         not take over a zone it did not create (a sync lists it as a manual \
                         resource)"
                    ),
                )
                .into());
            }
            ctx.record_before_sending(&ZoneStep::ZoneCreateSent {
                marker: marker.clone(),
                domain: domain.clone(),
            })
            .await?;
            let made = create_or_adopt(
                ctx,
                sent_before,
                |attempt| api.create_zone(&domain, attempt),
                || zone_named(api, &domain),
            )
            .await?;
            let adopted = made.adopted();
            let zone = made.into_inner();
            ctx.record(&ZoneStep::ZoneCreated {
                zone_id: zone.id.clone(),
                domain: domain.clone(),
                adopted,
            })
            .await?;
            zone.id
        }
    };

    let records = std::iter::once(marker_record(&marker, &domain)).chain(wanted);
    for (index, record) in records.enumerate() {
        let (_, created) = RECORD_STEPS[index];
        if ctx.step::<ZoneStep>(created)?.is_some() {
            continue;
        }
        ctx.record(&ZoneStep::RecordSent {
            index,
            zone_id: zone_id.clone(),
            record: record.clone(),
        })
        .await?;
        // Looked for before every create, not only after a recorded send: the zone is
        // StackDock's own, so a record just like it can only be an earlier try's, and one
        // read is cheaper than a doubled record.
        let made = create_or_adopt(
            ctx,
            true,
            |attempt| api.create_record(&zone_id, &record, attempt),
            || find_record(api, &zone_id, &record),
        )
        .await?;
        let adopted = made.adopted();
        ctx.record(&ZoneStep::RecordCreated {
            index,
            zone_id: zone_id.clone(),
            record_id: made.into_inner().id,
            adopted,
        })
        .await?;
    }

    match api.get_zone(&zone_id).await? {
        Some(zone) => {
            let records = api.list_records(&zone_id).await?.unwrap_or_default();
            Ok(Progress::Done(Some(Box::new(observe(zone, records)))))
        }
        None => Err(DockError::ResourceFailed {
            provider: Provider::Netlify,
            code: "gone".into(),
            message: format!("the zone of {domain} was deleted while it was provisioned"),
        }),
    }
}

pub async fn undo(api: &NetlifyApi, step: ZoneStep) -> Result<(), DockError> {
    match step {
        // Nobody had a zone of this name when the create was recorded as sent.
        ZoneStep::ZoneCreateSent { domain, .. } => match zone_named(api, &domain).await? {
            Some(zone) => api.delete_zone(&zone.id).await,
            None => Ok(()),
        },
        ZoneStep::ZoneCreated { zone_id, .. } => api.delete_zone(&zone_id).await,
        ZoneStep::RecordCreated {
            zone_id, record_id, ..
        } => api.delete_record(&zone_id, &record_id).await,
        ZoneStep::RecordSent {
            zone_id, record, ..
        } => {
            let found = api.list_records(&zone_id).await?.unwrap_or_default();
            for r in found.into_iter().filter(|r| r.is(&record)) {
                api.delete_record(&zone_id, &r.id).await?;
            }
            Ok(())
        }
    }
}

/// One listing of the account's zones answers for every tracked one.
pub async fn observe_many(
    api: &NetlifyApi,
    targets: &[Tracked],
) -> Result<Vec<Option<Observed>>, DockError> {
    let mut zones: HashMap<String, Zone> = api
        .list_zones()
        .await?
        .into_iter()
        .map(|z| (z.id.clone(), z))
        .collect();
    let mut seen = Vec::with_capacity(targets.len());
    for t in targets {
        match zones.remove(&t.provider_resource_id) {
            Some(zone) => {
                let records = records_of(api, &zone).await?;
                seen.push(Some(observe(zone, records)));
            }
            None => seen.push(None),
        }
    }
    Ok(seen)
}

/// The zone whose `_stackdock` record holds `marker`. Netlify has no filter for zones, so the
/// account's zones are listed with their records.
pub async fn find_by_marker(
    api: &NetlifyApi,
    marker: &Marker,
) -> Result<Option<Observed>, DockError> {
    for zone in api.list_zones().await? {
        let records = records_of(api, &zone).await?;
        if records_marker(&zone.name, &records).as_ref() == Some(marker) {
            return Ok(Some(observe(zone, records)));
        }
    }
    Ok(None)
}

pub async fn discover(api: &NetlifyApi) -> Result<Vec<Observed>, DockError> {
    let mut found = Vec::new();
    for zone in api.list_zones().await? {
        let records = records_of(api, &zone).await?;
        found.push(observe(zone, records));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_need_what_their_type_needs_and_get_full_hostnames() {
        let parse = |v: Value| serde_json::from_value::<RecordConfig>(v).unwrap();
        let www = parse(json!({"type": "A", "name": "www", "value": "192.0.2.1"}));
        assert_eq!(www.to_create("example.com").hostname, "www.example.com");
        let apex = parse(json!({"type": "TXT", "value": "v=spf1 -all"}));
        assert_eq!(apex.to_create("example.com").hostname, "example.com");
        let mx = json!([{"type": "MX", "value": "mail.example.com"}]);
        let err = serde_json::from_value::<Records>(mx)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("records[0]: a MX record needs `priority`"),
            "{err}"
        );
        assert!(
            serde_json::from_value::<RecordConfig>(json!({"type": "SOA", "value": "x"})).is_err()
        );
    }
}

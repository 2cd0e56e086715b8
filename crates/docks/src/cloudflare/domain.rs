//! Provisioning Cloudflare zones (with their DNS records) on the v2 contract.
//!
//! A zone has no tags. As for DigitalOcean's and Netlify's domains, the marker is carried in
//! the zone itself: a `TXT` record named [`MARKER_RECORD`] holding it, created right after the
//! zone, so the account's zones and their records tell StackDock's zones from the user's. So
//! that adoption never takes over a zone the user already had, a first run looks for a zone of
//! the name in the account before it records that it sends the create: one that exists then is
//! refused (the user's error, naming `name`).
//!
//! Steps, in order:
//! 1. [`ZoneStep::ZoneCreateSent`] — before `POST /zones`; undoing it deletes the zone of that
//!    name if there is one.
//! 2. [`ZoneStep::ZoneCreated`] — the zone, created or adopted; tracks its id. Undoing it
//!    deletes the zone, which deletes its records.
//! 3. For the marker record, then each record of the config: [`ZoneStep::RecordSent`] before
//!    `POST /zones/{zone_id}/dns_records` (undone by deleting the records just like it) and
//!    [`ZoneStep::RecordCreated`] with its id (undone by deleting it). A record is looked for
//!    before it is created, so a resumed run never doubles one.
//!
//! A zone is usable as soon as it exists: readiness is `Done` once its records are made. Its
//! `status` (`pending` until the domain's name servers point at Cloudflare, then `active`) is
//! shown as the provider's status.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::api::{CloudflareApi, CreateRecord, DnsRecord, Zone};

/// The name (under the zone) of the `TXT` record that carries a zone's marker.
pub const MARKER_RECORD: &str = "_stackdock";

/// How many records one provision creates at most, besides the marker's.
pub const MAX_RECORDS: usize = 20;

/// The config of a domain: a zone (`POST /zones`), then its DNS records.
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
        "CloudflareRecords".into()
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

/// The record types StackDock creates in a Cloudflare zone: those whose whole value is the
/// document's `content` string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum RecordType {
    A,
    AAAA,
    CNAME,
    MX,
    NS,
    TXT,
}

/// One record (`dns-records_dns-record`), its name relative to the zone.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// A, AAAA, CNAME, MX, NS or TXT.
    #[serde(rename = "type")]
    pub kind: RecordType,
    /// Relative to the domain: @ for the apex, www, _dmarc. Default @.
    #[serde(default)]
    pub name: Option<RecordName>,
    /// The address, host name or text the record holds (Cloudflare's `content`).
    pub value: Text,
    /// Seconds, 60 to 86400, or 1 for automatic (Cloudflare's default).
    #[serde(default)]
    pub ttl: Option<u32>,
    /// MX only.
    #[serde(default)]
    pub priority: Option<u16>,
    /// A, AAAA and CNAME: served through Cloudflare's proxy. Cloudflare's default is false.
    #[serde(default)]
    pub proxied: Option<bool>,
}

impl RecordConfig {
    /// The fields its type needs are there, and only fields its type takes.
    fn check(&self) -> Result<(), String> {
        if self.kind == RecordType::MX && self.priority.is_none() {
            return Err("a MX record needs `priority`".into());
        }
        if self.kind != RecordType::MX && self.priority.is_some() {
            return Err(format!("`priority` is for MX records, not {:?}", self.kind));
        }
        let proxiable = matches!(
            self.kind,
            RecordType::A | RecordType::AAAA | RecordType::CNAME
        );
        if self.proxied.is_some() && !proxiable {
            return Err(format!(
                "`proxied` is for A, AAAA and CNAME, not {:?}",
                self.kind
            ));
        }
        match self.ttl {
            None | Some(1) | Some(60..=86400) => Ok(()),
            Some(ttl) => Err(format!("`ttl` is 1 (automatic) or 60 to 86400, not {ttl}")),
        }
    }

    /// The record as Cloudflare creates it in `domain`.
    fn to_create(&self, domain: &str) -> CreateRecord {
        CreateRecord {
            kind: format!("{:?}", self.kind),
            name: full_name(self.name.as_ref().map_or("@", RecordName::as_str), domain),
            content: self.value.to_string(),
            ttl: self.ttl,
            priority: self.priority,
            proxied: self.proxied,
        }
    }
}

/// A record name relative to `domain` as the full name Cloudflare answers with.
fn full_name(name: &str, domain: &str) -> String {
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

/// Step names are fixed strings: one pair per record a provision may create. The folder
/// keeps its own table (the same names as Netlify's zones) so that it copies out whole.
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
        name: full_name(MARKER_RECORD, domain),
        content: marker.to_string(),
        ttl: None,
        priority: None,
        proxied: None,
    }
}

/// The marker among a zone's records, if any.
fn records_marker(domain: &str, records: &[DnsRecord]) -> Option<Marker> {
    let name = full_name(MARKER_RECORD, domain);
    records
        .iter()
        .filter(|r| r.kind == "TXT" && r.name.eq_ignore_ascii_case(&name))
        .find_map(|r| Marker::try_from(r.content.trim_matches('"').to_string()).ok())
}

fn observe(zone: Zone, records: Vec<DnsRecord>) -> Observed {
    Observed {
        provider_resource_id: zone.id.clone(),
        marker: records_marker(&zone.name, &records),
        name: zone.name,
        // Usable once it exists; `pending` only says the registrar does not point at
        // Cloudflare's name servers yet.
        status: zone.status,
        ready: true,
        failure: None,
        details: ResourceDetails::Domain(DomainDetails {
            records: Value::Array(records.into_iter().map(|r| r.raw).collect()),
        }),
        full_api_data: zone.raw,
    }
}

/// The zone with its records, as StackDock shows it; `None` if it went away meanwhile.
async fn observe_zone(api: &CloudflareApi, zone: Zone) -> Result<Option<Observed>, DockError> {
    Ok(api
        .list_records(&zone.id)
        .await?
        .map(|records| observe(zone, records)))
}

/// The record `wanted` of the zone, if it exists.
async fn find_record(
    api: &CloudflareApi,
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
    api: &CloudflareApi,
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
            if !sent_before && api.find_zone(&domain).await?.is_some() {
                return Err(ConfigError::new(
                    "name",
                    format!(
                        "{domain} already has a zone in this Cloudflare account; StackDock does \
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
                || api.find_zone(&domain),
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
        // Looked for before every create: the zone is StackDock's own, so a record just like
        // it can only be an earlier try's, and one read is cheaper than a doubled record.
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

    let gone = || DockError::ResourceFailed {
        provider: Provider::Cloudflare,
        code: "gone".into(),
        message: format!("the zone of {domain} was deleted while it was provisioned"),
    };
    let zone = api.get_zone(&zone_id).await?.ok_or_else(gone)?;
    let seen = observe_zone(api, zone).await?.ok_or_else(gone)?;
    Ok(Progress::Done(Some(Box::new(seen))))
}

pub async fn undo(api: &CloudflareApi, step: ZoneStep) -> Result<(), DockError> {
    match step {
        // Nobody had a zone of this name when the create was recorded as sent.
        ZoneStep::ZoneCreateSent { domain, .. } => match api.find_zone(&domain).await? {
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

/// One listing of the account's zones answers which tracked zones exist; each is read with
/// its records.
pub async fn observe_many(
    api: &CloudflareApi,
    targets: &[Tracked],
) -> Result<Vec<Option<Observed>>, DockError> {
    let mut zones: HashMap<String, Zone> = api
        .list_zones(None)
        .await?
        .into_iter()
        .map(|z| (z.id.clone(), z))
        .collect();
    let mut seen = Vec::with_capacity(targets.len());
    for t in targets {
        match zones.remove(&t.provider_resource_id) {
            Some(zone) => seen.push(observe_zone(api, zone).await?),
            None => seen.push(None),
        }
    }
    Ok(seen)
}

/// The zone whose `_stackdock` record holds `marker`. Zones cannot be found by a record, so
/// each of the account's zones is asked only for its marker record (`type` and `name`
/// filters, one short page), and only the zone that carries it has its records read.
pub async fn find_by_marker(
    api: &CloudflareApi,
    marker: &Marker,
) -> Result<Option<Observed>, DockError> {
    for zone in api.list_zones(None).await? {
        let name = full_name(MARKER_RECORD, &zone.name);
        let Some(records) = api.list_records_named(&zone.id, "TXT", &name).await? else {
            // Gone since the listing.
            continue;
        };
        if records_marker(&zone.name, &records).as_ref() != Some(marker) {
            continue;
        }
        if let Some(seen) = observe_zone(api, zone).await?
            && seen.marker.as_ref() == Some(marker)
        {
            return Ok(Some(seen));
        }
    }
    Ok(None)
}

pub async fn discover(api: &CloudflareApi) -> Result<Vec<Observed>, DockError> {
    let mut found = Vec::new();
    for zone in api.list_zones(None).await? {
        found.extend(observe_zone(api, zone).await?);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_need_what_their_type_needs_and_get_full_names() {
        let parse = |v: Value| serde_json::from_value::<RecordConfig>(v).unwrap();
        let www = parse(json!({"type": "A", "name": "www", "value": "192.0.2.1"}));
        assert_eq!(www.to_create("example.com").name, "www.example.com");
        let apex = parse(json!({"type": "TXT", "value": "v=spf1 -all"}));
        assert_eq!(apex.to_create("example.com").name, "example.com");
        let refused = |v: Value| {
            serde_json::from_value::<Records>(v)
                .unwrap_err()
                .to_string()
        };
        let err = refused(json!([{"type": "MX", "value": "mail.example.com"}]));
        assert!(
            err.contains("records[0]: a MX record needs `priority`"),
            "{err}"
        );
        let err = refused(json!([{"type": "TXT", "value": "x", "proxied": true}]));
        assert!(err.contains("`proxied` is for A, AAAA and CNAME"), "{err}");
        let err = refused(json!([{"type": "A", "value": "192.0.2.1", "ttl": 5}]));
        assert!(err.contains("`ttl`"), "{err}");
        assert!(
            serde_json::from_value::<RecordConfig>(json!({"type": "SOA", "value": "x"})).is_err()
        );
    }
}

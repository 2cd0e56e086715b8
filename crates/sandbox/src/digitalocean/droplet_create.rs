//! Validation of `POST /v2/droplets` bodies (`droplet_single_create` and
//! `droplet_multi_create` in the spec), with DigitalOcean's 422 wording where it is
//! known. Kept apart from the inventory so the rules can be read in one place.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::catalog::{self, Image, Region, Size};
use crate::front_door::ApiError;

/// DigitalOcean's own limit for one multi-create request.
const MAX_NAMES_PER_CREATE: usize = 10;
const MAX_USER_DATA_BYTES: usize = 64 * 1024;
const MAX_NAME_LEN: usize = 255;

const INVALID_SIZE: &str = "You specified an invalid size for Droplet creation.";
const INVALID_REGION: &str = "You specified an invalid region for Droplet creation.";
const INVALID_IMAGE: &str = "You specified an invalid image for Droplet creation.";
const SIZE_NOT_IN_REGION: &str = "Size is not available in this region.";
const INVALID_HOSTNAME: &str =
    "Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)";

#[derive(Clone, Copy)]
pub(super) struct Options {
    pub(super) ipv6: bool,
    pub(super) backups: bool,
    pub(super) monitoring: bool,
    pub(super) droplet_agent: bool,
    pub(super) public_networking: bool,
}

/// A create request that passed validation.
pub(crate) struct DropletSpec {
    pub(super) names: Vec<String>,
    /// Asked with `names`, so the answer lists `droplets` even for a single name.
    pub(super) multi: bool,
    pub(super) size: &'static Size,
    pub(super) region: &'static Region,
    pub(super) image: &'static Image,
    pub(super) tags: Vec<String>,
    pub(super) options: Options,
    pub(super) vpc_uuid: Option<String>,
}

pub(super) fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_entity",
        message,
    )
}

pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// The spec's pattern `^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$`, at most 255 long.
fn check_hostname(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(unprocessable("Name is required."));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(unprocessable(format!(
            "Name is too long (maximum is {MAX_NAME_LEN} characters)."
        )));
    }
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let ends_ok = name
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if chars_ok && ends_ok {
        Ok(())
    } else {
        Err(unprocessable(INVALID_HOSTNAME))
    }
}

/// DigitalOcean tag names: letters, digits, `:`, `-`, `_`, at most 255 characters.
pub(super) fn check_tag(tag: &str) -> Result<(), ApiError> {
    let ok = !tag.is_empty()
        && tag.len() <= 255
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(unprocessable(format!(
            "Tag name \"{tag}\" is invalid: tag names may contain only letters, numbers, colons, dashes and underscores, and be at most 255 characters long."
        )))
    }
}

fn optional_bool(body: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(unprocessable(format!(
            "The provided {key} value must be a boolean."
        ))),
    }
}

/// `region` may be an exact slug or a prefix such as `nyc`, which DigitalOcean
/// resolves to any datacenter of that region offering the size.
fn pick_region(requested: Option<&str>, size: &Size) -> Result<&'static Region, ApiError> {
    let Some(requested) = requested else {
        return catalog::region(catalog::DEFAULT_REGION)
            .filter(|r| size.offered_in(r.slug))
            .or_else(|| catalog::REGIONS.iter().find(|r| size.offered_in(r.slug)))
            .ok_or_else(|| unprocessable(SIZE_NOT_IN_REGION));
    };
    if let Some(region) = catalog::region(requested) {
        return if size.offered_in(region.slug) {
            Ok(region)
        } else {
            Err(unprocessable(SIZE_NOT_IN_REGION))
        };
    }
    let family: Vec<&'static Region> = catalog::REGIONS
        .iter()
        .filter(|r| !requested.is_empty() && r.slug.starts_with(requested))
        .collect();
    if family.is_empty() {
        return Err(unprocessable(INVALID_REGION));
    }
    family
        .into_iter()
        .find(|r| size.offered_in(r.slug))
        .ok_or_else(|| unprocessable(SIZE_NOT_IN_REGION))
}

impl DropletSpec {
    /// Validates a `droplet_single_create` / `droplet_multi_create` body.
    pub(crate) fn from_body(body: &Value) -> Result<Self, ApiError> {
        let Some(body) = body.as_object() else {
            return Err(bad_request("The request body must be a JSON object."));
        };

        let (names, multi) = match body.get("names") {
            Some(Value::Array(items)) => {
                let names = items
                    .iter()
                    .map(|n| n.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| {
                        unprocessable("The provided names value must be an array of strings.")
                    })?;
                if names.is_empty() || names.len() > MAX_NAMES_PER_CREATE {
                    return Err(unprocessable(format!(
                        "You may create between 1 and {MAX_NAMES_PER_CREATE} Droplets at a time."
                    )));
                }
                (names, true)
            }
            Some(Value::Null) | None => match body.get("name") {
                Some(Value::String(name)) => (vec![name.clone()], false),
                None | Some(Value::Null) => return Err(unprocessable("Name is required.")),
                Some(_) => return Err(unprocessable("The provided name value must be a string.")),
            },
            Some(_) => {
                return Err(unprocessable(
                    "The provided names value must be an array of strings.",
                ));
            }
        };
        for name in &names {
            check_hostname(name)?;
        }

        let size = body
            .get("size")
            .and_then(Value::as_str)
            .and_then(catalog::size)
            .ok_or_else(|| unprocessable(INVALID_SIZE))?;

        let requested_region = match body.get("region") {
            None | Some(Value::Null) => None,
            Some(Value::String(slug)) => Some(slug.as_str()),
            Some(_) => return Err(unprocessable(INVALID_REGION)),
        };
        let region = pick_region(requested_region, size)?;

        let image = match body.get("image") {
            Some(Value::String(slug)) => catalog::image_by_slug(slug),
            Some(Value::Number(id)) => id.as_u64().and_then(catalog::image_by_id),
            _ => None,
        }
        .ok_or_else(|| unprocessable(INVALID_IMAGE))?;

        let mut tags: Vec<String> = Vec::new();
        match body.get("tags") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let tag = item.as_str().ok_or_else(|| {
                        unprocessable("The provided tags value must be an array of strings.")
                    })?;
                    check_tag(tag)?;
                    if !tags.iter().any(|t| t == tag) {
                        tags.push(tag.to_owned());
                    }
                }
            }
            Some(_) => return Err(unprocessable("The provided tags value must be an array.")),
        }

        match body.get("ssh_keys") {
            None | Some(Value::Null) => {}
            Some(Value::Array(keys)) if keys.iter().all(|k| k.is_string() || k.is_u64()) => {}
            Some(_) => {
                return Err(unprocessable(
                    "The provided ssh_keys value must be an array.",
                ));
            }
        }

        match body.get("user_data") {
            None | Some(Value::Null) => {}
            Some(Value::String(data)) if data.len() <= MAX_USER_DATA_BYTES => {}
            Some(Value::String(_)) => {
                return Err(unprocessable("user_data may not exceed 64 KiB in size."));
            }
            Some(_) => {
                return Err(unprocessable(
                    "The provided user_data value must be a string.",
                ));
            }
        }

        let vpc_uuid = match body.get("vpc_uuid") {
            None | Some(Value::Null) => None,
            Some(Value::String(uuid)) if !uuid.is_empty() => Some(uuid.clone()),
            Some(_) => {
                return Err(unprocessable(
                    "The provided vpc_uuid value must be a string.",
                ));
            }
        };

        let options = Options {
            ipv6: optional_bool(body, "ipv6", false)?,
            backups: optional_bool(body, "backups", false)?,
            monitoring: optional_bool(body, "monitoring", false)?,
            droplet_agent: optional_bool(body, "with_droplet_agent", true)?,
            public_networking: optional_bool(body, "public_networking", true)?,
        };
        // Deprecated but still accepted by DigitalOcean; only its type is checked.
        optional_bool(body, "private_networking", false)?;
        if !options.public_networking && options.ipv6 {
            return Err(unprocessable(
                "ipv6 must be false when public_networking is false.",
            ));
        }

        Ok(Self {
            names,
            multi,
            size,
            region,
            image,
            tags,
            options,
            vpc_uuid,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(body: Value) -> Result<DropletSpec, ApiError> {
        DropletSpec::from_body(&body)
    }

    fn message(body: Value) -> String {
        match spec(body) {
            Ok(_) => panic!("expected a validation error"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn hostnames_follow_the_spec_pattern() {
        assert!(check_hostname("web-01.example.com").is_ok());
        assert!(check_hostname("a").is_ok());
        assert!(check_hostname("web_01").is_err());
        assert!(check_hostname("web-").is_err());
        assert!(check_hostname("web 01").is_err());
        assert!(check_hostname(&"a".repeat(256)).is_err());
    }

    #[test]
    fn region_prefix_and_default() {
        let base = json!({"name": "a", "size": "s-1vcpu-1gb", "image": "debian-12-x64"});
        let chosen = spec(base.clone()).unwrap();
        assert_eq!(chosen.region.slug, catalog::DEFAULT_REGION);
        let mut with_prefix = base.clone();
        with_prefix["region"] = json!("nyc");
        assert!(spec(with_prefix).unwrap().region.slug.starts_with("nyc"));
    }

    #[test]
    fn size_must_be_offered_in_region() {
        let msg = message(json!({
            "name": "a", "size": "s-1vcpu-512mb-10gb", "region": "sgp1", "image": "debian-12-x64"
        }));
        assert_eq!(msg, SIZE_NOT_IN_REGION);
    }

    #[test]
    fn image_by_numeric_id() {
        let id = catalog::image_by_slug("ubuntu-24-04-x64").unwrap().id;
        let chosen = spec(json!({"name": "a", "size": "s-1vcpu-1gb", "image": id})).unwrap();
        assert_eq!(chosen.image.slug, "ubuntu-24-04-x64");
    }

    #[test]
    fn tags_are_checked_and_deduplicated() {
        let body = json!({"name": "a", "size": "s-1vcpu-1gb", "image": "debian-12-x64",
                          "tags": ["env:prod", "web", "env:prod"]});
        assert_eq!(spec(body).unwrap().tags, ["env:prod", "web"]);
        let bad = json!({"name": "a", "size": "s-1vcpu-1gb", "image": "debian-12-x64",
                         "tags": ["stack=prod"]});
        assert!(message(bad).contains("stack=prod"));
        let not_array = json!({"name": "a", "size": "s-1vcpu-1gb", "image": "debian-12-x64",
                               "tags": "web"});
        assert!(spec(not_array).is_err());
    }

    #[test]
    fn multi_create_limits() {
        let names: Vec<String> = (0..11).map(|i| format!("n{i}")).collect();
        let body = json!({"names": names, "size": "s-1vcpu-1gb", "image": "debian-12-x64"});
        assert!(spec(body).is_err());
    }
}

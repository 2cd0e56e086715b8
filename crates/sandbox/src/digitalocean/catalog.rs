//! The regions, sizes and images the sandbox offers, shaped like DigitalOcean's
//! `region`, `size` and `image` schemas, and the `/v2/regions` and `/v2/sizes` lists.
//!
//! The figures (memory, disk, transfer, prices) are DigitalOcean's published Basic
//! plans, so cost estimates computed against the sandbox look like real ones.

use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, State};
use serde_json::{Value, json};

use super::Cloud;
use super::paging::{Listing, PageRequest, QueryParams};
use crate::front_door::ApiError;

pub(crate) struct Region {
    pub(crate) slug: &'static str,
    pub(crate) name: &'static str,
}

pub(crate) struct Size {
    pub(crate) slug: &'static str,
    pub(crate) memory_mb: u64,
    pub(crate) vcpus: u64,
    pub(crate) disk_gb: u64,
    pub(crate) transfer_tb: f64,
    pub(crate) price_monthly: f64,
    pub(crate) price_hourly: f64,
    /// Regions that do not offer this plan; kept short so the "not available in this
    /// region" path exists without getting in the way of ordinary tests.
    unavailable_in: &'static [&'static str],
}

pub(crate) struct Image {
    pub(crate) id: u64,
    pub(crate) slug: &'static str,
    name: &'static str,
    distribution: &'static str,
    description: &'static str,
    created_at: &'static str,
    min_disk_size: u64,
    size_gigabytes: f64,
}

/// Sorted by slug, as DigitalOcean lists them.
pub(crate) const REGIONS: &[Region] = &[
    Region {
        slug: "ams3",
        name: "Amsterdam 3",
    },
    Region {
        slug: "fra1",
        name: "Frankfurt 1",
    },
    Region {
        slug: "lon1",
        name: "London 1",
    },
    Region {
        slug: "nyc1",
        name: "New York 1",
    },
    Region {
        slug: "nyc3",
        name: "New York 3",
    },
    Region {
        slug: "sfo3",
        name: "San Francisco 3",
    },
    Region {
        slug: "sgp1",
        name: "Singapore 1",
    },
    Region {
        slug: "tor1",
        name: "Toronto 1",
    },
];

/// Where a create without `region` lands; DigitalOcean may pick any region, and the
/// sandbox picks the one most examples use.
pub(crate) const DEFAULT_REGION: &str = "nyc3";

const REGION_FEATURES: &[&str] = &[
    "backups",
    "ipv6",
    "metadata",
    "install_agent",
    "storage",
    "image_transfer",
];

pub(crate) const SIZES: &[Size] = &[
    Size {
        slug: "s-1vcpu-512mb-10gb",
        memory_mb: 512,
        vcpus: 1,
        disk_gb: 10,
        transfer_tb: 0.5,
        price_monthly: 4.0,
        price_hourly: 0.00595,
        unavailable_in: &["sgp1", "tor1"],
    },
    Size {
        slug: "s-1vcpu-1gb",
        memory_mb: 1024,
        vcpus: 1,
        disk_gb: 25,
        transfer_tb: 1.0,
        price_monthly: 6.0,
        price_hourly: 0.00893,
        unavailable_in: &[],
    },
    Size {
        slug: "s-1vcpu-2gb",
        memory_mb: 2048,
        vcpus: 1,
        disk_gb: 50,
        transfer_tb: 2.0,
        price_monthly: 12.0,
        price_hourly: 0.01786,
        unavailable_in: &[],
    },
    Size {
        slug: "s-2vcpu-2gb",
        memory_mb: 2048,
        vcpus: 2,
        disk_gb: 60,
        transfer_tb: 3.0,
        price_monthly: 18.0,
        price_hourly: 0.02679,
        unavailable_in: &[],
    },
    Size {
        slug: "s-2vcpu-4gb",
        memory_mb: 4096,
        vcpus: 2,
        disk_gb: 80,
        transfer_tb: 4.0,
        price_monthly: 24.0,
        price_hourly: 0.03571,
        unavailable_in: &[],
    },
    Size {
        slug: "s-4vcpu-8gb",
        memory_mb: 8192,
        vcpus: 4,
        disk_gb: 160,
        transfer_tb: 5.0,
        price_monthly: 48.0,
        price_hourly: 0.07143,
        unavailable_in: &[],
    },
    // A GPU size (the document's example droplet has one): such droplets are listed only
    // with `type=gpus`.
    Size {
        slug: "gpu-h100x1-80gb",
        memory_mb: 245_760,
        vcpus: 20,
        disk_gb: 720,
        transfer_tb: 15.0,
        price_monthly: 2_522.0,
        price_hourly: 3.39,
        unavailable_in: &[],
    },
];

pub(crate) const IMAGES: &[Image] = &[
    Image {
        id: 160_232_537,
        slug: "ubuntu-24-04-x64",
        name: "24.04 (LTS) x64",
        distribution: "Ubuntu",
        description: "Ubuntu 24.04 (LTS) x64",
        created_at: "2024-07-02T15:36:41Z",
        min_disk_size: 7,
        size_gigabytes: 2.58,
    },
    Image {
        id: 129_211_873,
        slug: "ubuntu-22-04-x64",
        name: "22.04 (LTS) x64",
        distribution: "Ubuntu",
        description: "Ubuntu 22.04 (LTS) x64",
        created_at: "2023-03-29T18:23:50Z",
        min_disk_size: 7,
        size_gigabytes: 2.37,
    },
    Image {
        id: 145_843_931,
        slug: "debian-12-x64",
        name: "12 x64",
        distribution: "Debian",
        description: "Debian 12 x64 (bookworm)",
        created_at: "2023-12-13T22:05:18Z",
        min_disk_size: 7,
        size_gigabytes: 0.94,
    },
    Image {
        id: 159_651_797,
        slug: "fedora-40-x64",
        name: "40 x64",
        distribution: "Fedora",
        description: "Fedora 40 x64",
        created_at: "2024-06-18T14:04:37Z",
        min_disk_size: 7,
        size_gigabytes: 1.52,
    },
    Image {
        id: 148_221_564,
        slug: "rockylinux-9-x64",
        name: "9 x64",
        distribution: "Rocky Linux",
        description: "Rocky Linux 9 x64",
        created_at: "2024-01-24T19:41:27Z",
        min_disk_size: 10,
        size_gigabytes: 1.06,
    },
];

pub(crate) fn region(slug: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.slug == slug)
}

pub(crate) fn region_index(slug: &str) -> usize {
    REGIONS.iter().position(|r| r.slug == slug).unwrap_or(0)
}

pub(crate) fn size(slug: &str) -> Option<&'static Size> {
    SIZES.iter().find(|s| s.slug == slug)
}

pub(crate) fn image_by_slug(slug: &str) -> Option<&'static Image> {
    IMAGES.iter().find(|i| i.slug == slug)
}

pub(crate) fn image_by_id(id: u64) -> Option<&'static Image> {
    IMAGES.iter().find(|i| i.id == id)
}

impl Size {
    pub(crate) fn offered_in(&self, region: &str) -> bool {
        !self.unavailable_in.contains(&region)
    }

    pub(crate) fn to_json(&self) -> Value {
        let regions: Vec<&str> = REGIONS
            .iter()
            .map(|r| r.slug)
            .filter(|r| self.offered_in(r))
            .collect();
        json!({
            "slug": self.slug,
            "memory": self.memory_mb,
            "vcpus": self.vcpus,
            "disk": self.disk_gb,
            "transfer": self.transfer_tb,
            "price_monthly": self.price_monthly,
            "price_hourly": self.price_hourly,
            "regions": regions,
            "available": true,
            "description": "Basic",
            "disk_info": disk_info(self.disk_gb),
        })
    }
}

impl Region {
    pub(crate) fn to_json(&self) -> Value {
        let sizes: Vec<&str> = SIZES
            .iter()
            .filter(|s| s.offered_in(self.slug))
            .map(|s| s.slug)
            .collect();
        json!({
            "name": self.name,
            "slug": self.slug,
            "features": REGION_FEATURES,
            "available": true,
            "sizes": sizes,
        })
    }
}

impl Image {
    pub(crate) fn to_json(&self) -> Value {
        let regions: Vec<&str> = REGIONS.iter().map(|r| r.slug).collect();
        json!({
            "id": self.id,
            "name": self.name,
            "distribution": self.distribution,
            "slug": self.slug,
            "public": true,
            "regions": regions,
            "created_at": self.created_at,
            "type": "base",
            "min_disk_size": self.min_disk_size,
            "size_gigabytes": self.size_gigabytes,
            "description": self.description,
            "tags": [],
            "status": "available",
            "error_message": "",
        })
    }
}

pub(crate) fn disk_info(disk_gb: u64) -> Value {
    json!([{ "type": "local", "size": { "amount": disk_gb, "unit": "gib" } }])
}

pub(crate) async fn list_regions(
    State(cloud): State<Arc<Cloud>>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let paging = PageRequest::from_query(&QueryParams::parse(&uri)?);
    let regions: Vec<Value> = REGIONS.iter().map(Region::to_json).collect();
    Ok(Json(
        Listing::new(&cloud.base_url, &uri, paging).render("regions", regions),
    ))
}

pub(crate) async fn list_sizes(
    State(cloud): State<Arc<Cloud>>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let paging = PageRequest::from_query(&QueryParams::parse(&uri)?);
    let sizes: Vec<Value> = SIZES.iter().map(Size::to_json).collect();
    Ok(Json(
        Listing::new(&cloud.base_url, &uri, paging).render("sizes", sizes),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_entries_exist() {
        assert!(region("nyc3").is_some());
        assert!(region(DEFAULT_REGION).is_some());
        assert!(size("s-1vcpu-1gb").is_some());
        assert!(image_by_slug("ubuntu-24-04-x64").is_some());
    }

    #[test]
    fn memory_is_a_multiple_of_eight() {
        // The spec declares `multipleOf: 8` for memory.
        assert!(SIZES.iter().all(|s| s.memory_mb % 8 == 0));
    }

    #[test]
    fn every_size_fits_every_image() {
        for size in SIZES {
            for image in IMAGES {
                assert!(size.disk_gb >= image.min_disk_size, "{}", size.slug);
            }
        }
    }
}

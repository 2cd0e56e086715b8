//! IP addresses handed to sandbox droplets.
//!
//! Every address comes from ranges reserved for documentation and benchmarking
//! (RFC 5737, RFC 2544, RFC 3849) or from private space, so nothing ever tries to
//! reach a real host by accident. Addresses are allocated lowest-free-first and
//! returned on delete, which mirrors DigitalOcean recycling IPs between droplets.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

/// RFC 5737 TEST-NET-3, TEST-NET-2 and TEST-NET-1; `.1` is each net's gateway.
const DOCUMENTATION_NETS: [[u8; 3]; 3] = [[203, 0, 113], [198, 51, 100], [192, 0, 2]];
const HOSTS_PER_NET: u32 = 253;
/// RFC 2544 benchmarking space, for when a benchmark outgrows the documentation nets.
const OVERFLOW_NET: u32 = u32::from_be_bytes([198, 18, 0, 0]);
const OVERFLOW_HOSTS: u32 = (1 << 17) - 3;

#[derive(Debug, Default)]
pub(crate) struct AddressPool {
    next: u32,
    released: BTreeSet<u32>,
}

impl AddressPool {
    pub(crate) fn allocate(&mut self) -> u32 {
        self.released.pop_first().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        })
    }

    pub(crate) fn release(&mut self, slot: u32) {
        self.released.insert(slot);
    }
}

/// `networks` as DigitalOcean shows it for an active droplet holding `slot`.
pub(crate) fn networks(slot: u32, region_index: usize, public: bool, ipv6: bool) -> Value {
    let mut v4 = vec![private_v4(slot, region_index)];
    if public {
        v4.push(public_v4(slot));
    }
    let v6 = if public && ipv6 {
        vec![public_v6(slot, region_index)]
    } else {
        Vec::new()
    };
    json!({ "v4": v4, "v6": v6 })
}

fn public_v4(slot: u32) -> Value {
    let (ip, netmask, gateway) = if slot < HOSTS_PER_NET * DOCUMENTATION_NETS.len() as u32 {
        let [a, b, c] = DOCUMENTATION_NETS[(slot / HOSTS_PER_NET) as usize];
        let host = (slot % HOSTS_PER_NET + 2) as u8;
        (
            Ipv4Addr::new(a, b, c, host),
            Ipv4Addr::new(255, 255, 255, 0),
            Ipv4Addr::new(a, b, c, 1),
        )
    } else {
        let offset = (slot - HOSTS_PER_NET * DOCUMENTATION_NETS.len() as u32) % OVERFLOW_HOSTS;
        (
            Ipv4Addr::from(OVERFLOW_NET + 2 + offset),
            Ipv4Addr::new(255, 254, 0, 0),
            Ipv4Addr::from(OVERFLOW_NET + 1),
        )
    };
    json!({
        "ip_address": ip.to_string(),
        "netmask": netmask.to_string(),
        "gateway": gateway.to_string(),
        "type": "public",
    })
}

/// The droplet's address in its region's default VPC (a /20, as DigitalOcean sizes
/// default VPCs).
fn private_v4(slot: u32, region_index: usize) -> Value {
    let ip = Ipv4Addr::new(
        10,
        110 + region_index as u8,
        ((slot / 254) % 16) as u8,
        (slot % 254 + 2) as u8,
    );
    json!({
        "ip_address": ip.to_string(),
        "netmask": "255.255.240.0",
        // The spec's own example: private interfaces have no gateway, shown as "nil".
        "gateway": "nil",
        "type": "private",
    })
}

/// RFC 3849 documentation prefix, one /64 per region, as DigitalOcean does.
fn public_v6(slot: u32, region_index: usize) -> Value {
    let segment = 0x1010 + region_index as u16;
    let host = slot + 2;
    let ip = Ipv6Addr::new(
        0x2001,
        0x0db8,
        0,
        segment,
        0,
        0,
        (host >> 16) as u16,
        host as u16,
    );
    let gateway = Ipv6Addr::new(0x2001, 0x0db8, 0, segment, 0, 0, 0, 1);
    json!({
        "ip_address": ip.to_string(),
        "netmask": 64,
        "gateway": gateway.to_string(),
        "type": "public",
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn public_ip(slot: u32) -> String {
        public_v4(slot)["ip_address"].as_str().unwrap().to_owned()
    }

    #[test]
    fn public_addresses_are_unique_and_documentation_only() {
        let ips: HashSet<String> = (0..5000).map(public_ip).collect();
        assert_eq!(ips.len(), 5000);
        assert_eq!(public_ip(0), "203.0.113.2");
        assert_eq!(public_ip(253), "198.51.100.2");
        assert_eq!(public_ip(759), "198.18.0.2");
        for ip in &ips {
            let ok = [
                "203.0.113.",
                "198.51.100.",
                "192.0.2.",
                "198.18.",
                "198.19.",
            ]
            .iter()
            .any(|p| ip.starts_with(p));
            assert!(ok, "{ip}");
            let last_octet = ip.rsplit('.').next().unwrap();
            if !ip.starts_with("198.1") || ip.starts_with("198.51.") {
                assert!(!["0", "1", "255"].contains(&last_octet), "{ip}");
            }
        }
    }

    #[test]
    fn released_slots_are_reused_lowest_first() {
        let mut pool = AddressPool::default();
        let slots: Vec<u32> = (0..4).map(|_| pool.allocate()).collect();
        assert_eq!(slots, [0, 1, 2, 3]);
        pool.release(2);
        pool.release(1);
        assert_eq!(pool.allocate(), 1);
        assert_eq!(pool.allocate(), 2);
        assert_eq!(pool.allocate(), 4);
    }

    #[test]
    fn ipv6_is_in_the_documentation_prefix() {
        let v6 = public_v6(70_000, 3);
        let ip: Ipv6Addr = v6["ip_address"].as_str().unwrap().parse().unwrap();
        assert_eq!(ip.segments()[..2], [0x2001, 0x0db8]);
    }
}

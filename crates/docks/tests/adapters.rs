//! The adapter conformance suite (`conformance/`) against every adapter and its sandbox.
//!
//! To add an adapter: implement `conformance::Harness` for it beside
//! `conformance/digitalocean.rs`, then add its line below.

mod conformance;
mod support;

conformance::suite!(cloudflare, crate::conformance::cloudflare::Cloudflare);
conformance::suite!(digitalocean, crate::conformance::digitalocean::DigitalOcean);
conformance::suite!(docker, crate::conformance::docker::Docker);
conformance::suite!(netlify, crate::conformance::netlify::Netlify);
conformance::suite!(turso, crate::conformance::turso::Turso);
conformance::suite!(vercel, crate::conformance::vercel::Vercel);
conformance::suite!(vultr, crate::conformance::vultr::Vultr);

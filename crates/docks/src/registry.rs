//! Which adapter serves which provider. Built-in adapters are registered at start; an ejected
//! adapter (a user's own copy) is registered over the built-in one.

use std::collections::HashMap;
use std::sync::Arc;

use stackdock_core::Provider;

use crate::adapter::DockAdapter;
use crate::cloudflare::CloudflareAdapter;
use crate::digitalocean::DigitalOceanAdapter;
use crate::docker::DockerAdapter;
use crate::netlify::NetlifyAdapter;
use crate::turso::TursoAdapter;
use crate::vercel::VercelAdapter;
use crate::vultr::VultrAdapter;

#[derive(Clone, Default)]
pub struct Registry {
    adapters: HashMap<Provider, Arc<dyn DockAdapter>>,
}

impl Registry {
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every built-in adapter, sharing one HTTP connection pool.
    pub fn builtin() -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("stackdock/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let mut r = Self::empty();
        r.register(Arc::new(CloudflareAdapter::new(client.clone())));
        r.register(Arc::new(DigitalOceanAdapter::new(client.clone())));
        r.register(Arc::new(DockerAdapter::new()));
        r.register(Arc::new(NetlifyAdapter::new(client.clone())));
        r.register(Arc::new(TursoAdapter::new(client.clone())));
        r.register(Arc::new(VercelAdapter::new(client.clone())));
        r.register(Arc::new(VultrAdapter::new(client)));
        r
    }

    /// Registers `adapter` for its provider, replacing any registered before.
    pub fn register(&mut self, adapter: Arc<dyn DockAdapter>) {
        self.adapters.insert(adapter.provider(), adapter);
    }

    pub fn get(&self, provider: Provider) -> Option<Arc<dyn DockAdapter>> {
        self.adapters.get(&provider).cloned()
    }

    pub fn providers(&self) -> Vec<Provider> {
        let mut v: Vec<Provider> = self.adapters.keys().copied().collect();
        v.sort_by_key(|p| p.as_str());
        v
    }
}

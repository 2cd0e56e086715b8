//! Docker: web services built into images, pushed to a registry and run as containers on a
//! Docker Engine, through the Engine API over its unix socket or TCP.
//!
//! Written against the Engine API's Swagger document (`/build`, `/images/{name}/push`,
//! `/containers/...`, `/networks/...`), negotiating the version through `GET /_ping`. The
//! engine documents no rate limit and the dock's budget sets none.

mod adapter;
pub mod api;
pub mod conn;
mod context;

pub use adapter::{
    DEFAULT_NETWORK, DockSettings, DockerAdapter, DockerStep, LABEL_DOCK, LABEL_IMAGE_DIGEST,
    LABEL_MANAGED, LABEL_MARKER, WebServiceConfig, labels, marker_filter,
};
pub use context::Ignore;

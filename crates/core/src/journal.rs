//! The journal: one record per provider HTTP call, so a user can see every call made for a
//! resource. Nothing secret goes in: no headers, no bodies, no query values whose parameter
//! names look secret.

use serde::{Deserialize, Serialize};

use crate::{DockId, OperationId, OrgId, ResourceId, Timestamp};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiCall {
    pub id: i64,
    pub org_id: OrgId,
    pub dock_id: DockId,
    pub resource_id: Option<ResourceId>,
    pub operation_id: Option<OperationId>,
    pub method: String,
    /// The path and query; values of parameters whose names look secret are redacted.
    pub path: String,
    /// `None` when no response came (timeout, connection refused).
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub request_id: Option<String>,
    /// 1 for the first try, 2 for the first retry, ...
    pub attempt: u32,
    /// Why the call did not succeed, already redacted.
    pub error: Option<String>,
    /// When the request was sent.
    pub at: Timestamp,
    /// The worker that made the call under its lease on the operation (its name starts with
    /// its node's); `None` for calls made outside an operation (checking a dock's key, a
    /// sync). With several nodes, it shows that one node at a time worked an operation.
    #[serde(default)]
    pub worker: Option<String>,
}

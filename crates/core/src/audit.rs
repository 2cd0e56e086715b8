//! The audit log: append-only, one row per action and outcome.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{OrgId, RequestId, Timestamp, TokenId, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action was accepted and recorded (e.g. a provision request queued).
    Requested,
    Success,
    Failure,
    /// The caller's role does not allow the action; nothing was done.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "requested" => Ok(Self::Requested),
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            "denied" => Ok(Self::Denied),
            _ => Err(format!("unknown outcome {s:?}")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub org_id: OrgId,
    /// The user who acted; `None` for the engine acting on a user's earlier request.
    pub actor: Option<UserId>,
    /// The API token the user acted with, when they did through the API.
    #[serde(default)]
    pub token_id: Option<TokenId>,
    /// The API request that acted, as answered in its `X-Request-Id`.
    #[serde(default)]
    pub request_id: Option<RequestId>,
    /// `server.provision`, `dock.add`, ...
    pub action: String,
    pub outcome: Outcome,
    /// `servers/<id>`, `docks/<id>`.
    pub resource: Option<String>,
    pub provider: Option<String>,
    pub details: serde_json::Value,
    pub at: Timestamp,
}

impl AuditEntry {
    /// An entry still to be written: the store assigns `id`.
    pub fn new(
        org_id: OrgId,
        actor: Option<UserId>,
        action: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        Self {
            id: 0,
            org_id,
            actor,
            token_id: None,
            request_id: None,
            action: action.into(),
            outcome,
            resource: None,
            provider: None,
            details: serde_json::Value::Null,
            at: chrono::Utc::now(),
        }
    }

    pub fn resource(mut self, r: impl Into<String>) -> Self {
        self.resource = Some(r.into());
        self
    }

    pub fn provider(mut self, p: impl Into<String>) -> Self {
        self.provider = Some(p.into());
        self
    }

    pub fn details(mut self, d: serde_json::Value) -> Self {
        self.details = d;
        self
    }

    /// The token and request the action came through.
    pub fn through(mut self, token: Option<TokenId>, request: Option<RequestId>) -> Self {
        self.token_id = token;
        self.request_id = request;
        self
    }
}

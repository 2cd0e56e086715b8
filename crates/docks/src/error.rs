//! Adapter errors. They know nothing of StackDock's own HTTP API; the server maps them at
//! its edge.

use std::time::Duration;

use stackdock_core::{Provider, ResourceKind};

use crate::config::ConfigError;

/// An error answer from a provider, in the provider's own words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderError {
    pub provider: Provider,
    pub status: u16,
    /// The provider's error code (`unprocessable_entity`), or the HTTP status when it gave none.
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DockError {
    #[error("{provider} does not support {kind} resources")]
    Unsupported {
        provider: Provider,
        kind: ResourceKind,
    },
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    /// A permanent refusal (4xx other than 429): retrying would get the same answer.
    #[error("{} answered {}: {}", .0.provider, .0.code, .0.message)]
    Provider(ProviderError),
    /// The provider did not answer usefully (timeout, connection error, 5xx, 429) and the
    /// retry budget for this call is spent. The operation may be tried again later.
    #[error("{provider} is unavailable: {detail}")]
    Unavailable {
        provider: Provider,
        detail: String,
        /// What the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The provider refused the call for its rate limit (429) and did nothing: the call can
    /// be sent again as it is once the dock's budget allows, a create included.
    #[error("{provider} is rate limiting this account")]
    RateLimited {
        provider: Provider,
        retry_after: Option<Duration>,
    },
    /// The provider reports the resource itself broke (e.g. a build errored).
    #[error("{provider} reports the resource failed ({code}): {message}")]
    ResourceFailed {
        provider: Provider,
        code: String,
        message: String,
    },
    /// The provider's answer did not have the shape its API documents.
    #[error("{provider} sent an unexpected answer: {detail}")]
    Protocol { provider: Provider, detail: String },
    /// Progress could not be recorded (the store refused, or this worker lost its lease).
    /// The adapter must stop: carrying on would act without a record.
    #[error("progress could not be recorded")]
    Checkpoint(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A user asked to stop the operation; the step just recorded is kept and the engine
    /// unwinds from there.
    #[error("cancelled at the user's request")]
    Cancelled,
}

impl DockError {
    /// Whether trying again later may succeed. An answer that could not be read (cut short,
    /// not the documented shape) counts: it says nothing about what the provider would
    /// answer next time. Only the provider's own refusals are permanent.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::RateLimited { .. } | Self::Protocol { .. }
        )
    }

    /// For a create: whether the provider may have acted although we cannot tell (no answer,
    /// a 5xx, an answer we could not read). The resource is then looked up by its marker
    /// before anything else happens.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Protocol { .. })
    }

    /// The code recorded in a resource's `error.code`: the provider's own where it gave one.
    pub fn code(&self) -> String {
        match self {
            Self::Unsupported { .. } => "unsupported".into(),
            Self::InvalidConfig(_) => "invalid_config".into(),
            Self::Provider(p) => p.code.clone(),
            Self::Unavailable { .. } => "provider_unavailable".into(),
            Self::RateLimited { .. } => "rate_limited".into(),
            Self::ResourceFailed { code, .. } => code.clone(),
            Self::Protocol { .. } => "provider_protocol".into(),
            Self::Checkpoint(_) => "checkpoint_failed".into(),
            Self::Cancelled => "cancelled".into(),
        }
    }

    /// The message recorded in a resource's `error.message`: the provider's own words for a
    /// provider error, our sentence otherwise.
    pub fn message(&self) -> String {
        match self {
            Self::Provider(p) => p.message.clone(),
            Self::ResourceFailed { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Provider(p) if p.status == 404)
    }
}

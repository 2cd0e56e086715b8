//! The domain of StackDock, shared by every other crate.
//!
//! `core` sits at the bottom of the dependency graph (`core <- docks <- engine <- server <- cli`,
//! `core <- store <- engine`). It holds the universal resource model, the provisioning state
//! machine, roles and permissions, operations and the journal records, and the sealing of dock
//! API keys.
//!
//! **Architecture invariant:** `core` does no I/O. It never opens a file, a socket or a
//! database; callers hand it bytes and get bytes back.

pub mod audit;
pub mod crypto;
pub mod dock;
pub mod ids;
pub mod journal;
pub mod operation;
pub mod redact;
pub mod report;
pub mod resource;
pub mod role;
pub mod state;

pub use audit::{AuditEntry, Outcome};
pub use crypto::{KeyId, Keyring, MasterKey, SealedSecret, SecretString};
pub use dock::{Dock, DockName, Provider};
pub use ids::{DockId, Marker, OperationId, OrgId, RequestId, ResourceId, TokenId, UserId};
pub use journal::ApiCall;
pub use operation::{Failure, OpKind, OpState, Operation, Step, StepStatus};
pub use resource::{
    DatabaseDetails, DomainDetails, ProvisioningSource, Resource, ResourceDetails, ResourceError,
    ResourceKind, ServerDetails, WebServiceDetails,
};
pub use role::{Permission, Role};
pub use state::{IllegalTransition, ProvisioningState};

/// Timestamps are UTC everywhere; one alias keeps signatures short.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

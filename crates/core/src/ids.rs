//! Identifiers, parsed once at the edge and typed from then on so an `OrgId` can never be
//! passed where a `DockId` is expected.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7), so ids sort roughly by creation.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

uuid_id!(
    /// An organisation: the unit of tenancy. Every row a user can see belongs to one.
    OrgId
);
uuid_id!(UserId);
uuid_id!(TokenId);
uuid_id!(
    /// A connected provider account.
    DockId
);
uuid_id!(
    /// A row in one of the four universal resource tables.
    ResourceId
);
uuid_id!(OperationId);
uuid_id!(
    /// One request to the API: answered in `X-Request-Id`, written on its audit rows.
    RequestId
);

/// The tag StackDock puts on everything it creates at a provider, so that a resource whose
/// create response was lost can be found again and adopted instead of created twice.
///
/// It is derived from the resource id, so the engine can recompute it after a crash without
/// having stored anything but the resource row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Marker(String);

pub const MARKER_PREFIX: &str = "stackdock-";

impl Marker {
    pub fn for_resource(id: &ResourceId) -> Self {
        // The low 12 hex digits of a UUIDv7 are random; the high ones are a timestamp that
        // would make markers of resources created together look alike.
        let hex = id.as_uuid().simple().to_string();
        Marker(format!("{MARKER_PREFIX}{}", &hex[hex.len() - 12..]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Marker {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let rest = s
            .strip_prefix(MARKER_PREFIX)
            .ok_or_else(|| format!("marker must start with {MARKER_PREFIX:?}"))?;
        if rest.len() != 12 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("marker must end in 12 hex digits".into());
        }
        Ok(Marker(s))
    }
}

impl From<Marker> for String {
    fn from(m: Marker) -> String {
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_stable_and_parses_back() {
        let id = ResourceId::new();
        let m = Marker::for_resource(&id);
        assert_eq!(m, Marker::for_resource(&id));
        assert_eq!(Marker::try_from(m.to_string()), Ok(m.clone()));
        assert_eq!(m.as_str().len(), MARKER_PREFIX.len() + 12);
    }

    #[test]
    fn markers_of_resources_made_together_differ() {
        let a = Marker::for_resource(&ResourceId::new());
        let b = Marker::for_resource(&ResourceId::new());
        assert_ne!(a, b);
    }

    #[test]
    fn marker_rejects_foreign_tags() {
        assert!(Marker::try_from("web".to_string()).is_err());
        assert!(Marker::try_from("stackdock-xyz".to_string()).is_err());
    }
}

//! Roles and the permissions they grant, as data. Every API route names the one permission
//! it needs; the mapping below is the only place that decides who has it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "provisioning:full")]
    ProvisioningFull,
    #[serde(rename = "provisioning:read")]
    ProvisioningRead,
    #[serde(rename = "docks:full")]
    DocksFull,
    #[serde(rename = "docks:read")]
    DocksRead,
    #[serde(rename = "audit:read")]
    AuditRead,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProvisioningFull => "provisioning:full",
            Self::ProvisioningRead => "provisioning:read",
            Self::DocksFull => "docks:full",
            Self::DocksRead => "docks:read",
            Self::AuditRead => "audit:read",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Developer,
    Viewer,
}

use Permission::*;

const OWNER: &[Permission] = &[
    ProvisioningFull,
    ProvisioningRead,
    DocksFull,
    DocksRead,
    AuditRead,
];
// Admins run the organisation day to day; what sets them apart from owners (membership and
// ownership changes) arrives with accounts, not here.
const ADMIN: &[Permission] = OWNER;
const DEVELOPER: &[Permission] = &[ProvisioningFull, ProvisioningRead, DocksRead];
const VIEWER: &[Permission] = &[ProvisioningRead, DocksRead];

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Developer, Role::Viewer];

    pub fn permissions(self) -> &'static [Permission] {
        match self {
            Role::Owner => OWNER,
            Role::Admin => ADMIN,
            Role::Developer => DEVELOPER,
            Role::Viewer => VIEWER,
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_implies_read_for_every_role() {
        for role in Role::ALL {
            if role.allows(ProvisioningFull) {
                assert!(role.allows(ProvisioningRead), "{role}");
            }
            if role.allows(DocksFull) {
                assert!(role.allows(DocksRead), "{role}");
            }
        }
    }

    #[test]
    fn viewers_only_read() {
        assert!(Role::Viewer.allows(ProvisioningRead));
        assert!(!Role::Viewer.allows(ProvisioningFull));
        assert!(!Role::Viewer.allows(DocksFull));
        assert!(!Role::Viewer.allows(AuditRead));
    }

    #[test]
    fn developers_provision_but_do_not_manage_docks() {
        assert!(Role::Developer.allows(ProvisioningFull));
        assert!(!Role::Developer.allows(DocksFull));
        assert!(!Role::Developer.allows(AuditRead));
    }

    #[test]
    fn owners_hold_every_permission() {
        for p in [
            ProvisioningFull,
            ProvisioningRead,
            DocksFull,
            DocksRead,
            AuditRead,
        ] {
            assert!(Role::Owner.allows(p));
            assert!(Role::Admin.allows(p));
        }
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!(
            serde_json::to_value(ProvisioningFull).unwrap(),
            "provisioning:full"
        );
    }
}

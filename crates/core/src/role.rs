//! Roles and the permissions they grant, as data. Every API route names the one permission
//! it needs; the mapping below is the only place that decides who has it.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
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
    /// Members of the organisation, and API tokens made for others than oneself.
    #[serde(rename = "members:full")]
    MembersFull,
    /// The master keys that seal dock keys and sensitive config: rotate, retire.
    #[serde(rename = "keys:full")]
    KeysFull,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProvisioningFull => "provisioning:full",
            Self::ProvisioningRead => "provisioning:read",
            Self::DocksFull => "docks:full",
            Self::DocksRead => "docks:read",
            Self::AuditRead => "audit:read",
            Self::MembersFull => "members:full",
            Self::KeysFull => "keys:full",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
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
    MembersFull,
    KeysFull,
];
// Admins run the organisation day to day; what sets owners apart (the last owner cannot be
// removed or demoted) is a rule of the membership data, not a permission.
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

    /// Whether this role may do everything `other` may: a token can be given a role no
    /// stronger than its member's.
    pub fn covers(self, other: Role) -> bool {
        other.permissions().iter().all(|p| self.allows(*p))
    }

    /// The weaker of the two (a token's role, capped by its member's current role).
    pub fn at_most(self, cap: Role) -> Role {
        if self.covers(cap) { cap } else { self }
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
    fn a_token_role_is_capped_by_its_member_role() {
        assert_eq!(Role::Owner.at_most(Role::Viewer), Role::Viewer);
        assert_eq!(Role::Developer.at_most(Role::Viewer), Role::Viewer);
        assert_eq!(Role::Viewer.at_most(Role::Owner), Role::Viewer);
        assert_eq!(Role::Owner.at_most(Role::Admin), Role::Admin);
        assert!(Role::Admin.covers(Role::Developer));
        assert!(!Role::Developer.covers(Role::Admin));
        assert!(!Role::Viewer.allows(MembersFull) && !Role::Developer.allows(MembersFull));
    }

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

//! The provisioning state machine. It lives here, in one place, and the store refuses any
//! write that does not follow it.
//!
//! ```text
//! provisioning   -> provisioned | failed
//! provisioned    -> deprovisioning
//! failed         -> provisioning (retry) | deprovisioning (rollback / cleanup)
//! deprovisioning -> deprovisioned | failed
//! ```

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProvisioningState {
    Provisioning,
    Provisioned,
    Failed,
    Deprovisioning,
    Deprovisioned,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("illegal provisioning transition {from} -> {to}")]
pub struct IllegalTransition {
    pub from: ProvisioningState,
    pub to: ProvisioningState,
}

impl ProvisioningState {
    pub const ALL: [ProvisioningState; 5] = [
        Self::Provisioning,
        Self::Provisioned,
        Self::Failed,
        Self::Deprovisioning,
        Self::Deprovisioned,
    ];

    pub fn can_become(self, next: ProvisioningState) -> bool {
        use ProvisioningState::*;
        matches!(
            (self, next),
            (Provisioning, Provisioned)
                | (Provisioning, Failed)
                | (Provisioned, Deprovisioning)
                | (Failed, Provisioning)
                | (Failed, Deprovisioning)
                | (Deprovisioning, Deprovisioned)
                | (Deprovisioning, Failed)
        )
    }

    /// Checks `self -> next`. Staying in the same state is not a transition and is allowed,
    /// so that a row can be updated (new API data, new status) without changing state.
    pub fn check(self, next: ProvisioningState) -> Result<(), IllegalTransition> {
        if self == next || self.can_become(next) {
            Ok(())
        } else {
            Err(IllegalTransition {
                from: self,
                to: next,
            })
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Provisioned => "provisioned",
            Self::Failed => "failed",
            Self::Deprovisioning => "deprovisioning",
            Self::Deprovisioned => "deprovisioned",
        }
    }

    /// States in which nothing is in flight: the CLI stops watching here.
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Provisioned | Self::Failed | Self::Deprovisioned)
    }
}

impl fmt::Display for ProvisioningState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProvisioningState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown provisioning state {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::ProvisioningState::{self, *};

    const LEGAL: [(ProvisioningState, ProvisioningState); 7] = [
        (Provisioning, Provisioned),
        (Provisioning, Failed),
        (Provisioned, Deprovisioning),
        (Failed, Provisioning),
        (Failed, Deprovisioning),
        (Deprovisioning, Deprovisioned),
        (Deprovisioning, Failed),
    ];

    #[test]
    fn every_legal_transition_is_allowed() {
        for (from, to) in LEGAL {
            assert!(from.can_become(to), "{from} -> {to} must be legal");
            assert!(from.check(to).is_ok());
        }
    }

    #[test]
    fn every_other_transition_is_refused() {
        let mut refused = 0;
        for from in ProvisioningState::ALL {
            for to in ProvisioningState::ALL {
                if from == to || LEGAL.contains(&(from, to)) {
                    continue;
                }
                assert!(!from.can_become(to), "{from} -> {to} must be illegal");
                let err = from.check(to).expect_err("illegal transition accepted");
                assert_eq!((err.from, err.to), (from, to));
                refused += 1;
            }
        }
        // 5 x 5 pairs, minus 5 self-pairs, minus 7 legal ones.
        assert_eq!(refused, 13);
    }

    #[test]
    fn deprovisioned_is_terminal() {
        for to in ProvisioningState::ALL {
            if to != Deprovisioned {
                assert!(!Deprovisioned.can_become(to));
            }
        }
    }

    #[test]
    fn states_round_trip_through_text() {
        for st in ProvisioningState::ALL {
            assert_eq!(st.as_str().parse::<ProvisioningState>(), Ok(st));
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
        assert!("deleted".parse::<ProvisioningState>().is_err());
    }
}

//! Named points where a test can make the process die, to prove that recovery works from
//! exactly there. Off unless named in the engine's config (`STACKDOCK_FAILPOINTS` in the
//! binary); production never names any.

use std::collections::HashSet;
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct Failpoints(Arc<HashSet<String>>);

/// After a provider's create call has answered, before the step is recorded: the resource
/// exists at the provider and nothing here says so.
pub const CRASH_BEFORE_CREATE_CHECKPOINT: &str = "crash-before-create-checkpoint";

impl Failpoints {
    /// Parses a comma-separated list of names.
    pub fn parse(list: &str) -> Self {
        Self(Arc::new(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        ))
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    /// Ends the process on the spot, as a power cut would: no destructors, no flushing.
    pub fn crash_if_set(&self, name: &str) {
        if self.is_set(name) {
            eprintln!("failpoint {name}: aborting");
            std::process::abort();
        }
    }
}

//! Waiting for resources to settle by following the store's change feed.
//!
//! Every write to a resource row appends the row to the feed in the same transaction, with the
//! time it was written. A phase therefore ends at the time of the write that ended it, not when
//! this task got round to reading it: the follower can read lazily (woken by the store's change
//! signal, at most once per [`THROTTLE`]) and leave the cores to the engine it measures.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stackdock_core::{OrgId, ProvisioningState, ResourceId, Timestamp};
use stackdock_store::Store;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::BenchError;

/// Feed entries read per query.
const PAGE: u32 = 2000;
/// The shortest time between two reads of the feed.
const THROTTLE: Duration = Duration::from_millis(50);

/// Reads one organisation's feed from where it was created onwards.
pub(crate) struct Follower {
    store: Arc<dyn Store>,
    org: OrgId,
    /// The last feed entry read.
    after: i64,
    signal: watch::Receiver<i64>,
    /// Resources settled so far, over every wait, for the timeline.
    pub(crate) settled: Arc<AtomicUsize>,
}

/// How a set of resources settled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settled {
    /// When the last of them was written in a settled state.
    pub(crate) last_at: Timestamp,
    /// How many settled `failed`.
    pub(crate) failed: usize,
}

impl Follower {
    /// Follows changes written from now on.
    pub(crate) async fn new(store: Arc<dyn Store>, org: OrgId) -> Result<Self, BenchError> {
        let signal = store.change_signal();
        let after = store.latest_change().await?;
        Ok(Self {
            store,
            org,
            after,
            signal,
            settled: Arc::default(),
        })
    }

    /// Waits until each of `ids` has been written in state `done` or `failed`, reading on
    /// from where the last wait stopped.
    pub(crate) async fn settle(
        &mut self,
        ids: &[ResourceId],
        done: ProvisioningState,
        deadline: Duration,
    ) -> Result<Settled, BenchError> {
        let until = Instant::now() + deadline;
        let mut pending: HashSet<ResourceId> = ids.iter().copied().collect();
        let mut failed = 0;
        let mut last_at: Option<Timestamp> = None;
        loop {
            let read_at = Instant::now();
            // Marked seen before reading, so a commit made during the read wakes the next wait.
            self.signal.borrow_and_update();
            loop {
                let page = self.store.changes_since(self.org, self.after, PAGE).await?;
                for change in &page {
                    self.after = change.seq;
                    let state = change.resource.provisioning_state;
                    let settles = state == done || state == ProvisioningState::Failed;
                    if settles && pending.remove(&change.resource.id) {
                        self.settled.fetch_add(1, Ordering::Relaxed);
                        if state == ProvisioningState::Failed {
                            failed += 1;
                        }
                        last_at = last_at.max(Some(change.at));
                    }
                }
                if page.len() < PAGE as usize {
                    break;
                }
            }
            if pending.is_empty() {
                return Ok(Settled {
                    last_at: last_at.unwrap_or_else(chrono::Utc::now),
                    failed,
                });
            }
            if Instant::now() >= until {
                return Err(BenchError::Deadline {
                    after: deadline,
                    what: format!(
                        "{} of {} resources not yet {done} or failed",
                        pending.len(),
                        ids.len()
                    ),
                });
            }
            tokio::select! {
                changed = self.signal.changed() => {
                    if changed.is_err() {
                        // The store is gone; nothing will wake us, so look again on the tick.
                        tokio::time::sleep(THROTTLE).await;
                    }
                }
                () = tokio::time::sleep_until(until) => {}
            }
            tokio::time::sleep_until((read_at + THROTTLE).min(until)).await;
        }
    }
}

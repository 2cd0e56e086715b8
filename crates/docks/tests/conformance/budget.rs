//! A run whose call is waiting for the dock's budget has sent nothing, so it has recorded
//! nothing: a node that dies with a queue of creates leaves no "create sent" behind, and the
//! next run of each sends its create without first looking for what it might have made.

use std::sync::Arc;
use std::time::Duration;

use stackdock_docks::Budget;
use stackdock_docks::adapter::provision;

use super::Harness;
use crate::support::{DEADLINE, Run, wait_until};

pub async fn a_run_waiting_for_the_budget_has_recorded_nothing(h: &impl Harness) {
    if !h.calls_wait_for_the_budget() {
        eprintln!("budget check skipped: this adapter's calls are not paced by a dock budget");
        return;
    }
    for &kind in h.adapter().kinds() {
        let mut dock = h.dock();
        // One call a minute, and this minute's already spent: the run's first call waits.
        dock.budget = Arc::new(Budget::new("1/min".parse().expect("a rate limit")));
        let spent = tokio::time::timeout(DEADLINE, dock.budget.acquire())
            .await
            .unwrap_or_else(|_| panic!("{kind}: a fresh budget of 1/min gave no first call"));
        drop(spent);
        let budget = dock.budget.clone();
        let adapter = h.adapter();
        let mut run = Run::new(&dock);
        // Held at the budget until the check is done with it, however slow the machine.
        run.ctx.retry.max_wait = Duration::from_secs(600);
        let recorder = run.recorder.clone();
        let config = h.sample_config(kind, "waiting");
        let before = h.requests_received();
        let waiting =
            tokio::spawn(
                async move { provision(&*adapter, kind, &mut run.ctx, &dock, &config).await },
            );

        wait_until(&format!("{kind}: a call waiting for the budget"), || {
            budget.waiting() == 1
        })
        .await;
        assert_eq!(
            h.requests_received(),
            before,
            "{kind}: a call went out past a spent budget"
        );
        assert!(
            recorder.steps().is_empty(),
            "{kind}: recorded before its first call had its turn: {:?}",
            recorder.steps()
        );
        waiting.abort();
    }
}

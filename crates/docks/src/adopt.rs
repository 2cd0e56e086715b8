//! Creating a resource exactly once, across lost answers and crashes.
//!
//! A create call whose answer is lost (timeout, 5xx, a crash before the answer was recorded)
//! may have succeeded. Repeating it blindly would make a second resource; giving up would
//! leave one untracked. So every create is tagged with the resource's marker, and before any
//! repeat — and before the first try of a resumed operation — the marker is looked up and a
//! resource found by it is adopted instead.

use crate::adapter::Ctx;
use crate::error::DockError;

/// How a create ended.
#[derive(Debug)]
pub enum Created<T> {
    New(T),
    /// Found by its marker: an earlier try had made it.
    Adopted(T),
}

impl<T> Created<T> {
    pub fn into_inner(self) -> T {
        match self {
            Self::New(t) | Self::Adopted(t) => t,
        }
    }

    pub fn adopted(&self) -> bool {
        matches!(self, Self::Adopted(_))
    }
}

/// Runs `create` until it answers, looking the marker up with `lookup` after every unknown
/// outcome (no answer, a 5xx, an answer that could not be read) and, when an earlier run
/// recorded that it sent the create (`sent_before`), before the first try. A wait the
/// provider asked for (`Retry-After` on a 5xx) is honoured before the next try, and one longer
/// than the retry policy's `max_wait` ends this run's tries after the lookup. A refusal by the
/// provider is returned as it is, and so is a 429 without a lookup: the provider did nothing
/// (the HTTP layer has already sent the create again as often as the retry policy allows). A
/// lookup that fails is returned too: the caller must not settle until the marker has been
/// looked up. `create` is given the number of the try.
pub async fn create_or_adopt<T, C, CF, L, LF>(
    ctx: &Ctx,
    sent_before: bool,
    mut create: C,
    mut lookup: L,
) -> Result<Created<T>, DockError>
where
    C: FnMut(u32) -> CF,
    CF: Future<Output = Result<T, DockError>>,
    L: FnMut() -> LF,
    LF: Future<Output = Result<Option<T>, DockError>>,
{
    if sent_before && let Some(found) = lookup().await? {
        return Ok(Created::Adopted(found));
    }
    let mut attempt = 1;
    loop {
        match create(attempt).await {
            Ok(t) => return Ok(Created::New(t)),
            Err(e) if e.outcome_unknown() => {
                let asked = match &e {
                    DockError::Unavailable { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let wait = ctx.retry.delay(attempt, asked);
                // A provider asking for longer than a worker may be held gets no second try
                // from this run (the engine reschedules the operation), but the failed try may
                // have made the resource all the same, so it is still looked for.
                let last = attempt >= ctx.retry.max_attempts || wait > ctx.retry.max_wait;
                // Give the provider a moment to show what it may have made, then look; before
                // another try, wait as long as it asked.
                let pause = if last {
                    ctx.retry.delay(attempt, None)
                } else {
                    wait
                };
                tokio::time::sleep(pause).await;
                if let Some(found) = lookup().await? {
                    return Ok(Created::Adopted(found));
                }
                if last {
                    return Err(e);
                }
                attempt += 1;
            }
            Err(other) => return Err(other),
        }
    }
}

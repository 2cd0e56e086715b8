//! The event fan-out: one reader of the store's change feed and deploy log per process, and a
//! broadcast channel that hands what it read to every event stream at once.
//!
//! Without it, each open stream queried the store on every change: a thousand subscribers
//! made a thousand queries for one state change. Here one task reads a batch (every org's),
//! renders each entry's event data once, and sends the batch; each stream keeps the entries of
//! its own org (and resource) and writes them out.
//!
//! While nobody listens the reader reads nothing. A stream joins with the feed's and the log's
//! positions when it started, and the reader starts again from the earliest of those, so what
//! is written after a stream joined always reaches it in a batch.
//!
//! The store stays the truth and the channel only saves the reads. A batch names the position
//! it was read after; a stream whose own position is older than that (it resumed from an
//! older event, or fell behind the channel's capacity) reads the gap from the store itself
//! before it takes the batch, and drops what it has already sent. No entry is lost or sent
//! twice, whatever the channel does.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use stackdock_core::{OrgId, ResourceId};
use stackdock_store::{Change, DeployLogLine, Store};
use tokio::sync::{broadcast, watch};

/// Other processes writing to the same store do not wake us; this bounds how late their
/// changes arrive.
pub(crate) const POLL: Duration = Duration::from_millis(500);
/// Entries read per query.
pub(crate) const BATCH: u32 = 200;
/// Batches the channel keeps for a slow stream before it has to read the store itself.
const CAPACITY: usize = 1024;

/// One entry, rendered once for every stream.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) seq: i64,
    pub(crate) org: OrgId,
    pub(crate) resource: ResourceId,
    /// The whole server-sent event as it goes on the wire (`event:`, `id:` for a change,
    /// `data:`), shared by every stream that sends it: a thousand streams send one buffer,
    /// not a thousand copies of it.
    pub(crate) frame: Bytes,
}

impl Entry {
    pub(crate) fn change(c: &Change) -> Self {
        let data = json!({
            "seq": c.seq,
            "at": c.at,
            "resource": crate::view::ResourceView::from(&c.resource),
        });
        let data = data.to_string();
        Self {
            seq: c.seq,
            org: c.org_id,
            resource: c.resource.id,
            frame: frame("resource", Some(c.seq), &data),
        }
    }

    pub(crate) fn log(l: &DeployLogLine) -> Self {
        let data = json!({
            "seq": l.seq,
            "at": l.at,
            "resource_id": l.resource_id,
            "operation_id": l.operation_id,
            "line": l.line,
        });
        let data = data.to_string();
        Self {
            seq: l.seq,
            org: l.org_id,
            resource: l.resource_id,
            frame: frame("log", None, &data),
        }
    }
}

/// One server-sent event. `data` is compact JSON, which holds no line break (JSON escapes
/// them inside strings), so it is one `data:` line.
fn frame(event: &str, id: Option<i64>, data: &str) -> Bytes {
    debug_assert!(!data.contains('\n') && !data.contains('\r'));
    let mut out = String::with_capacity(data.len() + 48);
    out.push_str("event: ");
    out.push_str(event);
    out.push('\n');
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// What the reader read in one round: every entry of the feed after `changes_after` up to
/// the last of `changes`, and every log line after `logs_after` up to the last of `logs`.
/// The lines are sent before the changes (see `routes::events`).
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) changes_after: i64,
    pub(crate) changes: Vec<Entry>,
    pub(crate) logs_after: i64,
    pub(crate) logs: Vec<Entry>,
}

/// The fan-out: subscribe to it, and the process's one reader sends what it reads.
pub(crate) struct Hub {
    /// What the reader and the subscribers share; see [`Joining`].
    joining: Arc<Mutex<Joining>>,
}

/// Under one lock, so the reader never sees a new subscriber without its position.
struct Joining {
    /// Subscribes new streams; taken when the server closes, so that once the reader has
    /// gone too, the channel is closed and every stream ends. A stream waiting for a batch
    /// then needs no second thing to watch for the close: with a thousand streams, that
    /// watch was paid on every event.
    tx: Option<broadcast::Sender<Arc<Batch>>>,
    /// Where the store was when the streams that joined since the reader last looked
    /// started (the earliest of them).
    at: Option<(i64, i64)>,
}

impl Hub {
    /// Starts the reader; it ends when `closing` turns true.
    pub(crate) fn start(store: Arc<dyn Store>, closing: watch::Receiver<bool>) -> Arc<Self> {
        Self::with_capacity(store, closing, CAPACITY)
    }

    /// As [`Hub::start`], keeping `capacity` batches for a slow stream.
    pub(crate) fn with_capacity(
        store: Arc<dyn Store>,
        closing: watch::Receiver<bool>,
        capacity: usize,
    ) -> Arc<Self> {
        let (tx, _) = broadcast::channel(capacity);
        let joining = Arc::new(Mutex::new(Joining {
            tx: Some(tx.clone()),
            at: None,
        }));
        tokio::spawn(read(store, tx, joining.clone(), closing));
        Arc::new(Self { joining })
    }

    /// Subscribes a stream that joins when the feed's and the log's newest `seq`s were `at`
    /// (read before this call). Once the server is closing, the receiver answers `Closed`.
    pub(crate) fn subscribe(&self, at: (i64, i64)) -> broadcast::Receiver<Arc<Batch>> {
        let mut joining = lock(&self.joining);
        let Some(tx) = &joining.tx else {
            return broadcast::channel(1).1;
        };
        let rx = tx.subscribe();
        joining.at = Some(match joining.at {
            Some((c, l)) => (c.min(at.0), l.min(at.1)),
            None => at,
        });
        rx
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // What the lock guards is a pair of numbers: a panic cannot leave it half-written.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The reader: waits for a change (this process's signals, or the poll for other
/// processes'), reads what is new and sends it as one batch.
async fn read(
    store: Arc<dyn Store>,
    tx: broadcast::Sender<Arc<Batch>>,
    joining: Arc<Mutex<Joining>>,
    mut closing: watch::Receiver<bool>,
) {
    let mut signal = store.change_signal();
    let mut log_signal = store.deploy_log_signal();
    let mut cursor: Option<(i64, i64)> = None;
    loop {
        if *closing.borrow() {
            // With the hub's sender gone as well as this one, every stream ends.
            lock(&joining).tx = None;
            return;
        }
        signal.borrow_and_update();
        log_signal.borrow_and_update();
        {
            let mut joining = lock(&joining);
            let from = joining.at.take();
            if tx.receiver_count() == 0 {
                // Nobody listens: read nothing until someone joins.
                cursor = None;
            } else if cursor.is_none() {
                // Start where the first of those who joined started: everything written
                // after it is read, and sent.
                cursor = from;
            }
        }
        if let Some(at) = cursor {
            match round(&*store, &tx, at).await {
                Ok((at, true)) => {
                    cursor = Some(at);
                    continue;
                }
                Ok((at, false)) => cursor = Some(at),
                Err(e) => tracing::warn!(error = %e, "event fan-out could not read the store"),
            }
        }
        tokio::select! {
            _ = signal.changed() => {}
            _ = log_signal.changed() => {}
            _ = closing.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One read after `(changes_after, logs_after)`, the feed's and the log's position. Answers
/// the new position and whether more may follow at once.
async fn round(
    store: &dyn Store,
    tx: &broadcast::Sender<Arc<Batch>>,
    (changes_after, logs_after): (i64, i64),
) -> stackdock_store::Result<((i64, i64), bool)> {
    // The feed first, the log second: a line written before a change is then always read
    // with it or before it.
    let changes = store.all_changes_since(changes_after, BATCH).await?;
    let logs = store.all_deploy_log_since(logs_after, BATCH).await?;
    // A full page of lines may have more behind it, older than these changes: the changes
    // wait for the next round.
    let logs_full = logs.len() as u32 == BATCH;
    let changes = if logs_full { Vec::new() } else { changes };
    let more = logs_full || changes.len() as u32 == BATCH;
    if changes.is_empty() && logs.is_empty() {
        return Ok(((changes_after, logs_after), false));
    }
    let batch = Batch {
        changes_after,
        changes: changes.iter().map(Entry::change).collect(),
        logs_after,
        logs: logs.iter().map(Entry::log).collect(),
    };
    let at = (
        changes.last().map_or(changes_after, |c| c.seq),
        logs.last().map_or(logs_after, |l| l.seq),
    );
    // No receiver left: dropped, and the next subscriber reads the store itself.
    let _ = tx.send(Arc::new(batch));
    Ok((at, more))
}

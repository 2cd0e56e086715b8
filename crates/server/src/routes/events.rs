//! `GET /api/v1/events`: every state change of the organisation's resources, as server-sent
//! events, from the process's one reader of the store's change feed ([`crate::hub`]).
//!
//! The stream starts at the feed's position when the request arrives (or after `?after=` /
//! `Last-Event-ID`, to resume without a gap), so a client that subscribes and then reads the
//! resource misses nothing in between. Each event's id is the feed's `seq`.
//!
//! Deploy log lines (a build's output) come on the same stream as `log` events, without an
//! id (they have their own sequence). A stream following one resource (`?resource_id=`)
//! starts with that resource's whole log; an unfiltered one with the lines written after it
//! opened. A line is always sent before any change written after it: each round reads the
//! feed first and the log second, and sends the log lines first, so a line the adapter wrote
//! before a step is never seen after the state that step led to.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use schemars::JsonSchema;
use serde::Deserialize;
use stackdock_core::{OrgId, ResourceId};
use stackdock_store::Store;
use tokio::sync::broadcast;

use super::query_error;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::hub::{BATCH, Batch, Entry, POLL};

/// How often a stream sends a comment to show it is alive.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    after: Option<i64>,
    resource_id: Option<String>,
}

/// One stream's position and what it has yet to send.
struct Feed {
    store: Arc<dyn Store>,
    org: OrgId,
    only: Option<ResourceId>,
    closing: tokio::sync::watch::Receiver<bool>,
    batches: broadcast::Receiver<Arc<Batch>>,
    /// The last feed entry and log line this stream has passed (sent, or not its own).
    cursor: i64,
    log_cursor: i64,
    /// Reading the store itself to close a gap; once it finds nothing newer, everything up
    /// to these positions has been read.
    catching_up: Option<(i64, i64)>,
    /// The batch that showed the gap, taken once it is closed.
    held: Option<Arc<Batch>>,
    /// Events to send, as they go on the wire: rendered once by the fan-out for every stream.
    pending: VecDeque<Bytes>,
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let actor = caller.actor();
    let Query(q) = query.map_err(query_error)?;
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID: must be an event id (a number)")
                })?,
        ),
    };
    let only = q
        .resource_id
        .as_deref()
        .map(super::resources::parse_id)
        .transpose()?;
    let resumed = q.after.or(last_event_id);
    if resumed.is_some_and(|n| n < 0) {
        return Err(ApiError::bad_request("after: must not be negative"));
    }
    // Where the store is now: the stream starts here unless it resumes, and the fan-out
    // sends everything written after it.
    let now = (
        state.store.latest_change().await?,
        state.store.latest_deploy_log().await?,
    );
    // An id the feed never reached (from another installation, or a database set up
    // again) would hold back every event until the feed caught up with it.
    if let Some(after) = resumed.filter(|&after| after > now.0) {
        return Err(ApiError::bad_request(format!(
            "after: event {after} is beyond the newest event, {}",
            now.0
        )));
    }
    // A stream of one resource that is not there (or not this organisation's) would stay
    // empty for ever.
    if let Some(id) = only {
        state.store.get_resource(actor.org_id, id).await?;
    }
    let cursor = resumed.unwrap_or(now.0);
    let log_cursor = match (only, resumed) {
        (Some(_), None) => 0,
        _ => now.1,
    };
    let feed = Feed::new(
        state.store.clone(),
        state.hub.subscribe(now),
        state.closing.clone(),
        (actor.org_id, only),
        (cursor, log_cursor),
    );
    // A comment every while, events or not, so proxies and clients see a live stream; a
    // fixed tick, not a timer moved after every event, which a thousand streams would pay
    // for on every change.
    let keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    let events = futures::stream::unfold((feed, keep_alive), |(mut feed, mut tick)| async move {
        // `Feed::next` is cancel-safe: it moves its position only after a read completes.
        let frame = tokio::select! {
            out = feed.next() => out?,
            _ = tick.tick() => Bytes::from_static(b":\n\n"),
        };
        Some((Ok::<_, Infallible>(frame), (feed, tick)))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response())
}

impl Feed {
    /// A stream of an org's events (only one resource's, when given) after the feed's and
    /// the log's positions.
    fn new(
        store: Arc<dyn Store>,
        batches: broadcast::Receiver<Arc<Batch>>,
        closing: tokio::sync::watch::Receiver<bool>,
        (org, only): (OrgId, Option<ResourceId>),
        (cursor, log_cursor): (i64, i64),
    ) -> Self {
        Self {
            store,
            org,
            only,
            closing,
            // Subscribed before the store is read: whatever is written after that read is
            // in a batch, or in the gap a batch shows.
            batches,
            cursor,
            log_cursor,
            catching_up: Some((cursor, log_cursor)),
            held: None,
            pending: VecDeque::new(),
        }
    }

    /// The stream's next event; `None` once the server is closing.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if let Some(out) = self.pending.pop_front() {
                return Some(out);
            }
            if let Some((changes, logs)) = self.catching_up {
                match self.read_store().await {
                    Ok(true) => {}
                    Ok(false) => {
                        self.cursor = self.cursor.max(changes);
                        self.log_cursor = self.log_cursor.max(logs);
                        self.catching_up = None;
                        if let Some(batch) = self.held.take() {
                            self.take(&batch);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream could not read the store");
                        tokio::select! {
                            _ = self.closing.changed() => {}
                            _ = tokio::time::sleep(POLL) => {}
                        }
                    }
                }
                continue;
            }
            // The channel closes when the server does (see `Hub`).
            match self.batches.recv().await {
                Ok(batch)
                    if batch.changes_after > self.cursor || batch.logs_after > self.log_cursor =>
                {
                    self.catching_up = Some((batch.changes_after, batch.logs_after));
                    self.held = Some(batch);
                }
                Ok(batch) => self.take(&batch),
                // Fell behind the channel: the store has what was dropped.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.catching_up = Some((self.cursor, self.log_cursor));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    fn ours(&self, e: &Entry) -> bool {
        e.org == self.org && self.only.is_none_or(|id| e.resource == id)
    }

    /// Queues a batch's entries that are this stream's and newer than its position: the
    /// log lines first, then the changes.
    fn take(&mut self, batch: &Batch) {
        for line in &batch.logs {
            if line.seq > self.log_cursor {
                self.log_cursor = line.seq;
                if self.ours(line) {
                    self.pending.push_back(line.frame.clone());
                }
            }
        }
        for change in &batch.changes {
            if change.seq > self.cursor {
                self.cursor = change.seq;
                if self.ours(change) {
                    self.pending.push_back(change.frame.clone());
                }
            }
        }
    }

    /// One read of the store after the stream's position; answers whether it found anything.
    async fn read_store(&mut self) -> stackdock_store::Result<bool> {
        // The feed first, the log second: see the module's docs.
        let changes = self
            .store
            .changes_since(self.org, self.cursor, BATCH)
            .await?;
        let lines = self
            .store
            .deploy_log_since(self.org, self.only, self.log_cursor, BATCH)
            .await?;
        // A full page of lines may have more behind it, older than these changes: the
        // changes wait for the next round.
        let log_page_full = lines.len() as u32 == BATCH;
        let changes = if log_page_full { Vec::new() } else { changes };
        let found = !lines.is_empty() || !changes.is_empty();
        let batch = Batch {
            changes_after: self.cursor,
            changes: changes.iter().map(Entry::change).collect(),
            logs_after: self.log_cursor,
            logs: lines.iter().map(Entry::log).collect(),
        };
        self.take(&batch);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stackdock_core::OperationId;
    use stackdock_store::{DeployLogLine, SqliteStore};

    use super::*;
    use crate::hub::Hub;

    const DEADLINE: Duration = Duration::from_secs(10);

    async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("events.db"))
            .await
            .expect("open");
        (dir, Arc::new(store))
    }

    fn line(org: OrgId, resource: ResourceId, text: &str) -> DeployLogLine {
        DeployLogLine {
            seq: 0,
            org_id: org,
            resource_id: resource,
            operation_id: OperationId::new(),
            line: text.into(),
            at: chrono::Utc::now(),
        }
    }

    /// The text of the next `n` events, which must all be log lines.
    async fn lines(feed: &mut Feed, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            let next = tokio::time::timeout(DEADLINE, feed.next())
                .await
                .unwrap_or_else(|_| panic!("only {out:?} arrived"))
                .expect("open");
            let text = std::str::from_utf8(&next).expect("UTF-8");
            let data = text
                .strip_prefix("event: log\ndata: ")
                .and_then(|rest| rest.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("not one log event: {text:?}"));
            let data: serde_json::Value = serde_json::from_str(data).expect("JSON");
            out.push(data["line"].as_str().expect("line").to_string());
        }
        out
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_the_channel_sends_each_entry_once_in_order() {
        let (_dir, store) = store().await;
        let (_close, closing) = tokio::sync::watch::channel(false);
        let hub = Hub::with_capacity(store.clone(), closing.clone(), 2);
        let (ours, theirs) = (OrgId::new(), OrgId::new());
        let (r, elsewhere) = (ResourceId::new(), ResourceId::new());
        let start = store.latest_deploy_log().await.expect("latest");
        let mut probe = hub.subscribe((0, start));
        let batches = hub.subscribe((0, start));
        let mut feed = Feed::new(store.clone(), batches, closing, (ours, None), (0, start));
        // It starts at the log's end and nothing was written since: it has nothing to read
        // from the store, and waits on the channel.
        feed.catching_up = None;
        // Ten batches, one at a time, while the stream reads nothing: the channel keeps two.
        for i in 0..10 {
            store
                .append_deploy_log(vec![
                    line(theirs, elsewhere, &format!("theirs {i}")),
                    line(ours, r, &format!("ours {i}")),
                ])
                .await
                .expect("append");
            let until = tokio::time::Instant::now() + DEADLINE;
            'sent: loop {
                match tokio::time::timeout_at(until, probe.recv()).await {
                    Ok(Ok(batch)) => {
                        if batch.logs.iter().any(|l| {
                            String::from_utf8_lossy(&l.frame).contains(&format!("\"ours {i}\""))
                        }) {
                            break 'sent;
                        }
                    }
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                    other => panic!("batch {i} was not sent: {other:?}"),
                }
            }
        }
        let want: Vec<String> = (0..10).map(|i| format!("ours {i}")).collect();
        assert_eq!(lines(&mut feed, 10).await, want);
        // Nothing repeated after them: the next event is the next line written.
        store
            .append_deploy_log(vec![line(ours, r, "ours 10")])
            .await
            .expect("append");
        assert_eq!(lines(&mut feed, 1).await, ["ours 10"]);
    }

    #[tokio::test]
    async fn a_stream_of_one_resource_starts_with_its_log_and_leaves_out_the_rest() {
        let (_dir, store) = store().await;
        let (_close, closing) = tokio::sync::watch::channel(false);
        let hub = Hub::start(store.clone(), closing.clone());
        let org = OrgId::new();
        let (r, other) = (ResourceId::new(), ResourceId::new());
        // Written before anyone listened: the reader read none of it.
        store
            .append_deploy_log(vec![
                line(org, r, "before 1"),
                line(org, other, "other before"),
                line(OrgId::new(), r, "another org's"),
                line(org, r, "before 2"),
            ])
            .await
            .expect("append");
        let now = store.latest_deploy_log().await.expect("latest");
        let batches = hub.subscribe((0, now));
        let mut feed = Feed::new(store.clone(), batches, closing, (org, Some(r)), (0, 0));
        assert_eq!(lines(&mut feed, 2).await, ["before 1", "before 2"]);
        // One write after it joined, and nothing after that: the reader, idle until now,
        // must start from where the stream joined, not from wherever the store is when it
        // wakes.
        store
            .append_deploy_log(vec![line(org, other, "other after"), line(org, r, "after")])
            .await
            .expect("append");
        assert_eq!(lines(&mut feed, 1).await, ["after"]);
    }
}

//! `GET /api/v1/events`: every state change of the organisation's resources, as server-sent
//! events, read from the store's change feed.
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
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use stackdock_core::{OrgId, ResourceId};
use stackdock_store::{Change, DeployLogLine, Store};

use super::query_error;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Other processes writing to the same store do not wake us; this bounds how late their
/// changes arrive.
const POLL: Duration = Duration::from_millis(500);
const BATCH: u32 = 200;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    after: Option<i64>,
    resource_id: Option<String>,
}

struct Feed {
    store: Arc<dyn Store>,
    org: OrgId,
    cursor: i64,
    only: Option<ResourceId>,
    signal: tokio::sync::watch::Receiver<i64>,
    closing: tokio::sync::watch::Receiver<bool>,
    pending: VecDeque<Change>,
    log_cursor: i64,
    log_signal: tokio::sync::watch::Receiver<i64>,
    pending_log: VecDeque<DeployLogLine>,
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
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
    let cursor = match resumed {
        Some(n) if n < 0 => return Err(ApiError::bad_request("after: must not be negative")),
        Some(n) => n,
        None => state.store.latest_change().await?,
    };
    let log_cursor = match (only, resumed) {
        (Some(_), None) => 0,
        _ => state.store.latest_deploy_log().await?,
    };
    let feed = Feed {
        store: state.store.clone(),
        org: actor.org_id,
        cursor,
        only,
        signal: state.store.change_signal(),
        closing: state.closing.clone(),
        pending: VecDeque::new(),
        log_cursor,
        log_signal: state.store.deploy_log_signal(),
        pending_log: VecDeque::new(),
    };
    let events = futures::stream::unfold(feed, next_event);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

async fn next_event(mut feed: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    loop {
        if *feed.closing.borrow() {
            return None;
        }
        if let Some(line) = feed.pending_log.pop_front() {
            let data = json!({
                "seq": line.seq,
                "at": line.at,
                "resource_id": line.resource_id,
                "operation_id": line.operation_id,
                "line": line.line,
            });
            let event = Event::default().event("log").data(data.to_string());
            return Some((Ok(event), feed));
        }
        if let Some(change) = feed.pending.pop_front() {
            let data = json!({
                "seq": change.seq,
                "at": change.at,
                "resource": crate::view::ResourceView::from(&change.resource),
            });
            let event = Event::default()
                .id(change.seq.to_string())
                .event("resource")
                .data(data.to_string());
            return Some((Ok(event), feed));
        }
        // The feed first, the log second: see the module's docs.
        let changes = match feed.store.changes_since(feed.org, feed.cursor, BATCH).await {
            Ok(changes) => changes,
            Err(e) => {
                tracing::warn!(error = %e, "event stream could not read the change feed");
                Vec::new()
            }
        };
        let lines = match feed
            .store
            .deploy_log_since(feed.org, feed.only, feed.log_cursor, BATCH)
            .await
        {
            Ok(lines) => lines,
            Err(e) => {
                tracing::warn!(error = %e, "event stream could not read the deploy log");
                Vec::new()
            }
        };
        // A full page of lines may have more behind it, older than these changes: the
        // changes wait for the next round.
        let log_page_full = lines.len() as u32 == BATCH;
        let mut progressed = false;
        if let Some(last) = lines.last() {
            feed.log_cursor = last.seq;
            feed.pending_log.extend(lines);
            progressed = true;
        }
        if !log_page_full && let Some(last) = changes.last() {
            feed.cursor = last.seq;
            let only = feed.only;
            feed.pending.extend(
                changes
                    .into_iter()
                    .filter(|c| only.is_none_or(|id| c.resource.id == id)),
            );
            progressed = true;
        }
        if progressed {
            continue;
        }
        tokio::select! {
            _ = feed.signal.changed() => {}
            _ = feed.log_signal.changed() => {}
            _ = feed.closing.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

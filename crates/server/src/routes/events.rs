//! `GET /api/v1/events`: every state change of the organisation's resources, as server-sent
//! events, read from the store's change feed.
//!
//! The stream starts at the feed's position when the request arrives (or after `?after=` /
//! `Last-Event-ID`, to resume without a gap), so a client that subscribes and then reads the
//! resource misses nothing in between. Each event's id is the feed's `seq`.

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
use stackdock_store::{Change, Store};

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
    let cursor = match q.after.or(last_event_id) {
        Some(n) if n < 0 => return Err(ApiError::bad_request("after: must not be negative")),
        Some(n) => n,
        None => state.store.latest_change().await?,
    };
    let feed = Feed {
        store: state.store.clone(),
        org: actor.org_id,
        cursor,
        only,
        signal: state.store.change_signal(),
        closing: state.closing.clone(),
        pending: VecDeque::new(),
    };
    let events = futures::stream::unfold(feed, next_event);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

async fn next_event(mut feed: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    loop {
        if *feed.closing.borrow() {
            return None;
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
        match feed.store.changes_since(feed.org, feed.cursor, BATCH).await {
            Ok(changes) if !changes.is_empty() => {
                if let Some(last) = changes.last() {
                    feed.cursor = last.seq;
                }
                let only = feed.only;
                feed.pending.extend(
                    changes
                        .into_iter()
                        .filter(|c| only.is_none_or(|id| c.resource.id == id)),
                );
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "event stream could not read the change feed"),
        }
        tokio::select! {
            _ = feed.signal.changed() => {}
            _ = feed.closing.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

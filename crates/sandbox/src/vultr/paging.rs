//! Vultr's cursor-paged collections: `per_page` (default 100, at most 500) and `cursor` in;
//! `meta {total, links {next, prev}}` out, where `next` and `prev` are opaque cursors and
//! empty at either end.
//!
//! A cursor names the key of the item a page starts at, so a listing that changes between
//! pages (an item deleted) neither repeats nor skips what was there before.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error;
use crate::front_door::ApiError;

const DEFAULT_PER_PAGE: usize = 100;
const MAX_PER_PAGE: usize = 500;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    per_page: Option<String>,
    cursor: Option<String>,
}

/// One page of `items` (sorted by key, ascending) and its `meta`.
pub(crate) fn page(
    items: Vec<(String, Value)>,
    query: &PageQuery,
) -> Result<(Vec<Value>, Value), ApiError> {
    let per_page = match query.per_page.as_deref() {
        None | Some("") => DEFAULT_PER_PAGE,
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "Invalid per_page value."))?
            .min(MAX_PER_PAGE),
    };
    let start = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => {
            let key =
                decode(cursor).ok_or_else(|| error(StatusCode::BAD_REQUEST, "Invalid cursor."))?;
            items.partition_point(|(k, _)| *k < key)
        }
    };
    let total = items.len();
    let end = (start + per_page).min(total);
    let next = items.get(end).map(|(k, _)| encode(k)).unwrap_or_default();
    let prev = if start == 0 {
        String::new()
    } else {
        encode(&items[start.saturating_sub(per_page)].0)
    };
    let shown = items
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(|(_, v)| v)
        .collect();
    Ok((
        shown,
        json!({"total": total, "links": {"next": next, "prev": prev}}),
    ))
}

/// Opaque to clients, as Vultr's are: the key, hex-encoded behind a prefix.
fn encode(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("bmV4dF9f{hex}")
}

fn decode(cursor: &str) -> Option<String> {
    let hex = cursor.strip_prefix("bmV4dF9f")?;
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<(String, Value)> {
        (0..n).map(|i| (format!("k{i:03}"), json!(i))).collect()
    }

    fn query(per_page: &str, cursor: &str) -> PageQuery {
        PageQuery {
            per_page: Some(per_page.into()),
            cursor: Some(cursor.into()),
        }
    }

    #[test]
    fn pages_follow_next_until_it_is_empty() {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let (page, meta) = page(items(7), &query("3", &cursor)).unwrap();
            assert_eq!(meta["total"], 7);
            seen.extend(page);
            cursor = meta["links"]["next"].as_str().unwrap().to_string();
            if cursor.is_empty() {
                break;
            }
        }
        assert_eq!(seen, (0..7).map(|i| json!(i)).collect::<Vec<_>>());
    }

    #[test]
    fn a_deleted_item_neither_repeats_nor_skips_the_rest() {
        let (_, meta) = page(items(6), &query("3", "")).unwrap();
        let next = meta["links"]["next"].as_str().unwrap().to_string();
        let mut fewer = items(6);
        fewer.remove(3); // the item the cursor names
        let (rest, _) = page(fewer, &query("3", &next)).unwrap();
        assert_eq!(rest, vec![json!(4), json!(5)]);
    }

    #[test]
    fn bad_cursors_and_sizes_are_refused() {
        assert!(page(items(2), &query("3", "nonsense")).is_err());
        assert!(page(items(2), &query("0", "")).is_err());
        let (all, _) = page(items(600), &query("1000", "")).unwrap();
        assert_eq!(all.len(), MAX_PER_PAGE);
    }
}

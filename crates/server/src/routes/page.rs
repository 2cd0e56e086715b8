//! Cursor pagination, the same on every collection.
//!
//! A list answers `{"items": [...], "next": "<cursor>" | null}` and, when there is a next page,
//! a `Link: <same path and query, with cursor=...>; rel="next"` header. `limit` is the page
//! size (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]); `cursor` is the `next` of the page
//! before. A cursor is opaque to callers: base64url of the key of the last row handed out (the
//! store reads the next page after it, so rows inserted or deleted meanwhile never make a row
//! be skipped or repeated) and a digest of the listing it was made for — the collection and its
//! filters — so a cursor used on another listing is refused rather than read wrongly.

use axum::Json;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stackdock_store::{Page, PageRequest};

use crate::error::ApiError;

/// Rows in a page when the caller names no `limit`.
pub(crate) const DEFAULT_LIMIT: u32 = 100;
/// The most rows a page may hold.
pub(crate) const MAX_LIMIT: u32 = 1000;

/// One listing: a collection and the filters it is read with. Pages of one listing share it,
/// and a cursor is good only for the listing it was made for.
pub(crate) struct Listing(String);

impl Listing {
    pub(crate) fn new(collection: &str) -> Self {
        Self(collection.to_string())
    }

    /// Adds a filter as the listing applies it (the dock's id, not the name it was given as).
    pub(crate) fn filter(mut self, name: &str, value: Option<impl std::fmt::Display>) -> Self {
        if let Some(v) = value {
            // The value's length first, so no filter value can pass for another's.
            let v = v.to_string();
            self.0.push_str(&format!("\n{name}={}:{v}", v.len()));
        }
        self
    }

    fn digest(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }

    /// The page the query asks for: `limit` checked, `cursor` decoded and checked to be this
    /// listing's.
    pub(crate) fn request<K: DeserializeOwned>(
        &self,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<PageRequest<K>, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit: {text:?} is not a whole number from 1 to {MAX_LIMIT}"
                    ))
                })?,
        };
        let after = cursor.map(|c| self.decode(c)).transpose()?;
        Ok(PageRequest { limit, after })
    }

    fn decode<K: DeserializeOwned>(&self, cursor: &str) -> Result<K, ApiError> {
        let malformed = || {
            ApiError::bad_request(
                "cursor: not a cursor of this API; pass the `next` of the page before as it was",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| malformed())?;
        let c: Cursor<K> = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
        if c.of != self.digest() {
            return Err(ApiError::bad_request(
                "cursor: made for another listing (another collection or other filters); \
                 page with the filters the first page was read with",
            ));
        }
        Ok(c.after)
    }

    fn encode<K: Serialize>(&self, after: K) -> String {
        let c = Cursor {
            of: self.digest(),
            after,
        };
        // A key is ids, instants and names: serializing it cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
    }

    /// The cursor of the page after `page`, when one follows.
    pub(crate) fn next_cursor<T, K: Serialize>(&self, page: &Page<T, K>) -> Option<String> {
        page.next.as_ref().map(|k| self.encode(k))
    }

    /// The answer for a page read at `uri`: the items as `views`, the cursor of the next page
    /// in `next` and, when there is one, in a `Link` header.
    pub(crate) fn answer<'p, T, K: Serialize, V: Serialize>(
        &self,
        uri: &Uri,
        page: &'p Page<T, K>,
        view: impl Fn(&'p T) -> V,
    ) -> Response {
        let items: Vec<V> = page.items.iter().map(view).collect();
        let next = self.next_cursor(page);
        let link = next.as_deref().and_then(|c| next_link(uri, c));
        let body = Json(Body { items, next });
        match link {
            Some(l) => ([(header::LINK, l)], body).into_response(),
            None => body.into_response(),
        }
    }
}

/// The query of a list route that takes no filters: only the page.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    #[serde(default)]
    #[schemars(schema_with = "super::doc::limit_schema")]
    pub(crate) limit: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "super::doc::cursor_schema")]
    pub(crate) cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Cursor<K> {
    /// The digest of the listing it was made for.
    of: String,
    after: K,
}

#[derive(Serialize)]
struct Body<V> {
    items: Vec<V>,
    next: Option<String>,
}

/// `<path?query with cursor=next>; rel="next"`: the same path and parameters, another cursor.
fn next_link(uri: &Uri, cursor: &str) -> Option<HeaderValue> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if k != "cursor" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair("cursor", cursor);
    let link = format!("<{}?{}>; rel=\"next\"", uri.path(), query.finish());
    HeaderValue::from_str(&link).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_good_only_for_its_listing() {
        let servers = Listing::new("servers").filter("state", Some("provisioned"));
        let cursor = servers.encode(42_i64);
        let again = Listing::new("servers").filter("state", Some("provisioned"));
        let page: PageRequest<i64> = again.request(None, Some(&cursor)).expect("same listing");
        assert_eq!(page.after, Some(42));
        assert_eq!(page.limit, DEFAULT_LIMIT);
        for other in [
            Listing::new("domains").filter("state", Some("provisioned")),
            Listing::new("servers").filter("state", Some("failed")),
            Listing::new("servers"),
        ] {
            let e = other.request::<i64>(None, Some(&cursor)).unwrap_err();
            assert!(e.message.starts_with("cursor:"), "{}", e.message);
        }
    }

    #[test]
    fn filter_values_cannot_pass_for_one_another() {
        let a = Listing::new("audit")
            .filter("action", Some("x\nresource=1:y"))
            .digest();
        let b = Listing::new("audit")
            .filter("action", Some("x"))
            .filter("resource", Some("y"))
            .digest();
        assert_ne!(a, b);
    }

    #[test]
    fn limits_outside_the_range_name_the_parameter() {
        let l = Listing::new("docks");
        for bad in ["0", "1001", "ten", "-1", ""] {
            let e = l.request::<i64>(Some(bad), None).unwrap_err();
            assert!(e.message.starts_with("limit:"), "{bad}: {}", e.message);
        }
        for bad in ["%%%", "bm90IGpzb24", "eyJvZiI6MX0"] {
            let e = l.request::<i64>(None, Some(bad)).unwrap_err();
            assert!(e.message.starts_with("cursor:"), "{bad}: {}", e.message);
        }
        assert_eq!(l.request::<i64>(Some("1000"), None).unwrap().limit, 1000);
    }

    #[test]
    fn the_next_link_keeps_the_query_and_replaces_the_cursor() {
        let uri: Uri = "/api/v1/resources?state=failed&cursor=old&limit=5"
            .parse()
            .unwrap();
        let link = next_link(&uri, "new").unwrap();
        assert_eq!(
            link.to_str().unwrap(),
            "</api/v1/resources?state=failed&limit=5&cursor=new>; rel=\"next\""
        );
    }
}

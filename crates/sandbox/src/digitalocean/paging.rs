//! DigitalOcean's page-numbered collections: `page`/`per_page` in, `links.pages`
//! (`first`, `prev`, `next`, `last`, only those that make sense) and `meta.total` out.

use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use serde_json::{Map, Value, json};

use crate::front_door::ApiError;

const DEFAULT_PER_PAGE: usize = 20;
const MAX_PER_PAGE: usize = 200;

#[derive(Clone, Copy, Debug)]
pub(crate) struct PageRequest {
    page: usize,
    per_page: usize,
}

/// The decoded query string of a request.
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub(crate) fn parse(uri: &Uri) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| Self(pairs))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl PageRequest {
    /// Out-of-range values fall back to the defaults (and `per_page` is capped at 200)
    /// rather than failing: a client paging through a list should never be stopped
    /// by its own page arithmetic.
    pub(crate) fn from_query(query: &QueryParams) -> Self {
        let number = |key: &str| {
            query
                .get(key)
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|n| *n >= 1)
        };
        Self {
            page: number("page").unwrap_or(1),
            per_page: number("per_page")
                .unwrap_or(DEFAULT_PER_PAGE)
                .min(MAX_PER_PAGE),
        }
    }
}

/// One page of a collection, with links that point back at the sandbox.
pub(crate) struct Listing<'a> {
    base_url: &'a str,
    uri: &'a Uri,
    paging: PageRequest,
}

impl<'a> Listing<'a> {
    pub(crate) fn new(base_url: &'a str, uri: &'a Uri, paging: PageRequest) -> Self {
        Self {
            base_url,
            uri,
            paging,
        }
    }

    /// `{key: [...this page...], links: {...}, meta: {total}}`, from the whole
    /// collection. Fine for short catalogs; large ones use [`Listing::render_page`].
    pub(crate) fn render(&self, key: &str, items: Vec<Value>) -> Value {
        let total = items.len();
        let (skip, take) = self.window();
        let shown: Vec<Value> = items.into_iter().skip(skip).take(take).collect();
        self.render_page(key, total, shown)
    }

    /// Which items of the collection the requested page shows: skip this many, then
    /// take at most that many. Lets a caller render only the page, not the whole
    /// collection, when rendering an item is what costs.
    pub(crate) fn window(&self) -> (usize, usize) {
        let PageRequest { page, per_page } = self.paging;
        ((page - 1).saturating_mul(per_page), per_page)
    }

    /// Like [`Listing::render`], for a caller that counted the collection (`total`)
    /// and rendered only the items in [`Listing::window`].
    pub(crate) fn render_page(&self, key: &str, total: usize, shown: Vec<Value>) -> Value {
        let PageRequest { page, per_page } = self.paging;
        let last = total.div_ceil(per_page).max(1);

        let mut pages = Map::new();
        if page > 1 {
            pages.insert("first".into(), self.link(1).into());
            pages.insert("prev".into(), self.link(page - 1).into());
        }
        if page < last {
            pages.insert("next".into(), self.link(page + 1).into());
            pages.insert("last".into(), self.link(last).into());
        }
        // DigitalOcean answers a single-page collection with an empty `links` object.
        let links = if pages.is_empty() {
            json!({})
        } else {
            json!({ "pages": pages })
        };
        json!({ key: shown, "links": links, "meta": { "total": total } })
    }

    /// The same request with only `page` changed, so filters and `per_page` survive
    /// the walk from page to page.
    fn link(&self, page: usize) -> String {
        let mut query = format!("page={page}");
        for pair in self.uri.query().unwrap_or("").split('&') {
            let key = pair.split('=').next().unwrap_or("");
            if !pair.is_empty() && key != "page" {
                query.push('&');
                query.push_str(pair);
            }
        }
        format!("{}{}?{}", self.base_url, self.uri.path(), query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(uri: &str, total: usize) -> Value {
        let uri: Uri = uri.parse().unwrap();
        let query = QueryParams::parse(&uri).unwrap();
        let paging = PageRequest::from_query(&query);
        let items = (0..total).map(|i| json!(i)).collect();
        Listing::new("http://127.0.0.1:1", &uri, paging).render("things", items)
    }

    #[test]
    fn middle_page_links_everywhere() {
        let body = listing("/v2/things?per_page=10&tag_name=a%3Ab&page=2", 25);
        assert_eq!(body["things"].as_array().unwrap().len(), 10);
        assert_eq!(body["things"][0], 10);
        assert_eq!(body["meta"]["total"], 25);
        let pages = &body["links"]["pages"];
        assert_eq!(
            pages["next"],
            "http://127.0.0.1:1/v2/things?page=3&per_page=10&tag_name=a%3Ab"
        );
        assert_eq!(
            pages["first"],
            "http://127.0.0.1:1/v2/things?page=1&per_page=10&tag_name=a%3Ab"
        );
        assert_eq!(
            pages["last"],
            "http://127.0.0.1:1/v2/things?page=3&per_page=10&tag_name=a%3Ab"
        );
    }

    #[test]
    fn single_page_has_empty_links() {
        let body = listing("/v2/things", 3);
        assert_eq!(body["links"], json!({}));
        assert_eq!(body["meta"]["total"], 3);
    }

    #[test]
    fn per_page_is_capped_and_nonsense_ignored() {
        let body = listing("/v2/things?per_page=5000&page=zero", 450);
        assert_eq!(body["things"].as_array().unwrap().len(), 200);
        assert!(body["links"]["pages"]["prev"].is_null());
    }
}

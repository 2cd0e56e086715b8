//! Reading the API's paged lists: one page (`--limit`, `--cursor`), or every page (`--all`).
//!
//! Every list of the API answers `{"items": [...], "next": <cursor> | null}`. A command shows
//! one page and says how to get the next; `--all` follows `next` until there is none. With
//! `--json` it prints the page as the server answered it, or, with `--all`, the items of every
//! page as one array.

use serde_json::{Value, json};

use crate::client::{CliError, Client};

/// Paging options every list command takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct PageArgs {
    /// Rows in a page (the server's default is 100, at most 1000).
    #[arg(long)]
    pub(crate) limit: Option<u32>,
    /// The page after this cursor: the `next` of the page before.
    #[arg(long, conflicts_with = "all")]
    pub(crate) cursor: Option<String>,
    /// Every page, one after another.
    #[arg(long)]
    pub(crate) all: bool,
}

/// What a list command read: the rows, and the cursor of the page after them, if any.
pub(crate) struct Listed {
    pub(crate) items: Vec<Value>,
    pub(crate) next: Option<String>,
    /// Every page was read (`--all`): there is no page after.
    all: bool,
}

impl Listed {
    /// The one JSON document `--json` prints.
    pub(crate) fn json(&self) -> Value {
        if self.all {
            json!(self.items)
        } else {
            json!({"items": self.items, "next": self.next})
        }
    }

    /// On stderr, so the rows on stdout stay rows: how to read the next page, if there is one.
    pub(crate) fn tell_next(&self) {
        if let Some(next) = &self.next {
            eprintln!("more: run again with --cursor {next} (or --all for every page)");
        }
    }
}

impl Client {
    /// Reads the list at `path` with `query` (its filters), a page or every page as `page`
    /// asks.
    pub(crate) async fn list(
        &self,
        path: &str,
        query: &[(&str, String)],
        page: &PageArgs,
    ) -> Result<Listed, CliError> {
        let mut items = Vec::new();
        let mut cursor = page.cursor.clone();
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            if let Some(l) = page.limit {
                q.push(("limit", l.to_string()));
            }
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let body = self
                .send(self.request(reqwest::Method::GET, path).query(&q))
                .await?;
            let Some(rows) = body["items"].as_array() else {
                return Err(CliError::Other(format!(
                    "the server answered {path} without `items`: is it an older StackDock?"
                )));
            };
            items.extend(rows.iter().cloned());
            let next = body["next"].as_str().map(str::to_string);
            match next {
                Some(n) if page.all => cursor = Some(n),
                next => {
                    return Ok(Listed {
                        items,
                        next,
                        all: page.all,
                    });
                }
            }
        }
    }
}

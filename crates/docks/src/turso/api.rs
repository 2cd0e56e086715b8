//! A thin typed client of Turso's Platform API, written against its published OpenAPI
//! description: groups and databases under `/v1/organizations/{organizationSlug}`, bodies as
//! documented, errors as `{"error": "<message>"}`. Turso lists without pagination.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

/// The body of `POST .../groups` (`NewGroup`).
#[derive(Clone, Debug, Serialize)]
pub struct CreateGroup {
    pub name: String,
    pub location: String,
}

/// The body of `POST .../databases` (`CreateDatabaseInput`).
#[derive(Clone, Debug, Serialize)]
pub struct CreateDatabase {
    pub name: String,
    pub group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<String>,
}

/// The fields of a database StackDock reads; the whole answer is kept in `raw`. A create
/// answers only `DbId`, `Hostname` and `Name`; a read or a listing adds the rest.
#[derive(Clone, Debug)]
pub struct Database {
    pub name: String,
    pub db_id: Option<String>,
    /// The libSQL endpoint.
    pub hostname: Option<String>,
    pub group: Option<String>,
    pub primary_region: Option<String>,
    pub raw: Value,
}

#[derive(Deserialize)]
struct WireDatabase {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "DbId", default)]
    db_id: Option<String>,
    #[serde(rename = "Hostname", default)]
    hostname: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(rename = "primaryRegion", default)]
    primary_region: Option<String>,
}

/// A listing's `databases`. The document requires no field of a database: one listed
/// without a name (which every call about a database takes) is left out, not taken for an
/// unreadable answer that would fail every listing of the account. A `null` list is read as
/// an empty one: the document types it as an array, but a server written in Go sends a list
/// it never filled as `null`. No `databases` at all is not read as empty, since an empty group
/// is deleted on that word.
fn listed_databases(list: Value) -> Result<Vec<Database>, DockError> {
    let items = match list {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => return Err(protocol(format!("`databases` is not a list: {other}"))),
    };
    items
        .into_iter()
        .filter(|d| d["Name"].as_str().is_some_and(|n| !n.is_empty()))
        .map(Database::from_value)
        .collect()
}

impl Database {
    fn from_value(raw: Value) -> Result<Self, DockError> {
        let w = WireDatabase::deserialize(&raw).map_err(|e| protocol(format!("database: {e}")))?;
        Ok(Self {
            name: w.name,
            db_id: w.db_id,
            hostname: w.hostname,
            group: w.group,
            primary_region: w.primary_region,
            raw,
        })
    }
}

fn protocol(detail: String) -> DockError {
    DockError::Protocol {
        provider: Provider::Turso,
        detail,
    }
}

/// Turso's error body: `{"error": "group not found"}`. It carries no code, so the code is
/// named after the status.
pub fn read_error(status: u16, body: &Value) -> (String, String) {
    let code = match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        429 => "too_many_requests",
        s if s >= 500 => "server_error",
        _ => "error",
    };
    let message = body["error"]
        .as_str()
        .or_else(|| body.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    (code.to_string(), message)
}

/// Whether a group was made by this call or was there already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupOutcome {
    Created,
    Existed,
}

pub struct TursoApi {
    http: HttpSession,
    /// `/v1/organizations/{organizationSlug}`, the root of every group and database path.
    org_path: String,
}

impl TursoApi {
    pub fn new(http: HttpSession, organization: &str) -> Self {
        Self {
            http,
            org_path: format!("/v1/organizations/{organization}"),
        }
    }

    /// `GET /v1/auth/validate`: whether Turso accepts the key at all.
    pub async fn validate_token(&self) -> Result<(), DockError> {
        self.http.get("/v1/auth/validate", &[]).await.map(drop)
    }

    /// `GET /v1/organizations/{organizationSlug}`: whether the key reaches the organization.
    pub async fn get_organization(&self) -> Result<Value, DockError> {
        Ok(self.http.get(&self.org_path, &[]).await?.body)
    }

    /// `GET .../groups/{groupName}`: whether Turso has the group.
    pub async fn group_exists(&self, group: &str) -> Result<bool, DockError> {
        match self
            .http
            .get(&format!("{}/groups/{group}", self.org_path), &[])
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST .../groups`. A 409 means the group exists, which is all that is asked, so the
    /// call may be repeated: a second create cannot make a second group.
    pub async fn create_group(&self, req: &CreateGroup) -> Result<GroupOutcome, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let path = format!("{}/groups", self.org_path);
        match self
            .http
            .send(
                Method::POST,
                &path,
                &[],
                Some(&body),
                Idempotence::Repeatable,
            )
            .await
        {
            Ok(_) => Ok(GroupOutcome::Created),
            Err(DockError::Provider(p)) if p.status == 409 => Ok(GroupOutcome::Existed),
            Err(e) => Err(e),
        }
    }

    /// `DELETE .../groups/{groupName}`, only while it holds no database: deleting a group
    /// deletes its databases, and one a user added since must not go with it. A group already
    /// gone counts as deleted; one still holding databases is left and `false` returned.
    pub async fn delete_group_if_empty(&self, group: &str) -> Result<bool, DockError> {
        if !self.list_databases(Some(group)).await?.is_empty() {
            return Ok(false);
        }
        match self
            .http
            .delete(&format!("{}/groups/{group}", self.org_path))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// `POST .../databases`, once: see [`Idempotence::Once`]. `attempt` numbers this try among
    /// the caller's, for the journal.
    pub async fn create_database(
        &self,
        req: &CreateDatabase,
        attempt: u32,
    ) -> Result<Database, DockError> {
        let body = serde_json::to_value(req).map_err(|e| protocol(e.to_string()))?;
        let resp = self
            .http
            .post_once(&format!("{}/databases", self.org_path), &body, attempt)
            .await?;
        Database::from_value(resp.body["database"].clone())
    }

    /// `GET .../databases/{databaseName}`; `None` if Turso says it does not exist.
    pub async fn get_database(&self, name: &str) -> Result<Option<Database>, DockError> {
        match self
            .http
            .get(&format!("{}/databases/{name}", self.org_path), &[])
            .await
        {
            Ok(resp) => Database::from_value(resp.body["database"].clone()).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET .../databases`, optionally only one group's. Turso answers the whole list at once.
    pub async fn list_databases(&self, group: Option<&str>) -> Result<Vec<Database>, DockError> {
        let query: Vec<(&str, String)> = group
            .map(|g| ("group", g.to_string()))
            .into_iter()
            .collect();
        let mut body = self
            .http
            .get(&format!("{}/databases", self.org_path), &query)
            .await?
            .body;
        // Indexing would read a missing `databases` as `null`, which is an empty list.
        let Some(list) = body.get_mut("databases").map(Value::take) else {
            return Err(protocol("database list without `databases`".into()));
        };
        listed_databases(list)
    }

    /// `DELETE .../databases/{databaseName}`; a database already gone counts as deleted.
    pub async fn delete_database(&self, name: &str) -> Result<(), DockError> {
        match self
            .http
            .delete(&format!("{}/databases/{name}", self.org_path))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `POST .../databases/{databaseName}/auth/tokens`: a full-access token that does not
    /// expire, sent once: a token whose answer is lost still works, and nobody holds it, so
    /// the caller revokes the database's tokens before it mints again. The answer's body is
    /// never journaled; the token leaves here as a [`SecretString`] only.
    pub async fn create_token(
        &self,
        database: &str,
        attempt: u32,
    ) -> Result<SecretString, DockError> {
        let query = [
            ("expiration", "never".to_string()),
            ("authorization", "full-access".to_string()),
        ];
        let resp = self
            .http
            .post_query_once(
                &format!("{}/databases/{database}/auth/tokens", self.org_path),
                &query,
                attempt,
            )
            .await?;
        resp.body["jwt"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(SecretString::new)
            .ok_or_else(|| protocol("token answer without `jwt`".into()))
    }

    /// `POST .../databases/{databaseName}/auth/rotate`: every token of the database stops
    /// working. A database already gone has none left.
    pub async fn invalidate_tokens(&self, database: &str) -> Result<(), DockError> {
        let path = format!("{}/databases/{database}/auth/rotate", self.org_path);
        match self
            .http
            .send(Method::POST, &path, &[], None, Idempotence::Repeatable)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_database_without_a_name_is_left_out_and_the_rest_read() {
        let listed = listed_databases(json!([
            {"Name": "orders", "DbId": "1", "Hostname": "orders-acme.turso.io"},
            {"DbId": "2"},
            {"Name": "", "DbId": "3"},
            {"Name": "billing", "DbId": "4"},
        ]))
        .expect("read");
        let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["orders", "billing"]);
        assert!(listed_databases(json!({"databases": []})).is_err());
        assert!(listed_databases(Value::Null).expect("read").is_empty());
    }
}

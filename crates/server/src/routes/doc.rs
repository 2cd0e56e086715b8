//! The OpenAPI 3.1 document of the API, built from the route table and nothing else: each
//! entry of [`super::table`] names its summary, query, body and answers as Rust types, and the
//! schemas are derived from those types with `schemars` (JSON Schema 2020-12, the dialect
//! OpenAPI 3.1 uses). `schemars` rather than `utoipa`: the workspace already derives config
//! schemas with it, and the table (not attributes on handlers) is where the API is declared, so
//! the document is one more reading of the table, like the router and the access checks.

use axum::http::{Method, StatusCode};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};
use stackdock_core::{ResourceKind, Role};

use super::Access;
use super::page::{DEFAULT_LIMIT, MAX_LIMIT};

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// What a route answers with one status.
#[derive(Clone, Copy)]
enum Answer {
    /// A JSON body of this type.
    Json(SchemaFn),
    /// A page of these: `{items, next}` and a `Link` header when there is a next page.
    Page(SchemaFn),
    /// No body.
    Empty,
    /// A stream of server-sent events.
    Events,
    /// A web page.
    Html,
}

/// What a route takes as its body.
#[derive(Clone, Copy)]
enum Input {
    Json(SchemaFn),
    Raw,
}

/// What the document says of one route, beside its method, path and access.
#[derive(Clone)]
pub struct Doc {
    summary: &'static str,
    description: &'static str,
    query: Option<SchemaFn>,
    body: Option<Input>,
    answers: Vec<(StatusCode, Answer)>,
    errors: Vec<StatusCode>,
    headers: Vec<(&'static str, &'static str)>,
}

impl Doc {
    pub fn new(summary: &'static str) -> Self {
        Self {
            summary,
            description: "",
            query: None,
            body: None,
            answers: Vec::new(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn about(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// The query parameters: the fields of `T`.
    pub fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(schema_of::<T>);
        self
    }

    pub fn body<T: JsonSchema>(mut self) -> Self {
        self.body = Some(Input::Json(schema_of::<T>));
        self
    }

    /// A raw body (a file's bytes).
    pub fn raw_body(mut self) -> Self {
        self.body = Some(Input::Raw);
        self
    }

    /// A request header the route reads.
    pub fn header(mut self, name: &'static str, description: &'static str) -> Self {
        self.headers.push((name, description));
        self
    }

    pub fn ok<T: JsonSchema>(self) -> Self {
        self.answer(StatusCode::OK, Answer::Json(schema_of::<T>))
    }

    pub fn created<T: JsonSchema>(self) -> Self {
        self.answer(StatusCode::CREATED, Answer::Json(schema_of::<T>))
    }

    pub fn accepted<T: JsonSchema>(self) -> Self {
        self.answer(StatusCode::ACCEPTED, Answer::Json(schema_of::<T>))
    }

    pub fn page<T: JsonSchema>(self) -> Self {
        self.answer(StatusCode::OK, Answer::Page(schema_of::<T>))
    }

    pub fn no_content(self) -> Self {
        self.answer(StatusCode::NO_CONTENT, Answer::Empty)
    }

    pub fn html(self) -> Self {
        self.answer(StatusCode::OK, Answer::Html)
    }

    pub fn events(self) -> Self {
        self.answer(StatusCode::OK, Answer::Events)
    }

    fn answer(mut self, status: StatusCode, a: Answer) -> Self {
        self.answers.push((status, a));
        self
    }

    /// The error statuses the handler itself can answer (those of authentication, permission
    /// and bad paths or queries are added from the route's access and parameters).
    pub fn errors(mut self, statuses: &[u16]) -> Self {
        self.errors.extend(
            statuses
                .iter()
                .map(|s| StatusCode::from_u16(*s).expect("a status code")),
        );
        self
    }
}

/// The stable error codes, by status: what a client may match on.
pub const ERROR_CODES: &[(u16, &[&str])] = &[
    (400, &["bad_request", "digest_mismatch"]),
    (401, &["unauthenticated"]),
    (403, &["forbidden", "csrf"]),
    (404, &["not_found"]),
    (405, &["method_not_allowed"]),
    (
        409,
        &[
            "already_exists",
            "conflict",
            "refused",
            "current_key",
            "key_in_use",
            "keys_from_environment",
        ],
    ),
    (413, &["too_large"]),
    (
        422,
        &["invalid", "invalid_config", "unsupported", "key_refused"],
    ),
    (429, &["rate_limited"]),
    (
        500,
        &[
            "internal",
            "dock_key",
            "sealed_config",
            "hash",
            "file_store",
            "key_file",
            "no_file_store",
        ],
    ),
    (502, &["key_unchecked"]),
];

fn codes_of(status: StatusCode) -> &'static [&'static str] {
    ERROR_CODES
        .iter()
        .find(|(s, _)| *s == status.as_u16())
        .map_or(&[], |(_, c)| c)
}

/// A path parameter's schema and meaning, by its name in the route's path.
fn path_param(name: &str) -> (Value, &'static str) {
    let uuid = json!({"type": "string", "format": "uuid"});
    match name {
        "collection" => {
            let names: Vec<&str> = [
                ResourceKind::Server,
                ResourceKind::WebService,
                ResourceKind::Domain,
                ResourceKind::Database,
            ]
            .iter()
            .map(|k| k.collection())
            .collect();
            (
                json!({"type": "string", "enum": names}),
                "A resource collection.",
            )
        }
        "dock" => (
            json!({"type": "string", "minLength": 1}),
            "The dock's id or name.",
        ),
        "id" => (uuid, "The row's id."),
        "user" => (uuid, "The member's user id."),
        "key" => (
            json!({"type": "string", "minLength": 1}),
            "The master key's id.",
        ),
        "sha256" => (
            json!({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
            "The file's SHA-256, in lowercase hex.",
        ),
        _ => (json!({"type": "string"}), "A path segment."),
    }
}

fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_string)
        .collect()
}

fn status_text(s: StatusCode) -> String {
    s.canonical_reason().unwrap_or("answer").to_string()
}

/// The document for the routes given as (method, path, access, doc).
pub fn document(routes: &[(Method, &'static str, Access, Doc)]) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut views = settings.clone().for_serialize().into_generator();
    // Query types and bodies are read (deserialized) and shown inline.
    let mut inputs = {
        let mut s = settings;
        s.inline_subschemas = true;
        s.into_generator()
    };
    let mut paths = Map::new();
    for (method, path, access, doc) in routes {
        let op = operation(method, path, *access, doc, &mut views, &mut inputs);
        let item = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        item[method.as_str().to_lowercase()] = op;
    }
    let mut schemas: Map<String, Value> = views.take_definitions(true).into_iter().collect();
    schemas.insert("Error".into(), error_schema());
    let codes: Vec<Value> = ERROR_CODES
        .iter()
        .map(|(s, c)| json!({"status": s, "codes": c}))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "StackDock API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "StackDock's JSON API. Every error is `{\"error\": {\"code\", \"message\"}}`; \
                `code` is stable (see `x-error-codes`), `message` names what was wrong. Lists are \
                pages: `{items, next}`, with `limit` and `cursor` and a `Link` header to the next page.",
        },
        "x-error-codes": codes,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "An API token: `Authorization: Bearer <token>`."},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE,
                    "description": "A browser session, set by `POST /api/v1/sessions`."},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                    "description": "With a session, every request that changes something carries \
                        the session's `csrf_token`."},
            },
            "headers": {
                "Link": {"description": "`<the same path and query with cursor=next>; rel=\"next\"` \
                    when there is a next page.", "schema": {"type": "string"}},
            },
        },
    })
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable: what kind of error it is."},
                "message": {"type": "string", "description": "Names the field or thing that is wrong."},
            },
        }},
    })
}

fn operation(
    method: &Method,
    path: &str,
    access: Access,
    doc: &Doc,
    views: &mut SchemaGenerator,
    inputs: &mut SchemaGenerator,
) -> Value {
    let mut params = Vec::new();
    let names = path_params(path);
    for name in &names {
        let (schema, description) = path_param(name);
        params.push(json!({"name": name, "in": "path", "required": true,
            "schema": schema, "description": description}));
    }
    if let Some(q) = doc.query {
        let schema = q(inputs).to_value();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = schema["properties"].as_object() {
            for (name, s) in props {
                let mut s = s.clone();
                let description = query_param_schema(&mut s);
                let mut p = json!({"name": name, "in": "query",
                    "required": required.contains(&name.as_str()), "schema": s});
                if !description.is_null() {
                    p["description"] = description;
                }
                params.push(p);
            }
        }
    }
    for (name, description) in &doc.headers {
        params.push(json!({"name": name, "in": "header", "required": false,
            "schema": {"type": "string"}, "description": description}));
    }

    let mut responses = Map::new();
    for (status, answer) in &doc.answers {
        let r = match answer {
            Answer::Json(f) => json!({"description": status_text(*status),
                "content": {"application/json": {"schema": f(views).to_value()}}}),
            Answer::Page(f) => json!({
                "description": "A page; `next` is the cursor of the next page, null on the last.",
                "headers": {"Link": {"$ref": "#/components/headers/Link"}},
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["items", "next"],
                    "properties": {
                        "items": {"type": "array", "items": f(views).to_value()},
                        "next": {"type": ["string", "null"]},
                    },
                }}},
            }),
            Answer::Empty => json!({"description": status_text(*status)}),
            Answer::Html => json!({"description": "A web page.",
                "content": {"text/html": {"schema": {"type": "string"}}}}),
            Answer::Events => json!({"description": "A stream of server-sent events.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
        };
        responses.insert(status.as_u16().to_string(), r);
    }
    let mut errors = doc.errors.clone();
    if !names.is_empty() || doc.query.is_some() || doc.body.is_some() {
        errors.push(StatusCode::BAD_REQUEST);
    }
    if access != Access::Public {
        errors.push(StatusCode::UNAUTHORIZED);
    }
    // A change made with a session but without its CSRF token is refused whatever the role;
    // a route that needs a permission refuses the roles without it. (A handler that refuses
    // on grounds of its own lists 403 in `errors`.)
    let csrf = access != Access::Public && *method != Method::GET;
    let some_role_lacks = match access {
        Access::Needs(p) => Role::ALL.iter().any(|r| !r.allows(p)),
        Access::Public | Access::Member => false,
    };
    if csrf || some_role_lacks {
        errors.push(StatusCode::FORBIDDEN);
    }
    errors.sort();
    errors.dedup();
    for status in errors {
        let codes: Vec<String> = codes_of(status).iter().map(|c| format!("`{c}`")).collect();
        responses.insert(
            status.as_u16().to_string(),
            json!({
                "description": format!("{}: `code` is one of {}.", status_text(status), codes.join(", ")),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }),
        );
    }

    let (permission, security) = match access {
        Access::Public => ("none: public".to_string(), json!([])),
        Access::Member => ("any member".to_string(), security(method)),
        Access::Needs(p) => (p.as_str().to_string(), security(method)),
    };
    let description = if doc.description.is_empty() {
        format!("Permission: {permission}.")
    } else {
        format!("{}\n\nPermission: {permission}.", doc.description)
    };
    let mut op = json!({
        "summary": doc.summary,
        "description": description,
        "operationId": format!("{} {path}", method.as_str()),
        "x-permission": permission,
        "security": security,
        "parameters": params,
        "responses": responses,
    });
    match doc.body {
        Some(Input::Json(f)) => {
            op["requestBody"] = json!({"required": true,
                "content": {"application/json": {"schema": f(inputs).to_value()}}});
        }
        Some(Input::Raw) => {
            op["requestBody"] = json!({"required": true,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
        }
        None => {}
    }
    op
}

/// A query field's schema as a parameter's: a query cannot carry `null`, so an optional field is
/// one left out; answers the field's description, moved to the parameter.
fn query_param_schema(s: &mut Value) -> Value {
    let Some(o) = s.as_object_mut() else {
        return Value::Null;
    };
    if o.get("default") == Some(&Value::Null) {
        o.remove("default");
    }
    if let Some(Value::Array(types)) = o.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let t = types[0].clone();
            o.insert("type".into(), t);
        }
    }
    o.remove("description").unwrap_or(Value::Null)
}

/// A token, or a session (with its CSRF token when the request changes something).
fn security(method: &Method) -> Value {
    if *method == Method::GET {
        json!([{"bearer": []}, {"session": []}])
    } else {
        json!([{"bearer": []}, {"session": [], "csrf": []}])
    }
}

/// The page parameters' schemas, as every list route takes them.
pub fn limit_schema(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
        "description": "Rows in the page.",
    })
}

pub fn cursor_schema(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "string",
        "description": "The `next` of the page before, as it was.",
    })
}

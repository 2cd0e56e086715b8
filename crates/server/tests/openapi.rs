//! The OpenAPI document against the route table it is built from, and against the rules of
//! OpenAPI 3.1 that a reader of it relies on.

use std::collections::BTreeSet;

use serde_json::Value;
use stackdock_core::Role;
use stackdock_server::routes::{Access, ERROR_CODES, openapi, routes};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

#[test]
fn every_route_of_the_router_is_in_the_document_and_no_other() {
    let doc = openapi();
    let documented = operations(&doc);
    let routed: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.as_str().to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes not in the document: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        extra.is_empty(),
        "document paths no route serves: {extra:?}"
    );
    assert!(routed.contains(&("GET".into(), "/api/v1/openapi.json".into())));
}

#[test]
fn each_operation_names_its_permission_and_security() {
    let doc = openapi();
    for r in routes() {
        let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
        let permission = op["x-permission"].as_str().expect("x-permission");
        let description = op["description"].as_str().expect("description");
        assert!(
            description.contains(&format!("Permission: {permission}")),
            "{} {}: {description}",
            r.method,
            r.path
        );
        let security = op["security"].as_array().expect("security");
        match r.access {
            Access::Public => {
                assert!(security.is_empty(), "{}", r.path);
                assert_eq!(permission, "none: public");
            }
            Access::Member => {
                assert_eq!(permission, "any member");
                assert!(security.iter().any(|s| s.get("bearer").is_some()));
                assert!(op["responses"].get("401").is_some(), "{}", r.path);
            }
            Access::Needs(p) => {
                assert_eq!(permission, p.as_str());
                assert!(security.iter().any(|s| s.get("bearer").is_some()));
                // 403 where some role lacks the permission, or a session can lack its CSRF
                // token; not where nobody can be refused.
                let refusable = Role::ALL.iter().any(|role| !role.allows(p))
                    || r.method != axum::http::Method::GET;
                assert_eq!(
                    op["responses"].get("403").is_some(),
                    refusable,
                    "{} {}",
                    r.method,
                    r.path
                );
            }
        }
    }
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().expect("a $ref is a string"));
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_with_every_ref_resolving() {
    let doc = openapi();
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "{version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20, "{} refs", all.len());
    for r in all {
        let pointer = r.strip_prefix('#').expect("a local $ref");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Every `{name}` of the path is declared as a path parameter, and no other.
        let named: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path}");
            for (status, r) in responses {
                assert!(
                    status.len() == 3 && status.parse::<u16>().is_ok(),
                    "{status}"
                );
                assert!(r["description"].is_string(), "{method} {path} {status}");
            }
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}"
            );
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(p["required"], true);
                    p["name"].as_str().unwrap()
                })
                .collect();
            assert_eq!(declared, named, "{method} {path}");
            assert!(op["operationId"].is_string());
        }
    }
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|i| i.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "operationIds repeat");
}

#[test]
fn every_schema_compiles_as_json_schema_2020_12() {
    let doc = openapi();
    for (name, _) in doc["components"]["schemas"].as_object().unwrap() {
        // Compiled in the document, so that `$ref`s to other schemas resolve.
        let mut root = doc.clone();
        root["$ref"] = Value::String(format!("#/components/schemas/{name}"));
        jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn lists_document_the_page_parameters_and_the_link_header() {
    let doc = openapi();
    let list = &doc["paths"]["/api/v1/{collection}"]["get"];
    let params = list["parameters"].as_array().unwrap();
    let limit = params.iter().find(|p| p["name"] == "limit").expect("limit");
    assert_eq!(limit["in"], "query");
    assert_eq!(limit["schema"]["maximum"], 1000);
    assert!(params.iter().any(|p| p["name"] == "cursor"));
    assert!(params.iter().any(|p| p["name"] == "state"));
    let ok = &list["responses"]["200"];
    assert_eq!(ok["headers"]["Link"]["$ref"], "#/components/headers/Link");
    let body = &ok["content"]["application/json"]["schema"];
    assert_eq!(body["required"], serde_json::json!(["items", "next"]));
    // The error shape is documented with its stable codes.
    let e404 = &doc["paths"]["/api/v1/docks/{dock}"]["get"]["responses"]["404"];
    assert_eq!(
        e404["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    assert!(
        e404["description"]
            .as_str()
            .unwrap()
            .contains("`not_found`")
    );
}

/// The `.rs` files under `dir`.
fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("a source dir") {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `StatusCode::NOT_FOUND` and the like, as a number.
fn status_named(name: &str) -> u16 {
    (100..600)
        .find(|n| {
            axum::http::StatusCode::from_u16(*n)
                .ok()
                .and_then(|s| s.canonical_reason())
                .is_some_and(|r| r.to_uppercase().replace([' ', '-'], "_") == name)
        })
        .unwrap_or_else(|| panic!("no status {name}"))
}

#[test]
fn every_error_code_the_server_answers_is_documented_with_its_status() {
    let mut files = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for call in ["ApiError::new(", "Self::new("] {
            for (at, _) in text.match_indices(call) {
                let rest = text[at + call.len()..].trim_start();
                let Some(rest) = rest.strip_prefix("StatusCode::") else {
                    continue;
                };
                let (name, rest) = rest.split_once(',').expect("status, code");
                let code = rest.trim_start().strip_prefix('"').expect("a literal code");
                let code = &code[..code.find('"').unwrap()];
                found.push((status_named(name.trim()), code.to_string(), f.clone()));
            }
        }
    }
    assert!(found.len() > 25, "{} codes found", found.len());
    let doc = openapi();
    for (status, code, file) in found {
        assert!(
            ERROR_CODES
                .iter()
                .any(|(s, codes)| *s == status && codes.contains(&code.as_str())),
            "{code} ({status}, in {}) is not among the documented codes",
            file.display()
        );
        let listed = doc["x-error-codes"].as_array().unwrap().iter().any(|e| {
            e["status"] == status && e["codes"].as_array().unwrap().iter().any(|c| c == &code)
        });
        assert!(listed, "{code} is not in the document");
    }
}

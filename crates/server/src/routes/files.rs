//! `/api/v1/files`: the contents of web services' files, by SHA-256. A client asks which of
//! its digests the server lacks (`POST /api/v1/files/missing`), uploads only those
//! (`PUT /api/v1/files/{sha256}`), then asks for the provision with the manifest. Both routes
//! need `provisioning:full` (declared in the route table).

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures::StreamExt as _;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use stackdock_docks::Sha256Hex;
use stackdock_engine::blobs::{BlobError, BlobStore, MAX_BLOB_BYTES};

use super::body::JsonObject;
use super::{path_error, query_error};
use crate::AppState;
use crate::error::ApiError;
use crate::view::MissingFilesView;

/// The most digests one `missing` question may ask about.
const MAX_ASKED: usize = 10_000;

fn blobs(state: &AppState) -> Result<&std::sync::Arc<BlobStore>, ApiError> {
    state.engine.blobs().ok_or_else(|| {
        // `stackdock up` always keeps one: an engine built without it is a server's own fault.
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no_file_store",
            "this server keeps no file store, so it cannot take files",
        )
    })
}

fn digest(field: &str, text: String) -> Result<Sha256Hex, ApiError> {
    Sha256Hex::try_from(text).map_err(|e| ApiError::invalid(format!("{field}: {e}")))
}

/// `POST /api/v1/files/missing` with `{"sha256": [...]}`: the digests the server lacks.
pub(crate) async fn missing(
    State(state): State<AppState>,
    mut body: JsonObject,
) -> Result<Json<MissingFilesView>, ApiError> {
    let store = blobs(&state)?;
    let Some(Value::Array(asked)) = body.0.remove("sha256") else {
        return Err(ApiError::invalid("sha256: a list of digests is required"));
    };
    if let Some(field) = body.0.keys().next() {
        return Err(ApiError::invalid(format!("{field}: unknown field")));
    }
    if asked.len() > MAX_ASKED {
        return Err(ApiError::invalid(format!(
            "sha256: at most {MAX_ASKED} digests per question, got {}",
            asked.len()
        )));
    }
    let digests = asked
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => digest(&format!("sha256[{i}]"), s),
            _ => Err(ApiError::invalid(format!("sha256[{i}]: must be a string"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Thousands of file checks: off the async threads.
    let store = store.clone();
    let missing: Vec<String> = tokio::task::spawn_blocking(move || store.missing(&digests))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "file store");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "file_store",
                "the file store failed; see the server log",
            )
        })?
        .into_iter()
        .map(String::from)
        .collect();
    Ok(Json(MissingFilesView { missing }))
}

/// The body of `POST /api/v1/files/missing`, for the API document: [`missing`] reads it field
/// by field so each error names its place.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct MissingQuestion {
    /// The files' SHA-256 digests, in lowercase hex.
    sha256: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    /// The path the client knows the file by, for the error wording only.
    path: Option<String>,
}

/// `PUT /api/v1/files/{sha256}` with the raw contents: kept once their digest is checked.
pub(crate) async fn upload(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let Path(sha) = path.map_err(path_error)?;
    let Query(query) = query.map_err(query_error)?;
    let store = blobs(&state)?;
    let expected = digest("sha256", sha)?;
    let named = query.path.unwrap_or_else(|| expected.to_string());
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "{named}: a file may be at most {} MiB",
                MAX_BLOB_BYTES / (1024 * 1024)
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BLOB_BYTES as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(format!("{named}: the upload could not be read: {e}"))
        })?;
        if bytes.len() + chunk.len() > MAX_BLOB_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    match store.put(&expected, bytes).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e @ BlobError::Mismatch { .. }) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "digest_mismatch",
            format!("{named}: {e}"),
        )),
        Err(e @ BlobError::Io(_)) => {
            tracing::error!(error = %e, "file store");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "file_store",
                "the file store failed; see the server log",
            ))
        }
    }
}

/// Refuses a web service whose manifest names contents never uploaded, naming the first such
/// path, before anything is recorded. A malformed manifest is left to the adapter's config
/// check, which names the field.
pub(crate) fn check_uploaded(
    state: &AppState,
    config: &Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(Value::Array(files)) = config.get("files") else {
        return Ok(());
    };
    let store = blobs(state)?;
    for (i, f) in files.iter().enumerate() {
        let Some(sha) = f["sha256"].as_str() else {
            continue;
        };
        let Ok(digest) = Sha256Hex::try_from(sha.to_string()) else {
            continue;
        };
        if !store.has(&digest) {
            return Err(ApiError::invalid(format!(
                "files[{i}]: the contents of {} (SHA-256 {sha}) were never uploaded; \
                 upload them with PUT /api/v1/files/{sha}",
                f["path"].as_str().unwrap_or("?")
            )));
        }
    }
    Ok(())
}

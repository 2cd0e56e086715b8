//! `/api/v1/keys`: the master keys that seal dock keys and sensitive config.
//!
//! A rotation makes a new key current, writes the key file (the new key first, the old ones
//! after, so a crash leaves a file that opens everything), then seals everything sealed under
//! an older key again, while the server keeps serving. A key is retired only once nothing is
//! sealed under it, and the key file is written without it.
//!
//! Keys given in `STACKDOCK_MASTER_KEY` are the environment's to change: a new key is put
//! first there and every node restarted; a reseal then moves every value onto it, and the old
//! key leaves the variable once nothing is sealed under it.

use std::path::Path;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::json;
use stackdock_core::{Keyring, MasterKey, Outcome};
use stackdock_store::{Batch, Page, Write};

use super::page::{Listing, PageQuery};
use super::{path_error, query_error};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::view::{KeyView, ResealView, RotationView};

/// The master keys seal every organisation's secrets: they are the installation's, managed by
/// the owners and admins of its first organisation (the one made at first start).
async fn installation_admin(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    if state.store.first_org().await? == Some(caller.0.org_id) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "the master keys belong to the installation: only the owners and admins of its first \
         organisation manage them",
    ))
}

fn key_file(state: &AppState) -> Result<&Path, ApiError> {
    state.key_file.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "keys_from_environment",
            "the master keys come from STACKDOCK_MASTER_KEY: put the new key first there (the \
             old ones after, separated by commas) and restart every node, then reseal \
             (POST /api/v1/keys/reseal) and drop an old key from the variable once nothing is \
             sealed under it",
        )
    })
}

/// Writes the keyring to its file: a temporary file, flushed, then renamed over the old one.
fn persist(path: &Path, keyring: &Keyring) -> Result<(), ApiError> {
    let fail = |e: std::io::Error| {
        tracing::error!(error = %e, "cannot write the key file");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "key_file",
            format!("cannot write the key file: {e}"),
        )
    };
    let tmp = path.with_extension("key.new");
    {
        use std::io::Write as _;
        let mut f = open_private(&tmp).map_err(fail)?;
        f.write_all(keyring.to_file_text().as_bytes())
            .map_err(fail)?;
        f.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

/// `GET /api/v1/keys`: a page of the master keys, the current one first. They are a handful,
/// held in memory, and paged like every other collection so that a client reads every list the
/// same way; a page goes on after the key its cursor names.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    installation_admin(&state, &caller).await?;
    let Query(q) = query.map_err(query_error)?;
    let listing = Listing::new("keys");
    let page = listing.request::<String>(q.limit.as_deref(), q.cursor.as_deref())?;
    let keyring = state.engine.keyring();
    let counts = state.engine.sealed_by_key().await?;
    let current = keyring.current_id();
    let ids: Vec<String> = keyring
        .key_ids()
        .iter()
        .map(|id| id.as_str().to_string())
        .collect();
    let start = match &page.after {
        None => 0,
        Some(after) => {
            ids.iter().position(|id| id == after).ok_or_else(|| {
                ApiError::bad_request(
                    "cursor: the key it continues after was retired; list the keys again",
                )
            })? + 1
        }
    };
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    let rows: Vec<String> = ids
        .into_iter()
        .skip(start)
        .take(limit.saturating_add(1))
        .collect();
    let keys = Page::from_rows(rows, page.limit, Clone::clone);
    Ok(listing.answer(&uri, &keys, |id| KeyView {
        id: id.clone(),
        current: *id == current.as_str(),
        sealed_values: counts.get(id.as_str()).copied().unwrap_or(0) as u64,
    }))
}

pub(crate) async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<RotationView>), ApiError> {
    installation_admin(&state, &caller).await?;
    let actor = caller.actor();
    let path = key_file(&state)?.to_path_buf();
    let keyring = state.engine.keyring();
    let key = MasterKey::generate();
    let id = key.id().to_string();
    let previous = keyring.current_id().to_string();
    keyring.rotate_to(key);
    if let Err(e) = persist(&path, keyring) {
        // Nothing was sealed under a key that is not in the file: go back to the old one.
        keyring.rotate_to_existing(&previous);
        let _ = keyring.retire(&id);
        return Err(e);
    }
    let report = state.engine.reseal().await?;
    let audit = actor
        .audit("keys.rotate", Outcome::Success)
        .details(json!({"from": previous, "to": id, "report": report}));
    state
        .store
        .apply(Batch::new().push(Write::Audit(audit)))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RotationView {
            current: id,
            previous,
            resealed: json!(report),
        }),
    ))
}

/// `POST /api/v1/keys/reseal`: seals everything sealed under an older key again under the
/// current one, and makes no new key. It is how a rotation of keys given in the environment
/// finishes, and how a rotation that ended before every value moved is completed.
pub(crate) async fn reseal(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ResealView>, ApiError> {
    installation_admin(&state, &caller).await?;
    let actor = caller.actor();
    let current = state.engine.keyring().current_id().to_string();
    let report = state.engine.reseal().await?;
    let audit = actor
        .audit("keys.reseal", Outcome::Success)
        .details(json!({"current": current, "report": report}));
    state
        .store
        .apply(Batch::new().push(Write::Audit(audit)))
        .await?;
    Ok(Json(ResealView {
        current,
        resealed: json!(report),
    }))
}

pub(crate) async fn retire(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    installation_admin(&state, &caller).await?;
    let actor = caller.actor();
    let UrlPath(id) = path.map_err(path_error)?;
    let file = key_file(&state)?.to_path_buf();
    let keyring = state.engine.keyring();
    if !keyring.key_ids().iter().any(|k| k.as_str() == id) {
        return Err(ApiError::not_found(format!("key {id:?} not found")));
    }
    if keyring.current_id().as_str() == id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "current_key",
            format!("key {id} is the current key; rotate to a new one first"),
        ));
    }
    let sealed = state
        .engine
        .sealed_by_key()
        .await?
        .get(&id)
        .copied()
        .unwrap_or(0);
    if sealed > 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "key_in_use",
            format!(
                "{sealed} value(s) are still sealed under key {id}; rotate again (it re-seals \
                 them) and retire it once none are"
            ),
        ));
    }
    keyring
        .retire(&id)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "key_in_use", e.to_string()))?;
    persist(&file, keyring)?;
    let audit = actor
        .audit("keys.retire", Outcome::Success)
        .details(json!({"key": id}));
    state
        .store
        .apply(Batch::new().push(Write::Audit(audit)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Request bodies: a JSON object, or a 400 that says what is wrong with it.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

use crate::AppState;
use crate::error::ApiError;

pub(crate) struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| super::rejected(e.status(), "could not read the body", e.body_text()))?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "request body must be a JSON object; it is empty",
            ));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::bad_request("request body must be a JSON object")),
            Err(e) => Err(ApiError::bad_request(format!(
                "request body is not valid JSON: {e}"
            ))),
        }
    }
}

impl JsonObject {
    /// Takes a required string field out of the body.
    pub(crate) fn take_string(&mut self, field: &str) -> Result<String, ApiError> {
        match self.0.remove(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
            Some(Value::String(_)) => Err(ApiError::invalid(format!("{field}: must not be empty"))),
            None | Some(Value::Null) => Err(ApiError::invalid(format!("{field}: is required"))),
            Some(_) => Err(ApiError::invalid(format!("{field}: must be a string"))),
        }
    }

    pub(crate) fn take_optional_string(&mut self, field: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => {
                self.0.remove(field);
                Ok(None)
            }
            _ => self.take_string(field).map(Some),
        }
    }

    /// A field of a partial update: absent leaves the value alone (`None`), `null` clears it
    /// (`Some(None)`), a string sets it.
    pub(crate) fn take_patch_string(
        &mut self,
        field: &str,
    ) -> Result<Option<Option<String>>, ApiError> {
        match self.0.get(field) {
            None => Ok(None),
            Some(Value::Null) => {
                self.0.remove(field);
                Ok(Some(None))
            }
            _ => self.take_string(field).map(|s| Some(Some(s))),
        }
    }

    /// Takes an optional object field; absent or `null` is an empty object.
    pub(crate) fn take_optional_object(
        &mut self,
        field: &str,
    ) -> Result<Map<String, Value>, ApiError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map),
            Some(_) => Err(ApiError::invalid(format!("{field}: must be an object"))),
        }
    }

    /// Takes an optional boolean field, `default` when absent.
    pub(crate) fn take_bool_or(&mut self, field: &str, default: bool) -> Result<bool, ApiError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(ApiError::invalid(format!("{field}: must be true or false"))),
        }
    }

    /// Refuses fields nobody asked for, naming them.
    pub(crate) fn no_more_fields(&self) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(k) => Err(ApiError::invalid(format!("{k}: unknown field"))),
        }
    }
}

//! Per-device CPE credentials: a device authenticating with its own
//! username/password instead of the global one, optionally bound so that
//! only that device may use them.

use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, ApiResult, json_error_without_values};
use crate::app::Acs;
use crate::store::CpeCredential;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialBody {
    password: String,
    #[serde(default)]
    device_id: Option<String>,
}

fn no_content() -> ApiResult {
    Ok(super::no_content())
}

/// `PUT /api/v1/cpe-credentials/{username}` with
/// `{"password": "...", "device_id": "OUI-Class-Serial"}` (device_id optional).
pub async fn put(acs: &Acs, username: &str, body: Value) -> ApiResult {
    if username.is_empty() || username.contains(':') {
        return Err(ApiError::bad_request(
            "username must be non-empty and contain no `:`",
        ));
    }
    let body: CredentialBody = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "body must be {{\"password\": \"...\", \"device_id\": \"...\"}} (device_id optional): {}",
            json_error_without_values(&e)
        ))
    })?;
    if body.password.len() < 8 {
        return Err(ApiError::bad_request(
            "password must be at least 8 characters",
        ));
    }
    acs.store
        .put_cpe_credential(&CpeCredential {
            username: username.to_owned(),
            password: body.password,
            device_id: body.device_id,
        })
        .map_err(ApiError::internal)?;
    acs.store.sync().await.map_err(ApiError::internal)?;
    no_content()
}

/// `DELETE /api/v1/cpe-credentials/{username}`.
pub async fn delete(acs: &Acs, username: &str) -> ApiResult {
    if !acs
        .store
        .delete_cpe_credential(username)
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::not_found(format!(
            "no credentials for `{username}`"
        )));
    }
    acs.store.sync().await.map_err(ApiError::internal)?;
    no_content()
}

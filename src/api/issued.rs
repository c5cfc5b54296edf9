//! `/api/v1/tokens`: API tokens admins issue to machines, each with a
//! role. The token is shown once, in the answer that issues it; the store
//! keeps its SHA-256 only. Tokens in the configuration (`api_tokens`)
//! work beside these and are not listed here.

use std::time::SystemTime;

use http::StatusCode;
use serde::Deserialize;

use super::tokens::{issued_hash, new_issued_token};
use super::{ApiError, ApiResult, json_response};
use crate::app::{Acs, now_ms};
use crate::store::{IssuedToken, Role};

fn view(t: &IssuedToken) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "role": t.role,
        "created": crate::cwmp::format_datetime(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(t.created_ms)
        ),
        "created_by": t.created_by,
    })
}

/// `GET /api/v1/tokens`.
pub fn list(acs: &Acs) -> ApiResult {
    let mut tokens = acs.store.issued_tokens().map_err(ApiError::internal)?;
    tokens.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let views: Vec<serde_json::Value> = tokens.iter().map(|(_, t)| view(t)).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "tokens": views }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: String,
}

/// `POST /api/v1/tokens`: 201 with the token, the only time it is shown.
pub fn issue(acs: &Acs, actor: &str, body: serde_json::Value) -> ApiResult {
    let req: NewToken = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is {{\"name\", \"role\"}}: {}",
            super::json_error_without_values(&e)
        ))
    })?;
    crate::accounts::check_name(&req.name)
        .map_err(|e| ApiError::bad_request(format!("name: {e}")))?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role: `{}` is not technician, ops or admin",
            req.role
        ))
    })?;
    let existing = acs.store.issued_tokens().map_err(ApiError::internal)?;
    if existing.iter().any(|(_, t)| t.name == req.name) {
        return Err(ApiError::conflict(format!(
            "a token named {} exists (revoke it first)",
            req.name
        )));
    }
    let token = new_issued_token().map_err(ApiError::internal)?;
    let record = IssuedToken {
        name: req.name,
        role,
        created_ms: now_ms(SystemTime::now()),
        created_by: actor.to_owned(),
    };
    acs.store
        .put_issued_token(&issued_hash(token.as_bytes()), &record)
        .map_err(ApiError::internal)?;
    let mut v = view(&record);
    v["token"] = serde_json::Value::String(token);
    Ok(json_response(StatusCode::CREATED, &v))
}

/// `DELETE /api/v1/tokens/{name}`: revokes at once.
pub fn revoke(acs: &Acs, name: &str) -> ApiResult {
    let tokens = acs.store.issued_tokens().map_err(ApiError::internal)?;
    let Some((hash, t)) = tokens.into_iter().find(|(_, t)| t.name == name) else {
        return Err(ApiError::not_found(format!("no issued token named {name}")));
    };
    acs.store
        .delete_issued_token(&hash)
        .map_err(ApiError::internal)?;
    Ok(json_response(StatusCode::OK, &view(&t)))
}

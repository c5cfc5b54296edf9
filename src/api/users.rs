//! `/api/v1/users` (admins manage accounts) and `/api/v1/audit`.

use std::time::SystemTime;

use http::StatusCode;
use serde::Deserialize;

use super::{ApiError, ApiResult, Query, json_response};
use crate::accounts::{self, cli::end_sessions};
use crate::app::{Acs, now_ms};
use crate::store::{AuditFilter, Role};

/// `GET /api/v1/users`.
pub fn list(acs: &Acs) -> ApiResult {
    let users = acs.store.users().map_err(ApiError::internal)?;
    let views: Vec<serde_json::Value> = users.iter().map(accounts::public_view).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "users": views }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: String,
    password: String,
    #[serde(default)]
    replace: bool,
}

/// `POST /api/v1/users`.
pub fn create(acs: &Acs, body: serde_json::Value) -> ApiResult {
    let req: NewUser = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is {{\"name\", \"role\", \"password\"[, \"replace\"]}}: {}",
            super::json_error_without_values(&e)
        ))
    })?;
    accounts::check_name(&req.name).map_err(|e| ApiError::bad_request(format!("name: {e}")))?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role: `{}` is not technician, ops or admin",
            req.role
        ))
    })?;
    accounts::check_password(&req.password)
        .map_err(|e| ApiError::bad_request(format!("password: {e}")))?;
    let existing = acs.store.user(&req.name).map_err(ApiError::internal)?;
    if existing.is_some() && !req.replace {
        return Err(ApiError::conflict(format!(
            "user {} exists (send \"replace\": true to change its role and password)",
            req.name
        )));
    }
    let hash = accounts::hash_password(&req.password).map_err(ApiError::internal)?;
    let now = now_ms(SystemTime::now());
    let user = match existing {
        Some(mut u) => {
            u.role = role;
            u.password_hash = hash;
            u.failures = 0;
            u.locked_until_ms = 0;
            end_sessions(acs.store.as_ref(), &u.name).map_err(ApiError::internal)?;
            u
        }
        None => accounts::new_user(&req.name, role, hash, now),
    };
    acs.store.put_user(&user).map_err(ApiError::internal)?;
    Ok(json_response(
        StatusCode::CREATED,
        &accounts::public_view(&user),
    ))
}

/// `DELETE /api/v1/users/{name}`: disables.
pub fn disable(acs: &Acs, name: &str) -> ApiResult {
    let mut user = acs
        .store
        .user(name)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no user {name}")))?;
    user.disabled = true;
    acs.store.put_user(&user).map_err(ApiError::internal)?;
    end_sessions(acs.store.as_ref(), name).map_err(ApiError::internal)?;
    Ok(json_response(StatusCode::OK, &accounts::public_view(&user)))
}

/// `GET /api/v1/audit?device=&user=&since=&limit=`.
pub fn audit(acs: &Acs, q: &Query) -> ApiResult {
    let limit = q.limit("limit", 100, 1000)?;
    let since_ms = match q.get("since") {
        None => None,
        Some(t) => Some(crate::cwmp::parse_datetime(t).map(now_ms).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`since` must be an RFC 3339 time such as 2026-12-06T12:00:00Z, got `{t}`"
            ))
        })?),
    };
    let filter = AuditFilter {
        device_id: q.get("device").map(str::to_owned),
        actor: q.get("user").map(str::to_owned),
        since_ms,
    };
    let entries = acs
        .store
        .audit(&filter, limit)
        .map_err(ApiError::internal)?;
    let views: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "at": crate::cwmp::format_datetime(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.at_ms)
                ),
                "user": e.actor,
                "role": e.role,
                "action": e.action,
                "device_id": e.device_id,
                "status": e.status,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "entries": views }),
    ))
}

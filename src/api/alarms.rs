//! `GET /api/v1/alarms` (what is open) and a device's history of readings.

use std::time::SystemTime;

use http::StatusCode;

use super::devices::load_device;
use super::{ApiError, ApiResult, Query, json_response};
use crate::app::telemetry::{METRICS, alarm_json};
use crate::app::{Acs, now_ms};

/// `GET /api/v1/alarms?device=`.
pub fn list(acs: &Acs, q: &Query) -> ApiResult {
    let alarms = acs
        .store
        .alarms(q.get("device"))
        .map_err(ApiError::internal)?;
    let views: Vec<serde_json::Value> = alarms.iter().map(alarm_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "alarms": views }),
    ))
}

/// `GET /api/v1/devices/{id}/history?metric=&since=&limit=`.
pub fn history(acs: &Acs, id: &str, q: &Query) -> ApiResult {
    load_device(acs, id)?;
    let metric = q.get("metric").unwrap_or(METRICS[0]);
    if !METRICS.contains(&metric) {
        return Err(ApiError::bad_request(format!(
            "`metric` is one of {}, got `{metric}`",
            METRICS.join(", ")
        )));
    }
    let limit = q.limit("limit", 1000, 10_000)?;
    let since_ms = match q.get("since") {
        None => now_ms(SystemTime::now()).saturating_sub(30 * 86_400_000),
        Some(t) => crate::cwmp::parse_datetime(t).map(now_ms).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`since` must be an RFC 3339 time such as 2026-12-06T12:00:00Z, got `{t}`"
            ))
        })?,
    };
    let samples = acs
        .store
        .samples(id, metric, since_ms, limit)
        .map_err(ApiError::internal)?;
    let points: Vec<serde_json::Value> = samples
        .iter()
        .map(|(at, v)| {
            serde_json::json!({
                "at": crate::cwmp::format_datetime(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(*at)
                ),
                "value": v,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "device_id": id, "metric": metric, "points": points }),
    ))
}

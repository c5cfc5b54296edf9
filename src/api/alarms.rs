//! `GET /api/v1/alarms` (what is open) and a device's history of readings.

use std::time::SystemTime;

use http::StatusCode;

use super::devices::load_device;
use super::{ApiError, ApiResult, Query, json_response};
use crate::app::telemetry::{METRICS, PER_NODE, WAN_IP, alarm_json, node_metric};
use crate::app::{Acs, now_ms};
use crate::history;

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

/// `GET /api/v1/devices/{id}/history?metric=&node=&since=&limit=`: the
/// readings of a numeric metric (of one mesh node with `node=MAC`), or
/// the changes of `wan_ip` (from the one in force at `since`).
pub fn history(acs: &Acs, id: &str, q: &Query) -> ApiResult {
    load_device(acs, id)?;
    let base = q.get("metric").unwrap_or(METRICS[0].0);
    let numeric = METRICS.iter().any(|(m, _)| *m == base);
    if !numeric && base != WAN_IP {
        let names: Vec<&str> = METRICS.iter().map(|(m, _)| *m).collect();
        return Err(ApiError::bad_request(format!(
            "`metric` is one of {}, {WAN_IP}, got `{base}`",
            names.join(", ")
        )));
    }
    let metric = match q.get("node") {
        None => base.to_owned(),
        Some(node) => {
            if !PER_NODE.contains(&base) {
                return Err(ApiError::bad_request(format!(
                    "`node` goes with `metric` {}, not `{base}`",
                    PER_NODE.join(" or ")
                )));
            }
            let mac = crate::identity::canonical_mac(node).ok_or_else(|| {
                ApiError::bad_request(format!("`node` must be a MAC address, got `{node}`"))
            })?;
            node_metric(base, &crate::identity::colon_mac(&mac))
        }
    };
    let metric = metric.as_str();
    let limit = q.limit("limit", 1000, 10_000)?;
    let since_ms = match q.get("since") {
        None => now_ms(SystemTime::now()).saturating_sub(30 * 86_400_000),
        Some(t) => crate::cwmp::parse_datetime(t).map(now_ms).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`since` must be an RFC 3339 time such as 2026-12-06T12:00:00Z, got `{t}`"
            ))
        })?,
    };
    let at = |ms: u64| {
        crate::cwmp::format_datetime(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
    };
    let store = acs.store.as_ref();
    let points: Vec<serde_json::Value> = match numeric {
        true => history::read(store, id, metric, since_ms, limit)
            .map_err(ApiError::internal)?
            .iter()
            .map(|p| serde_json::json!({ "at": at(p.at_ms), "value": p.value }))
            .collect(),
        false => history::read_text(store, id, metric, since_ms, limit)
            .map_err(ApiError::internal)?
            .iter()
            .map(|c| serde_json::json!({ "at": at(c.at_ms), "value": c.value }))
            .collect(),
    };
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "device_id": id,
            "metric": base,
            "node": q.get("node").and(metric.split_once(':').map(|(_, n)| n)),
            "points": points,
        }),
    ))
}

/// `GET /api/v1/fleet`: counts for Ops, by model, firmware, provisioning
/// status and online state, and the open alarms by kind. Reads every
/// device record ([`crate::store::each_device`]): seconds at a million.
pub fn fleet(acs: &Acs) -> ApiResult {
    use std::collections::BTreeMap;
    let now = now_ms(SystemTime::now());
    let mut total = 0u64;
    let mut online = 0u64;
    let mut by_model: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_firmware: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    crate::store::each_device(acs.store.as_ref(), |d| {
        total += 1;
        if super::devices::is_online(acs, &d, now) {
            online += 1;
        }
        let model = d.model_name.unwrap_or(d.identity.product_class);
        *by_model.entry(model).or_default() += 1;
        *by_firmware
            .entry(d.software_version.unwrap_or_else(|| "?".into()))
            .or_default() += 1;
        let status = serde_json::to_value(d.provisioning.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *by_status.entry(status).or_default() += 1;
        Ok(())
    })
    .map_err(ApiError::internal)?;
    let alarms = acs.store.alarms(None).map_err(ApiError::internal)?;
    let mut by_alarm: BTreeMap<String, u64> = BTreeMap::new();
    for a in &alarms {
        *by_alarm.entry(a.kind.clone()).or_default() += 1;
    }
    let open: Vec<serde_json::Value> = alarms.iter().take(200).map(alarm_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "devices": total,
            "online": online,
            "by_model": by_model,
            "by_firmware": by_firmware,
            "by_provisioning": by_status,
            "alarms": by_alarm,
            "open_alarms": open,
        }),
    ))
}

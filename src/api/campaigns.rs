//! `/api/v1/campaigns`: firmware campaigns — create one, follow it (state,
//! halt reason, counts per wave, each device's outcome), pause, resume,
//! abort. The work is `app::campaigns`'; this checks requests and shows.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, json_response, rfc3339};
use crate::app::Acs;
use crate::app::campaigns::{self, Command, CreateError, Spec, Target, state_name};
use crate::firmware::campaign::{self as logic, Waves};
use crate::store::{CampaignRecord, CampaignStop, CampaignWindow};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCampaign {
    name: String,
    file: String,
    target: Target,
    waves: WavesArg,
    #[serde(default)]
    window: Option<WindowArg>,
    #[serde(default = "default_concurrency")]
    max_concurrent: u32,
    #[serde(default)]
    stop: StopArg,
}

fn default_concurrency() -> u32 {
    50
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WavesArg {
    Percent(Vec<f64>),
    Counts { counts: Vec<u64> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowArg {
    start: String,
    end: String,
    #[serde(default = "default_zone")]
    time_zone: String,
}

fn default_zone() -> String {
    "America/Montreal".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StopArg {
    #[serde(default)]
    max_failures: Option<u64>,
    #[serde(default)]
    max_failure_percent: Option<f64>,
    #[serde(default)]
    back_online_minutes: Option<u32>,
}

fn error(e: CreateError) -> ApiError {
    match e {
        CreateError::Spec(s) => ApiError::bad_request(s.to_string()),
        CreateError::Conflict(m) => ApiError::conflict(m),
        other => ApiError::internal(other),
    }
}

/// `POST /api/v1/campaigns`: 201 with the campaign.
pub async fn create(acs: &Arc<Acs>, actor: &str, body: Value) -> ApiResult {
    let req: NewCampaign = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is {{\"name\", \"file\", \"target\": {{\"model_names\", \"software_versions\", \"tags\", \"devices\"}}, \"waves\": [1, 10, 100] or {{\"counts\": [...]}}, \"window\"?, \"max_concurrent\"?, \"stop\"?}}: {}",
            super::json_error_without_values(&e)
        ))
    })?;
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.len() > 128 {
        return Err(ApiError::bad_request("name: 1 to 128 characters"));
    }
    if !(1..=10_000).contains(&req.max_concurrent) {
        return Err(ApiError::bad_request("max_concurrent: 1 to 10000"));
    }
    let window = match req.window {
        None => None,
        Some(w) => {
            let bad = |e: logic::SpecError| ApiError::bad_request(e.to_string());
            let start_min = logic::parse_clock("window.start", &w.start).map_err(bad)?;
            let end_min = logic::parse_clock("window.end", &w.end).map_err(bad)?;
            if start_min == end_min {
                return Err(ApiError::bad_request(
                    "window: start and end are the same time",
                ));
            }
            logic::check_time_zone(&w.time_zone).map_err(bad)?;
            Some(CampaignWindow {
                start_min,
                end_min,
                time_zone: w.time_zone,
            })
        }
    };
    if let Some(p) = req.stop.max_failure_percent {
        if !(0.0..=100.0).contains(&p) {
            return Err(ApiError::bad_request("stop.max_failure_percent: 0 to 100"));
        }
    }
    let back = req.stop.back_online_minutes.unwrap_or(30);
    if !(1..=7 * 24 * 60).contains(&back) {
        return Err(ApiError::bad_request(
            "stop.back_online_minutes: 1 to 10080 (a week)",
        ));
    }
    let spec = Spec {
        name,
        file_id: req.file,
        target: req.target,
        waves: match req.waves {
            WavesArg::Percent(p) => Waves::Percent(p),
            WavesArg::Counts { counts } => Waves::Counts(counts),
        },
        window,
        max_concurrent: req.max_concurrent,
        stop: CampaignStop {
            max_failures: req.stop.max_failures,
            max_failure_percent: req.stop.max_failure_percent,
            back_online_minutes: back,
        },
    };
    let c = campaigns::create(acs, spec, actor).await.map_err(error)?;
    Ok(json_response(StatusCode::CREATED, &view(acs, &c, false)?))
}

fn clock(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// A campaign as the API shows it: with each device's outcome when
/// `devices`.
fn view(acs: &Acs, c: &CampaignRecord, devices: bool) -> Result<Value, ApiError> {
    let rows = acs
        .store
        .campaign_devices(&c.id)
        .map_err(ApiError::internal)?;
    let counts = logic::counts(c, &rows);
    let waves: Vec<Value> = counts
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"wave": i + 1, "counts": w}))
        .collect();
    let mut v = json!({
        "id": c.id,
        "name": c.name,
        "file": c.file_id,
        "version": c.version,
        "target": c.target,
        "state": state_name(c.state),
        "halt_reason": c.halt_reason,
        "wave": c.wave + 1,
        "waves": waves,
        "window": c.window.as_ref().map(|w| json!({"start": clock(w.start_min), "end": clock(w.end_min), "time_zone": w.time_zone})),
        "max_concurrent": c.max_concurrent,
        "stop": {
            "max_failures": c.stop.max_failures,
            "max_failure_percent": c.stop.max_failure_percent,
            "back_online_minutes": c.stop.back_online_minutes,
        },
        "created": rfc3339(c.created_ms),
        "created_by": c.created_by,
        "finished": c.finished_ms.map(rfc3339),
    });
    if devices {
        v["devices"] = rows
            .iter()
            .map(|r| {
                json!({
                    "device_id": r.device_id,
                    "wave": r.wave + 1,
                    "status": r.status,
                    "attempts": r.attempts,
                    "sent": r.sent_ms.map(rfc3339),
                    "finished": r.finished_ms.map(rfc3339),
                    "detail": r.detail,
                })
            })
            .collect();
    }
    Ok(v)
}

/// `GET /api/v1/campaigns`.
pub fn list(acs: &Acs) -> ApiResult {
    let mut all = acs.store.campaigns().map_err(ApiError::internal)?;
    all.sort_by_key(|c| std::cmp::Reverse(c.created_ms));
    let views = all
        .iter()
        .map(|c| view(acs, c, false))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "campaigns": views }),
    ))
}

/// `GET /api/v1/campaigns/{id}`.
pub fn get(acs: &Acs, id: &str) -> ApiResult {
    let c = acs
        .store
        .campaign(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))?;
    Ok(json_response(StatusCode::OK, &view(acs, &c, true)?))
}

/// `POST /api/v1/campaigns/{id}/pause|resume|abort`.
pub async fn command(acs: &Arc<Acs>, id: &str, cmd: Command) -> ApiResult {
    let c = campaigns::command(acs, id, cmd)
        .await
        .map_err(error)?
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))?;
    Ok(json_response(StatusCode::OK, &view(acs, &c, false)?))
}

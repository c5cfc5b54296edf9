//! Device routes: search/list, one device (with ONT diagnostics), cached
//! parameters.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::mask::mask_value;
use super::{ApiError, ApiResult, Query, decode_cursor, encode_cursor, json_response, rfc3339};
use crate::app::Acs;
use crate::app::now_ms;
use crate::connreq::CrResult;
use crate::provision::datamodel::DataModelTree;
use crate::provision::profile::Profile;
use crate::store::{DeviceRecord, search_keys};
use crate::topology::OntDiagnostics;

#[derive(Serialize)]
struct EventView<'a> {
    code: &'a str,
    command_key: &'a str,
    /// The latest Inform it stands for.
    at: String,
    /// Informs it stands for (a run of periodic ones is one entry).
    count: u32,
    /// The first of them, when there are several.
    first_at: Option<String>,
}

/// A device as the API shows it.
#[derive(Serialize)]
struct DeviceView<'a> {
    id: &'a str,
    manufacturer: &'a str,
    oui: &'a str,
    product_class: &'a str,
    serial_number: &'a str,
    model_name: Option<&'a str>,
    software_version: Option<&'a str>,
    hardware_version: Option<&'a str>,
    /// `Device.` (TR-181) or `InternetGatewayDevice.` (TR-098).
    data_model: Option<&'a str>,
    cwmp_version: String,
    first_seen: String,
    last_inform: String,
    last_boot: Option<String>,
    last_bootstrap: Option<String>,
    /// Informed within the online window (two periodic intervals + 1 min).
    online: bool,
    remote_addr: Option<&'a str>,
    connection_request_url: Option<&'a str>,
    parameter_key: Option<&'a str>,
    inform_count: u64,
    session_active: bool,
    erpnext: Option<ErpView<'a>>,
    provisioning: ProvisioningView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<OntDiagnostics>,
    /// The ONT's optical class and its alarm limits, with diagnostics
    /// that hold an optical reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    optical_class: Option<OpticalClassView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    management_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts_collected_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_request: Option<CrView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recent_events: Option<Vec<EventView<'a>>>,
}

/// Which alarm limits apply to an ONT's received power.
#[derive(Serialize)]
struct OpticalClassView {
    name: String,
    description: String,
    rx_min_dbm: f64,
    rx_max_dbm: f64,
}

/// The device's Service Equipment in ERPNext.
#[derive(Serialize)]
struct ErpView<'a> {
    equipment: &'a str,
    customer: Option<&'a str>,
    /// `Actif` once provisioning verified the device (the ACS writes it
    /// back to ERPNext), else `null`.
    status: Option<&'static str>,
    /// Link to the record in ERPNext's desk, when ERPNext is configured.
    url: Option<String>,
}

/// A connection request's result as the API shows it.
#[derive(Serialize)]
pub struct CrView {
    pub sent: bool,
    pub ok: bool,
    pub transport: &'static str,
    pub status: Option<u16>,
    pub detail: String,
    pub at: String,
}

impl From<CrResult> for CrView {
    fn from(r: CrResult) -> CrView {
        CrView {
            sent: r.sent,
            ok: r.ok,
            transport: r.transport,
            status: r.status,
            detail: r.detail,
            at: rfc3339(r.at_ms),
        }
    }
}

/// Provisioning state as Ops sees it (no credentials).
#[derive(Serialize)]
struct ProvisioningView<'a> {
    status: crate::store::ProvisionStatus,
    reason: Option<&'a str>,
    equipment: Option<&'a str>,
    candidates: &'a [String],
    profile: Option<&'a str>,
    mac: Option<&'a str>,
    gpon_serial: Option<&'a str>,
    attempts: u32,
    last_attempt: Option<String>,
    next_attempt: Option<String>,
    provisioned_at: Option<String>,
}

fn provisioning_view(p: &crate::store::ProvisioningState) -> ProvisioningView<'_> {
    ProvisioningView {
        status: p.status,
        reason: p.reason.as_deref(),
        equipment: p.equipment.as_deref(),
        candidates: &p.candidates,
        profile: p.profile.as_deref(),
        mac: p.mac.as_deref(),
        gpon_serial: p.gpon_serial.as_deref(),
        attempts: p.attempts,
        last_attempt: p.last_attempt_ms.map(rfc3339),
        next_attempt: p.next_attempt_ms.map(rfc3339),
        provisioned_at: p.provisioned_ms.map(rfc3339),
    }
}

fn erp_view<'a>(acs: &Acs, d: &'a DeviceRecord) -> Option<ErpView<'a>> {
    let p = &d.provisioning;
    let equipment = p.equipment.as_deref()?;
    Some(ErpView {
        equipment,
        customer: p.customer.as_deref(),
        status: matches!(
            p.status,
            crate::store::ProvisionStatus::Provisioned | crate::store::ProvisionStatus::NoConfig
        )
        .then_some("Actif"),
        url: acs.config.erpnext.as_ref().map(|e| {
            format!(
                "{}/app/service-equipment/{}",
                e.url,
                crate::percent::encode(equipment)
            )
        }),
    })
}

/// Whether the device informed within the online window.
pub fn is_online(acs: &Acs, d: &DeviceRecord, now_ms: u64) -> bool {
    now_ms.saturating_sub(d.last_inform_ms) <= acs.online_window_ms()
}

/// `session_active`: the device is in a session here or on another node.
fn view<'a>(acs: &Acs, d: &'a DeviceRecord, now: u64, session_active: bool) -> DeviceView<'a> {
    DeviceView {
        id: &d.id,
        manufacturer: &d.identity.manufacturer,
        oui: &d.identity.oui,
        product_class: &d.identity.product_class,
        serial_number: &d.identity.serial_number,
        model_name: d.model_name.as_deref(),
        software_version: d.software_version.as_deref(),
        hardware_version: d.hardware_version.as_deref(),
        data_model: d.root.as_deref(),
        cwmp_version: d.cwmp_version.to_string(),
        first_seen: rfc3339(d.first_seen_ms),
        last_inform: rfc3339(d.last_inform_ms),
        last_boot: d.last_boot_ms.map(rfc3339),
        last_bootstrap: d.last_bootstrap_ms.map(rfc3339),
        online: is_online(acs, d, now),
        remote_addr: d.remote_addr.as_deref(),
        connection_request_url: d.connection_request_url.as_deref(),
        parameter_key: d.parameter_key.as_deref(),
        inform_count: d.inform_count,
        session_active,
        erpnext: erp_view(acs, d),
        provisioning: provisioning_view(&d.provisioning),
        diagnostics: None,
        optical_class: None,
        management_url: None,
        hosts_collected_at: d.hosts_collected_ms.map(rfc3339),
        connection_request: None,
        recent_events: None,
    }
}

pub fn load_device(acs: &Acs, id: &str) -> Result<DeviceRecord, ApiError> {
    acs.store
        .device(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no device `{id}`")))
}

/// The device's cached values as path → value (unmasked: for the pure
/// builders only, never serialised as is).
pub fn cached_values(acs: &Acs, id: &str) -> Result<BTreeMap<String, String>, ApiError> {
    crate::store::cached_values(acs.store.as_ref(), id).map_err(ApiError::internal)
}

/// The device's effective profile and data model (`None` before its
/// first discovery).
pub fn effective_profile(
    acs: &Acs,
    device: &DeviceRecord,
    values: &BTreeMap<String, String>,
) -> Result<Option<(Profile, Arc<DataModelTree>)>, ApiError> {
    acs.provisioning
        .effective_profile(acs.store.as_ref(), &acs.catalog, device, values)
        .map_err(ApiError::internal)
}

/// 409 for a device whose data model is not known yet.
pub fn not_discovered() -> ApiError {
    ApiError::conflict(
        "the device's data model has not been discovered yet: it is learned in its next CWMP session",
    )
}

/// `GET /api/v1/devices/{id}/data-model?prefix=&limit=&cursor=`.
pub fn data_model(acs: &Acs, id: &str, q: &Query) -> ApiResult {
    let d = load_device(acs, id)?;
    let prefix = q.get("prefix").unwrap_or("");
    let limit = q.limit("limit", 2000, 10_000)?;
    let after = q.get("cursor").map(decode_cursor).transpose()?;
    let values = cached_values(acs, id)?;
    let Some((profile, tree)) = effective_profile(acs, &d, &values)? else {
        return Err(not_discovered());
    };
    let info = d.data_model.as_ref();
    let mut names = tree
        .entries_under(prefix)
        .filter(|(n, _)| after.as_deref().is_none_or(|a| *n > a));
    let page: Vec<Value> = names
        .by_ref()
        .take(limit)
        .map(|(n, w)| serde_json::json!({"name": n, "writable": w, "object": n.ends_with('.')}))
        .collect();
    let next_cursor = match names.next() {
        Some(_) => page
            .last()
            .and_then(|v| v["name"].as_str())
            .map(encode_cursor),
        None => None,
    };
    let wifi: Vec<Value> = profile
        .wifi
        .iter()
        .map(|w| {
            serde_json::json!({"band": w.band, "ssid": w.ssid, "passphrase": w.passphrase, "psk": w.psk, "enable": w.enable})
        })
        .collect();
    let sip = profile.sip.as_ref().map(|s| {
        serde_json::json!({"auth_username": s.auth_username, "auth_password": s.auth_password, "uri": s.uri, "registrar": s.registrar, "lines": s.lines})
    });
    let optical: Vec<Value> = profile
        .optical
        .iter()
        .map(|o| serde_json::json!({"rx": o.rx_power, "tx": o.tx_power, "unit": o.unit}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "device_id": d.id,
            "discovered": info.map(|i| rfc3339(i.discovered_ms)),
            "software_version": info.and_then(|i| i.software_version.clone()),
            "names": tree.len(),
            "profile": {
                "name": profile.name,
                "wifi": wifi,
                "never_write": profile.never_write,
                "sip": sip,
                "mac": profile.identity.mac,
                "gpon_serial": profile.identity.gpon_serial,
                "optical": optical,
            },
            "parameters": page,
            "next_cursor": next_cursor,
        }),
    ))
}

/// `GET /api/v1/devices?q=&limit=&cursor=`.
pub fn list(acs: &Acs, q: &Query) -> ApiResult {
    let limit = q.limit("limit", 50, 1000)?;
    let after = q.get("cursor").map(decode_cursor).transpose()?;
    let devices = match q.get("q").map(str::trim).filter(|s| !s.is_empty()) {
        None => acs
            .store
            .list_devices(after.as_deref(), limit)
            .map_err(ApiError::internal)?,
        Some(text) => {
            if text.len() > 256 {
                return Err(ApiError::bad_request("`q` is longer than 256 characters"));
            }
            let ids = acs
                .store
                .search_devices(&search_keys(text), after.as_deref(), limit)
                .map_err(ApiError::internal)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(d) = acs.store.device(&id).map_err(ApiError::internal)? {
                    out.push(d);
                }
            }
            out
        }
    };
    let next_cursor = (devices.len() == limit)
        .then(|| devices.last().map(|d| encode_cursor(&d.id)))
        .flatten();
    let now = now_ms(std::time::SystemTime::now());
    // One question to the other nodes for the whole page.
    let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    let elsewhere = acs.cluster.held_elsewhere(&ids).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot tell which devices are in session on other nodes");
        Vec::new()
    });
    let views: Vec<DeviceView<'_>> = devices
        .iter()
        .map(|d| {
            let active = acs.sessions.has_device(&d.id) || elsewhere.contains(&d.id);
            view(acs, d, now, active)
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "devices": views, "next_cursor": next_cursor }),
    ))
}

/// `GET /api/v1/devices/{id}`.
pub fn get(acs: &Acs, id: &str) -> ApiResult {
    let d = load_device(acs, id)?;
    let now = now_ms(std::time::SystemTime::now());
    let active = crate::app::service::in_session_anywhere(acs, &d.id);
    let mut v = view(acs, &d, now, active);
    v.recent_events = Some(
        d.recent_events
            .iter()
            .map(|e| EventView {
                code: &e.code,
                command_key: &e.command_key,
                at: rfc3339(e.at_ms),
                count: e.count,
                first_at: e.first_ms.map(rfc3339),
            })
            .collect(),
    );
    let values = cached_values(acs, id)?;
    if let Some((profile, _)) = effective_profile(acs, &d, &values)? {
        let diagnostics = crate::topology::diagnostics(&values, &profile);
        v.management_url = management_url(&d, &diagnostics);
        if diagnostics.optical.is_some() {
            let c = acs.config.alarm_rules.optical_class(&d);
            v.optical_class = Some(OpticalClassView {
                name: c.name,
                description: c.description,
                rx_min_dbm: c.limits.rx_min_dbm,
                rx_max_dbm: c.limits.rx_max_dbm,
            });
        }
        v.diagnostics = Some(diagnostics);
    }
    v.connection_request = acs.connreq.last_result(id).map(CrView::from);
    Ok(json_response(StatusCode::OK, &v))
}

/// The device's web interface: its first WAN IPv4 address, else the host
/// of its ConnectionRequestURL (the address it says the ACS can reach).
fn management_url(d: &DeviceRecord, diag: &OntDiagnostics) -> Option<String> {
    if let Some(a) = diag.wan_ipv4.first() {
        return Some(format!("http://{}/", a.address));
    }
    let url = reqwest::Url::parse(d.connection_request_url.as_deref()?).ok()?;
    let host = url.host_str()?;
    Some(format!("{}://{host}/", url.scheme()))
}

/// `GET /api/v1/devices/{id}/parameters?prefix=`.
pub fn parameters(acs: &Acs, id: &str, q: &Query) -> ApiResult {
    load_device(acs, id)?;
    let prefix = q.get("prefix").unwrap_or("");
    let now = now_ms(std::time::SystemTime::now());
    let params = acs
        .store
        .parameters(id, prefix)
        .map_err(ApiError::internal)?;
    let out: Vec<Value> = params
        .iter()
        .map(|(name, p)| {
            let v = p.value.as_ref();
            serde_json::json!({
                "name": name,
                "value": v.map(|v| mask_value(name, &v.value)),
                "type": v.map(|v| v.kind.as_str()),
                "writable": p.writable,
                "updated": v.map(|v| rfc3339(v.updated_ms)),
                "age_s": v.map(|v| now.saturating_sub(v.updated_ms) / 1000),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "parameters": out }),
    ))
}

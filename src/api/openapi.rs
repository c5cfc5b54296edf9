//! The OpenAPI 3.1 document, generated from [`ROUTES`] and the component
//! schemas below. Integration tests validate live responses against these
//! schemas, so a change in a response shape that is not reflected here
//! fails the build's tests.

use serde_json::{Map, Value, json};

use super::routes::{ROUTES, Route};
use super::tasks::TASK_NAMES;
use crate::events::EventKind;

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn nullable_ref(name: &str) -> Value {
    json!({"oneOf": [reference(name), {"type": "null"}]})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn array_of(item: Value) -> Value {
    json!({"type": "array", "items": item})
}

fn status_description(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted: queued, not finished yet",
        204 => "No content",
        400 => "Bad input; the message names the field",
        401 => "Missing or invalid bearer token",
        403 => {
            "Not allowed: the role is too low, the CSRF token is missing, or the account is locked or disabled"
        }
        404 => "Unknown device, task, fault, credential or user",
        409 => "Conflict with the device's state",
        429 => "Rate-limited",
        502 => "ERPNext answered with an error",
        503 => "ERPNext unavailable",
        _ => "Error",
    }
}

fn operation(r: &Route) -> Value {
    let mut parameters: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": {"type": "string"},
                "description": if name == "id" && r.path.contains("/devices/") {
                    "device id (`OUI-ProductClass-SerialNumber`), percent-encoded"
                } else {
                    "identifier"
                },
            })
        })
        .collect();
    parameters.extend(r.query.iter().map(|p| {
        json!({
            "name": p.name,
            "in": "query",
            "required": false,
            "schema": {"type": p.kind},
            "description": p.description,
        })
    }));
    let mut responses = Map::new();
    let (ok, schema) = r.ok;
    let mut success = json!({"description": status_description(ok)});
    match (schema, r.content) {
        (Some(s), _) => {
            success["content"] = json!({"application/json": {"schema": reference(s)}});
        }
        (None, Some(ct)) => {
            let media = ct.split(';').next().unwrap_or(ct).trim();
            let schema = if media == "application/json" {
                json!({"type": "object"})
            } else {
                json!({"type": "string"})
            };
            success["content"] = json!({ media: {"schema": schema} });
        }
        (None, None) => {}
    }
    responses.insert(ok.to_string(), success);
    if r.op == super::Op::CreateTask || r.op == super::Op::Reprovision {
        // Finished within `wait`.
        responses.insert(
            "200".into(),
            json!({
                "description": "Finished within `wait`",
                "content": {"application/json": {"schema": reference("ActionResult")}},
            }),
        );
    }
    let mut errors: Vec<u16> = r.errors.to_vec();
    if !r.public {
        errors.push(401);
    }
    for code in errors {
        responses.insert(
            code.to_string(),
            json!({
                "description": status_description(code),
                "content": {"application/json": {"schema": reference("Error")}},
            }),
        );
    }
    let mut op = json!({
        "operationId": r.op_id,
        "tags": [r.tag],
        "summary": r.summary,
        "parameters": parameters,
        "responses": responses,
    });
    if !r.description.is_empty() {
        op["description"] = json!(r.description);
    }
    if r.public {
        op["security"] = json!([]);
    }
    if let Some(body) = r.body {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": reference(body)}},
        });
    }
    op
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = operation(r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "gigafibre-acs Ops API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Devices, mesh topology, ONT diagnostics, provisioning, tasks, faults and live events of the gigafibre TR-069 ACS. Every /api/ route needs `Authorization: Bearer <token>`. Errors are `{\"error\": {\"code\", \"message\"}}`. Secrets (WiFi passphrases, SIP and transfer passwords) are always masked as `********`.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": schemas(),
        },
    })
}

fn task_request_schema() -> Value {
    let path = json!({"type": "string", "maxLength": 256});
    let variants: Vec<Value> = TASK_NAMES
        .iter()
        .map(|name| {
            let (required, props): (Vec<&str>, Value) = match *name {
                "getParameterValues" => (
                    vec!["parameterNames"],
                    json!({"parameterNames": array_of(path.clone())}),
                ),
                "getParameterNames" => (
                    vec!["parameterPath"],
                    json!({"parameterPath": path.clone(), "nextLevel": {"type": "boolean"}}),
                ),
                "setParameterValues" => (
                    vec!["parameterValues"],
                    json!({
                        "parameterValues": array_of(json!({"oneOf": [
                            {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3,
                             "description": "[path, value] or [path, value, type]"},
                            object(&["name", "value"], json!({
                                "name": path.clone(),
                                "value": {"type": "string"},
                                "type": {"type": "string", "description": "xsd:string, xsd:boolean, xsd:int, xsd:unsignedInt, xsd:long, xsd:unsignedLong, xsd:dateTime, xsd:base64, xsd:hexBinary; default: the cached type, else xsd:string"},
                            })),
                        ]})),
                        "parameterKey": {"type": "string", "maxLength": 32},
                    }),
                ),
                "addObject" | "deleteObject" => (
                    vec!["objectName"],
                    json!({"objectName": path.clone(), "parameterKey": {"type": "string", "maxLength": 32}}),
                ),
                "refresh" => (vec!["objectName"], json!({"objectName": path.clone()})),
                "reboot" => (
                    vec![],
                    json!({"commandKey": {"type": "string", "maxLength": 32}}),
                ),
                "factoryReset" => (vec![], json!({})),
                "download" => (
                    vec!["fileType", "url"],
                    json!({
                        "fileType": {"type": "string", "examples": ["1 Firmware Upgrade Image"]},
                        "url": {"type": "string"},
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                        "fileSize": {"type": "integer"},
                        "targetFileName": {"type": "string"},
                        "delaySeconds": {"type": "integer"},
                        "successUrl": {"type": "string"},
                        "failureUrl": {"type": "string"},
                        "commandKey": {"type": "string", "maxLength": 32},
                    }),
                ),
                _ => (vec![], json!({})),
            };
            let mut props = props;
            props["name"] = json!({"const": name});
            let mut req = vec!["name"];
            req.extend(required);
            json!({
                "title": name,
                "type": "object",
                "required": req,
                "properties": props,
                "additionalProperties": false,
            })
        })
        .collect();
    json!({"oneOf": variants})
}

fn schemas() -> Value {
    let s = |t: &str| json!({"type": t});
    let time = json!({"type": "string", "format": "date-time"});
    let ntime = nullable("string");
    let task_status = json!({"type": "string", "enum": ["pending", "sent", "awaiting_completion", "done", "failed", "cancelled"]});
    // One entry of a device's recent events (a run of periodic Informs is
    // one entry with its count and first time).
    let event = object(
        &["code", "command_key", "at", "count", "first_at"],
        json!({
            "code": s("string"), "command_key": s("string"), "at": time.clone(),
            "count": s("integer"), "first_at": ntime.clone(),
        }),
    );
    let provision_status = json!({"type": "string", "enum": ["pending", "provisioned", "no_config", "unresolved", "ambiguous", "deferred", "fault", "no_profile"]});
    let client = object(
        &[
            "mac",
            "ip",
            "hostname",
            "connection",
            "signal_dbm",
            "signal_quality",
            "active",
            "node_mac",
        ],
        json!({
            "mac": {"type": "string", "description": "aa:bb:cc:dd:ee:ff"},
            "ip": nullable("string"),
            "hostname": nullable("string"),
            "connection": {"type": "string", "enum": ["wifi_2.4ghz", "wifi_5ghz", "wifi_6ghz", "wifi", "ethernet", "unknown"]},
            "signal_dbm": {"type": ["number", "null"], "description": "received signal, dBm"},
            "signal_quality": {"type": ["integer", "null"], "minimum": 0, "maximum": 100, "description": "linear: -90 dBm = 0 %, -40 dBm = 100 %"},
            "active": nullable("boolean"),
            "node_mac": nullable("string"),
        }),
    );
    let optical_class = object(
        &["name", "description", "rx_min_dbm", "rx_max_dbm"],
        json!({
            "name": s("string"), "description": s("string"),
            "rx_min_dbm": s("number"), "rx_max_dbm": s("number"),
        }),
    );
    let mut all = json!({
        "Health": object(&["status"], json!({"status": s("string")})),
        "Error": object(&["error"], json!({"error": object(&["code", "message"], json!({
            "code": {"type": "string", "examples": ["bad_request", "not_found", "conflict", "unauthorized", "erpnext_unavailable"]},
            "message": s("string"),
        }))})),
        "ConnectionRequestResult": object(&["sent", "ok", "transport", "status", "detail", "at"], json!({
            "sent": s("boolean"),
            "ok": s("boolean"),
            "transport": {"type": "string", "enum": ["http", "udp", "none"]},
            "status": nullable("integer"),
            "detail": s("string"),
            "at": time.clone(),
        })),
        "ErpLink": object(&["equipment", "customer", "status", "url"], json!({
            "equipment": s("string"),
            "customer": nullable("string"),
            "status": nullable("string"),
            "url": nullable("string"),
        })),
        "Provisioning": object(&["status", "reason", "equipment", "candidates", "profile", "attempts"], json!({
            "status": provision_status,
            "reason": nullable("string"),
            "equipment": nullable("string"),
            "candidates": array_of(s("string")),
            "profile": nullable("string"),
            "mac": nullable("string"),
            "gpon_serial": nullable("string"),
            "attempts": s("integer"),
            "last_attempt": ntime.clone(),
            "next_attempt": ntime.clone(),
            "provisioned_at": ntime.clone(),
        })),
        "WanAddress": object(&["address", "path", "interface"], json!({
            "address": s("string"),
            "path": s("string"),
            "interface": nullable("string"),
        })),
        "Optical": object(&["rx_dbm", "tx_dbm", "rx_raw", "tx_raw", "unit", "status"], json!({
            "rx_dbm": {"type": ["number", "null"], "description": "received optical power, dBm"},
            "tx_dbm": {"type": ["number", "null"], "description": "transmitted optical power, dBm"},
            "rx_raw": nullable("string"),
            "tx_raw": nullable("string"),
            "unit": {"type": "string", "description": "unit of the raw values: 0.1uW, 0.001dBm, 0.1dBm or dBm"},
            "status": nullable("string"),
        })),
        "OntDiagnostics": object(&["optical", "wan_ipv4", "wan_ipv6"], json!({
            "optical": nullable_ref("Optical"),
            "wan_ipv4": array_of(reference("WanAddress")),
            "wan_ipv6": array_of(reference("WanAddress")),
        })),
        "Device": object(&["id", "manufacturer", "oui", "product_class", "serial_number", "cwmp_version", "first_seen", "last_inform", "online", "inform_count", "session_active", "provisioning"], json!({
            "id": s("string"),
            "manufacturer": s("string"),
            "oui": s("string"),
            "product_class": s("string"),
            "serial_number": s("string"),
            "model_name": nullable("string"),
            "software_version": nullable("string"),
            "hardware_version": nullable("string"),
            "data_model": nullable("string"),
            "cwmp_version": s("string"),
            "first_seen": time.clone(),
            "last_inform": time.clone(),
            "last_boot": ntime.clone(),
            "last_bootstrap": ntime.clone(),
            "online": s("boolean"),
            "remote_addr": nullable("string"),
            "connection_request_url": nullable("string"),
            "parameter_key": nullable("string"),
            "inform_count": s("integer"),
            "session_active": s("boolean"),
            "erpnext": nullable_ref("ErpLink"),
            "provisioning": reference("Provisioning"),
            "diagnostics": reference("OntDiagnostics"),
            "management_url": s("string"),
            "hosts_collected_at": time.clone(),
            "connection_request": reference("ConnectionRequestResult"),
            "recent_events": array_of(event),
        })),
        "DeviceList": object(&["devices", "next_cursor"], json!({
            "devices": array_of(reference("Device")),
            "next_cursor": nullable("string"),
        })),
        "ParameterList": object(&["parameters"], json!({
            "parameters": array_of(object(&["name", "value", "type", "writable", "updated", "age_s"], json!({
                "name": s("string"),
                "value": nullable("string"),
                "type": nullable("string"),
                "writable": nullable("boolean"),
                "updated": ntime.clone(),
                "age_s": nullable("integer"),
            }))),
        })),
        "DataModel": object(&["device_id", "discovered", "software_version", "names", "profile", "parameters", "next_cursor"], json!({
            "device_id": s("string"),
            "discovered": ntime.clone(),
            "software_version": nullable("string"),
            "names": {"type": "integer", "description": "names in the stored data model"},
            "profile": {"type": "object", "description": "what provisioning found: `name` (family profile or generic-tr181/generic-tr098), `wifi` (band, ssid, passphrase or psk path, enable), `sip` (line paths with {line}), `mac`/`gpon_serial` candidate paths, `optical` (rx, tx, unit)"},
            "parameters": array_of(object(&["name", "writable", "object"], json!({
                "name": s("string"),
                "writable": s("boolean"),
                "object": s("boolean"),
            }))),
            "next_cursor": nullable("string"),
        })),
        "Client": client,
        "Backhaul": object(&["link", "signal_dbm", "signal_quality"], json!({
            "link": {"type": "string", "description": "wifi, ethernet, or as reported"},
            "signal_dbm": nullable("number"),
            "signal_quality": nullable("integer"),
        })),
        "MeshNode": object(&["mac", "role", "model", "hostname", "ip", "active", "backhaul", "clients"], json!({
            "mac": s("string"),
            "role": {"type": "string", "enum": ["controller", "satellite"]},
            "model": nullable("string"),
            "hostname": nullable("string"),
            "ip": nullable("string"),
            "active": nullable("boolean"),
            "backhaul": nullable_ref("Backhaul"),
            "clients": array_of(reference("Client")),
        })),
        "ImportReport": object(&["dry_run", "documents", "devices", "created", "updated", "unchanged", "live_here", "invalid", "parameters", "truncated"], json!({
            "dry_run": s("boolean"),
            "documents": s("integer"),
            "devices": s("integer"),
            "created": s("integer"),
            "updated": s("integer"),
            "unchanged": s("integer"),
            "live_here": array_of(s("string")),
            "invalid": array_of(object(&["document", "reason"], json!({
                "document": s("integer"),
                "reason": s("string"),
            }))),
            "parameters": s("integer"),
            "truncated": array_of(s("string")),
            "renamed": array_of(object(&["genieacs_id", "id"], json!({
                "genieacs_id": s("string"),
                "id": s("string"),
            }))),
        })),
        "Totals": object(&["wifi_direct", "wifi_via_mesh", "wired", "all"], json!({
            "wifi_direct": s("integer"),
            "wifi_via_mesh": s("integer"),
            "wired": s("integer"),
            "all": s("integer"),
        })),
        "Hosts": object(&["device_id", "profile", "collected_at", "age_s", "nodes", "unplaced", "totals", "refresh"], json!({
            "device_id": s("string"),
            "profile": s("string"),
            "collected_at": ntime.clone(),
            "age_s": nullable("integer"),
            "nodes": array_of(reference("MeshNode")),
            "unplaced": array_of(reference("Client")),
            "totals": reference("Totals"),
            "refresh": nullable_ref("ActionResult"),
        })),
        "ProvisionPreview": object(&["device_id", "profile", "equipment", "customer", "parameter_key", "up_to_date", "changes", "invalid", "note"], json!({
            "device_id": s("string"),
            "profile": s("string"),
            "equipment": nullable("string"),
            "customer": nullable("string"),
            "parameter_key": s("string"),
            "up_to_date": s("boolean"),
            "changes": array_of(object(&["name", "value", "type", "secret"], json!({
                "name": s("string"), "value": s("string"), "type": s("string"), "secret": s("boolean"),
            }))),
            "invalid": array_of(object(&["field", "reason"], json!({"field": s("string"), "reason": s("string")}))),
            "note": nullable("string"),
        })),
        "Task": object(&["id", "device_id", "name", "rpc", "request", "status", "created", "updated", "attempts", "response", "fault", "outcome"], json!({
            "id": s("integer"),
            "device_id": s("string"),
            "name": s("string"),
            "rpc": s("string"),
            "request": {"description": "the RPC in the codec's JSON form, or the action name"},
            "status": task_status,
            "created": time.clone(),
            "updated": time.clone(),
            "attempts": s("integer"),
            "response": {"description": "the CPE's response in the codec's JSON form, once done"},
            "fault": {"oneOf": [object(&["code", "message"], json!({"code": s("integer"), "message": s("string")})), {"type": "null"}]},
            "outcome": nullable("string"),
        })),
        "TaskList": object(&["tasks"], json!({"tasks": array_of(reference("Task"))})),
        "TaskRequest": task_request_schema(),
        "ActionResult": object(&["task", "connection_request"], json!({
            "task": reference("Task"),
            "connection_request": nullable_ref("ConnectionRequestResult"),
        })),
        "Fault": object(&["id", "device_id", "at", "source", "code", "message", "rpc", "task_id"], json!({
            "id": s("integer"),
            "device_id": s("string"),
            "at": time.clone(),
            "source": {"type": "string", "enum": ["cpe", "acs", "provisioning"]},
            "code": s("integer"),
            "message": s("string"),
            "rpc": nullable("string"),
            "task_id": nullable("integer"),
        })),
        "FaultList": object(&["faults"], json!({"faults": array_of(reference("Fault"))})),
        "FaultRetry": object(&["deleted", "retry_task"], json!({
            "deleted": reference("Fault"),
            "retry_task": nullable_ref("Task"),
        })),
        "Event": object(&["id", "type", "device_id", "at", "data"], json!({
            "id": s("integer"),
            "type": {"type": "string", "enum": EventKind::ALL.map(EventKind::as_str)},
            "device_id": s("string"),
            "at": time.clone(),
            "data": {"type": "object"},
        })),
        "CpeCredential": {
            "type": "object",
            "required": ["password"],
            "properties": {"password": {"type": "string", "minLength": 8}, "device_id": {"type": "string"}},
            "additionalProperties": false,
        },
    });
    // Added here: one more field in the `json!` above exceeds its macro recursion limit.
    all["Device"]["properties"]["optical_class"] = optical_class;
    if let Value::Object(m) = &mut all {
        m.extend(account_schemas());
    }
    all
}

/// The schemas of the accounts routes (login, users, audit).
fn account_schemas() -> Map<String, Value> {
    let s = |t: &str| json!({"type": t});
    let time = json!({"type": "string", "format": "date-time"});
    let v = json!({
        "AlarmList": object(&["alarms"], json!({"alarms": array_of(object(
            &["device_id", "kind", "raised_at", "value", "threshold"],
            json!({
                "device_id": s("string"),
                "kind": {"type": "string", "enum": ["optical_rx_low", "optical_rx_high", "boot_loop", "silent", "provisioning_failed"]},
                "raised_at": time.clone(),
                "value": {"type": ["number", "null"]},
                "threshold": {"type": ["number", "null"]},
            }),
        ))})),
        "Fleet": object(&["devices", "online", "by_model", "by_firmware", "by_provisioning", "alarms", "open_alarms"], json!({
            "devices": s("integer"),
            "online": s("integer"),
            "by_model": {"type": "object", "additionalProperties": s("integer")},
            "by_firmware": {"type": "object", "additionalProperties": s("integer")},
            "by_provisioning": {"type": "object", "additionalProperties": s("integer")},
            "alarms": {"type": "object", "additionalProperties": s("integer")},
            "open_alarms": {"type": "array"},
        })),
        "History": object(&["device_id", "metric", "points"], json!({
            "device_id": s("string"),
            "metric": s("string"),
            "node": {"type": ["string", "null"], "description": "the mesh node, aa:bb:cc:dd:ee:ff"},
            "points": array_of(object(&["at", "value"], json!({"at": time.clone(), "value": {"type": ["number", "string"], "description": "a number; for wan_ip the addresses"}}))),
        })),
        "LoginRequest": {
            "type": "object",
            "required": ["username", "password"],
            "properties": {"username": s("string"), "password": s("string")},
            "additionalProperties": false,
        },
        "Me": object(&["user", "role", "csrf_token"], json!({
            "user": {"type": "string", "description": "the user, or `token:` and the start of the token's hash"},
            "role": {"type": "string", "enum": ["technician", "ops", "admin"]},
            "csrf_token": {"type": ["string", "null"], "description": "send in X-CSRF-Token with every write made with the session cookie"},
        })),
        "User": object(&["name", "role", "disabled", "created", "locked"], json!({
            "name": s("string"),
            "role": {"type": "string", "enum": ["technician", "ops", "admin"]},
            "disabled": s("boolean"),
            "created": time.clone(),
            "locked": s("boolean"),
        })),
        "UserList": object(&["users"], json!({"users": array_of(reference("User"))})),
        "IssuedToken": object(&["name", "role", "created", "created_by"], json!({
            "name": s("string"),
            "role": {"type": "string", "enum": ["technician", "ops", "admin"]},
            "created": time.clone(),
            "created_by": s("string"),
        })),
        "IssuedTokenSecret": object(&["name", "role", "created", "created_by", "token"], json!({
            "name": s("string"),
            "role": {"type": "string", "enum": ["technician", "ops", "admin"]},
            "created": time.clone(),
            "created_by": s("string"),
            "token": {"type": "string", "description": "shown this once"},
        })),
        "File": object(&["id", "name", "model", "version", "size", "sha256", "url", "created", "created_by"], json!({
            "id": s("string"),
            "name": s("string"),
            "model": nullable("string"),
            "version": nullable("string"),
            "size": s("integer"),
            "sha256": s("string"),
            "url": {"type": ["string", "null"], "description": "where devices fetch it when the ACS does not serve it"},
            "created": time.clone(),
            "created_by": s("string"),
        })),
        "FileList": object(&["files"], json!({"files": array_of(reference("File"))})),
        "Campaign": object(&["id", "name", "file", "version", "target", "state", "halt_reason", "wave", "waves", "window", "max_concurrent", "stop", "created", "created_by", "finished"], json!({
            "id": s("string"), "name": s("string"), "file": s("string"), "version": s("string"),
            "target": s("object"),
            "state": {"type": "string", "enum": ["running", "paused", "halted", "done", "aborted"]},
            "halt_reason": nullable("string"),
            "wave": {"type": "integer", "description": "the wave being rolled out, from 1"},
            "waves": {"type": "array", "items": s("object")},
            "window": {"type": ["object", "null"]},
            "max_concurrent": s("integer"),
            "stop": s("object"),
            "created": time.clone(), "created_by": s("string"), "finished": nullable("string"),
            "devices": {"type": "array", "items": s("object"), "description": "each device's outcome (one campaign only)"},
        })),
        "CampaignList": object(&["campaigns"], json!({"campaigns": array_of(reference("Campaign"))})),
        "NewCampaign": {"type": "object", "required": ["name", "file", "target", "waves"]},
        "TokenList": object(&["tokens"], json!({"tokens": array_of(reference("IssuedToken"))})),
        "NewToken": {
            "type": "object",
            "required": ["name", "role"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
                "role": {"type": "string", "enum": ["technician", "ops", "admin"]},
            },
            "additionalProperties": false,
        },
        "NewUser": {
            "type": "object",
            "required": ["name", "role", "password"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
                "role": {"type": "string", "enum": ["technician", "ops", "admin"]},
                "password": {"type": "string", "minLength": 12},
                "replace": s("boolean"),
            },
            "additionalProperties": false,
        },
        "AuditList": object(&["entries"], json!({"entries": array_of(object(
            &["id", "at", "user", "role", "action", "device_id", "status"],
            json!({
                "id": s("integer"),
                "at": time.clone(),
                "user": s("string"),
                "role": {"type": "string", "enum": ["technician", "ops", "admin"]},
                "action": s("string"),
                "device_id": nullable("string"),
                "status": s("integer"),
            }),
        ))})),
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `v` points at a defined schema.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn document_is_consistent() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut found = Vec::new();
        refs(&doc, &mut found);
        for r in &found {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling {r}"
            );
        }
        // Every route is documented with its path parameters.
        for r in ROUTES {
            let op = &doc["paths"][r.path][r.method.to_ascii_lowercase()];
            assert_eq!(op["operationId"], r.op_id, "{} {}", r.method, r.path);
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let in_path = r.path.matches('{').count();
            assert_eq!(declared.len(), in_path, "{}", r.path);
            assert!(!op["responses"].as_object().unwrap().is_empty());
        }
    }
}

//! One simulated CPE: its data model, the events it has to report, how it
//! answers each ACS request, and what it does after a session (reboot,
//! factory reset, transfers, scheduled informs). No I/O except the state
//! file.

use std::path::PathBuf;
use std::time::SystemTime;

use gigafibre_acs::cwmp::rpc::*;
use gigafibre_acs::cwmp::{Body, Envelope, ValueType, format_datetime};
use serde::{Deserialize, Serialize};

use crate::datamodel::{DataModel, Param, cpe_fault};
use crate::quirks::Quirks;

/// Something the device does once the session is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Reboot {
        command_key: String,
    },
    FactoryReset,
    ScheduleInform {
        delay_s: u32,
        command_key: String,
    },
    Transfer {
        download: bool,
        command_key: String,
        file_type: String,
        url: String,
        delay_s: u32,
    },
}

/// Sets a `ManagementServer.` leaf of `model` (typically the factory tree,
/// before any device is made from it), adding it with type `kind` and
/// writability `writable` if the model file lacks it.
pub fn set_management(
    model: &mut DataModel,
    leaf: &str,
    value: &str,
    kind: ValueType,
    writable: bool,
) {
    let path = format!("{}ManagementServer.{leaf}", model.root());
    if model.set_local(&path, value).is_none() && !model.params.contains_key(&path) {
        model.insert_param(
            &path,
            Param {
                value: value.to_owned(),
                kind,
                writable,
                notification: 0,
                access_list: Vec::new(),
            },
        );
    }
}

/// What survives a restart of the simulator (the device's flash).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    bootstrapped: bool,
    pending: Vec<EventStruct>,
    transfer_complete: Option<TransferComplete>,
    model: Option<DataModel>,
    /// The last sessions, for tests and people to look at.
    #[serde(default)]
    log: Vec<SessionLog>,
}

/// One session as the device saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLog {
    /// Event codes of its Inform.
    pub events: Vec<String>,
    /// The ACS's requests, in order.
    pub methods: Vec<String>,
    /// CWMP fault codes the device answered with.
    pub faults: Vec<u32>,
}

/// Sessions kept in the log.
const LOG_SESSIONS: usize = 32;

pub struct Device {
    pub device_id: DeviceIdStruct,
    pub model: DataModel,
    factory: DataModel,
    pub quirks: Quirks,
    pending: Vec<EventStruct>,
    bootstrapped: bool,
    transfer_complete: Option<TransferComplete>,
    actions: Vec<Action>,
    retry_count: u32,
    state_file: Option<PathBuf>,
    /// Sessions that got an InformResponse.
    pub sessions: u64,
    /// The last sessions (saved with the state).
    pub log: Vec<SessionLog>,
}

/// Methods this CPE supports (answer to GetRPCMethods).
const CPE_METHODS: &[&str] = &[
    "GetRPCMethods",
    "SetParameterValues",
    "GetParameterValues",
    "GetParameterNames",
    "SetParameterAttributes",
    "GetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "Download",
    "Upload",
    "FactoryReset",
    "ScheduleInform",
    "GetQueuedTransfers",
    "GetAllQueuedTransfers",
];

impl Device {
    /// A device with `factory` as its factory state. With a state file that
    /// exists, the device restarts (`1 BOOT`); without, it is new
    /// (`0 BOOTSTRAP` + `1 BOOT`).
    pub fn new(
        factory: DataModel,
        quirks: Quirks,
        state_file: Option<PathBuf>,
    ) -> Result<Device, String> {
        let saved: Option<Saved> = match &state_file {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("reading {}: {e}", p.display()))?;
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| format!("{} is not a cpe-sim state file: {e}", p.display()))?,
                )
            }
            _ => None,
        };
        let read = |m: &DataModel, leaf: &str| {
            m.get(&format!("{}{leaf}", m.root()))
                .map(|v| v.into_owned())
                .unwrap_or_default()
        };
        let device_id = DeviceIdStruct {
            manufacturer: read(&factory, "DeviceInfo.Manufacturer"),
            oui: read(&factory, "DeviceInfo.ManufacturerOUI"),
            product_class: read(&factory, "DeviceInfo.ProductClass"),
            serial_number: read(&factory, "DeviceInfo.SerialNumber"),
        };
        let mut d = Device {
            device_id,
            model: factory.clone(),
            factory,
            quirks,
            pending: Vec::new(),
            bootstrapped: false,
            transfer_complete: None,
            actions: Vec::new(),
            retry_count: 0,
            state_file,
            sessions: 0,
            log: saved.as_ref().map(|s| s.log.clone()).unwrap_or_default(),
        };
        match saved {
            Some(s) => {
                d.bootstrapped = s.bootstrapped;
                d.pending = s.pending;
                d.transfer_complete = s.transfer_complete;
                if let Some(mut m) = s.model {
                    m.vars = d.factory.vars.clone();
                    d.model = m;
                }
                if !d.bootstrapped {
                    d.add_event("0 BOOTSTRAP", "");
                }
                d.add_event("1 BOOT", "");
            }
            None => {
                d.add_event("0 BOOTSTRAP", "");
                d.add_event("1 BOOT", "");
            }
        }
        Ok(d)
    }

    /// A device another ACS bootstrapped before (moved from GenieACS): its
    /// first start is not a `0 BOOTSTRAP`, and nothing is pending until a
    /// connection request or its periodic interval. No effect on a device
    /// restored from a state file.
    pub fn managed_before(&mut self) {
        if self.sessions == 0 && !self.bootstrapped && self.log.is_empty() {
            self.bootstrapped = true;
            self.pending.clear();
        }
    }

    /// Queues an event for the next Inform. Single events (`0`–`9 …`) are
    /// kept once; `M …` events once per CommandKey.
    pub fn add_event(&mut self, code: &str, command_key: &str) {
        if self
            .pending
            .iter()
            .any(|e| e.event_code == code && e.command_key == command_key)
        {
            return;
        }
        self.pending.push(EventStruct::new(code, command_key));
    }

    pub fn pending_events(&self) -> &[EventStruct] {
        &self.pending
    }

    /// The Inform for the next session.
    pub fn inform(&self) -> Envelope {
        let mut events = self.pending.clone();
        if events.is_empty() {
            events.push(EventStruct::new("2 PERIODIC", ""));
        }
        let mut body: Body = Inform {
            device_id: self.device_id.clone(),
            events,
            max_envelopes: 1,
            current_time: format_datetime(SystemTime::now()),
            retry_count: self.retry_count,
            parameters: self.model.inform_parameters(),
        }
        .into();
        self.quirks.apply_values(&mut body);
        Envelope::new(
            self.quirks.cwmp_version,
            Some(format!("cpe-{}", self.sessions + 1)),
            body,
        )
    }

    /// The ACS accepted the Inform: the events are delivered.
    pub fn inform_acknowledged(&mut self) {
        self.pending.clear();
        self.bootstrapped = true;
        self.retry_count = 0;
        self.sessions += 1;
    }

    /// Records a finished session in the log of a device that keeps a
    /// state file (fleets of thousands without one keep no log).
    pub fn record_session(&mut self, entry: SessionLog) {
        if self.state_file.is_none() {
            return;
        }
        self.log.push(entry);
        let excess = self.log.len().saturating_sub(LOG_SESSIONS);
        self.log.drain(..excess);
    }

    /// The session failed before the InformResponse: events stay queued.
    pub fn session_failed(&mut self) {
        self.retry_count = self.retry_count.saturating_add(1);
    }

    pub fn retry_count(&self) -> u32 {
        self.retry_count
    }

    /// A `ManagementServer.` value of the current model ("" when absent).
    pub fn management(&self, leaf: &str) -> String {
        let path = format!("{}ManagementServer.{leaf}", self.model.root());
        self.model
            .get(&path)
            .map(|v| v.into_owned())
            .unwrap_or_default()
    }

    /// The connection-request (username, password) the model holds now:
    /// what a real CPE checks incoming connection requests against.
    pub fn connection_request_credentials(&self) -> (String, String) {
        (
            self.management("ConnectionRequestUsername"),
            self.management("ConnectionRequestPassword"),
        )
    }

    /// The device itself sets a `ManagementServer.` value (STUN results and
    /// the like), adding the parameter (a read-only string) if the model
    /// lacks it. Returns its notification level if the value changed.
    pub fn set_management(&mut self, leaf: &str, value: &str) -> Option<u32> {
        let path = format!("{}ManagementServer.{leaf}", self.model.root());
        if !self.model.params.contains_key(&path) {
            set_management(&mut self.model, leaf, value, ValueType::String, false);
            return Some(0);
        }
        self.model.set_local(&path, value)
    }

    /// A TransferComplete to send in this session, if a transfer finished.
    pub fn transfer_complete(&self) -> Option<TransferComplete> {
        self.transfer_complete.clone()
    }

    pub fn transfer_complete_delivered(&mut self) {
        self.transfer_complete = None;
    }

    /// Answers one ACS request as this CPE would.
    pub fn handle(&mut self, request: Body) -> Body {
        let result: Result<Body, gigafibre_acs::cwmp::Fault> = match request {
            Body::GetRPCMethods(_) => Ok(GetRPCMethodsResponse {
                methods: CPE_METHODS.iter().map(|s| s.to_string()).collect(),
            }
            .into()),
            Body::GetParameterNames(r) => self
                .model
                .get_names(&r.parameter_path, r.next_level)
                .map(Into::into),
            Body::GetParameterValues(r)
                if self.quirks.no_partial_paths
                    && r.names.iter().any(|n| n.is_empty() || n.ends_with('.')) =>
            {
                Err(crate::datamodel::cpe_fault(
                    9005,
                    "partial paths are not supported",
                ))
            }
            Body::GetParameterValues(r) => self.model.get_values(&r.names).map(|r| {
                let mut b: Body = r.into();
                self.quirks.apply_values(&mut b);
                b
            }),
            Body::SetParameterValues(r) => self
                .model
                .set_values(&r.parameters, &r.parameter_key)
                .map(Into::into),
            Body::GetParameterAttributes(r) => self.model.get_attributes(&r.names).map(Into::into),
            Body::SetParameterAttributes(r) => self
                .model
                .set_attributes(&r.parameters)
                .map(|()| SetParameterAttributesResponse {}.into()),
            Body::AddObject(r) => self
                .model
                .add_object(&r.object_name, &r.parameter_key)
                .map(Into::into),
            Body::DeleteObject(r) => self
                .model
                .delete_object(&r.object_name, &r.parameter_key)
                .map(Into::into),
            Body::Reboot(r) => {
                self.actions.push(Action::Reboot {
                    command_key: r.command_key,
                });
                Ok(RebootResponse {}.into())
            }
            Body::FactoryReset(_) => {
                self.actions.push(Action::FactoryReset);
                Ok(FactoryResetResponse {}.into())
            }
            Body::ScheduleInform(r) => {
                self.actions.push(Action::ScheduleInform {
                    delay_s: r.delay_seconds,
                    command_key: r.command_key,
                });
                Ok(ScheduleInformResponse {}.into())
            }
            Body::Download(r) => self
                .start_transfer(true, r.command_key, r.file_type, r.url, r.delay_seconds)
                .map(|()| {
                    DownloadResponse(TransferResponse {
                        status: 1,
                        start_time: "0001-01-01T00:00:00Z".into(),
                        complete_time: "0001-01-01T00:00:00Z".into(),
                    })
                    .into()
                }),
            Body::Upload(r) => self
                .start_transfer(false, r.command_key, r.file_type, r.url, r.delay_seconds)
                .map(|()| {
                    UploadResponse(TransferResponse {
                        status: 1,
                        start_time: "0001-01-01T00:00:00Z".into(),
                        complete_time: "0001-01-01T00:00:00Z".into(),
                    })
                    .into()
                }),
            Body::GetQueuedTransfers(_) => Ok(GetQueuedTransfersResponse {
                transfers: self
                    .queued_transfers()
                    .map(|(k, _)| QueuedTransfer {
                        command_key: k,
                        state: 1,
                    })
                    .collect(),
            }
            .into()),
            Body::GetAllQueuedTransfers(_) => Ok(GetAllQueuedTransfersResponse {
                transfers: self
                    .queued_transfers()
                    .map(|(command_key, (download, file_type))| AllQueuedTransfer {
                        command_key,
                        state: 1,
                        is_download: download,
                        file_type,
                        file_size: 0,
                        target_file_name: String::new(),
                    })
                    .collect(),
            }
            .into()),
            Body::CancelTransfer(r) => {
                let before = self.actions.len();
                self.actions.retain(|a| !matches!(a, Action::Transfer { command_key, .. } if *command_key == r.command_key));
                if self.actions.len() == before {
                    Err(cpe_fault(9021, "no such transfer queued"))
                } else {
                    Ok(CancelTransferResponse {}.into())
                }
            }
            other => Err(cpe_fault(
                9000,
                &format!("{} is not supported by this CPE", other.name()),
            )),
        };
        match result {
            Ok(b) => b,
            Err(f) => Body::Fault(f),
        }
    }

    fn queued_transfers(&self) -> impl Iterator<Item = (String, (bool, String))> + '_ {
        self.actions.iter().filter_map(|a| match a {
            Action::Transfer {
                download,
                command_key,
                file_type,
                ..
            } => Some((command_key.clone(), (*download, file_type.clone()))),
            _ => None,
        })
    }

    fn start_transfer(
        &mut self,
        download: bool,
        command_key: String,
        file_type: String,
        url: String,
        delay_s: u32,
    ) -> Result<(), gigafibre_acs::cwmp::Fault> {
        if url.is_empty() {
            return Err(cpe_fault(9003, "URL is empty"));
        }
        self.actions.push(Action::Transfer {
            download,
            command_key,
            file_type,
            url,
            delay_s,
        });
        Ok(())
    }

    /// What to do now the session is over.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Carries an action out (after its delay, which the runner waits).
    /// Reboots and firmware downloads restart the device; all actions queue
    /// the events they are reported with.
    pub fn perform(&mut self, action: Action) {
        match action {
            Action::Reboot { command_key } => {
                self.add_event("1 BOOT", "");
                self.add_event("M Reboot", &command_key);
            }
            Action::FactoryReset => {
                self.model = self.factory.clone();
                self.bootstrapped = false;
                self.transfer_complete = None;
                self.pending.clear();
                self.add_event("0 BOOTSTRAP", "");
                self.add_event("1 BOOT", "");
            }
            Action::ScheduleInform { command_key, .. } => {
                self.add_event("3 SCHEDULED", "");
                self.add_event("M ScheduleInform", &command_key);
            }
            Action::Transfer {
                download,
                command_key,
                file_type,
                url,
                ..
            } => {
                let start = format_datetime(SystemTime::now());
                let supported = ["http://", "https://", "ftp://"]
                    .iter()
                    .any(|s| url.starts_with(s));
                let fault = if supported {
                    TransferFault {
                        fault_code: 0,
                        fault_string: String::new(),
                    }
                } else {
                    TransferFault {
                        fault_code: 9013,
                        fault_string: "Unsupported protocol for file transfer".into(),
                    }
                };
                let firmware = download && file_type.starts_with("1 ") && fault.fault_code == 0;
                if firmware {
                    self.add_event("1 BOOT", "");
                }
                self.add_event("7 TRANSFER COMPLETE", "");
                self.add_event(
                    if download { "M Download" } else { "M Upload" },
                    &command_key,
                );
                self.transfer_complete = Some(TransferComplete {
                    command_key,
                    fault,
                    start_time: start,
                    complete_time: format_datetime(SystemTime::now()),
                });
            }
        }
    }

    /// Writes the state file, if any (atomically). The model is saved only
    /// once it differs from the factory one.
    pub fn save(&self) -> Result<(), String> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let saved = Saved {
            bootstrapped: self.bootstrapped,
            pending: self.pending.clone(),
            transfer_complete: self.transfer_complete.clone(),
            model: (self.model.params != self.factory.params
                || self.model.objects != self.factory.objects)
                .then(|| self.model.clone()),
            log: self.log.clone(),
        };
        let json = serde_json::to_vec(&saved).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Forgets the saved state (a factory reset wipes the flash).
    pub fn wipe_state(&self) {
        if let Some(p) = &self.state_file {
            let _ = std::fs::remove_file(p);
        }
    }
}

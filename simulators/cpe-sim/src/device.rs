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
use crate::transfer::{Behaviour, Transfer, Verdict};

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
    /// A Download (fetched by [`crate::transfer::spawn`], then
    /// [`Device::finish_download`]) or an Upload ([`Device::perform`]).
    Transfer(Transfer),
    /// A boot-looping device reboots once more.
    BootLoop,
}

/// What the device loop does once a download is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDownload {
    /// Open a session now (to send the TransferComplete).
    Session,
    /// Reboot (the boot delay), then open a session.
    Reboot,
    /// Reboot, and again every boot-loop period after each session.
    BootLoop,
    /// Go silent for good.
    Dead,
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
    /// Installed a boot-looping image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    boot_loop: bool,
    /// Installed an image that killed it (`behaviour=vanish`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    dead: bool,
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
    boot_loop: bool,
    dead: bool,
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
            boot_loop: false,
            dead: false,
        };
        match saved {
            Some(s) => {
                d.bootstrapped = s.bootstrapped;
                d.pending = s.pending;
                d.transfer_complete = s.transfer_complete;
                d.boot_loop = s.boot_loop;
                d.dead = s.dead;
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
                .start_transfer(Transfer {
                    download: true,
                    command_key: r.command_key,
                    file_type: r.file_type,
                    url: r.url,
                    username: r.username,
                    password: r.password,
                    file_size: r.file_size,
                    delay_s: r.delay_seconds,
                })
                .map(|()| {
                    DownloadResponse(TransferResponse {
                        status: 1,
                        start_time: "0001-01-01T00:00:00Z".into(),
                        complete_time: "0001-01-01T00:00:00Z".into(),
                    })
                    .into()
                }),
            Body::Upload(r) => self
                .start_transfer(Transfer {
                    download: false,
                    command_key: r.command_key,
                    file_type: r.file_type,
                    url: r.url,
                    username: r.username,
                    password: r.password,
                    file_size: 0,
                    delay_s: r.delay_seconds,
                })
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
                    .map(|t| QueuedTransfer {
                        command_key: t.command_key.clone(),
                        state: 1,
                    })
                    .collect(),
            }
            .into()),
            Body::GetAllQueuedTransfers(_) => Ok(GetAllQueuedTransfersResponse {
                transfers: self
                    .queued_transfers()
                    .map(|t| AllQueuedTransfer {
                        command_key: t.command_key.clone(),
                        state: 1,
                        is_download: t.download,
                        file_type: t.file_type.clone(),
                        file_size: t.file_size,
                        target_file_name: String::new(),
                    })
                    .collect(),
            }
            .into()),
            Body::CancelTransfer(r) => {
                let before = self.actions.len();
                self.actions.retain(
                    |a| !matches!(a, Action::Transfer(t) if t.command_key == r.command_key),
                );
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

    fn queued_transfers(&self) -> impl Iterator<Item = &Transfer> + '_ {
        self.actions.iter().filter_map(|a| match a {
            Action::Transfer(t) => Some(t),
            _ => None,
        })
    }

    fn start_transfer(&mut self, t: Transfer) -> Result<(), gigafibre_acs::cwmp::Fault> {
        if t.url.is_empty() {
            return Err(cpe_fault(9003, "URL is empty"));
        }
        self.actions.push(Action::Transfer(t));
        Ok(())
    }

    /// What to do now the session is over.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Carries an action out (after its delay, which the runner waits).
    /// Reboots restart the device; all actions queue the events they are
    /// reported with. Downloads are not carried out here but fetched by
    /// [`crate::transfer::spawn`] and finished by [`Device::finish_download`].
    pub fn perform(&mut self, action: Action) {
        match action {
            Action::Reboot { command_key } => {
                self.add_event("1 BOOT", "");
                self.add_event("M Reboot", &command_key);
            }
            Action::BootLoop => {
                if self.boot_loop {
                    self.add_event("1 BOOT", "");
                }
            }
            Action::FactoryReset => {
                // The firmware survives a factory reset; the settings do not.
                let version = self.software_version();
                self.model = self.factory.clone();
                if !version.is_empty() {
                    self.set_software_version(&version);
                }
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
            Action::Transfer(t) => {
                // An Upload: the simulator has nothing to send and does not
                // contact the server; it only checks the scheme.
                let start = format_datetime(SystemTime::now());
                let fault = if t.download {
                    TransferFault {
                        fault_code: 9010,
                        fault_string: "Download failure: not fetched".into(),
                    }
                } else if ["http://", "https://", "ftp://"]
                    .iter()
                    .any(|s| t.url.starts_with(s))
                {
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
                self.report_transfer(&t, fault, start);
            }
        }
    }

    /// Queues `7 TRANSFER COMPLETE` + `M Download`/`M Upload` and the
    /// TransferComplete of `t`.
    fn report_transfer(&mut self, t: &Transfer, fault: TransferFault, start_time: String) {
        self.add_event("7 TRANSFER COMPLETE", "");
        self.add_event(
            if t.download { "M Download" } else { "M Upload" },
            &t.command_key,
        );
        self.transfer_complete = Some(TransferComplete {
            command_key: t.command_key.clone(),
            fault,
            start_time,
            complete_time: format_datetime(SystemTime::now()),
        });
    }

    /// A download is over (fetched and judged by [`crate::transfer`]):
    /// installs a firmware image, queues the events and the
    /// TransferComplete; what the device loop does next.
    pub fn finish_download(
        &mut self,
        t: &Transfer,
        start_time: String,
        verdict: Verdict,
    ) -> AfterDownload {
        let ok = || TransferFault {
            fault_code: 0,
            fault_string: String::new(),
        };
        match verdict {
            Verdict::Failed(fault) => {
                self.report_transfer(t, fault, start_time);
                AfterDownload::Session
            }
            Verdict::Stored => {
                self.report_transfer(t, ok(), start_time);
                AfterDownload::Session
            }
            Verdict::Firmware { version, behaviour } => match behaviour {
                Behaviour::Normal | Behaviour::OldVersion => {
                    if behaviour == Behaviour::Normal {
                        self.set_software_version(&version);
                    }
                    self.boot_loop = false;
                    self.add_event("1 BOOT", "");
                    self.report_transfer(t, ok(), start_time);
                    AfterDownload::Reboot
                }
                Behaviour::BootLoop => {
                    self.boot_loop = true;
                    self.add_event("1 BOOT", "");
                    AfterDownload::BootLoop
                }
                Behaviour::Vanish => {
                    self.dead = true;
                    AfterDownload::Dead
                }
                // Judged a failure already; kept for completeness.
                Behaviour::Fail9010 => {
                    self.report_transfer(
                        t,
                        TransferFault {
                            fault_code: 9010,
                            fault_string: "Download failure".into(),
                        },
                        start_time,
                    );
                    AfterDownload::Session
                }
            },
        }
    }

    /// Installed a boot-looping image: reboots every boot-loop period.
    pub fn is_boot_looping(&self) -> bool {
        self.boot_loop
    }

    /// Installed an image that killed it: never informs again.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    fn device_info(&self, leaf: &str) -> String {
        self.model
            .get(&format!("{}DeviceInfo.{leaf}", self.model.root()))
            .map(|v| v.into_owned())
            .unwrap_or_default()
    }

    /// DeviceInfo.HardwareVersion (what a firmware image is checked against).
    pub fn hardware_version(&self) -> String {
        self.device_info("HardwareVersion")
    }

    /// DeviceInfo.SoftwareVersion.
    pub fn software_version(&self) -> String {
        self.device_info("SoftwareVersion")
    }

    /// The device runs another firmware version (a read-only parameter,
    /// added if the model lacks it).
    fn set_software_version(&mut self, version: &str) {
        let path = format!("{}DeviceInfo.SoftwareVersion", self.model.root());
        if self.model.set_local(&path, version).is_none() && !self.model.params.contains_key(&path)
        {
            self.model.insert_param(
                &path,
                Param {
                    value: version.to_owned(),
                    kind: ValueType::String,
                    writable: false,
                    notification: 0,
                    access_list: Vec::new(),
                },
            );
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
            boot_loop: self.boot_loop,
            dead: self.dead,
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

//! The CWMP session state machine: message in, messages out, no sockets.
//!
//! A session starts with an Inform (answered by the server with
//! [`inform_response`] once the Inform is durable) and then alternates:
//!
//! 1. CPE requests (TransferComplete, GetRPCMethods, …) are answered at once;
//! 2. an empty POST hands the turn to the ACS, which sends its queued
//!    requests one per HTTP response, recording each answer or fault;
//! 3. with nothing left (or the per-session RPC cap reached) it answers
//!    `204 No Content` and the session is over.
//!
//! Every decision returns [`Effect`]s for the server to persist before it
//! sends the reply, so the state machine itself never touches I/O and is
//! tested with plain values.

mod collect;
mod inform;
mod open;

pub use collect::{CollectStep, Collector};
pub use inform::{EVENT_BOOT, EVENT_BOOTSTRAP, InformOutcome, apply_inform};
pub use open::{Opening, ProvisioningPolicy, SessionPolicy, facts, open};

use std::collections::VecDeque;
use std::sync::Arc;

use crate::cwmp::rpc::{
    ACS_REQUESTS, AutonomousDUStateChangeCompleteResponse, AutonomousTransferCompleteResponse,
    CPE_REQUESTS, DUStateChangeCompleteResponse, GetRPCMethodsResponse, InformResponse,
    ParameterInfo, RequestDownloadResponse, TransferCompleteResponse,
};
use crate::cwmp::rpc::{GetParameterNames, GetParameterValues};
use crate::cwmp::{AcsFaultCode, Body, CwmpVersion, Envelope, Fault, Header, ParameterValue};
use crate::provision::datamodel::DataModelTree;
use crate::provision::flow::{DesiredOutcome, DesiredRequest, Facts, Flow, FlowStep, Outcome};
use crate::provision::profile::{Profile, Profiles};
use crate::provision::targets::{self, Values};
use crate::store::{Task, TaskFault, TaskStatus};

/// Limits of one session.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    /// ACS requests sent in one session at most; the rest wait for the next.
    pub max_rpcs: u32,
    /// Sessions in which a task may go unanswered before it is failed.
    pub max_attempts: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_rpcs: 64,
            max_attempts: 3,
        }
    }
}

/// What the CPE sent in one HTTP request.
// One value per HTTP exchange, moved once or twice: boxing the big variant
// would add an allocation and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// An empty POST: the CPE has no (more) requests.
    Empty,
    Envelope(Envelope),
}

/// What to answer.
// One value per HTTP exchange, moved once or twice: boxing the big variant
// would add an allocation and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub enum Reply {
    Envelope(Envelope),
    /// `204 No Content`: the ACS has nothing more; the session ends.
    NoContent,
    /// Provisioning needs ERPNext's answer before the session can reply:
    /// the server asks ERPNext and calls [`Session::supply_desired`].
    NeedDesired(DesiredRequest),
}

/// Something the server must persist before sending the reply.
// One value per HTTP exchange, moved once or twice: boxing the big variant
// would add an allocation and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub enum Effect {
    /// A task's new state (sent, done, failed, awaiting completion).
    Task(Task),
    /// Values the CPE reported (GetParameterValues) or accepted
    /// (SetParameterValues).
    ParameterValues(Vec<ParameterValue>),
    /// Values read with partial paths: they replace what is cached under
    /// each prefix.
    SubtreeValues {
        prefixes: Vec<String>,
        values: Vec<ParameterValue>,
    },
    /// Names and writability the CPE reported (GetParameterNames).
    ParameterInfo(Vec<ParameterInfo>),
    /// The device's data model as discovered or learned again in this
    /// session (volatile tables included; the store keeps the rest).
    DataModel(Arc<DataModelTree>),
    /// `DeviceInfo.ModelName` as the device reported it.
    ModelName(String),
    /// The profile provisioning used (a family profile's name, or
    /// `generic-tr181` / `generic-tr098`).
    Profile(String),
    /// The device refused to tell its data model: not asked again before
    /// a while (see `open::discovery_due`).
    DiscoveryFailed,
    /// TransferComplete / DUStateChangeComplete: completes the task that was
    /// waiting on this command key, if any.
    Completion {
        command_key: String,
        fault: Option<TaskFault>,
    },
    /// A provisioning run ended.
    Provisioning(Outcome),
    /// The host-table collector finished (or gave up).
    HostsCollected { ok: bool, detail: String },
    /// The CPE reported a transfer it made on its own
    /// (AutonomousTransferComplete): an event for Ops (its URL is not
    /// kept: it may carry credentials).
    AutonomousTransfer {
        is_download: bool,
        file_type: String,
        target_file_name: String,
        file_size: u64,
        fault: Option<TaskFault>,
    },
    /// Something to show Ops in the device's fault list.
    Fault {
        source: &'static str,
        code: u32,
        message: String,
        rpc: Option<String>,
        task_id: Option<u64>,
    },
}

/// Result of one exchange.
#[derive(Debug, PartialEq)]
pub struct Step {
    pub reply: Reply,
    pub effects: Vec<Effect>,
}

impl Session {
    /// Ends an unfinished provisioning run (the session is over).
    fn abandon_flow(&mut self, effects: &mut Vec<Effect>, why: &str) {
        if self.flow.take().is_some() {
            self.flow_step = None;
            effects.push(Effect::Provisioning(Outcome::Deferred {
                reason: why.to_owned(),
            }));
        }
        if let Some(mut c) = self.collector.take() {
            c.abandon(why);
            effects.push(c.outcome());
        } else if self.collect.take().is_some() {
            effects.push(Effect::HostsCollected {
                ok: false,
                detail: format!("host table not read: {why}"),
            });
        }
    }
}

impl Step {
    /// True when this reply ends the session.
    pub fn ends_session(&self) -> bool {
        self.reply == Reply::NoContent
    }
}

/// The InformResponse for an Inform: same cwmp namespace and ID; a
/// UseCWMPVersion header when the CPE announced SupportedCWMPVersions.
pub fn inform_response(inform: &Envelope) -> Envelope {
    let use_cwmp_version = inform
        .header
        .supported_cwmp_versions
        .as_deref()
        .and_then(highest_common_version);
    Envelope {
        version: inform.version,
        header: Header {
            id: inform.header.id.clone(),
            use_cwmp_version,
            ..Header::default()
        },
        body: InformResponse { max_envelopes: 1 }.into(),
    }
}

/// Highest version in a `"1.0,1.1,1.2"` list that this ACS speaks.
fn highest_common_version(list: &str) -> Option<String> {
    list.split(',')
        .filter_map(|v| CwmpVersion::from_short(v.trim()).map(|_| v.trim()))
        .max_by_key(|v| CwmpVersion::from_short(v))
        .map(|v| v.replace('-', "."))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// After the InformResponse: the CPE may send requests.
    CpeRequests,
    /// After the CPE's empty POST: the ACS sends its requests.
    AcsRequests,
    Ended,
}

/// Who asked for the request in flight.
// One per session at a time; boxing the task would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Origin {
    Task(Task),
    Provisioning,
    Collector,
    /// A GetParameterNames of this subtree for this learner.
    Learn(Learner, String),
    /// The GetParameterValues of `DeviceInfo.ModelName` after a discovery.
    ModelName,
}

/// Who asked for a part of the data model to be learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Learner {
    /// The whole tree, at the session's start.
    Discovery,
    Flow,
    Collector,
}

/// Subtrees to learn (one GetParameterNames each), for one learner.
#[derive(Debug)]
struct Learning {
    learner: Learner,
    queue: VecDeque<String>,
    /// Discovery: paths to try when the root is refused.
    fallback: VecDeque<String>,
}

/// What a session does besides answering the CPE and running its queued
/// tasks (decided by [`open`]).
#[derive(Debug, Default)]
pub struct SessionWork {
    /// Discover the device's whole data model first: GetParameterNames of
    /// this root (`""` when unknown), then its `DeviceInfo.ModelName`.
    pub discover: Option<String>,
    /// The data model as stored (when not discovering).
    pub tree: Option<Arc<DataModelTree>>,
    pub flow: Option<Flow>,
    /// Read the host table and diagnostics, with this device's profile.
    pub collect: Option<CollectPlan>,
}

/// How to work out what the collector reads.
#[derive(Clone, Debug)]
pub struct CollectPlan {
    pub profiles: Arc<Profiles>,
    pub facts: Facts,
}

#[derive(Debug)]
struct InFlight {
    origin: Origin,
    expects: String,
}

/// One CWMP session with one device.
#[derive(Debug)]
pub struct Session {
    device_id: String,
    version: CwmpVersion,
    limits: SessionLimits,
    queue: VecDeque<Task>,
    in_flight: Option<InFlight>,
    phase: Phase,
    rpcs_sent: u32,
    /// The provisioning run of this session and its next step; it goes
    /// before queued tasks (a queued Reboot must not cut it short).
    flow: Option<Flow>,
    flow_step: Option<FlowStep>,
    flow_started: bool,
    /// The effective profile the flow worked out, for the collector.
    targets: Option<Profile>,
    /// The host-table collection of this session; after provisioning (which
    /// may change the WiFi), before queued tasks.
    collector: Option<Collector>,
    collect: Option<CollectPlan>,
    /// The device's data model: discovered in this session (`tree_fresh`,
    /// volatile tables included) or as stored.
    tree: Option<Arc<DataModelTree>>,
    tree_fresh: bool,
    /// The device refused the discovery of this session.
    discovery_failed: bool,
    learning: Option<Learning>,
    next_rpc_id: u32,
}

impl Session {
    /// Starts the session of a device whose Inform was accepted, with its
    /// stored tasks. Tasks that already had their attempts are failed.
    pub fn start(
        device_id: String,
        version: CwmpVersion,
        tasks: Vec<Task>,
        limits: SessionLimits,
        now_ms: u64,
    ) -> (Session, Vec<Effect>) {
        Self::start_with(
            device_id,
            version,
            tasks,
            limits,
            SessionWork::default(),
            now_ms,
        )
    }

    /// [`Session::start`] with discovery, a provisioning run and a
    /// collection, as [`open`] decided.
    pub fn start_with(
        device_id: String,
        version: CwmpVersion,
        tasks: Vec<Task>,
        limits: SessionLimits,
        work: SessionWork,
        now_ms: u64,
    ) -> (Session, Vec<Effect>) {
        let mut effects = Vec::new();
        let mut queue = VecDeque::new();
        // Actions (reprovision) are the server's business, not RPCs to send.
        for mut task in tasks
            .into_iter()
            .filter(|t| t.status.is_runnable() && t.request.rpc().is_some())
        {
            if task.attempts >= limits.max_attempts {
                let message = format!("no answer from the device after {} attempts", task.attempts);
                task.status = TaskStatus::Failed;
                task.updated_ms = now_ms;
                task.fault = Some(TaskFault {
                    code: 0,
                    message: message.clone(),
                });
                effects.push(Effect::Fault {
                    source: "acs",
                    code: 0,
                    message,
                    rpc: Some(task.request.name().to_owned()),
                    task_id: Some(task.id),
                });
                effects.push(Effect::Task(task));
            } else {
                queue.push_back(task);
            }
        }
        let learning = work.discover.map(|root| {
            let mut fallback: VecDeque<String> = VecDeque::new();
            if !root.is_empty() {
                fallback.push_back(String::new());
            }
            Learning {
                learner: Learner::Discovery,
                queue: VecDeque::from([root]),
                fallback,
            }
        });
        let session = Session {
            device_id,
            version,
            limits,
            queue,
            in_flight: None,
            phase: Phase::CpeRequests,
            rpcs_sent: 0,
            flow: work.flow,
            flow_step: None,
            flow_started: false,
            targets: None,
            collector: None,
            collect: work.collect,
            tree: if learning.is_some() { None } else { work.tree },
            tree_fresh: false,
            discovery_failed: false,
            learning,
            next_rpc_id: 0,
        };
        (session, effects)
    }

    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    pub fn version(&self) -> CwmpVersion {
        self.version
    }

    /// Adds a task queued while the session is open.
    pub fn enqueue(&mut self, task: Task) {
        if task.status.is_runnable()
            && task.request.rpc().is_some()
            && !self.queue.iter().any(|t| t.id == task.id)
        {
            self.queue.push_back(task);
        }
    }

    /// Drops a queued task (Ops cancelled it); `false` if it is the one
    /// in flight, which can no longer be withdrawn.
    pub fn withdraw(&mut self, task_id: u64) -> bool {
        if self.in_flight_task() == Some(task_id) {
            return false;
        }
        self.queue.retain(|t| t.id != task_id);
        true
    }

    /// Id of the task whose answer is awaited, if any.
    pub fn in_flight_task(&self) -> Option<u64> {
        match self.in_flight.as_ref().map(|f| &f.origin) {
            Some(Origin::Task(t)) => Some(t.id),
            _ => None,
        }
    }

    /// Whether a provisioning run is still going on.
    pub fn provisioning(&self) -> bool {
        self.flow.is_some()
    }

    /// ERPNext's answer to a [`Reply::NeedDesired`].
    pub fn supply_desired(&mut self, answer: DesiredOutcome, now_ms: u64) -> Step {
        let tree = self.tree.clone();
        let step = match self.flow.as_mut() {
            Some(flow) => flow.supply(answer, tree.as_deref()),
            None => return self.next_request(Vec::new(), now_ms),
        };
        self.flow_step = Some(step);
        self.next_request(Vec::new(), now_ms)
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Handles one HTTP request of the session.
    pub fn handle(&mut self, input: Input, now_ms: u64) -> Step {
        let mut effects = Vec::new();
        let env = match input {
            Input::Empty => {
                self.phase = Phase::AcsRequests;
                return self.next_request(effects, now_ms);
            }
            Input::Envelope(env) => env,
        };
        let id = env.header.id.clone();
        match env.body {
            Body::Inform(_) => self.fault_reply(
                id,
                AcsFaultCode::InvalidArguments,
                "Inform is only allowed as the first message of a session",
                effects,
            ),
            Body::Unknown(name) => {
                let message = format!("unknown method {name}");
                effects.push(self.acs_fault(AcsFaultCode::MethodNotSupported, &message, None));
                self.fault_reply(id, AcsFaultCode::MethodNotSupported, &message, effects)
            }
            Body::Fault(fault) => {
                match self.in_flight.take() {
                    Some(InFlight {
                        origin: Origin::Provisioning,
                        ..
                    }) => {
                        let tree = self.tree.clone();
                        if let Some(flow) = self.flow.as_mut() {
                            self.flow_step =
                                Some(flow.on_response(Body::Fault(fault), tree.as_deref()));
                        }
                    }
                    Some(InFlight {
                        origin: Origin::Learn(learner, path),
                        ..
                    }) => self.learn_failed(learner, &path, &fault, &mut effects),
                    Some(InFlight {
                        origin: Origin::ModelName,
                        ..
                    }) => {}
                    Some(InFlight {
                        origin: Origin::Collector,
                        ..
                    }) => {
                        if let Some(c) = self.collector.as_mut() {
                            c.on_fault(&fault);
                        }
                    }
                    Some(InFlight {
                        origin: Origin::Task(mut task),
                        ..
                    }) => {
                        effects.push(Effect::Fault {
                            source: "cpe",
                            code: fault.code,
                            message: fault.to_string(),
                            rpc: Some(task.request.name().to_owned()),
                            task_id: Some(task.id),
                        });
                        task.status = TaskStatus::Failed;
                        task.updated_ms = now_ms;
                        task.fault = Some(TaskFault {
                            code: fault.code,
                            message: fault.to_string(),
                        });
                        effects.push(Effect::Task(task));
                    }
                    None => effects.push(Effect::Fault {
                        source: "cpe",
                        code: fault.code,
                        message: format!("unsolicited fault: {fault}"),
                        rpc: None,
                        task_id: None,
                    }),
                }
                self.next_request(effects, now_ms)
            }
            body if body.is_cpe_request() => {
                let response = self.answer_cpe_request(body, &mut effects);
                Step {
                    reply: Reply::Envelope(Envelope::new(self.version, id, response)),
                    effects,
                }
            }
            body if body.is_response() => {
                self.record_response(body, &mut effects, now_ms);
                self.next_request(effects, now_ms)
            }
            body => {
                // An ACS→CPE request sent to the ACS.
                let message = format!("{} is not a method the ACS implements", body.name());
                effects.push(self.acs_fault(AcsFaultCode::MethodNotSupported, &message, None));
                self.fault_reply(id, AcsFaultCode::MethodNotSupported, &message, effects)
            }
        }
    }

    fn acs_fault(&self, code: AcsFaultCode, message: &str, rpc: Option<String>) -> Effect {
        Effect::Fault {
            source: "acs",
            code: code.code(),
            message: message.to_owned(),
            rpc,
            task_id: None,
        }
    }

    fn fault_reply(
        &self,
        id: Option<String>,
        code: AcsFaultCode,
        message: &str,
        effects: Vec<Effect>,
    ) -> Step {
        Step {
            reply: Reply::Envelope(Envelope::new(
                self.version,
                id,
                Body::Fault(Fault::acs(code, message)),
            )),
            effects,
        }
    }

    fn answer_cpe_request(&mut self, body: Body, effects: &mut Vec<Effect>) -> Body {
        match body {
            Body::TransferComplete(tc) => {
                effects.push(Effect::Completion {
                    command_key: tc.command_key.clone(),
                    fault: (!tc.fault.is_success()).then(|| TaskFault {
                        code: tc.fault.fault_code,
                        message: format!(
                            "transfer failed: {} {}",
                            tc.fault.fault_code, tc.fault.fault_string
                        ),
                    }),
                });
                TransferCompleteResponse {}.into()
            }
            Body::AutonomousTransferComplete(tc) => {
                effects.push(Effect::AutonomousTransfer {
                    is_download: tc.is_download,
                    file_type: tc.file_type.clone(),
                    target_file_name: tc.target_file_name.clone(),
                    file_size: tc.file_size,
                    fault: (!tc.fault.is_success()).then(|| TaskFault {
                        code: tc.fault.fault_code,
                        message: tc.fault.fault_string.clone(),
                    }),
                });
                if !tc.fault.is_success() {
                    effects.push(Effect::Fault {
                        source: "cpe",
                        code: tc.fault.fault_code,
                        message: format!(
                            "autonomous transfer of {} failed: {}",
                            tc.file_type, tc.fault.fault_string
                        ),
                        rpc: Some("AutonomousTransferComplete".into()),
                        task_id: None,
                    });
                }
                AutonomousTransferCompleteResponse {}.into()
            }
            Body::DUStateChangeComplete(du) => {
                let failed: Vec<String> = du
                    .results
                    .iter()
                    .filter(|r| r.fault_code != 0)
                    .map(|r| format!("{} {} {}", r.uuid, r.fault_code, r.fault_string))
                    .collect();
                effects.push(Effect::Completion {
                    command_key: du.command_key.clone(),
                    fault: (!failed.is_empty()).then(|| TaskFault {
                        code: du.results.iter().map(|r| r.fault_code).max().unwrap_or(0),
                        message: format!("deployment unit operation failed: {}", failed.join("; ")),
                    }),
                });
                DUStateChangeCompleteResponse {}.into()
            }
            Body::AutonomousDUStateChangeComplete(_) => {
                AutonomousDUStateChangeCompleteResponse {}.into()
            }
            Body::RequestDownload(_) => RequestDownloadResponse {}.into(),
            Body::GetRPCMethods(_) => GetRPCMethodsResponse {
                methods: CPE_REQUESTS.iter().map(|s| s.to_string()).collect(),
            }
            .into(),
            // `is_cpe_request` admits only the arms above and Inform, which
            // `handle` answers before getting here.
            other => Body::Fault(Fault::acs(
                AcsFaultCode::MethodNotSupported,
                format!("{} is not handled here", other.name()),
            )),
        }
    }

    fn record_response(&mut self, body: Body, effects: &mut Vec<Effect>, now_ms: u64) {
        let Some(InFlight { origin, expects }) = self.in_flight.take() else {
            effects.push(Effect::Fault {
                source: "acs",
                code: 0,
                message: format!("unsolicited {} ignored", body.name()),
                rpc: None,
                task_id: None,
            });
            return;
        };
        let mut task = match origin {
            Origin::Provisioning => {
                // What provisioning reads is cached like any other read.
                if let Body::GetParameterValuesResponse(r) = &body {
                    effects.push(Effect::ParameterValues(r.parameters.clone()));
                }
                let tree = self.tree.clone();
                if let Some(flow) = self.flow.as_mut() {
                    self.flow_step = Some(flow.on_response(body, tree.as_deref()));
                }
                return;
            }
            Origin::Learn(learner, path) => {
                match body {
                    Body::GetParameterNamesResponse(r) => {
                        self.learned(learner, &path, r.parameters, effects)
                    }
                    other => {
                        let fault = Fault {
                            code: 0,
                            string: format!(
                                "expected GetParameterNamesResponse, got {}",
                                other.name()
                            ),
                            ..Fault::default()
                        };
                        self.learn_failed(learner, &path, &fault, effects);
                    }
                }
                return;
            }
            Origin::ModelName => {
                if let Body::GetParameterValuesResponse(r) = body {
                    if let Some(m) = r
                        .parameters
                        .iter()
                        .find(|p| p.name.ends_with("DeviceInfo.ModelName"))
                        .map(|p| p.value.trim().to_owned())
                        .filter(|m| !m.is_empty())
                    {
                        if let Some(c) = self.collect.as_mut() {
                            c.facts.model_name = Some(m.clone());
                        }
                        effects.push(Effect::ModelName(m));
                    }
                    effects.push(Effect::ParameterValues(r.parameters));
                }
                return;
            }
            Origin::Collector => {
                if let Some(c) = self.collector.as_mut() {
                    c.on_response(body, effects);
                }
                return;
            }
            Origin::Task(task) => task,
        };
        task.updated_ms = now_ms;
        if body.name() != expects {
            let message = format!("expected {expects}, got {}", body.name());
            effects.push(Effect::Fault {
                source: "acs",
                code: 0,
                message: message.clone(),
                rpc: Some(task.request.name().to_owned()),
                task_id: Some(task.id),
            });
            task.status = TaskStatus::Failed;
            task.fault = Some(TaskFault { code: 0, message });
            effects.push(Effect::Task(task));
            return;
        }
        task.status = TaskStatus::Done;
        match (task.request.rpc(), &body) {
            (Some(Body::GetParameterValues(gpv)), Body::GetParameterValuesResponse(r)) => {
                // A partial path read in full replaces what was cached under
                // it, so rows the device dropped (hosts that left) go too.
                let prefixes: Vec<String> = gpv
                    .names
                    .iter()
                    .filter(|n| n.ends_with('.'))
                    .cloned()
                    .collect();
                if prefixes.is_empty() {
                    effects.push(Effect::ParameterValues(r.parameters.clone()));
                } else {
                    effects.push(Effect::SubtreeValues {
                        prefixes,
                        values: r.parameters.clone(),
                    });
                }
            }
            (_, Body::GetParameterValuesResponse(r)) => {
                effects.push(Effect::ParameterValues(r.parameters.clone()));
            }
            (_, Body::GetParameterNamesResponse(r)) => {
                effects.push(Effect::ParameterInfo(r.parameters.clone()));
            }
            (Some(Body::SetParameterValues(spv)), Body::SetParameterValuesResponse(_)) => {
                // Accepted: the cache now holds what was set.
                effects.push(Effect::ParameterValues(spv.parameters.clone()));
            }
            (_, Body::DownloadResponse(r)) if r.0.status == 1 => {
                task.status = TaskStatus::AwaitingCompletion;
            }
            (_, Body::UploadResponse(r)) if r.0.status == 1 => {
                task.status = TaskStatus::AwaitingCompletion;
            }
            (Some(Body::ChangeDUState(_)), _) | (Some(Body::ScheduleDownload(_)), _) => {
                task.status = TaskStatus::AwaitingCompletion;
            }
            _ => {}
        }
        task.response = Some(body);
        effects.push(Effect::Task(task));
    }

    /// Sends an ACS request of the session's own (not a queued task).
    fn send_own(&mut self, origin: Origin, label: &str, body: Body, effects: Vec<Effect>) -> Step {
        self.rpcs_sent += 1;
        self.next_rpc_id += 1;
        self.in_flight = Some(InFlight {
            origin,
            expects: body.response_name(),
        });
        let envelope = Envelope::new(
            self.version,
            Some(format!("{label}-{}", self.next_rpc_id)),
            body,
        );
        Step {
            reply: Reply::Envelope(envelope),
            effects,
        }
    }

    fn root(&self) -> String {
        self.tree
            .as_deref()
            .and_then(DataModelTree::root)
            .map(str::to_owned)
            .or_else(|| self.collect.as_ref().map(|c| c.facts.root.clone()))
            .unwrap_or_default()
    }

    /// A GetParameterNames answer for a learner: the whole tree for a
    /// discovery, else the subtree replaces what was known under `path`.
    fn learned(
        &mut self,
        learner: Learner,
        path: &str,
        names: Vec<ParameterInfo>,
        effects: &mut Vec<Effect>,
    ) {
        let names: Vec<(String, bool)> = names.into_iter().map(|p| (p.name, p.writable)).collect();
        let changed_stable = match (learner, self.tree.as_mut()) {
            (Learner::Discovery, _) | (_, None) => {
                // The whole tree, volatile tables included.
                self.tree = Some(Arc::new(DataModelTree::from_names(names)));
                // A root ("Device.", one dot) or empty path: all of it.
                let whole = path.matches('.').count() <= 1;
                self.tree_fresh = learner == Learner::Discovery || whole;
                true
            }
            (_, Some(tree)) => {
                let before: Vec<(String, bool)> = stable_under(tree, path);
                Arc::make_mut(tree).replace_subtree(path, names);
                before != stable_under(tree, path)
            }
        };
        if let Some(tree) = &self.tree {
            if changed_stable || learner != Learner::Collector {
                effects.push(Effect::DataModel(tree.clone()));
            }
        }
        if learner == Learner::Discovery {
            if let Some(l) = self.learning.as_mut() {
                l.queue.clear();
                l.fallback.clear();
            }
        }
    }

    /// A refused GetParameterNames: a discovery tries its fallback path; a
    /// subtree that no longer exists is forgotten.
    fn learn_failed(
        &mut self,
        learner: Learner,
        path: &str,
        fault: &Fault,
        effects: &mut Vec<Effect>,
    ) {
        match learner {
            Learner::Discovery => {
                if let Some(l) = self.learning.as_mut() {
                    if let Some(next) = l.fallback.pop_front() {
                        l.queue.push_back(next);
                        return;
                    }
                }
                self.discovery_failed = true;
                effects.push(Effect::DiscoveryFailed);
                effects.push(Effect::Fault {
                    source: "cpe",
                    code: fault.code,
                    message: format!("data model discovery failed: {fault}"),
                    rpc: Some("GetParameterNames".into()),
                    task_id: None,
                });
            }
            Learner::Flow | Learner::Collector => {
                let root = self.root();
                if let Some(tree) = self.tree.as_mut() {
                    if fault.code == 9005 && path.len() > root.len() {
                        Arc::make_mut(tree).replace_subtree(path, Vec::new());
                        effects.push(Effect::DataModel(tree.clone()));
                    }
                }
            }
        }
    }

    /// The next step of the provisioning run, if it has one to take now.
    fn flow_next(&mut self, effects: &mut Vec<Effect>) -> Option<FlowStep> {
        let flow = self.flow.as_mut()?;
        if !self.flow_started {
            self.flow_started = true;
            self.flow_step = Some(flow.begin(self.tree.as_deref()));
        }
        match self.flow_step.take() {
            Some(FlowStep::Finished(outcome)) => {
                self.targets = flow.targets().cloned();
                if let Some(t) = &self.targets {
                    effects.push(Effect::Profile(t.name.clone()));
                }
                // The model name the run read (the collector takes the
                // run's effective profile, which it decided).
                if let Some(m) = flow.model_name() {
                    effects.push(Effect::ModelName(m.to_owned()));
                }
                self.flow = None;
                effects.push(Effect::Provisioning(outcome));
                None
            }
            other => other,
        }
    }

    /// The collector of this session, created when its turn comes (after
    /// provisioning, which may have worked out the effective profile).
    fn collector(&mut self) -> Option<&mut Collector> {
        if self.collector.is_none() {
            let plan = self.collect.take()?;
            let profile = match (self.targets.take(), self.tree.as_deref()) {
                (Some(t), _) => t,
                (None, Some(tree)) => {
                    let root = tree.root().unwrap_or(plan.facts.root.as_str()).to_owned();
                    let family = plan.facts.family(&plan.profiles).cloned();
                    targets::effective(tree, &Values::new(), family.as_ref(), &root)
                }
                (None, None) => {
                    // Nothing can be read by name: the attempt is recorded.
                    self.collector = Some(Collector::unable("the device's data model is unknown"));
                    return self.collector.as_mut();
                }
            };
            let paths = crate::topology::collect_paths(&profile);
            self.collector = Some(Collector::new(
                paths,
                profile.partial_paths,
                self.tree_fresh,
            ));
        }
        self.collector.as_mut()
    }

    /// Sends the next queued request, or ends the session.
    fn next_request(&mut self, mut effects: Vec<Effect>, now_ms: u64) -> Step {
        // A response or fault while the CPE still held the turn means it has
        // no requests left, as an empty POST would: the turn passes to the
        // ACS rather than the session failing on a CPE's shortcut.
        if self.phase == Phase::CpeRequests {
            self.phase = Phase::AcsRequests;
        }
        if self.phase == Phase::Ended {
            return Step {
                reply: Reply::NoContent,
                effects,
            };
        }
        if self.rpcs_sent >= self.limits.max_rpcs {
            self.phase = Phase::Ended;
            self.abandon_flow(&mut effects, "the session's RPC limit was reached");
            return Step {
                reply: Reply::NoContent,
                effects,
            };
        }
        // Parts of the data model to learn, for whoever asked.
        if let Some(l) = self.learning.as_mut() {
            if let Some(path) = l.queue.pop_front() {
                let learner = l.learner;
                let body = GetParameterNames {
                    parameter_path: path.clone(),
                    next_level: false,
                }
                .into();
                return self.send_own(Origin::Learn(learner, path), "names", body, effects);
            }
            let learner = l.learner;
            self.learning = None;
            match learner {
                Learner::Discovery => {
                    // The model name decides the family profile (quirks).
                    let name = format!("{}DeviceInfo.ModelName", self.root());
                    if self.tree.as_deref().is_some_and(|t| t.has_leaf(&name)) {
                        let body = GetParameterValues { names: vec![name] }.into();
                        return self.send_own(Origin::ModelName, "model", body, effects);
                    }
                }
                Learner::Flow => {
                    let tree = self.tree.clone();
                    if let Some(flow) = self.flow.as_mut() {
                        self.flow_step = Some(flow.relearned(tree.as_deref()));
                    }
                }
                Learner::Collector => {}
            }
        }
        match self.flow_next(&mut effects) {
            Some(FlowStep::Send(body)) => {
                return self.send_own(Origin::Provisioning, "prov", body, effects);
            }
            Some(FlowStep::NeedDesired(req)) => {
                return Step {
                    reply: Reply::NeedDesired(req),
                    effects,
                };
            }
            Some(FlowStep::Relearn(_)) if self.discovery_failed && self.tree.is_none() => {
                // The device just refused its whole tree: no second try.
                if let Some(flow) = self.flow.as_mut() {
                    self.flow_step = Some(flow.relearned(None));
                }
                return self.next_request(effects, now_ms);
            }
            Some(FlowStep::Relearn(path)) => {
                self.learning = Some(Learning {
                    learner: Learner::Flow,
                    queue: VecDeque::from([path]),
                    fallback: VecDeque::new(),
                });
                return self.next_request(effects, now_ms);
            }
            Some(FlowStep::Finished(_)) | None => {}
        }
        if self.flow.is_none() {
            let tree = self.tree.clone();
            if let Some(c) = self.collector() {
                match c.next(tree.as_deref()) {
                    CollectStep::Send(body) => {
                        return self.send_own(Origin::Collector, "hosts", body, effects);
                    }
                    CollectStep::Learn(groups) => {
                        self.learning = Some(Learning {
                            learner: Learner::Collector,
                            queue: groups.into(),
                            fallback: VecDeque::new(),
                        });
                        return self.next_request(effects, now_ms);
                    }
                    CollectStep::Done => {
                        if c.is_done() {
                            effects.push(c.outcome());
                            self.collector = None;
                        }
                    }
                }
            }
        }
        let Some(mut task) = self.queue.pop_front() else {
            self.phase = Phase::Ended;
            return Step {
                reply: Reply::NoContent,
                effects,
            };
        };
        assign_command_key(&mut task);
        // Only RPC tasks are queued (start_with, enqueue).
        let Some(rpc) = task.request.rpc().cloned() else {
            return self.next_request(effects, now_ms);
        };
        task.status = TaskStatus::Sent;
        task.attempts += 1;
        task.updated_ms = now_ms;
        self.rpcs_sent += 1;
        let request_id = format!("acs-{}-{}", task.id, task.attempts);
        let expects = rpc.response_name();
        let envelope = Envelope::new(self.version, Some(request_id), rpc);
        effects.push(Effect::Task(task.clone()));
        self.in_flight = Some(InFlight {
            expects,
            origin: Origin::Task(task),
        });
        Step {
            reply: Reply::Envelope(envelope),
            effects,
        }
    }
}

/// The stable names under `path` (what the store keeps of that subtree).
fn stable_under(tree: &DataModelTree, path: &str) -> Vec<(String, bool)> {
    tree.entries_under(path)
        .filter(|(n, _)| !crate::provision::datamodel::is_volatile(n))
        .map(|(n, w)| (n.to_owned(), w))
        .collect()
}

/// Transfers and software changes complete asynchronously, reported with
/// the request's CommandKey; give each one a key if the requester did not.
fn assign_command_key(task: &mut Task) {
    let key = format!("acs-task-{}", task.id);
    let slot = match task.request.rpc_mut() {
        Some(Body::Download(d)) => &mut d.command_key,
        Some(Body::Upload(u)) => &mut u.command_key,
        Some(Body::ScheduleDownload(s)) => &mut s.command_key,
        Some(Body::ChangeDUState(c)) => &mut c.command_key,
        _ => return,
    };
    if slot.is_empty() {
        *slot = key;
    }
}

/// Whether a name is an RPC the ACS may queue for a CPE.
pub fn is_queueable(body: &Body) -> bool {
    ACS_REQUESTS.contains(&body.name())
}

#[cfg(test)]
mod tests;

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

pub use collect::Collector;
pub use inform::{EVENT_BOOT, EVENT_BOOTSTRAP, InformOutcome, apply_inform};

use std::collections::VecDeque;

use crate::cwmp::rpc::{
    ACS_REQUESTS, AutonomousDUStateChangeCompleteResponse, AutonomousTransferCompleteResponse,
    CPE_REQUESTS, DUStateChangeCompleteResponse, GetRPCMethodsResponse, InformResponse,
    ParameterInfo, RequestDownloadResponse, TransferCompleteResponse,
};
use crate::cwmp::{AcsFaultCode, Body, CwmpVersion, Envelope, Fault, Header, ParameterValue};
use crate::provision::flow::{DesiredOutcome, DesiredRequest, Flow, FlowStep, Outcome};
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
    /// The host-table collection of this session; after provisioning (which
    /// may change the WiFi), before queued tasks.
    collector: Option<Collector>,
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
        Self::start_with(device_id, version, tasks, limits, None, now_ms)
    }

    /// [`Session::start`] with a provisioning run.
    pub fn start_with(
        device_id: String,
        version: CwmpVersion,
        tasks: Vec<Task>,
        limits: SessionLimits,
        flow: Option<Flow>,
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
        let mut flow = flow;
        let flow_step = flow.as_mut().map(Flow::begin);
        let session = Session {
            device_id,
            version,
            limits,
            queue,
            in_flight: None,
            phase: Phase::CpeRequests,
            rpcs_sent: 0,
            flow,
            flow_step,
            collector: None,
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

    /// Adds a host-table collection to this session.
    pub fn set_collector(&mut self, collector: Collector) {
        self.collector = Some(collector);
    }

    /// Whether a provisioning run is still going on.
    pub fn provisioning(&self) -> bool {
        self.flow.is_some()
    }

    /// ERPNext's answer to a [`Reply::NeedDesired`].
    pub fn supply_desired(&mut self, answer: DesiredOutcome, now_ms: u64) -> Step {
        let step = match self.flow.as_mut() {
            Some(flow) => flow.supply(answer),
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
                        if let Some(flow) = self.flow.as_mut() {
                            self.flow_step = Some(flow.on_response(Body::Fault(fault)));
                        }
                    }
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
                if let Some(flow) = self.flow.as_mut() {
                    self.flow_step = Some(flow.on_response(body));
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
        match self.flow_step.take() {
            Some(FlowStep::Send(body)) => {
                self.rpcs_sent += 1;
                self.next_rpc_id += 1;
                let envelope = Envelope::new(
                    self.version,
                    Some(format!("prov-{}", self.next_rpc_id)),
                    body.clone(),
                );
                self.in_flight = Some(InFlight {
                    origin: Origin::Provisioning,
                    expects: body.response_name(),
                });
                return Step {
                    reply: Reply::Envelope(envelope),
                    effects,
                };
            }
            Some(FlowStep::NeedDesired(req)) => {
                return Step {
                    reply: Reply::NeedDesired(req),
                    effects,
                };
            }
            Some(FlowStep::Finished(outcome)) => {
                self.flow = None;
                effects.push(Effect::Provisioning(outcome));
            }
            None => {}
        }
        if let Some(c) = self.collector.as_mut() {
            if let Some(body) = c.next_request() {
                self.rpcs_sent += 1;
                self.next_rpc_id += 1;
                self.in_flight = Some(InFlight {
                    origin: Origin::Collector,
                    expects: body.response_name(),
                });
                let envelope = Envelope::new(
                    self.version,
                    Some(format!("hosts-{}", self.next_rpc_id)),
                    body,
                );
                return Step {
                    reply: Reply::Envelope(envelope),
                    effects,
                };
            }
            if c.is_done() {
                effects.push(c.outcome());
                self.collector = None;
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

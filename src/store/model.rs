//! Records the store keeps.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cwmp::rpc::DeviceIdStruct;
use crate::cwmp::{Body, CwmpVersion, ValueType};

/// How many recent Inform events a device record keeps.
pub const MAX_RECENT_EVENTS: usize = 32;

/// One CPE as the ACS knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// `OUI-ProductClass-SerialNumber`, escaped as GenieACS does.
    pub id: String,
    pub identity: DeviceIdStruct,
    pub cwmp_version: CwmpVersion,
    /// Unix milliseconds of the first Inform.
    pub first_seen_ms: u64,
    pub last_inform_ms: u64,
    #[serde(default)]
    pub last_bootstrap_ms: Option<u64>,
    #[serde(default)]
    pub last_boot_ms: Option<u64>,
    #[serde(default)]
    pub remote_addr: Option<String>,
    #[serde(default)]
    pub connection_request_url: Option<String>,
    #[serde(default)]
    pub software_version: Option<String>,
    #[serde(default)]
    pub hardware_version: Option<String>,
    #[serde(default)]
    pub model_name: Option<String>,
    /// `ManagementServer.ParameterKey` as last reported.
    #[serde(default)]
    pub parameter_key: Option<String>,
    /// Most recent events, oldest first, at most [`MAX_RECENT_EVENTS`].
    #[serde(default)]
    pub recent_events: Vec<EventRecord>,
    #[serde(default)]
    pub inform_count: u64,
    /// `SessionTimeout` the CPE announced (CWMP 1.3+), seconds.
    #[serde(default)]
    pub cpe_session_timeout_s: Option<u32>,
    /// Data-model root (`Device.` / `InternetGatewayDevice.`), from the Inform.
    #[serde(default)]
    pub root: Option<String>,
    #[serde(default)]
    pub provisioning: ProvisioningState,
    /// When the host-table collector last finished for this device.
    #[serde(default)]
    pub hosts_collected_ms: Option<u64>,
    /// The data model the device reported (its names are in the catalog).
    #[serde(default)]
    pub data_model: Option<DataModelInfo>,
    /// When the device last refused to tell its data model.
    #[serde(default)]
    pub discovery_failed_ms: Option<u64>,
    /// Labels Ops (or GenieACS's NBI clients) put on the device, sorted.
    #[serde(default)]
    pub tags: Vec<String>,
    /// When the record was imported from another ACS (GenieACS) and the
    /// device has not yet held a session here: its first session is a
    /// first contact (discovery and a full provisioning run).
    #[serde(default)]
    pub imported_ms: Option<u64>,
    /// Kinds of the alarms open on the device (their records are in the
    /// store's alarm table): what an Inform checks without a read.
    #[serde(default)]
    pub alarms: Vec<String>,
}

/// Where a device's discovered data model is, and when it was learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataModelInfo {
    /// Id of the shared tree of its model and firmware (see `crate::catalog`).
    pub base: String,
    /// The device's tree differs from the shared one (a delta is stored).
    #[serde(default)]
    pub has_delta: bool,
    /// Names in the device's stored tree.
    pub names: u32,
    /// SoftwareVersion when it was discovered: new firmware, new discovery.
    #[serde(default)]
    pub software_version: Option<String>,
    pub discovered_ms: u64,
}

/// Where zero-touch provisioning stands for a device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionStatus {
    /// Never attempted.
    #[default]
    Pending,
    Provisioned,
    /// ERPNext's record has no WiFi, SIP or PPPoE data: the device is left alone.
    NoConfig,
    Unresolved,
    Ambiguous,
    /// ERPNext unavailable (or not configured): retried at the next contact.
    Deferred,
    Fault,
    /// No device profile matches.
    NoProfile,
}

/// Provisioning state of one device.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningState {
    pub status: ProvisionStatus,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub candidates: Vec<String>,
    /// Linked Service Equipment.
    #[serde(default)]
    pub equipment: Option<String>,
    /// Its customer, as ERPNext said at the last run.
    #[serde(default)]
    pub customer: Option<String>,
    /// The record's `modified` when last applied (cheap change detection).
    #[serde(default)]
    pub erp_modified: Option<String>,
    /// ParameterKey of the configuration last verified on the device.
    #[serde(default)]
    pub applied_key: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub gpon_serial: Option<String>,
    #[serde(default)]
    pub last_attempt_ms: Option<u64>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub next_attempt_ms: Option<u64>,
    #[serde(default)]
    pub provisioned_ms: Option<u64>,
    /// Connection-request credentials the ACS gave the device.
    #[serde(default)]
    pub cr_username: Option<String>,
    #[serde(default)]
    pub cr_password: Option<String>,
    /// Set by Ops to force a run at the next contact.
    #[serde(default)]
    pub requested: bool,
}

impl fmt::Debug for ProvisioningState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisioningState")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("equipment", &self.equipment)
            .field("attempts", &self.attempts)
            .field(
                "cr_password",
                &self.cr_password.as_ref().map(|_| "********"),
            )
            .finish_non_exhaustive()
    }
}

/// What a person or a machine may do through the API and the console;
/// each role may do everything the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Search, read, reprovision, connection request, reboot.
    Technician,
    /// Technician, plus tasks, fault retries, parameter writes.
    Ops,
    /// Ops, plus users, tokens, credentials, imports.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Technician, Role::Ops, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Technician => "technician",
            Role::Ops => "ops",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person who logs in to the API and the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    /// argon2id, PHC string format (`$argon2id$v=19$m=…`).
    pub password_hash: String,
    pub disabled: bool,
    pub created_ms: u64,
    /// Failed logins in a row (reset by a good one).
    #[serde(default)]
    pub failures: u32,
    /// No login accepted before this time (after too many failures).
    #[serde(default)]
    pub locked_until_ms: u64,
}

/// An API token an admin issued (`POST /api/v1/tokens`), keyed in the
/// store by the SHA-256 of the token: the token itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub name: String,
    pub role: Role,
    pub created_ms: u64,
    /// Who issued it.
    pub created_by: String,
}

/// A firmware image (or any file devices download), stored under
/// `data_dir/files/ID` or served from elsewhere (`url`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// 16 hex digits.
    pub id: String,
    /// The file's name as devices see it (`[A-Za-z0-9._-]`).
    pub name: String,
    /// The model(s) the image is for, as the uploader said.
    #[serde(default)]
    pub model: Option<String>,
    /// The SoftwareVersion a device reports once it runs this image.
    #[serde(default)]
    pub version: Option<String>,
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    pub created_ms: u64,
    pub created_by: String,
    /// Where devices fetch it when it is not served by the ACS (a CDN).
    #[serde(default)]
    pub url: Option<String>,
}

/// A firmware campaign: what it rolls out to whom, in which waves, and
/// where it stands. Its devices are [`CampaignDevice`] rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub id: String,
    pub name: String,
    /// The file of `/api/v1/files`.
    pub file_id: String,
    /// The SoftwareVersion a device must report once done (the file's).
    pub version: String,
    /// What was asked for, as given (shown back).
    pub target: serde_json::Value,
    /// Devices in each wave (wave `i` holds `wave_sizes[i]` devices).
    pub wave_sizes: Vec<u64>,
    /// Maintenance window: minutes after midnight, local time.
    #[serde(default)]
    pub window: Option<CampaignWindow>,
    pub max_concurrent: u32,
    pub stop: CampaignStop,
    pub state: CampaignState,
    /// The wave being rolled out (0-based).
    pub wave: u32,
    #[serde(default)]
    pub halt_reason: Option<String>,
    /// Failures per wave an operator accepted by resuming a halted
    /// campaign: the stop rules count only failures beyond them.
    #[serde(default)]
    pub accepted_failures: Vec<u64>,
    pub created_ms: u64,
    pub created_by: String,
    #[serde(default)]
    pub finished_ms: Option<u64>,
}

/// When a campaign may start downloads: `start`..`end` (minutes after
/// midnight; `end` < `start` crosses midnight) in `time_zone`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignWindow {
    pub start_min: u16,
    pub end_min: u16,
    pub time_zone: String,
}

/// When a wave halts its campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignStop {
    /// More failed devices than this in the campaign halts it.
    #[serde(default)]
    pub max_failures: Option<u64>,
    /// A wave whose finished devices failed more than this share (%).
    #[serde(default)]
    pub max_failure_percent: Option<f64>,
    /// A device not back on the new version this long after it was sent
    /// the Download has timed out.
    pub back_online_minutes: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    Running,
    Paused,
    /// Stopped by a stop rule (`halt_reason`); resumable.
    Halted,
    Done,
    Aborted,
}

impl CampaignState {
    /// Whether it still holds its devices (no other campaign may take them).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            CampaignState::Running | CampaignState::Paused | CampaignState::Halted
        )
    }
}

/// One device of a campaign, keyed in the store by the device id (a
/// device is in one active campaign at most).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignDevice {
    pub device_id: String,
    pub campaign_id: String,
    pub wave: u32,
    pub status: DeviceRollout,
    /// Downloads sent (a failed one is retried once).
    pub attempts: u32,
    /// The Download task of the current attempt, once queued.
    #[serde(default)]
    pub task_id: Option<u64>,
    /// When the current attempt was queued.
    #[serde(default)]
    pub sent_ms: Option<u64>,
    /// The version the current attempt's image brings (a campaign resumed
    /// with a fixed image sends another).
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub finished_ms: Option<u64>,
    /// The CPE's fault, the version it came back with, or why it timed out.
    #[serde(default)]
    pub detail: Option<String>,
}

/// Where one device stands in its campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRollout {
    /// Waiting for its wave, the window or a free slot.
    Pending,
    /// Already on the target version when its turn came.
    Skipped,
    /// Its Download is queued or under way.
    Sent,
    /// Back on the new version.
    Succeeded,
    /// The CPE reported a transfer fault (after its retry).
    Failed,
    /// No TransferComplete, or not back, within `back_online_minutes`.
    TimedOut,
    /// Back after the download, on another version.
    WrongVersion,
}

impl DeviceRollout {
    pub fn is_final(self) -> bool {
        !matches!(self, DeviceRollout::Pending | DeviceRollout::Sent)
    }

    pub fn is_failure(self) -> bool {
        matches!(
            self,
            DeviceRollout::Failed | DeviceRollout::TimedOut | DeviceRollout::WrongVersion
        )
    }
}

/// A logged-in browser, keyed in the store by the hash of its cookie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSession {
    pub user: String,
    pub role: Role,
    /// Sent back in `X-CSRF-Token` with every write.
    pub csrf: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

/// One write through the API or the NBI: who, what, which device, when,
/// and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub at_ms: u64,
    /// A user's name, or `token:…` (the first characters of a token's
    /// hash) for a machine.
    pub actor: String,
    pub role: Role,
    /// The operation, e.g. `reprovision`, `createTask`, `login`.
    pub action: String,
    pub device_id: Option<String>,
    /// The HTTP status the caller got.
    pub status: u16,
}

/// Which audit entries to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub device_id: Option<String>,
    pub actor: Option<String>,
    /// Entries at or after this time only.
    pub since_ms: Option<u64>,
}

/// An open alarm on a device (it clears itself when its cause goes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    pub device_id: String,
    /// `optical_rx_low`, `optical_rx_high`, …
    pub kind: String,
    pub raised_ms: u64,
    /// The reading that raised it (dBm for optical power).
    pub value: Option<f64>,
    /// The limit it crossed.
    pub threshold: Option<f64>,
}

/// A write to ERPNext that must happen (survives restarts and outages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writeback {
    pub device_id: String,
    pub equipment: String,
    pub cwmp_serial: String,
    pub at_ms: u64,
    #[serde(default)]
    pub attempts: u32,
}

impl DeviceRecord {
    /// What the device can be found by (see [`search_keys`]): serial,
    /// id, MAC, GPON serial, ERPNext equipment and customer, normalised.
    pub fn search_tokens(&self) -> Vec<String> {
        let p = &self.provisioning;
        let mut out: Vec<String> = [
            Some(self.identity.serial_number.as_str()),
            Some(self.id.as_str()),
            p.mac.as_deref(),
            p.gpon_serial.as_deref(),
            p.equipment.as_deref(),
            p.customer.as_deref(),
        ]
        .into_iter()
        .flatten()
        .flat_map(search_keys)
        .collect();
        out.sort();
        out.dedup();
        out
    }

    /// A device seen for the first time.
    pub fn new(
        id: String,
        identity: DeviceIdStruct,
        cwmp_version: CwmpVersion,
        now_ms: u64,
    ) -> Self {
        DeviceRecord {
            id,
            identity,
            cwmp_version,
            first_seen_ms: now_ms,
            last_inform_ms: now_ms,
            last_bootstrap_ms: None,
            last_boot_ms: None,
            remote_addr: None,
            connection_request_url: None,
            software_version: None,
            hardware_version: None,
            model_name: None,
            parameter_key: None,
            recent_events: Vec::new(),
            inform_count: 0,
            cpe_session_timeout_s: None,
            root: None,
            provisioning: ProvisioningState::default(),
            hosts_collected_ms: None,
            data_model: None,
            discovery_failed_ms: None,
            tags: Vec::new(),
            imported_ms: None,
            alarms: Vec::new(),
        }
    }
}

/// The index keys of a search text: lower-cased as typed, plus the
/// canonical MAC (`aabbccddeeff`) or GPON serial (`rcmg1a2b3c4d`) it
/// spells, if any. Used for both indexing and querying, so any spelling
/// of a MAC or GPON serial finds the same device.
pub fn search_keys(text: &str) -> Vec<String> {
    let t = text.trim();
    if t.is_empty() {
        return Vec::new();
    }
    let mut out = vec![t.to_lowercase()];
    if let Some(m) = crate::identity::canonical_mac(t) {
        out.push(m);
    }
    if let Some(g) = crate::identity::canonical_gpon_serial(t) {
        out.push(g.to_lowercase());
    }
    out.dedup();
    out
}

/// One event of one Inform, or of a run of periodic Informs.
///
/// Written as a `[code, command_key, at_ms]` list (`[.., count, first_ms]`
/// for a run): a device record carries up to [`MAX_RECENT_EVENTS`] of them,
/// and the field names were most of its bytes. The derived `Deserialize`
/// reads the short and long lists and the named form of older records; keep
/// the order.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct EventRecord {
    pub code: String,
    #[serde(default)]
    pub command_key: String,
    /// When it was reported (the latest Inform of a run).
    pub at_ms: u64,
    /// Informs this entry stands for: consecutive `2 PERIODIC` Informs
    /// are one entry (see `session::apply_inform`), so the list shows the
    /// last 32 things that happened rather than the last 32 check-ins.
    #[serde(default = "one")]
    pub count: u32,
    /// The first Inform of a run (`None` for a single one).
    #[serde(default)]
    pub first_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

impl EventRecord {
    /// An event reported once, at `at_ms`.
    pub fn new(code: impl Into<String>, command_key: impl Into<String>, at_ms: u64) -> Self {
        EventRecord {
            code: code.into(),
            command_key: command_key.into(),
            at_ms,
            count: 1,
            first_ms: None,
        }
    }
}

impl Serialize for EventRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.count <= 1 && self.first_ms.is_none() {
            (&self.code, &self.command_key, self.at_ms).serialize(s)
        } else {
            let run = (&self.code, &self.command_key, self.at_ms);
            (run.0, run.1, run.2, self.count, self.first_ms).serialize(s)
        }
    }
}

/// A parameter value as the device last reported or accepted it.
///
/// Stored without field names (`store::codec::encode_value`): keep the
/// fields in this order; a new one goes last, with `#[serde(default)]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedValue {
    pub value: String,
    #[serde(rename = "type")]
    pub kind: ValueType,
    /// Unix milliseconds of the report.
    pub updated_ms: u64,
}

/// What is cached about one parameter: its value (from Informs,
/// GetParameterValues, accepted SetParameterValues) and its writability
/// (from GetParameterNames), kept apart so that neither write has to read
/// the other first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredParam {
    pub value: Option<CachedValue>,
    pub writable: Option<bool>,
}

/// Lifecycle of a queued ACS request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for the device's next session.
    Pending,
    /// Sent in a session that ended before the answer came; sent again next
    /// session until the attempt limit.
    Sent,
    /// Accepted by the CPE, which reports the outcome later with the
    /// request's CommandKey (TransferComplete, DUStateChangeComplete).
    AwaitingCompletion,
    Done,
    Failed,
    /// Withdrawn by Ops before it was sent.
    Cancelled,
}

impl TaskStatus {
    /// Whether a session should (re)send it.
    pub fn is_runnable(self) -> bool {
        matches!(self, TaskStatus::Pending | TaskStatus::Sent)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Done | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

/// Why a task failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFault {
    /// CWMP fault code from the CPE, or 0 when the ACS gave up on its own.
    pub code: u32,
    pub message: String,
}

/// What a task asks for: an RPC sent as is, or an action the ACS carries
/// out in the device's next session.
///
/// Stored untagged so that records written before actions existed (a bare
/// RPC) still read back.
// Stored and moved whole, one per task: boxing the RPC would add an
// allocation per task and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskRequest {
    Rpc(Body),
    Action(TaskAction),
}

/// Tasks that are not a single RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskAction {
    /// Re-read ERPNext and run a full provisioning in the next session.
    Reprovision,
    /// Re-read the host table and ONT diagnostics in the next session.
    CollectHosts,
}

impl TaskRequest {
    /// The RPC name, or the action's name.
    pub fn name(&self) -> &str {
        match self {
            TaskRequest::Rpc(body) => body.name(),
            TaskRequest::Action(TaskAction::Reprovision) => "Reprovision",
            TaskRequest::Action(TaskAction::CollectHosts) => "CollectHosts",
        }
    }

    pub fn rpc(&self) -> Option<&Body> {
        match self {
            TaskRequest::Rpc(body) => Some(body),
            TaskRequest::Action(_) => None,
        }
    }

    pub fn rpc_mut(&mut self) -> Option<&mut Body> {
        match self {
            TaskRequest::Rpc(body) => Some(body),
            TaskRequest::Action(_) => None,
        }
    }
}

impl From<Body> for TaskRequest {
    fn from(body: Body) -> Self {
        TaskRequest::Rpc(body)
    }
}

/// An ACS request queued for a device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: u64,
    pub device_id: String,
    pub request: TaskRequest,
    /// The API name it was created with (`getParameterValues`, `refresh`,
    /// `reprovision`, `collectHosts` for the ACS's own collector); empty for
    /// a task given as a raw RPC.
    #[serde(default)]
    pub name: String,
    pub status: TaskStatus,
    pub created_ms: u64,
    pub updated_ms: u64,
    #[serde(default)]
    pub attempts: u32,
    /// The CPE's response, once done.
    #[serde(default)]
    pub response: Option<Body>,
    #[serde(default)]
    pub fault: Option<TaskFault>,
    /// An action's result in words (`provisioned: EQ-0042`).
    #[serde(default)]
    pub outcome: Option<String>,
}

/// A fault to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFault {
    pub device_id: String,
    pub at_ms: u64,
    /// `"cpe"` for a CPE fault response, `"acs"` for a problem the ACS saw.
    pub source: &'static str,
    pub code: u32,
    pub message: String,
    /// The RPC it concerns (`"SetParameterValues"`), if any.
    pub rpc: Option<String>,
    pub task_id: Option<u64>,
}

/// A recorded fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub id: u64,
    pub device_id: String,
    pub at_ms: u64,
    pub source: String,
    pub code: u32,
    pub message: String,
    #[serde(default)]
    pub rpc: Option<String>,
    #[serde(default)]
    pub task_id: Option<u64>,
}

/// Credentials one CPE uses to authenticate to the ACS, optionally bound to
/// the device that may use them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpeCredential {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub device_id: Option<String>,
}

impl fmt::Debug for CpeCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpeCredential")
            .field("username", &self.username)
            .field("password", &"********")
            .field("device_id", &self.device_id)
            .finish()
    }
}

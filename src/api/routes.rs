//! The route table: one entry per operation, used both to dispatch
//! requests and to generate the OpenAPI document.

use http::Method;

use super::{PathParams, percent_decode};
use crate::store::Role;

/// What a route does (dispatched in `api::dispatch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Healthz,
    Metrics,
    OpenApi,
    ListDevices,
    GetDevice,
    Parameters,
    DataModel,
    Hosts,
    ProvisionPreview,
    Reprovision,
    ConnectionRequest,
    ListDeviceTasks,
    CreateTask,
    GetTask,
    CancelTask,
    ListFaults,
    RetryFault,
    Events,
    PutCredential,
    DeleteCredential,
    ImportGenieacsDevices,
    Login,
    Logout,
    Me,
    ListUsers,
    CreateUser,
    DisableUser,
    ListTokens,
    IssueToken,
    RevokeToken,
    CreateFile,
    ListFiles,
    GetFile,
    DeleteFile,
    CreateCampaign,
    ListCampaigns,
    GetCampaign,
    PauseCampaign,
    ResumeCampaign,
    AbortCampaign,
    Audit,
    ListAlarms,
    History,
    Fleet,
}

/// A query parameter of a route.
#[derive(Debug)]
pub struct QueryParam {
    pub name: &'static str,
    /// JSON Schema type: `string`, `integer` or `boolean`.
    pub kind: &'static str,
    pub description: &'static str,
}

/// One operation.
#[derive(Debug)]
pub struct Route {
    pub method: &'static str,
    /// `/api/v1/devices/{id}`: `{name}` segments are parameters.
    pub path: &'static str,
    pub op: Op,
    pub op_id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    pub query: &'static [QueryParam],
    /// Component schema of the JSON request body, if any.
    pub body: Option<&'static str>,
    /// Success status and its component schema (`None`: no body, or not
    /// JSON; see `content`).
    pub ok: (u16, Option<&'static str>),
    /// Content type of the success body when not JSON.
    pub content: Option<&'static str>,
    /// Error statuses the route can answer (401 is implied for
    /// non-public routes).
    pub errors: &'static [u16],
    /// Reachable without a token.
    pub public: bool,
    /// The least role that may call it (see [`Role`]); creating a task
    /// other than a reboot also needs [`Role::Ops`].
    pub role: Role,
}

const fn q(name: &'static str, kind: &'static str, description: &'static str) -> QueryParam {
    QueryParam {
        name,
        kind,
        description,
    }
}

const WAIT: QueryParam = q(
    "wait",
    "integer",
    "seconds (0-120) to wait for the outcome before answering; 0 answers at once",
);
const CONNECTION_REQUEST: QueryParam = q(
    "connection_request",
    "boolean",
    "send the device a connection request so that it opens a session now",
);

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/api/v1/import/genieacs-devices",
        op: Op::ImportGenieacsDevices,
        op_id: "importGenieacsDevices",
        tag: "migration",
        summary: "Import GenieACS's devices",
        description: "The body is a `mongoexport` of GenieACS's `devices` collection (JSON lines or one JSON array), streamed to the data dir and imported into the running ACS: identity, dates, tags, connection-request URL and credentials, parameter values. Devices keep GenieACS's `_id`. A dry run unless `apply=true`; idempotent; a device that has informed this ACS since is never overwritten. Answers the import report (`created`, `updated`, `unchanged`, `live_here`, `invalid` with each document's position and reason). `gigafibre-acs migrate genieacs-devices FILE --server URL` sends here.",
        query: &[q("apply", "boolean", "write (default false: report only)")],
        body: None,
        ok: (200, Some("ImportReport")),
        content: None,
        errors: &[400, 413],
        public: false,
        role: Role::Admin,
    },
    Route {
        method: "GET",
        path: "/healthz",
        op: Op::Healthz,
        op_id: "healthz",
        tag: "service",
        summary: "Liveness probe",
        description: "Answers 200 while the ACS serves requests. No token needed.",
        query: &[],
        body: None,
        ok: (200, Some("Health")),
        content: None,
        errors: &[],
        public: true,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/metrics",
        op: Op::Metrics,
        op_id: "metrics",
        tag: "service",
        summary: "Prometheus metrics",
        description: "Sessions, RPCs, faults, ERPNext calls/latency/errors, connection requests, in-flight requests, events, in the Prometheus text format. No token needed.",
        query: &[],
        body: None,
        ok: (200, None),
        content: Some("text/plain; version=0.0.4"),
        errors: &[],
        public: true,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/openapi.json",
        op: Op::OpenApi,
        op_id: "openapi",
        tag: "service",
        summary: "This document",
        description: "The OpenAPI 3.1 description of this API, generated from the ACS's route table.",
        query: &[],
        body: None,
        ok: (200, None),
        content: Some("application/json"),
        errors: &[],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/devices",
        op: Op::ListDevices,
        op_id: "listDevices",
        tag: "devices",
        summary: "List or search devices",
        description: "Devices in id order. `q` finds a device by serial number, MAC address or GPON serial in any usual form (`AA:BB:..`, `aa-bb-..`, `aabb..`; `RCMG1A2B3C4D` or its hex form), device id, or ERPNext Service Equipment name (case-insensitive; a prefix of the serial or id matches too).",
        query: &[
            q(
                "q",
                "string",
                "search text: serial, MAC, GPON serial, device id or equipment name",
            ),
            q("limit", "integer", "page size, 1-1000 (default 50)"),
            q("cursor", "string", "`next_cursor` of the previous page"),
        ],
        body: None,
        ok: (200, Some("DeviceList")),
        content: None,
        errors: &[400],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/devices/{id}",
        op: Op::GetDevice,
        op_id: "getDevice",
        tag: "devices",
        summary: "One device",
        description: "Identity, model, firmware, last inform and its events, online state, remote address, ERPNext link and provisioning state, ONT diagnostics (optical power, WAN addresses), management URL, latest connection request.",
        query: &[],
        body: None,
        ok: (200, Some("Device")),
        content: None,
        errors: &[404],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/devices/{id}/parameters",
        op: Op::Parameters,
        op_id: "getParameters",
        tag: "devices",
        summary: "Cached parameter values",
        description: "What the device last reported, with the age of each value. Secrets are masked.",
        query: &[q(
            "prefix",
            "string",
            "only paths starting with this (e.g. `Device.WiFi.`)",
        )],
        body: None,
        ok: (200, Some("ParameterList")),
        content: None,
        errors: &[404],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/devices/{id}/data-model",
        op: Op::DataModel,
        op_id: "getDataModel",
        tag: "devices",
        summary: "The device's discovered data model",
        description: "The names the device reported (GetParameterNames) with their writability, objects ending in `.`, as learned at its first contact, its bootstrap or its last firmware change, plus what provisioning found in them: the primary WiFi network of each band, the voice lines, identity and optical fields. Tables whose rows come and go (hosts, WiFi stations, mesh nodes) are listed without their rows; they are learned again whenever they are read. 409 before the device's first discovery.",
        query: &[
            q(
                "prefix",
                "string",
                "only names starting with this (e.g. `Device.WiFi.`)",
            ),
            q("limit", "integer", "names per page (1-10000, default 2000)"),
            q("cursor", "string", "`next_cursor` of the previous page"),
        ],
        body: None,
        ok: (200, Some("DataModel")),
        content: None,
        errors: &[400, 404, 409],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/devices/{id}/hosts",
        op: Op::Hosts,
        op_id: "getHosts",
        tag: "topology",
        summary: "Mesh topology and clients",
        description: "Mesh nodes (controller first, then satellites with backhaul) with the clients attached to each (band, signal in dBm and 0-100 %), unplaced clients, totals, and the age of the data. `refresh=true` sends a connection request, has the device re-read its host tables and waits (up to `wait`, default 30 s) for the fresh topology.",
        query: &[
            q(
                "refresh",
                "boolean",
                "re-read the host table now (connection request) before answering",
            ),
            WAIT,
        ],
        body: None,
        ok: (200, Some("Hosts")),
        content: None,
        errors: &[404, 409],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/devices/{id}/provision",
        op: Op::ProvisionPreview,
        op_id: "previewProvisioning",
        tag: "provisioning",
        summary: "What provisioning would push now",
        description: "Reads ERPNext now and plans the SetParameterValues provisioning would send, against the cached values. Secrets are masked.",
        query: &[],
        body: None,
        ok: (200, Some("ProvisionPreview")),
        content: None,
        errors: &[404, 409, 502, 503],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "POST",
        path: "/api/v1/devices/{id}/reprovision",
        op: Op::Reprovision,
        op_id: "reprovision",
        tag: "provisioning",
        summary: "Reprovision a device now",
        description: "Forgets cached ERPNext answers for the device, queues a full provisioning run and sends a connection request. Answers 202 with the task at once, or with `wait` the finished task (200) when the device completes it in time.",
        query: &[
            WAIT,
            q(
                "connection_request",
                "boolean",
                "send a connection request (default true)",
            ),
        ],
        body: None,
        ok: (202, Some("ActionResult")),
        content: None,
        errors: &[404, 409, 503],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "POST",
        path: "/api/v1/devices/{id}/connection-request",
        op: Op::ConnectionRequest,
        op_id: "connectionRequest",
        tag: "devices",
        summary: "Ask the device to open a session now",
        description: "HTTP connection request with Digest (or TR-111 UDP for devices behind NAT); the result says whether the device accepted. Rate-limited per device.",
        query: &[],
        body: None,
        ok: (200, Some("ConnectionRequestResult")),
        content: None,
        errors: &[404, 429],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/devices/{id}/tasks",
        op: Op::ListDeviceTasks,
        op_id: "listDeviceTasks",
        tag: "tasks",
        summary: "A device's tasks",
        description: "Pending and recent tasks of a device, oldest first.",
        query: &[],
        body: None,
        ok: (200, Some("TaskList")),
        content: None,
        errors: &[404],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "POST",
        path: "/api/v1/devices/{id}/tasks",
        op: Op::CreateTask,
        op_id: "createTask",
        tag: "tasks",
        summary: "Queue a task",
        description: "Queues an RPC for the device's open session or its next one. The body names the task (`getParameterValues`, `getParameterNames`, `setParameterValues`, `addObject`, `deleteObject`, `refresh`, `reboot`, `factoryReset`, `download`) with its arguments; paths and values are checked first and a bad one is a 400 naming the field, with nothing queued. Answers 201 with the queued task, or 200 with the finished one when `wait` sees it finish.",
        query: &[CONNECTION_REQUEST, WAIT],
        body: Some("TaskRequest"),
        ok: (201, Some("ActionResult")),
        content: None,
        errors: &[400, 404],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/tasks/{id}",
        op: Op::GetTask,
        op_id: "getTask",
        tag: "tasks",
        summary: "One task",
        description: "A task and, once done, the device's response or fault.",
        query: &[],
        body: None,
        ok: (200, Some("Task")),
        content: None,
        errors: &[400, 404],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/tasks/{id}",
        op: Op::CancelTask,
        op_id: "cancelTask",
        tag: "tasks",
        summary: "Cancel a task",
        description: "Withdraws a task that has not been sent yet (status becomes `cancelled`). A task already sent to the device cannot be withdrawn: 409.",
        query: &[],
        body: None,
        ok: (200, Some("Task")),
        content: None,
        errors: &[400, 404, 409],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "GET",
        path: "/api/v1/faults",
        op: Op::ListFaults,
        op_id: "listFaults",
        tag: "faults",
        summary: "Faults, newest first",
        description: "CPE fault responses, problems the ACS saw, and provisioning failures.",
        query: &[
            q("device", "string", "only this device's faults"),
            q(
                "limit",
                "integer",
                "at most this many, 1-1000 (default 100)",
            ),
        ],
        body: None,
        ok: (200, Some("FaultList")),
        content: None,
        errors: &[400],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/faults/{id}",
        op: Op::RetryFault,
        op_id: "retryFault",
        tag: "faults",
        summary: "Clear a fault and retry",
        description: "Removes the fault and retries what failed: a failed task is queued again as a new task; a provisioning fault queues a reprovision. The answer names the new task, if any.",
        query: &[],
        body: None,
        ok: (200, Some("FaultRetry")),
        content: None,
        errors: &[400, 404],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "GET",
        path: "/api/v1/events",
        op: Op::Events,
        op_id: "events",
        tag: "events",
        summary: "Live events (Server-Sent Events)",
        description: "A `text/event-stream` of `device.online`, `device.bootstrap`, `device.provisioned`, `device.fault` and `task.done` events; each `data:` line is an Event JSON object. A comment line is sent every 15 s to keep proxies from closing the stream.",
        query: &[
            q(
                "types",
                "string",
                "comma-separated event types to receive (default: all)",
            ),
            q("device", "string", "only this device's events"),
        ],
        body: None,
        ok: (200, None),
        content: Some("text/event-stream"),
        errors: &[400],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "PUT",
        path: "/api/v1/cpe-credentials/{username}",
        op: Op::PutCredential,
        op_id: "putCpeCredential",
        tag: "credentials",
        summary: "Set a CPE's own ACS credentials",
        description: "Credentials a CPE authenticates to the ACS with instead of the global ones, optionally bound to one device id.",
        query: &[],
        body: Some("CpeCredential"),
        ok: (204, None),
        content: None,
        errors: &[400],
        public: false,
        role: Role::Admin,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/cpe-credentials/{username}",
        op: Op::DeleteCredential,
        op_id: "deleteCpeCredential",
        tag: "credentials",
        summary: "Remove a CPE's own ACS credentials",
        description: "",
        query: &[],
        body: None,
        ok: (204, None),
        content: None,
        errors: &[404],
        public: false,
        role: Role::Admin,
    },
    Route {
        method: "POST",
        path: "/api/v1/login",
        op: Op::Login,
        op_id: "login",
        tag: "accounts",
        summary: "Log in (the console)",
        description: "Checks a user's name and password (made with `gigafibre-acs user add` or `POST /api/v1/users`) and opens a console session: an HttpOnly, SameSite=Strict cookie (Secure over HTTPS) and a CSRF token that every write made with the cookie sends back in `X-CSRF-Token`. Five failures in a row lock the account for 15 minutes; attempts are limited per client address. Machines use bearer tokens instead.",
        query: &[],
        body: Some("LoginRequest"),
        ok: (200, Some("Me")),
        content: None,
        errors: &[400, 401, 403, 429],
        public: true,
        role: Role::Technician,
    },
    Route {
        method: "POST",
        path: "/api/v1/logout",
        op: Op::Logout,
        op_id: "logout",
        tag: "accounts",
        summary: "Log out",
        description: "Ends the console session of the cookie sent (its cookie is cleared).",
        query: &[],
        body: None,
        ok: (204, None),
        content: None,
        errors: &[403],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/me",
        op: Op::Me,
        op_id: "me",
        tag: "accounts",
        summary: "Who is calling",
        description: "The user (or token) of this request, its role, and for a console session its CSRF token.",
        query: &[],
        body: None,
        ok: (200, Some("Me")),
        content: None,
        errors: &[],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/users",
        op: Op::ListUsers,
        op_id: "listUsers",
        tag: "accounts",
        summary: "Users",
        description: "Every user: name, role, disabled, locked. Never a password or its hash.",
        query: &[],
        body: None,
        ok: (200, Some("UserList")),
        content: None,
        errors: &[403],
        public: false,
        role: Role::Admin,
    },
    Route {
        method: "POST",
        path: "/api/v1/users",
        op: Op::CreateUser,
        op_id: "createUser",
        tag: "accounts",
        summary: "Create a user, or change one's role or password",
        description: "`{\"name\", \"role\", \"password\"}` creates a user (409 if the name is taken, unless `replace` is true: then its role and password change and its sessions end). Names: lower-case letters, digits, `.`, `_`, `-`; passwords: 12 characters or more.",
        query: &[],
        body: Some("NewUser"),
        ok: (201, Some("User")),
        content: None,
        errors: &[400, 403, 409],
        public: false,
        role: Role::Admin,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/users/{name}",
        op: Op::DisableUser,
        op_id: "disableUser",
        tag: "accounts",
        summary: "Disable a user",
        description: "The user can no longer log in and its console sessions end; its audit entries stay. `gigafibre-acs user enable` brings it back.",
        query: &[],
        body: None,
        ok: (200, Some("User")),
        content: None,
        errors: &[403, 404],
        public: false,
        role: Role::Admin,
    },
    Route {
        method: "GET",
        path: "/api/v1/tokens",
        op: Op::ListTokens,
        op_id: "listTokens",
        tag: "accounts",
        summary: "Issued API tokens",
        description: "The tokens admins issued: name, role, when and by whom. Never the token (the store keeps its SHA-256 only). Tokens set in the configuration (`api_tokens`) are not listed.",
        query: &[],
        body: None,
        ok: (200, Some("TokenList")),
        content: None,
        errors: &[403],
        public: false,
        role: Role::Admin,
    },
    Route {
        method: "POST",
        path: "/api/v1/tokens",
        op: Op::IssueToken,
        op_id: "issueToken",
        tag: "accounts",
        summary: "Issue an API token to a machine",
        description: "`{\"name\", \"role\"}` issues a token (`gfa_` and 64 hex digits) with that role, shown once in this answer: keep it. Callers send it as `Authorization: Bearer`, on the API and the NBI; the audit log names it `token:NAME`. 409 if the name is taken.",
        query: &[],
        body: Some("NewToken"),
        ok: (201, Some("IssuedTokenSecret")),
        content: None,
        errors: &[400, 403, 409],
        public: false,
        role: Role::Admin,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/tokens/{name}",
        op: Op::RevokeToken,
        op_id: "revokeToken",
        tag: "accounts",
        summary: "Revoke an issued token",
        description: "The token stops working at once, on every node.",
        query: &[],
        body: None,
        ok: (200, Some("IssuedToken")),
        content: None,
        errors: &[403, 404],
        public: false,
        role: Role::Admin,
    },
    Route {
        method: "POST",
        path: "/api/v1/files",
        op: Op::CreateFile,
        op_id: "createFile",
        tag: "firmware",
        summary: "Add a file devices download (a firmware image)",
        description: "The body is the file itself (any Content-Type but JSON), streamed to disk while its SHA-256 is computed; `name` is the file name devices see, `model` and `version` describe the image (`version`: the SoftwareVersion a device reports once it runs it), `sha256` when given must match (else 400, nothing kept). At most `file_max_mb`. With `Content-Type: application/json`, `{\"name\", \"url\", \"size\", \"sha256\"[, \"model\", \"version\"]}` declares a file served elsewhere (a CDN). Devices fetch the ACS's own files from the CWMP listener at `/files/ID/NAME` with a link signed for them.",
        query: &[
            q(
                "name",
                "string",
                "the file name devices see: 1-128 of A-Z a-z 0-9 . _ -",
            ),
            q("model", "string", "the model(s) the image is for"),
            q("version", "string", "the SoftwareVersion of the image"),
            q(
                "sha256",
                "string",
                "the SHA-256 the file must have (64 hex digits)",
            ),
        ],
        body: None,
        ok: (201, Some("File")),
        content: None,
        errors: &[400, 403, 413],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "GET",
        path: "/api/v1/files",
        op: Op::ListFiles,
        op_id: "listFiles",
        tag: "firmware",
        summary: "Files",
        description: "Every file, newest first.",
        query: &[],
        body: None,
        ok: (200, Some("FileList")),
        content: None,
        errors: &[403],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "GET",
        path: "/api/v1/files/{id}",
        op: Op::GetFile,
        op_id: "getFile",
        tag: "firmware",
        summary: "One file",
        description: "Its name, model, version, size, SHA-256, where it is served from, who added it and when.",
        query: &[],
        body: None,
        ok: (200, Some("File")),
        content: None,
        errors: &[403, 404],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/files/{id}",
        op: Op::DeleteFile,
        op_id: "deleteFile",
        tag: "firmware",
        summary: "Delete a file",
        description: "Its record and its bytes; links already sent for it stop working.",
        query: &[],
        body: None,
        ok: (200, Some("File")),
        content: None,
        errors: &[403, 404],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "POST",
        path: "/api/v1/campaigns",
        op: Op::CreateCampaign,
        op_id: "createCampaign",
        tag: "firmware",
        summary: "Start a firmware campaign",
        description: "`{\"name\", \"file\": FILE_ID, \"target\": {\"model_names\", \"software_versions\", \"tags\", \"devices\"}, \"waves\": [1, 10, 50, 100] (cumulative % of the target) or {\"counts\": [...]}, \"window\": {\"start\": \"01:00\", \"end\": \"05:00\", \"time_zone\": \"America/Montreal\"}, \"max_concurrent\": 50, \"stop\": {\"max_failures\", \"max_failure_percent\", \"back_online_minutes\": 30}}`. The file must have a `version` and, when the ACS serves it, still match its SHA-256. The target is resolved now (devices by id); devices already on the version are skipped; a device another active campaign holds is a 409. Devices get the Download inside the window, at most `max_concurrent` at a time, by connection request or at their next session; a wave waits for the previous one to finish, and a stop rule exceeded halts the campaign.",
        query: &[],
        body: Some("NewCampaign"),
        ok: (201, Some("Campaign")),
        content: None,
        errors: &[400, 403, 409],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "GET",
        path: "/api/v1/campaigns",
        op: Op::ListCampaigns,
        op_id: "listCampaigns",
        tag: "firmware",
        summary: "Firmware campaigns",
        description: "Every campaign, newest first, with its counts per wave.",
        query: &[],
        body: None,
        ok: (200, Some("CampaignList")),
        content: None,
        errors: &[403],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "GET",
        path: "/api/v1/campaigns/{id}",
        op: Op::GetCampaign,
        op_id: "getCampaign",
        tag: "firmware",
        summary: "One campaign",
        description: "Its state (`running`, `paused`, `halted`, `done`, `aborted`), `halt_reason`, counts per wave and each device's outcome: `pending`, `skipped`, `sent`, `succeeded`, `failed` (the CPE's fault), `timed_out`, `wrong_version`.",
        query: &[],
        body: None,
        ok: (200, Some("Campaign")),
        content: None,
        errors: &[403, 404],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "POST",
        path: "/api/v1/campaigns/{id}/pause",
        op: Op::PauseCampaign,
        op_id: "pauseCampaign",
        tag: "firmware",
        summary: "Pause a campaign",
        description: "No new Download is sent; those under way finish.",
        query: &[],
        body: None,
        ok: (200, Some("Campaign")),
        content: None,
        errors: &[403, 404, 409],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "POST",
        path: "/api/v1/campaigns/{id}/resume",
        op: Op::ResumeCampaign,
        op_id: "resumeCampaign",
        tag: "firmware",
        summary: "Resume a paused or halted campaign",
        description: "It goes on where it stopped (a halted wave is judged again as its devices finish).",
        query: &[],
        body: None,
        ok: (200, Some("Campaign")),
        content: None,
        errors: &[403, 404, 409],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "POST",
        path: "/api/v1/campaigns/{id}/abort",
        op: Op::AbortCampaign,
        op_id: "abortCampaign",
        tag: "firmware",
        summary: "Abort a campaign",
        description: "Downloads not yet sent to their device are withdrawn; its devices are free for another campaign.",
        query: &[],
        body: None,
        ok: (200, Some("Campaign")),
        content: None,
        errors: &[403, 404, 409],
        public: false,
        role: Role::Ops,
    },
    Route {
        method: "GET",
        path: "/api/v1/audit",
        op: Op::Audit,
        op_id: "audit",
        tag: "accounts",
        summary: "The audit log",
        description: "Every write through the API and the NBI, and every login attempt, newest first: who (a user, or `token:` and the start of the token's hash), the action (the operation id, e.g. `reprovision`), the device, the time and the HTTP status it ended with. Kept for `audit_retention_days`.",
        query: &[
            q("device", "string", "only this device's entries"),
            q("user", "string", "only this user's (or token's) entries"),
            q(
                "since",
                "string",
                "only entries at or after this time (RFC 3339)",
            ),
            q("limit", "integer", "entries, 1-1000 (default 100)"),
        ],
        body: None,
        ok: (200, Some("AuditList")),
        content: None,
        errors: &[400],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/alarms",
        op: Op::ListAlarms,
        op_id: "listAlarms",
        tag: "alarms",
        summary: "Open alarms",
        description: "Alarms open now (they clear themselves when their cause goes): `optical_rx_low` / `optical_rx_high` when an ONT's received optical power leaves the limits of its optical class (alarm rules; GPON B+ by default: -27..-8 dBm), with the reading and the limit; `silent`, `boot_loop`, `provisioning_failed`. Raised and cleared alarms are also events (`alarm.raised`, `alarm.cleared`) on the stream and the webhook.",
        query: &[q("device", "string", "only this device's alarms")],
        body: None,
        ok: (200, Some("AlarmList")),
        content: None,
        errors: &[],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/devices/{id}/history",
        op: Op::History,
        op_id: "getHistory",
        tag: "alarms",
        summary: "A device's readings over time",
        description: "The readings the ACS took of a metric, oldest first: `optical_rx_dbm`, `optical_tx_dbm`, `wifi_clients` and their mean `wifi_signal_pct` over every mesh node (each time the device's host tables and diagnostics were read), `reboots` (1 per boot), `informs_missed` (periodic Informs missed, counted when the device comes back); with `node=MAC`, `wifi_clients` / `wifi_signal_pct` of that mesh node alone; `wan_ip`: the WAN addresses (space-separated), one point per change, starting with the one in force at `since`. Every reading for 48 h, then one per 6 hours (mean; reboots: count), for `history_retention_days`.",
        query: &[
            q(
                "metric",
                "string",
                "optical_rx_dbm (default), optical_tx_dbm, wifi_clients, wifi_signal_pct, reboots, informs_missed or wan_ip",
            ),
            q(
                "node",
                "string",
                "a mesh node's MAC (any spelling), with wifi_clients or wifi_signal_pct",
            ),
            q(
                "since",
                "string",
                "from this time (RFC 3339; default 30 days ago)",
            ),
            q("limit", "integer", "points, 1-10000 (default 1000)"),
        ],
        body: None,
        ok: (200, Some("History")),
        content: None,
        errors: &[400, 404],
        public: false,
        role: Role::Technician,
    },
    Route {
        method: "GET",
        path: "/api/v1/fleet",
        op: Op::Fleet,
        op_id: "fleet",
        tag: "alarms",
        summary: "The fleet at a glance",
        description: "Device counts by model, firmware and provisioning status, how many are online, open alarms by kind and the first 200 of them. Reads every device record.",
        query: &[],
        body: None,
        ok: (200, Some("Fleet")),
        content: None,
        errors: &[],
        public: false,
        role: Role::Ops,
    },
];

/// Result of looking a request up in [`ROUTES`].
pub enum Match {
    Found {
        route: &'static Route,
        params: PathParams,
    },
    /// The path exists with other methods.
    WrongMethod {
        allowed: Vec<&'static str>,
    },
    NotFound,
}

/// Percent-decoded parameters if `path` fits `pattern`.
fn fit(pattern: &str, path: &str) -> Option<Vec<String>> {
    let want: Vec<&str> = pattern.split('/').skip(1).collect();
    let got: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    if want.len() != got.len() {
        return None;
    }
    let mut params = Vec::new();
    for (w, g) in want.iter().zip(&got) {
        if w.starts_with('{') {
            if g.is_empty() {
                return None;
            }
            // An undecodable segment still "fits"; it is reported as bad
            // input rather than as an unknown route.
            params.push(percent_decode(g).unwrap_or_else(|| (*g).to_owned()));
        } else if w != g {
            return None;
        }
    }
    Some(params)
}

pub fn find(method: &Method, path: &str) -> Match {
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(params) = fit(route.path, path) {
            if method.as_str() == route.method {
                return Match::Found {
                    route,
                    params: PathParams(params),
                };
            }
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        Match::NotFound
    } else {
        Match::WrongMethod { allowed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "duplicate {} {}",
                r.method,
                r.path
            );
            assert!(r.path.starts_with('/'));
            // Logging in is the one public route of the API proper.
            assert!(
                r.public != r.path.starts_with("/api/") || r.op == Op::Login,
                "{}",
                r.path
            );
            assert!(["GET", "POST", "PUT", "DELETE"].contains(&r.method));
        }
        let ops: std::collections::HashSet<_> = ROUTES.iter().map(|r| r.op_id).collect();
        assert_eq!(ops.len(), ROUTES.len(), "operation ids are unique");
    }

    #[test]
    fn matching() {
        match find(&Method::GET, "/api/v1/devices/A%2DB/hosts") {
            Match::Found { route, params } => {
                assert_eq!(route.op, Op::Hosts);
                assert_eq!(params.0, ["A-B"]);
            }
            _ => panic!("no match"),
        }
        match find(&Method::PATCH, "/api/v1/tasks/7") {
            Match::WrongMethod { allowed } => assert_eq!(allowed, ["GET", "DELETE"]),
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            find(&Method::GET, "/api/v1/nope"),
            Match::NotFound
        ));
        assert!(matches!(
            find(&Method::GET, "/api/v1/devices//hosts"),
            Match::NotFound
        ));
        assert!(matches!(
            find(&Method::GET, "/api/v1/devices/"),
            Match::Found { route, .. } if route.op == Op::ListDevices
        ));
    }
}

//! Software module management (TR-157 deployment units): ChangeDUState and
//! the CPE's DUStateChangeComplete reports.

use serde::{Deserialize, Serialize};

use super::{Message, Password, bool_or_false, empty_message, text};
use crate::cwmp::{DecodeError, XmlWriter, xml::Element};

empty_message!(
    ChangeDUStateResponse,
    DUStateChangeCompleteResponse,
    AutonomousDUStateChangeCompleteResponse
);

/// One operation of a ChangeDUState, written as
/// `<Operations xsi:type="cwmp:InstallOpStruct">`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DuOperation {
    Install {
        url: String,
        #[serde(default)]
        uuid: String,
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: Password,
        #[serde(default)]
        execution_env_ref: String,
    },
    Update {
        #[serde(default)]
        uuid: String,
        #[serde(default)]
        version: String,
        #[serde(default)]
        url: String,
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: Password,
    },
    Uninstall {
        uuid: String,
        #[serde(default)]
        version: String,
        #[serde(default)]
        execution_env_ref: String,
    },
}

impl DuOperation {
    fn decode(op: Element<'_, '_>) -> Option<DuOperation> {
        // The subtype is named by xsi:type; a CPE-side tool might instead use
        // the struct name as the element name.
        let kind = op.xsi_type().unwrap_or(op.local());
        Some(match kind {
            "InstallOpStruct" => DuOperation::Install {
                url: text(op, "URL"),
                uuid: text(op, "UUID"),
                username: text(op, "Username"),
                password: Password(text(op, "Password")),
                execution_env_ref: text(op, "ExecutionEnvRef"),
            },
            "UpdateOpStruct" => DuOperation::Update {
                uuid: text(op, "UUID"),
                version: text(op, "Version"),
                url: text(op, "URL"),
                username: text(op, "Username"),
                password: Password(text(op, "Password")),
            },
            "UninstallOpStruct" => DuOperation::Uninstall {
                uuid: text(op, "UUID"),
                version: text(op, "Version"),
                execution_env_ref: text(op, "ExecutionEnvRef"),
            },
            _ => return None,
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        match self {
            DuOperation::Install {
                url,
                uuid,
                username,
                password,
                execution_env_ref,
            } => {
                w.raw("<Operations xsi:type=\"cwmp:InstallOpStruct\">");
                w.text_element("URL", url);
                w.text_element("UUID", uuid);
                w.text_element("Username", username);
                w.text_element("Password", &password.0);
                w.text_element("ExecutionEnvRef", execution_env_ref);
            }
            DuOperation::Update {
                uuid,
                version,
                url,
                username,
                password,
            } => {
                w.raw("<Operations xsi:type=\"cwmp:UpdateOpStruct\">");
                w.text_element("UUID", uuid);
                w.text_element("Version", version);
                w.text_element("URL", url);
                w.text_element("Username", username);
                w.text_element("Password", &password.0);
            }
            DuOperation::Uninstall {
                uuid,
                version,
                execution_env_ref,
            } => {
                w.raw("<Operations xsi:type=\"cwmp:UninstallOpStruct\">");
                w.text_element("UUID", uuid);
                w.text_element("Version", version);
                w.text_element("ExecutionEnvRef", execution_env_ref);
            }
        }
        w.close("Operations");
    }
}

/// `ChangeDUState` (ACS → CPE).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeDUState {
    pub operations: Vec<DuOperation>,
    #[serde(default)]
    pub command_key: String,
}

impl Message for ChangeDUState {
    const NAME: &'static str = "ChangeDUState";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(ChangeDUState {
            // The schema repeats `Operations` with an xsi:type each; the
            // SOAP-array habit wraps typed items in one `Operations`.
            operations: el
                .children()
                .filter(|c| c.local() == "Operations")
                .flat_map(|ops| match DuOperation::decode(ops) {
                    Some(op) => vec![op],
                    None => ops.children().filter_map(DuOperation::decode).collect(),
                })
                .collect(),
            command_key: text(el, "CommandKey"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        for op in &self.operations {
            op.encode(w);
        }
        w.text_element("CommandKey", &self.command_key);
    }
}

/// `OpResultStruct` / `AutonOpResultStruct`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuOpResult {
    pub uuid: String,
    pub deployment_unit_ref: String,
    pub version: String,
    pub current_state: String,
    pub resolved: bool,
    pub execution_unit_ref_list: String,
    pub start_time: String,
    pub complete_time: String,
    pub fault_code: u32,
    pub fault_string: String,
    /// Only in AutonomousDUStateChangeComplete: Install, Update or Uninstall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_performed: Option<String>,
}

impl DuOpResult {
    fn decode(r: Element<'_, '_>) -> DuOpResult {
        let fault = r.child("Fault");
        DuOpResult {
            uuid: text(r, "UUID"),
            deployment_unit_ref: text(r, "DeploymentUnitRef"),
            version: text(r, "Version"),
            current_state: text(r, "CurrentState"),
            resolved: bool_or_false(r, "Resolved"),
            execution_unit_ref_list: text(r, "ExecutionUnitRefList"),
            start_time: text(r, "StartTime"),
            complete_time: text(r, "CompleteTime"),
            fault_code: fault
                .and_then(|f| f.child_text("FaultCode").parse().ok())
                .unwrap_or(0),
            fault_string: fault.map(|f| text(f, "FaultString")).unwrap_or_default(),
            operation_performed: r.child("OperationPerformed").map(|o| o.text().to_owned()),
        }
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.open("Results");
        w.text_element("UUID", &self.uuid);
        w.text_element("DeploymentUnitRef", &self.deployment_unit_ref);
        w.text_element("Version", &self.version);
        w.text_element("CurrentState", &self.current_state);
        w.bool_element("Resolved", self.resolved);
        w.text_element("ExecutionUnitRefList", &self.execution_unit_ref_list);
        w.text_element("StartTime", &self.start_time);
        w.text_element("CompleteTime", &self.complete_time);
        w.open("Fault");
        w.num_element("FaultCode", self.fault_code);
        w.text_element("FaultString", &self.fault_string);
        w.close("Fault");
        if let Some(op) = &self.operation_performed {
            w.text_element("OperationPerformed", op);
        }
        w.close("Results");
    }
}

/// `Results` are repeated elements in the schema; some CPEs wrap them in a
/// single SOAP array instead. Both are read.
fn decode_results(el: Element<'_, '_>) -> Vec<DuOpResult> {
    let mut out = Vec::new();
    for r in el.children().filter(|c| c.local() == "Results") {
        if r.child("UUID").is_some() || r.child("CurrentState").is_some() {
            out.push(DuOpResult::decode(r));
        } else {
            out.extend(r.children().map(DuOpResult::decode));
        }
    }
    out
}

/// `DUStateChangeComplete` (CPE → ACS).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DUStateChangeComplete {
    pub results: Vec<DuOpResult>,
    pub command_key: String,
}

impl Message for DUStateChangeComplete {
    const NAME: &'static str = "DUStateChangeComplete";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(DUStateChangeComplete {
            results: decode_results(el),
            command_key: text(el, "CommandKey"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        for r in &self.results {
            r.encode(w);
        }
        w.text_element("CommandKey", &self.command_key);
    }
}

/// `AutonomousDUStateChangeComplete` (CPE → ACS).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutonomousDUStateChangeComplete {
    pub results: Vec<DuOpResult>,
}

impl Message for AutonomousDUStateChangeComplete {
    const NAME: &'static str = "AutonomousDUStateChangeComplete";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(AutonomousDUStateChangeComplete {
            results: decode_results(el),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        for r in &self.results {
            r.encode(w);
        }
    }
}

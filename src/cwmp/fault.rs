//! SOAP Faults carrying a `cwmp:Fault` detail, in both directions.

use serde::{Deserialize, Serialize};

use super::rpc::text;
use super::{DecodeError, XmlWriter, xml::Element};

/// Fault codes the ACS sends to a CPE (TR-069 Table A.5 and 1.4's 8006).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcsFaultCode {
    MethodNotSupported = 8000,
    RequestDenied = 8001,
    InternalError = 8002,
    InvalidArguments = 8003,
    ResourcesExceeded = 8004,
    RetryRequest = 8005,
    VersionIncompatible = 8006,
}

impl AcsFaultCode {
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// A SOAP Fault. `code`/`string` come from the `cwmp:Fault` detail (0 and
/// the SOAP faultstring when a CPE sends a bare SOAP Fault).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// SOAP `faultcode` as sent (`SOAP-ENV:Client`, `Server`, …).
    pub soap_code: String,
    /// SOAP `faultstring` (usually `CWMP fault`).
    pub soap_string: String,
    pub code: u32,
    pub string: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_parameter_values_faults: Vec<SetParameterValuesFault>,
}

/// One failed parameter of a SetParameterValues (fault 9003 detail).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetParameterValuesFault {
    pub parameter_name: String,
    pub code: u32,
    pub string: String,
}

impl Fault {
    /// A fault from the ACS to the CPE with the standard wording.
    pub fn acs(code: AcsFaultCode, detail: impl Into<String>) -> Fault {
        let client = !matches!(
            code,
            AcsFaultCode::InternalError | AcsFaultCode::RetryRequest
        );
        let detail = detail.into();
        Fault {
            soap_code: if client {
                "SOAP-ENV:Client"
            } else {
                "SOAP-ENV:Server"
            }
            .into(),
            soap_string: "CWMP fault".into(),
            code: code.code(),
            string: if detail.is_empty() {
                fault_code_name(code.code()).to_owned()
            } else {
                detail
            },
            set_parameter_values_faults: Vec::new(),
        }
    }

    pub(crate) fn decode(el: Element<'_, '_>) -> Result<Fault, DecodeError> {
        let soap_code = text(el, "faultcode");
        let soap_string = text(el, "faultstring");
        let detail = el
            .child_ignore_case("detail")
            .and_then(|d| d.child("Fault"));
        let Some(detail) = detail else {
            return Ok(Fault {
                soap_code,
                string: soap_string.clone(),
                soap_string,
                code: 0,
                set_parameter_values_faults: Vec::new(),
            });
        };
        let code_text = detail.child_text("FaultCode");
        let code = code_text.parse().map_err(|_| DecodeError::InvalidValue {
            element: "FaultCode",
            value: code_text.chars().take(64).collect(),
            expected: "a numeric CWMP fault code",
        })?;
        Ok(Fault {
            soap_code,
            soap_string,
            code,
            string: text(detail, "FaultString"),
            set_parameter_values_faults: detail
                .children()
                .filter(|c| c.local() == "SetParameterValuesFault")
                .map(|f| SetParameterValuesFault {
                    parameter_name: text(f, "ParameterName"),
                    code: f.child_text("FaultCode").parse().unwrap_or(0),
                    string: text(f, "FaultString"),
                })
                .collect(),
        })
    }

    pub(crate) fn encode(&self, w: &mut XmlWriter) {
        w.open("SOAP-ENV:Fault");
        w.text_element("faultcode", &self.soap_code);
        w.text_element("faultstring", &self.soap_string);
        w.open("detail");
        w.open("cwmp:Fault");
        w.num_element("FaultCode", self.code);
        w.text_element("FaultString", &self.string);
        for f in &self.set_parameter_values_faults {
            w.open("SetParameterValuesFault");
            w.text_element("ParameterName", &f.parameter_name);
            w.num_element("FaultCode", f.code);
            w.text_element("FaultString", &f.string);
            w.close("SetParameterValuesFault");
        }
        w.close("cwmp:Fault");
        w.close("detail");
        w.close("SOAP-ENV:Fault");
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, fault_code_name(self.code))?;
        if !self.string.is_empty() && self.string != fault_code_name(self.code) {
            write!(f, ": {}", self.string)?;
        }
        for spv in &self.set_parameter_values_faults {
            write!(f, "; {} {}", spv.parameter_name, spv.code)?;
        }
        Ok(())
    }
}

/// The meaning of a CWMP fault code (TR-069 Tables A.5 and A.6).
pub fn fault_code_name(code: u32) -> &'static str {
    match code {
        0 => "No CWMP fault code",
        8000 => "Method not supported",
        8001 => "Request denied",
        8002 => "Internal error",
        8003 => "Invalid arguments",
        8004 => "Resources exceeded",
        8005 => "Retry request",
        8006 => "ACS version incompatible with CPE",
        8800..=8899 => "ACS vendor fault",
        9000 => "Method not supported",
        9001 => "Request denied",
        9002 => "Internal error",
        9003 => "Invalid arguments",
        9004 => "Resources exceeded",
        9005 => "Invalid parameter name",
        9006 => "Invalid parameter type",
        9007 => "Invalid parameter value",
        9008 => "Attempt to set a non-writable parameter",
        9009 => "Notification request rejected",
        9010 => "File transfer failure",
        9011 => "Upload failure",
        9012 => "File transfer server authentication failure",
        9013 => "Unsupported protocol for file transfer",
        9014 => "File transfer failure: unable to join multicast group",
        9015 => "File transfer failure: unable to contact file server",
        9016 => "File transfer failure: unable to access file",
        9017 => "File transfer failure: unable to complete download",
        9018 => "File transfer failure: file corrupted",
        9019 => "File transfer failure: file authentication failure",
        9020 => "File transfer failure: unable to complete download within specified time windows",
        9021 => "Cancelation of file transfer not permitted in current transfer state",
        9022 => "Invalid UUID format",
        9023 => "Unknown execution environment",
        9024 => "Disabled execution environment",
        9025 => "Deployment unit to execution environment mismatch",
        9026 => "Duplicate deployment unit",
        9027 => "System resources exceeded",
        9028 => "Unknown deployment unit",
        9029 => "Invalid deployment unit state",
        9030 => "Invalid deployment unit update: downgrade not permitted",
        9031 => "Invalid deployment unit update: version not specified",
        9032 => "Invalid deployment unit update: version already exists",
        9033..=9799 => "CPE fault (reserved code)",
        9800..=9899 => "CPE vendor fault",
        _ => "Unknown fault code",
    }
}

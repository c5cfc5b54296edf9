//! The CWMP (TR-069) wire codec: bytes ⇄ typed SOAP envelopes. No I/O.
//!
//! * [`Envelope::decode`] turns a request body into an [`Envelope`], resolving
//!   XML namespaces (never prefix text) and tolerating the quirks real CPEs
//!   show: any envelope prefix, single quotes, no XML declaration, wrong or
//!   missing `arrayType` counts, missing or oddly prefixed `xsi:type`, booleans
//!   as `0/1`, malformed `CurrentTime`.
//! * [`Envelope::encode`] writes the `SOAP-ENV`/`cwmp` form that every CPE
//!   understands, with `xsi:type` on every value and correct `arrayType` counts,
//!   in the cwmp namespace version the CPE used.
//!
//! Each RPC is a struct implementing [`Message`] in `rpc/`; [`Body`] is the
//! closed set of them plus [`Fault`].

mod envelope;
mod error;
mod fault;
pub mod path;
pub mod rpc;
mod time;
mod value;
mod writer;
pub mod xml;

pub use envelope::{Envelope, Header};
pub use error::DecodeError;
pub use fault::{AcsFaultCode, Fault, SetParameterValuesFault, fault_code_name};
pub use rpc::{Body, Message};
pub use time::{days_from_civil, days_in_month, format_datetime, parse_datetime};
pub use value::{ParameterValue, ValueType, is_secret_parameter, parse_bool};
pub use writer::XmlWriter;

use serde::{Deserialize, Serialize};

/// The version of the `urn:dslforum-org:cwmp-1-N` namespace a message uses.
///
/// CWMP 1.3 and 1.4 kept the `cwmp-1-2` namespace, but some CPEs send the
/// higher strings anyway; all five are accepted and echoed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CwmpVersion {
    #[serde(rename = "1-0")]
    V1_0,
    #[serde(rename = "1-1")]
    V1_1,
    #[serde(rename = "1-2")]
    V1_2,
    #[serde(rename = "1-3")]
    V1_3,
    #[serde(rename = "1-4")]
    V1_4,
}

impl CwmpVersion {
    pub const ALL: [CwmpVersion; 5] = [
        CwmpVersion::V1_0,
        CwmpVersion::V1_1,
        CwmpVersion::V1_2,
        CwmpVersion::V1_3,
        CwmpVersion::V1_4,
    ];

    /// The namespace URI.
    pub fn namespace(self) -> &'static str {
        match self {
            CwmpVersion::V1_0 => "urn:dslforum-org:cwmp-1-0",
            CwmpVersion::V1_1 => "urn:dslforum-org:cwmp-1-1",
            CwmpVersion::V1_2 => "urn:dslforum-org:cwmp-1-2",
            CwmpVersion::V1_3 => "urn:dslforum-org:cwmp-1-3",
            CwmpVersion::V1_4 => "urn:dslforum-org:cwmp-1-4",
        }
    }

    /// Short form, `"1-2"`.
    pub fn as_str(self) -> &'static str {
        &self.namespace()["urn:dslforum-org:cwmp-".len()..]
    }

    pub fn from_namespace(uri: &str) -> Option<CwmpVersion> {
        let rest = uri.trim().strip_prefix("urn:dslforum-org:cwmp-")?;
        CwmpVersion::from_short(rest)
    }

    /// Parses `"1-2"` (also `"1.2"`).
    pub fn from_short(s: &str) -> Option<CwmpVersion> {
        match s {
            "1-0" | "1.0" => Some(CwmpVersion::V1_0),
            "1-1" | "1.1" => Some(CwmpVersion::V1_1),
            "1-2" | "1.2" => Some(CwmpVersion::V1_2),
            "1-3" | "1.3" => Some(CwmpVersion::V1_3),
            "1-4" | "1.4" => Some(CwmpVersion::V1_4),
            _ => None,
        }
    }
}

impl std::fmt::Display for CwmpVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

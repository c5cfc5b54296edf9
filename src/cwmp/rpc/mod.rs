//! Typed CWMP RPC messages: one file per family, every message implementing
//! [`Message`] (its element name, how to read it from the tree, how to write
//! its children).
//!
//! Decoding is tolerant: argument elements are found by local name in any
//! order and namespace, optional elements default, and `arrayType` counts are
//! ignored (the items present are what counts). Encoding is strict: element
//! order as in the CWMP schema, `xsi:type` on every value, exact counts.

mod device;
mod du;
mod inform;
mod objects;
mod parameters;
mod transfer;

pub use device::*;
pub use du::*;
pub use inform::*;
pub use objects::*;
pub use parameters::*;
pub use transfer::*;

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DecodeError;
use super::fault::Fault;
use super::value::{ParameterValue, ValueType};
use super::writer::XmlWriter;
use super::xml::Element;

/// One CWMP RPC message (request or response).
pub trait Message: Sized {
    /// Element name in the SOAP Body (without prefix).
    const NAME: &'static str;
    /// Reads the message from its element.
    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError>;
    /// Writes the message's child elements (the caller writes the wrapper).
    fn encode(&self, w: &mut XmlWriter);
}

macro_rules! body {
    ($($name:ident),* $(,)?) => {
        /// The content of a SOAP Body: one CWMP message, a SOAP Fault, or a
        /// method this codec does not know (answered with fault 8000).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum Body {
            $($name($name),)*
            Fault(Fault),
            /// A method element this codec does not know, by local name.
            Unknown(String),
        }

        impl Body {
            /// Every message element name the codec knows.
            pub const MESSAGE_NAMES: &'static [&'static str] = &[$($name::NAME,)*];

            /// Element name of the message (`"Fault"` for a SOAP Fault).
            pub fn name(&self) -> &str {
                match self {
                    $(Body::$name(_) => $name::NAME,)*
                    Body::Fault(_) => "Fault",
                    Body::Unknown(name) => name,
                }
            }

            pub(crate) fn decode_message(el: Element<'_, '_>) -> Result<Body, DecodeError> {
                match el.local() {
                    $($name::NAME => Ok(Body::$name($name::decode(el)?)),)*
                    other if super::value::is_ncname(other) => Ok(Body::Unknown(other.to_owned())),
                    other => Err(DecodeError::InvalidValue {
                        element: "Body",
                        value: other.chars().take(64).collect(),
                        expected: "an XML element name",
                    }),
                }
            }

            pub(crate) fn encode_message(&self, w: &mut XmlWriter) {
                match self {
                    $(Body::$name(m) => {
                        w.open(concat!("cwmp:", stringify!($name)));
                        m.encode(w);
                        w.close(concat!("cwmp:", stringify!($name)));
                    })*
                    Body::Fault(f) => f.encode(w),
                    // Decoded unknown names are XML names; anything else
                    // cannot be written as an element and is not sent.
                    Body::Unknown(name) if super::value::is_ncname(name) => {
                        w.raw("<cwmp:");
                        w.raw(name);
                        w.raw("/>");
                    }
                    Body::Unknown(_) => w.raw("<cwmp:UnknownMethod/>"),
                }
            }
        }

        $(impl From<$name> for Body {
            fn from(m: $name) -> Body {
                Body::$name(m)
            }
        })*
    };
}

body! {
    // CPE → ACS requests and the ACS's responses.
    Inform, InformResponse,
    TransferComplete, TransferCompleteResponse,
    AutonomousTransferComplete, AutonomousTransferCompleteResponse,
    RequestDownload, RequestDownloadResponse,
    DUStateChangeComplete, DUStateChangeCompleteResponse,
    AutonomousDUStateChangeComplete, AutonomousDUStateChangeCompleteResponse,
    // Either direction.
    GetRPCMethods, GetRPCMethodsResponse,
    // ACS → CPE requests and the CPE's responses.
    GetParameterNames, GetParameterNamesResponse,
    GetParameterValues, GetParameterValuesResponse,
    SetParameterValues, SetParameterValuesResponse,
    GetParameterAttributes, GetParameterAttributesResponse,
    SetParameterAttributes, SetParameterAttributesResponse,
    AddObject, AddObjectResponse,
    DeleteObject, DeleteObjectResponse,
    Reboot, RebootResponse,
    Download, DownloadResponse,
    Upload, UploadResponse,
    FactoryReset, FactoryResetResponse,
    ScheduleInform, ScheduleInformResponse,
    ScheduleDownload, ScheduleDownloadResponse,
    CancelTransfer, CancelTransferResponse,
    GetQueuedTransfers, GetQueuedTransfersResponse,
    GetAllQueuedTransfers, GetAllQueuedTransfersResponse,
    ChangeDUState, ChangeDUStateResponse,
}

/// Requests a CPE sends to the ACS (the ACS answers each in-session).
pub const CPE_REQUESTS: &[&str] = &[
    Inform::NAME,
    TransferComplete::NAME,
    AutonomousTransferComplete::NAME,
    GetRPCMethods::NAME,
    RequestDownload::NAME,
    DUStateChangeComplete::NAME,
    AutonomousDUStateChangeComplete::NAME,
];

/// Requests the ACS sends to a CPE.
pub const ACS_REQUESTS: &[&str] = &[
    GetRPCMethods::NAME,
    GetParameterNames::NAME,
    GetParameterValues::NAME,
    SetParameterValues::NAME,
    GetParameterAttributes::NAME,
    SetParameterAttributes::NAME,
    AddObject::NAME,
    DeleteObject::NAME,
    Reboot::NAME,
    Download::NAME,
    Upload::NAME,
    FactoryReset::NAME,
    ScheduleInform::NAME,
    ScheduleDownload::NAME,
    CancelTransfer::NAME,
    GetQueuedTransfers::NAME,
    GetAllQueuedTransfers::NAME,
    ChangeDUState::NAME,
];

impl Body {
    /// True for the requests a CPE may send to the ACS.
    pub fn is_cpe_request(&self) -> bool {
        CPE_REQUESTS.contains(&self.name())
    }

    /// True for the requests the ACS may send to a CPE.
    pub fn is_acs_request(&self) -> bool {
        ACS_REQUESTS.contains(&self.name())
    }

    /// True for `...Response` messages.
    pub fn is_response(&self) -> bool {
        !matches!(self, Body::Unknown(_) | Body::Fault(_)) && self.name().ends_with("Response")
    }

    /// The name of the response this request expects (`"RebootResponse"`).
    pub fn response_name(&self) -> String {
        format!("{}Response", self.name())
    }
}

/// A password inside an RPC (Download, Upload, ChangeDUState). Kept as
/// plain text because it must reach the CPE, but never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"********\"")
        }
    }
}

// ---- decoding helpers -------------------------------------------------------

/// A required child element.
pub(crate) fn required<'d, 'a>(
    el: Element<'d, 'a>,
    element: &'static str,
    child: &'static str,
) -> Result<Element<'d, 'a>, DecodeError> {
    el.child(child)
        .ok_or(DecodeError::MissingElement { element, child })
}

/// Trimmed text of an optional child (`""` when absent).
pub(crate) fn text(el: Element<'_, '_>, child: &str) -> String {
    el.child_text(child).to_owned()
}

fn invalid(element: &'static str, value: &str, expected: &'static str) -> DecodeError {
    let mut value = value.to_owned();
    if value.len() > 64 {
        let mut cut = 64;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
        value.push('…');
    }
    DecodeError::InvalidValue {
        element,
        value,
        expected,
    }
}

/// An unsigned number that matters (a status, an instance number): absent or
/// malformed is an error naming the element.
pub(crate) fn u32_required(
    el: Element<'_, '_>,
    element: &'static str,
    child: &'static str,
) -> Result<u32, DecodeError> {
    let t = required(el, element, child)?.text();
    t.parse()
        .map_err(|_| invalid(child, t, "an unsigned integer"))
}

/// An unsigned number of no consequence if garbled (MaxEnvelopes,
/// RetryCount, sizes): absent, empty or malformed gives `default`.
pub(crate) fn u32_or(el: Element<'_, '_>, child: &str, default: u32) -> u32 {
    el.child_text(child).parse().unwrap_or(default)
}

pub(crate) fn u64_or(el: Element<'_, '_>, child: &str, default: u64) -> u64 {
    el.child_text(child).parse().unwrap_or(default)
}

pub(crate) fn i32_or(el: Element<'_, '_>, child: &str, default: i32) -> i32 {
    el.child_text(child).parse().unwrap_or(default)
}

/// A boolean in either style; absent or malformed gives `false`.
pub(crate) fn bool_or_false(el: Element<'_, '_>, child: &str) -> bool {
    super::value::parse_bool(el.child_text(child)).unwrap_or(false)
}

/// Items of a SOAP array child (`<ParameterList arrayType=...>`), whatever
/// the arrayType says.
pub(crate) fn items<'d, 'a>(
    el: Element<'d, 'a>,
    child: &str,
) -> impl Iterator<Item = Element<'d, 'a>> + use<'d, 'a> {
    el.child(child).into_iter().flat_map(|a| a.children())
}

/// A `string[]` array.
pub(crate) fn string_list(el: Element<'_, '_>, child: &str) -> Vec<String> {
    items(el, child).map(|s| s.text().to_owned()).collect()
}

/// A `ParameterValueStruct[]` array.
pub(crate) fn parameter_values(el: Element<'_, '_>, child: &str) -> Vec<ParameterValue> {
    items(el, child)
        .filter_map(|pvs| {
            let name = pvs.child_text("Name");
            if name.is_empty() {
                return None;
            }
            let value_el = pvs.child("Value");
            let kind = ValueType::from_xsi(value_el.and_then(|v| v.xsi_type()));
            // String values keep their whitespace (an SSID may end in a
            // space); every other type is trimmed.
            let value = match (value_el, &kind) {
                (None, _) => "",
                (Some(v), ValueType::String) => v.raw_text(),
                (Some(v), _) => v.text(),
            };
            Some(ParameterValue {
                name: name.to_owned(),
                value: value.to_owned(),
                kind,
            })
        })
        .collect()
}

// ---- encoding helpers -------------------------------------------------------

pub(crate) fn write_string_list(w: &mut XmlWriter, name: &str, list: &[String]) {
    w.open_array(name, "xsd:string", list.len());
    for s in list {
        w.text_element("string", s);
    }
    w.close(name);
}

pub(crate) fn write_parameter_values(w: &mut XmlWriter, name: &str, list: &[ParameterValue]) {
    w.open_array(name, "cwmp:ParameterValueStruct", list.len());
    for p in list {
        w.open("ParameterValueStruct");
        w.text_element("Name", &p.name);
        w.raw("<Value xsi:type=\"");
        w.raw(p.kind.prefix());
        w.raw(":");
        w.text(p.kind.as_str());
        w.raw("\">");
        w.text(&p.value);
        w.close("Value");
        w.close("ParameterValueStruct");
    }
    w.close(name);
}

/// Implements [`Message`] for messages without arguments.
macro_rules! empty_message {
    ($($name:ident),* $(,)?) => {
        $(
            #[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
            pub struct $name {}

            impl $crate::cwmp::rpc::Message for $name {
                const NAME: &'static str = stringify!($name);
                fn decode(
                    _el: $crate::cwmp::xml::Element<'_, '_>,
                ) -> Result<Self, $crate::cwmp::DecodeError> {
                    Ok($name {})
                }
                fn encode(&self, _w: &mut $crate::cwmp::XmlWriter) {}
            }
        )*
    };
}
pub(crate) use empty_message;

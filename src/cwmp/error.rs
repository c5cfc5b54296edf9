use thiserror::Error;

/// Why a request body is not a CWMP message we can act on.
///
/// Every variant names what is wrong so that the log line and the HTTP
/// answer tell the operator which CPE sent what.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("body is not XML")]
    NotXml,
    #[error("malformed XML at byte {position}: {reason}")]
    Xml { position: u64, reason: String },
    #[error("XML ends inside <{open_element}> (truncated body)")]
    Truncated { open_element: String },
    #[error("DOCTYPE declarations are not allowed in SOAP messages")]
    DoctypeForbidden,
    #[error("XML nesting deeper than {limit} elements")]
    TooDeep { limit: usize },
    #[error("more than {limit} XML elements")]
    TooManyElements { limit: usize },
    #[error("body is not valid UTF-8 (byte {position})")]
    NotUtf8 { position: usize },
    #[error("unsupported character encoding `{0}`")]
    UnsupportedEncoding(String),
    #[error("root element is <{found}>, not a SOAP Envelope")]
    NotSoapEnvelope { found: String },
    #[error("SOAP Envelope has no Body")]
    MissingBody,
    #[error("SOAP Body is empty")]
    EmptyBody,
    #[error("<{element}> is missing required <{child}>")]
    MissingElement {
        element: &'static str,
        child: &'static str,
    },
    #[error("<{element}> has an invalid value `{value}`: {expected}")]
    InvalidValue {
        element: &'static str,
        value: String,
        expected: &'static str,
    },
}

//! The SOAP envelope around every CWMP message: header, body, namespace
//! version, and the byte-level decoding of request bodies.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::rpc::Body;
use super::xml::{Document, Element, Ns, SOAP_ENC_NS, SOAP_ENV_NS, XSD_NS, XSI_NS};
use super::{CwmpVersion, DecodeError, Fault, XmlWriter, value::parse_bool};

/// CWMP SOAP header elements.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// `cwmp:ID`: correlates a response with its request; echoed verbatim.
    pub id: Option<String>,
    /// `cwmp:HoldRequests` (ACS → CPE): the CPE must not send requests.
    pub hold_requests: Option<bool>,
    /// `cwmp:NoMoreRequests` (CPE → ACS, CWMP 1.0 only, deprecated).
    pub no_more_requests: Option<bool>,
    /// `cwmp:SessionTimeout` (1.3+): session timeout in seconds.
    pub session_timeout: Option<u32>,
    /// `cwmp:SupportedCWMPVersions` (1.4, CPE → ACS): `"1.0,1.1,1.2"`.
    pub supported_cwmp_versions: Option<String>,
    /// `cwmp:UseCWMPVersion` (1.4, ACS → CPE).
    pub use_cwmp_version: Option<String>,
}

impl Header {
    fn is_empty(&self) -> bool {
        self.id.is_none()
            && self.hold_requests.is_none()
            && self.no_more_requests.is_none()
            && self.session_timeout.is_none()
            && self.supported_cwmp_versions.is_none()
            && self.use_cwmp_version.is_none()
    }
}

/// A decoded CWMP message with its envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The cwmp namespace version of the message element.
    pub version: CwmpVersion,
    pub header: Header,
    pub body: Body,
}

impl Envelope {
    pub fn new(version: CwmpVersion, id: Option<String>, body: impl Into<Body>) -> Envelope {
        Envelope {
            version,
            header: Header {
                id,
                ..Header::default()
            },
            body: body.into(),
        }
    }

    /// Decodes a request body. The caller handles the empty body (the CPE's
    /// "I have nothing more to say") before calling this.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let text = decode_text(bytes)?;
        Self::decode_str(&text)
    }

    /// Decodes an envelope already in a `str`.
    pub fn decode_str(text: &str) -> Result<Envelope, DecodeError> {
        let doc = Document::parse(text)?;
        let root = doc.root();
        if root.local() != "Envelope" || !soap_ns_tolerated(root.ns()) {
            return Err(DecodeError::NotSoapEnvelope {
                found: root.local().chars().take(64).collect(),
            });
        }
        let header_el = root.child("Header");
        let header = header_el.map(decode_header).unwrap_or_default();
        let body_el = root.child("Body").ok_or(DecodeError::MissingBody)?;
        let msg = body_el.children().next().ok_or(DecodeError::EmptyBody)?;

        let version = cwmp_version_of(msg)
            .or_else(|| {
                msg.child_ignore_case("detail")
                    .and_then(|d| d.child("Fault"))
                    .and_then(cwmp_version_of)
            })
            .or_else(|| header_el.and_then(|h| h.children().find_map(cwmp_version_of)))
            .unwrap_or(CwmpVersion::V1_0);

        let body = if msg.local() == "Fault" && soap_ns_tolerated(msg.ns()) {
            Body::Fault(Fault::decode(msg)?)
        } else {
            Body::decode_message(msg)?
        };
        Ok(Envelope {
            version,
            header,
            body,
        })
    }

    /// Serialises with the `SOAP-ENV`/`SOAP-ENC`/`xsd`/`xsi`/`cwmp` prefixes
    /// and this envelope's cwmp namespace.
    pub fn encode(&self) -> String {
        let mut w = XmlWriter::new();
        w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        w.raw("<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"");
        w.raw(SOAP_ENV_NS);
        w.raw("\" xmlns:SOAP-ENC=\"");
        w.raw(SOAP_ENC_NS);
        w.raw("\" xmlns:xsd=\"");
        w.raw(XSD_NS);
        w.raw("\" xmlns:xsi=\"");
        w.raw(XSI_NS);
        w.raw("\" xmlns:cwmp=\"");
        w.raw(self.version.namespace());
        w.raw("\">");
        let h = &self.header;
        if !h.is_empty() {
            w.open("SOAP-ENV:Header");
            if let Some(id) = &h.id {
                w.open_with("cwmp:ID", &[("SOAP-ENV:mustUnderstand", "1")]);
                w.text(id);
                w.close("cwmp:ID");
            }
            if let Some(b) = h.hold_requests {
                w.open_with("cwmp:HoldRequests", &[("SOAP-ENV:mustUnderstand", "1")]);
                w.text(if b { "1" } else { "0" });
                w.close("cwmp:HoldRequests");
            }
            if let Some(b) = h.no_more_requests {
                w.bool_element("cwmp:NoMoreRequests", b);
            }
            if let Some(t) = h.session_timeout {
                w.open_with("cwmp:SessionTimeout", &[("SOAP-ENV:mustUnderstand", "0")]);
                w.text(&t.to_string());
                w.close("cwmp:SessionTimeout");
            }
            if let Some(v) = &h.supported_cwmp_versions {
                w.open_with(
                    "cwmp:SupportedCWMPVersions",
                    &[("SOAP-ENV:mustUnderstand", "0")],
                );
                w.text(v);
                w.close("cwmp:SupportedCWMPVersions");
            }
            if let Some(v) = &h.use_cwmp_version {
                w.open_with("cwmp:UseCWMPVersion", &[("SOAP-ENV:mustUnderstand", "1")]);
                w.text(v);
                w.close("cwmp:UseCWMPVersion");
            }
            w.close("SOAP-ENV:Header");
        }
        w.open("SOAP-ENV:Body");
        self.body.encode_message(&mut w);
        w.close("SOAP-ENV:Body");
        w.close("SOAP-ENV:Envelope");
        w.into_string()
    }
}

/// The SOAP 1.1 namespace, or (for broken CPEs) no namespace or a prefix
/// that nothing declares. Any other declared namespace, SOAP 1.2's
/// included, is not CWMP.
fn soap_ns_tolerated(ns: Ns) -> bool {
    matches!(ns, Ns::SoapEnvelope | Ns::None | Ns::UnknownPrefix)
}

fn cwmp_version_of(el: Element<'_, '_>) -> Option<CwmpVersion> {
    match el.ns() {
        Ns::Cwmp(v) => Some(v),
        _ => None,
    }
}

fn decode_header(h: Element<'_, '_>) -> Header {
    let mut header = Header::default();
    for el in h.children() {
        match el.local() {
            "ID" => header.id = Some(el.text().to_owned()),
            "HoldRequests" => header.hold_requests = parse_bool(el.text()),
            "NoMoreRequests" => header.no_more_requests = parse_bool(el.text()),
            "SessionTimeout" => header.session_timeout = el.text().parse().ok(),
            "SupportedCWMPVersions" => header.supported_cwmp_versions = Some(el.text().to_owned()),
            "UseCWMPVersion" => header.use_cwmp_version = Some(el.text().to_owned()),
            _ => {}
        }
    }
    header
}

/// Turns body bytes into text. UTF-8 is what CWMP uses; a UTF-8 BOM is
/// skipped; a declared ISO-8859-1 body is transcoded. Invalid UTF-8 (a CPE
/// writing a Latin-1 SSID into a body declared UTF-8) is replaced with
/// U+FFFD rather than refused, so one odd value does not make a device
/// unmanageable.
pub fn decode_text(bytes: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(DecodeError::UnsupportedEncoding("UTF-16".into()));
    }
    match declared_encoding(bytes) {
        None => {}
        Some(enc) => {
            let e = enc.to_ascii_lowercase();
            match e.as_str() {
                "utf-8" | "utf8" | "us-ascii" | "ascii" => {}
                "iso-8859-1" | "latin1" | "latin-1" | "iso8859-1" => {
                    return Ok(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()));
                }
                _ => {
                    return Err(DecodeError::UnsupportedEncoding(
                        enc.chars().take(32).collect(),
                    ));
                }
            }
        }
    }
    // Valid UTF-8 (every CPE's body) is checked by the fast validator;
    // only a body that is not gets the lossy pass.
    Ok(match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    })
}

/// The `encoding` pseudo-attribute of a leading XML declaration.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(256)];
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &head[start..];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    let close = value.find(quote)?;
    Some(value[..close].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::rpc::{Inform, InformResponse, Message};

    const INFORM_1_0: &str = r#"<?xml version="1.0"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0">
 <SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">42</cwmp:ID></SOAP-ENV:Header>
 <SOAP-ENV:Body><cwmp:Inform>
  <DeviceId><Manufacturer>TP-Link</Manufacturer><OUI>3C52A1</OUI><ProductClass>Device2</ProductClass><SerialNumber>SN1</SerialNumber></DeviceId>
  <Event><EventStruct><EventCode>0 BOOTSTRAP</EventCode><CommandKey></CommandKey></EventStruct></Event>
  <MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2024-05-01T12:00:00Z</CurrentTime><RetryCount>0</RetryCount>
  <ParameterList><ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name><Value>1.0</Value></ParameterValueStruct></ParameterList>
 </cwmp:Inform></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;

    #[test]
    fn decodes_inform_and_answers_in_its_namespace() {
        let env = Envelope::decode(INFORM_1_0.as_bytes()).unwrap();
        assert_eq!(env.version, CwmpVersion::V1_0);
        assert_eq!(env.header.id.as_deref(), Some("42"));
        let Body::Inform(inform) = &env.body else {
            panic!("not an Inform: {:?}", env.body.name())
        };
        assert_eq!(inform.device_id.serial_number, "SN1");
        assert!(inform.has_event("0 BOOTSTRAP"));
        let reply = Envelope::new(
            env.version,
            env.header.id.clone(),
            InformResponse::default(),
        );
        let xml = reply.encode();
        assert!(xml.contains("xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\""));
        assert!(xml.contains("<cwmp:ID SOAP-ENV:mustUnderstand=\"1\">42</cwmp:ID>"));
        assert_eq!(Envelope::decode(xml.as_bytes()).unwrap(), reply);
        assert_eq!(Inform::NAME, env.body.name());
    }

    #[test]
    fn refuses_what_is_not_soap() {
        assert!(matches!(
            Envelope::decode(b"<foo/>"),
            Err(DecodeError::NotSoapEnvelope { .. })
        ));
        assert!(matches!(
            Envelope::decode(b"<html><body>502 Bad Gateway</body></html>"),
            Err(DecodeError::NotSoapEnvelope { .. })
        ));
        let other_ns =
            r#"<x:Envelope xmlns:x="urn:not-soap"><x:Body><Inform/></x:Body></x:Envelope>"#;
        assert!(Envelope::decode(other_ns.as_bytes()).is_err());
        let empty_body = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>"#;
        assert!(matches!(
            Envelope::decode(empty_body.as_bytes()),
            Err(DecodeError::EmptyBody)
        ));
        assert!(matches!(
            Envelope::decode(b"\xFF\xFE<\x00"),
            Err(DecodeError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn latin1_declared_bodies_are_transcoded() {
        let mut body = br#"<?xml version="1.0" encoding="ISO-8859-1"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap:Body><cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>Device.WiFi.SSID.1.SSID</Name><Value>Caf"#.to_vec();
        body.push(0xE9);
        body.extend_from_slice(b"</Value></ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse></soap:Body></soap:Envelope>");
        let env = Envelope::decode(&body).unwrap();
        let Body::GetParameterValuesResponse(r) = env.body else {
            panic!()
        };
        assert_eq!(r.parameters[0].value, "Café");
    }
}

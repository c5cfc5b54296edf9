//! Inform and InformResponse: how every CWMP session starts.

use serde::{Deserialize, Serialize};

use super::{Message, parameter_values, required, text, u32_or, write_parameter_values};
use crate::cwmp::{DecodeError, ParameterValue, XmlWriter, xml::Element};

/// `DeviceIdStruct`: the identity a CPE announces in every Inform.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceIdStruct {
    pub manufacturer: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
}

impl DeviceIdStruct {
    /// The device id: `OUI-ProductClass-SerialNumber` (or `OUI-SerialNumber`
    /// when ProductClass is empty), each part escaped exactly as GenieACS
    /// does, so ids in existing Ops tooling stay valid: every byte of the
    /// UTF-8 form outside `[A-Za-z0-9_]` becomes `%` and its upper-case hex,
    /// without zero padding.
    pub fn device_id(&self) -> String {
        let mut id = String::with_capacity(
            self.oui.len() + self.product_class.len() + self.serial_number.len() + 2,
        );
        escape_id_part(&mut id, &self.oui);
        id.push('-');
        if !self.product_class.is_empty() {
            escape_id_part(&mut id, &self.product_class);
            id.push('-');
        }
        escape_id_part(&mut id, &self.serial_number);
        id
    }

    /// A device can only be tracked when it names a serial number.
    pub fn is_identifiable(&self) -> bool {
        !self.serial_number.trim().is_empty()
    }
}

fn escape_id_part(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:X}");
            }
        }
    }
}

/// `EventStruct`: why the CPE opened the session (`"0 BOOTSTRAP"`,
/// `"M Reboot"` with the Reboot's CommandKey, …).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventStruct {
    pub event_code: String,
    #[serde(default)]
    pub command_key: String,
}

impl EventStruct {
    pub fn new(code: impl Into<String>, command_key: impl Into<String>) -> Self {
        EventStruct {
            event_code: code.into(),
            command_key: command_key.into(),
        }
    }
}

/// `Inform` (CPE → ACS).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inform {
    pub device_id: DeviceIdStruct,
    pub events: Vec<EventStruct>,
    pub max_envelopes: u32,
    /// As sent; see [`crate::cwmp::parse_datetime`]. CPEs without a clock
    /// send the unknown time or garbage, which must not fail the Inform.
    pub current_time: String,
    pub retry_count: u32,
    pub parameters: Vec<ParameterValue>,
}

impl Inform {
    /// True if the Inform carries this event code (`"0 BOOTSTRAP"`).
    pub fn has_event(&self, code: &str) -> bool {
        self.events.iter().any(|e| e.event_code == code)
    }

    /// Value of a parameter in the Inform's ParameterList.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

impl Message for Inform {
    const NAME: &'static str = "Inform";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        let id = required(el, "Inform", "DeviceId")?;
        let device_id = DeviceIdStruct {
            manufacturer: text(id, "Manufacturer"),
            oui: text(id, "OUI"),
            product_class: text(id, "ProductClass"),
            serial_number: text(id, "SerialNumber"),
        };
        let events = super::items(el, "Event")
            .map(|e| EventStruct {
                event_code: text(e, "EventCode"),
                command_key: text(e, "CommandKey"),
            })
            .filter(|e| !e.event_code.is_empty())
            .collect();
        Ok(Inform {
            device_id,
            events,
            max_envelopes: u32_or(el, "MaxEnvelopes", 1),
            current_time: text(el, "CurrentTime"),
            retry_count: u32_or(el, "RetryCount", 0),
            parameters: parameter_values(el, "ParameterList"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.open("DeviceId");
        w.text_element("Manufacturer", &self.device_id.manufacturer);
        w.text_element("OUI", &self.device_id.oui);
        w.text_element("ProductClass", &self.device_id.product_class);
        w.text_element("SerialNumber", &self.device_id.serial_number);
        w.close("DeviceId");
        w.open_array("Event", "cwmp:EventStruct", self.events.len());
        for e in &self.events {
            w.open("EventStruct");
            w.text_element("EventCode", &e.event_code);
            w.text_element("CommandKey", &e.command_key);
            w.close("EventStruct");
        }
        w.close("Event");
        w.num_element("MaxEnvelopes", self.max_envelopes);
        w.text_element("CurrentTime", &self.current_time);
        w.num_element("RetryCount", self.retry_count);
        write_parameter_values(w, "ParameterList", &self.parameters);
    }
}

/// `InformResponse` (ACS → CPE).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InformResponse {
    pub max_envelopes: u32,
}

impl Default for InformResponse {
    fn default() -> Self {
        InformResponse { max_envelopes: 1 }
    }
}

impl Message for InformResponse {
    const NAME: &'static str = "InformResponse";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(InformResponse {
            max_envelopes: u32_or(el, "MaxEnvelopes", 1),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.num_element("MaxEnvelopes", self.max_envelopes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(oui: &str, pc: &str, sn: &str) -> String {
        DeviceIdStruct {
            manufacturer: String::new(),
            oui: oui.into(),
            product_class: pc.into(),
            serial_number: sn.into(),
        }
        .device_id()
    }

    #[test]
    fn device_id_matches_genieacs_escaping() {
        assert_eq!(
            id("3C52A1", "Device2", "22283K5000046"),
            "3C52A1-Device2-22283K5000046"
        );
        assert_eq!(
            id("00259E", "HG8245H", "4857-5443"),
            "00259E-HG8245H-4857%2D5443"
        );
        assert_eq!(id("00259E", "", "ABC"), "00259E-ABC");
        assert_eq!(id("A", "B C", "é"), "A-B%20C-%C3%A9");
        // No zero padding below 0x10, as in GenieACS.
        assert_eq!(id("A", "B", "x\ty"), "A-B-x%9y");
    }
}

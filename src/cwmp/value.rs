//! Parameter values and their `xsi:type`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The TR-069 data types a parameter value is tagged with on the wire.
///
/// Names outside the nine standard types (a CPE sending `xsd:decimal` or a
/// TR-106 named type) are kept verbatim in `Other` so they survive a round
/// trip.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    String,
    Int,
    UnsignedInt,
    Long,
    UnsignedLong,
    Boolean,
    DateTime,
    Base64,
    HexBinary,
    Other(Box<str>),
}

impl ValueType {
    /// Parses an `xsi:type` value whose prefix has been removed. Matching
    /// ignores ASCII case (`xsd:UnsignedInt` is seen in the field); a missing
    /// type means string, as in the CWMP schema.
    pub fn from_xsi(local: Option<&str>) -> ValueType {
        let Some(t) = local else {
            return ValueType::String;
        };
        let t = t.trim();
        const KNOWN: [(&str, ValueType); 9] = [
            ("string", ValueType::String),
            ("int", ValueType::Int),
            ("unsignedInt", ValueType::UnsignedInt),
            ("long", ValueType::Long),
            ("unsignedLong", ValueType::UnsignedLong),
            ("boolean", ValueType::Boolean),
            ("dateTime", ValueType::DateTime),
            ("base64", ValueType::Base64),
            ("hexBinary", ValueType::HexBinary),
        ];
        if t.is_empty() {
            return ValueType::String;
        }
        for (name, ty) in KNOWN {
            if name.eq_ignore_ascii_case(t) {
                return ty;
            }
        }
        // `base64Binary` is the XML Schema spelling of TR-069's base64.
        if t.eq_ignore_ascii_case("base64Binary") {
            return ValueType::Base64;
        }
        // Only a name can be written back as `xsd:<name>`; anything else
        // (quotes, entities, spaces) is garbage and means string.
        if !is_ncname(t) {
            return ValueType::String;
        }
        ValueType::Other(t.into())
    }

    /// Parses the short names used in JSON and config (`"unsignedInt"`).
    pub fn from_name(name: &str) -> ValueType {
        let stripped = name.rsplit(':').next().unwrap_or(name);
        ValueType::from_xsi(Some(stripped))
    }

    /// Local name as written after `xsd:`.
    pub fn as_str(&self) -> &str {
        match self {
            ValueType::String => "string",
            ValueType::Int => "int",
            ValueType::UnsignedInt => "unsignedInt",
            ValueType::Long => "long",
            ValueType::UnsignedLong => "unsignedLong",
            ValueType::Boolean => "boolean",
            ValueType::DateTime => "dateTime",
            ValueType::Base64 => "base64",
            ValueType::HexBinary => "hexBinary",
            ValueType::Other(s) => s,
        }
    }

    /// The prefix this type is written with: `xsd:` for XML Schema types,
    /// `SOAP-ENC:` for base64 as the CWMP schema declares it.
    pub fn prefix(&self) -> &'static str {
        match self {
            ValueType::Base64 => "SOAP-ENC",
            _ => "xsd",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ValueType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ValueType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ValueType::from_name(&s))
    }
}

/// An XML name without a prefix: a letter or `_`, then letters, digits,
/// `_`, `-` or `.` (ASCII only, which covers every type name in use).
pub(crate) fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// One `ParameterValueStruct`: a parameter path, its value as text and its
/// type. The text is kept exactly as the CPE sent it (`"1"` stays `"1"` for a
/// boolean) so it can be written back unchanged; use [`parse_bool`] and
/// friends to interpret it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    #[serde(rename = "type")]
    pub kind: ValueType,
}

impl ParameterValue {
    pub fn new(name: impl Into<String>, value: impl Into<String>, kind: ValueType) -> Self {
        ParameterValue {
            name: name.into(),
            value: value.into(),
            kind,
        }
    }

    /// True when the value is a credential that must never be logged.
    pub fn is_secret(&self) -> bool {
        is_secret_parameter(&self.name)
    }
}

/// Debug output masks secrets: a `{:?}` of a SetParameterValues carrying a
/// WiFi passphrase must be safe to log.
impl fmt::Debug for ParameterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value: &dyn fmt::Debug = if self.is_secret() {
            &"********"
        } else {
            &self.value
        };
        f.debug_struct("ParameterValue")
            .field("name", &self.name)
            .field("value", value)
            .field("kind", &self.kind)
            .finish()
    }
}

/// Whether a parameter path names a credential (WiFi passphrase, PSK, WEP
/// key, SIP/PPP/connection-request password, any `*Secret*`). Such values
/// are masked in logs and in `Debug` output.
pub fn is_secret_parameter(path: &str) -> bool {
    let last = path
        .trim_end_matches('.')
        .rsplit('.')
        .next()
        .unwrap_or(path);
    let l = last.to_ascii_lowercase();
    l.contains("password")
        || l.contains("passphrase")
        || l.contains("presharedkey")
        || l.contains("secret")
        || l.contains("wepkey")
        || l == "psk"
        || l.ends_with("_psk")
        || (l.starts_with("x_") && l.ends_with("key"))
}

/// Parses a CWMP boolean: `true`/`false` in any case, `1`/`0`, with
/// surrounding whitespace. Some CPEs send the former, others the latter.
pub fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if s == "1" || s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s == "0" || s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_case_and_prefix_tolerant() {
        assert_eq!(
            ValueType::from_xsi(Some("UnsignedInt")),
            ValueType::UnsignedInt
        );
        assert_eq!(ValueType::from_xsi(None), ValueType::String);
        assert_eq!(ValueType::from_name("xsd:boolean"), ValueType::Boolean);
        assert_eq!(
            ValueType::from_xsi(Some("IPAddress")),
            ValueType::Other("IPAddress".into())
        );
        assert_eq!(ValueType::from_xsi(Some("base64Binary")), ValueType::Base64);
        assert_eq!(ValueType::from_xsi(Some("a\"b")), ValueType::String);
        assert_eq!(ValueType::from_xsi(Some("a&b")), ValueType::String);
    }

    #[test]
    fn booleans_both_styles() {
        assert_eq!(parse_bool(" 1 "), Some(true));
        assert_eq!(parse_bool("False"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn secrets_are_recognised_and_masked() {
        for p in [
            "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.PreSharedKey.1.KeyPassphrase",
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.PreSharedKey.1.PreSharedKey",
            "Device.Services.VoiceService.1.VoiceProfile.1.Line.1.SIP.AuthPassword",
            "Device.ManagementServer.ConnectionRequestPassword",
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.X_TP_PreSharedKey",
            "Device.WiFi.AccessPoint.1.Security.SAEPassphrase",
        ] {
            assert!(is_secret_parameter(p), "{p}");
        }
        for p in [
            "Device.WiFi.SSID.1.SSID",
            "Device.ManagementServer.ConnectionRequestUsername",
            "Device.DeviceInfo.SerialNumber",
        ] {
            assert!(!is_secret_parameter(p), "{p}");
        }
        let pv = ParameterValue::new(
            "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
            "hunter22",
            ValueType::String,
        );
        assert!(!format!("{pv:?}").contains("hunter22"));
    }
}

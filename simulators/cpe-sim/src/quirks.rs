//! How real CPEs deviate from the textbook, each a switch: envelope prefix,
//! cwmp namespace version, booleans as 0/1, MAC case, no XML declaration,
//! wrong arrayType counts, no cookies.

use gigafibre_acs::cwmp::{Body, CwmpVersion, ParameterValue, ValueType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacCase {
    /// As the model has it.
    AsIs,
    Upper,
    Lower,
}

#[derive(Clone, Debug)]
pub struct Quirks {
    /// SOAP envelope prefix (`SOAP-ENV`, `soapenv`, `soap-env`, …).
    pub envelope_prefix: String,
    pub cwmp_version: CwmpVersion,
    /// Report booleans as `0`/`1` instead of `true`/`false`.
    pub numeric_booleans: bool,
    pub mac_case: MacCase,
    pub no_xml_declaration: bool,
    /// Write arrayType counts that disagree with the items.
    pub wrong_array_counts: bool,
    /// Send the session cookie back (some CPEs do not).
    pub send_cookies: bool,
    /// Refuse partial paths (`Device.Hosts.`) in GetParameterValues with
    /// 9005, as some firmware does (genieacs-sim cannot answer them).
    pub no_partial_paths: bool,
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            envelope_prefix: "SOAP-ENV".into(),
            cwmp_version: CwmpVersion::V1_0,
            numeric_booleans: false,
            mac_case: MacCase::AsIs,
            no_xml_declaration: false,
            wrong_array_counts: false,
            send_cookies: true,
            no_partial_paths: false,
        }
    }
}

impl Quirks {
    fn value(&self, p: &mut ParameterValue) {
        if p.kind == ValueType::Boolean {
            let b = gigafibre_acs::cwmp::parse_bool(&p.value);
            if let Some(b) = b {
                p.value = match (self.numeric_booleans, b) {
                    (true, true) => "1",
                    (true, false) => "0",
                    (false, true) => "true",
                    (false, false) => "false",
                }
                .into();
            }
        }
        if p.name.ends_with("MACAddress") || p.name.ends_with("PhysAddress") {
            match self.mac_case {
                MacCase::AsIs => {}
                MacCase::Upper => p.value = p.value.to_ascii_uppercase(),
                MacCase::Lower => p.value = p.value.to_ascii_lowercase(),
            }
        }
    }

    /// Adjusts reported values (booleans, MAC case) in a message.
    pub fn apply_values(&self, body: &mut Body) {
        let params = match body {
            Body::Inform(i) => &mut i.parameters,
            Body::GetParameterValuesResponse(r) => &mut r.parameters,
            _ => return,
        };
        for p in params {
            self.value(p);
        }
    }

    /// Rewrites the serialised envelope the way this CPE writes it.
    pub fn apply_text(&self, xml: String) -> String {
        let mut xml = xml;
        if self.no_xml_declaration {
            if let Some(end) = xml.find("?>\n") {
                xml = xml[end + 3..].to_owned();
            }
        }
        if self.envelope_prefix != "SOAP-ENV" {
            let p = &self.envelope_prefix;
            // Only markup is touched: values are escaped, so `<` and the
            // attribute forms below cannot occur inside them.
            xml = xml
                .replace("<SOAP-ENV:", &format!("<{p}:"))
                .replace("</SOAP-ENV:", &format!("</{p}:"))
                .replace("xmlns:SOAP-ENV=", &format!("xmlns:{p}="))
                .replace(
                    " SOAP-ENV:mustUnderstand=",
                    &format!(" {p}:mustUnderstand="),
                );
        }
        if self.wrong_array_counts {
            xml = skew_array_counts(&xml);
        }
        xml
    }
}

/// `arrayType="cwmp:ParameterValueStruct[3]"` → `[0005]`: a count that is
/// both wrong and zero-padded, as seen on real devices.
fn skew_array_counts(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len() + 16);
    let mut rest = xml;
    while let Some(i) = rest.find("arrayType=\"") {
        let (head, tail) = rest.split_at(i + "arrayType=\"".len());
        out.push_str(head);
        let Some(close) = tail.find('"') else {
            rest = tail;
            break;
        };
        let attr = &tail[..close];
        match (attr.rfind('['), attr.ends_with(']')) {
            (Some(open), true) => {
                let n: usize = attr[open + 1..attr.len() - 1].parse().unwrap_or(0);
                out.push_str(&attr[..open]);
                out.push_str(&format!("[{:04}]", n + 2));
            }
            _ => out.push_str(attr),
        }
        rest = &tail[close..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gigafibre_acs::cwmp::Envelope;
    use gigafibre_acs::cwmp::rpc::GetParameterValuesResponse;

    #[test]
    fn quirky_text_still_decodes_to_the_same_message() {
        let mut body: Body = GetParameterValuesResponse {
            parameters: vec![
                ParameterValue::new("Device.WiFi.SSID.1.Enable", "true", ValueType::Boolean),
                ParameterValue::new(
                    "Device.Ethernet.Interface.1.MACAddress",
                    "AA:BB:CC:DD:EE:FF",
                    ValueType::String,
                ),
            ],
        }
        .into();
        let q = Quirks {
            envelope_prefix: "soap-env".into(),
            cwmp_version: CwmpVersion::V1_2,
            numeric_booleans: true,
            mac_case: MacCase::Lower,
            no_xml_declaration: true,
            wrong_array_counts: true,
            send_cookies: false,
            no_partial_paths: true,
        };
        q.apply_values(&mut body);
        let xml =
            q.apply_text(Envelope::new(q.cwmp_version, Some("1".into()), body.clone()).encode());
        assert!(xml.starts_with("<soap-env:Envelope"), "{xml}");
        assert!(xml.contains("cwmp:ParameterValueStruct[0004]"), "{xml}");
        assert!(xml.contains(">1</Value>") && xml.contains("aa:bb:cc:dd:ee:ff"));
        let back = Envelope::decode(xml.as_bytes()).unwrap();
        assert_eq!(back.body, body);
        assert_eq!(back.version, CwmpVersion::V1_2);
    }
}

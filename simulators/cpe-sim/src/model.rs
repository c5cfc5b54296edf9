//! Device models: GenieACS-export CSV files (built in, or any file given
//! with `--model-file`) turned into a personalised [`DataModel`].

use gigafibre_acs::cwmp::ValueType;
use gigafibre_acs::provision::export::ExportError;
use thiserror::Error;

use crate::datamodel::{DataModel, Param};

/// The built-in models, embedded so the binary stands alone.
pub const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "deco",
        "TP-Link Deco mesh router (TR-181, EasyMesh; from a TP-Link EX220 export)",
        include_str!("../../models/deco.csv"),
    ),
    (
        "tplg-ont",
        "TP-Link XX230v GPON ONT (TR-181, TPLG serial)",
        include_str!("../../models/tplg-ont.csv"),
    ),
    (
        "rcmg-ont",
        "Raisecom HT803G-WS2 GPON ONT (TR-098, RCMG serial, TR-104 v1 SIP)",
        include_str!("../../models/rcmg-ont.csv"),
    ),
    (
        "hgw-ont",
        "Huawei HG8245Q2-style GPON ONT (TR-098, hex GPON serial as SerialNumber, TR-104 v1 SIP, 2 lines)",
        include_str!("../../models/hgw-tr098-voice-ont.csv"),
    ),
    (
        "router-5g-first",
        "ZTE-style router (TR-098, 5 GHz on WLANConfiguration.1, guest SSIDs, no voice)",
        include_str!("../../models/tr098-router-5g-first.csv"),
    ),
    (
        "tr181-link-mac",
        "Tri-band router (TR-181, MAC only on Ethernet.Link, shuffled WiFi instances, TR-104 v2 SIP)",
        include_str!("../../models/tr181-router-link-mac.csv"),
    ),
    (
        "psk-only",
        "Router (TR-098, WiFi secret only as 64-hex PreSharedKey.1.PreSharedKey, no voice)",
        include_str!("../../models/tr098-psk-only.csv"),
    ),
];

/// First path segments of GenieACS bookkeeping rows in a full export: not
/// CPE parameters, skipped on load (as GenieACS and genieacs-sim do).
const BOOKKEEPING: &[&str] = &[
    "DeviceID",
    "Events",
    "Tags",
    "Downloads",
    "VirtualParameters",
    "Reboot",
    "FactoryReset",
];

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error(
        "unknown model `{0}` (built in: deco, tplg-ont, rcmg-ont, hgw-ont, router-5g-first, tr181-link-mac, psk-only)"
    )]
    Unknown(String),
    #[error("model file {file}: {reason}")]
    File { file: String, reason: String },
    #[error("model {file}, line {line}: {reason}")]
    Line {
        file: String,
        line: usize,
        reason: String,
    },
}

/// One CSV row.
#[derive(Clone, Debug)]
struct Row {
    path: String,
    object: bool,
    writable: bool,
    value: String,
    kind: ValueType,
    notification: u32,
}

/// A parsed model, not yet personalised.
#[derive(Clone, Debug)]
pub struct ModelTemplate {
    pub name: String,
    rows: Vec<Row>,
}

/// What makes one simulated device unique.
#[derive(Clone, Debug)]
pub struct Identity {
    pub serial: String,
    pub mac: [u8; 6],
    /// GPON serial, ASCII form (`TPLGB4FB2AC8`).
    pub gpon_sn: String,
    pub acs_url: String,
    pub cr_url: String,
    pub wan_ip: String,
}

impl Identity {
    pub fn mac_upper(&self) -> String {
        self.mac
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    pub fn mac_lower(&self) -> String {
        self.mac_upper().to_ascii_lowercase()
    }

    /// GPON serial in its 16-hex form: the 4 vendor letters as hex.
    pub fn gpon_sn_hex(&self) -> String {
        let (vendor, rest) = self.gpon_sn.split_at(self.gpon_sn.len().min(4));
        let mut s: String = vendor.bytes().map(|b| format!("{b:02X}")).collect();
        s.push_str(&rest.to_ascii_uppercase());
        s
    }
}

impl ModelTemplate {
    /// Parses a GenieACS parameter export (CSV with the header `Parameter,
    /// Object, Object timestamp, Writable, …, Value, Value type, …`).
    pub fn parse(name: &str, text: &str) -> Result<ModelTemplate, ModelError> {
        let err = |line: usize, reason: String| ModelError::Line {
            file: name.to_owned(),
            line,
            reason,
        };
        let records = gigafibre_acs::provision::export::records(text).map_err(|e| match e {
            ExportError::Unterminated(l) => err(l, "unterminated quoted field".into()),
            other => err(1, other.to_string()),
        })?;
        let mut iter = records.into_iter();
        let (hline, header) = iter.next().ok_or_else(|| ModelError::File {
            file: name.to_owned(),
            reason: "empty file".into(),
        })?;
        let col = |n: &str| header.iter().position(|h| h.trim() == n);
        let (Some(c_param), Some(c_object), Some(c_writable), Some(c_value), Some(c_type)) = (
            col("Parameter"),
            col("Object"),
            col("Writable"),
            col("Value"),
            col("Value type"),
        ) else {
            return Err(err(hline, "header must name the columns Parameter, Object, Writable, Value and Value type (a GenieACS export)".into()));
        };
        let c_notif = col("Notification");
        let mut rows = Vec::new();
        for (line, rec) in iter {
            let get = |c: usize| rec.get(c).map(String::as_str).unwrap_or("");
            let path = get(c_param).trim().trim_end_matches('.').to_owned();
            if path.is_empty() {
                return Err(err(line, "empty Parameter".into()));
            }
            let first = path.split('.').next().unwrap_or("");
            if BOOKKEEPING.contains(&first) {
                continue;
            }
            if path.contains(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '&')
                || path.contains("..")
            {
                return Err(err(line, format!("`{path}` is not a parameter path")));
            }
            let flag = |c: usize, what: &str| -> Result<bool, ModelError> {
                match get(c).trim() {
                    "true" => Ok(true),
                    "false" | "" => Ok(false),
                    other => Err(err(
                        line,
                        format!("{what} must be true or false, not `{other}`"),
                    )),
                }
            };
            let object = flag(c_object, "Object")?;
            let writable = flag(c_writable, "Writable")?;
            let kind_text = get(c_type).trim();
            let kind = ValueType::from_name(if kind_text.is_empty() {
                "string"
            } else {
                kind_text
            });
            let notification = match c_notif.map(get).map(str::trim) {
                None | Some("") => 0,
                Some(n) => n
                    .parse()
                    .map_err(|_| err(line, format!("Notification `{n}` is not a number")))?,
            };
            rows.push(Row {
                path,
                object,
                writable,
                value: get(c_value).to_owned(),
                kind,
                notification,
            });
        }
        if rows.is_empty() {
            return Err(ModelError::File {
                file: name.to_owned(),
                reason: "no parameters".into(),
            });
        }
        let root = &rows[0].path;
        if !rows
            .iter()
            .all(|r| r.path.starts_with("Device") || r.path.starts_with("InternetGatewayDevice"))
        {
            return Err(ModelError::File {
                file: name.to_owned(),
                reason: format!(
                    "paths must start with Device. or InternetGatewayDevice. (first: {root})"
                ),
            });
        }
        Ok(ModelTemplate {
            name: name.to_owned(),
            rows,
        })
    }

    pub fn builtin(name: &str) -> Result<ModelTemplate, ModelError> {
        let (_, _, text) = BUILTIN
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| ModelError::Unknown(name.to_owned()))?;
        ModelTemplate::parse(name, text)
    }

    pub fn from_file(path: &std::path::Path) -> Result<ModelTemplate, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::File {
            file: path.display().to_string(),
            reason: e.to_string(),
        })?;
        ModelTemplate::parse(&path.display().to_string(), &text)
    }

    /// The shared tree of this model, placeholders unresolved.
    pub fn tree(&self) -> DataModel {
        let mut m = DataModel::default();
        for r in &self.rows {
            if r.object {
                m.insert_object(&r.path, r.writable);
            } else {
                m.insert_param(
                    &r.path,
                    Param {
                        value: r.value.clone(),
                        kind: r.kind.clone(),
                        writable: r.writable,
                        notification: r.notification,
                        access_list: Vec::new(),
                    },
                );
            }
        }
        m
    }

    /// The data model of one device (a private tree).
    #[cfg(test)]
    pub fn instantiate(&self, id: &Identity) -> DataModel {
        personalise(&self.tree(), id)
    }
}

/// One device's view of a shared tree: the tree itself is shared until the
/// device writes to it.
pub fn personalise(shared: &DataModel, id: &Identity) -> DataModel {
    let mut m = shared.clone();
    m.vars = std::sync::Arc::new(id.vars());
    m
}

impl Identity {
    /// Placeholder values, longest names first so `{{MAC_LOWER}}` is not
    /// eaten by `{{MAC}}`.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("{{GPON_SN_HEX}}".to_owned(), self.gpon_sn_hex()),
            ("{{MAC_LOWER}}".to_owned(), self.mac_lower()),
            ("{{GPON_SN}}".to_owned(), self.gpon_sn.clone()),
            ("{{ACS_URL}}".to_owned(), self.acs_url.clone()),
            ("{{WAN_IP}}".to_owned(), self.wan_ip.clone()),
            ("{{CR_URL}}".to_owned(), self.cr_url.clone()),
            ("{{SERIAL}}".to_owned(), self.serial.clone()),
            ("{{MAC}}".to_owned(), self.mac_upper()),
        ];
        // Satellites and clients of a generated mesh: MACs derived from the
        // device's own, so that every simulated home is distinct.
        // 1–8 satellites, 20–119 Wi-Fi clients, 120–121 wired clients.
        for n in 1..=128u8 {
            let mut mac = self.mac;
            mac[3] ^= 0x80;
            mac[5] = mac[5].wrapping_add(n);
            let upper = mac
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":");
            v.push((
                format!("{{{{MAC_PLUS_{n}_LOWER}}}}"),
                upper.to_ascii_lowercase(),
            ));
            v.push((format!("{{{{MAC_PLUS_{n}}}}}"), upper));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# provenance: test\nParameter,Object,Object timestamp,Writable,Writable timestamp,Value,Value type,Value timestamp,Notification,Notification timestamp,Access list,Access list timestamp\n\
Device,true,t,false,t,\"\",,,,,,\n\
Device.DeviceInfo.SerialNumber,false,t,false,t,\"{{SERIAL}}\",xsd:string,t,,,,\n\
Device.WiFi.SSID,true,t,true,t,\"\",,,,,,\n\
Device.WiFi.SSID.1.SSID,false,t,true,t,\"My \"\"quoted\"\", SSID\",xsd:string,t,2,,,\n\
Device.Ethernet.Interface.1.MACAddress,false,t,false,t,\"{{MAC}}\",xsd:string,t,,,,\n";

    fn id() -> Identity {
        Identity {
            serial: "SN1".into(),
            mac: [0x1c, 0x61, 0xb4, 0, 0, 1],
            gpon_sn: "TPLGB4FB2AC8".into(),
            acs_url: "http://acs".into(),
            cr_url: "http://cr".into(),
            wan_ip: "100.64.0.1".into(),
        }
    }

    #[test]
    fn parses_genieacs_csv_and_personalises() {
        let t = ModelTemplate::parse("sample", SAMPLE).unwrap();
        let m = t.instantiate(&id());
        assert_eq!(
            m.get("Device.DeviceInfo.SerialNumber").as_deref(),
            Some("SN1")
        );
        assert_eq!(
            m.get("Device.WiFi.SSID.1.SSID").as_deref(),
            Some("My \"quoted\", SSID")
        );
        assert_eq!(
            m.get("Device.Ethernet.Interface.1.MACAddress").as_deref(),
            Some("1C:61:B4:00:00:01")
        );
        assert_eq!(m.objects.get("Device.WiFi.SSID."), Some(&true));
        assert!(m.objects.contains_key("Device.WiFi.SSID.1."));
        assert_eq!(m.params["Device.WiFi.SSID.1.SSID"].notification, 2);
        assert_eq!(id().gpon_sn_hex(), "54504C47B4FB2AC8");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let e = ModelTemplate::parse("x", "a,b\n1,2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("header"), "{e}");
        let e = ModelTemplate::parse(
            "x",
            "Parameter,Object,Writable,Value,Value type\nDevice.A,maybe,false,\"1\",xsd:string\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("Object"), "{e}");
        let e = ModelTemplate::parse(
            "x",
            "Parameter,Object,Writable,Value,Value type\nDevice.A,false,false,\"unterminated\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unterminated"), "{e}");
        assert!(ModelTemplate::parse("x", "").is_err());
        assert!(matches!(
            ModelTemplate::builtin("toaster"),
            Err(ModelError::Unknown(_))
        ));
    }

    #[test]
    fn full_genieacs_export_skips_bookkeeping_rows() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/device-models/tplink-ex220-tr181-mesh.csv");
        let t = ModelTemplate::from_file(&file).unwrap();
        let m = t.instantiate(&id());
        assert_eq!(
            m.get("Device.WiFi.SSID.3.SSID").as_deref(),
            Some("TP-Link_9E1E_5G")
        );
        assert!(
            m.params
                .keys()
                .all(|k| k.starts_with("Device.") && !k.starts_with("DeviceID.")),
            "DeviceID.* and Events.* rows are skipped"
        );
        let text = "Parameter,Object,Writable,Value,Value type\n\
DeviceID.SerialNumber,false,false,\"SN\",xsd:string\n\
Events.Inform,false,false,\"2023-05-25T21:06:45.524Z\",xsd:dateTime\n\
Tags.lab,false,true,\"true\",xsd:boolean\n\
InternetGatewayDevice.DeviceInfo.SerialNumber,false,false,\"SN\",xsd:string\n";
        let m = ModelTemplate::parse("x", text).unwrap().tree();
        assert_eq!(m.params.len(), 1);
    }

    #[test]
    fn hand_built_models_keep_their_quirks() {
        let load = |n: &str| ModelTemplate::builtin(n).unwrap().instantiate(&id());
        let hgw = load("hgw-ont");
        let di = "InternetGatewayDevice.DeviceInfo.";
        assert_eq!(
            hgw.get(&format!("{di}SerialNumber")).as_deref(),
            Some(id().gpon_sn_hex().as_str())
        );
        assert_eq!(
            hgw.get(&format!("{di}X_HW_SerialNumber")).as_deref(),
            Some("TPLGB4FB2AC8")
        );
        let psk = load("psk-only");
        assert!(!psk.params.keys().any(|k| k.contains("KeyPassphrase")));
        let p = &psk.params["InternetGatewayDevice.LANDevice.1.WLANConfiguration.2.PreSharedKey.1.PreSharedKey"];
        assert!(p.writable);
        let r5 = load("router-5g-first");
        assert!(
            !r5.params.contains_key(
                "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.KeyPassphrase"
            )
        );
        let link = load("tr181-link-mac");
        assert!(
            !link
                .params
                .keys()
                .any(|k| k.starts_with("Device.Ethernet.Interface.") && k.ends_with(".MACAddress"))
        );
        assert_eq!(
            link.get("Device.Ethernet.Link.1.MACAddress").as_deref(),
            Some("1C:61:B4:00:00:01")
        );
    }

    #[test]
    fn builtin_models_load() {
        for (name, _, _) in BUILTIN {
            let t = ModelTemplate::builtin(name).unwrap();
            let m = t.instantiate(&id());
            assert!(m.params.len() > 50, "{name}");
        }
    }
}

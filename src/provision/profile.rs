//! Device profiles: what the ACS knows about a model family, declared in
//! `device-profiles/*.toml` and validated when loaded. A planner never
//! hard-codes a path; it asks the profile.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

/// The profiles compiled into the binary (the repository's
/// `device-profiles/`); `ACS_PROFILES_DIR` adds to or replaces them by name.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "tplink-deco.toml",
        include_str!("../../device-profiles/tplink-deco.toml"),
    ),
    (
        "raisecom-rcmg-ont.toml",
        include_str!("../../device-profiles/raisecom-rcmg-ont.toml"),
    ),
    (
        "tplink-tplg-ont.toml",
        include_str!("../../device-profiles/tplink-tplg-ont.toml"),
    ),
];

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProfileError {
    #[error("device profile {file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("device profiles directory {dir}: {reason}")]
    Dir { dir: String, reason: String },
}

/// How a device writes booleans (some reject `true`/`false` in SetParameterValues).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BooleanStyle {
    #[default]
    TrueFalse,
    Numeric,
}

impl BooleanStyle {
    pub fn write(self, b: bool) -> &'static str {
        match (self, b) {
            (BooleanStyle::TrueFalse, true) => "true",
            (BooleanStyle::TrueFalse, false) => "false",
            (BooleanStyle::Numeric, true) => "1",
            (BooleanStyle::Numeric, false) => "0",
        }
    }
}

/// Which devices a profile is for. Every given list must have a pattern
/// matching (`*` wildcard, ASCII case-insensitive); absent lists match all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRules {
    #[serde(default)]
    pub manufacturer: Vec<String>,
    #[serde(default)]
    pub oui: Vec<String>,
    #[serde(default)]
    pub product_class: Vec<String>,
    #[serde(default)]
    pub model_name: Vec<String>,
}

/// Where a device keeps its identifiers; candidates tried in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityPaths {
    #[serde(default)]
    pub mac: Vec<String>,
    #[serde(default)]
    pub gpon_serial: Vec<String>,
}

/// One WiFi band's primary user network.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WifiBand {
    /// "2.4" or "5" (or "6").
    pub band: String,
    pub ssid: String,
    /// Where the WPA passphrase (8–63 characters) goes.
    #[serde(default)]
    pub passphrase: Option<String>,
    /// Where a 64-hex pre-shared key goes, for devices without a
    /// passphrase parameter: derived from the passphrase and the SSID
    /// (PBKDF2-HMAC-SHA1, 4096 rounds, IEEE 802.11i).
    #[serde(default)]
    pub psk: Option<String>,
    #[serde(default)]
    pub enable: Option<String>,
}

/// SIP account parameters; `{line}` stands for the line number.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipPaths {
    pub auth_username: String,
    pub auth_password: String,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub directory_number: Option<String>,
    #[serde(default)]
    pub line_enable: Option<String>,
    /// Value written to `line_enable` ("Enabled" in TR-104 v1, a boolean in v2).
    #[serde(default)]
    pub line_enable_value: Option<String>,
    /// Instance numbers of the device's lines, in order: ERPNext's line N
    /// is the Nth (discovered); empty: line N is instance N.
    #[serde(default)]
    pub lines: Vec<u32>,
    #[serde(default)]
    pub registrar: Option<String>,
    #[serde(default)]
    pub registrar_port: Option<String>,
    #[serde(default)]
    pub proxy: Option<String>,
    #[serde(default)]
    pub proxy_port: Option<String>,
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    #[serde(default)]
    pub outbound_proxy_port: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
}

/// Where the PPPoE credentials of the device's Internet connection go
/// (TR-181 `PPP.Interface.{i}.`, TR-098 `WANPPPConnection.{k}.`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PppPaths {
    pub username: String,
    pub password: String,
}

/// Units of optical power readings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum PowerUnit {
    /// 0.1 µW (TP-Link X_TP_GPON_Config, CT-COM, ZTE): dBm = 10·log10(v/10000).
    #[serde(rename = "0.1uW")]
    TenthMicrowatt,
    /// 0.001 dBm (TR-181 Optical.Interface).
    #[serde(rename = "0.001dBm")]
    ThousandthDbm,
    /// 0.1 dBm (TR-181 XPON Transceiver).
    #[serde(rename = "0.1dBm")]
    TenthDbm,
    #[serde(rename = "dBm")]
    Dbm,
    /// Unknown vendor field: dBm when the value has a sign or a decimal
    /// point, else 0.1 µW.
    #[serde(rename = "auto")]
    Auto,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpticalPaths {
    pub rx_power: String,
    pub tx_power: String,
    pub unit: PowerUnit,
}

/// Signal strength units of client tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalUnit {
    Dbm,
    /// IEEE 802.11 RCPI 0–255: dBm = RCPI/2 − 110.
    Rcpi,
}

/// Paths the topology collector reads (`*` matches any instance).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyPaths {
    #[serde(default)]
    pub hosts: Option<String>,
    #[serde(default)]
    pub associated_devices: Vec<String>,
    #[serde(default)]
    pub associated_signal_unit: Option<SignalUnit>,
    #[serde(default)]
    pub multiap_devices: Option<String>,
    #[serde(default)]
    pub multiap_signal_unit: Option<SignalUnit>,
    #[serde(default)]
    pub dataelements_devices: Option<String>,
    #[serde(default)]
    pub wan_ip: Vec<String>,
}

/// A device profile as written in a file, or worked out from a device's
/// own data model (`super::targets`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `Device.` or `InternetGatewayDevice.`
    pub root: String,
    /// Higher wins when several profiles match (generic fallbacks: 0).
    #[serde(default)]
    pub priority: i32,
    #[serde(rename = "match", default)]
    pub matches: MatchRules,
    /// How the device writes booleans; unset: as the device reports them.
    #[serde(default)]
    pub booleans: Option<BooleanStyle>,
    /// Read tables with partial paths (`Device.Hosts.`) in one
    /// GetParameterValues. Off by default: some firmware (and
    /// genieacs-sim) cannot answer them; then each name is asked for.
    #[serde(default)]
    pub partial_paths: bool,
    #[serde(default)]
    pub identity: IdentityPaths,
    #[serde(default)]
    pub wifi: Vec<WifiBand>,
    /// Path prefixes the ACS must never write (mesh backhaul SSIDs).
    #[serde(default)]
    pub never_write: Vec<String>,
    #[serde(default)]
    pub sip: Option<SipPaths>,
    /// PPPoE credentials: `[ppp]`; unset, the data model decides.
    #[serde(default)]
    pub ppp: Option<PppPaths>,
    /// Optical power readings, preferred first: `[optical]` or `[[optical]]`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub optical: Vec<OpticalPaths>,
    #[serde(default)]
    pub topology: TopologyPaths,
}

/// `[optical]` (one table) or `[[optical]]` (several).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<OpticalPaths>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(OpticalPaths),
        Many(Vec<OpticalPaths>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(o) => vec![o],
        OneOrMany::Many(v) => v,
    })
}

/// What a device says about itself, for matching.
#[derive(Clone, Copy, Debug)]
pub struct DeviceFacts<'a> {
    pub manufacturer: &'a str,
    pub oui: &'a str,
    pub product_class: &'a str,
    pub model_name: &'a str,
    /// Root of the data model (`Device.` / `InternetGatewayDevice.`).
    pub root: &'a str,
}

/// `*` wildcard match, ASCII case-insensitive.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let t = text.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            if !t.starts_with(part) {
                return false;
            }
            pos = part.len();
        } else if i == parts.len() - 1 {
            return t.len() >= pos + part.len() && t[pos..].ends_with(part);
        } else {
            match t[pos..].find(part) {
                Some(at) => pos += at + part.len(),
                None => return false,
            }
        }
    }
    true
}

impl Profile {
    /// How booleans are written (true/false unless the profile says
    /// otherwise).
    pub fn booleans(&self) -> BooleanStyle {
        self.booleans.unwrap_or_default()
    }

    /// Whether this profile is for that device.
    pub fn matches(&self, d: &DeviceFacts<'_>) -> bool {
        let any = |patterns: &[String], value: &str| {
            patterns.is_empty() || patterns.iter().any(|p| glob_match(p, value))
        };
        self.root == d.root
            && any(&self.matches.manufacturer, d.manufacturer)
            && any(&self.matches.oui, d.oui)
            && any(&self.matches.product_class, d.product_class)
            && any(&self.matches.model_name, d.model_name)
    }

    /// Whether the ACS may write this path.
    pub fn writable(&self, path: &str) -> bool {
        path.starts_with(&self.root)
            && !self
                .never_write
                .iter()
                .any(|p| path.starts_with(p.as_str()))
    }

    /// `{root}ManagementServer.{leaf}`
    pub fn management(&self, leaf: &str) -> String {
        format!("{}ManagementServer.{leaf}", self.root)
    }

    /// Every path the profile names, with the key it is under (for
    /// validation and data-model cross-checks).
    pub fn paths(&self) -> Vec<(String, &str)> {
        let mut v: Vec<(String, &str)> = Vec::new();
        for p in &self.identity.mac {
            v.push(("identity.mac".into(), p));
        }
        for p in &self.identity.gpon_serial {
            v.push(("identity.gpon_serial".into(), p));
        }
        for (i, w) in self.wifi.iter().enumerate() {
            v.push((format!("wifi[{i}].ssid"), &w.ssid));
            if let Some(p) = &w.passphrase {
                v.push((format!("wifi[{i}].passphrase"), p));
            }
            if let Some(p) = &w.psk {
                v.push((format!("wifi[{i}].psk"), p));
            }
            if let Some(e) = &w.enable {
                v.push((format!("wifi[{i}].enable"), e));
            }
        }
        if let Some(s) = &self.sip {
            let opt = [
                ("sip.uri", &s.uri),
                ("sip.directory_number", &s.directory_number),
                ("sip.line_enable", &s.line_enable),
                ("sip.registrar", &s.registrar),
                ("sip.registrar_port", &s.registrar_port),
                ("sip.proxy", &s.proxy),
                ("sip.proxy_port", &s.proxy_port),
                ("sip.outbound_proxy", &s.outbound_proxy),
                ("sip.outbound_proxy_port", &s.outbound_proxy_port),
                ("sip.domain", &s.domain),
            ];
            v.push(("sip.auth_username".into(), &s.auth_username));
            v.push(("sip.auth_password".into(), &s.auth_password));
            for (k, p) in opt {
                if let Some(p) = p {
                    v.push((k.into(), p));
                }
            }
        }
        if let Some(p) = &self.ppp {
            v.push(("ppp.username".into(), &p.username));
            v.push(("ppp.password".into(), &p.password));
        }
        for o in &self.optical {
            v.push(("optical.rx_power".into(), &o.rx_power));
            v.push(("optical.tx_power".into(), &o.tx_power));
        }
        let t = &self.topology;
        for (k, p) in [
            ("topology.hosts", &t.hosts),
            ("topology.multiap_devices", &t.multiap_devices),
            ("topology.dataelements_devices", &t.dataelements_devices),
        ] {
            if let Some(p) = p {
                v.push((k.into(), p));
            }
        }
        for p in &t.associated_devices {
            v.push(("topology.associated_devices".into(), p));
        }
        for p in &t.wan_ip {
            v.push(("topology.wan_ip".into(), p));
        }
        v
    }

    fn validate(&self, file: &str) -> Result<(), ProfileError> {
        let bad = |reason: String| ProfileError::Invalid {
            file: file.to_owned(),
            reason,
        };
        if self.name.trim().is_empty() {
            return Err(bad("`name` is empty".into()));
        }
        if self.root != "Device." && self.root != "InternetGatewayDevice." {
            return Err(bad(format!(
                "`root` is `{}`, not `Device.` or `InternetGatewayDevice.`",
                self.root
            )));
        }
        for (key, p) in self.paths() {
            if !p.starts_with(&self.root) {
                return Err(bad(format!(
                    "`{key}` = `{p}` is outside the root `{}`",
                    self.root
                )));
            }
            if p.contains(char::is_whitespace) || p.contains("..") {
                return Err(bad(format!("`{key}` = `{p}` is not a parameter path")));
            }
        }
        let mut bands = BTreeMap::new();
        for (i, w) in self.wifi.iter().enumerate() {
            if !matches!(w.band.as_str(), "2.4" | "5" | "6") {
                return Err(bad(format!(
                    "`wifi[{i}].band` = `{}`: expected 2.4, 5 or 6",
                    w.band
                )));
            }
            if bands.insert(w.band.clone(), i).is_some() {
                return Err(bad(format!("`wifi[{i}].band` {} is listed twice", w.band)));
            }
            for (k, p) in [
                ("ssid", Some(&w.ssid)),
                ("passphrase", w.passphrase.as_ref()),
                ("psk", w.psk.as_ref()),
            ] {
                let Some(p) = p else { continue };
                if !self.writable(p) {
                    return Err(bad(format!(
                        "`wifi[{i}].{k}` = `{p}` is under `never_write`"
                    )));
                }
            }
        }
        if let Some(s) = &self.sip {
            for (k, p) in [
                ("auth_username", &s.auth_username),
                ("auth_password", &s.auth_password),
            ] {
                if !p.contains("{line}") {
                    return Err(bad(format!("`sip.{k}` = `{p}` must contain `{{line}}`")));
                }
            }
            if s.line_enable.is_some() != s.line_enable_value.is_some() {
                return Err(bad(
                    "`sip.line_enable` and `sip.line_enable_value` go together".into(),
                ));
            }
        }
        for group in [
            &self.matches.manufacturer,
            &self.matches.oui,
            &self.matches.product_class,
            &self.matches.model_name,
        ] {
            if group.iter().any(|p| p.trim().is_empty()) {
                return Err(bad("an empty pattern in `match`".into()));
            }
        }
        Ok(())
    }
}

/// All loaded profiles.
#[derive(Clone, Debug)]
pub struct Profiles {
    list: Vec<Profile>,
}

impl Profiles {
    /// Parses and validates one profile file.
    pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Invalid {
            file: file.to_owned(),
            reason: e.to_string().trim().replace('\n', " "),
        })?;
        profile.validate(file)?;
        Ok(profile)
    }

    /// The built-in profiles, plus those in `dir` (a file whose `name`
    /// equals a built-in one replaces it).
    pub fn load(dir: Option<&Path>) -> Result<Profiles, ProfileError> {
        let mut list = Vec::new();
        for (file, text) in BUILTIN {
            list.push(Self::parse(file, text)?);
        }
        if let Some(dir) = dir {
            let shown = dir.display().to_string();
            let entries = std::fs::read_dir(dir).map_err(|e| ProfileError::Dir {
                dir: shown.clone(),
                reason: e.to_string(),
            })?;
            let mut files: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for path in files {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| ProfileError::Invalid {
                    file: file.clone(),
                    reason: e.to_string(),
                })?;
                let p = Self::parse(&file, &text)?;
                list.retain(|q| q.name != p.name);
                list.push(p);
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for p in &list {
            if !names.insert(p.name.clone()) {
                return Err(ProfileError::Invalid {
                    file: p.name.clone(),
                    reason: "two profiles have this name".into(),
                });
            }
        }
        Ok(Profiles { list })
    }

    /// The best profile for a device: highest priority among those that
    /// match, the first loaded on a tie.
    pub fn find(&self, d: &DeviceFacts<'_>) -> Option<&Profile> {
        let mut best: Option<&Profile> = None;
        for p in self.list.iter().filter(|p| p.matches(d)) {
            if best.is_none_or(|b| p.priority > b.priority) {
                best = Some(p);
            }
        }
        best
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.list.iter().find(|p| p.name == name)
    }

    pub fn all(&self) -> &[Profile] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("Deco*", "deco x20"));
        assert!(glob_match("*X20", "Deco X20"));
        assert!(glob_match("HT803G*", "HT803G-WS2"));
        assert!(glob_match("*803*", "HT803G-WS2"));
        assert!(glob_match("1C61B4", "1c61b4"));
        assert!(!glob_match("Deco*", "EX220"));
        assert!(!glob_match("a*b*c", "acb"));
    }

    #[test]
    fn builtin_profiles_load_and_match() {
        let p = Profiles::load(None).unwrap();
        let deco = DeviceFacts {
            manufacturer: "TP-Link",
            oui: "1C61B4",
            product_class: "Device2",
            model_name: "Deco X20",
            root: "Device.",
        };
        assert_eq!(p.find(&deco).unwrap().name, "tplink-deco");
        let ont = DeviceFacts {
            model_name: "XX230v",
            ..deco
        };
        assert_eq!(p.find(&ont).unwrap().name, "tplink-tplg-ont");
        let rcmg = DeviceFacts {
            manufacturer: "Raisecom",
            oui: "000E5E",
            product_class: "HT803G-WS2",
            model_name: "HT803G-WS2",
            root: "InternetGatewayDevice.",
        };
        assert_eq!(p.find(&rcmg).unwrap().name, "raisecom-rcmg-ont");
        // No family profile: the device is provisioned from its own data
        // model (`targets`), not from a generic profile.
        let other = DeviceFacts {
            manufacturer: "Huawei",
            oui: "00259E",
            product_class: "HG8245H",
            model_name: "HG8245H",
            root: "InternetGatewayDevice.",
        };
        assert!(p.find(&other).is_none());
    }

    #[test]
    fn optical_is_one_table_or_several() {
        let one = Profiles::parse(
            "o.toml",
            "name = \"o\"\nroot = \"Device.\"\n[optical]\nrx_power = \"Device.A.RX\"\ntx_power = \"Device.A.TX\"\nunit = \"dBm\"\n",
        )
        .unwrap();
        assert_eq!(one.optical.len(), 1);
        let two = Profiles::parse(
            "t.toml",
            "name = \"t\"\nroot = \"Device.\"\n[[optical]]\nrx_power = \"Device.A.RX\"\ntx_power = \"Device.A.TX\"\nunit = \"dBm\"\n[[optical]]\nrx_power = \"Device.B.RX\"\ntx_power = \"Device.B.TX\"\nunit = \"0.1uW\"\n",
        )
        .unwrap();
        assert_eq!(two.optical.len(), 2);
        assert_eq!(two.optical[1].unit, PowerUnit::TenthMicrowatt);
    }

    #[test]
    fn bad_profiles_name_file_and_key() {
        let e = Profiles::parse("x.toml", "name = \"x\"\nroot = \"Device.\"\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml") && e.contains("bogus"), "{e}");
        let e = Profiles::parse("y.toml", "name = \"y\"\nroot = \"Device.\"\n[[wifi]]\nband = \"2.4\"\nssid = \"InternetGatewayDevice.X\"\npassphrase = \"Device.P\"\n").unwrap_err().to_string();
        assert!(e.contains("y.toml") && e.contains("wifi[0].ssid"), "{e}");
        let e = Profiles::parse("z.toml", "name = \"z\"\nroot = \"Device.\"\nnever_write = [\"Device.WiFi.SSID.1.\"]\n[[wifi]]\nband = \"2.4\"\nssid = \"Device.WiFi.SSID.1.SSID\"\npassphrase = \"Device.P\"\n").unwrap_err().to_string();
        assert!(e.contains("never_write"), "{e}");
        let e = Profiles::parse("s.toml", "name = \"s\"\nroot = \"Device.\"\n[sip]\nauth_username = \"Device.A\"\nauth_password = \"Device.B.{line}\"\n").unwrap_err().to_string();
        assert!(
            e.contains("sip.auth_username") && e.contains("{line}"),
            "{e}"
        );
    }
}

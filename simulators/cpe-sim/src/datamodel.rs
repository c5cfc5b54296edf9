//! A CPE's parameter tree and how a real CPE answers RPCs on it: pure data
//! and logic, no I/O, unit-tested below.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use gigafibre_acs::cwmp::rpc::{
    AddObjectResponse, DeleteObjectResponse, GetParameterAttributesResponse,
    GetParameterNamesResponse, GetParameterValuesResponse, ParameterAttribute, ParameterInfo,
    SetParameterAttribute, SetParameterValuesResponse,
};
use gigafibre_acs::cwmp::{
    Fault, ParameterValue, SetParameterValuesFault, ValueType, fault_code_name,
    is_secret_parameter, parse_bool,
};
use serde::{Deserialize, Serialize};

/// One leaf parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub value: String,
    pub kind: ValueType,
    pub writable: bool,
    #[serde(default)]
    pub notification: u32,
    #[serde(default)]
    pub access_list: Vec<String>,
}

/// The parameter tree: leaves by path (`Device.WiFi.SSID.1.SSID`) and
/// objects by path with a trailing dot (`Device.WiFi.SSID.1.`), each with
/// its writability (a writable table object accepts AddObject).
///
/// Thousands of simulated devices share one tree: the maps are
/// reference-counted and copied on a device's first write, and per-device
/// values (serial, MAC, URLs) stay as `{{PLACEHOLDER}}`s in the shared tree,
/// resolved from `vars` whenever a value is read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataModel {
    pub params: Arc<BTreeMap<String, Param>>,
    pub objects: Arc<BTreeMap<String, bool>>,
    #[serde(default)]
    pub vars: Arc<Vec<(String, String)>>,
}

/// A CPE fault code with its standard text.
pub fn cpe_fault(code: u32, detail: &str) -> Fault {
    Fault {
        soap_code: if code == 9002 { "Server" } else { "Client" }.into(),
        soap_string: "CWMP fault".into(),
        code,
        string: if detail.is_empty() {
            fault_code_name(code).to_owned()
        } else {
            detail.to_owned()
        },
        set_parameter_values_faults: Vec::new(),
    }
}

impl DataModel {
    /// `Device.` or `InternetGatewayDevice.`
    pub fn root(&self) -> &str {
        if self.objects.contains_key("InternetGatewayDevice.")
            || self
                .params
                .keys()
                .any(|k| k.starts_with("InternetGatewayDevice."))
        {
            "InternetGatewayDevice."
        } else {
            "Device."
        }
    }

    /// Resolves `{{NAME}}` placeholders of a stored value.
    pub fn resolve<'a>(&self, value: &'a str) -> Cow<'a, str> {
        if !value.contains("{{") {
            return Cow::Borrowed(value);
        }
        let mut out = value.to_owned();
        for (k, v) in self.vars.iter() {
            if out.contains(k.as_str()) {
                out = out.replace(k.as_str(), v);
            }
        }
        Cow::Owned(out)
    }

    fn params_mut(&mut self) -> &mut BTreeMap<String, Param> {
        Arc::make_mut(&mut self.params)
    }

    fn objects_mut(&mut self) -> &mut BTreeMap<String, bool> {
        Arc::make_mut(&mut self.objects)
    }

    /// Adds a leaf, creating its parent objects.
    pub fn insert_param(&mut self, path: &str, param: Param) {
        self.add_parents(path);
        self.params_mut().insert(path.to_owned(), param);
    }

    /// Adds an object (path with or without the trailing dot).
    pub fn insert_object(&mut self, path: &str, writable: bool) {
        let path = if path.ends_with('.') {
            path.to_owned()
        } else {
            format!("{path}.")
        };
        self.add_parents(&path[..path.len() - 1]);
        self.objects_mut().insert(path, writable);
    }

    fn add_parents(&mut self, path: &str) {
        let mut end = 0;
        while let Some(i) = path[end..].find('.') {
            end += i + 1;
            if !self.objects.contains_key(&path[..end]) {
                self.objects_mut().insert(path[..end].to_owned(), false);
            }
        }
    }

    pub fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        self.params.get(path).map(|p| self.resolve(&p.value))
    }

    /// Sets a value directly (the device itself changing it). Returns the
    /// notification level of the parameter if the value changed.
    pub fn set_local(&mut self, path: &str, value: &str) -> Option<u32> {
        if self.get(path)? == value {
            return None;
        }
        let p = self.params_mut().get_mut(path)?;
        p.value = value.to_owned();
        Some(p.notification)
    }

    fn is_object(&self, path: &str) -> bool {
        self.objects.contains_key(path)
    }

    /// Leaves under an object path (all of them when `path` is empty).
    fn leaves_under<'a>(
        &'a self,
        path: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Param)> + 'a {
        self.params
            .range(path.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(path))
    }

    /// The value reported for a parameter: secrets read back empty, as on
    /// real devices.
    fn reported(&self, name: &str, p: &Param) -> ParameterValue {
        let value = if is_secret_parameter(name) {
            String::new()
        } else {
            self.resolve(&p.value).into_owned()
        };
        ParameterValue {
            name: name.to_owned(),
            value,
            kind: p.kind.clone(),
        }
    }

    /// GetParameterValues. A name ending in `.` (or empty) is a subtree.
    pub fn get_values(&self, names: &[String]) -> Result<GetParameterValuesResponse, Fault> {
        let mut out = Vec::new();
        for name in names {
            if name.is_empty() || name.ends_with('.') {
                if !name.is_empty() && !self.is_object(name) {
                    return Err(cpe_fault(9005, &format!("no object {name}")));
                }
                out.extend(self.leaves_under(name).map(|(k, p)| self.reported(k, p)));
            } else {
                let p = self
                    .params
                    .get(name)
                    .ok_or_else(|| cpe_fault(9005, &format!("no parameter {name}")))?;
                out.push(self.reported(name, p));
            }
        }
        Ok(GetParameterValuesResponse { parameters: out })
    }

    /// Checks one SetParameterValues entry as a CPE would.
    fn check_set(&self, pv: &ParameterValue) -> Result<(), u32> {
        let p = self.params.get(&pv.name).ok_or(9005u32)?;
        if !p.writable {
            return Err(9008);
        }
        let v = pv.value.as_str();
        let ok = match p.kind {
            ValueType::Boolean => parse_bool(v).is_some(),
            ValueType::Int => v.trim().parse::<i32>().is_ok(),
            ValueType::UnsignedInt => v.trim().parse::<u32>().is_ok(),
            ValueType::Long => v.trim().parse::<i64>().is_ok(),
            ValueType::UnsignedLong => v.trim().parse::<u64>().is_ok(),
            _ => true,
        };
        if !ok {
            return Err(9007);
        }
        let leaf = pv.name.rsplit('.').next().unwrap_or("");
        // WPA passphrases are 8–63 characters, SSIDs 1–32 bytes, a
        // pre-shared key 64 hex digits (a passphrase there is refused).
        if leaf == "KeyPassphrase" || leaf == "SAEPassphrase" || leaf == "X_TP_PreSharedKey" {
            let n = v.chars().count();
            if !(8..=63).contains(&n) {
                return Err(9007);
            }
        }
        if leaf == "PreSharedKey" && !(v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(9007);
        }
        if leaf == "SSID" && (v.is_empty() || v.len() > 32) {
            return Err(9007);
        }
        Ok(())
    }

    /// SetParameterValues: all or nothing; records the ParameterKey.
    pub fn set_values(
        &mut self,
        values: &[ParameterValue],
        key: &str,
    ) -> Result<SetParameterValuesResponse, Fault> {
        if values.is_empty() {
            return Err(cpe_fault(9003, "empty ParameterList"));
        }
        let mut faults = Vec::new();
        for (i, pv) in values.iter().enumerate() {
            let err = if values[..i].iter().any(|o| o.name == pv.name) {
                Err(9003)
            } else {
                self.check_set(pv)
            };
            if let Err(code) = err {
                faults.push(SetParameterValuesFault {
                    parameter_name: pv.name.clone(),
                    code,
                    string: fault_code_name(code).to_owned(),
                });
            }
        }
        if !faults.is_empty() {
            let mut f = cpe_fault(9003, "");
            f.set_parameter_values_faults = faults;
            return Err(f);
        }
        let params = self.params_mut();
        for pv in values {
            if let Some(p) = params.get_mut(&pv.name) {
                p.value = pv.value.clone();
            }
        }
        self.set_parameter_key(key);
        Ok(SetParameterValuesResponse { status: 0 })
    }

    fn set_parameter_key(&mut self, key: &str) {
        let path = format!("{}ManagementServer.ParameterKey", self.root());
        if self.params.contains_key(&path) {
            if let Some(p) = self.params_mut().get_mut(&path) {
                p.value = key.to_owned();
            }
        }
    }

    /// GetParameterNames. An empty path means the root (some CPEs stall on
    /// it; this one answers as if asked for the root).
    pub fn get_names(
        &self,
        path: &str,
        next_level: bool,
    ) -> Result<GetParameterNamesResponse, Fault> {
        let root = self.root().to_owned();
        let path = if path.is_empty() { root.as_str() } else { path };
        let mut out = Vec::new();
        if !path.ends_with('.') {
            let p = self
                .params
                .get(path)
                .ok_or_else(|| cpe_fault(9005, &format!("no parameter {path}")))?;
            if next_level {
                return Err(cpe_fault(9003, "NextLevel is true for a parameter"));
            }
            out.push(ParameterInfo {
                name: path.to_owned(),
                writable: p.writable,
            });
            return Ok(GetParameterNamesResponse { parameters: out });
        }
        if !self.is_object(path) {
            return Err(cpe_fault(9005, &format!("no object {path}")));
        }
        let is_child = |k: &str| {
            let rest = &k[path.len()..];
            let rest = rest.strip_suffix('.').unwrap_or(rest);
            !rest.is_empty() && !rest.contains('.')
        };
        if !next_level {
            out.push(ParameterInfo {
                name: path.to_owned(),
                writable: self.objects[path],
            });
        }
        // Objects and leaves interleaved in path order, as devices list them.
        let mut names: BTreeMap<&str, bool> = BTreeMap::new();
        for (k, w) in self
            .objects
            .range(path.to_owned()..)
            .take_while(|(k, _)| k.starts_with(path))
        {
            if k.as_str() != path && (!next_level || is_child(k)) {
                names.insert(k, *w);
            }
        }
        for (k, p) in self.leaves_under(path) {
            if !next_level || is_child(k) {
                names.insert(k, p.writable);
            }
        }
        out.extend(names.into_iter().map(|(n, w)| ParameterInfo {
            name: n.to_owned(),
            writable: w,
        }));
        Ok(GetParameterNamesResponse { parameters: out })
    }

    pub fn get_attributes(
        &self,
        names: &[String],
    ) -> Result<GetParameterAttributesResponse, Fault> {
        let mut out = Vec::new();
        for name in names {
            let matched: Vec<(&String, &Param)> = if name.is_empty() || name.ends_with('.') {
                if !name.is_empty() && !self.is_object(name) {
                    return Err(cpe_fault(9005, &format!("no object {name}")));
                }
                self.leaves_under(name).collect()
            } else {
                let p = self
                    .params
                    .get_key_value(name)
                    .ok_or_else(|| cpe_fault(9005, &format!("no parameter {name}")))?;
                vec![p]
            };
            out.extend(matched.into_iter().map(|(k, p)| ParameterAttribute {
                name: k.clone(),
                notification: p.notification,
                access_list: p.access_list.clone(),
            }));
        }
        Ok(GetParameterAttributesResponse { parameters: out })
    }

    pub fn set_attributes(&mut self, list: &[SetParameterAttribute]) -> Result<(), Fault> {
        for a in list {
            let known = if a.name.is_empty() || a.name.ends_with('.') {
                a.name.is_empty() || self.is_object(&a.name)
            } else {
                self.params.contains_key(&a.name)
            };
            if !known {
                return Err(cpe_fault(9005, &format!("no parameter {}", a.name)));
            }
            if a.notification_change && a.notification > 6 {
                return Err(cpe_fault(9003, "Notification must be 0..6"));
            }
        }
        for a in list {
            let names: Vec<String> = if a.name.is_empty() || a.name.ends_with('.') {
                self.leaves_under(&a.name).map(|(k, _)| k.clone()).collect()
            } else {
                vec![a.name.clone()]
            };
            for n in names {
                if let Some(p) = self.params_mut().get_mut(&n) {
                    if a.notification_change {
                        p.notification = a.notification;
                    }
                    if a.access_list_change {
                        p.access_list = a.access_list.clone();
                    }
                }
            }
        }
        Ok(())
    }

    /// AddObject: a new instance of a writable table, cloned from an
    /// existing instance with default values.
    pub fn add_object(&mut self, path: &str, key: &str) -> Result<AddObjectResponse, Fault> {
        if !path.ends_with('.') || self.objects.get(path) != Some(&true) {
            return Err(cpe_fault(
                9005,
                &format!("{path} is not a table that accepts AddObject"),
            ));
        }
        let instances: Vec<u32> = self
            .objects
            .keys()
            .filter_map(|k| k.strip_prefix(path)?.strip_suffix('.')?.parse().ok())
            .collect();
        let next = instances.iter().max().copied().unwrap_or(0) + 1;
        let new_prefix = format!("{path}{next}.");
        if let Some(template) = instances.iter().min() {
            let old_prefix = format!("{path}{template}.");
            let objects: Vec<(String, bool)> = self
                .objects
                .range(old_prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&old_prefix))
                .map(|(k, w)| (format!("{new_prefix}{}", &k[old_prefix.len()..]), *w))
                .collect();
            let params: Vec<(String, Param)> = self
                .leaves_under(&old_prefix)
                .map(|(k, p)| {
                    let value = match p.kind {
                        ValueType::Boolean => "false".to_owned(),
                        ValueType::Int
                        | ValueType::UnsignedInt
                        | ValueType::Long
                        | ValueType::UnsignedLong => "0".to_owned(),
                        _ => String::new(),
                    };
                    (
                        format!("{new_prefix}{}", &k[old_prefix.len()..]),
                        Param { value, ..p.clone() },
                    )
                })
                .collect();
            self.objects_mut().extend(objects);
            self.params_mut().extend(params);
        } else {
            self.objects_mut().insert(new_prefix, true);
        }
        self.set_parameter_key(key);
        Ok(AddObjectResponse {
            instance_number: next,
            status: 0,
        })
    }

    /// DeleteObject of one instance (`...Table.N.`).
    pub fn delete_object(&mut self, path: &str, key: &str) -> Result<DeleteObjectResponse, Fault> {
        let is_instance = path
            .strip_suffix('.')
            .and_then(|p| p.rsplit('.').next())
            .is_some_and(|last| last.parse::<u32>().is_ok());
        if !is_instance || !self.is_object(path) {
            return Err(cpe_fault(
                9005,
                &format!("{path} is not an object instance"),
            ));
        }
        self.objects_mut().retain(|k, _| !k.starts_with(path));
        self.params_mut().retain(|k, _| !k.starts_with(path));
        self.set_parameter_key(key);
        Ok(DeleteObjectResponse { status: 0 })
    }

    /// Parameters every Inform carries: the forced inform parameters of the
    /// root data model (TR-098 / TR-181 "Inform Parameters" tables, TR-069
    /// 3.7.1.5) that the model has, and those with active notification.
    /// Nothing else: real CPEs send no `ModelName`, so neither does this.
    pub fn inform_parameters(&self) -> Vec<ParameterValue> {
        let root = self.root();
        let mut names: Vec<String> = [
            "DeviceInfo.SpecVersion",
            "DeviceInfo.HardwareVersion",
            "DeviceInfo.SoftwareVersion",
            "DeviceInfo.ProvisioningCode",
            "ManagementServer.ConnectionRequestURL",
            "ManagementServer.ParameterKey",
        ]
        .iter()
        .map(|s| format!("{root}{s}"))
        .collect();
        if root == "Device." {
            names.push("Device.RootDataModelVersion".into());
            names.push("Device.ManagementServer.AliasBasedAddressing".into());
        } else {
            names.push("InternetGatewayDevice.DeviceSummary".into());
            // The default connection's external address: the first WAN
            // connection that has one.
            if let Some(wan) = self.params.keys().find(|k| {
                k.starts_with("InternetGatewayDevice.WANDevice.")
                    && (k.contains(".WANIPConnection.") || k.contains(".WANPPPConnection."))
                    && k.ends_with(".ExternalIPAddress")
            }) {
                names.push(wan.clone());
            }
        }
        // Active-notification parameters are always reported (TR-069 3.7.1.5).
        names.extend(
            self.params
                .iter()
                .filter(|(_, p)| p.notification == 2)
                .map(|(k, _)| k.clone()),
        );
        names.sort();
        names.dedup();
        names
            .iter()
            .filter_map(|n| self.params.get(n).map(|p| self.reported(n, p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> DataModel {
        let mut m = DataModel::default();
        let p = |v: &str, kind: ValueType, writable: bool| Param {
            value: v.into(),
            kind,
            writable,
            notification: 0,
            access_list: vec![],
        };
        m.insert_param(
            "Device.DeviceInfo.SoftwareVersion",
            p("1.0", ValueType::String, false),
        );
        m.insert_param(
            "Device.ManagementServer.ParameterKey",
            p("", ValueType::String, false),
        );
        m.insert_param(
            "Device.ManagementServer.PeriodicInformInterval",
            p("300", ValueType::UnsignedInt, true),
        );
        m.insert_object("Device.WiFi.SSID", true);
        m.insert_object("Device.WiFi.SSID.1", false);
        m.insert_param(
            "Device.WiFi.SSID.1.SSID",
            p("Home", ValueType::String, true),
        );
        m.insert_param(
            "Device.WiFi.SSID.1.Enable",
            p("true", ValueType::Boolean, true),
        );
        m.insert_param(
            "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
            p("secretpass", ValueType::String, true),
        );
        m
    }

    #[test]
    fn values_subtrees_and_secrets() {
        let m = model();
        let r = m.get_values(&["Device.WiFi.".into()]).unwrap();
        assert_eq!(r.parameters.len(), 3);
        let pass = r
            .parameters
            .iter()
            .find(|p| p.name.ends_with("KeyPassphrase"))
            .unwrap();
        assert_eq!(pass.value, "", "secrets read back empty");
        assert_eq!(
            m.get_values(&["Device.Nope".into()]).unwrap_err().code,
            9005
        );
        assert_eq!(
            m.get_values(&["Device.Nope.".into()]).unwrap_err().code,
            9005
        );
        assert_eq!(m.get_values(&[String::new()]).unwrap().parameters.len(), 6);
    }

    #[test]
    fn set_is_all_or_nothing_with_a_fault_list() {
        let mut m = model();
        let pv = |n: &str, v: &str| ParameterValue::new(n, v, ValueType::String);
        let err = m
            .set_values(
                &[
                    pv("Device.WiFi.SSID.1.SSID", "New"),
                    pv("Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "short"),
                    pv("Device.DeviceInfo.SoftwareVersion", "2.0"),
                    pv("Device.Nope", "x"),
                    pv("Device.ManagementServer.PeriodicInformInterval", "abc"),
                ],
                "k",
            )
            .unwrap_err();
        assert_eq!(err.code, 9003);
        let codes: Vec<u32> = err
            .set_parameter_values_faults
            .iter()
            .map(|f| f.code)
            .collect();
        assert_eq!(codes, [9007, 9008, 9005, 9007]);
        assert_eq!(
            m.get("Device.WiFi.SSID.1.SSID").as_deref(),
            Some("Home"),
            "nothing applied"
        );
        m.set_values(
            &[
                pv("Device.WiFi.SSID.1.SSID", "New"),
                pv("Device.WiFi.SSID.1.Enable", "0"),
            ],
            "key-1",
        )
        .unwrap();
        assert_eq!(m.get("Device.WiFi.SSID.1.SSID").as_deref(), Some("New"));
        assert_eq!(
            m.get("Device.ManagementServer.ParameterKey").as_deref(),
            Some("key-1")
        );
        let long = "x".repeat(33);
        assert_eq!(
            m.set_values(&[pv("Device.WiFi.SSID.1.SSID", &long)], "k")
                .unwrap_err()
                .set_parameter_values_faults[0]
                .code,
            9007
        );
    }

    #[test]
    fn names_next_level_and_full() {
        let m = model();
        let r = m.get_names("Device.WiFi.SSID.", true).unwrap();
        let names: Vec<&str> = r.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Device.WiFi.SSID.1."]);
        let r = m.get_names("Device.WiFi.SSID.1.", false).unwrap();
        let names: Vec<&str> = r.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Device.WiFi.SSID.1.",
                "Device.WiFi.SSID.1.Enable",
                "Device.WiFi.SSID.1.SSID"
            ]
        );
        let root = m.get_names("", true).unwrap();
        let names: Vec<&str> = root.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Device.DeviceInfo.",
                "Device.ManagementServer.",
                "Device.WiFi."
            ]
        );
        assert_eq!(m.get_names("Device.X.", false).unwrap_err().code, 9005);
    }

    #[test]
    fn add_and_delete_objects() {
        let mut m = model();
        let r = m.add_object("Device.WiFi.SSID.", "add-1").unwrap();
        assert_eq!(r.instance_number, 2);
        assert_eq!(m.get("Device.WiFi.SSID.2.SSID").as_deref(), Some(""));
        assert_eq!(m.get("Device.WiFi.SSID.2.Enable").as_deref(), Some("false"));
        assert_eq!(
            m.get("Device.ManagementServer.ParameterKey").as_deref(),
            Some("add-1")
        );
        assert_eq!(m.add_object("Device.WiFi.", "k").unwrap_err().code, 9005);
        m.delete_object("Device.WiFi.SSID.2.", "del").unwrap();
        assert_eq!(m.get("Device.WiFi.SSID.2.SSID").as_deref(), None);
        assert_eq!(
            m.delete_object("Device.WiFi.SSID.2.", "del")
                .unwrap_err()
                .code,
            9005
        );
    }

    #[test]
    fn attributes_and_inform_parameters() {
        let mut m = model();
        m.set_attributes(&[SetParameterAttribute {
            name: "Device.WiFi.SSID.1.SSID".into(),
            notification_change: true,
            notification: 2,
            access_list_change: false,
            access_list: vec![],
        }])
        .unwrap();
        let a = m
            .get_attributes(&["Device.WiFi.SSID.1.SSID".into()])
            .unwrap();
        assert_eq!(a.parameters[0].notification, 2);
        let inform: Vec<String> = m.inform_parameters().into_iter().map(|p| p.name).collect();
        assert!(
            inform.contains(&"Device.WiFi.SSID.1.SSID".to_owned()),
            "active notification is reported"
        );
        assert!(inform.contains(&"Device.DeviceInfo.SoftwareVersion".to_owned()));
        assert!(
            !inform.iter().any(|n| n.ends_with("ModelName")),
            "no CPE sends ModelName unasked"
        );
        assert_eq!(m.set_local("Device.WiFi.SSID.1.SSID", "Changed"), Some(2));
        assert_eq!(m.set_local("Device.WiFi.SSID.1.SSID", "Changed"), None);
    }
}

//! The alarm rules file (`alarm_rules`): thresholds by ONU optical class,
//! which ONTs are of which class, and the other rules' parameters. The
//! built-in rules are `rules.toml` beside this file; a file given in the
//! configuration replaces them as a whole.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::store::DeviceRecord;

/// The rules built into the binary.
pub const BUILTIN: &str = include_str!("rules.toml");

/// The limits of received optical power, dBm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpticalLimits {
    pub rx_min_dbm: f64,
    pub rx_max_dbm: f64,
}

/// GPON class B+, should rules be built by hand without their default.
const FALLBACK: OpticalLimits = OpticalLimits {
    rx_min_dbm: -27.0,
    rx_max_dbm: -8.0,
};

/// An ONU optical class: its name and limits.
#[derive(Clone, Debug, PartialEq)]
pub struct OpticalClass {
    pub name: String,
    pub description: String,
    pub limits: OpticalLimits,
}

/// Which devices are of a class: every listed field must match.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassMatch {
    #[serde(default)]
    pub model_names: Vec<String>,
    #[serde(default)]
    pub serial_prefixes: Vec<String>,
    #[serde(default)]
    pub manufacturers: Vec<String>,
    #[serde(default)]
    pub ouis: Vec<String>,
    #[serde(default)]
    pub product_classes: Vec<String>,
    pub class: String,
}

impl ClassMatch {
    fn is_empty(&self) -> bool {
        self.model_names.is_empty()
            && self.serial_prefixes.is_empty()
            && self.manufacturers.is_empty()
            && self.ouis.is_empty()
            && self.product_classes.is_empty()
    }

    fn matches(&self, device: &DeviceRecord) -> bool {
        let id = &device.identity;
        let any = |list: &[String], value: &str| {
            list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(value))
        };
        let model = device.model_name.as_deref().unwrap_or("");
        let serial = id.serial_number.to_ascii_uppercase();
        (self.model_names.is_empty() || (!model.is_empty() && any(&self.model_names, model)))
            && (self.serial_prefixes.is_empty()
                || self
                    .serial_prefixes
                    .iter()
                    .any(|p| serial.starts_with(&p.to_ascii_uppercase())))
            && any(&self.manufacturers, &id.manufacturer)
            && any(&self.ouis, &id.oui)
            && any(&self.product_classes, &id.product_class)
    }
}

/// The alarm rules in force.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmRules {
    /// dB back inside a limit that clears an optical alarm.
    pub hysteresis_db: f64,
    /// Periodic intervals without an Inform that make a device silent.
    pub silent_intervals: u64,
    /// `1 BOOT` Informs within [`Self::boot_loop_window_ms`] that make a
    /// boot loop.
    pub boot_loop_boots: usize,
    pub boot_loop_window_ms: u64,
    /// Failed provisioning runs in a row that raise an alarm.
    pub provisioning_failures: u32,
    pub classes: BTreeMap<String, OpticalClass>,
    pub default_class: String,
    /// First match first.
    pub devices: Vec<ClassMatch>,
}

/// What is wrong with a rules file.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum RulesError {
    #[error("{0}")]
    Syntax(String),
    #[error("`{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> RulesError {
    RulesError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    hysteresis_db: f64,
    silent: RawSilent,
    boot_loop: RawBootLoop,
    provisioning_failed: RawProvisioning,
    optical: RawOptical,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSilent {
    intervals: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBootLoop {
    boots: usize,
    window_minutes: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvisioning {
    failures: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptical {
    default_class: String,
    classes: BTreeMap<String, RawClass>,
    #[serde(default)]
    devices: Vec<ClassMatch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    #[serde(default)]
    description: String,
    rx_min_dbm: f64,
    rx_max_dbm: f64,
}

impl AlarmRules {
    /// The rules built into the binary.
    pub fn builtin() -> AlarmRules {
        // Checked by a unit test: the embedded file always parses.
        AlarmRules::parse(BUILTIN).unwrap_or_else(|e| panic!("built-in alarm rules: {e}"))
    }

    /// Parses and checks a rules file.
    pub fn parse(text: &str) -> Result<AlarmRules, RulesError> {
        let raw: RawRules = toml::from_str(text).map_err(|e| {
            // The message names the line, the column and the field.
            RulesError::Syntax(e.to_string().trim_end().to_owned())
        })?;
        let range = |field: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(invalid(field, format!("{v} is not within {lo}..{hi}")))
            }
        };
        let hysteresis_db = range("hysteresis_db", raw.hysteresis_db, 0.0, 10.0)?;
        if !(1..=100).contains(&raw.silent.intervals) {
            return Err(invalid("silent.intervals", "must be 1 to 100"));
        }
        if !(2..=100).contains(&raw.boot_loop.boots) {
            return Err(invalid("boot_loop.boots", "must be 2 to 100"));
        }
        if !(1..=7 * 24 * 60).contains(&raw.boot_loop.window_minutes) {
            return Err(invalid(
                "boot_loop.window_minutes",
                "must be 1 to 10080 (a week)",
            ));
        }
        if !(1..=1000).contains(&raw.provisioning_failed.failures) {
            return Err(invalid("provisioning_failed.failures", "must be 1 to 1000"));
        }
        let mut classes = BTreeMap::new();
        for (name, c) in raw.optical.classes {
            let field = |f: &str| format!("optical.classes.\"{name}\".{f}");
            let limits = OpticalLimits {
                rx_min_dbm: range(&field("rx_min_dbm"), c.rx_min_dbm, -60.0, 10.0)?,
                rx_max_dbm: range(&field("rx_max_dbm"), c.rx_max_dbm, -60.0, 10.0)?,
            };
            if limits.rx_min_dbm >= limits.rx_max_dbm {
                return Err(invalid(field("rx_min_dbm"), "must be below rx_max_dbm"));
            }
            classes.insert(
                name.clone(),
                OpticalClass {
                    name,
                    description: c.description,
                    limits,
                },
            );
        }
        let known = || classes.keys().cloned().collect::<Vec<_>>().join(", ");
        if !classes.contains_key(&raw.optical.default_class) {
            return Err(invalid(
                "optical.default_class",
                format!(
                    "`{}` is not a class of optical.classes ({})",
                    raw.optical.default_class,
                    known()
                ),
            ));
        }
        for (i, m) in raw.optical.devices.iter().enumerate() {
            let field = format!("optical.devices[{}]", i + 1);
            if !classes.contains_key(&m.class) {
                return Err(invalid(
                    format!("{field}.class"),
                    format!(
                        "`{}` is not a class of optical.classes ({})",
                        m.class,
                        known()
                    ),
                ));
            }
            if m.is_empty() {
                return Err(invalid(
                    field,
                    "lists none of model_names, serial_prefixes, manufacturers, ouis, product_classes: it would match every device",
                ));
            }
        }
        Ok(AlarmRules {
            hysteresis_db,
            silent_intervals: raw.silent.intervals,
            boot_loop_boots: raw.boot_loop.boots,
            boot_loop_window_ms: raw.boot_loop.window_minutes * 60_000,
            provisioning_failures: raw.provisioning_failed.failures,
            classes,
            default_class: raw.optical.default_class,
            devices: raw.optical.devices,
        })
    }

    /// The optical class of a device: the first entry of `devices` it
    /// matches, else the default class.
    pub fn optical_class(&self, device: &DeviceRecord) -> OpticalClass {
        let name = self
            .devices
            .iter()
            .find(|m| m.matches(device))
            .map_or(&self.default_class, |m| &m.class);
        // `parse` checks that both name a class; B+ should rules be built
        // by hand without.
        self.classes
            .get(name)
            .or_else(|| self.classes.get(&self.default_class))
            .cloned()
            .unwrap_or_else(|| OpticalClass {
                name: "gpon-b+".into(),
                description: String::new(),
                limits: FALLBACK,
            })
    }

    /// The limits of a class by name (B+ for an unknown name).
    pub fn optical_class_named(&self, name: &str) -> OpticalLimits {
        self.classes.get(name).map_or(FALLBACK, |c| c.limits)
    }

    /// The rules as a file [`AlarmRules::parse`] reads back the same: what
    /// `gigafibre-acs alarm-rules` prints.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let list = |v: &[String]| {
            let quoted: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut out = String::new();
        let _ = writeln!(out, "hysteresis_db = {:?}\n", self.hysteresis_db);
        let _ = writeln!(out, "[silent]\nintervals = {}\n", self.silent_intervals);
        let _ = writeln!(
            out,
            "[boot_loop]\nboots = {}\nwindow_minutes = {}\n",
            self.boot_loop_boots,
            self.boot_loop_window_ms / 60_000
        );
        let _ = writeln!(
            out,
            "[provisioning_failed]\nfailures = {}\n",
            self.provisioning_failures
        );
        let _ = writeln!(out, "[optical]\ndefault_class = {:?}\n", self.default_class);
        for c in self.classes.values() {
            let _ = writeln!(
                out,
                "[optical.classes.{:?}]\ndescription = {:?}\nrx_min_dbm = {:?}\nrx_max_dbm = {:?}\n",
                c.name, c.description, c.limits.rx_min_dbm, c.limits.rx_max_dbm
            );
        }
        for m in &self.devices {
            let _ = writeln!(out, "[[optical.devices]]");
            for (field, v) in [
                ("model_names", &m.model_names),
                ("serial_prefixes", &m.serial_prefixes),
                ("manufacturers", &m.manufacturers),
                ("ouis", &m.ouis),
                ("product_classes", &m.product_classes),
            ] {
                if !v.is_empty() {
                    let _ = writeln!(out, "{field} = {}", list(v));
                }
            }
            let _ = writeln!(out, "class = {:?}\n", m.class);
        }
        out
    }

    /// Overrides the default class's limits (`optical_rx_min_dbm` /
    /// `optical_rx_max_dbm` set in the configuration).
    pub fn set_default_limits(&mut self, limits: OpticalLimits) {
        if let Some(c) = self.classes.get_mut(&self.default_class) {
            c.limits = limits;
        }
    }
}

impl Default for AlarmRules {
    fn default() -> Self {
        AlarmRules::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::rpc::DeviceIdStruct;

    fn device(oui: &str, class: &str, serial: &str, model: Option<&str>) -> DeviceRecord {
        let mut d = DeviceRecord::new(
            "D".into(),
            DeviceIdStruct {
                manufacturer: "TP-Link".into(),
                oui: oui.into(),
                product_class: class.into(),
                serial_number: serial.into(),
            },
            crate::cwmp::CwmpVersion::V1_0,
            0,
        );
        d.model_name = model.map(str::to_owned);
        d
    }

    #[test]
    fn builtin_rules_parse_with_the_b_plus_default() {
        let r = AlarmRules::builtin();
        let c = r.optical_class(&device("00259E", "ONT", "RCMG1", None));
        assert_eq!(c.name, "gpon-b+");
        assert_eq!(
            c.limits,
            OpticalLimits {
                rx_min_dbm: -27.0,
                rx_max_dbm: -8.0
            }
        );
        assert_eq!(r.classes["xgs-pon"].limits.rx_max_dbm, -9.0);
        assert_eq!((r.silent_intervals, r.boot_loop_boots), (3, 3));
        assert_eq!(r.boot_loop_window_ms, 3_600_000);
    }

    fn with_devices(extra: &str) -> String {
        format!("{BUILTIN}\n{extra}")
    }

    #[test]
    fn devices_take_the_class_of_their_first_matching_entry() {
        let r = AlarmRules::parse(&with_devices(
            r#"
[[optical.devices]]
model_names = ["xx530V"]
class = "xgs-pon"

[[optical.devices]]
serial_prefixes = ["rcmg"]
product_classes = ["ONT"]
class = "gpon-c+"

[[optical.devices]]
serial_prefixes = ["RCMG"]
class = "xgs-pon"
"#,
        ))
        .unwrap();
        let class = |d: &DeviceRecord| r.optical_class(d).name;
        assert_eq!(class(&device("1", "X", "TPLG1", Some("XX530v"))), "xgs-pon");
        assert_eq!(class(&device("1", "ont", "RCMG1", None)), "gpon-c+");
        assert_eq!(class(&device("1", "HGU", "RCMG1", None)), "xgs-pon");
        assert_eq!(class(&device("1", "X", "TPLG1", Some("XX230v"))), "gpon-b+");
        assert_eq!(class(&device("1", "X", "TPLG1", None)), "gpon-b+");
    }

    #[test]
    fn rendered_rules_read_back_the_same() {
        let mut r = AlarmRules::parse(&with_devices(
            "[[optical.devices]]\nmodel_names = [\"X\\\"\", \"é\"]\nouis = [\"00259E\"]\nclass = \"xgs-pon\"\n",
        ))
        .unwrap();
        r.set_default_limits(OpticalLimits {
            rx_min_dbm: -28.5,
            rx_max_dbm: -3.0,
        });
        assert_eq!(AlarmRules::parse(&r.render()).unwrap(), r);
        let b = AlarmRules::builtin();
        assert_eq!(AlarmRules::parse(&b.render()).unwrap(), b);
    }

    #[test]
    fn a_wrong_file_is_refused_naming_what_is_wrong() {
        let err = |text: &str| AlarmRules::parse(text).unwrap_err().to_string();
        let e = err(&with_devices(
            "[[optical.devices]]\nmodel_names = [\"A\"]\nclass = \"gpon-x\"\n",
        ));
        assert!(
            e.contains("optical.devices[1].class") && e.contains("gpon-b+"),
            "{e}"
        );
        let e = err(&with_devices("[[optical.devices]]\nclass = \"gpon-b+\"\n"));
        assert!(e.contains("every device"), "{e}");
        let e = err(&BUILTIN.replace("rx_min_dbm = -27.0", "rx_min_dbm = -5.0"));
        assert!(
            e.contains("gpon-b+") && e.contains("below rx_max_dbm"),
            "{e}"
        );
        let e = err(&BUILTIN.replace("intervals = 3", "intervals = 0"));
        assert!(e.contains("silent.intervals"), "{e}");
        let e = err(&BUILTIN.replace("default_class = \"gpon-b+\"", "default_class = \"b\""));
        assert!(e.contains("optical.default_class"), "{e}");
        let e = err(&BUILTIN.replace("hysteresis_db", "hysteresis"));
        assert!(e.contains("hysteresis"), "{e}");
        let e = err("[[[");
        assert!(e.contains("line 1"), "{e}");
        let e = err(&BUILTIN.replace("rx_max_dbm = -8.0", "rx_max_dbm = \"x\""));
        assert!(e.contains("rx_max_dbm"), "{e}");
    }
}

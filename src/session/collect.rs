//! The host-table collector's part of a session: read the effective
//! profile's topology and diagnostics paths with GetParameterValues.
//!
//! By default every name asked for is one the device reported: the
//! collector first has the session learn again the tables that change
//! between sessions (hosts, WiFi stations, mesh nodes: one
//! GetParameterNames each, e.g. `Device.Hosts.Host.` and
//! `Device.WiFi.MultiAP.APDevice.`), unless the data model was just
//! discovered in this session, then asks for the parameters under each
//! path in one request. A 9005 (the device changed in between, maybe in a
//! table thought stable) makes it learn the whole top-level objects
//! holding those tables (`Device.WiFi.`, `Device.Hosts.`) and retry once.
//!
//! Only the tables themselves at first: on a Deco with 2 satellites and 60
//! clients `Device.WiFi.` alone is ~300 KB of names (radios, SSIDs, access
//! points with their statistics) that a topology refresh decoded, merged
//! into the tree and compared, every time, for rows that do not come and go.
//!
//! A profile that opts in (`partial_paths = true`) reads each table with
//! its partial path instead, in one request; on 9005 it falls back to one
//! request per path and keeps what it gets (some Raisecom revisions lack
//! vendor paths other revisions have).

use crate::cwmp::Body;
use crate::cwmp::Fault;
use crate::cwmp::rpc::GetParameterValues;
use crate::provision::datamodel::DataModelTree;

use super::Effect;

/// CWMP fault: invalid parameter name.
const INVALID_PARAMETER_NAME: u32 = 9005;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Learn the volatile subtrees, then read every name under the paths.
    Explicit { learned: bool, retried: bool },
    /// Everything in one request of partial paths.
    Batch,
    /// Partial paths one at a time; the index of the next one.
    Single(usize),
}

/// What the collector wants next.
#[derive(Debug, PartialEq)]
pub enum CollectStep {
    Send(Body),
    /// Learn these subtrees again (GetParameterNames), then ask again.
    Learn(Vec<String>),
    Done,
}

/// Collection in progress.
#[derive(Debug)]
pub struct Collector {
    paths: Vec<String>,
    mode: Mode,
    /// A request is out and not yet answered.
    waiting: bool,
    /// Names of the explicit request in flight.
    asked: Vec<String>,
    read: usize,
    missing: Vec<String>,
    error: Option<String>,
    done: bool,
}

/// Tables whose rows come and go between sessions.
const VOLATILE_TABLES: [&str; 4] = ["Host.", "AssociatedDevice.", "APDevice.", "Network.Device."];

/// The volatile table `path` is or lies under, as the object path of that
/// table (`Device.WiFi.AccessPoint.1.AssociatedDevice.` for itself or for
/// `Device.WiFi.AccessPoint.1.AssociatedDevice.2.MACAddress`); `None` when
/// the path holds none.
fn volatile_table(path: &str) -> Option<&str> {
    if VOLATILE_TABLES.iter().any(|t| path.ends_with(t)) {
        return Some(path);
    }
    VOLATILE_TABLES
        .iter()
        .filter_map(|t| {
            // `.{t}` without allocating: the table name right after a dot.
            path.match_indices(t)
                .find(|(at, _)| *at > 0 && path.as_bytes()[at - 1] == b'.')
                .map(|(at, _)| at + t.len())
        })
        .min()
        .map(|end| &path[..end])
}

/// The subtrees to learn again before reading `paths`: the top-level
/// object (`Device.WiFi.`, `InternetGatewayDevice.LANDevice.`) of every
/// path that holds a table whose rows come and go, each once.
pub fn volatile_groups(paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        if volatile_table(p).is_none() {
            continue;
        }
        let mut segs = p.splitn(3, '.');
        let (Some(root), Some(top)) = (segs.next(), segs.next()) else {
            continue;
        };
        let group = format!("{root}.{top}.");
        if !out.contains(&group) {
            out.push(group);
        }
    }
    out
}

/// The volatile tables to learn again before reading `paths`, each once
/// and none under another, in the order of `paths`.
pub fn volatile_tables(paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in paths.iter().filter_map(|p| volatile_table(p)) {
        if out.iter().any(|o| t.starts_with(o.as_str())) {
            continue;
        }
        out.retain(|o| !o.starts_with(t));
        out.push(t.to_owned());
    }
    out
}

impl Collector {
    /// A collection of `paths` (object prefixes ending in `.` or
    /// parameters). `partial_paths`: read them as partial paths;
    /// `fresh`: the session just discovered the whole data model, so the
    /// volatile tables need not be learned again.
    pub fn new(paths: Vec<String>, partial_paths: bool, fresh: bool) -> Collector {
        Collector {
            done: paths.is_empty(),
            paths,
            mode: if partial_paths {
                Mode::Batch
            } else {
                Mode::Explicit {
                    learned: fresh,
                    retried: false,
                }
            },
            waiting: false,
            asked: Vec::new(),
            read: 0,
            missing: Vec::new(),
            error: None,
        }
    }

    /// The explicit names to read: every parameter under each path that
    /// the device has, statistics left out.
    fn explicit_names(&self, tree: &DataModelTree) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for p in &self.paths {
            if p.ends_with('.') {
                names.extend(
                    tree.leaves_under(p)
                        .filter(|n| !n.contains(".Stats.") && !n.contains(".Capabilities."))
                        .map(str::to_owned),
                );
            } else if tree.has_leaf(p) {
                names.push(p.clone());
            }
        }
        names.dedup();
        names
    }

    /// The next request, or what to learn first, or the end.
    pub fn next(&mut self, tree: Option<&DataModelTree>) -> CollectStep {
        if self.done || self.waiting {
            return CollectStep::Done;
        }
        let names = match self.mode.clone() {
            Mode::Batch => self.paths.clone(),
            Mode::Single(i) => match self.paths.get(i) {
                Some(p) => vec![p.clone()],
                None => {
                    self.done = true;
                    return CollectStep::Done;
                }
            },
            Mode::Explicit { learned, retried } => {
                if !learned {
                    self.mode = Mode::Explicit {
                        learned: true,
                        retried,
                    };
                    // The tables alone; their top-level objects when the
                    // device refused names after that (retry).
                    let learn = if retried {
                        volatile_groups(&self.paths)
                    } else {
                        volatile_tables(&self.paths)
                    };
                    if !learn.is_empty() {
                        return CollectStep::Learn(learn);
                    }
                }
                let Some(tree) = tree else {
                    self.error = Some("the device's data model is unknown".into());
                    self.done = true;
                    return CollectStep::Done;
                };
                let names = self.explicit_names(tree);
                if names.is_empty() {
                    self.done = true;
                    return CollectStep::Done;
                }
                self.asked = names.clone();
                names
            }
        };
        self.waiting = true;
        CollectStep::Send(GetParameterValues { names }.into())
    }

    fn current(&self) -> Vec<String> {
        match self.mode {
            Mode::Batch => self.paths.clone(),
            Mode::Single(i) => self.paths.get(i).cloned().into_iter().collect(),
            Mode::Explicit { .. } => self.asked.clone(),
        }
    }

    fn advance(&mut self) {
        self.waiting = false;
        match self.mode {
            Mode::Batch | Mode::Explicit { .. } => self.done = true,
            Mode::Single(i) => {
                if i + 1 >= self.paths.len() {
                    self.done = true;
                } else {
                    self.mode = Mode::Single(i + 1);
                }
            }
        }
    }

    /// The CPE's answer to the request in flight.
    pub fn on_response(&mut self, body: Body, effects: &mut Vec<Effect>) {
        match body {
            Body::GetParameterValuesResponse(r) => {
                let prefixes: Vec<String> = match self.mode {
                    // Every table was asked for in full, so what it did not
                    // answer is gone from the device.
                    Mode::Explicit { .. } => {
                        self.read += self.paths.len();
                        self.paths
                            .iter()
                            .filter(|p| p.ends_with('.'))
                            .cloned()
                            .collect()
                    }
                    _ => {
                        let asked = self.current();
                        self.read += asked.len();
                        asked.into_iter().filter(|p| p.ends_with('.')).collect()
                    }
                };
                effects.push(Effect::SubtreeValues {
                    prefixes,
                    values: r.parameters,
                });
            }
            other => {
                self.error = Some(format!(
                    "expected GetParameterValuesResponse, got {}",
                    other.name()
                ));
                self.done = true;
            }
        }
        self.advance();
    }

    /// The CPE's fault for the request in flight; may ask to learn
    /// subtrees again ([`CollectStep::Learn`] at the next [`Collector::next`]).
    pub fn on_fault(&mut self, fault: &Fault) {
        match self.mode.clone() {
            Mode::Explicit { retried: false, .. } if fault.code == INVALID_PARAMETER_NAME => {
                self.waiting = false;
                self.mode = Mode::Explicit {
                    learned: false,
                    retried: true,
                };
                // Nothing volatile to learn again, yet the device refused
                // a name of its own data model: a retry is pointless.
                if volatile_groups(&self.paths).is_empty() {
                    self.error =
                        Some("the device refused names of its own data model (9005)".into());
                    self.done = true;
                }
            }
            Mode::Batch if fault.code == INVALID_PARAMETER_NAME && self.paths.len() > 1 => {
                self.waiting = false;
                self.mode = Mode::Single(0);
            }
            Mode::Single(_) if fault.code == INVALID_PARAMETER_NAME => {
                self.missing.extend(self.current());
                self.advance();
            }
            _ => {
                self.error = Some(fault.to_string());
                self.waiting = false;
                self.done = true;
            }
        }
    }

    /// The session ends before the collector finished.
    pub fn abandon(&mut self, why: &str) {
        if !self.done {
            self.error = Some(why.to_owned());
            self.done = true;
        }
    }

    /// A collection that cannot even start (its outcome records why).
    pub fn unable(why: &str) -> Collector {
        let mut c = Collector::new(Vec::new(), false, false);
        c.error = Some(why.to_owned());
        c
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The effect that closes the collection.
    pub fn outcome(&self) -> Effect {
        let ok = self.error.is_none() && self.read > 0;
        let mut detail = match &self.error {
            Some(e) => format!("host table not read: {e}"),
            None if self.read == 0 => "the device has none of the collected paths".to_owned(),
            None => format!("read {} of {} paths", self.read, self.paths.len()),
        };
        if !self.missing.is_empty() {
            detail.push_str(&format!(
                "; not on this device: {}",
                self.missing.join(", ")
            ));
        }
        Effect::HostsCollected { ok, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::rpc::GetParameterValuesResponse;
    use crate::cwmp::{ParameterValue, ValueType};

    fn response(names: &[&str]) -> Body {
        GetParameterValuesResponse {
            parameters: names
                .iter()
                .map(|n| ParameterValue::new(*n, "x", ValueType::String))
                .collect(),
        }
        .into()
    }

    fn fault(code: u32) -> Fault {
        Fault {
            code,
            string: crate::cwmp::fault_code_name(code).into(),
            ..Fault::default()
        }
    }

    fn names(step: CollectStep) -> Vec<String> {
        match step {
            CollectStep::Send(Body::GetParameterValues(g)) => g.names,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn tree() -> DataModelTree {
        DataModelTree::from_names([
            ("Device.Hosts.Host.", false),
            ("Device.Hosts.Host.1.PhysAddress", false),
            ("Device.Hosts.Host.1.IPAddress", false),
            ("Device.WiFi.SSID.1.SSID", true),
            ("Device.WiFi.SSID.1.Stats.BytesSent", false),
            ("Device.DeviceInfo.ModelName", false),
        ])
    }

    #[test]
    fn explicit_names_after_learning_the_volatile_tables() {
        let t = tree();
        let mut c = Collector::new(
            vec![
                "Device.Hosts.Host.".into(),
                "Device.WiFi.SSID.".into(),
                "Device.DeviceInfo.ModelName".into(),
                "Device.DeviceInfo.Nope".into(),
            ],
            false,
            false,
        );
        assert_eq!(
            c.next(Some(&t)),
            CollectStep::Learn(vec!["Device.Hosts.Host.".into()]),
            "the volatile table alone"
        );
        let asked = names(c.next(Some(&t)));
        assert_eq!(
            asked,
            [
                "Device.Hosts.Host.1.IPAddress",
                "Device.Hosts.Host.1.PhysAddress",
                "Device.WiFi.SSID.1.SSID",
                "Device.DeviceInfo.ModelName",
            ]
        );
        assert_eq!(c.next(Some(&t)), CollectStep::Done, "one request at a time");
        let mut effects = Vec::new();
        c.on_response(response(&["Device.Hosts.Host.1.IPAddress"]), &mut effects);
        assert!(
            matches!(&effects[0], Effect::SubtreeValues { prefixes, .. } if prefixes == &["Device.Hosts.Host.".to_string(), "Device.WiFi.SSID.".to_string()])
        );
        assert!(c.is_done());
        assert!(matches!(
            c.outcome(),
            Effect::HostsCollected { ok: true, .. }
        ));
        // Discovered in this session: no learning first.
        let mut c = Collector::new(vec!["Device.Hosts.Host.".into()], false, true);
        assert_eq!(names(c.next(Some(&t))).len(), 2);
    }

    #[test]
    fn a_9005_after_learning_the_tables_learns_their_top_level_objects() {
        let t = tree();
        let mut c = Collector::new(
            vec!["Device.Hosts.Host.".into(), "Device.WiFi.SSID.".into()],
            false,
            false,
        );
        assert_eq!(
            c.next(Some(&t)),
            CollectStep::Learn(vec!["Device.Hosts.Host.".into()])
        );
        names(c.next(Some(&t)));
        // An SSID instance the tree still has is gone from the device.
        c.on_fault(&fault(9005));
        assert_eq!(
            c.next(Some(&t)),
            CollectStep::Learn(vec!["Device.Hosts.".into()])
        );
        names(c.next(Some(&t)));
        c.on_fault(&fault(9005));
        assert!(c.is_done());
    }

    #[test]
    fn a_9005_learns_again_once_then_gives_up() {
        let t = tree();
        let mut c = Collector::new(vec!["Device.Hosts.Host.".into()], false, true);
        names(c.next(Some(&t)));
        c.on_fault(&fault(9005));
        assert_eq!(
            c.next(Some(&t)),
            CollectStep::Learn(vec!["Device.Hosts.".into()])
        );
        names(c.next(Some(&t)));
        c.on_fault(&fault(9005));
        assert!(c.is_done());
        assert!(matches!(
            c.outcome(),
            Effect::HostsCollected { ok: false, .. }
        ));
    }

    #[test]
    fn partial_paths_fall_back_to_one_path_at_a_time_on_9005() {
        let paths = vec![
            "Device.Hosts.".to_string(),
            "Device.X_CT-COM_MACAddress".to_string(),
            "Device.WiFi.".to_string(),
        ];
        let mut c = Collector::new(paths, true, false);
        names(c.next(None));
        c.on_fault(&fault(9005));
        let mut effects = Vec::new();
        assert_eq!(names(c.next(None)), ["Device.Hosts."]);
        c.on_response(response(&["Device.Hosts.Host.1.IPAddress"]), &mut effects);
        assert_eq!(names(c.next(None)), ["Device.X_CT-COM_MACAddress"]);
        c.on_fault(&fault(9005));
        assert_eq!(names(c.next(None)), ["Device.WiFi."]);
        c.on_response(response(&["Device.WiFi.SSID.1.SSID"]), &mut effects);
        assert!(c.is_done());
        assert_eq!(effects.len(), 2);
        match c.outcome() {
            Effect::HostsCollected { ok, detail } => {
                assert!(ok);
                assert!(detail.contains("X_CT-COM_MACAddress"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_faults_and_abandon_end_it() {
        let mut c = Collector::new(vec!["Device.Hosts.".into()], true, false);
        names(c.next(None));
        c.on_fault(&fault(9002));
        assert!(c.is_done());
        assert!(
            matches!(c.outcome(), Effect::HostsCollected { ok: false, ref detail } if detail.contains("9002"))
        );
        let mut c = Collector::new(vec!["Device.Hosts.".into()], false, false);
        c.abandon("session over");
        assert!(matches!(
            c.outcome(),
            Effect::HostsCollected { ok: false, .. }
        ));
        assert!(Collector::new(vec![], false, false).is_done());
    }

    #[test]
    fn volatile_tables_each_once_none_under_another() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            volatile_tables(&p(&[
                "Device.Hosts.Host.",
                "Device.WiFi.AccessPoint.1.AssociatedDevice.",
                "Device.WiFi.AccessPoint.1.SSIDReference",
                "Device.WiFi.SSID.",
                "Device.WiFi.MultiAP.APDevice.1.Radio.1.AP.1.AssociatedDevice.",
                "Device.WiFi.MultiAP.APDevice.",
                "Device.WiFi.DataElements.Network.ControllerID",
                "Device.WiFi.DataElements.Network.Device.",
                "Device.WiFi.AccessPoint.3.AssociatedDevice.2.MACAddress",
                "Device.IP.Interface.",
                "Device.Hosts.HostNumberOfEntries",
            ])),
            [
                "Device.Hosts.Host.",
                "Device.WiFi.AccessPoint.1.AssociatedDevice.",
                "Device.WiFi.MultiAP.APDevice.",
                "Device.WiFi.DataElements.Network.Device.",
                "Device.WiFi.AccessPoint.3.AssociatedDevice.",
            ]
        );
        assert_eq!(
            volatile_tables(&p(&["InternetGatewayDevice.LANDevice.1.Hosts.Host."])),
            ["InternetGatewayDevice.LANDevice.1.Hosts.Host."]
        );
    }

    #[test]
    fn groups_of_volatile_tables() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            volatile_groups(&p(&[
                "Device.Hosts.Host.",
                "Device.WiFi.AccessPoint.1.AssociatedDevice.",
                "Device.WiFi.SSID.",
                "Device.WiFi.MultiAP.APDevice.",
                "Device.IP.Interface.",
            ])),
            ["Device.Hosts.", "Device.WiFi."]
        );
        assert_eq!(
            volatile_groups(&p(&[
                "InternetGatewayDevice.LANDevice.1.Hosts.Host.",
                "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.AssociatedDevice.",
            ])),
            ["InternetGatewayDevice.LANDevice."]
        );
    }
}

//! The host-table collector's part of a session: read the profile's
//! topology and diagnostics subtrees with GetParameterValues.
//!
//! One request for everything first. A CPE answers a request naming a path
//! it does not have with fault 9005 and no values at all (some Raisecom
//! revisions lack vendor paths other revisions have), so on 9005 the
//! collector falls back to one request per path and keeps what it gets.

use crate::cwmp::Body;
use crate::cwmp::Fault;
use crate::cwmp::rpc::GetParameterValues;

use super::Effect;

/// CWMP fault: invalid parameter name.
const INVALID_PARAMETER_NAME: u32 = 9005;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Everything in one request.
    Batch,
    /// One path at a time; the index of the next one.
    Single(usize),
}

/// Collection in progress.
#[derive(Debug)]
pub struct Collector {
    paths: Vec<String>,
    mode: Mode,
    /// A request is out and not yet answered.
    waiting: bool,
    read: usize,
    missing: Vec<String>,
    error: Option<String>,
    done: bool,
}

impl Collector {
    pub fn new(paths: Vec<String>) -> Collector {
        Collector {
            done: paths.is_empty(),
            paths,
            mode: Mode::Batch,
            waiting: false,
            read: 0,
            missing: Vec::new(),
            error: None,
        }
    }

    /// The next request, or `None` once finished.
    pub fn next_request(&mut self) -> Option<Body> {
        if self.done || self.waiting {
            return None;
        }
        let names = match self.mode {
            Mode::Batch => self.paths.clone(),
            Mode::Single(i) => vec![self.paths.get(i)?.clone()],
        };
        self.waiting = true;
        Some(GetParameterValues { names }.into())
    }

    fn current(&self) -> Vec<String> {
        match self.mode {
            Mode::Batch => self.paths.clone(),
            Mode::Single(i) => self.paths.get(i).cloned().into_iter().collect(),
        }
    }

    fn advance(&mut self) {
        self.waiting = false;
        match self.mode {
            Mode::Batch => self.done = true,
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
        let asked = self.current();
        match body {
            Body::GetParameterValuesResponse(r) => {
                self.read += asked.len();
                effects.push(Effect::SubtreeValues {
                    prefixes: asked.into_iter().filter(|p| p.ends_with('.')).collect(),
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

    /// The CPE's fault for the request in flight.
    pub fn on_fault(&mut self, fault: &Fault) {
        match self.mode {
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

    fn names(b: &Body) -> Vec<String> {
        match b {
            Body::GetParameterValues(g) => g.names.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn one_request_when_the_device_has_every_path() {
        let mut c = Collector::new(vec![
            "Device.Hosts.".into(),
            "Device.DeviceInfo.ModelName".into(),
        ]);
        let req = c.next_request().unwrap();
        assert_eq!(names(&req).len(), 2);
        assert_eq!(c.next_request(), None, "one request at a time");
        let mut effects = Vec::new();
        c.on_response(response(&["Device.Hosts.Host.1.IPAddress"]), &mut effects);
        assert!(
            matches!(&effects[0], Effect::SubtreeValues { prefixes, .. } if prefixes == &["Device.Hosts.".to_string()])
        );
        assert!(c.is_done());
        assert_eq!(c.next_request(), None);
        assert!(matches!(
            c.outcome(),
            Effect::HostsCollected { ok: true, .. }
        ));
    }

    #[test]
    fn falls_back_to_one_path_at_a_time_on_9005() {
        let paths = vec![
            "Device.Hosts.".to_string(),
            "Device.X_CT-COM_MACAddress".to_string(),
            "Device.WiFi.".to_string(),
        ];
        let mut c = Collector::new(paths);
        c.next_request().unwrap();
        c.on_fault(&fault(9005));
        let mut effects = Vec::new();
        let r = c.next_request().unwrap();
        assert_eq!(names(&r), ["Device.Hosts."]);
        c.on_response(response(&["Device.Hosts.Host.1.IPAddress"]), &mut effects);
        let r = c.next_request().unwrap();
        assert_eq!(names(&r), ["Device.X_CT-COM_MACAddress"]);
        c.on_fault(&fault(9005));
        let r = c.next_request().unwrap();
        assert_eq!(names(&r), ["Device.WiFi."]);
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
        let mut c = Collector::new(vec!["Device.Hosts.".into()]);
        c.next_request().unwrap();
        c.on_fault(&fault(9002));
        assert!(c.is_done());
        assert!(
            matches!(c.outcome(), Effect::HostsCollected { ok: false, ref detail } if detail.contains("9002"))
        );
        let mut c = Collector::new(vec!["Device.Hosts.".into()]);
        c.abandon("session over");
        assert!(matches!(
            c.outcome(),
            Effect::HostsCollected { ok: false, .. }
        ));
        assert!(Collector::new(vec![]).is_done());
    }
}

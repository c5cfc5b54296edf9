//! Secrets never leave through the API: passphrases, SIP and transfer
//! passwords are replaced before any record is serialised.

use crate::cwmp::rpc::{DuOperation, Password};
use crate::cwmp::{Body, ParameterValue, is_secret_parameter};

pub const MASK: &str = "********";

/// Masks a value if its parameter is a secret and it is not empty (an
/// empty value tells Ops "not set", which is safe and useful).
pub fn mask_value(name: &str, value: &str) -> String {
    if is_secret_parameter(name) && !value.is_empty() {
        MASK.to_owned()
    } else {
        value.to_owned()
    }
}

fn mask_params(params: &mut [ParameterValue]) {
    for p in params {
        p.value = mask_value(&p.name, &p.value);
    }
}

fn mask_password(p: &mut Password) {
    if !p.0.is_empty() {
        p.0 = MASK.to_owned();
    }
}

/// Masks every secret inside an RPC.
pub fn mask_body(body: &mut Body) {
    match body {
        Body::SetParameterValues(s) => mask_params(&mut s.parameters),
        Body::GetParameterValuesResponse(r) => mask_params(&mut r.parameters),
        Body::Inform(i) => mask_params(&mut i.parameters),
        Body::Download(d) => mask_password(&mut d.password),
        Body::Upload(u) => mask_password(&mut u.password),
        Body::ScheduleDownload(s) => mask_password(&mut s.password),
        Body::ChangeDUState(c) => {
            for op in &mut c.operations {
                match op {
                    DuOperation::Install { password, .. }
                    | DuOperation::Update { password, .. } => mask_password(password),
                    DuOperation::Uninstall { .. } => {}
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::ValueType;
    use crate::cwmp::rpc::SetParameterValues;

    #[test]
    fn passphrases_are_masked_ssids_are_not() {
        let mut b = Body::SetParameterValues(SetParameterValues {
            parameters: vec![
                ParameterValue::new("Device.WiFi.SSID.1.SSID", "Home", ValueType::String),
                ParameterValue::new(
                    "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
                    "hunter22",
                    ValueType::String,
                ),
            ],
            parameter_key: String::new(),
        });
        mask_body(&mut b);
        let json = serde_json::to_string(&b).unwrap();
        assert!(json.contains("Home") && !json.contains("hunter22") && json.contains(MASK));
    }
}

//! Checks on parameter paths and values before they are sent to a CPE.
//!
//! A CPE answers a malformed path with a fault at best; some firmwares
//! reboot or wedge their TR-069 client. Requests built from Ops input are
//! therefore checked here first, and the message says exactly what is wrong
//! (never quoting a secret value).

use super::value::{ValueType, is_secret_parameter, parse_bool};

/// What kind of path a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// A parameter: no trailing dot (`Device.WiFi.SSID.1.SSID`).
    Parameter,
    /// An object: trailing dot (`Device.Hosts.Host.`).
    Object,
    /// Either (GetParameterValues names, refresh).
    Any,
}

/// TR-069 `string(256)` for parameter names.
pub const MAX_PATH_LEN: usize = 256;

/// Data-model roots a path may start with (TR-181 and TR-098).
pub const ROOTS: [&str; 2] = ["Device.", "InternetGatewayDevice."];

/// Why a path is refused, in words.
pub fn check_path(path: &str, kind: PathKind) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.len() > MAX_PATH_LEN {
        return Err(format!(
            "the path is {} bytes, more than the {MAX_PATH_LEN} CWMP allows",
            path.len()
        ));
    }
    if !ROOTS.iter().any(|r| path.starts_with(r)) {
        return Err("the path must start with `Device.` or `InternetGatewayDevice.`".into());
    }
    let object = path.ends_with('.');
    match (kind, object) {
        (PathKind::Parameter, true) => {
            return Err("a parameter path must not end with `.` (that names an object)".into());
        }
        (PathKind::Object, false) => {
            return Err("an object path must end with `.`".into());
        }
        _ => {}
    }
    let body = path.strip_suffix('.').unwrap_or(path);
    for (i, segment) in body.split('.').enumerate() {
        if segment.is_empty() {
            return Err(format!("segment {} of the path is empty", i + 1));
        }
        if segment == "*" || segment.contains('*') {
            return Err("CWMP paths cannot contain `*`; name the instance".into());
        }
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let mut bytes = segment.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(format!(
                "segment {} of the path is not a TR-106 name (letters, digits, `_`, `-`)",
                i + 1
            ));
        }
    }
    Ok(())
}

/// Why a value does not fit its declared type or its parameter, in words
/// that never include a secret value.
pub fn check_value(path: &str, kind: &ValueType, value: &str) -> Result<(), String> {
    let shown = |v: &str| {
        if is_secret_parameter(path) {
            "(value not shown)".to_owned()
        } else {
            format!("`{}`", v.chars().take(40).collect::<String>())
        }
    };
    let fits = match kind {
        ValueType::Boolean => parse_bool(value).is_some(),
        ValueType::Int => value.trim().parse::<i32>().is_ok(),
        ValueType::UnsignedInt => value.trim().parse::<u32>().is_ok(),
        ValueType::Long => value.trim().parse::<i64>().is_ok(),
        ValueType::UnsignedLong => value.trim().parse::<u64>().is_ok(),
        ValueType::DateTime => super::time::parse_datetime(value).is_some(),
        ValueType::HexBinary => {
            value.len() % 2 == 0 && value.bytes().all(|b| b.is_ascii_hexdigit())
        }
        ValueType::Base64 => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .is_ok()
        }
        ValueType::String | ValueType::Other(_) => true,
    };
    if !fits {
        return Err(format!("{} is not a valid {}", shown(value), kind.as_str()));
    }
    let leaf = path.rsplit('.').next().unwrap_or(path);
    match leaf {
        "SSID" => ssid_problem(value),
        "KeyPassphrase" => passphrase_problem(value),
        "PreSharedKey" if !value.is_empty() => (value.len() == 64
            && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(())
        .ok_or_else(|| "a WPA pre-shared key must be 64 hexadecimal digits".to_owned()),
        _ => Ok(()),
    }
}

/// An SSID is 1 to 32 bytes (IEEE 802.11).
pub fn ssid_problem(ssid: &str) -> Result<(), String> {
    if ssid.is_empty() || ssid.len() > 32 {
        return Err(format!(
            "an SSID must be 1 to 32 bytes, this one is {} bytes",
            ssid.len()
        ));
    }
    Ok(())
}

/// A WPA passphrase is 8 to 63 printable ASCII characters (IEEE 802.11i).
pub fn passphrase_problem(passphrase: &str) -> Result<(), String> {
    let n = passphrase.chars().count();
    if !(8..=63).contains(&n) {
        return Err(format!(
            "a WPA passphrase must be 8 to 63 characters, this one has {n}"
        ));
    }
    if !passphrase.chars().all(|c| (' '..='~').contains(&c)) {
        return Err("a WPA passphrase must be printable ASCII".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(check_path("Device.WiFi.SSID.1.SSID", PathKind::Parameter).is_ok());
        assert!(check_path("Device.Hosts.Host.", PathKind::Object).is_ok());
        assert!(check_path("InternetGatewayDevice.X_TP-LINK_Foo.1.", PathKind::Any).is_ok());
        for (p, k, why) in [
            ("", PathKind::Any, "empty"),
            ("Foo.Bar", PathKind::Any, "must start"),
            ("Device.Hosts..Host", PathKind::Any, "segment 3"),
            ("Device.Hosts.Host.*.IPAddress", PathKind::Any, "`*`"),
            ("Device.Hosts.Host.", PathKind::Parameter, "must not end"),
            ("Device.Hosts.Host", PathKind::Object, "must end"),
            ("Device.Ho sts.", PathKind::Any, "segment 2"),
            ("Device.1abc.", PathKind::Any, "segment 2"),
        ] {
            let e = check_path(p, k).unwrap_err();
            assert!(e.contains(why), "{p}: {e}");
        }
        let long = format!("Device.{}", "A".repeat(300));
        assert!(
            check_path(&long, PathKind::Any)
                .unwrap_err()
                .contains("256")
        );
    }

    #[test]
    fn values() {
        let ok = |p: &str, k: ValueType, v: &str| check_value(p, &k, v).is_ok();
        assert!(ok("Device.X.Enable", ValueType::Boolean, "true"));
        assert!(ok("Device.X.Enable", ValueType::Boolean, "0"));
        assert!(!ok("Device.X.Enable", ValueType::Boolean, "yes please"));
        assert!(ok("Device.X.N", ValueType::UnsignedInt, "300"));
        assert!(!ok("Device.X.N", ValueType::UnsignedInt, "-1"));
        assert!(!ok("Device.X.N", ValueType::Int, "3000000000"));
        assert!(ok(
            "Device.X.T",
            ValueType::DateTime,
            "2026-01-01T00:00:00Z"
        ));
        assert!(!ok("Device.X.H", ValueType::HexBinary, "abc"));
        let ssid = "Device.WiFi.SSID.1.SSID";
        assert!(ok(ssid, ValueType::String, "Maison"));
        let e = check_value(ssid, &ValueType::String, &"x".repeat(33)).unwrap_err();
        assert!(e.contains("33 bytes"), "{e}");
        let pp = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase";
        let e = check_value(pp, &ValueType::String, "short").unwrap_err();
        assert!(e.contains("8 to 63") && !e.contains("short"), "{e}");
        // A mistyped secret is reported without its value.
        let e = check_value(
            "Device.Services.VoiceService.1.SIP.Client.1.AuthPassword",
            &ValueType::UnsignedInt,
            "hunter2",
        )
        .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    proptest::proptest! {
        /// Any text is judged without panicking, and what passes is a
        /// well-formed path.
        #[test]
        fn any_text_is_judged(path in "(Device\\.|InternetGatewayDevice\\.)?[A-Za-z0-9_.* -]{0,80}", value in ".{0,80}") {
            if check_path(&path, PathKind::Any).is_ok() {
                proptest::prop_assert!(!path.contains(".."));
                proptest::prop_assert!(path.len() <= MAX_PATH_LEN);
            }
            for kind in [ValueType::Boolean, ValueType::Int, ValueType::DateTime, ValueType::HexBinary, ValueType::Base64] {
                let _ = check_value(&path, &kind, &value);
            }
        }
    }
}

//! Which band a radio, SSID, access point or WLAN interface is on.
//!
//! Order of evidence for a TR-181/TR-098 object:
//! 1. its own `OperatingFrequencyBand` (TR-181 `WiFi.Radio`, MultiAP radio);
//! 2. the reference chain: `AccessPoint.{i}.SSIDReference` →
//!    `SSID.{j}.LowerLayers` → `Radio.{k}.OperatingFrequencyBand`;
//! 3. the device profile's `[[wifi]]` entries: an object whose SSID,
//!    passphrase or enable path the profile lists for a band is on that
//!    band (TP-Link: AccessPoint/SSID 1 = 2.4 GHz, 3 = 5 GHz; Raisecom:
//!    WLANConfiguration 1 = 2.4 GHz, 5 = 5 GHz);
//! 4. TR-098 `WLANConfiguration.{i}.Channel` (1–14 → 2.4 GHz, 32–196 → 5 GHz);
//!
//! else unknown.

use std::collections::HashMap;

use crate::provision::profile::Profile;

use super::Connection;
use super::Params;
use super::params::{as_object, field};

pub(crate) use crate::provision::band::{Band, band_of_channel, band_of_op_class, parse_band};

/// How a client on this band is connected.
pub(crate) fn connection(band: Option<Band>) -> Connection {
    match band {
        Some(Band::G24) => Connection::Wifi24,
        Some(Band::G5) => Connection::Wifi5,
        Some(Band::G6) => Connection::Wifi6,
        None => Connection::Wifi,
    }
}

/// Band lookups over one device's parameters, memoised per object.
pub(crate) struct Bands<'a> {
    p: &'a Params,
    profile: &'a Profile,
    cache: HashMap<String, Option<Band>>,
}

impl<'a> Bands<'a> {
    pub(crate) fn new(p: &'a Params, profile: &'a Profile) -> Bands<'a> {
        Bands {
            p,
            profile,
            cache: HashMap::new(),
        }
    }

    /// The band of the radio/SSID/AP/WLAN object at `path` (with or without
    /// its trailing dot).
    pub(crate) fn of_object(&mut self, path: &str) -> Option<Band> {
        let obj = as_object(path);
        if let Some(b) = self.cache.get(&obj) {
            return *b;
        }
        let b = self.resolve(&obj, 0);
        self.cache.insert(obj, b);
        b
    }

    fn resolve(&self, obj: &str, depth: u8) -> Option<Band> {
        if depth > 4 || obj == "." {
            return None;
        }
        if let Some(b) = field(self.p, obj, "OperatingFrequencyBand").and_then(parse_band) {
            return Some(b);
        }
        for link in ["SSIDReference", "LowerLayers"] {
            let Some(refs) = field(self.p, obj, link) else {
                continue;
            };
            for r in refs.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                let next = as_object(r);
                if next != obj {
                    if let Some(b) = self.resolve(&next, depth + 1) {
                        return Some(b);
                    }
                }
            }
        }
        if let Some(b) = self.profile_band(obj) {
            return Some(b);
        }
        if obj.contains(".WLANConfiguration.") {
            return field(self.p, obj, "Channel").and_then(band_of_channel);
        }
        None
    }

    fn profile_band(&self, obj: &str) -> Option<Band> {
        self.profile.wifi.iter().find_map(|w| {
            let listed = [
                Some(&w.ssid),
                w.passphrase.as_ref(),
                w.psk.as_ref(),
                w.enable.as_ref(),
            ]
            .into_iter()
            .flatten()
            .any(|path| path.starts_with(obj));
            if listed { parse_band(&w.band) } else { None }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::profile::Profiles;

    fn params(kv: &[(&str, &str)]) -> Params {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn band_texts() {
        assert_eq!(parse_band("2.4GHz"), Some(Band::G24));
        assert_eq!(parse_band(" 2.4 GHz"), Some(Band::G24));
        assert_eq!(parse_band("5GHz"), Some(Band::G5));
        assert_eq!(parse_band("6GHz"), Some(Band::G6));
        assert_eq!(parse_band("5"), Some(Band::G5));
        assert_eq!(parse_band(""), None);
        assert_eq!(parse_band("NULL"), None);
        assert_eq!(band_of_op_class("81"), Some(Band::G24));
        assert_eq!(band_of_op_class("128"), Some(Band::G5));
        assert_eq!(band_of_op_class("131"), Some(Band::G6));
        assert_eq!(band_of_op_class("x"), None);
    }

    #[test]
    fn chain_then_profile_then_unknown() {
        let profiles = Profiles::load(None).unwrap();
        let tp = profiles.get("tplink-tplg-ont").unwrap();
        // Chain present: AP 1 points at SSID 3 on the 5 GHz radio, against
        // the profile's convention (AP 1 = 2.4 GHz): the chain wins.
        let p = params(&[
            (
                "Device.WiFi.AccessPoint.1.SSIDReference",
                "Device.WiFi.SSID.3.",
            ),
            ("Device.WiFi.SSID.3.LowerLayers", "Device.WiFi.Radio.2."),
            ("Device.WiFi.Radio.2.OperatingFrequencyBand", "5GHz"),
            // A loop must not hang.
            ("Device.WiFi.SSID.7.LowerLayers", "Device.WiFi.SSID.7."),
        ]);
        let mut b = Bands::new(&p, tp);
        assert_eq!(b.of_object("Device.WiFi.AccessPoint.1."), Some(Band::G5));
        // No chain: the profile's convention.
        assert_eq!(b.of_object("Device.WiFi.AccessPoint.3"), Some(Band::G5));
        assert_eq!(b.of_object("Device.WiFi.SSID.1."), Some(Band::G24));
        // Neither: unknown.
        assert_eq!(b.of_object("Device.WiFi.AccessPoint.2."), None);
        assert_eq!(b.of_object("Device.WiFi.SSID.7."), None);

        let rc = profiles.get("raisecom-rcmg-ont").unwrap();
        let p = params(&[(
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.3.Channel",
            "149",
        )]);
        let mut b = Bands::new(&p, rc);
        let w = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.";
        assert_eq!(b.of_object(&format!("{w}1")), Some(Band::G24));
        assert_eq!(b.of_object(&format!("{w}5")), Some(Band::G5));
        assert_eq!(b.of_object(&format!("{w}3")), Some(Band::G5));
        assert_eq!(b.of_object(&format!("{w}2")), None);
    }
}

//! Home-network topology and ONT diagnostics from a device's cached
//! parameter values. Pure: no I/O, no clock, no async; every function takes
//! the values (`path → value`, leaf paths only) and the device's
//! [`Profile`](crate::provision::profile::Profile), and never panics on junk (missing fields, text where
//! numbers belong, reserved RCPI values, empty MACs, thousands of hosts).
//!
//! - [`build`]: the mesh ([`Topology`]): the controller and its satellites
//!   ([`MeshNode`]) from EasyMesh tables (legacy `WiFi.MultiAP` with TP-Link
//!   additions, and/or `WiFi.DataElements`), each with its Wi-Fi and wired
//!   [`Client`]s, the hosts that could not be placed, and [`Totals`]. A
//!   device without mesh tables is one controller node holding every host.
//! - [`diagnostics`]: optical power of a GPON ONT and its WAN addresses
//!   ([`OntDiagnostics`]).
//! - [`collect_paths`]: what the collector must read (GetParameterValues)
//!   for both.
//! - [`signal_quality`], [`rcpi_to_dbm`], [`optical_dbm`]: the unit
//!   conversions, documented where defined.
//!
//! # JSON (what the Ops app receives)
//!
//! ```json
//! {
//!   "nodes": [{
//!     "mac": "1c:61:b4:00:00:01", "role": "controller", "model": "EX220",
//!     "hostname": "EX220_9E1E", "ip": "192.168.0.1", "active": true,
//!     "backhaul": null,
//!     "clients": [{
//!       "mac": "5c:f9:38:99:45:38", "ip": "192.168.0.2", "hostname": "cassios-mac",
//!       "connection": "wifi_2.4ghz", "signal_dbm": -34.0, "signal_quality": 100,
//!       "active": true, "node_mac": "1c:61:b4:00:00:01"
//!     }]
//!   }, {
//!     "mac": "...", "role": "satellite", ...,
//!     "backhaul": {"link": "wifi", "signal_dbm": -54.0, "signal_quality": 72},
//!     "clients": [...]
//!   }],
//!   "unplaced": [ /* clients, node_mac null */ ],
//!   "totals": {"wifi_direct": 2, "wifi_via_mesh": 0, "wired": 1, "all": 3}
//! }
//! ```
//!
//! Every field is always present (`null` when unknown). MACs are lower-case
//! `aa:bb:cc:dd:ee:ff`; a node's `mac` is `""` only for the single node of
//! a device whose own MAC is not among the values. `connection` is one of
//! `"wifi_2.4ghz"`, `"wifi_5ghz"`, `"wifi_6ghz"` (the band, not the Wi-Fi
//! generation), `"wifi"` (band unknown), `"ethernet"`, `"unknown"`.
//! `signal_dbm`/`signal_quality` are `null` for wired clients and when no
//! usable reading exists. Totals count every listed client, active or not.

mod band;
mod collect;
mod mesh;
mod ont;
mod params;
mod signal;

#[cfg(test)]
mod export_tests;

/// The fixed-path generic profiles of earlier versions (test fixtures).
#[cfg(test)]
pub(crate) fn test_generic(name: &str) -> crate::provision::profile::Profile {
    let text = match name {
        "generic-tr181" => include_str!("testdata/generic-tr181.toml"),
        "generic-tr098" => include_str!("testdata/generic-tr098.toml"),
        other => panic!("no test profile {other}"),
    };
    crate::provision::profile::Profiles::parse(name, text).expect("test profile")
}
#[cfg(test)]
mod prop_tests;

use std::collections::BTreeMap;

use serde::Serialize;

pub use collect::collect_paths;
pub use mesh::build;
pub use ont::{diagnostics, optical_dbm, plausible_dbm};
pub use signal::{rcpi_to_dbm, signal_quality};

/// Input: cached parameter values of one device, path → value (leaf paths
/// only, e.g. `Device.Hosts.Host.3.PhysAddress`).
pub type Params = BTreeMap<String, String>;

/// A home network as the mesh controller reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Topology {
    /// The controller first, then the satellites in table order.
    pub nodes: Vec<MeshNode>,
    /// Hosts that could not be placed under a node (Wi-Fi or unknown
    /// hosts of a mesh that no node lists as associated).
    pub unplaced: Vec<Client>,
    pub totals: Totals,
}

/// Role of a mesh node. JSON: `"controller"` / `"satellite"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    Controller,
    Satellite,
}

/// One mesh access point (the gateway/controller, or a satellite).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeshNode {
    /// `aa:bb:cc:dd:ee:ff`, lower case (`""` when unknown, see module docs).
    pub mac: String,
    pub role: NodeRole,
    pub model: Option<String>,
    pub hostname: Option<String>,
    /// LAN address of the node.
    pub ip: Option<String>,
    /// Whether the controller currently sees the node.
    pub active: Option<bool>,
    /// The node's uplink; `null` for the controller and when not reported.
    pub backhaul: Option<Backhaul>,
    pub clients: Vec<Client>,
}

/// A satellite's uplink to the rest of the mesh.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Backhaul {
    /// `"wifi"`, `"ethernet"`, or what the device reported, lower case
    /// (e.g. `"moca"`).
    pub link: String,
    /// Wi-Fi backhaul signal in dBm (`null` on wired links or when absent).
    pub signal_dbm: Option<f64>,
    /// [`signal_quality`] of `signal_dbm`.
    pub signal_quality: Option<u8>,
}

/// How a client is connected. JSON names are the band, not the Wi-Fi
/// generation: `"wifi_2.4ghz"`, `"wifi_5ghz"`, `"wifi_6ghz"`, `"wifi"`
/// (Wi-Fi, band unknown), `"ethernet"`, `"unknown"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Connection {
    #[serde(rename = "wifi_2.4ghz")]
    Wifi24,
    #[serde(rename = "wifi_5ghz")]
    Wifi5,
    #[serde(rename = "wifi_6ghz")]
    Wifi6,
    #[serde(rename = "wifi")]
    Wifi,
    #[serde(rename = "ethernet")]
    Ethernet,
    #[serde(rename = "unknown")]
    Unknown,
}

impl Connection {
    /// Any Wi-Fi, band known or not.
    pub fn is_wifi(self) -> bool {
        matches!(
            self,
            Connection::Wifi24 | Connection::Wifi5 | Connection::Wifi6 | Connection::Wifi
        )
    }
}

/// A station of the home network (phone, laptop, TV...).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Client {
    /// `aa:bb:cc:dd:ee:ff`, lower case.
    pub mac: String,
    pub ip: Option<String>,
    pub hostname: Option<String>,
    pub connection: Connection,
    /// Received signal in dBm (Wi-Fi only).
    pub signal_dbm: Option<f64>,
    /// [`signal_quality`] of `signal_dbm`, 0–100.
    pub signal_quality: Option<u8>,
    pub active: Option<bool>,
    /// MAC of the node the client is attached to; `null` when unplaced.
    pub node_mac: Option<String>,
}

/// Client counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Wi-Fi clients on the controller's own radios.
    pub wifi_direct: usize,
    /// Wi-Fi clients on satellites.
    pub wifi_via_mesh: usize,
    /// Wired clients of any node.
    pub wired: usize,
    /// Distinct clients, unplaced ones included.
    pub all: usize,
}

/// What an ONT says about its fibre link and its WAN side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OntDiagnostics {
    /// `null` when the profile has no optical paths or the device reported
    /// neither value.
    pub optical: Option<Optical>,
    /// Public or carrier-side IPv4 addresses (private/CGNAT WAN addresses
    /// included: an ISP's WAN may be 10.x or 100.64.x), first-found order,
    /// each address once.
    pub wan_ipv4: Vec<WanAddress>,
    /// Global-unicast IPv6 addresses (2000::/3) of the IP interfaces.
    pub wan_ipv6: Vec<WanAddress>,
}

/// Optical power of the PON transceiver.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Optical {
    /// Received power, dBm, 2 decimals.
    pub rx_dbm: Option<f64>,
    /// Transmitted power, dBm, 2 decimals.
    pub tx_dbm: Option<f64>,
    /// The values as the device reported them.
    pub rx_raw: Option<String>,
    pub tx_raw: Option<String>,
    /// The raw values' unit as the profile writes it: `"0.1uW"`,
    /// `"0.001dBm"`, `"0.1dBm"` or `"dBm"`.
    pub unit: String,
    /// Link status next to the power readings (e.g.
    /// `Optical.Interface.1.Status` "Up"), when reported.
    pub status: Option<String>,
}

/// One WAN address and where it was found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WanAddress {
    pub address: String,
    /// The parameter that holds it.
    pub path: String,
    /// The interface/connection name (`IP.Interface.{i}.Name`/`Alias`,
    /// TR-098 `WANIPConnection.{i}.Name`...), when reported.
    pub interface: Option<String>,
}

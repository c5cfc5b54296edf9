//! The mesh builder.
//!
//! 1. Nodes: one per `MultiAP.APDevice.{i}` (keyed by `MACAddress`, else
//!    TP-Link `X_TP_AlMac`) and per `DataElements.Network.Device.{i}`
//!    (`ID`, the AL MAC; merged with the MultiAP node of the same MAC or AL
//!    MAC). The controller is the node with `X_TP_IsController` true, else
//!    the one whose MAC is `DataElements.Network.ControllerID`, else the one
//!    with the device's own MAC (profile `identity.mac`), else the first.
//!    It comes first; satellites follow in table order. No mesh tables: one
//!    controller node with the device's own MAC (`""` if unknown) and
//!    `DeviceInfo.ModelName`.
//! 2. Clients of a node: its MultiAP client-facing APs' `AssociatedDevice`
//!    entries (APs whose `X_TP_Type` says backhaul are skipped; without a
//!    type every AP counts), its TP-Link wired clients
//!    (`X_TP_Ethernet.AssociatedDevice`), and its DataElements
//!    `Radio.{r}.BSS.{b}.STA.{s}` entries. Band from the radio:
//!    `OperatingFrequencyBand`/`X_TP_Band`, DataElements operating class,
//!    else on TP-Link nodes Radio 1 = 2.4 GHz, Radio 2 = 5 GHz, else unknown.
//! 3. The profile's `associated_devices` tables (the controller's own TR-181
//!    `AccessPoint.{i}.AssociatedDevice`, signal in dBm): clients of the
//!    controller unless a node's own table places them elsewhere. Band from
//!    the AP (see the `band` module: reference chain, then profile).
//! 4. The host table (`Hosts.Host`, TR-098 `LANDevice.{i}.Hosts.Host`),
//!    joined on MAC (case and separators ignored): its IP address and host
//!    name win over the association tables'; its `Active` only fills a gap.
//!    A host no table lists is attached to the controller when wired
//!    (`InterfaceType` Ethernet, an Ethernet `Layer1Interface`/
//!    `Layer2Interface`, TP-Link `X_TP_LanConnType` 0), or when the device
//!    has no mesh at all; otherwise it is `unplaced`.
//!
//! Signal of a client seen in several tables: readings at the node it is
//! placed under beat others, and dBm readings (vendor RSSI
//! `X_TP_StaSignalStrength`/`X_HW_RSSI`/`X_ZTE-COM_RSSI`, TR-181
//! `AccessPoint` tables) beat RCPI. MultiAP and DataElements signals are RCPI
//! unless the profile says otherwise (`multiap_signal_unit`); RCPI 0 and
//! 221–255 and dBm ≥ 0 read as no signal.
//!
//! The mesh's own equipment is never a client: entries whose MAC is a
//! node's MAC/AL MAC, a backhaul MAC, or whose IP is a node's IP are
//! dropped. Host names "Unknown" (TP-Link's placeholder) read as absent.

use std::collections::{HashMap, HashSet};

use crate::provision::profile::{Profile, SignalUnit};

use super::band::{Band, Bands, band_of_op_class, connection, parse_band};
use super::params::{
    Row, as_object, expand, field, first_field, instances, keys_under, norm_mac, parent,
    parse_bool, text, usable_ip,
};
use super::signal::{dbm_reading, reading};
use super::{
    Backhaul, Client, Connection, MeshNode, NodeRole, Params, Topology, Totals, signal_quality,
};

/// Vendor per-station RSSI parameters, in dBm.
const VENDOR_RSSI: &[&str] = &["X_TP_StaSignalStrength", "X_HW_RSSI", "X_ZTE-COM_RSSI"];
const MAC_FIELDS: &[&str] = &["MACAddress", "AssociatedDeviceMACAddress", "PhysAddress"];
const IP_FIELDS: &[&str] = &[
    "IPAddress",
    "X_TP_IPAddress",
    "IPV4Address",
    "AssociatedDeviceIPAddress",
];
const NAME_FIELDS: &[&str] = &["HostName", "X_TP_HostName", "Hostname"];

/// A node's own association or wired table: the strongest placement.
const RANK_NODE: u8 = 0;
/// The controller's TR-181 AccessPoint tables.
const RANK_ACCESS_POINT: u8 = 1;

#[derive(Default)]
struct NodeInfo {
    mac: String,
    al_mac: Option<String>,
    controller_flag: Option<bool>,
    model: Option<String>,
    hostname: Option<String>,
    ip: Option<String>,
    active: Option<bool>,
    backhaul: Option<Backhaul>,
    /// `MultiAP.APDevice.{i}.` objects of this node.
    multiap: Vec<String>,
    /// `DataElements.Network.Device.{i}.` objects of this node.
    data_elements: Vec<String>,
    /// TP-Link firmware (vendor parameters present): radio 1 = 2.4 GHz,
    /// radio 2 = 5 GHz when a radio does not say.
    tplink: bool,
}

/// One sighting of a client in a table.
struct Sighting {
    node: usize,
    rank: u8,
    connection: Connection,
    /// dBm, and whether the device measured it in dBm.
    signal: Option<(f64, bool)>,
    ip: Option<String>,
    hostname: Option<String>,
    active: Option<bool>,
}

struct HostInfo {
    ip: Option<String>,
    hostname: Option<String>,
    active: Option<bool>,
    connection: Connection,
}

struct Seen {
    mac: String,
    sightings: Vec<Sighting>,
    host: Option<HostInfo>,
}

struct Builder<'a> {
    p: &'a Params,
    profile: &'a Profile,
    bands: Bands<'a>,
    nodes: Vec<NodeInfo>,
    node_by_mac: HashMap<String, usize>,
    mesh: bool,
    infra_macs: HashSet<String>,
    infra_ips: HashSet<String>,
    clients: Vec<Seen>,
    client_by_mac: HashMap<String, usize>,
}

/// Builds the topology of one device from its cached values. Rules: module
/// docs of [`crate::topology`] and of this file.
pub fn build(params: &Params, profile: &Profile) -> Topology {
    let mut b = Builder {
        p: params,
        profile,
        bands: Bands::new(params, profile),
        nodes: Vec::new(),
        node_by_mac: HashMap::new(),
        mesh: false,
        infra_macs: HashSet::new(),
        infra_ips: HashSet::new(),
        clients: Vec::new(),
        client_by_mac: HashMap::new(),
    };
    b.discover_nodes();
    b.node_clients();
    b.access_point_clients();
    b.hosts();
    b.finish()
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

fn hostname_value(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && !s.eq_ignore_ascii_case("unknown")).then(|| s.to_owned())
}

/// `BackhaulLinkType` as `"wifi"`, `"ethernet"` or the reported text, lower
/// case; `None` when blank or a placeholder.
fn link_kind(s: &str) -> Option<String> {
    let l = s.trim().to_ascii_lowercase();
    if matches!(l.as_str(), "" | "none" | "null" | "n/a" | "unknown") {
        return None;
    }
    let compact: String = l
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    if compact.contains("wifi")
        || compact.contains("wireless")
        || compact.contains("wlan")
        || compact.starts_with("802.11")
    {
        Some("wifi".into())
    } else if compact.contains("ethernet") || compact == "eth" || compact == "wired" {
        Some("ethernet".into())
    } else {
        Some(l)
    }
}

fn backhaul(link: String, signal_dbm: Option<f64>) -> Backhaul {
    let signal_dbm = if link == "ethernet" { None } else { signal_dbm };
    Backhaul {
        link,
        signal_dbm,
        signal_quality: signal_dbm.map(signal_quality),
    }
}

/// Last instance number of an object path (`...Radio.2.` → `2`).
fn instance_number(obj: &str) -> &str {
    obj.trim_end_matches('.').rsplit('.').next().unwrap_or("")
}

fn tplink_radio_band(radio: &str) -> Option<Band> {
    match instance_number(radio) {
        "1" => Some(Band::G24),
        "2" => Some(Band::G5),
        _ => None,
    }
}

fn mesh_radio_band(p: &Params, radio: &str, tplink: bool) -> Option<Band> {
    if let Some(b) =
        first_field(p, radio, &["OperatingFrequencyBand", "X_TP_Band"]).and_then(parse_band)
    {
        return Some(b);
    }
    let classes = format!("{radio}CurrentOperatingClassProfile.");
    if let Some(b) = instances(p, &classes)
        .iter()
        .find_map(|c| field(p, c, "Class").and_then(band_of_op_class))
    {
        return Some(b);
    }
    if tplink {
        tplink_radio_band(radio)
    } else {
        None
    }
}

impl Builder<'_> {
    fn signal_unit_mesh(&self) -> SignalUnit {
        self.profile
            .topology
            .multiap_signal_unit
            .unwrap_or(SignalUnit::Rcpi)
    }

    fn node_index(&mut self, mac: &str, al_mac: Option<&str>) -> usize {
        let found = self
            .node_by_mac
            .get(mac)
            .or_else(|| al_mac.and_then(|a| self.node_by_mac.get(a)))
            .copied();
        let idx = match found {
            Some(i) => i,
            None => {
                self.nodes.push(NodeInfo {
                    mac: mac.to_owned(),
                    ..NodeInfo::default()
                });
                self.nodes.len() - 1
            }
        };
        self.node_by_mac.entry(mac.to_owned()).or_insert(idx);
        if let Some(a) = al_mac {
            self.node_by_mac.entry(a.to_owned()).or_insert(idx);
        }
        idx
    }

    fn discover_nodes(&mut self) {
        let p = self.p;
        let profile = self.profile;
        let t = &profile.topology;
        if let Some(table) = &t.multiap_devices {
            for table in expand(p, &as_object(table)) {
                for dev in instances(p, &table) {
                    self.multiap_node(&dev);
                }
            }
        }
        let mut controller_id = None;
        if let Some(table) = &t.dataelements_devices {
            for table in expand(p, &as_object(table)) {
                if controller_id.is_none() {
                    controller_id = parent(&table)
                        .and_then(|net| field(p, net, "ControllerID"))
                        .and_then(norm_mac);
                }
                for dev in instances(p, &table) {
                    self.data_elements_node(&dev);
                }
            }
        }
        let own_mac = profile
            .identity
            .mac
            .iter()
            .find_map(|path| text(p, path).and_then(norm_mac));
        self.mesh = !self.nodes.is_empty();
        if self.mesh {
            let matches = |n: &NodeInfo, m: &str| n.mac == m || n.al_mac.as_deref() == Some(m);
            let controller = self
                .nodes
                .iter()
                .position(|n| n.controller_flag == Some(true))
                .or_else(|| {
                    let id = controller_id.as_deref()?;
                    self.nodes.iter().position(|n| matches(n, id))
                })
                .or_else(|| {
                    let own = own_mac.as_deref()?;
                    self.nodes.iter().position(|n| matches(n, own))
                })
                .unwrap_or(0);
            if controller > 0 && controller < self.nodes.len() {
                let c = self.nodes.remove(controller);
                self.nodes.insert(0, c);
            }
        } else {
            self.nodes.push(NodeInfo {
                mac: own_mac.unwrap_or_default(),
                model: owned(text(p, &format!("{}DeviceInfo.ModelName", profile.root))),
                ..NodeInfo::default()
            });
        }
        for n in &self.nodes {
            if !n.mac.is_empty() {
                self.infra_macs.insert(n.mac.clone());
            }
            if let Some(a) = &n.al_mac {
                self.infra_macs.insert(a.clone());
            }
            if let Some(ip) = &n.ip {
                self.infra_ips.insert(ip.clone());
            }
        }
    }

    fn multiap_node(&mut self, dev: &str) {
        let p = self.p;
        let al_mac = field(p, dev, "X_TP_AlMac").and_then(norm_mac);
        let Some(mac) = field(p, dev, "MACAddress")
            .and_then(norm_mac)
            .or_else(|| al_mac.clone())
        else {
            return;
        };
        if let Some(m) = field(p, dev, "BackhaulMACAddress").and_then(norm_mac) {
            self.infra_macs.insert(m);
        }
        let unit = self.signal_unit_mesh();
        let idx = self.node_index(&mac, al_mac.as_deref());
        let n = &mut self.nodes[idx];
        n.multiap.push(dev.to_owned());
        if n.al_mac.is_none() {
            n.al_mac = al_mac;
        }
        n.controller_flag = n
            .controller_flag
            .or_else(|| field(p, dev, "X_TP_IsController").and_then(parse_bool));
        n.model = n.model.take().or_else(|| {
            owned(first_field(
                p,
                dev,
                &["X_TP_ModelName", "ModelName", "ProductClass"],
            ))
        });
        n.hostname = n
            .hostname
            .take()
            .or_else(|| field(p, dev, "X_TP_HostName").and_then(hostname_value));
        n.ip =
            n.ip.take()
                .or_else(|| field(p, dev, "X_TP_IPAddress").and_then(usable_ip));
        n.active = n
            .active
            .or_else(|| first_field(p, dev, &["X_TP_Active", "Active"]).and_then(parse_bool));
        n.tplink |= ["X_TP_IsController", "X_TP_AlMac", "X_TP_ModelName"]
            .iter()
            .any(|f| p.contains_key(&format!("{dev}{f}")))
            || field(p, dev, "Manufacturer")
                .is_some_and(|m| m.to_ascii_lowercase().replace('-', "").contains("tplink"));
        if n.backhaul.is_none() {
            if let Some(link) = field(p, dev, "BackhaulLinkType").and_then(link_kind) {
                let signal = field(p, dev, "BackhaulSignalStrength")
                    .and_then(|r| reading(r, unit))
                    .map(|(v, _)| v);
                n.backhaul = Some(backhaul(link, signal));
            }
        }
    }

    fn data_elements_node(&mut self, dev: &str) {
        let p = self.p;
        let Some(id) = field(p, dev, "ID").and_then(norm_mac) else {
            return;
        };
        let unit = self.signal_unit_mesh();
        let idx = self.node_index(&id, None);
        let radios = instances(p, &format!("{dev}Radio."));
        let mut backhaul_sta = None;
        for radio in &radios {
            let sta = format!("{radio}BackhaulSta.");
            if let Some(m) = field(p, &sta, "MACAddress").and_then(norm_mac) {
                self.infra_macs.insert(m);
                if backhaul_sta.is_none() {
                    let signal = first_field(p, &sta, &["SignalStrength", "X_TP_SignalStrength"])
                        .and_then(|r| reading(r, unit))
                        .map(|(v, _)| v);
                    backhaul_sta = Some(signal);
                }
            }
        }
        let n = &mut self.nodes[idx];
        n.data_elements.push(dev.to_owned());
        n.model = n
            .model
            .take()
            .or_else(|| owned(field(p, dev, "ManufacturerModel")));
        n.tplink |= keys_under(p, dev).any(|k| k.contains(".X_TP_"));
        if let Some(signal) = backhaul_sta {
            match &mut n.backhaul {
                None => n.backhaul = Some(backhaul("wifi".into(), signal)),
                Some(b) if b.link == "wifi" && b.signal_dbm.is_none() => {
                    *b = backhaul("wifi".into(), signal);
                }
                Some(_) => {}
            }
        }
    }

    fn node_clients(&mut self) {
        let p = self.p;
        let unit = self.signal_unit_mesh();
        for idx in 0..self.nodes.len() {
            let tplink = self.nodes[idx].tplink;
            let multiap = self.nodes[idx].multiap.clone();
            for dev in &multiap {
                for radio in instances(p, &format!("{dev}Radio.")) {
                    let connection = connection(mesh_radio_band(p, &radio, tplink));
                    for ap in instances(p, &format!("{radio}AP.")) {
                        let backhaul_ap = field(p, &ap, "X_TP_Type")
                            .is_some_and(|t| t.to_ascii_lowercase().contains("backhaul"));
                        if backhaul_ap {
                            continue;
                        }
                        for entry in instances(p, &format!("{ap}AssociatedDevice.")) {
                            self.sight(&entry, idx, RANK_NODE, connection, Some(unit));
                        }
                    }
                }
                for entry in instances(p, &format!("{dev}X_TP_Ethernet.AssociatedDevice.")) {
                    self.sight(&entry, idx, RANK_NODE, Connection::Ethernet, None);
                }
            }
            let data_elements = self.nodes[idx].data_elements.clone();
            for dev in &data_elements {
                for radio in instances(p, &format!("{dev}Radio.")) {
                    let connection = connection(mesh_radio_band(p, &radio, tplink));
                    for bss in instances(p, &format!("{radio}BSS.")) {
                        for sta in instances(p, &format!("{bss}STA.")) {
                            self.sight(&sta, idx, RANK_NODE, connection, Some(unit));
                        }
                    }
                }
            }
        }
    }

    fn access_point_clients(&mut self) {
        let p = self.p;
        let t = &self.profile.topology;
        let unit = t.associated_signal_unit.unwrap_or(SignalUnit::Dbm);
        for pattern in &t.associated_devices {
            for table in expand(p, &as_object(pattern)) {
                let band = parent(&table).and_then(|ap| self.bands.of_object(ap));
                let connection = connection(band);
                for entry in instances(p, &table) {
                    self.sight(&entry, 0, RANK_ACCESS_POINT, connection, Some(unit));
                }
            }
        }
    }

    fn client_index(&mut self, mac: String) -> usize {
        if let Some(i) = self.client_by_mac.get(&mac) {
            return *i;
        }
        let i = self.clients.len();
        self.client_by_mac.insert(mac.clone(), i);
        self.clients.push(Seen {
            mac,
            sightings: Vec::new(),
            host: None,
        });
        i
    }

    /// Records the client table entry `entry` (object path) under node
    /// `node`. `unit`: the unit of its `SignalStrength` (`None`: wired).
    fn sight(
        &mut self,
        entry: &str,
        node: usize,
        rank: u8,
        connection: Connection,
        unit: Option<SignalUnit>,
    ) {
        let row = Row::of(self.p, entry);
        let Some(mac) = row.first(MAC_FIELDS).and_then(norm_mac) else {
            return;
        };
        if self.infra_macs.contains(&mac) {
            return;
        }
        let ip = row.first(IP_FIELDS).and_then(usable_ip);
        if ip.as_ref().is_some_and(|ip| self.infra_ips.contains(ip)) {
            return;
        }
        let signal = unit.and_then(|unit| {
            VENDOR_RSSI
                .iter()
                .find_map(|f| row.get(f).and_then(dbm_reading))
                .map(|v| (v, true))
                .or_else(|| row.get("SignalStrength").and_then(|r| reading(r, unit)))
        });
        let sighting = Sighting {
            node,
            rank,
            connection,
            signal,
            ip,
            hostname: row.first(NAME_FIELDS).and_then(hostname_value),
            active: row.get("Active").and_then(parse_bool),
        };
        let i = self.client_index(mac);
        self.clients[i].sightings.push(sighting);
    }

    fn hosts(&mut self) {
        let p = self.p;
        let Some(hosts) = &self.profile.topology.hosts else {
            return;
        };
        for table in expand(p, &as_object(hosts)) {
            for host in instances(p, &table) {
                let row = Row::of(p, &host);
                let Some(mac) = row.first(&["PhysAddress", "MACAddress"]).and_then(norm_mac) else {
                    continue;
                };
                if self.infra_macs.contains(&mac) {
                    continue;
                }
                let ip = row.get("IPAddress").and_then(usable_ip);
                if ip.as_ref().is_some_and(|ip| self.infra_ips.contains(ip)) {
                    continue;
                }
                let info = HostInfo {
                    ip,
                    hostname: row.get("HostName").and_then(hostname_value),
                    active: row.get("Active").and_then(parse_bool),
                    connection: self.host_connection(&row),
                };
                let i = self.client_index(mac);
                if self.clients[i].host.is_none() {
                    self.clients[i].host = Some(info);
                }
            }
        }
    }

    /// How a host-table entry says it is connected.
    fn host_connection(&mut self, host: &Row) -> Connection {
        #[derive(PartialEq)]
        enum Medium {
            Wired,
            Wifi,
        }
        let iface = host.first(&["Layer1Interface", "Layer2Interface"]);
        let iface_medium = iface.and_then(|r| {
            let l = r.to_ascii_lowercase();
            if l.contains(".ethernet.") || l.contains("lanethernetinterfaceconfig") {
                Some(Medium::Wired)
            } else if l.contains(".wifi.") || l.contains("wlanconfiguration") {
                Some(Medium::Wifi)
            } else {
                None
            }
        });
        let type_medium = host.get("InterfaceType").and_then(|t| {
            let t = t.to_ascii_lowercase();
            if t.contains("ethernet") {
                Some(Medium::Wired)
            } else if ["wi-fi", "wifi", "802.11", "wireless", "wlan"]
                .iter()
                .any(|w| t.contains(w))
            {
                Some(Medium::Wifi)
            } else {
                None
            }
        });
        let tp_medium = host
            .get("X_TP_LanConnType")
            .and_then(|v| v.parse::<u32>().ok())
            .map(|v| if v == 0 { Medium::Wired } else { Medium::Wifi });
        let iface_is_wifi = iface_medium == Some(Medium::Wifi);
        match type_medium.or(iface_medium).or(tp_medium) {
            Some(Medium::Wired) => Connection::Ethernet,
            Some(Medium::Wifi) => {
                let band = match iface {
                    Some(r) if iface_is_wifi => self.bands.of_object(r),
                    _ => None,
                };
                connection(band)
            }
            None => Connection::Unknown,
        }
    }

    fn finish(self) -> Topology {
        let mut nodes: Vec<MeshNode> = self
            .nodes
            .into_iter()
            .enumerate()
            .map(|(i, n)| MeshNode {
                mac: n.mac,
                role: if i == 0 {
                    NodeRole::Controller
                } else {
                    NodeRole::Satellite
                },
                model: n.model,
                hostname: n.hostname,
                ip: n.ip,
                active: n.active,
                backhaul: n.backhaul,
                clients: Vec::new(),
            })
            .collect();
        let mut unplaced = Vec::new();
        let mut totals = Totals::default();
        for seen in self.clients {
            let (node, mut client) = settle(seen, self.mesh);
            totals.all += 1;
            match node.and_then(|i| nodes.get_mut(i).map(|n| (i, n))) {
                Some((i, n)) => {
                    client.node_mac = (!n.mac.is_empty()).then(|| n.mac.clone());
                    if client.connection == Connection::Ethernet {
                        totals.wired += 1;
                    } else if client.connection.is_wifi() {
                        if i == 0 {
                            totals.wifi_direct += 1;
                        } else {
                            totals.wifi_via_mesh += 1;
                        }
                    }
                    n.clients.push(client);
                }
                None => unplaced.push(client),
            }
        }
        Topology {
            nodes,
            unplaced,
            totals,
        }
    }
}

/// Where a client goes and what it looks like, from all its sightings.
fn settle(seen: Seen, mesh: bool) -> (Option<usize>, Client) {
    let Seen {
        mac,
        sightings,
        host,
    } = seen;
    // First sighting of the strongest rank (min_by_key keeps the first).
    let place = sightings.iter().min_by_key(|s| s.rank);
    let hint = host.as_ref().map_or(Connection::Unknown, |h| h.connection);
    let node = match (place, &host) {
        (Some(s), _) => Some(s.node),
        (None, Some(h)) if !mesh || h.connection == Connection::Ethernet => Some(0),
        _ => None,
    };
    let mut connection = place.map_or(hint, |s| s.connection);
    if matches!(connection, Connection::Wifi | Connection::Unknown) {
        let banded = sightings
            .iter()
            .filter(|s| Some(s.node) == node)
            .map(|s| s.connection)
            .chain(std::iter::once(hint))
            .find(|c| c.is_wifi() && *c != Connection::Wifi);
        if let Some(b) = banded {
            connection = b;
        } else if connection == Connection::Unknown {
            connection = hint;
        }
    }
    let signal_dbm = if connection.is_wifi() {
        let mut best: Option<(u8, f64)> = None;
        for s in &sightings {
            if let Some((v, native)) = s.signal {
                let score = u8::from(Some(s.node) == node) * 2 + u8::from(native);
                if best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, v));
                }
            }
        }
        best.map(|(_, v)| v)
    } else {
        None
    };
    let ordered = || place.into_iter().chain(sightings.iter());
    let ip = host
        .as_ref()
        .and_then(|h| h.ip.clone())
        .or_else(|| ordered().find_map(|s| s.ip.clone()));
    let hostname = host
        .as_ref()
        .and_then(|h| h.hostname.clone())
        .or_else(|| ordered().find_map(|s| s.hostname.clone()));
    let active = ordered()
        .find_map(|s| s.active)
        .or_else(|| host.as_ref().and_then(|h| h.active));
    let client = Client {
        mac,
        ip,
        hostname,
        connection,
        signal_dbm,
        signal_quality: signal_dbm.map(signal_quality),
        active,
        node_mac: None,
    };
    (node, client)
}

#[cfg(test)]
mod tests;

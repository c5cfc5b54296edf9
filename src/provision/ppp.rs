//! Which PPP interface carries the device's Internet connection, so that
//! the PPPoE credentials from ERPNext (`custom_radius_user` /
//! `custom_radius_password`) go there and nowhere else. Pure.
//!
//! Real devices have several PPP interfaces and most of them are not the
//! one to write: TP-Link's XX230v ONT ships `Device.PPP.Interface.1` on
//! `Device.USB.Interface.1` (a 3G dongle, enabled) next to the GPON one
//! (`PPP.Interface.3` → `Ethernet.VLANTermination.3` → `Ethernet.Link.5` →
//! `X_TP_GPON.Link.1`); a TR-098 ONT may have a PPP connection for VoIP or
//! management only, or a bridged one the home router dials itself. So:
//!
//! - **TR-181**: a `PPP.Interface.{i}` whose `Username` and `Password` are
//!   writable, not disabled, whose `LowerLayers` chain never reaches a USB,
//!   cellular or 3G/4G layer. Preferred: the one an enabled `IP.Interface`
//!   stacks on (`IP.Interface.{j}.LowerLayers`), marked Internet by its
//!   vendor service fields, on an optical / Ethernet / DSL access.
//! - **TR-098**: a `WANDevice.{i}.WANConnectionDevice.{j}.WANPPPConnection.{k}`
//!   with writable credentials, not disabled, not bridged or relayed (the
//!   ACS would configure a dialler nobody uses), not on a mobile WANDevice,
//!   and not limited by a vendor service list to other services (VOIP,
//!   TR069, IPTV). Preferred: `Layer3Forwarding.DefaultConnectionService`,
//!   then a service list with INTERNET, then `IP_Routed`.
//!
//! A device without such an interface gets no PPPoE credentials at all.

use super::datamodel::DataModelTree;
use super::profile::PppPaths;
use super::values::{Values, object_inputs, reference, value, vendor_fields};
use crate::cwmp::parse_bool;

/// Words that mark a mobile (USB modem, 3G/4G) access in a path, a name or
/// a vendor field.
const MOBILE: [&str; 8] = [
    "usb", "cellular", "3g", "4g", "lte", "umts", "wwan", "mobile",
];

/// Service words that mean "not the Internet connection" when INTERNET is
/// absent.
const OTHER_SERVICES: [&str; 5] = ["voip", "tr069", "iptv", "management", "other"];

/// Layers followed at most below a PPP interface (a loop in
/// `LowerLayers` ends).
const MAX_LAYERS: usize = 32;

fn mentions_any(text: &str, words: &[&str]) -> bool {
    let t = text.to_ascii_lowercase();
    words.iter().any(|w| t.contains(w))
}

/// Whether the values the selection needs about `obj` were read (a run
/// reads them only when ERPNext has PPPoE credentials): without them a USB
/// interface cannot be told from the WAN one, so nothing is chosen.
fn read(tree: &DataModelTree, v: &Values, obj: &str, leaves: &[&str]) -> bool {
    leaves.iter().all(|l| {
        let p = format!("{obj}{l}");
        !tree.has_leaf(&p) || v.contains_key(&p)
    })
}

fn disabled(v: &Values, obj: &str) -> bool {
    value(v, &format!("{obj}Enable")).and_then(parse_bool) == Some(false)
}

/// The names whose values [`ppp`] needs: enable flags, layer references,
/// connection types, vendor service fields, and the current usernames
/// (for the planner's diff). Never the passwords.
pub fn ppp_inputs(tree: &DataModelTree, root: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |obj: &str, leaves: &[&str]| object_inputs(tree, obj, leaves, &mut out);
    if root == "InternetGatewayDevice." {
        add(
            &format!("{root}Layer3Forwarding."),
            &["DefaultConnectionService"],
        );
        for wan in tree.instances(&format!("{root}WANDevice.")) {
            add(
                &format!("{wan}WANCommonInterfaceConfig."),
                &["WANAccessType"],
            );
            for cd in tree.instances(&format!("{wan}WANConnectionDevice.")) {
                for c in tree.instances(&format!("{cd}WANPPPConnection.")) {
                    add(
                        &c,
                        &[
                            "Enable",
                            "ConnectionType",
                            "Name",
                            "TransportType",
                            "Username",
                        ],
                    );
                }
            }
        }
    } else {
        for p in tree.instances(&format!("{root}PPP.Interface.")) {
            add(&p, &["Enable", "LowerLayers", "Name", "Alias", "Username"]);
        }
        for ip in tree.instances(&format!("{root}IP.Interface.")) {
            add(&ip, &["Enable", "LowerLayers", "Name", "Alias"]);
        }
        // The layers a PPP interface may stand on. WiFi, bridges and hosts
        // are LAN side: not read.
        for (name, _) in tree.iter() {
            let rest = name.strip_prefix(root).unwrap_or("");
            if name.ends_with(".LowerLayers")
                && !rest.starts_with("PPP.")
                && !rest.starts_with("IP.")
                && !rest.starts_with("WiFi.")
                && !rest.starts_with("Bridging.")
                && !rest.starts_with("Hosts.")
            {
                out.push(name.to_owned());
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

/// The PPP interface to write PPPoE credentials to, if the device has one
/// (see the module docs).
pub fn ppp(tree: &DataModelTree, v: &Values, root: &str) -> Option<PppPaths> {
    if root == "InternetGatewayDevice." {
        tr098(tree, v, root)
    } else {
        tr181(tree, v, root)
    }
}

fn writable_credentials(tree: &DataModelTree, obj: &str) -> Option<PppPaths> {
    let username = format!("{obj}Username");
    let password = format!("{obj}Password");
    (tree.can_write(&username) && tree.can_write(&password))
        .then_some(PppPaths { username, password })
}

/// Every object path `LowerLayers` of `obj` leads to, `obj` included.
fn layer_chain(v: &Values, root: &str, obj: &str) -> Vec<String> {
    let mut chain = vec![obj.to_owned()];
    let mut next = 0;
    // Breadth first, every layer once; a loop or a fan-out ends at the cap.
    while next < chain.len() && next < MAX_LAYERS {
        let lower = value(v, &format!("{}LowerLayers", chain[next])).unwrap_or("");
        for r in lower.split(',').filter_map(|r| reference(root, r)) {
            if !chain.contains(&r) {
                chain.push(r);
            }
        }
        next += 1;
    }
    chain
}

/// The vendor and naming text of an object, for service and mobile hints.
fn hint_text(tree: &DataModelTree, v: &Values, obj: &str) -> String {
    let mut t = String::new();
    for leaf in ["Name", "Alias"] {
        if let Some(x) = value(v, &format!("{obj}{leaf}")) {
            t.push_str(x);
            t.push(' ');
        }
    }
    for (_, x) in vendor_fields(tree, v, obj) {
        t.push_str(x);
        t.push(' ');
    }
    t
}

/// What the service hints say: Some(true) Internet, Some(false) another
/// service only, None nothing.
fn internet_hint(text: &str) -> Option<bool> {
    if mentions_any(text, &["internet"]) {
        Some(true)
    } else if mentions_any(text, &OTHER_SERVICES) {
        Some(false)
    } else {
        None
    }
}

fn tr181(tree: &DataModelTree, v: &Values, root: &str) -> Option<PppPaths> {
    let ips = tree.instances(&format!("{root}IP.Interface."));
    let mut best: Option<((bool, bool, bool, usize), PppPaths)> = None;
    for (index, obj) in tree
        .instances(&format!("{root}PPP.Interface."))
        .into_iter()
        .enumerate()
    {
        let Some(paths) = writable_credentials(tree, &obj) else {
            continue;
        };
        if !read(tree, v, &obj, &["Enable", "LowerLayers"]) || disabled(v, &obj) {
            continue;
        }
        let chain = layer_chain(v, root, &obj);
        if chain
            .iter()
            .skip(1)
            .any(|layer| mentions_any(&layer[root.len().min(layer.len())..], &MOBILE))
        {
            continue;
        }
        let upper: Vec<&String> = ips
            .iter()
            .filter(|ip| !disabled(v, ip))
            .filter(|ip| {
                value(v, &format!("{ip}LowerLayers")).is_some_and(|l| {
                    l.split(',')
                        .filter_map(|r| reference(root, r))
                        .any(|r| r == obj)
                })
            })
            .collect();
        let mut hints = hint_text(tree, v, &obj);
        for ip in &upper {
            hints.push_str(&hint_text(tree, v, ip));
        }
        if mentions_any(&hints, &MOBILE) {
            continue;
        }
        let internet = internet_hint(&hints);
        if internet == Some(false) {
            continue;
        }
        let wan_access = chain.iter().skip(1).any(|l| {
            mentions_any(
                l,
                &[
                    "optical",
                    "gpon",
                    "epon",
                    "pon.",
                    "dsl",
                    "ethernet.interface",
                ],
            )
        });
        let rank = (
            !upper.is_empty(),
            internet == Some(true),
            wan_access,
            usize::MAX - index,
        );
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, paths));
        }
    }
    best.map(|(_, p)| p)
}

fn tr098(tree: &DataModelTree, v: &Values, root: &str) -> Option<PppPaths> {
    let default = value(
        v,
        &format!("{root}Layer3Forwarding.DefaultConnectionService"),
    )
    .and_then(|d| reference(root, d));
    let mut best: Option<((bool, bool, bool, usize), PppPaths)> = None;
    let mut index = 0usize;
    for wan in tree.instances(&format!("{root}WANDevice.")) {
        let access = value(v, &format!("{wan}WANCommonInterfaceConfig.WANAccessType"))
            .unwrap_or("")
            .to_owned();
        let access_hints = format!(
            "{access} {}",
            hint_text(tree, v, &format!("{wan}WANCommonInterfaceConfig."))
        );
        if mentions_any(&access_hints, &MOBILE) {
            continue;
        }
        for cd in tree.instances(&format!("{wan}WANConnectionDevice.")) {
            for obj in tree.instances(&format!("{cd}WANPPPConnection.")) {
                index += 1;
                let Some(paths) = writable_credentials(tree, &obj) else {
                    continue;
                };
                if !read(tree, v, &obj, &["Enable", "ConnectionType"]) || disabled(v, &obj) {
                    continue;
                }
                let kind = value(v, &format!("{obj}ConnectionType")).unwrap_or("");
                if mentions_any(kind, &["bridged", "relay"]) {
                    continue;
                }
                let hints = hint_text(tree, v, &obj);
                if mentions_any(&hints, &MOBILE) {
                    continue;
                }
                let internet = internet_hint(&hints);
                let is_default = default.as_deref() == Some(obj.as_str());
                if internet == Some(false) && !is_default {
                    continue;
                }
                let routed = kind.eq_ignore_ascii_case("IP_Routed");
                let rank = (
                    is_default,
                    internet == Some(true),
                    routed,
                    usize::MAX - index,
                );
                if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                    best = Some((rank, paths));
                }
            }
        }
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::export;

    fn tree_and_values(csv: &str) -> (DataModelTree, Values) {
        export::parse(csv).expect("export")
    }

    /// Only what `ppp_inputs` names is known to the selection, as in a run.
    fn read_inputs(tree: &DataModelTree, all: &Values, root: &str) -> Values {
        ppp_inputs(tree, root)
            .into_iter()
            .filter_map(|n| all.get(&n).map(|v| (n, v.clone())))
            .collect()
    }

    #[test]
    fn the_xx230v_gets_its_gpon_ppp_not_the_usb_dongle() {
        let (tree, all) = tree_and_values(&crate::provision::export::real_export(
            "tplink-xx230v-gpon-ont.csv",
        ));
        let inputs = ppp_inputs(&tree, "Device.");
        assert!(inputs.iter().all(|n| !n.ends_with("Password")));
        assert!(inputs.contains(&"Device.PPP.Interface.3.LowerLayers".to_owned()));
        let v = read_inputs(&tree, &all, "Device.");
        let p = ppp(&tree, &v, "Device.").expect("a PPP interface");
        assert_eq!(p.username, "Device.PPP.Interface.3.Username");
        assert_eq!(p.password, "Device.PPP.Interface.3.Password");
    }

    #[test]
    fn the_ex220_mesh_router_has_only_a_usb_ppp_and_gets_none() {
        let (tree, all) = tree_and_values(&crate::provision::export::real_export(
            "tplink-ex220-tr181-mesh.csv",
        ));
        let v = read_inputs(&tree, &all, "Device.");
        assert_eq!(ppp(&tree, &v, "Device."), None);
    }

    fn tree(names: &[&str]) -> DataModelTree {
        DataModelTree::from_names(names.iter().map(|n| (*n, true)))
    }

    fn values(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const IGD: &str = "InternetGatewayDevice.";

    fn tr098_tree() -> DataModelTree {
        let mut names = vec![
            "InternetGatewayDevice.Layer3Forwarding.DefaultConnectionService",
            "InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.WANAccessType",
            "InternetGatewayDevice.WANDevice.2.WANCommonInterfaceConfig.WANAccessType",
        ];
        for c in [
            "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.",
            "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1.",
            "InternetGatewayDevice.WANDevice.2.WANConnectionDevice.1.WANPPPConnection.1.",
        ] {
            for leaf in [
                "Enable",
                "ConnectionType",
                "Username",
                "Password",
                "X_HW_SERVICELIST",
            ] {
                names.push(Box::leak(format!("{c}{leaf}").into_boxed_str()));
            }
        }
        tree(&names)
    }

    #[test]
    fn tr098_takes_the_internet_connection_not_voip_bridged_or_mobile() {
        let t = tr098_tree();
        let c1 = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.";
        let c2 = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1.";
        let c3 = "InternetGatewayDevice.WANDevice.2.WANConnectionDevice.1.WANPPPConnection.1.";
        let base = |c1_list: &str, c2_type: &str| {
            values(&[
                (
                    &format!("{IGD}WANDevice.1.WANCommonInterfaceConfig.WANAccessType"),
                    "Optical",
                ),
                (
                    &format!("{IGD}WANDevice.2.WANCommonInterfaceConfig.WANAccessType"),
                    "X_USB_3G",
                ),
                (&format!("{c1}Enable"), "1"),
                (&format!("{c1}ConnectionType"), "IP_Routed"),
                (&format!("{c1}X_HW_SERVICELIST"), c1_list),
                (&format!("{c2}Enable"), "1"),
                (&format!("{c2}ConnectionType"), c2_type),
                (&format!("{c2}X_HW_SERVICELIST"), "INTERNET"),
                (&format!("{c3}Enable"), "1"),
                (&format!("{c3}ConnectionType"), "IP_Routed"),
                (&format!("{c3}X_HW_SERVICELIST"), "INTERNET"),
            ])
        };
        // The first connection is VoIP only; the second carries Internet.
        let p = ppp(&t, &base("VOIP", "IP_Routed"), IGD).expect("internet ppp");
        assert_eq!(p.username, format!("{c2}Username"));
        // Bridged: the home router dials, not the ONT; the mobile WAN never.
        assert_eq!(ppp(&t, &base("VOIP", "PPPoE_Bridged"), IGD), None);
        // TR069_INTERNET counts as Internet, and is first.
        let p = ppp(&t, &base("TR069_INTERNET", "IP_Routed"), IGD).expect("ppp");
        assert_eq!(p.username, format!("{c1}Username"));
        // The default connection service wins over the order.
        let mut v = base("INTERNET", "IP_Routed");
        v.insert(
            format!("{IGD}Layer3Forwarding.DefaultConnectionService"),
            c2.trim_end_matches('.').to_owned(),
        );
        assert_eq!(
            ppp(&t, &v, IGD).expect("ppp").username,
            format!("{c2}Username")
        );
        // Disabled: never.
        let mut v = base("VOIP", "IP_Routed");
        v.insert(format!("{c2}Enable"), "0".into());
        assert_eq!(ppp(&t, &v, IGD), None);
    }

    #[test]
    fn nothing_is_chosen_before_the_inputs_are_read() {
        let (tree, _) = tree_and_values(&crate::provision::export::real_export(
            "tplink-xx230v-gpon-ont.csv",
        ));
        assert_eq!(ppp(&tree, &Values::new(), "Device."), None);
    }

    #[test]
    fn read_only_credentials_or_no_ppp_give_nothing() {
        let t = DataModelTree::from_names([
            ("Device.PPP.Interface.1.Username", false),
            ("Device.PPP.Interface.1.Password", true),
            ("Device.PPP.Interface.1.Enable", true),
        ]);
        assert_eq!(ppp(&t, &Values::new(), "Device."), None);
        let t = tree(&["Device.IP.Interface.1.LowerLayers"]);
        assert_eq!(ppp(&t, &Values::new(), "Device."), None);
    }

    #[test]
    fn a_layer_loop_ends() {
        let t = tree(&[
            "Device.PPP.Interface.1.Username",
            "Device.PPP.Interface.1.Password",
            "Device.PPP.Interface.1.LowerLayers",
            "Device.Ethernet.Link.1.LowerLayers",
            "Device.Ethernet.Link.2.LowerLayers",
        ]);
        let v = values(&[
            (
                "Device.PPP.Interface.1.LowerLayers",
                "Device.Ethernet.Link.1.",
            ),
            (
                "Device.Ethernet.Link.1.LowerLayers",
                "Device.Ethernet.Link.2",
            ),
            (
                "Device.Ethernet.Link.2.LowerLayers",
                "Device.Ethernet.Link.1.",
            ),
        ]);
        assert_eq!(
            ppp(&t, &v, "Device.").map(|p| p.username),
            Some("Device.PPP.Interface.1.Username".to_owned())
        );
    }
}

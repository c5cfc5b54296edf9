//! Reading a flat `path → value` map as TR-069 objects: tables and their
//! instances, `*` patterns, MACs, booleans. Everything here tolerates junk:
//! a value that does not parse is as good as absent.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::Params;

/// `path` as an object path (with its trailing dot).
pub(crate) fn as_object(path: &str) -> String {
    let path = path.trim();
    if path.ends_with('.') {
        path.to_owned()
    } else {
        format!("{path}.")
    }
}

/// The object containing `path` (a parameter or an object): the text up to
/// and including the dot before its last segment. `None` at the top.
pub(crate) fn parent(path: &str) -> Option<&str> {
    let trimmed = path.strip_suffix('.').unwrap_or(path);
    trimmed.rfind('.').map(|at| &trimmed[..=at])
}

/// The value at `path`, trimmed; `None` when absent or blank.
pub(crate) fn text<'a>(p: &'a Params, path: &str) -> Option<&'a str> {
    p.get(path).and_then(|v| non_blank(v))
}

/// `v` trimmed; `None` when blank.
fn non_blank(v: &str) -> Option<&str> {
    Some(v.trim()).filter(|v| !v.is_empty())
}

thread_local! {
    /// The key [`field`] looks up, built in place: a build makes thousands
    /// of lookups and a `format!` each was an allocation per lookup.
    static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The value of parameter `name` of object `obj` (which ends in a dot).
pub(crate) fn field<'a>(p: &'a Params, obj: &str, name: &str) -> Option<&'a str> {
    KEY.with_borrow_mut(|key| {
        key.clear();
        key.push_str(obj);
        key.push_str(name);
        text(p, key)
    })
}

/// The parameters under one object, taken from the map at once: the
/// builder tries several names per table row (three MAC fields, five IP
/// fields, vendor RSSI fields...), most of them absent, and each try was a
/// lookup in a map of thousands of long keys sharing long prefixes. A row
/// holds a dozen entries; looking among them is a few short comparisons.
pub(crate) struct Row<'a> {
    /// `(name relative to the object, value)`, in map order.
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Row<'a> {
    /// The parameters under `obj` (an object path ending in a dot).
    pub(crate) fn of(p: &'a Params, obj: &str) -> Row<'a> {
        let fields = p
            .range::<str, _>((Bound::Included(obj), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(obj))
            .map(|(k, v)| (&k[obj.len()..], v.as_str()))
            .collect();
        Row { fields }
    }

    /// As [`field`]: the value of `name`, trimmed; `None` when absent or
    /// blank.
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| non_blank(v))
    }

    /// As [`first_field`]: the first present among `names`.
    pub(crate) fn first(&self, names: &[&str]) -> Option<&'a str> {
        names.iter().find_map(|n| self.get(n))
    }
}

/// The first present parameter among `names` of object `obj`.
pub(crate) fn first_field<'a>(p: &'a Params, obj: &str, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| field(p, obj, n))
}

/// Every key under `prefix`, in map order (one contiguous range of the map).
pub(crate) fn keys_under<'a>(p: &'a Params, prefix: &'a str) -> impl Iterator<Item = &'a str> {
    p.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .map(|(k, _)| k.as_str())
        .take_while(move |k| k.starts_with(prefix))
}

/// The instances of table `table` (an object path ending in a dot, e.g.
/// `Device.Hosts.Host.`), as object paths (`Device.Hosts.Host.7.`), in
/// ascending instance number (not string order: 2 before 10).
pub(crate) fn instances(p: &Params, table: &str) -> Vec<String> {
    if table.is_empty() || !table.ends_with('.') {
        return Vec::new();
    }
    let mut seen: BTreeSet<(u64, &str)> = BTreeSet::new();
    for key in keys_under(p, table) {
        let rest = &key[table.len()..];
        let Some((seg, _)) = rest.split_once('.') else {
            continue;
        };
        if seg.is_empty() || !seg.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = seg.parse::<u64>() {
            seen.insert((n, seg));
        }
    }
    seen.into_iter()
        .map(|(_, seg)| format!("{table}{seg}."))
        .collect()
}

/// Expands a path whose `*` segments stand for any instance into the
/// concrete paths the map has instances for, in instance order. A path
/// without `*` comes back as is (whether or not the map holds it).
pub(crate) fn expand(p: &Params, pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    expand_into(p, pattern, &mut out, 0);
    out
}

fn expand_into(p: &Params, pattern: &str, out: &mut Vec<String>, depth: u8) {
    if depth > 8 {
        return;
    }
    let mut pos = 0;
    for seg in pattern.split('.') {
        if seg == "*" {
            let head = &pattern[..pos];
            if head.is_empty() {
                return;
            }
            let tail = &pattern[pos + 1..];
            let tail = tail.strip_prefix('.').unwrap_or(tail);
            for inst in instances(p, head) {
                expand_into(p, &format!("{inst}{tail}"), out, depth + 1);
            }
            return;
        }
        pos += seg.len() + 1;
    }
    out.push(pattern.to_owned());
}

/// The object paths above `path` that are table instances (end in a
/// numeric segment), deepest first, e.g. for
/// `Device.IP.Interface.6.IPv4Address.1.IPAddress`:
/// `Device.IP.Interface.6.IPv4Address.1.`, `Device.IP.Interface.6.`.
pub(crate) fn instance_ancestors(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut end = 0;
    for seg in path.split('.') {
        end += seg.len() + 1;
        if end > path.len() {
            break;
        }
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push(&path[..end]);
        }
    }
    out.reverse();
    out
}

/// A MAC address in any common notation (`AA:BB:CC:DD:EE:FF`,
/// `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff`, bare hex) as lower-case
/// colon-separated text; `None` for anything else and for the all-zero and
/// broadcast addresses (placeholders, not stations).
pub(crate) fn norm_mac(s: &str) -> Option<String> {
    let hex: Vec<u8> = s
        .trim()
        .bytes()
        .filter(|b| !matches!(b, b':' | b'-' | b'.' | b' '))
        .map(|b| b.to_ascii_lowercase())
        .collect();
    if hex.len() != 12 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    if hex.iter().all(|b| *b == b'0') || hex.iter().all(|b| *b == b'f') {
        return None;
    }
    let mut out = String::with_capacity(17);
    for (i, pair) in hex.chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        for b in pair {
            out.push(char::from(*b));
        }
    }
    Some(out)
}

/// A CWMP boolean as devices write it (`true`/`1`, also `Up`, `Enabled`...).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "up" | "enabled" => Some(true),
        "false" | "0" | "no" | "off" | "down" | "disabled" => Some(false),
        _ => None,
    }
}

/// A decimal number, tolerating surrounding blanks and a `dBm` suffix;
/// `None` for text, NaN and infinities.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let b = t.as_bytes();
    // Compared as bytes: the last three are ASCII when they match, so the
    // cut is on a character boundary.
    let t = if b.len() >= 3 && b[b.len() - 3..].eq_ignore_ascii_case(b"dbm") {
        t[..t.len() - 3].trim_end()
    } else {
        t
    };
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// An IPv4/IPv6 address as text if it is a usable host address (not
/// blank, not `0.0.0.0`); a `/len` suffix is dropped.
pub(crate) fn usable_ip(s: &str) -> Option<String> {
    let t = s.trim();
    let t = t.split_once('/').map_or(t, |(a, _)| a);
    let ip: std::net::IpAddr = t.parse().ok()?;
    (!ip.is_unspecified()).then(|| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> Params {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_row_answers_as_the_map_does() {
        let p = params(&[
            ("D.H.1.IPAddress", " 10.0.0.2 "),
            ("D.H.1.HostName", "  "),
            ("D.H.1.IPv4Address.1.IPAddress", "10.0.0.3"),
            ("D.H.10.IPAddress", "10.0.0.9"),
            ("D.H.2.IPAddress", "10.0.0.4"),
        ]);
        let row = Row::of(&p, "D.H.1.");
        for name in [
            "IPAddress",
            "HostName",
            "Nope",
            "IPv4Address.1.IPAddress",
            "",
        ] {
            assert_eq!(row.get(name), field(&p, "D.H.1.", name), "{name}");
        }
        assert_eq!(
            row.first(&["Nope", "HostName", "IPAddress"]),
            Some("10.0.0.2")
        );
        assert_eq!(
            row.first(&["Nope", "HostName"]),
            first_field(&p, "D.H.1.", &["Nope", "HostName"])
        );
        assert_eq!(Row::of(&p, "D.X.").get("IPAddress"), None);
    }

    #[test]
    fn instances_are_numeric_and_ordered() {
        let p = params(&[
            ("Device.Hosts.Host.10.PhysAddress", "x"),
            ("Device.Hosts.Host.2.PhysAddress", "x"),
            ("Device.Hosts.Host.2.HostName", "x"),
            ("Device.Hosts.HostNumberOfEntries", "2"),
            ("Device.Hosts.Host.abc.PhysAddress", "x"),
            ("Device.Hosts.Host.3", "object row without dot"),
        ]);
        assert_eq!(
            instances(&p, "Device.Hosts.Host."),
            ["Device.Hosts.Host.2.", "Device.Hosts.Host.10."]
        );
        assert!(instances(&p, "Device.Hosts.Host").is_empty());
    }

    #[test]
    fn patterns_expand() {
        let p = params(&[
            ("Device.IP.Interface.1.IPv4Address.1.IPAddress", "a"),
            ("Device.IP.Interface.1.IPv4Address.2.IPAddress", "b"),
            ("Device.IP.Interface.12.IPv4Address.1.IPAddress", "c"),
            ("Device.IP.Interface.3.Name", "no addresses"),
        ]);
        assert_eq!(
            expand(&p, "Device.IP.Interface.*.IPv4Address.*.IPAddress"),
            [
                "Device.IP.Interface.1.IPv4Address.1.IPAddress",
                "Device.IP.Interface.1.IPv4Address.2.IPAddress",
                "Device.IP.Interface.12.IPv4Address.1.IPAddress",
            ]
        );
        assert_eq!(
            expand(&p, "Device.IP.Interface.*."),
            [
                "Device.IP.Interface.1.",
                "Device.IP.Interface.3.",
                "Device.IP.Interface.12."
            ]
        );
        assert_eq!(expand(&p, "Device.X."), ["Device.X."]);
        assert!(expand(&p, "*.X").is_empty());
    }

    #[test]
    fn macs_normalise() {
        assert_eq!(
            norm_mac("AA:BB:CC:0d:0E:ff").as_deref(),
            Some("aa:bb:cc:0d:0e:ff")
        );
        assert_eq!(
            norm_mac(" aa-bb-cc-dd-ee-01 ").as_deref(),
            Some("aa:bb:cc:dd:ee:01")
        );
        assert_eq!(
            norm_mac("aabb.ccdd.ee02").as_deref(),
            Some("aa:bb:cc:dd:ee:02")
        );
        assert_eq!(
            norm_mac("AABBCCDDEE03").as_deref(),
            Some("aa:bb:cc:dd:ee:03")
        );
        for junk in [
            "",
            "00:00:00:00:00:00",
            "FF:FF:FF:FF:FF:FF",
            "zz:bb:cc:dd:ee:ff",
            "aa:bb:cc",
            "é€",
        ] {
            assert_eq!(norm_mac(junk), None, "{junk}");
        }
    }

    #[test]
    fn ancestors_and_parents() {
        assert_eq!(
            instance_ancestors("Device.IP.Interface.6.IPv4Address.1.IPAddress"),
            [
                "Device.IP.Interface.6.IPv4Address.1.",
                "Device.IP.Interface.6."
            ]
        );
        assert_eq!(
            parent("Device.WiFi.AccessPoint.1.AssociatedDevice."),
            Some("Device.WiFi.AccessPoint.1.")
        );
        assert_eq!(parent("Device.A.B"), Some("Device.A."));
        assert_eq!(parent("Device."), None);
        assert_eq!(as_object("Device.WiFi.SSID.1"), "Device.WiFi.SSID.1.");
    }

    #[test]
    fn numbers_booleans_ips() {
        assert_eq!(parse_number(" -19.21 dBm"), Some(-19.21));
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("n/a"), None);
        assert_eq!(parse_number("éxy"), None);
        assert_eq!(parse_number("-3 DBM"), Some(-3.0));
        assert_eq!(parse_bool("Enabled"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(usable_ip("0.0.0.0"), None);
        assert_eq!(usable_ip("10.0.0.1/8").as_deref(), Some("10.0.0.1"));
        assert_eq!(usable_ip("bogus"), None);
    }
}

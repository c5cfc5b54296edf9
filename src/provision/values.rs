//! Values read from a device and the small readings every analysis of its
//! data model makes of them (a value, an object's vendor fields, a
//! reference). Pure; shared by [`super::targets`] and [`super::ppp`].

use std::collections::BTreeMap;

use super::datamodel::DataModelTree;
use crate::cwmp::is_secret_parameter;

/// Values read from the device, path → value.
pub type Values = BTreeMap<String, String>;

pub(super) fn value<'a>(v: &'a Values, path: &str) -> Option<&'a str> {
    v.get(path).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// Direct vendor (`X_…`) parameters of an object, with their values.
pub(super) fn vendor_fields<'a>(
    tree: &'a DataModelTree,
    v: &'a Values,
    obj: &'a str,
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    tree.leaves_under(obj)
        .filter(move |n| !n[obj.len()..].contains('.'))
        .filter(move |n| n[obj.len()..].starts_with("X_"))
        .filter_map(move |n| value(v, n).map(|val| (&n[obj.len()..], val)))
}

/// Direct vendor parameter names of an object that may be read (not secrets).
fn vendor_names<'a>(tree: &'a DataModelTree, obj: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    tree.leaves_under(obj)
        .filter(move |n| {
            let leaf = &n[obj.len()..];
            !leaf.contains('.') && leaf.starts_with("X_")
        })
        .filter(|n| !is_secret_parameter(n))
}

/// Adds to `out` the names among `leaves` that the object `obj` has, and
/// its readable vendor fields: what an analysis reads about one object.
pub(super) fn object_inputs(
    tree: &DataModelTree,
    obj: &str,
    leaves: &[&str],
    out: &mut Vec<String>,
) {
    for l in leaves {
        let p = format!("{obj}{l}");
        if tree.has_leaf(&p) {
            out.push(p);
        }
    }
    out.extend(vendor_names(tree, obj).map(str::to_owned));
}

/// A reference as an object path with root and trailing dot
/// (`Device.WiFi.Radio.1`, `WiFi.Radio.1.` → `Device.WiFi.Radio.1.`).
pub(super) fn reference(root: &str, r: &str) -> Option<String> {
    let first = r.split(',').next()?.trim();
    if first.is_empty() {
        return None;
    }
    let mut s = if first.starts_with(root) {
        first.to_owned()
    } else {
        format!("{root}{}", first.trim_start_matches('.'))
    };
    if !s.ends_with('.') {
        s.push('.');
    }
    Some(s)
}

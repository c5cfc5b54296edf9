//! Cross-checks the built-in device profiles (`device-profiles/*.toml`)
//! against the data models their paths live in, using only files in the
//! repository:
//!
//! - standard paths (no `X_` segment) against the Broadband Forum reference
//!   lists in `device-profiles/data-models/` (TR-181 2.16, TR-098 1.8,
//!   TR-104 1.1 and 2.0): the path exists with instance numbers, `*` and
//!   `{line}` read as `{i}`; a path with a trailing dot is an object or a
//!   table; a path the ACS writes is `readWrite` and of the expected type;
//! - vendor paths (an `X_` segment, or a listed vendor object without the
//!   prefix) against the family's model in `simulators/models/*.csv`: the
//!   path exists, and is writable with the expected type when the ACS
//!   writes it; generic profiles name no vendor path at all;
//! - the paths a family profile writes are writable in its model too, and
//!   the `ManagementServer.` parameters the ACS writes are standard and
//!   writable;
//! - `never_write` equals the backhaul SSIDs and access points derived from
//!   the model (`AccessPoint.{i}.X_TP_APType`, MultiAP `X_TP_Type`), which
//!   carry hashed names;
//! - each WiFi band's SSID, passphrase and enable belong to one network,
//!   on a radio of that band.
//!
//! Every failure names the profile file and name, the key and the path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gigafibre_acs::provision::profile::{BUILTIN, Profile, Profiles};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A profile path with every instance position (a number, `*`, `{line}`)
/// written `{i}`, as the BBF XML writes it.
fn generic(path: &str) -> String {
    path.split('.')
        .map(|seg| {
            let instance = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
            if instance || seg == "*" || seg == "{line}" {
                "{i}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn is_vendor(path: &str) -> bool {
    path.split('.').any(|seg| seg.starts_with("X_"))
}

// ---------------------------------------------------------------------------
// Broadband Forum reference lists

const TYPES: &[&str] = &[
    "object",
    "string",
    "unsignedInt",
    "int",
    "unsignedLong",
    "long",
    "boolean",
    "dateTime",
    "base64",
    "hexBinary",
    "decimal",
];

struct RefList {
    file: &'static str,
    /// generic path → (type, access)
    rows: HashMap<String, (String, String)>,
}

fn load_ref(file: &'static str) -> RefList {
    let text = read(&format!("device-profiles/data-models/{file}"));
    let mut lines = text.lines();
    let head = lines.next().unwrap_or_default();
    assert!(
        head.starts_with("# ")
            && head.contains("BroadbandForum/cwmp-data-models")
            && head.contains("35da1133c049")
            && head.contains("BSD-3-Clause"),
        "{file}: the first line must be the provenance comment, got `{head}`"
    );
    let mut rows = HashMap::new();
    for (n, line) in lines.enumerate() {
        let at = format!("{file}:{}", n + 2);
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "{at}: `{line}` is not path<TAB>type<TAB>access");
        let (path, kind, access) = (f[0], f[1], f[2]);
        assert!(TYPES.contains(&kind), "{at}: unknown type `{kind}`");
        assert!(
            matches!(access, "readOnly" | "readWrite" | "writeOnceReadOnly"),
            "{at}: unknown access `{access}`"
        );
        assert_eq!(
            path.ends_with('.'),
            kind == "object",
            "{at}: objects, and only they, end with a dot"
        );
        let old = rows.insert(path.to_owned(), (kind.to_owned(), access.to_owned()));
        assert!(old.is_none(), "{at}: `{path}` is listed twice");
    }
    RefList { file, rows }
}

struct Refs {
    tr181: RefList,
    tr098: RefList,
    tr104v1: RefList,
    tr104v2: RefList,
}

fn refs() -> &'static Refs {
    static REFS: OnceLock<Refs> = OnceLock::new();
    REFS.get_or_init(|| Refs {
        tr181: load_ref("tr-181-2-16.tsv"),
        tr098: load_ref("tr-098-1-8.tsv"),
        tr104v1: load_ref("tr-104-1-1.tsv"),
        tr104v2: load_ref("tr-104-2-0.tsv"),
    })
}

/// The reference lists a standard path of this root is looked up in.
fn standard_lists(root: &str, g: &str) -> Vec<&'static RefList> {
    let r = refs();
    match root {
        "Device." if g.starts_with("Device.Services.VoiceService.") => vec![&r.tr181, &r.tr104v2],
        "Device." => vec![&r.tr181],
        "InternetGatewayDevice."
            if g.starts_with("InternetGatewayDevice.Services.VoiceService.") =>
        {
            vec![&r.tr098, &r.tr104v1]
        }
        "InternetGatewayDevice." => vec![&r.tr098],
        other => panic!("unknown root `{other}`"),
    }
}

/// A standard row for a generic path: the path itself, or for a table
/// named without an instance (`Device.Hosts.Host.`) its `{i}.` object.
fn lookup_standard(root: &str, g: &str) -> Option<(&'static str, &'static (String, String))> {
    for list in standard_lists(root, g) {
        if let Some(row) = list.rows.get(g) {
            return Some((list.file, row));
        }
        if g.ends_with('.') {
            if let Some(row) = list.rows.get(&format!("{g}{{i}}.")) {
                return Some((list.file, row));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Simulator models (GenieACS export CSV)

struct Row {
    path: String,
    object: bool,
    writable: bool,
    value: String,
    vtype: String,
}

struct Model {
    file: String,
    rows: Vec<Row>,
    by_path: HashMap<String, usize>,
    by_generic: HashMap<String, Vec<usize>>,
}

impl Model {
    fn get(&self, path: &str) -> Option<&Row> {
        self.by_path.get(path).map(|&i| &self.rows[i])
    }

    fn value(&self, path: &str) -> Option<&str> {
        self.get(path).map(|r| r.value.as_str())
    }

    /// Rows whose path, instances read as `{i}`, is `g` (no trailing dot).
    fn generic_rows(&self, g: &str) -> Vec<&Row> {
        self.by_generic
            .get(g)
            .map(|v| v.iter().map(|&i| &self.rows[i]).collect())
            .unwrap_or_default()
    }
}

/// One CSV line: fields separated by commas, a field may be double-quoted
/// with `""` for a quote inside.
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn load_model(csv: &str) -> Model {
    let file = format!("simulators/models/{csv}");
    let text = read(&file);
    let mut lines = text.lines();
    let head = lines.next().unwrap_or_default();
    assert!(head.starts_with("# "), "{file}: no provenance comment");
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("Parameter,Object,Object timestamp,Writable,"),
        "{file}: unexpected header `{header}`"
    );
    let mut model = Model {
        file: file.clone(),
        rows: Vec::new(),
        by_path: HashMap::new(),
        by_generic: HashMap::new(),
    };
    for (n, line) in lines.enumerate() {
        let f = csv_fields(line);
        assert_eq!(f.len(), 12, "{file}:{}: `{line}` has not 12 columns", n + 3);
        let bool_of = |s: &str| match s {
            "true" => true,
            "false" => false,
            other => panic!("{file}:{}: `{other}` is not a boolean", n + 3),
        };
        let row = Row {
            path: f[0].clone(),
            object: bool_of(&f[1]),
            writable: bool_of(&f[3]),
            value: f[5].clone(),
            vtype: f[6].clone(),
        };
        let i = model.rows.len();
        assert!(
            model.by_path.insert(row.path.clone(), i).is_none(),
            "{file}: `{}` twice",
            row.path
        );
        model
            .by_generic
            .entry(generic(&row.path))
            .or_default()
            .push(i);
        model.rows.push(row);
    }
    model
}

/// Family profile name → its model CSV.
const FAMILIES: &[(&str, &str)] = &[
    ("tplink-deco", "deco.csv"),
    ("tplink-tplg-ont", "tplg-ont.csv"),
    ("raisecom-rcmg-ont", "rcmg-ont.csv"),
];

fn models() -> &'static BTreeMap<&'static str, Model> {
    static MODELS: OnceLock<BTreeMap<&'static str, Model>> = OnceLock::new();
    MODELS.get_or_init(|| {
        FAMILIES
            .iter()
            .map(|&(name, csv)| (name, load_model(csv)))
            .collect()
    })
}

/// Vendor objects that carry no `X_` prefix: checked against the family
/// model like `X_` paths. (profile, generic prefix, why)
const UNPREFIXED_VENDOR: &[(&str, &str, &str)] = &[(
    "tplink-tplg-ont",
    "Device.Optical.Interface.{i}.GponAuth.",
    "TP-Link's GPON authentication object (GponSn = GPON serial in hex), not in TR-181",
)];

fn vendor_path(profile: &str, path: &str) -> bool {
    let g = generic(path);
    is_vendor(path)
        || UNPREFIXED_VENDOR
            .iter()
            .any(|(p, prefix, _)| *p == profile && g.starts_with(prefix))
}

// ---------------------------------------------------------------------------
// Profiles

struct Loaded {
    file: String,
    profile: Profile,
}

fn profiles() -> Vec<Loaded> {
    let loaded = Profiles::load(None).expect("built-in profiles load");
    let mut file_of = HashMap::new();
    for (file, text) in BUILTIN {
        let p = Profiles::parse(file, text).expect("built-in profile parses");
        file_of.insert(p.name, format!("device-profiles/{file}"));
    }
    loaded
        .all()
        .iter()
        .map(|p| Loaded {
            file: file_of
                .get(&p.name)
                .cloned()
                .unwrap_or_else(|| format!("(no built-in file for `{}`)", p.name)),
            profile: p.clone(),
        })
        .collect()
}

fn at(l: &Loaded, key: &str, path: &str) -> String {
    format!(
        "{} (profile `{}`): `{key}` = `{path}`",
        l.file, l.profile.name
    )
}

/// Keys whose paths the ACS writes (SetParameterValues). All SIP keys are
/// configuration; the rest (identity, optical, topology) are only read.
fn written(key: &str) -> bool {
    key.starts_with("sip.")
        || (key.starts_with("wifi[")
            && [".ssid", ".passphrase", ".enable"]
                .iter()
                .any(|s| key.ends_with(s)))
}

/// The types a written key may have (`sip.line_enable`: a TR-104 v1
/// enumeration string or a TR-104 v2 boolean, see `line_enable_value`).
fn expected_types(key: &str) -> &'static [&'static str] {
    if key.ends_with(".enable") {
        &["boolean"]
    } else if key.ends_with("_port") {
        &["unsignedInt"]
    } else if key == "sip.line_enable" {
        &["string", "boolean"]
    } else {
        &["string"]
    }
}

/// `line_enable_value` must suit the type of `line_enable`.
fn line_enable_value_fits(kind: &str, value: &str) -> bool {
    let boolean = matches!(value, "true" | "false" | "1" | "0");
    if kind == "boolean" { boolean } else { !boolean }
}

fn fail_if_any(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{what}: {} failure(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn every_profile_file_is_built_in_and_loads() {
    let mut on_disk = BTreeSet::new();
    for e in std::fs::read_dir(repo().join("device-profiles")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if Path::new(&name).extension().is_some_and(|x| x == "toml") {
            on_disk.insert(name);
        }
    }
    let built_in: BTreeSet<String> = BUILTIN.iter().map(|(f, _)| (*f).to_owned()).collect();
    assert_eq!(
        on_disk, built_in,
        "device-profiles/*.toml and profile::BUILTIN differ"
    );
    let loaded = profiles();
    assert_eq!(loaded.len(), BUILTIN.len());
    for l in &loaded {
        assert!(l.file.starts_with("device-profiles/"), "{}", l.file);
    }
    let names: BTreeSet<&str> = loaded.iter().map(|l| l.profile.name.as_str()).collect();
    for (family, csv) in FAMILIES {
        assert!(
            names.contains(family),
            "FAMILIES names `{family}` ({csv}), not a profile"
        );
    }
}

#[test]
fn reference_lists_hold_known_rows() {
    let r = refs();
    let expect = |list: &RefList, path: &str, kind: &str, access: &str| {
        let row = list.rows.get(path);
        assert_eq!(
            row.map(|(k, a)| (k.as_str(), a.as_str())),
            Some((kind, access)),
            "{}: `{path}`",
            list.file
        );
    };
    expect(&r.tr181, "Device.WiFi.SSID.{i}.", "object", "readWrite");
    expect(&r.tr181, "Device.WiFi.SSID.{i}.SSID", "string", "readWrite");
    expect(
        &r.tr181,
        "Device.WiFi.SSID.{i}.MACAddress",
        "string",
        "readOnly",
    );
    expect(
        &r.tr181,
        "Device.WiFi.SSID.{i}.Stats.BytesSent",
        "unsignedLong",
        "readOnly",
    );
    expect(
        &r.tr181,
        "Device.Optical.Interface.{i}.OpticalSignalLevel",
        "int",
        "readOnly",
    );
    expect(&r.tr181, "Device.Hosts.Host.{i}.", "object", "readOnly");
    expect(
        &r.tr098,
        "InternetGatewayDevice.LANDevice.{i}.WLANConfiguration.{i}.KeyPassphrase",
        "string",
        "readWrite",
    );
    expect(
        &r.tr098,
        "InternetGatewayDevice.LANDevice.{i}.Hosts.Host.{i}.IPAddress",
        "string",
        "readOnly",
    );
    for root in ["InternetGatewayDevice.", "Device."] {
        expect(
            &r.tr104v1,
            &format!("{root}Services.VoiceService.{{i}}.VoiceProfile.{{i}}.Line.{{i}}.Enable"),
            "string",
            "readWrite",
        );
    }
    expect(
        &r.tr104v2,
        "Device.Services.VoiceService.{i}.SIP.Client.{i}.AuthUserName",
        "string",
        "readWrite",
    );
    expect(
        &r.tr104v2,
        "Device.Services.VoiceService.{i}.SIP.Client.{i}.Enable",
        "boolean",
        "readWrite",
    );
    // Each list is mounted where the test looks for it.
    assert!(r.tr181.rows.keys().all(|p| p.starts_with("Device.")));
    assert!(
        r.tr098
            .rows
            .keys()
            .all(|p| p.starts_with("InternetGatewayDevice."))
    );
    assert!(
        r.tr104v2
            .rows
            .keys()
            .all(|p| p.starts_with("Device.Services.VoiceService.{i}."))
    );
    assert!(r.tr104v1.rows.keys().all(|p| {
        p.starts_with("Device.Services.VoiceService.{i}.")
            || p.starts_with("InternetGatewayDevice.Services.VoiceService.{i}.")
    }));
}

#[test]
fn standard_paths_exist_in_the_bbf_models() {
    let mut failures = Vec::new();
    for l in &profiles() {
        let p = &l.profile;
        for (key, path) in p.paths() {
            if vendor_path(&p.name, path) {
                continue;
            }
            let here = at(l, &key, path);
            let g = generic(path);
            let Some((file, (kind, access))) = lookup_standard(&p.root, &g) else {
                let lists: Vec<&str> = standard_lists(&p.root, &g).iter().map(|l| l.file).collect();
                let hint =
                    if !g.ends_with('.') && lookup_standard(&p.root, &format!("{g}.")).is_some() {
                        " (it is an object there: end it with a dot)"
                    } else {
                        ""
                    };
                failures.push(format!(
                    "{here}: `{g}` is not in {}{hint}",
                    lists.join(" / ")
                ));
                continue;
            };
            if path.ends_with('.') != (kind == "object") {
                failures.push(format!(
                    "{here}: {file} has `{g}` as {kind}; the profile names it as {}",
                    if path.ends_with('.') {
                        "an object"
                    } else {
                        "a parameter"
                    }
                ));
                continue;
            }
            if !written(&key) {
                continue;
            }
            if access != "readWrite" {
                failures.push(format!(
                    "{here}: the ACS writes it but {file} has it {access}"
                ));
            }
            if !expected_types(&key).contains(&kind.as_str()) {
                failures.push(format!(
                    "{here}: {file} types it {kind}, expected {:?}",
                    expected_types(&key)
                ));
            }
            if key == "sip.line_enable" {
                let v = p
                    .sip
                    .as_ref()
                    .and_then(|s| s.line_enable_value.as_deref())
                    .unwrap_or("");
                if !line_enable_value_fits(kind, v) {
                    failures.push(format!(
                        "{here}: line_enable_value `{v}` does not suit its type {kind} ({file})"
                    ));
                }
            }
        }
    }
    fail_if_any("standard paths vs device-profiles/data-models", &failures);
}

#[test]
fn vendor_paths_exist_in_the_family_models() {
    let mut failures = Vec::new();
    let mut unprefixed_used = BTreeSet::new();
    for l in &profiles() {
        let p = &l.profile;
        for (key, path) in p.paths() {
            if !vendor_path(&p.name, path) {
                continue;
            }
            let here = at(l, &key, path);
            let g = generic(path);
            if !is_vendor(path) {
                unprefixed_used.insert(p.name.clone());
            }
            let Some(model) = models().get(p.name.as_str()) else {
                failures.push(format!("{here}: a vendor path in a profile without a family model (generic profiles name standard paths only)"));
                continue;
            };
            let rows = model.generic_rows(g.trim_end_matches('.'));
            if rows.is_empty() {
                failures.push(format!("{here}: `{g}` is not in {}", model.file));
                continue;
            }
            if let Some(r) = rows.iter().find(|r| r.object != path.ends_with('.')) {
                failures.push(format!(
                    "{here}: {} has `{}` as {}; the profile names it as {}",
                    model.file,
                    r.path,
                    if r.object { "an object" } else { "a parameter" },
                    if path.ends_with('.') {
                        "an object"
                    } else {
                        "a parameter"
                    }
                ));
                continue;
            }
            if !written(&key) {
                continue;
            }
            for r in &rows {
                if !r.writable {
                    failures.push(format!(
                        "{here}: the ACS writes it but {} has `{}` Writable=false",
                        model.file, r.path
                    ));
                }
                let kind = r.vtype.trim_start_matches("xsd:");
                if !expected_types(&key).contains(&kind) {
                    failures.push(format!(
                        "{here}: {} types `{}` {}, expected {:?}",
                        model.file,
                        r.path,
                        r.vtype,
                        expected_types(&key)
                    ));
                }
                if key == "sip.line_enable" {
                    let v = p
                        .sip
                        .as_ref()
                        .and_then(|s| s.line_enable_value.as_deref())
                        .unwrap_or("");
                    if !line_enable_value_fits(kind, v) {
                        failures.push(format!(
                            "{here}: line_enable_value `{v}` does not suit {} `{}` ({})",
                            model.file, r.path, r.vtype
                        ));
                    }
                }
            }
        }
    }
    for (profile, prefix, why) in UNPREFIXED_VENDOR {
        assert!(
            lookup_standard("Device.", &format!("{prefix}{{i}}.")).is_none()
                && refs().tr181.rows.keys().all(|k| !k.starts_with(prefix)),
            "UNPREFIXED_VENDOR `{prefix}` ({why}) is standard after all"
        );
        assert!(
            unprefixed_used.contains(*profile),
            "UNPREFIXED_VENDOR `{prefix}` is no longer used by `{profile}`: remove it"
        );
    }
    fail_if_any("vendor paths vs simulators/models", &failures);
}

/// The planner's own view (`Profile::writable`) of every path the ACS
/// writes, and what the real device (the family's export) says about the
/// standard ones.
#[test]
fn written_paths_are_writable_on_the_family_device() {
    let mut failures = Vec::new();
    for l in &profiles() {
        let p = &l.profile;
        for (key, path) in p.paths() {
            if !written(&key) {
                continue;
            }
            let here = at(l, &key, path);
            if !p.writable(&path.replace("{line}", "1")) {
                failures.push(format!(
                    "{here}: the ACS writes it but it is under `never_write`"
                ));
            }
            // Vendor paths: checked by `vendor_paths_exist_in_the_family_models`.
            let Some(model) = models().get(p.name.as_str()) else {
                continue;
            };
            if vendor_path(&p.name, path) {
                continue;
            }
            let rows = model.generic_rows(&generic(path));
            if rows.is_empty() {
                failures.push(format!("{here}: not in {}", model.file));
            }
            for r in rows {
                // Backhaul instances are never written: their writability does not matter.
                if !r.writable && p.writable(&r.path) {
                    failures.push(format!(
                        "{here}: {} has `{}` Writable=false",
                        model.file, r.path
                    ));
                }
            }
        }
    }
    fail_if_any("written paths vs the family devices", &failures);
}

#[test]
fn management_server_writes_are_standard() {
    // (leaf, written by the ACS)
    const LEAVES: &[(&str, bool)] = &[
        ("PeriodicInformEnable", true),
        ("PeriodicInformInterval", true),
        ("ConnectionRequestUsername", true),
        ("ConnectionRequestPassword", true),
        ("ParameterKey", false),
    ];
    let mut failures = Vec::new();
    for l in &profiles() {
        let p = &l.profile;
        for &(leaf, write) in LEAVES {
            let path = p.management(leaf);
            let here = at(l, "(root) ManagementServer", &path);
            match lookup_standard(&p.root, &path) {
                None => failures.push(format!("{here}: not standard")),
                Some((file, (_, access))) if write && access != "readWrite" => {
                    failures.push(format!("{here}: {file} has it {access}"));
                }
                Some(_) => {}
            }
            if let Some(model) = models().get(p.name.as_str()) {
                match model.get(&path) {
                    None => failures.push(format!("{here}: not in {}", model.file)),
                    Some(r) if write && !r.writable => {
                        failures.push(format!("{here}: {} has it Writable=false", model.file));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    fail_if_any("ManagementServer paths", &failures);
}

/// A mesh backhaul network's name: a hash, not a name a person chose.
fn hashed(ssid: &str) -> bool {
    ssid.len() >= 16 && ssid.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `Device.WiFi.SSID.{n}.` instances and `Device.WiFi.AccessPoint.{m}.`
/// the model marks as backhaul, as never_write prefixes; failures for any
/// inconsistency inside the model.
fn derived_backhaul(model: &Model, failures: &mut Vec<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut ssids = BTreeSet::new();
    for r in model.generic_rows("Device.WiFi.AccessPoint.{i}.X_TP_APType") {
        if r.value != "Backhaul" {
            continue;
        }
        let ap = r.path.trim_end_matches("X_TP_APType");
        let reference = model.value(&format!("{ap}SSIDReference")).unwrap_or("");
        if !reference.starts_with("Device.WiFi.SSID.")
            || model.get(reference.trim_end_matches('.')).is_none()
        {
            failures.push(format!(
                "{}: backhaul `{ap}` has SSIDReference `{reference}`, not an SSID in the model",
                model.file
            ));
            continue;
        }
        let name = model.value(&format!("{reference}SSID")).unwrap_or("");
        if !hashed(name) {
            failures.push(format!(
                "{}: backhaul `{reference}SSID` is `{name}`, not a hashed name",
                model.file
            ));
        }
        out.insert(ap.to_owned());
        out.insert(reference.to_owned());
        ssids.insert(reference.to_owned());
    }
    // EasyMesh's own view: each backhaul AP's BSSID is a backhaul SSID's BSSID.
    let mut multiap = BTreeSet::new();
    for r in model.generic_rows("Device.WiFi.MultiAP.APDevice.{i}.Radio.{i}.AP.{i}.X_TP_Type") {
        if r.value != "Backhaul" {
            continue;
        }
        let ap = r.path.trim_end_matches("X_TP_Type");
        let bssid = model.value(&format!("{ap}BSSID")).unwrap_or("");
        let name = model.value(&format!("{ap}SSID")).unwrap_or("");
        let found = model
            .generic_rows("Device.WiFi.SSID.{i}.BSSID")
            .into_iter()
            .find(|s| !bssid.is_empty() && s.value.eq_ignore_ascii_case(bssid));
        match found {
            Some(s) => {
                let ssid = s.path.trim_end_matches("BSSID").to_owned();
                if model.value(&format!("{ssid}SSID")) != Some(name) {
                    failures.push(format!(
                        "{}: MultiAP `{ap}` SSID `{name}` differs from `{ssid}SSID`",
                        model.file
                    ));
                }
                multiap.insert(ssid);
            }
            None => failures.push(format!(
                "{}: MultiAP backhaul `{ap}` BSSID `{bssid}` is no Device.WiFi.SSID's",
                model.file
            )),
        }
    }
    if !multiap.is_empty() && multiap != ssids {
        failures.push(format!(
            "{}: backhaul SSIDs by AccessPoint X_TP_APType {ssids:?} and by MultiAP X_TP_Type {multiap:?} differ",
            model.file
        ));
    }
    out
}

#[test]
fn never_write_is_exactly_the_backhaul() {
    let mut failures = Vec::new();
    for l in &profiles() {
        let p = &l.profile;
        let listed: BTreeSet<String> = p.never_write.iter().cloned().collect();
        let Some(model) = models().get(p.name.as_str()) else {
            if !listed.is_empty() {
                failures.push(format!("{} (profile `{}`): `never_write` {listed:?} with no family model to check it against", l.file, p.name));
            }
            continue;
        };
        for path in &listed {
            let here = at(l, "never_write", path);
            match model.get(path.trim_end_matches('.')) {
                Some(r) if r.object && path.ends_with('.') => {}
                Some(_) => failures.push(format!("{here}: not an object prefix in {}", model.file)),
                None => failures.push(format!("{here}: not in {}", model.file)),
            }
        }
        let derived = derived_backhaul(model, &mut failures);
        for missing in derived.difference(&listed) {
            failures.push(format!(
                "{} (profile `{}`): `never_write` lacks `{missing}`, a backhaul network in {}",
                l.file, p.name, model.file
            ));
        }
        for extra in listed.difference(&derived) {
            failures.push(format!(
                "{} (profile `{}`): `never_write` = `{extra}` is not a backhaul network in {}",
                l.file, p.name, model.file
            ));
        }
    }
    // The Deco export's backhaul, spelled out (a regression guard on the derivation).
    let deco = &models()["tplink-deco"];
    for n in 9..=12 {
        let name = deco
            .value(&format!("Device.WiFi.SSID.{n}.SSID"))
            .unwrap_or("");
        assert!(
            hashed(name),
            "deco.csv: Device.WiFi.SSID.{n}.SSID = `{name}` is not a hashed backhaul name"
        );
        assert_eq!(
            deco.value(&format!("Device.WiFi.AccessPoint.{n}.X_TP_APType")),
            Some("Backhaul")
        );
    }
    fail_if_any("never_write vs the models' backhaul", &failures);
}

/// The instance number right after `prefix` in `path`.
fn instance_after<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)?.split('.').next()
}

#[test]
fn wifi_bands_are_one_network_on_the_right_radio() {
    let mut failures = Vec::new();
    for l in &profiles() {
        let p = &l.profile;
        let model = models().get(p.name.as_str());
        for (i, w) in p.wifi.iter().enumerate() {
            let here = at(l, &format!("wifi[{i}]"), &w.ssid);
            if p.root == "InternetGatewayDevice." {
                // SSID, passphrase and enable of one WLANConfiguration.
                let wlan = |path: &str| {
                    let at = path.find(".WLANConfiguration.")? + ".WLANConfiguration.".len();
                    let n = instance_after(path, &path[..at])?;
                    Some(format!("{}{n}.", &path[..at]))
                };
                let base = wlan(&w.ssid);
                for other in [w.passphrase.as_ref(), w.psk.as_ref(), w.enable.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    if base.is_none() || wlan(other) != base {
                        failures.push(format!(
                            "{here}: `{other}` is not under the SSID's WLANConfiguration {base:?}"
                        ));
                    }
                }
                // The channel tells the band (1–14: 2.4 GHz; 32 and up: 5 GHz).
                if let (Some(m), Some(base)) = (model, &base) {
                    let ch: Option<u32> = m
                        .value(&format!("{base}Channel"))
                        .and_then(|v| v.parse().ok());
                    let band = ch.map(|c| if c <= 14 { "2.4" } else { "5" });
                    if band != Some(w.band.as_str()) {
                        failures.push(format!(
                            "{here}: {} has `{base}Channel` {ch:?}, not a {} GHz channel",
                            m.file, w.band
                        ));
                    }
                }
                continue;
            }
            let passphrase = w.passphrase.as_deref().unwrap_or("");
            let (Some(n), Some(ap)) = (
                instance_after(&w.ssid, "Device.WiFi.SSID."),
                instance_after(passphrase, "Device.WiFi.AccessPoint."),
            ) else {
                failures.push(format!("{here}: expected Device.WiFi.SSID.{{n}}.… and Device.WiFi.AccessPoint.{{m}}.…, got `{passphrase}`"));
                continue;
            };
            if let Some(e) = &w.enable {
                let same = instance_after(e, "Device.WiFi.SSID.") == Some(n)
                    || instance_after(e, "Device.WiFi.AccessPoint.") == Some(ap);
                if !same {
                    failures.push(format!(
                        "{here}: enable `{e}` is not SSID.{n} or AccessPoint.{ap}"
                    ));
                }
            }
            let Some(m) = model else { continue };
            let reference = m
                .value(&format!("Device.WiFi.AccessPoint.{ap}.SSIDReference"))
                .unwrap_or("");
            if reference != format!("Device.WiFi.SSID.{n}.") {
                failures.push(format!("{here}: passphrase `{passphrase}` is on AccessPoint.{ap}, whose SSIDReference in {} is `{reference}`", m.file));
            }
            let radio = m
                .value(&format!("Device.WiFi.SSID.{n}.LowerLayers"))
                .unwrap_or("");
            let freq = m
                .value(&format!("{radio}OperatingFrequencyBand"))
                .unwrap_or("");
            if freq != format!("{}GHz", w.band) {
                failures.push(format!("{here}: SSID.{n} is on `{radio}` whose OperatingFrequencyBand in {} is `{freq}`, not {} GHz", m.file, w.band));
            }
        }
    }
    fail_if_any("WiFi bands", &failures);
}

#[test]
fn generic_maps_instances() {
    assert_eq!(
        generic("Device.WiFi.SSID.12.SSID"),
        "Device.WiFi.SSID.{i}.SSID"
    );
    assert_eq!(
        generic("Device.IP.Interface.*.IPv4Address.*.IPAddress"),
        "Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress"
    );
    assert_eq!(generic("A.Line.{line}.SIP.URI"), "A.Line.{i}.SIP.URI");
    assert_eq!(generic("Device.Hosts.Host."), "Device.Hosts.Host.");
    assert_eq!(
        generic("Device.X_TP_GPON.Link.1"),
        "Device.X_TP_GPON.Link.{i}"
    );
    assert!(is_vendor(
        "InternetGatewayDevice.DeviceInfo.X_CT-COM_MACAddress"
    ));
    assert!(!is_vendor("Device.WiFi.SSID.1.SSID"));
    assert_eq!(
        csv_fields(r#"a,true,,"x,""y""",z"#),
        ["a", "true", "", "x,\"y\"", "z"]
    );
}

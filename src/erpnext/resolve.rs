//! Which `Service Equipment` record is this device?
//!
//! The keys are tried from the strongest to the weakest:
//!
//! 1. `known_name`, the record this device was matched to before (a direct
//!    GET). If the record is gone, go on with the next key.
//! 2. `custom_cwmp_serial` equal to the serial the device uses in CWMP.
//! 3. The GPON serial, in `serial_number` or `custom_gpon_serial`, in the
//!    ASCII or the 16-hex form.
//! 4. The MACs the device reported (its own first, then its other
//!    interfaces'), each in `mac_address`, in any spelling.
//! 5. `serial_number` equal to the CWMP serial (a router's sticker serial;
//!    a GPON-form serial was already asked for in step 3).
//!
//! Keys the device does not have (no `known_name`, no GPON serial, an
//! empty CWMP serial, …) are skipped. Then:
//!
//! - the **first key that finds exactly one record wins**: [`Resolution::Found`];
//! - a key that finds **two or more** records stops the search:
//!   [`Resolution::Ambiguous`] with their names. A weaker key is not asked
//!   to break the tie, because it could only pick by accident (a retired
//!   record keeps its MAC); whatever the records' `status`, a human has to
//!   clean the data;
//! - a key that finds nothing passes to the next one;
//! - no key finds anything: [`Resolution::Unresolved`];
//! - an ERPNext error at any step is returned as is: going on with a weaker
//!   key while a stronger one could not be asked might pick the wrong
//!   record.

use super::{Equipment, ErpError, ErpNextClient, Lookup};

/// What the device told us about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceKeys<'a> {
    pub known_name: Option<&'a str>,
    pub cwmp_serial: &'a str,
    /// The device id (`OUI-ProductClass-Serial`): what GenieACS called
    /// `_id` and wrote into `custom_cwmp_serial` before this ACS, which
    /// writes the serial there.
    pub device_id: &'a str,
    pub gpon_serial: Option<&'a str>,
    /// Preferred first.
    pub macs: &'a [&'a str],
}

// One value per CWMP session: unboxed `Found` keeps the API plain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Resolution {
    Found(Equipment),
    Unresolved,
    /// The candidates' names, sorted.
    Ambiguous(Vec<String>),
}

/// The verdict of one lookup step.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Stop here with this resolution.
    Decided(Resolution),
    /// Nothing found: try the next key.
    Next,
}

/// The decision for one step's rows.
pub fn step(mut rows: Vec<Equipment>) -> Step {
    match rows.len() {
        0 => Step::Next,
        1 => match rows.pop() {
            Some(e) => Step::Decided(Resolution::Found(e)),
            None => Step::Next,
        },
        _ => {
            let mut names: Vec<String> = rows.into_iter().map(|e| e.name).collect();
            names.sort();
            names.dedup();
            Step::Decided(Resolution::Ambiguous(names))
        }
    }
}

/// The decision over the results of the steps, in order (pure: what
/// [`resolve`] does, minus the HTTP and minus asking lazily).
pub fn decide(steps: impl IntoIterator<Item = Vec<Equipment>>) -> Resolution {
    for rows in steps {
        if let Step::Decided(r) = step(rows) {
            return r;
        }
    }
    Resolution::Unresolved
}

/// The lookups to try, in order, for these keys.
pub fn lookups<'a>(keys: &DeviceKeys<'a>) -> Vec<Lookup<'a>> {
    let mut out = Vec::with_capacity(4);
    if let Some(n) = keys.known_name.filter(|n| !n.trim().is_empty()) {
        out.push(Lookup::Name(n));
    }
    if !keys.cwmp_serial.trim().is_empty() {
        out.push(Lookup::CwmpSerial(keys.cwmp_serial));
    }
    if !keys.device_id.trim().is_empty() && keys.device_id.trim() != keys.cwmp_serial.trim() {
        out.push(Lookup::CwmpSerial(keys.device_id));
    }
    if let Some(g) = keys.gpon_serial.filter(|g| !g.trim().is_empty()) {
        out.push(Lookup::GponSerial(g));
    }
    for m in keys.macs.iter().filter(|m| !m.trim().is_empty()) {
        if !out.contains(&Lookup::Mac(m)) {
            out.push(Lookup::Mac(m));
        }
    }
    if !keys.cwmp_serial.trim().is_empty() {
        out.push(Lookup::SerialNumber(keys.cwmp_serial));
    }
    out
}

/// Finds the device's record; see the module docs for the rules. Asks
/// ERPNext only as far as needed.
pub async fn resolve(
    client: &ErpNextClient,
    keys: &DeviceKeys<'_>,
) -> Result<Resolution, ErpError> {
    for lookup in lookups(keys) {
        let rows = client.find(lookup).await?;
        if let Step::Decided(r) = step(rows) {
            tracing::debug!(?lookup, resolution = ?short(&r), "ERPNext record resolved");
            return Ok(r);
        }
    }
    Ok(Resolution::Unresolved)
}

fn short(r: &Resolution) -> String {
    match r {
        Resolution::Found(e) => format!("found {}", e.name),
        Resolution::Unresolved => "unresolved".into(),
        Resolution::Ambiguous(n) => format!("ambiguous {}", n.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(name: &str, status: &str) -> Equipment {
        Equipment {
            status: Some(status.into()),
            ..Equipment::named(name)
        }
    }

    #[test]
    fn first_single_match_wins() {
        let r = decide([vec![], vec![eq("EQ-2", "Actif")], vec![eq("EQ-3", "Actif")]]);
        assert_eq!(r, Resolution::Found(eq("EQ-2", "Actif")));
        // The known name wins over everything else.
        let r = decide([
            vec![eq("EQ-1", "Actif")],
            vec![eq("EQ-2", "Actif"), eq("EQ-3", "Actif")],
        ]);
        assert_eq!(r, Resolution::Found(eq("EQ-1", "Actif")));
    }

    #[test]
    fn two_or_more_stop_the_search_whatever_the_status() {
        let r = decide([
            vec![],
            vec![eq("EQ-44", "Retourné"), eq("EQ-11", "Actif")],
            vec![eq("EQ-11", "Actif")],
        ]);
        assert_eq!(
            r,
            Resolution::Ambiguous(vec!["EQ-11".into(), "EQ-44".into()])
        );
    }

    #[test]
    fn nothing_anywhere_is_unresolved() {
        assert_eq!(
            decide([vec![], vec![], vec![], vec![]]),
            Resolution::Unresolved
        );
        assert_eq!(decide(Vec::<Vec<Equipment>>::new()), Resolution::Unresolved);
    }

    #[test]
    fn single_steps() {
        assert_eq!(step(vec![]), Step::Next);
        assert_eq!(
            step(vec![eq("EQ-1", "Actif")]),
            Step::Decided(Resolution::Found(eq("EQ-1", "Actif")))
        );
        assert_eq!(
            step(vec![
                eq("EQ-2", "Actif"),
                eq("EQ-1", "Actif"),
                eq("EQ-2", "Actif")
            ]),
            Step::Decided(Resolution::Ambiguous(vec!["EQ-1".into(), "EQ-2".into()]))
        );
    }

    #[test]
    fn lookup_order_skips_missing_keys() {
        let keys = DeviceKeys {
            known_name: Some("EQ-1"),
            cwmp_serial: "RCMG1A2B3C4D",
            device_id: "00E0FC-HT803G-RCMG1A2B3C4D",
            gpon_serial: Some("RCMG1A2B3C4D"),
            macs: &["aabbccddeeff", "aabbccddeef0", "aabbccddeeff"],
        };
        assert_eq!(
            lookups(&keys),
            vec![
                Lookup::Name("EQ-1"),
                Lookup::CwmpSerial("RCMG1A2B3C4D"),
                Lookup::CwmpSerial("00E0FC-HT803G-RCMG1A2B3C4D"),
                Lookup::GponSerial("RCMG1A2B3C4D"),
                Lookup::Mac("aabbccddeeff"),
                Lookup::Mac("aabbccddeef0"),
                Lookup::SerialNumber("RCMG1A2B3C4D"),
            ]
        );
        let keys = DeviceKeys {
            known_name: Some(" "),
            cwmp_serial: "",
            device_id: "",
            gpon_serial: None,
            macs: &["aabbccddeeff"],
        };
        assert_eq!(lookups(&keys), vec![Lookup::Mac("aabbccddeeff")]);
        assert_eq!(lookups(&DeviceKeys::default()), vec![]);
    }

    #[test]
    fn resolutions_serialise() {
        let r = Resolution::Ambiguous(vec!["EQ-11".into(), "EQ-44".into()]);
        let s = serde_json::to_string(&r).expect("ser");
        assert_eq!(serde_json::from_str::<Resolution>(&s).expect("de"), r);
    }
}

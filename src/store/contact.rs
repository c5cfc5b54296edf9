//! A device record is kept as two records: what every Inform changes (the
//! [`Contact`]: when, how many, the last event) and the rest. A periodic
//! session then writes a few dozen bytes instead of the whole record with
//! its recent events and identity, and the rest is rewritten only when it
//! changes (a boot, a new firmware, provisioning), which the store finds by
//! comparing bytes.
//!
//! The last event belongs to the contact because a run of periodic Informs
//! is one entry whose count and time change at each of them
//! (`session::apply_inform`); when another event follows, the run moves
//! into the rest with it.

use serde::{Deserialize, Serialize};

use super::{DeviceRecord, EventRecord};

/// What every Inform changes in a [`DeviceRecord`].
///
/// Stored without field names (a list): keep the order, new fields go
/// last with `#[serde(default)]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub last_inform_ms: u64,
    pub inform_count: u64,
    /// The newest of [`DeviceRecord::recent_events`].
    #[serde(default)]
    pub last_event: Option<EventRecord>,
}

/// Splits a record into the part written at every Inform and the rest.
/// The rest carries zeroes in the contact's fields, so that two records
/// which differ only there have the same bytes.
pub fn split(device: &DeviceRecord) -> (Contact, DeviceRecord) {
    let mut rest = device.clone();
    let contact = Contact {
        last_inform_ms: std::mem::take(&mut rest.last_inform_ms),
        inform_count: std::mem::take(&mut rest.inform_count),
        last_event: rest.recent_events.pop(),
    };
    (contact, rest)
}

/// The record [`split`] took apart. A record written whole (before
/// contacts existed, or by an older node sharing the database during an
/// upgrade) has a time of its own: when it is newer than the contact, it
/// is the whole record.
pub fn join(mut rest: DeviceRecord, contact: Option<Contact>) -> DeviceRecord {
    if let Some(c) = contact.filter(|c| c.last_inform_ms >= rest.last_inform_ms) {
        rest.last_inform_ms = c.last_inform_ms;
        rest.inform_count = c.inform_count;
        rest.recent_events.extend(c.last_event);
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cwmp::CwmpVersion;
    use crate::cwmp::rpc::DeviceIdStruct;

    fn device(events: usize, t: u64) -> DeviceRecord {
        let mut d = DeviceRecord::new("D".into(), DeviceIdStruct::default(), CwmpVersion::V1_0, 1);
        d.last_inform_ms = t;
        d.inform_count = t;
        d.software_version = Some("1.0".into());
        for i in 0..events as u64 {
            d.recent_events.push(EventRecord::new("1 BOOT", "", i));
        }
        d
    }

    #[test]
    fn join_undoes_split() {
        for events in [0, 1, 5] {
            let d = device(events, 77);
            let (contact, rest) = split(&d);
            assert_eq!(join(rest, Some(contact)), d);
        }
        let whole = device(3, 9);
        assert_eq!(join(whole.clone(), None), whole);
        // Written whole after the contact: the contact is stale.
        let (stale, _) = split(&device(3, 5));
        assert_eq!(join(whole.clone(), Some(stale)), whole);
    }

    #[test]
    fn a_check_in_leaves_the_rest_unchanged() {
        let mut before = device(3, 100);
        let mut run = EventRecord::new("2 PERIODIC", "", 100);
        run.count = 2;
        before.recent_events.push(run.clone());
        let mut after = before.clone();
        after.last_inform_ms = 160;
        after.inform_count += 1;
        run.count = 3;
        run.at_ms = 160;
        *after.recent_events.last_mut().unwrap() = run;
        assert_eq!(split(&before).1, split(&after).1);
        assert_ne!(split(&before).0, split(&after).0);
        // Anything else does change it.
        after.software_version = Some("1.1".into());
        assert_ne!(split(&before).1, split(&after).1);
    }
}

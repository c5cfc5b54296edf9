//! Live events for Ops: published once what they announce is durable, fanned
//! out to Server-Sent-Events subscribers (`GET /api/v1/events`) and to an
//! optional webhook ([`webhook`]).
//!
//! The bus is a bounded broadcast channel: a subscriber that falls behind
//! loses the oldest events (it is told how many) rather than slowing the
//! CWMP sessions that publish them.

pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::broadcast;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum EventKind {
    /// A device informed after being offline (or for the first time).
    #[serde(rename = "device.online")]
    DeviceOnline,
    /// A device informed with `0 BOOTSTRAP` (new or factory-reset).
    #[serde(rename = "device.bootstrap")]
    DeviceBootstrap,
    /// Provisioning verified the device's configuration.
    #[serde(rename = "device.provisioned")]
    DeviceProvisioned,
    /// A fault was recorded for a device.
    #[serde(rename = "device.fault")]
    DeviceFault,
    /// A task finished (done, failed or cancelled).
    #[serde(rename = "task.done")]
    TaskDone,
    /// An alarm was raised on a device (e.g. optical power out of range).
    #[serde(rename = "alarm.raised")]
    AlarmRaised,
    /// An alarm cleared itself (its cause went).
    #[serde(rename = "alarm.cleared")]
    AlarmCleared,
    /// A device reported a transfer it made on its own
    /// (AutonomousTransferComplete), with its fault if it failed.
    #[serde(rename = "device.transfer")]
    DeviceTransfer,
    /// A firmware campaign moved: created, a wave started, paused,
    /// resumed, halted (with the reason), done, aborted.
    #[serde(rename = "campaign.changed")]
    CampaignChanged,
    /// A device's rollout in a campaign ended (succeeded, failed, timed
    /// out, wrong version, skipped) or was retried.
    #[serde(rename = "campaign.device")]
    CampaignDevice,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::DeviceOnline,
        EventKind::DeviceBootstrap,
        EventKind::DeviceProvisioned,
        EventKind::DeviceFault,
        EventKind::TaskDone,
        EventKind::AlarmRaised,
        EventKind::AlarmCleared,
        EventKind::DeviceTransfer,
        EventKind::CampaignChanged,
        EventKind::CampaignDevice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DeviceOnline => "device.online",
            EventKind::DeviceBootstrap => "device.bootstrap",
            EventKind::DeviceProvisioned => "device.provisioned",
            EventKind::DeviceFault => "device.fault",
            EventKind::TaskDone => "task.done",
            EventKind::AlarmRaised => "alarm.raised",
            EventKind::AlarmCleared => "alarm.cleared",
            EventKind::DeviceTransfer => "device.transfer",
            EventKind::CampaignChanged => "campaign.changed",
            EventKind::CampaignDevice => "campaign.device",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An event not yet published: built where the change is applied,
/// published by the caller after the store sync.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub device_id: String,
    /// Details (no secrets: the API's masking rules apply to what goes in).
    pub data: serde_json::Value,
}

impl NewEvent {
    pub fn new(kind: EventKind, device_id: &str, data: serde_json::Value) -> NewEvent {
        NewEvent {
            kind,
            device_id: device_id.to_owned(),
            data,
        }
    }
}

/// A published event.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Increasing within one run of the ACS (the SSE `id:`).
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub device_id: String,
    /// RFC 3339 UTC.
    pub at: String,
    pub data: serde_json::Value,
    /// Published by another node (shown here; its webhook went from there).
    #[serde(skip)]
    pub remote: bool,
}

/// Events waiting for slow subscribers, at most.
const BUS_CAPACITY: usize = 4096;

/// The in-process fan-out.
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    next_id: AtomicU64,
    published: AtomicU64,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(BUS_CAPACITY);
        EventBus {
            tx,
            next_id: AtomicU64::new(1),
            published: AtomicU64::new(0),
        }
    }

    /// Publishes events (in order). Cheap when nobody listens.
    pub fn publish(&self, events: impl IntoIterator<Item = NewEvent>, now_ms: u64) {
        for e in events {
            self.published.fetch_add(1, Ordering::Relaxed);
            self.send(e.kind, e.device_id, now_ms, e.data, false);
        }
    }

    /// Publishes an event another node published (see
    /// [`crate::cluster`]); an unknown kind (a newer node) is skipped.
    pub fn publish_remote(
        &self,
        kind: &str,
        device_id: String,
        at_ms: u64,
        data: serde_json::Value,
    ) {
        if let Some(kind) = EventKind::parse(kind) {
            self.send(kind, device_id, at_ms, data, true);
        }
    }

    fn send(
        &self,
        kind: EventKind,
        device_id: String,
        at_ms: u64,
        data: serde_json::Value,
        remote: bool,
    ) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let event = Event {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            kind,
            device_id,
            at: crate::cwmp::format_datetime(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(at_ms),
            ),
            data,
            remote,
        };
        // Err only when every receiver went away meanwhile.
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Events published since start.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_events_in_order_with_ids() {
        let bus = EventBus::new();
        bus.publish(
            [NewEvent::new(
                EventKind::DeviceOnline,
                "A",
                serde_json::json!({}),
            )],
            0,
        );
        let mut rx = bus.subscribe();
        bus.publish(
            [
                NewEvent::new(EventKind::DeviceBootstrap, "A", serde_json::json!({})),
                NewEvent::new(EventKind::TaskDone, "A", serde_json::json!({"task_id": 3})),
            ],
            1_000,
        );
        let a = rx.recv().await.unwrap();
        let b = rx.recv().await.unwrap();
        assert_eq!(a.kind, EventKind::DeviceBootstrap);
        assert_eq!(b.kind, EventKind::TaskDone);
        assert!(b.id > a.id);
        assert_eq!(a.at, "1970-01-01T00:00:01Z");
        assert_eq!(bus.published(), 3);
        let json = serde_json::to_value(&*b).unwrap();
        assert_eq!(json["type"], "task.done");
    }

    #[test]
    fn kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(EventKind::parse("device.gone"), None);
    }
}

//! What the ACS forgets on a schedule: audit entries past their retention
//! (`audit_retention_days`) and console sessions past their expiry. One
//! node at a time does it when several share a store.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::{info, warn};

use super::{Acs, now_ms};

/// How often.
const EVERY: Duration = Duration::from_secs(3600);

/// Runs until the server stops; the first pass a minute after start.
pub async fn housekeeping(acs: Arc<Acs>, mut stop: watch::Receiver<bool>) {
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(60), EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let acs = acs.clone();
        let _ = tokio::task::spawn_blocking(move || once(&acs)).await;
    }
}

/// How often devices are checked for silence.
const SILENCE_EVERY: Duration = Duration::from_secs(300);

/// Raises the silence alarm of devices that stopped informing, every five
/// minutes, one node at a time.
pub async fn silence_watch(acs: Arc<Acs>, mut stop: watch::Receiver<bool>) {
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + SILENCE_EVERY, SILENCE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let a = acs.clone();
        let pass = tokio::task::spawn_blocking(move || {
            if !a.cluster.lead("silence", SILENCE_EVERY) {
                return Ok(Vec::new());
            }
            super::telemetry::silence_pass(&a, now_ms(SystemTime::now()))
        })
        .await;
        match pass {
            Ok(Ok(events)) if !events.is_empty() => {
                if let Err(e) = acs.store.sync().await {
                    warn!(error = %e, "making silence alarms durable failed");
                    continue;
                }
                acs.publish(events, now_ms(SystemTime::now()));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "checking devices for silence failed"),
            Err(e) => warn!(error = %e, "the silence check panicked"),
        }
    }
}

/// One pass.
pub fn once(acs: &Acs) {
    if !acs.cluster.lead("housekeeping", EVERY) {
        return;
    }
    let now = now_ms(SystemTime::now());
    let before = now.saturating_sub(acs.config.audit_retention.as_millis() as u64);
    let mut pruned = 0;
    loop {
        match acs.store.prune_audit(before) {
            Ok(0) => break,
            Ok(n) => pruned += n,
            Err(e) => {
                warn!(error = %e, "pruning the audit log failed");
                break;
            }
        }
    }
    if pruned > 0 {
        info!(
            entries = pruned,
            "audit entries past their retention removed"
        );
    }
    // Device histories need no pass: each series is expired and thinned
    // when its device is next read ([`crate::history`]).
    match acs.store.web_sessions() {
        Ok(all) => {
            let expired: Vec<String> = all
                .into_iter()
                .filter(|(_, s)| s.expires_ms <= now)
                .map(|(k, _)| k)
                .collect();
            if let Err(e) = acs.store.delete_web_sessions(&expired) {
                warn!(error = %e, "removing expired console sessions failed");
            }
        }
        Err(e) => warn!(error = %e, "reading console sessions failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditEntry, AuditFilter, Role, WebSession};

    #[test]
    fn old_audit_entries_and_expired_sessions_go_the_rest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (acs, store) = super::super::test_acs(dir.path(), |config| {
            config.audit_retention = Duration::from_secs(86_400);
        });

        let now = now_ms(SystemTime::now());
        let entry = |at_ms| AuditEntry {
            id: 0,
            at_ms,
            actor: "a".into(),
            role: Role::Admin,
            action: "x".into(),
            device_id: None,
            status: 200,
        };
        store.append_audit(entry(now - 2 * 86_400_000)).unwrap();
        let kept = store.append_audit(entry(now - 1000)).unwrap();
        let session = |expires_ms| WebSession {
            user: "a".into(),
            role: Role::Admin,
            csrf: "c".into(),
            created_ms: 0,
            expires_ms,
        };
        store.put_web_session("old", &session(now - 1)).unwrap();
        store
            .put_web_session("live", &session(now + 60_000))
            .unwrap();

        once(&acs);
        assert_eq!(store.audit(&AuditFilter::default(), 10).unwrap(), [kept]);
        let keys: Vec<String> = store
            .web_sessions()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["live"]);
    }
}

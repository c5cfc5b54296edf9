//! Firmware campaigns, pure: waves from a target, the maintenance window,
//! how a device's rollout ends, and what a campaign does next (halt,
//! advance, finish, whom to send the image). The service
//! (`app::campaigns`) reads the store, calls these, writes the result.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::store::{
    CampaignDevice, CampaignRecord, CampaignState, CampaignStop, CampaignWindow, DeviceRollout,
    TaskStatus,
};

/// What is wrong with a campaign's request.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum SpecError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// The waves as asked: cumulative percentages of the target, or counts.
#[derive(Clone, Debug, PartialEq)]
pub enum Waves {
    Percent(Vec<f64>),
    Counts(Vec<u64>),
}

/// Devices in each wave, for a target of `total` devices. Percentages
/// must rise to 100; counts must add up to the target. Every wave gets
/// at least one device (a 1 % first wave of 50 devices is one device).
pub fn wave_sizes(waves: &Waves, total: u64) -> Result<Vec<u64>, SpecError> {
    if total == 0 {
        return Err(invalid("target", "matches no device"));
    }
    match waves {
        Waves::Percent(p) => {
            if p.is_empty() || p.len() > 20 {
                return Err(invalid(
                    "waves",
                    "1 to 20 cumulative percentages, e.g. [1, 10, 50, 100]",
                ));
            }
            if p.windows(2).any(|w| w[1] <= w[0]) || p.iter().any(|x| !(*x > 0.0 && *x <= 100.0)) {
                return Err(invalid("waves", "percentages must rise, each in (0, 100]"));
            }
            if p.last() != Some(&100.0) {
                return Err(invalid(
                    "waves",
                    "the last wave must be 100 (% of the target)",
                ));
            }
            let mut sizes = Vec::new();
            let mut done = 0u64;
            for (i, pct) in p.iter().enumerate() {
                let left_waves = (p.len() - i - 1) as u64;
                let upto = ((total as f64 * pct / 100.0).ceil() as u64)
                    .max(done + 1)
                    .min(total.saturating_sub(left_waves));
                if upto <= done {
                    return Err(invalid(
                        "waves",
                        format!("{} waves for {total} devices: some would be empty", p.len()),
                    ));
                }
                sizes.push(upto - done);
                done = upto;
            }
            Ok(sizes)
        }
        Waves::Counts(c) => {
            if c.is_empty() || c.len() > 20 || c.contains(&0) {
                return Err(invalid("waves", "1 to 20 counts, none 0"));
            }
            let sum: u64 = c.iter().sum();
            if sum != total {
                return Err(invalid(
                    "waves",
                    format!("the counts add up to {sum}, the target has {total} devices"),
                ));
            }
            Ok(c.clone())
        }
    }
}

/// `HH:MM` as minutes after midnight.
pub fn parse_clock(field: &'static str, s: &str) -> Result<u16, SpecError> {
    let bad = || invalid(field, format!("`{s}` is not a time like 01:00"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 || s.len() != 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Checks a time zone name against the bundled database.
pub fn check_time_zone(name: &str) -> Result<(), SpecError> {
    TimeZone::get(name).map(drop).map_err(|_| {
        invalid(
            "window.time_zone",
            format!("`{name}` is not a time zone such as America/Montreal"),
        )
    })
}

/// Whether `now_ms` falls in the window (no window: always). A window
/// whose end is before its start crosses midnight (23:00–04:00).
pub fn in_window(window: Option<&CampaignWindow>, now_ms: u64) -> bool {
    let Some(w) = window else {
        return true;
    };
    let Ok(tz) = TimeZone::get(&w.time_zone) else {
        return false;
    };
    let Ok(ts) = Timestamp::from_millisecond(now_ms as i64) else {
        return false;
    };
    let local = tz.to_datetime(ts);
    let minute = (local.hour() as u16) * 60 + local.minute() as u16;
    match w.start_min <= w.end_min {
        true => (w.start_min..w.end_min).contains(&minute),
        false => minute >= w.start_min || minute < w.end_min,
    }
}

/// What the ACS knows of a device whose Download is under way.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress<'a> {
    /// The Download task's status and fault, if the task still exists.
    pub task: Option<(TaskStatus, Option<(u32, &'a str)>)>,
    /// The version its last Inform reported.
    pub version: Option<&'a str>,
    /// When it last booted.
    pub last_boot_ms: Option<u64>,
}

/// How a device's rollout moves on, given its progress; `None` while it
/// is under way. A transfer fault is retried once (`Pending` again).
pub fn judge(
    row: &CampaignDevice,
    progress: &Progress<'_>,
    target_version: &str,
    stop: &CampaignStop,
    now_ms: u64,
) -> Option<(DeviceRollout, Option<String>)> {
    if row.status != DeviceRollout::Sent {
        return None;
    }
    let sent = row.sent_ms.unwrap_or(now_ms);
    let target_version = row.version.as_deref().unwrap_or(target_version);
    let booted_since = progress.last_boot_ms.is_some_and(|b| b >= sent);
    if let Some((TaskStatus::Failed, fault)) = progress.task {
        let detail = fault.map_or_else(
            || "the Download failed".to_owned(),
            |(code, msg)| format!("{code} {msg}"),
        );
        return Some(match row.attempts < 2 {
            true => (
                DeviceRollout::Pending,
                Some(format!("retrying after: {detail}")),
            ),
            false => (DeviceRollout::Failed, Some(detail)),
        });
    }
    let done = matches!(progress.task, Some((TaskStatus::Done, _)) | None);
    let on_target = progress.version == Some(target_version);
    // On the new version after a reboot or a completed transfer: done
    // (some CPEs report no TransferComplete, others no `1 BOOT`).
    if on_target && (booted_since || done) {
        return Some((DeviceRollout::Succeeded, None));
    }
    if done && booted_since {
        return Some((
            DeviceRollout::WrongVersion,
            Some(format!(
                "came back on {}",
                progress.version.unwrap_or("an unknown version")
            )),
        ));
    }
    let limit = u64::from(stop.back_online_minutes) * 60_000;
    if now_ms.saturating_sub(sent) > limit {
        let what = match progress.task {
            Some((TaskStatus::Done, _)) => "downloaded, but not back on the new version",
            _ => "no TransferComplete",
        };
        return Some((
            DeviceRollout::TimedOut,
            Some(format!(
                "{what} within {} minutes",
                stop.back_online_minutes
            )),
        ));
    }
    None
}

/// Counts of one wave.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WaveCounts {
    pub devices: u64,
    pub pending: u64,
    pub sent: u64,
    pub succeeded: u64,
    pub skipped: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub wrong_version: u64,
}

impl WaveCounts {
    pub fn add(&mut self, s: DeviceRollout) {
        self.devices += 1;
        *match s {
            DeviceRollout::Pending => &mut self.pending,
            DeviceRollout::Sent => &mut self.sent,
            DeviceRollout::Succeeded => &mut self.succeeded,
            DeviceRollout::Skipped => &mut self.skipped,
            DeviceRollout::Failed => &mut self.failed,
            DeviceRollout::TimedOut => &mut self.timed_out,
            DeviceRollout::WrongVersion => &mut self.wrong_version,
        } += 1;
    }

    pub fn failures(&self) -> u64 {
        self.failed + self.timed_out + self.wrong_version
    }

    pub fn finished(&self) -> u64 {
        self.devices - self.pending - self.sent
    }
}

/// Counts per wave.
pub fn counts(campaign: &CampaignRecord, rows: &[CampaignDevice]) -> Vec<WaveCounts> {
    let mut waves = vec![WaveCounts::default(); campaign.wave_sizes.len()];
    for r in rows {
        if let Some(w) = waves.get_mut(r.wave as usize) {
            w.add(r.status);
        }
    }
    waves
}

/// What a running campaign does next.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Next {
    /// Stop: a stop rule was exceeded (the reason).
    pub halt: Option<String>,
    /// The wave to roll out from now on, when it moved.
    pub advance_to: Option<u32>,
    /// Every wave is finished.
    pub done: bool,
    /// Devices to send the image now (in the current wave, pending, as many
    /// as `max_concurrent` leaves room for, and only inside the window).
    pub send: Vec<String>,
}

/// Decides what a running campaign does next from its rows (their
/// statuses already judged).
pub fn next(campaign: &CampaignRecord, rows: &[CampaignDevice], now_ms: u64) -> Next {
    let mut out = Next::default();
    if campaign.state != CampaignState::Running {
        return out;
    }
    let waves = counts(campaign, rows);
    let accepted = |i: usize| campaign.accepted_failures.get(i).copied().unwrap_or(0);
    let failures: u64 = waves
        .iter()
        .enumerate()
        .map(|(i, w)| w.failures().saturating_sub(accepted(i)))
        .sum();
    if let Some(max) = campaign.stop.max_failures {
        if failures > max {
            out.halt = Some(format!(
                "{failures} devices failed, more than max_failures {max}"
            ));
            return out;
        }
    }
    let mut wave = campaign.wave as usize;
    if let (Some(pct), Some(w)) = (campaign.stop.max_failure_percent, waves.get(wave)) {
        let failed = w.failures().saturating_sub(accepted(wave));
        let finished = (w.finished() - w.skipped).saturating_sub(accepted(wave));
        if finished > 0 {
            let share = failed as f64 * 100.0 / finished as f64;
            if share > pct {
                out.halt = Some(format!(
                    "wave {}: {failed} of {finished} devices failed ({share:.1} %), more than max_failure_percent {pct}",
                    wave + 1,
                ));
                return out;
            }
        }
    }
    // A wave is over when every device of it is.
    while waves
        .get(wave)
        .is_some_and(|w| w.pending == 0 && w.sent == 0)
    {
        if wave + 1 == waves.len() {
            out.done = true;
            return out;
        }
        wave += 1;
        out.advance_to = Some(wave as u32);
    }
    if !in_window(campaign.window.as_ref(), now_ms) {
        return out;
    }
    let in_flight = rows
        .iter()
        .filter(|r| r.status == DeviceRollout::Sent)
        .count();
    let room = (campaign.max_concurrent as usize).saturating_sub(in_flight);
    out.send = rows
        .iter()
        .filter(|r| r.status == DeviceRollout::Pending && r.wave as usize <= wave)
        .take(room)
        .map(|r| r.device_id.clone())
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn campaign(sizes: Vec<u64>) -> CampaignRecord {
        CampaignRecord {
            id: "c1".into(),
            name: "n".into(),
            file_id: "f".into(),
            version: "2.0".into(),
            target: serde_json::Value::Null,
            wave_sizes: sizes,
            window: None,
            max_concurrent: 2,
            stop: CampaignStop {
                max_failures: None,
                max_failure_percent: Some(20.0),
                back_online_minutes: 30,
            },
            state: CampaignState::Running,
            wave: 0,
            halt_reason: None,
            accepted_failures: Vec::new(),
            created_ms: 0,
            created_by: "ops".into(),
            finished_ms: None,
        }
    }

    fn row(i: u32, wave: u32, status: DeviceRollout) -> CampaignDevice {
        CampaignDevice {
            device_id: format!("D{i:03}"),
            campaign_id: "c1".into(),
            wave,
            status,
            attempts: 0,
            task_id: None,
            sent_ms: Some(0),
            version: None,
            finished_ms: None,
            detail: None,
        }
    }

    #[test]
    fn waves_from_percentages_and_counts() {
        let p = |v: &[f64]| Waves::Percent(v.to_vec());
        assert_eq!(
            wave_sizes(&p(&[1.0, 10.0, 50.0, 100.0]), 500).unwrap(),
            [5, 45, 200, 250]
        );
        assert_eq!(wave_sizes(&p(&[1.0, 10.0, 100.0]), 20).unwrap(), [1, 1, 18]);
        assert_eq!(wave_sizes(&p(&[100.0]), 3).unwrap(), [3]);
        assert!(
            wave_sizes(&p(&[10.0, 50.0]), 100).is_err(),
            "does not reach 100"
        );
        assert!(wave_sizes(&p(&[50.0, 10.0, 100.0]), 100).is_err());
        assert!(
            wave_sizes(&p(&[1.0, 2.0, 100.0]), 2).is_err(),
            "an empty wave"
        );
        assert!(wave_sizes(&p(&[100.0]), 0).is_err());
        assert_eq!(wave_sizes(&Waves::Counts(vec![2, 3]), 5).unwrap(), [2, 3]);
        let e = wave_sizes(&Waves::Counts(vec![2, 2]), 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("add up to 4") && e.contains("5 devices"), "{e}");
    }

    proptest! {
        #[test]
        fn waves_cover_the_target_exactly(total in 1u64..5000, cuts in proptest::collection::vec(1u32..100, 0..5)) {
            let mut p: Vec<f64> = cuts.into_iter().map(f64::from).collect();
            p.sort_by(|a, b| a.total_cmp(b));
            p.dedup();
            p.push(100.0);
            if let Ok(sizes) = wave_sizes(&Waves::Percent(p.clone()), total) {
                prop_assert_eq!(sizes.iter().sum::<u64>(), total);
                prop_assert!(sizes.iter().all(|s| *s > 0));
                prop_assert_eq!(sizes.len(), p.len());
            }
        }
    }

    #[test]
    fn the_window_is_local_time_and_may_cross_midnight() {
        let w = |start, end| CampaignWindow {
            start_min: start,
            end_min: end,
            time_zone: "America/Montreal".into(),
        };
        // 2026-12-06T07:30Z is 02:30 in Montréal (EST, UTC−5).
        let t = 1_796_542_200_000u64;
        assert!(in_window(Some(&w(60, 300)), t));
        assert!(!in_window(Some(&w(180, 300)), t));
        assert!(in_window(Some(&w(23 * 60, 180)), t), "23:00-03:00");
        assert!(!in_window(Some(&w(23 * 60, 120)), t));
        // 2026-07-06T06:30Z is 02:30 EDT (UTC−4).
        assert!(in_window(Some(&w(120, 180)), 1_783_319_400_000));
        assert!(in_window(None, t));
        assert_eq!(parse_clock("w", "01:00"), Ok(60));
        assert!(parse_clock("w", "24:00").is_err() && parse_clock("w", "1:00").is_err());
        assert!(check_time_zone("America/Montreal").is_ok());
        assert!(check_time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn a_device_succeeds_fails_once_then_for_good_or_times_out() {
        let stop = campaign(vec![1]).stop;
        let mut r = row(1, 0, DeviceRollout::Sent);
        r.sent_ms = Some(1_000);
        r.attempts = 1;
        let p = |task, version, boot| Progress {
            task,
            version,
            last_boot_ms: boot,
        };
        // Under way.
        assert_eq!(
            judge(
                &r,
                &p(Some((TaskStatus::Sent, None)), Some("1.0"), Some(10)),
                "2.0",
                &stop,
                5_000
            ),
            None
        );
        // Done and back on the new version.
        let ok = judge(
            &r,
            &p(Some((TaskStatus::Done, None)), Some("2.0"), Some(2_000)),
            "2.0",
            &stop,
            5_000,
        );
        assert_eq!(ok, Some((DeviceRollout::Succeeded, None)));
        // Back on the old one.
        let old = judge(
            &r,
            &p(Some((TaskStatus::Done, None)), Some("1.0"), Some(2_000)),
            "2.0",
            &stop,
            5_000,
        );
        assert_eq!(old.unwrap().0, DeviceRollout::WrongVersion);
        // Rebooted on the new version without a TransferComplete (some
        // CPEs): succeeded all the same.
        let quiet = judge(
            &r,
            &p(
                Some((TaskStatus::AwaitingCompletion, None)),
                Some("2.0"),
                Some(2_000),
            ),
            "2.0",
            &stop,
            5_000,
        );
        assert_eq!(quiet.unwrap().0, DeviceRollout::Succeeded);
        // Rebooted, transfer not reported, old version: still waiting.
        assert_eq!(
            judge(
                &r,
                &p(
                    Some((TaskStatus::AwaitingCompletion, None)),
                    Some("1.0"),
                    Some(2_000)
                ),
                "2.0",
                &stop,
                5_000
            ),
            None
        );
        // Done but not rebooted yet: waits.
        assert_eq!(
            judge(
                &r,
                &p(Some((TaskStatus::Done, None)), Some("1.0"), Some(10)),
                "2.0",
                &stop,
                5_000
            ),
            None
        );
        // A transfer fault: retried once, then failed for good.
        let f = judge(
            &r,
            &p(
                Some((TaskStatus::Failed, Some((9010, "Download failure")))),
                None,
                None,
            ),
            "2.0",
            &stop,
            5_000,
        );
        assert_eq!(f.as_ref().unwrap().0, DeviceRollout::Pending);
        r.attempts = 2;
        let f = judge(
            &r,
            &p(
                Some((TaskStatus::Failed, Some((9010, "Download failure")))),
                None,
                None,
            ),
            "2.0",
            &stop,
            5_000,
        );
        assert_eq!(
            f,
            Some((DeviceRollout::Failed, Some("9010 Download failure".into())))
        );
        // Silent past back_online_minutes.
        let t = judge(
            &r,
            &p(Some((TaskStatus::Sent, None)), None, None),
            "2.0",
            &stop,
            1_000 + 31 * 60_000,
        );
        assert_eq!(t.unwrap().0, DeviceRollout::TimedOut);
    }

    #[test]
    fn waves_advance_halt_and_finish() {
        use DeviceRollout::*;
        let mut c = campaign(vec![2, 3]);
        // Wave 1 pending: two sent at most.
        let rows = vec![
            row(0, 0, Pending),
            row(1, 0, Pending),
            row(2, 1, Pending),
            row(3, 1, Pending),
            row(4, 1, Pending),
        ];
        let n = next(&c, &rows, 0);
        assert_eq!(n.send, ["D000", "D001"]);
        assert_eq!(
            (n.advance_to, n.done, n.halt.is_none()),
            (None, false, true)
        );
        // One in flight: room for one, but wave 2 waits for wave 1.
        let rows = vec![
            row(0, 0, Sent),
            row(1, 0, Succeeded),
            row(2, 1, Pending),
            row(3, 1, Pending),
            row(4, 1, Pending),
        ];
        assert!(next(&c, &rows, 0).send.is_empty());
        // Wave 1 over: wave 2 starts.
        let rows = vec![
            row(0, 0, Succeeded),
            row(1, 0, Skipped),
            row(2, 1, Pending),
            row(3, 1, Pending),
            row(4, 1, Pending),
        ];
        let n = next(&c, &rows, 0);
        assert_eq!((n.advance_to, n.send.len()), (Some(1), 2));
        // Wave 2: 1 of 3 failed, 33 % > 20 %: halt, naming the wave.
        c.wave = 1;
        let rows = vec![
            row(0, 0, Succeeded),
            row(1, 0, Skipped),
            row(2, 1, Failed),
            row(3, 1, Succeeded),
            row(4, 1, Sent),
        ];
        let n = next(&c, &rows, 0);
        assert!(
            n.halt
                .as_deref()
                .unwrap()
                .starts_with("wave 2: 1 of 2 devices failed"),
            "{n:?}"
        );
        // Resumed with that failure accepted: goes on.
        c.accepted_failures = vec![0, 1];
        let n = next(&c, &rows, 0);
        assert!(n.halt.is_none(), "{n:?}");
        c.accepted_failures.clear();
        // All done.
        let rows = vec![
            row(0, 0, Succeeded),
            row(1, 0, Skipped),
            row(2, 1, Succeeded),
            row(3, 1, Succeeded),
            row(4, 1, Succeeded),
        ];
        assert!(next(&c, &rows, 0).done);
        // max_failures over the whole campaign.
        c.stop.max_failures = Some(0);
        c.stop.max_failure_percent = None;
        let rows = vec![row(0, 0, TimedOut), row(1, 0, Sent)];
        assert!(next(&c, &rows, 0).halt.unwrap().contains("max_failures 0"));
        // Not running: nothing.
        c.state = CampaignState::Paused;
        assert_eq!(next(&c, &rows, 0), Next::default());
    }
}

//! Firmware campaigns, the service: creating one (its target resolved,
//! its image checked, its devices placed in waves), and the loop that
//! moves running campaigns on ([`crate::firmware::campaign`] decides; this
//! reads and writes the store, queues Downloads, publishes events). One
//! node at a time runs the loop when several share a store.
//!
//! Why nothing is sent twice after a crash: a device's row goes to `Sent`
//! (durable) before its Download is queued, and a `Sent` row without a
//! task first looks for the task it may have queued before the crash
//! (by its command key) rather than queueing another.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{Acs, now_ms};
use crate::events::{EventKind, NewEvent};
use crate::firmware::campaign::{self, Progress, SpecError, Waves};
use crate::firmware::files;
use crate::store::{
    CampaignDevice, CampaignRecord, CampaignState, CampaignStop, CampaignWindow, DeviceRecord,
    DeviceRollout, FileRecord, StoreError, TaskRequest, TaskStatus,
};

/// How often running campaigns are moved on.
const EVERY: Duration = Duration::from_secs(2);

/// The command key of a campaign's Downloads (TransferComplete names it).
pub fn command_key(campaign_id: &str) -> String {
    format!("fw-{campaign_id}")
}

/// Which devices a campaign is for: every listed criterion must match
/// (model names, current versions and tags: any of the list; devices: by
/// id, then the other criteria still apply).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub model_names: Vec<String>,
    #[serde(default)]
    pub software_versions: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub devices: Vec<String>,
}

impl Target {
    fn is_empty(&self) -> bool {
        self.model_names.is_empty()
            && self.software_versions.is_empty()
            && self.tags.is_empty()
            && self.devices.is_empty()
    }

    fn matches(&self, d: &DeviceRecord) -> bool {
        let tags = &d.tags;
        let model = d.model_name.as_deref().unwrap_or(&d.identity.product_class);
        (self.model_names.is_empty()
            || self
                .model_names
                .iter()
                .any(|m| m.eq_ignore_ascii_case(model) || m == &d.identity.product_class))
            && (self.software_versions.is_empty()
                || d.software_version
                    .as_ref()
                    .is_some_and(|v| self.software_versions.contains(v)))
            && (self.tags.is_empty() || self.tags.iter().any(|t| tags.contains(t)))
            && (self.devices.is_empty() || self.devices.contains(&d.id))
    }
}

/// A campaign as asked for (`POST /api/v1/campaigns`).
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub name: String,
    pub file_id: String,
    pub target: Target,
    pub waves: Waves,
    pub window: Option<CampaignWindow>,
    pub max_concurrent: u32,
    pub stop: CampaignStop,
}

/// Why a campaign was not created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

fn bad(field: &'static str, reason: impl Into<String>) -> CreateError {
    CreateError::Spec(SpecError::Invalid {
        field,
        reason: reason.into(),
    })
}

/// Creates a campaign: checks its file (the bytes must still match their
/// SHA-256), resolves its target, refuses devices another active campaign
/// holds, places the rest in waves (by device id), marks those already on
/// the version skipped, and starts it.
pub async fn create(
    acs: &Arc<Acs>,
    spec: Spec,
    actor: &str,
) -> Result<CampaignRecord, CreateError> {
    if spec.target.is_empty() {
        return Err(bad(
            "target",
            "name model_names, software_versions, tags or devices: an empty target would be every device",
        ));
    }
    let (file, version) = usable_file(acs, &spec.file_id).await?;
    let store = acs.store.clone();
    let target = spec.target.clone();
    let matched = tokio::task::spawn_blocking(move || -> Result<Vec<DeviceRecord>, StoreError> {
        let mut out = Vec::new();
        crate::store::each_device(store.as_ref(), |d| {
            if target.matches(&d) {
                out.push(d);
            }
            Ok(())
        })?;
        Ok(out)
    })
    .await
    .map_err(|e| CreateError::Internal(e.to_string()))??;
    if let Some(missing) = spec
        .target
        .devices
        .iter()
        .find(|id| !matched.iter().any(|d| &d.id == *id))
    {
        return Err(bad(
            "target.devices",
            format!("device {missing} does not exist or does not match the other criteria"),
        ));
    }
    if matched.is_empty() {
        return Err(bad("target", "matches no device"));
    }
    // A device is in one active campaign at most.
    let mut active: HashSet<String> = HashSet::new();
    for c in acs.store.campaigns()? {
        if c.state.is_active() {
            active.insert(c.id);
        }
    }
    for d in &matched {
        if let Some(row) = acs.store.campaign_device(&d.id)? {
            if active.contains(&row.campaign_id) {
                return Err(CreateError::Conflict(format!(
                    "device {} is in campaign {}, still {}: abort it or wait for it to finish",
                    d.id,
                    row.campaign_id,
                    acs.store
                        .campaign(&row.campaign_id)?
                        .map_or("active", |c| state_name(c.state))
                )));
            }
        }
    }
    let sizes = campaign::wave_sizes(&spec.waves, matched.len() as u64)?;
    let now = now_ms(SystemTime::now());
    let id = files::new_id().map_err(CreateError::Internal)?[..12].to_owned();
    let mut rows = Vec::with_capacity(matched.len());
    let mut wave = 0u32;
    let mut left = sizes[0];
    for d in &matched {
        while left == 0 {
            wave += 1;
            left = sizes[wave as usize];
        }
        left -= 1;
        let on_target = d.software_version.as_deref() == Some(version.as_str());
        rows.push(CampaignDevice {
            device_id: d.id.clone(),
            campaign_id: id.clone(),
            wave,
            status: match on_target {
                true => DeviceRollout::Skipped,
                false => DeviceRollout::Pending,
            },
            attempts: 0,
            task_id: None,
            sent_ms: None,
            version: None,
            finished_ms: on_target.then_some(now),
            detail: on_target.then(|| format!("already on {version}")),
        });
    }
    let record = CampaignRecord {
        id: id.clone(),
        name: spec.name,
        file_id: file.id,
        version,
        target: serde_json::to_value(&spec.target).unwrap_or_default(),
        wave_sizes: sizes,
        window: spec.window,
        max_concurrent: spec.max_concurrent,
        stop: spec.stop,
        state: CampaignState::Running,
        wave: 0,
        halt_reason: None,
        accepted_failures: Vec::new(),
        created_ms: now,
        created_by: actor.to_owned(),
        finished_ms: None,
    };
    acs.store.put_campaign_devices(&rows)?;
    acs.store.put_campaign(&record)?;
    acs.store.sync().await?;
    info!(campaign = %id, devices = rows.len(), waves = record.wave_sizes.len(), "firmware campaign created");
    acs.publish(vec![changed(&record, "created")], now);
    Ok(record)
}

pub fn state_name(s: CampaignState) -> &'static str {
    match s {
        CampaignState::Running => "running",
        CampaignState::Paused => "paused",
        CampaignState::Halted => "halted",
        CampaignState::Done => "done",
        CampaignState::Aborted => "aborted",
    }
}

fn changed(c: &CampaignRecord, what: &str) -> NewEvent {
    NewEvent::new(
        EventKind::CampaignChanged,
        "",
        json!({
            "campaign": c.id,
            "name": c.name,
            "change": what,
            "state": state_name(c.state),
            "wave": c.wave + 1,
            "halt_reason": c.halt_reason,
        }),
    )
}

/// What an operator asks of a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Pause,
    /// Resume a paused or halted campaign. With a file (a fixed image),
    /// the devices that failed so far are sent it (their attempts start
    /// again); without, the failures so far are accepted and the stop
    /// rules count only new ones.
    Resume {
        file: Option<String>,
    },
    Abort,
}

impl Command {
    /// What the campaign is once done (`paused`...): messages and events.
    fn done_name(&self) -> &'static str {
        match self {
            Command::Pause => "paused",
            Command::Resume { .. } => "resumed",
            Command::Abort => "aborted",
        }
    }
}

/// Checks that a campaign may use `file_id` now: it exists, has a
/// version, and (served by the ACS) its bytes still match their SHA-256.
async fn usable_file(acs: &Arc<Acs>, file_id: &str) -> Result<(FileRecord, String), CreateError> {
    let file = acs
        .store
        .file(file_id)?
        .ok_or_else(|| bad("file", format!("no file {file_id} in /api/v1/files")))?;
    let version = file.version.clone().ok_or_else(|| {
        bad(
            "file",
            "the file has no `version`: the ACS could not tell a device that took it",
        )
    })?;
    if file.url.is_none() {
        let path = files::path(&acs.config.data_dir, &file.id);
        let (size, sha) = tokio::task::spawn_blocking(move || files::hash_on_disk(&path))
            .await
            .map_err(|e| CreateError::Internal(e.to_string()))?
            .map_err(|e| CreateError::Internal(format!("reading the file: {e}")))?;
        if size != file.size || sha != file.sha256 {
            return Err(bad(
                "file",
                format!(
                    "the stored image no longer matches its SHA-256 {} (found {sha}, {size} bytes): upload it again",
                    file.sha256
                ),
            ));
        }
    }
    Ok((file, version))
}

/// Pauses, resumes or aborts; the campaign as it is now. An abort
/// withdraws the Downloads not yet sent to their device.
pub async fn command(
    acs: &Arc<Acs>,
    id: &str,
    cmd: Command,
) -> Result<Option<CampaignRecord>, CreateError> {
    let Some(mut c) = acs.store.campaign(id)? else {
        return Ok(None);
    };
    let allowed = match (&cmd, c.state) {
        (Command::Pause, CampaignState::Running) => Some(CampaignState::Paused),
        (Command::Resume { .. }, CampaignState::Paused | CampaignState::Halted) => {
            Some(CampaignState::Running)
        }
        (Command::Abort, s) if s.is_active() => Some(CampaignState::Aborted),
        _ => None,
    };
    let Some(state) = allowed else {
        return Err(CreateError::Conflict(format!(
            "campaign {id} is {}: it cannot be {}",
            state_name(c.state),
            cmd.done_name()
        )));
    };
    let now = now_ms(SystemTime::now());
    if let Command::Resume { file } = &cmd {
        let rows = acs.store.campaign_devices(id)?;
        match file {
            Some(f) => {
                // A fixed image: those that failed get it, afresh.
                let (file, version) = usable_file(acs, f).await?;
                c.file_id = file.id;
                c.version = version;
                c.accepted_failures.clear();
                let again: Vec<CampaignDevice> = rows
                    .into_iter()
                    .filter(|r| r.status.is_failure())
                    .map(|mut r| {
                        r.status = DeviceRollout::Pending;
                        r.attempts = 0;
                        r.task_id = None;
                        r.finished_ms = None;
                        r.detail = Some(format!("failed before: {}", r.detail.unwrap_or_default()));
                        r
                    })
                    .collect();
                acs.store.put_campaign_devices(&again)?;
            }
            None => {
                c.accepted_failures = campaign::counts(&c, &rows)
                    .iter()
                    .map(campaign::WaveCounts::failures)
                    .collect();
            }
        }
    }
    c.state = state;
    if state == CampaignState::Running {
        c.halt_reason = None;
    }
    if state == CampaignState::Aborted {
        c.finished_ms = Some(now);
        for row in acs.store.campaign_devices(id)? {
            if row.status != DeviceRollout::Sent {
                continue;
            }
            if let Some(task) = row.task_id.and_then(|t| acs.store.task(t).ok().flatten()) {
                if task.status == TaskStatus::Pending {
                    let _ = super::service::withdraw_task(acs, &task).await;
                }
            }
        }
    }
    acs.store.put_campaign(&c)?;
    acs.store.sync().await?;
    let what = cmd.done_name();
    info!(campaign = %id, "firmware campaign {what}");
    acs.publish(vec![changed(&c, what)], now);
    Ok(Some(c))
}

/// Runs until the server stops.
pub async fn run(acs: Arc<Acs>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if !acs.cluster.lead("campaigns", EVERY * 3) {
            continue;
        }
        if let Err(e) = pass(&acs).await {
            warn!(error = %e, "moving firmware campaigns on failed");
        }
    }
}

/// One pass over the running campaigns.
pub async fn pass(acs: &Arc<Acs>) -> Result<(), StoreError> {
    let running: Vec<CampaignRecord> = acs
        .store
        .campaigns()?
        .into_iter()
        .filter(|c| c.state == CampaignState::Running)
        .collect();
    for c in running {
        step(acs, c).await?;
    }
    Ok(())
}

/// Judges a campaign's devices under way, then halts, advances, finishes
/// or sends the image to the next devices.
async fn step(acs: &Arc<Acs>, mut c: CampaignRecord) -> Result<(), StoreError> {
    let now = now_ms(SystemTime::now());
    let store = acs.store.clone();
    let mut rows = store.campaign_devices(&c.id)?;
    let mut events = Vec::new();
    let mut changed_rows = Vec::new();
    for row in rows.iter_mut().filter(|r| r.status == DeviceRollout::Sent) {
        let Some(task_id) = row.task_id else {
            continue;
        };
        let task = store.task(task_id)?;
        let device = store.device(&row.device_id)?;
        let fault = task
            .as_ref()
            .and_then(|t| t.fault.as_ref().map(|f| (f.code, f.message.as_str())));
        let progress = Progress {
            task: task.as_ref().map(|t| (t.status, fault)),
            version: device.as_ref().and_then(|d| d.software_version.as_deref()),
            last_boot_ms: device.as_ref().and_then(|d| d.last_boot_ms),
        };
        if let Some((status, detail)) = campaign::judge(row, &progress, &c.version, &c.stop, now) {
            row.status = status;
            row.detail = detail;
            if status.is_final() {
                row.finished_ms = Some(now);
            } else {
                row.task_id = None;
            }
            events.push(NewEvent::new(
                EventKind::CampaignDevice,
                &row.device_id,
                json!({"campaign": c.id, "status": status, "detail": row.detail, "wave": row.wave + 1}),
            ));
            changed_rows.push(row.clone());
        }
    }
    if !changed_rows.is_empty() {
        store.put_campaign_devices(&changed_rows)?;
    }
    // The window closed: Downloads not yet delivered wait for the next one
    // (a device that informs at noon is not upgraded then).
    if !campaign::in_window(c.window.as_ref(), now) {
        withdraw_undelivered(acs, &mut rows).await?;
    }
    let next = campaign::next(&c, &rows, now);
    if let Some(reason) = next.halt {
        c.state = CampaignState::Halted;
        warn!(campaign = %c.id, reason = %reason, "firmware campaign halted");
        c.halt_reason = Some(reason);
        store.put_campaign(&c)?;
        events.push(changed(&c, "halted"));
    } else if next.done {
        c.state = CampaignState::Done;
        c.finished_ms = Some(now);
        store.put_campaign(&c)?;
        info!(campaign = %c.id, "firmware campaign done");
        events.push(changed(&c, "done"));
    } else {
        if let Some(w) = next.advance_to {
            c.wave = w;
            store.put_campaign(&c)?;
            info!(campaign = %c.id, wave = w + 1, "firmware campaign: next wave");
            events.push(changed(&c, "wave"));
        }
        send(acs, &c, &rows, &next.send, now).await?;
    }
    if !events.is_empty() {
        store.sync().await?;
        acs.publish(events, now);
    }
    // Rows sent before a crash, whose task was never recorded.
    adopt_orphans(acs, &c, &rows, now).await
}

/// Withdraws the Downloads still waiting for their device (not yet sent
/// in a session); their rows go back to `Pending`, the attempt uncounted.
async fn withdraw_undelivered(
    acs: &Arc<Acs>,
    rows: &mut [CampaignDevice],
) -> Result<(), StoreError> {
    let mut back = Vec::new();
    for row in rows.iter_mut().filter(|r| r.status == DeviceRollout::Sent) {
        let Some(task) = row.task_id.and_then(|t| acs.store.task(t).ok().flatten()) else {
            continue;
        };
        if task.status != TaskStatus::Pending {
            continue;
        }
        if super::service::withdraw_task(acs, &task).await.is_ok() {
            row.status = DeviceRollout::Pending;
            row.attempts = row.attempts.saturating_sub(1);
            row.task_id = None;
            row.sent_ms = None;
            back.push(row.clone());
        }
    }
    if !back.is_empty() {
        info!(
            devices = back.len(),
            "firmware campaign window closed: undelivered Downloads withdrawn"
        );
        acs.store.put_campaign_devices(&back)?;
    }
    Ok(())
}

/// Sends the image to `devices`: each row `Sent` (durable) first, then
/// its Download queued and a connection request made.
async fn send(
    acs: &Arc<Acs>,
    c: &CampaignRecord,
    rows: &[CampaignDevice],
    devices: &[String],
    now: u64,
) -> Result<(), StoreError> {
    if devices.is_empty() {
        return Ok(());
    }
    let Some(file) = acs.store.file(&c.file_id)? else {
        warn!(campaign = %c.id, file = %c.file_id, "the campaign's file is gone: nothing sent");
        return Ok(());
    };
    let mut marked: Vec<CampaignDevice> = rows
        .iter()
        .filter(|r| devices.contains(&r.device_id))
        .cloned()
        .collect();
    for r in &mut marked {
        r.status = DeviceRollout::Sent;
        r.attempts += 1;
        r.sent_ms = Some(now);
        r.task_id = None;
        r.version = Some(c.version.clone());
    }
    acs.store.put_campaign_devices(&marked)?;
    acs.store.sync().await?;
    for r in &mut marked {
        queue(acs, c, &file, r, now).await?;
    }
    Ok(())
}

/// Queues the Download of one `Sent` row (if a task of the campaign is
/// already queued for the device, that one is adopted instead) and
/// records the task on the row.
async fn queue(
    acs: &Arc<Acs>,
    c: &CampaignRecord,
    file: &FileRecord,
    row: &mut CampaignDevice,
    now: u64,
) -> Result<(), StoreError> {
    let Some(device) = acs.store.device(&row.device_id)? else {
        return Ok(());
    };
    let key = command_key(&c.id);
    let existing = acs
        .store
        .tasks(&device.id)?
        .into_iter()
        .find(|t| {
            !t.status.is_finished()
                && matches!(&t.request, TaskRequest::Rpc(crate::cwmp::Body::Download(d)) if d.command_key == key)
        });
    let task_id = match existing {
        Some(t) => t.id,
        None => {
            let download = files::download(
                acs.provisioning.file_link_key(),
                file,
                &device.id,
                &key,
                now,
            );
            let request = TaskRequest::Rpc(download.into());
            super::service::queue_task(acs, &device, request, "download", true)
                .await?
                .0
                .id
        }
    };
    row.task_id = Some(task_id);
    acs.store.put_campaign_devices(std::slice::from_ref(row))?;
    Ok(())
}

async fn adopt_orphans(
    acs: &Arc<Acs>,
    c: &CampaignRecord,
    rows: &[CampaignDevice],
    now: u64,
) -> Result<(), StoreError> {
    let orphans: Vec<CampaignDevice> = rows
        .iter()
        .filter(|r| {
            r.status == DeviceRollout::Sent && r.task_id.is_none() && r.sent_ms != Some(now)
        })
        .cloned()
        .collect();
    if orphans.is_empty() || c.state != CampaignState::Running {
        return Ok(());
    }
    let Some(file) = acs.store.file(&c.file_id)? else {
        return Ok(());
    };
    for mut r in orphans {
        queue(acs, c, &file, &mut r, now).await?;
    }
    Ok(())
}

//! Zero-touch provisioning, the I/O side: which sessions provision, ERPNext's
//! answers within a time budget (so an ERPNext outage never slows a CWMP
//! session), and the durable queue of ERPNext write-backs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tracing::{debug, info, warn};

use crate::config::{Config, Secret};

use crate::erpnext::{
    DeviceKeys, Equipment, ErpConfig, ErpError, ErpNextClient, Lookup, Resolution, resolve,
};
use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::cluster::Cluster;
use crate::provision::datamodel::DataModelTree;
use crate::provision::flow::{DesiredOutcome, DesiredRequest, ReadIdentity, read_identity};
use crate::provision::plan::{
    Desired, ManagementConfig, PppConfig, SipConfig, SipServers, WifiConfig,
};
use crate::provision::profile::{Profile, Profiles};
use crate::provision::targets;
use crate::session::ProvisioningPolicy;
use crate::store::{DeviceRecord, NewFault, Store, StoreResult};

use crate::digest::hex;

/// File in the data dir holding the key of ParameterKey HMACs.
pub const KEY_FILE: &str = "provision-key";

/// Provisioning configuration and the ERPNext client.
pub struct Provisioning {
    pub erp: Option<ErpNextClient>,
    /// What sessions decide with (profiles, key, settings).
    pub policy: ProvisioningPolicy,
    retry_ms: u64,
    budget: Duration,
    /// Signs firmware download links: derived from the installation's key,
    /// so every node of a cluster makes and accepts the same links.
    file_link_key: hmac::Key,
}

/// Random letters and digits (connection-request passwords).
pub fn random_text(n: usize) -> String {
    let mut raw = vec![0u8; n];
    let _ = SystemRandom::new().fill(&mut raw);
    // Letters and digits only: every CPE's web UI accepts them.
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    raw.iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// The installation's HMAC key (it names applied configurations in
/// ParameterKey, so every node of a cluster must hold the same one): the
/// data dir's key file, created (mode 0600) on first start; on a shared
/// store, the key the cluster holds, which the first node gave it (its own
/// file's key, so a single box moved to PostgreSQL keeps its key).
fn load_key(dir: &Path, cluster: &dyn Cluster) -> Result<hmac::Key, String> {
    let path = dir.join(KEY_FILE);
    let local = match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => Some(text.trim().to_owned()),
        Ok(_) => return Err(format!("{} is too short to be a key", path.display())),
        Err(_) => None,
    };
    let fresh = || -> Result<String, String> {
        let mut raw = [0u8; 32];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| "the system random generator failed".to_owned())?;
        Ok(hex(&raw))
    };
    let text = match (local, cluster.shared()) {
        (Some(text), false) => text,
        (None, false) => {
            let text = fresh()?;
            write_key(&path, &text)?;
            text
        }
        (local, true) => {
            let candidate = match local {
                Some(t) => t,
                None => fresh()?,
            };
            cluster
                .shared_setting(KEY_FILE, candidate)
                .map_err(|e| format!("reading the shared provisioning key: {e}"))?
        }
    };
    Ok(hmac::Key::new(hmac::HMAC_SHA256, text.as_bytes()))
}

fn write_key(path: &Path, text: &str) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut f = options
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

impl Provisioning {
    pub fn new(config: &Config, cluster: &dyn Cluster) -> Result<Provisioning, String> {
        let profiles = Profiles::load(config.profiles_dir.as_deref()).map_err(|e| e.to_string())?;
        let erp = match &config.erpnext {
            None => None,
            Some(e) => Some(ErpNextClient::new(ErpConfig::from(e)).map_err(|e| e.to_string())?),
        };
        let s = &config.sip;
        let key = load_key(&config.data_dir, cluster)?;
        let file_link_key = crate::firmware::link::derive_key(&key);
        Ok(Provisioning {
            policy: ProvisioningPolicy {
                enabled: config.provisioning,
                erpnext: erp.is_some(),
                profiles: Arc::new(profiles),
                key: Arc::new(key),
                sip_servers: SipServers {
                    registrar: s.registrar.clone(),
                    registrar_port: s.registrar_port,
                    proxy: s.proxy.clone(),
                    proxy_port: s.proxy_port,
                    outbound_proxy: s.outbound_proxy.clone(),
                    outbound_proxy_port: s.outbound_proxy_port,
                    domain: s.domain.clone(),
                },
                periodic_interval_s: config.provision_periodic_interval_s,
                recheck_ms: config.provision_recheck.as_millis() as u64,
            },
            erp,
            retry_ms: config.provision_retry.as_millis() as u64,
            budget: config
                .erpnext
                .as_ref()
                .map_or(Duration::from_secs(2), |e| e.session_budget),
            file_link_key,
        })
    }

    /// The key of firmware download links ([`crate::firmware::link`]).
    pub fn file_link_key(&self) -> &hmac::Key {
        &self.file_link_key
    }

    pub fn retry_ms(&self) -> u64 {
        self.retry_ms
    }

    /// Whether provisioning runs at all (ACS_PROVISIONING).
    pub fn enabled(&self) -> bool {
        self.policy.enabled
    }

    /// The device's effective profile (its discovered data model, its
    /// family profile's quirks) and data model, from what is stored;
    /// `None` before its data model was discovered.
    pub fn effective_profile(
        &self,
        store: &dyn Store,
        catalog: &Catalog,
        device: &DeviceRecord,
        values: &BTreeMap<String, String>,
    ) -> StoreResult<Option<(Profile, Arc<DataModelTree>)>> {
        let Some(info) = &device.data_model else {
            return Ok(None);
        };
        let Some(tree) = catalog.load(store, &device.id, info)? else {
            return Ok(None);
        };
        let facts = crate::session::facts(device);
        let root = tree
            .root()
            .map(str::to_owned)
            .unwrap_or_else(|| facts.root.clone());
        let family = facts.family(&self.policy.profiles);
        let profile = targets::effective(&tree, values, family, &root);
        Ok(Some((profile, tree)))
    }

    /// Drops what the ERPNext client cached about a device, so that the
    /// next run reads ERPNext afresh (Ops reprovision).
    pub fn forget_cached(&self, device: &DeviceRecord) {
        let Some(client) = &self.erp else { return };
        let p = &device.provisioning;
        if let Some(name) = &p.equipment {
            client.invalidate(name);
        }
        let serial = &device.identity.serial_number;
        let mut lookups = vec![Lookup::CwmpSerial(serial), Lookup::SerialNumber(serial)];
        if let Some(m) = &p.mac {
            lookups.push(Lookup::Mac(m));
        }
        if let Some(g) = &p.gpon_serial {
            lookups.push(Lookup::GponSerial(g));
        }
        client.forget(&lookups);
    }

    /// What a full run would push now: ERPNext read now (within the
    /// session budget), planned against the cached values.
    pub async fn preview(
        &self,
        device: &DeviceRecord,
        profile: &Profile,
        tree: &DataModelTree,
        values: &BTreeMap<String, String>,
    ) -> Result<Preview, PreviewError> {
        let identity = read_identity(profile, values);
        let mut preview = Preview {
            equipment: None,
            customer: None,
            parameter_key: String::new(),
            changes: Vec::new(),
            invalid: Vec::new(),
            note: None,
        };
        let mut desired = if self.erp.is_some() {
            let req = DesiredRequest {
                identity: ReadIdentity {
                    mac: identity.mac.or(device.provisioning.mac.clone()),
                    gpon_serial: identity
                        .gpon_serial
                        .or(device.provisioning.gpon_serial.clone()),
                    other_macs: identity.other_macs,
                },
                check: None,
            };
            match self.answer(&req, device).await {
                DesiredOutcome::Found {
                    equipment, desired, ..
                } => {
                    preview.equipment = Some(equipment);
                    preview.customer = desired.customer.clone();
                    desired
                }
                DesiredOutcome::Unchanged => Desired::default(),
                DesiredOutcome::Unresolved => return Err(PreviewError::Unresolved),
                DesiredOutcome::Ambiguous(c) => return Err(PreviewError::Ambiguous(c)),
                DesiredOutcome::Unavailable(r) => return Err(PreviewError::Unavailable(r)),
                DesiredOutcome::Failed(r) => return Err(PreviewError::Failed(r)),
            }
        } else {
            preview.note = Some("ERPNext is not configured: only the ACS's own settings".into());
            Desired::default()
        };
        let p = &device.provisioning;
        desired.management = Some(ManagementConfig {
            periodic_interval_s: self.policy.periodic_interval_s,
            cr_username: p
                .cr_username
                .clone()
                .unwrap_or_else(|| device.identity.serial_number.clone()),
            // Not assigned yet: the run generates one (shown masked anyway).
            cr_password: Secret::new(p.cr_password.clone().unwrap_or_else(|| random_text(20))),
        });
        desired.sip_servers = self.policy.sip_servers.clone();
        preview.invalid = crate::provision::plan::validate(&desired);
        let key = crate::provision::plan::parameter_key(&self.policy.key, profile, &desired);
        let can_write = |n: &str| tree.can_write(n);
        if let Some(spv) =
            crate::provision::plan::plan_set(profile, &desired, values, &key, &can_write)
        {
            preview.changes = spv.parameters;
        }
        preview.parameter_key = key;
        Ok(preview)
    }

    /// ERPNext's answer for a flow, within the session budget.
    pub async fn answer(&self, req: &DesiredRequest, device: &DeviceRecord) -> DesiredOutcome {
        let Some(client) = &self.erp else {
            return DesiredOutcome::Unavailable("ERPNext is not configured (ERPNEXT_URL)".into());
        };
        // An open breaker makes the client fail at once (and lets a probe
        // through after the cooldown), so no check here.
        match tokio::time::timeout(self.budget, lookup(client, req, device)).await {
            Ok(outcome) => outcome,
            Err(_) => DesiredOutcome::Unavailable(format!(
                "ERPNext did not answer within {} ms",
                self.budget.as_millis()
            )),
        }
    }
}

/// What provisioning would push (values unmasked: the API masks them).
#[derive(Debug)]
pub struct Preview {
    pub equipment: Option<String>,
    pub customer: Option<String>,
    /// The ParameterKey the configuration would carry.
    pub parameter_key: String,
    /// Values that differ from the cached ones (secrets: sent whenever the
    /// device's ParameterKey differs).
    pub changes: Vec<crate::cwmp::ParameterValue>,
    /// ERPNext values that cannot be pushed.
    pub invalid: Vec<crate::provision::plan::InvalidValue>,
    pub note: Option<String>,
}

/// Why there is no preview.
#[derive(Debug)]
pub enum PreviewError {
    Unresolved,
    Ambiguous(Vec<String>),
    Unavailable(String),
    Failed(String),
}

fn erp_outcome(e: ErpError) -> DesiredOutcome {
    if e.is_unavailable() {
        DesiredOutcome::Unavailable(e.to_string())
    } else {
        DesiredOutcome::Failed(e.to_string())
    }
}

async fn lookup(
    client: &ErpNextClient,
    req: &DesiredRequest,
    device: &DeviceRecord,
) -> DesiredOutcome {
    if let Some((equipment, modified)) = &req.check {
        let rows = match client.find(Lookup::Name(equipment)).await {
            Ok(rows) => rows,
            Err(e) => return erp_outcome(e),
        };
        let Some(row) = rows.into_iter().next() else {
            return DesiredOutcome::Unresolved;
        };
        if row.modified.is_some() && row.modified == *modified {
            return DesiredOutcome::Unchanged;
        }
        return match desired(client, &row).await {
            Ok(d) => DesiredOutcome::Found {
                equipment: row.name.clone(),
                modified: row.modified.clone(),
                desired: d,
            },
            Err(e) => erp_outcome(e),
        };
    }
    let macs: Vec<&str> = req
        .identity
        .mac
        .iter()
        .chain(&req.identity.other_macs)
        .map(String::as_str)
        .collect();
    let keys = DeviceKeys {
        known_name: device.provisioning.equipment.as_deref(),
        cwmp_serial: &device.identity.serial_number,
        device_id: &device.id,
        gpon_serial: req.identity.gpon_serial.as_deref(),
        macs: &macs,
    };
    match resolve(client, &keys).await {
        Ok(Resolution::Found(row)) => match desired(client, &row).await {
            Ok(d) => DesiredOutcome::Found {
                equipment: row.name.clone(),
                modified: row.modified.clone(),
                desired: d,
            },
            Err(e) => erp_outcome(e),
        },
        Ok(Resolution::Unresolved) => DesiredOutcome::Unresolved,
        Ok(Resolution::Ambiguous(names)) => DesiredOutcome::Ambiguous(names),
        Err(e) => erp_outcome(e),
    }
}

/// The configuration a Service Equipment record asks for. Empty WiFi, SIP
/// or RADIUS (PPPoE) fields mean "leave the device's settings alone".
async fn desired(client: &ErpNextClient, eq: &Equipment) -> Result<Desired, ErpError> {
    let wifi = match eq.wifi_ssid.clone() {
        Some(ssid) => {
            let passphrase = if eq.has_wifi_password {
                client.password(&eq.name, "custom_wifi_password").await?
            } else {
                None
            };
            Some(WifiConfig {
                ssid_5g: eq.wifi_ssid_5g.clone().unwrap_or_else(|| ssid.clone()),
                ssid,
                passphrase,
                enabled: eq.wifi_enabled.unwrap_or(true),
            })
        }
        None => None,
    };
    let sip = match eq.sip_username.clone() {
        Some(username) => {
            let password = if eq.has_sip_password {
                client.password(&eq.name, "custom_sip_password").await?
            } else {
                None
            };
            Some(SipConfig {
                username,
                password,
                line: eq.sip_line.unwrap_or(1),
            })
        }
        None => None,
    };
    let ppp = match eq.radius_user.clone() {
        Some(username) => {
            let password = if eq.has_radius_password {
                client.password(&eq.name, "custom_radius_password").await?
            } else {
                None
            };
            Some(PppConfig { username, password })
        }
        None => None,
    };
    Ok(Desired {
        customer: eq.customer.clone(),
        wifi,
        sip,
        ppp,
        ..Desired::default()
    })
}

/// How long one node keeps the write-back job without renewing it.
const WRITEBACK_LEASE: Duration = Duration::from_secs(10);

/// Sends queued write-backs to ERPNext until the server stops: every few
/// seconds, and each one until ERPNext takes it (an outage only delays
/// them; they are in the store, so restarts do not lose them either).
/// Among nodes sharing a store, one drains at a time (a lease renewed
/// every pass; another node takes over when it lapses).
pub async fn writeback_loop(
    store: Arc<dyn Store>,
    prov: Arc<Provisioning>,
    cluster: Arc<dyn Cluster>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(client) = prov.erp.as_ref() else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let lead = {
            let cluster = cluster.clone();
            tokio::task::spawn_blocking(move || cluster.lead("erpnext-writeback", WRITEBACK_LEASE))
                .await
                .unwrap_or(false)
        };
        if !lead {
            continue;
        }
        let pending = match store.writebacks(100) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "reading ERPNext write-backs failed");
                continue;
            }
        };
        for mut w in pending {
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(w.at_ms);
            match client
                .mark_provisioned(&w.equipment, &w.cwmp_serial, at)
                .await
            {
                Ok(()) => {
                    info!(device = %w.device_id, equipment = %w.equipment, "ERPNext updated: Actif");
                    if let Err(e) = store.delete_writeback(&w.device_id) {
                        warn!(error = %e, "removing a done write-back failed");
                    }
                }
                Err(e) if e.is_unavailable() => {
                    debug!(error = %e, "ERPNext write-back deferred");
                    break;
                }
                Err(e) => {
                    w.attempts += 1;
                    let now = super::now_ms(SystemTime::now());
                    let _ = store.record_fault(NewFault {
                        device_id: w.device_id.clone(),
                        at_ms: now,
                        source: "erpnext",
                        code: 0,
                        message: format!("updating {} in ERPNext failed: {e}", w.equipment),
                        rpc: None,
                        task_id: None,
                    });
                    let result = if w.attempts >= 5 {
                        store.delete_writeback(&w.device_id)
                    } else {
                        store.put_writeback(&w)
                    };
                    if let Err(e) = result {
                        warn!(error = %e, "updating a write-back failed");
                    }
                }
            }
        }
        let _ = store.sync().await;
    }
}

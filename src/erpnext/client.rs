//! The HTTP side: Frappe REST v1 requests with timeouts, retries, the
//! circuit breaker and the cache.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::backoff::{Jitter, parse_retry_after, retry_delay};
use super::breaker::{Breaker, Refused};
use super::cache::TtlCache;
use super::frappe_error::{FrappeError, clean};
use super::query::{self, FIELDS, Key, ListQuery, PAGE_LENGTH};
use super::{Equipment, ErpConfig, ErpError, ErpStats, Lookup, SERVICE_EQUIPMENT};
use crate::config::Secret;

/// Upper bound of the connect timeout (the total timeout is the configured
/// one).
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Answers larger than this are refused (a list page is a few tens of kB).
pub const MAX_ANSWER_BYTES: usize = 4 << 20;
/// The status `mark_provisioned` sets.
pub const STATUS_ACTIVE: &str = "Actif";

/// The ERPNext client. Cheap to clone (the state is shared).
#[derive(Clone)]
pub struct ErpNextClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    api_key: String,
    timeout: Duration,
    max_attempts: u32,
    provisioned_at_field: String,
    breaker: Breaker,
    lookups: TtlCache<String, Vec<Equipment>>,
    /// Key: (lower-cased document name, field).
    passwords: TtlCache<(String, String), Option<Secret>>,
    jitter: Jitter,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    attempts: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    rejections: AtomicU64,
    cache_hits: AtomicU64,
    /// Microseconds + 1 (0 = no attempt yet).
    last_latency: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// An answer ERPNext gave (not 5xx/429: those are retried).
struct Answer {
    status: u16,
    body: Vec<u8>,
    location: Option<String>,
}

/// One attempt's result.
enum Outcome {
    Answer(Answer),
    /// Connection error, timeout, 5xx or 429: worth another attempt.
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl fmt::Debug for ErpNextClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErpNextClient")
            .field("url", &self.inner.base.as_str())
            .field("api_key", &self.inner.api_key)
            .field("breaker_open", &self.breaker_open())
            .finish_non_exhaustive()
    }
}

fn config_error(reason: impl Into<String>) -> ErpError {
    ErpError::Config {
        reason: reason.into(),
    }
}

/// The base URL, checked: http(s), a host, no credentials, query or
/// fragment.
fn parse_base_url(raw: &str) -> Result<Url, ErpError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| config_error(format!("url `{}` is not a URL: {e}", raw.trim())))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(format!(
            "url scheme must be http or https, not `{}`",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config_error("url has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo them: they may be credentials.
        return Err(config_error(
            "url must not contain credentials (use api_key / api_secret)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config_error("url must not have a query or a fragment"));
    }
    Ok(url)
}

fn valid_field_name(f: &str) -> bool {
    let mut chars = f.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) as Frappe writes a Datetime.
pub fn frappe_datetime(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

impl ErpNextClient {
    /// Checks the configuration and builds the HTTP client. No request is
    /// sent.
    pub fn new(cfg: ErpConfig) -> Result<ErpNextClient, ErpError> {
        let base = parse_base_url(&cfg.url)?;
        let key = cfg.api_key.trim();
        if key.is_empty() || key.contains(':') || key.chars().any(char::is_whitespace) {
            return Err(config_error(
                "api_key must be non-empty, without `:` or spaces",
            ));
        }
        if cfg.api_secret.is_empty() {
            return Err(config_error("api_secret is empty"));
        }
        if cfg.timeout.is_zero() {
            return Err(config_error("timeout must be positive"));
        }
        if cfg.max_attempts == 0 {
            return Err(config_error("max_attempts must be at least 1"));
        }
        if cfg.breaker_failures == 0 {
            return Err(config_error("breaker_failures must be at least 1"));
        }
        let field = cfg.provisioned_at_field.trim().to_string();
        if !valid_field_name(&field)
            || [
                "name",
                "status",
                "custom_cwmp_serial",
                "modified",
                "modified_by",
            ]
            .contains(&field.as_str())
        {
            return Err(config_error(format!(
                "provisioned_at_field `{field}` is not a usable field name"
            )));
        }
        let mut auth = HeaderValue::from_str(&format!("token {key}:{}", cfg.api_secret.expose()))
            .map_err(|_| {
            config_error("api_key or api_secret contains characters not allowed in an HTTP header")
        })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                crate::http_client::tls_config(base.scheme() == "https").map_err(config_error)?,
            )
            .default_headers(headers)
            .user_agent(concat!("gigafibre-acs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.timeout.min(MAX_CONNECT_TIMEOUT))
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| config_error(format!("HTTP client: {e}")))?;
        Ok(ErpNextClient {
            inner: Arc::new(Inner {
                http,
                base,
                api_key: key.to_string(),
                timeout: cfg.timeout,
                max_attempts: cfg.max_attempts,
                provisioned_at_field: field,
                breaker: Breaker::new(cfg.breaker_failures, cfg.breaker_cooldown),
                lookups: TtlCache::new(cfg.cache_ttl),
                passwords: TtlCache::new(cfg.cache_ttl),
                jitter: Jitter::new(),
                counters: Counters::default(),
            }),
        })
    }

    /// The `Service Equipment` records matching `lookup`, re-checked
    /// locally (see the module docs), sorted by name. An identifier that
    /// cannot match anything (empty, not a MAC / GPON serial) gives an empty
    /// list without a request; so does a name that does not exist.
    pub async fn find(&self, lookup: Lookup<'_>) -> Result<Vec<Equipment>, ErpError> {
        let Some(key) = Key::from_lookup(&lookup) else {
            return Ok(Vec::new());
        };
        let cache_key = key.cache_key();
        if let Some(rows) = self.inner.lookups.get(&cache_key) {
            bump(&self.inner.counters.cache_hits);
            return Ok(rows);
        }
        let fetched = match (&key, key.list_query()) {
            (Key::Name(name), _) => self.get_document(name).await,
            (_, Some(q)) => self.list(&key, &q).await,
            (_, None) => Ok(Vec::new()),
        };
        let mut rows: Vec<Equipment> = self
            .counted(fetched)?
            .into_iter()
            .filter(|e| key.matches(e))
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows.dedup_by(|a, b| a.name == b.name);
        self.inner.lookups.insert(cache_key, rows.clone());
        Ok(rows)
    }

    /// The clear value of a Password field (`custom_wifi_password`,
    /// `custom_sip_password`, …) of a `Service Equipment` record; `None`
    /// when none is set.
    pub async fn password(&self, name: &str, field: &str) -> Result<Option<Secret>, ErpError> {
        let cache_key = (name.trim().to_lowercase(), field.to_string());
        if let Some(p) = self.inner.passwords.get(&cache_key) {
            bump(&self.inner.counters.cache_hits);
            return Ok(p);
        }
        let result = self.fetch_password(name.trim(), field).await;
        let p = self.counted(result)?;
        self.inner.passwords.insert(cache_key, p.clone());
        Ok(p)
    }

    /// Records that the device was provisioned: a partial `PUT` of exactly
    /// `status` = `Actif`, `custom_cwmp_serial` and the provisioned-at
    /// field (`at` in UTC, `YYYY-MM-DD HH:MM:SS`). The record's cached
    /// lookups and passwords are dropped, whatever the outcome.
    ///
    /// A retried `PUT` (after a timeout or a 5xx) is harmless: it sets the
    /// same values again.
    pub async fn mark_provisioned(
        &self,
        name: &str,
        cwmp_serial: &str,
        at: SystemTime,
    ) -> Result<(), ErpError> {
        let name = name.trim();
        let result = self.put_provisioned(name, cwmp_serial, at).await;
        self.invalidate(name);
        if let Some(k) = Key::from_lookup(&Lookup::CwmpSerial(cwmp_serial)) {
            self.inner.lookups.remove(&k.cache_key());
        }
        self.counted(result)
    }

    /// Every `Service Equipment` record with `name` and these `fields`
    /// (Password fields read back masked: only whether one is set), sorted
    /// by name. Read in pages of `page_length` (`limit_start` /
    /// `limit_page_length`, ordered by name so that pages do not overlap);
    /// the last page is the first one that comes back short. Not cached: a
    /// bulk job reads it once.
    pub async fn list_equipment(
        &self,
        fields: &[&str],
        page_length: usize,
    ) -> Result<Vec<Equipment>, ErpError> {
        let result = self.list_all(fields, page_length.max(1)).await;
        self.counted(result)
    }

    /// A partial `PUT` of exactly these fields of a `Service Equipment`
    /// record. The record's cached lookups and passwords are dropped,
    /// whatever the outcome. Values are never logged (some are passwords);
    /// field names are.
    ///
    /// A retried `PUT` (after a timeout or a 5xx) is harmless: it sets the
    /// same values again.
    pub async fn update_fields(
        &self,
        name: &str,
        fields: &[(&str, Value)],
    ) -> Result<(), ErpError> {
        let name = name.trim();
        let result = self.put_fields(name, fields).await;
        self.invalidate(name);
        self.counted(result)
    }

    /// Drops every cached lookup that returned `name` (or looked it up by
    /// name) and its cached passwords.
    pub fn invalidate(&self, name: &str) {
        let lower = name.trim().to_lowercase();
        let by_name = Key::Name(lower.clone()).cache_key();
        self.inner.lookups.retain(|k, rows| {
            *k != by_name && !rows.iter().any(|e| e.name.to_lowercase() == lower)
        });
        self.inner.passwords.retain(|(n, _), _| *n != lower);
    }

    /// Drops the cached answers of these lookups.
    pub fn forget(&self, lookups: &[Lookup<'_>]) {
        for l in lookups {
            if let Some(k) = Key::from_lookup(l) {
                self.inner.lookups.remove(&k.cache_key());
            }
        }
    }

    /// The breaker is not closed (open, or half-open waiting for a probe).
    pub fn breaker_open(&self) -> bool {
        self.inner.breaker.is_open()
    }

    pub fn stats(&self) -> ErpStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ErpStats {
            calls: get(&c.calls),
            attempts: get(&c.attempts),
            errors: get(&c.errors),
            retries: get(&c.retries),
            breaker_opens: self.inner.breaker.opens(),
            breaker_rejections: get(&c.rejections),
            cache_hits: get(&c.cache_hits),
            last_latency: match get(&c.last_latency) {
                0 => None,
                us => Some(Duration::from_micros(us - 1)),
            },
        }
    }

    // -----------------------------------------------------------------
    // Operations
    // -----------------------------------------------------------------

    fn counted<T>(&self, r: Result<T, ErpError>) -> Result<T, ErpError> {
        if r.is_err() {
            bump(&self.inner.counters.errors);
        }
        r
    }

    /// `{base}/api/…segments`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<Url, ErpError> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| config_error("url cannot take a path"))?
            .pop_if_empty()
            .push("api")
            .extend(segments);
        Ok(url)
    }

    async fn get_document(&self, name: &str) -> Result<Vec<Equipment>, ErpError> {
        let op = format!("the lookup of {SERVICE_EQUIPMENT} {name}");
        let url = self.url(&["resource", SERVICE_EQUIPMENT, name])?;
        let a = self.send(&op, Method::GET, url, None).await?;
        match a.status {
            200..=299 => Ok(vec![decode_document(&op, a.status, &a.body)?]),
            // Gone (or never there): not an error for a lookup.
            404 => Ok(Vec::new()),
            _ => Err(self.refusal(&op, &format!("{SERVICE_EQUIPMENT} {name}"), &a)),
        }
    }

    async fn list(&self, key: &Key, q: &ListQuery) -> Result<Vec<Equipment>, ErpError> {
        let op = format!("the lookup of {}", key.describe());
        let mut url = self.url(&["resource", SERVICE_EQUIPMENT])?;
        {
            let mut qp = url.query_pairs_mut();
            qp.append_pair("fields", &Value::from(FIELDS.to_vec()).to_string());
            if let Some(f) = &q.filters {
                qp.append_pair("filters", &f.to_string());
            }
            if let Some(f) = &q.or_filters {
                qp.append_pair("or_filters", &f.to_string());
            }
            qp.append_pair("order_by", "name asc");
            qp.append_pair("limit_page_length", &PAGE_LENGTH.to_string());
        }
        let a = self.send(&op, Method::GET, url, None).await?;
        if !(200..=299).contains(&a.status) {
            return Err(self.refusal(&op, &format!("DocType {SERVICE_EQUIPMENT}"), &a));
        }
        let rows = decode_list(&op, a.status, &a.body)?;
        if rows.len() >= PAGE_LENGTH {
            tracing::warn!(
                lookup = %key.describe(),
                rows = rows.len(),
                "ERPNext returned a full page for a lookup; later rows were not read"
            );
        }
        Ok(rows)
    }

    async fn fetch_password(&self, name: &str, field: &str) -> Result<Option<Secret>, ErpError> {
        let op = format!("the reading of {field} of {name}");
        let mut url = self.url(&["method", "frappe.client.get_password"])?;
        url.query_pairs_mut()
            .append_pair("doctype", SERVICE_EQUIPMENT)
            .append_pair("name", name)
            .append_pair("fieldname", field);
        let a = self.send(&op, Method::GET, url, None).await?;
        match a.status {
            200..=299 => decode_password(&op, &a.body),
            // Frappe's get_password raises AuthenticationError("Password
            // not found …") when nothing is stored.
            401 if FrappeError::decode(&a.body).mentions("password not found") => Ok(None),
            _ => Err(self.refusal(&op, &format!("{SERVICE_EQUIPMENT} {name}"), &a)),
        }
    }

    async fn list_all(
        &self,
        fields: &[&str],
        page_length: usize,
    ) -> Result<Vec<Equipment>, ErpError> {
        let mut wanted = vec!["name"];
        wanted.extend(fields.iter().copied().filter(|f| *f != "name"));
        let wanted = Value::from(wanted).to_string();
        let mut rows: Vec<Equipment> = Vec::new();
        loop {
            let op = format!(
                "the listing of {SERVICE_EQUIPMENT} (from row {})",
                rows.len()
            );
            let mut url = self.url(&["resource", SERVICE_EQUIPMENT])?;
            url.query_pairs_mut()
                .append_pair("fields", &wanted)
                .append_pair("order_by", "name asc")
                .append_pair("limit_start", &rows.len().to_string())
                .append_pair("limit_page_length", &page_length.to_string());
            let a = self.send(&op, Method::GET, url, None).await?;
            if !(200..=299).contains(&a.status) {
                return Err(self.refusal(&op, &format!("DocType {SERVICE_EQUIPMENT}"), &a));
            }
            let page = decode_list(&op, a.status, &a.body)?;
            let last = page.len() < page_length;
            rows.extend(page);
            if last {
                break;
            }
        }
        // A record inserted while paging shifts the later pages by one: the
        // same name may then come twice.
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows.dedup_by(|a, b| a.name == b.name);
        Ok(rows)
    }

    async fn put_fields(&self, name: &str, fields: &[(&str, Value)]) -> Result<(), ErpError> {
        let op = format!("the update of {name}");
        let url = self.url(&["resource", SERVICE_EQUIPMENT, name])?;
        let body: Map<String, Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        let a = self
            .send(&op, Method::PUT, url, Some(Value::Object(body)))
            .await?;
        match a.status {
            200..=299 => {
                data_field(&op, a.status, &a.body)?;
                let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
                tracing::info!(equipment = %name, fields = ?names, "ERPNext: fields updated");
                Ok(())
            }
            _ => Err(self.refusal(&op, &format!("{SERVICE_EQUIPMENT} {name}"), &a)),
        }
    }

    async fn put_provisioned(
        &self,
        name: &str,
        cwmp_serial: &str,
        at: SystemTime,
    ) -> Result<(), ErpError> {
        let op = format!("the update of {name}");
        let url = self.url(&["resource", SERVICE_EQUIPMENT, name])?;
        let mut body = Map::new();
        body.insert("status".into(), Value::from(STATUS_ACTIVE));
        body.insert("custom_cwmp_serial".into(), Value::from(cwmp_serial));
        body.insert(
            self.inner.provisioned_at_field.clone(),
            Value::from(frappe_datetime(at)),
        );
        let a = self
            .send(&op, Method::PUT, url, Some(Value::Object(body)))
            .await?;
        match a.status {
            200..=299 => {
                data_field(&op, a.status, &a.body)?;
                tracing::info!(equipment = %name, cwmp_serial, "ERPNext: marked provisioned");
                Ok(())
            }
            _ => Err(self.refusal(&op, &format!("{SERVICE_EQUIPMENT} {name}"), &a)),
        }
    }

    // -----------------------------------------------------------------
    // Transport: breaker, retries, timeouts
    // -----------------------------------------------------------------

    /// Sends the request, retrying what is worth retrying, through the
    /// breaker. `Ok` is any answer other than 5xx/429.
    async fn send(
        &self,
        op: &str,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<Answer, ErpError> {
        let inner = &*self.inner;
        bump(&inner.counters.calls);
        let mut last: Option<String> = None;
        let mut made = 0u32;
        while made < inner.max_attempts {
            let permit = match inner.breaker.acquire() {
                Ok(p) => p,
                Err(refused) => {
                    bump(&inner.counters.rejections);
                    let why = match refused {
                        Refused::Open { retry_in } => format!(
                            "circuit breaker open after repeated failures (next try in {} ms)",
                            retry_in.as_millis()
                        ),
                        Refused::Probing => {
                            "circuit breaker half-open, a probe request is in flight".to_string()
                        }
                    };
                    let reason = match last {
                        Some(l) => format!("{op}: {l}; {why}"),
                        None => format!("{op}: {why}"),
                    };
                    return Err(ErpError::Unavailable { reason });
                }
            };
            made += 1;
            if made > 1 {
                bump(&inner.counters.retries);
            }
            bump(&inner.counters.attempts);
            let started = Instant::now();
            let outcome = self.attempt(op, &method, &url, body.as_ref()).await;
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
            inner
                .counters
                .last_latency
                .store(us.saturating_add(1), Ordering::Relaxed);
            match outcome {
                Ok(Outcome::Answer(a)) => {
                    permit.success();
                    return Ok(a);
                }
                Err(e) => {
                    // ERPNext answered, just not usably: it is up.
                    permit.success();
                    return Err(e);
                }
                Ok(Outcome::Retryable {
                    reason,
                    retry_after,
                }) => {
                    let opens = inner.breaker.opens();
                    permit.failure();
                    if inner.breaker.opens() > opens {
                        tracing::warn!(%op, %reason, "ERPNext failing: circuit breaker opened");
                    } else {
                        tracing::debug!(%op, attempt = made, %reason, "ERPNext attempt failed");
                    }
                    last = Some(reason);
                    if made >= inner.max_attempts || inner.breaker.is_refusing() {
                        break;
                    }
                    let delay = retry_delay(made, retry_after, inner.jitter.next());
                    tokio::time::sleep(delay).await;
                }
            }
        }
        let mut reason = format!(
            "{op} failed after {made} attempt{}: {}",
            if made == 1 { "" } else { "s" },
            last.unwrap_or_default()
        );
        if inner.breaker.is_refusing() {
            reason.push_str("; circuit breaker open");
        }
        Err(ErpError::Unavailable { reason })
    }

    async fn attempt(
        &self,
        op: &str,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<Outcome, ErpError> {
        let timeout = self.inner.timeout;
        let mut req = self.inner.http.request(method.clone(), url.clone());
        if let Some(b) = body {
            req = req.json(b);
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Ok(Outcome::Retryable {
                    reason: crate::http_client::transport_reason(&e, timeout),
                    retry_after: None,
                });
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers();
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let location = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(clean);
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large(op));
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(too_large(op));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Ok(Outcome::Retryable {
                        reason: crate::http_client::transport_reason(&e, timeout),
                        retry_after: None,
                    });
                }
            }
        }
        if status == 429 || (500..=599).contains(&status) {
            let fe = FrappeError::decode(&body);
            let mut reason = format!("HTTP {status}");
            if let Some(t) = &fe.exc_type {
                reason.push_str(&format!(" {t}"));
            }
            if let Some(h) = fe.human() {
                reason.push_str(&format!(" ({h})"));
            }
            if let Some(ra) = retry_after {
                reason.push_str(&format!(", Retry-After {} s", ra.as_secs()));
            }
            return Ok(Outcome::Retryable {
                reason,
                retry_after,
            });
        }
        Ok(Outcome::Answer(Answer {
            status,
            body,
            location,
        }))
    }

    /// A non-2xx answer as an error. `what` names the document for a 404.
    fn refusal(&self, op: &str, what: &str, a: &Answer) -> ErpError {
        let fe = FrappeError::decode(&a.body);
        let exc = fe.exc_type_or_status(a.status);
        let human = fe.human();
        let status = a.status;
        let err = match status {
            401 | 403 => ErpError::Auth {
                status,
                message: format!(
                    "ERPNext refused the API credentials for {op} ({exc}): {}",
                    human.unwrap_or_else(|| if status == 401 {
                        "check the API key and secret".to_string()
                    } else {
                        "the API user lacks permission".to_string()
                    })
                ),
            },
            404 => ErpError::NotFound {
                what: what.to_string(),
            },
            300..=399 => ErpError::Protocol {
                reason: format!(
                    "{op}: redirected (HTTP {status}) to {}",
                    a.location.as_deref().unwrap_or("nowhere")
                ),
            },
            400..=499 => ErpError::Rejected {
                status,
                message: match &human {
                    Some(h) => format!("ERPNext refused {op} ({exc}): {h}"),
                    None => format!("ERPNext refused {op} ({exc})"),
                },
                exc_type: exc,
            },
            _ => ErpError::Protocol {
                reason: format!("{op}: unexpected HTTP {status}"),
            },
        };
        tracing::debug!(%op, status, error = %err, "ERPNext refused a request");
        err
    }
}

fn too_large(op: &str) -> ErpError {
    ErpError::Protocol {
        reason: format!("{op}: answer larger than {MAX_ANSWER_BYTES} bytes"),
    }
}

/// The `data` member of a 2xx JSON answer.
fn data_field(op: &str, status: u16, body: &[u8]) -> Result<Value, ErpError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        let seen = FrappeError::decode(body)
            .human()
            .map(|t| t.chars().take(80).collect::<String>())
            .unwrap_or_default();
        ErpError::Protocol {
            reason: format!("{op}: the answer (HTTP {status}) is not JSON: {seen}"),
        }
    })?;
    match v {
        Value::Object(mut o) => o.remove("data").ok_or_else(|| ErpError::Protocol {
            reason: format!("{op}: the answer has no `data`"),
        }),
        _ => Err(ErpError::Protocol {
            reason: format!("{op}: the answer is not a JSON object"),
        }),
    }
}

// Pure decoders of 2xx answers (the client calls them on the bytes it
// received; public so that the `frappe` fuzz target reaches them). `op`
// names the operation in errors; no error echoes more than 80 characters
// of the answer, and a password answer is never echoed.

/// The record of a document GET (`{"data": {…}}`).
pub fn decode_document(op: &str, status: u16, body: &[u8]) -> Result<Equipment, ErpError> {
    let data = data_field(op, status, body)?;
    query::equipment_from_json(&data).map_err(|r| ErpError::Protocol {
        reason: format!("{op}: {r}"),
    })
}

/// The records of a list query (`{"data": [{…}, …]}`).
pub fn decode_list(op: &str, status: u16, body: &[u8]) -> Result<Vec<Equipment>, ErpError> {
    let Value::Array(rows) = data_field(op, status, body)? else {
        return Err(ErpError::Protocol {
            reason: format!("{op}: `data` is not a list"),
        });
    };
    rows.iter()
        .map(|r| {
            query::equipment_from_json(r).map_err(|reason| ErpError::Protocol {
                reason: format!("{op}: {reason}"),
            })
        })
        .collect()
}

/// The password of a `frappe.client.get_password` answer
/// (`{"message": "…"}`); `None` when none is set.
pub fn decode_password(op: &str, body: &[u8]) -> Result<Option<Secret>, ErpError> {
    // Never echo this body: it holds the secret.
    let v: Value = serde_json::from_slice(body).map_err(|_| ErpError::Protocol {
        reason: format!("{op}: the answer is not JSON"),
    })?;
    match v.get("message") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(Secret::new(s.clone()))),
        Some(Value::Number(n)) => Ok(Some(Secret::new(n.to_string()))),
        Some(_) => Err(ErpError::Protocol {
            reason: format!("{op}: `message` is not text"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> ErpConfig {
        ErpConfig::new(url, "acs-key", Secret::new("s3cr3t-value"))
    }

    #[test]
    fn datetimes_are_frappe_text_in_utc() {
        assert_eq!(frappe_datetime(UNIX_EPOCH), "1970-01-01 00:00:00");
        let t = UNIX_EPOCH + Duration::from_secs(1_757_318_443) + Duration::from_millis(999);
        assert_eq!(frappe_datetime(t), "2025-09-08 08:00:43");
        let leap = UNIX_EPOCH + Duration::from_secs(951_825_600); // 2000-02-29 12:00
        assert_eq!(frappe_datetime(leap), "2000-02-29 12:00:00");
        assert_eq!(
            frappe_datetime(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01 00:00:00"
        );
    }

    #[test]
    fn configuration_is_checked_without_leaking_the_secret() {
        assert!(ErpNextClient::new(cfg("http://127.0.0.1:8000")).is_ok());
        // https builds too: the preconfigured rustls (ring) config is the
        // one reqwest understands.
        assert!(ErpNextClient::new(cfg("https://erp.example.com/")).is_ok());
        for bad in [
            "ftp://x",
            "not a url",
            "http://user:pw@erp.example.com",
            "http://erp.example.com/?a=1",
            "mailto:a@b",
        ] {
            let e = ErpNextClient::new(cfg(bad)).expect_err(bad);
            assert!(matches!(e, ErpError::Config { .. }), "{bad}: {e}");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
        let mut c = cfg("http://x");
        c.api_secret = Secret::new("");
        assert!(ErpNextClient::new(c).is_err());
        let mut c = cfg("http://x");
        c.api_secret = Secret::new("bad\nsecret");
        let e = ErpNextClient::new(c).expect_err("newline");
        assert!(!e.to_string().contains("bad"), "{e}");
        let mut c = cfg("http://x");
        c.max_attempts = 0;
        assert!(ErpNextClient::new(c).is_err());
        let mut c = cfg("http://x");
        c.provisioned_at_field = "status".into();
        assert!(ErpNextClient::new(c).is_err());
        let mut c = cfg("http://x");
        c.provisioned_at_field = "Custom Field".into();
        assert!(ErpNextClient::new(c).is_err());
        let client = ErpNextClient::new(cfg("http://127.0.0.1:8000")).expect("client");
        let dbg = format!("{client:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("acs-key"), "{dbg}");
    }

    #[test]
    fn urls_encode_each_segment() {
        let client = ErpNextClient::new(cfg("https://erp.example.com/erp/")).expect("client");
        let u = client
            .url(&["resource", SERVICE_EQUIPMENT, "ONT/RCMG 1?#%"])
            .expect("url");
        assert_eq!(
            u.as_str(),
            "https://erp.example.com/erp/api/resource/Service%20Equipment/ONT%2FRCMG%201%3F%23%25"
        );
        let client = ErpNextClient::new(cfg("http://127.0.0.1:8000")).expect("client");
        let u = client.url(&["resource", SERVICE_EQUIPMENT]).expect("url");
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8000/api/resource/Service%20Equipment"
        );
    }

    #[test]
    fn answers_decode_and_errors_stay_short_without_secrets() {
        let op = "the lookup of Service Equipment EQ-1";
        let rows = decode_list(
            op,
            200,
            br#"{"data":[{"name":"EQ-1","custom_wifi_enabled":1,"custom_wifi_password":"*****"}]}"#,
        )
        .expect("list");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].wifi_enabled, Some(true));
        assert!(rows[0].has_wifi_password);
        let e = decode_list(op, 200, br#"{"data":{"name":"EQ-1"}}"#).expect_err("not a list");
        assert!(e.to_string().ends_with("`data` is not a list"), "{e}");
        let doc = decode_document(op, 200, br#"{"data":{"name":"EQ-7"}}"#).expect("document");
        assert_eq!(doc.name, "EQ-7");
        let long_page = format!("<html><body>{}</body></html>", "word ".repeat(500));
        let e = decode_document(op, 200, long_page.as_bytes()).expect_err("HTML");
        assert!(
            e.to_string()
                .starts_with("unexpected answer from ERPNext: the lookup")
        );
        assert!(e.to_string().chars().count() <= op.len() + 160, "{e}");

        let pw = decode_password(op, br#"{"message":"s3cr3t"}"#).expect("password");
        assert_eq!(pw.as_ref().map(Secret::expose), Some("s3cr3t"));
        assert!(
            decode_password(op, br#"{"message":null}"#)
                .expect("unset")
                .is_none()
        );
        assert!(
            decode_password(op, br#"{"message":""}"#)
                .expect("empty")
                .is_none()
        );
        for body in [
            &br#"{"message":["s3cr3t"]}"#[..],
            b"s3cr3t",
            b"{\"message\":\"s3cr3t",
        ] {
            let e = decode_password(op, body).expect_err("unusable");
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
        }
    }

    /// Retries, backoff and the breaker against a port nobody listens on,
    /// on a paused clock: connection refused is immediate, the waits are
    /// virtual.
    #[tokio::test(start_paused = true)]
    async fn connection_errors_are_retried_then_open_the_breaker() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let mut c = cfg(&format!("http://127.0.0.1:{port}"));
        c.max_attempts = 3;
        c.breaker_failures = 4;
        c.breaker_cooldown = Duration::from_secs(60);
        let client = ErpNextClient::new(c).expect("client");
        let e = client
            .find(Lookup::CwmpSerial("X1"))
            .await
            .expect_err("nobody listens");
        assert!(e.is_unavailable(), "{e}");
        assert!(e.to_string().contains("after 3 attempts"), "{e}");
        assert!(!e.to_string().contains("s3cr3t"));
        let s = client.stats();
        assert_eq!((s.calls, s.attempts, s.retries, s.errors), (1, 3, 2, 1));
        assert!(!client.breaker_open());
        // The 4th failed attempt opens the breaker; no 3rd attempt follows.
        let e = client
            .find(Lookup::CwmpSerial("X2"))
            .await
            .expect_err("down");
        assert!(e.to_string().contains("circuit breaker open"), "{e}");
        assert!(client.breaker_open());
        let s = client.stats();
        assert_eq!((s.attempts, s.breaker_opens), (4, 1));
        // Now refused without an attempt.
        let e = client
            .password("EQ-1", "custom_wifi_password")
            .await
            .expect_err("open");
        assert!(e.is_unavailable());
        let s = client.stats();
        assert_eq!((s.attempts, s.breaker_rejections, s.errors), (4, 1, 3));
        // Identifiers that cannot match never reach the network.
        assert_eq!(
            client.find(Lookup::Mac("nope")).await.expect("no-op"),
            vec![]
        );
    }
}

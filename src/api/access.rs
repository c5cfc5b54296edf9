//! Who is calling and what they may do: a bearer token (machines) or a
//! console session cookie (people, with a CSRF token on every write);
//! logging in and out; the audit entry of every write.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde::Deserialize;

use super::tokens::ApiTokens;
use super::{ApiError, ApiResult, json_response, no_content};
use crate::accounts::{self, Login};
use crate::app::{Acs, now_ms};
use crate::digest::constant_time_eq;
use crate::store::{AuditEntry, Role};

/// Name of the console session cookie.
pub const SESSION_COOKIE: &str = "acs_console";
/// Header carrying a console session's CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Login attempts one client address may make per minute.
const LOGINS_PER_MINUTE: u32 = 10;

/// The caller of a request.
#[derive(Clone, Debug)]
pub struct Principal {
    /// A user's name, or `token:…`.
    pub actor: String,
    pub role: Role,
    /// The console session's store key and CSRF token (none for tokens).
    pub session: Option<(String, String)>,
}

/// What the API knows about callers: the tokens, and login attempts per
/// client address (per node: a balancer spreads an attacker's attempts,
/// the per-account lockout in the store holds across nodes).
pub struct Access {
    pub tokens: Arc<ApiTokens>,
    /// `Secure` on the session cookie (the API is served over HTTPS).
    pub secure_cookie: bool,
    attempts: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl Access {
    pub fn new(tokens: Arc<ApiTokens>, secure_cookie: bool) -> Access {
        Access {
            tokens,
            secure_cookie,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a login attempt from `ip`; false beyond the minute's quota.
    fn allow_attempt(&self, ip: IpAddr, now_ms: u64) -> bool {
        let mut a = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        if a.len() > 10_000 {
            a.retain(|_, (start, _)| now_ms.saturating_sub(*start) < 60_000);
        }
        let entry = a.entry(ip).or_insert((now_ms, 0));
        if now_ms.saturating_sub(entry.0) >= 60_000 {
            *entry = (now_ms, 0);
        }
        entry.1 += 1;
        entry.1 <= LOGINS_PER_MINUTE
    }

    /// The caller, from a bearer token or a live console session cookie.
    pub fn principal(&self, acs: &Acs, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
        let token = self
            .tokens
            .resolve(
                acs.store.as_ref(),
                headers.get(header::AUTHORIZATION),
                false,
            )
            .map_err(ApiError::internal)?;
        if let Some((role, actor)) = token {
            return Ok(Some(Principal {
                actor,
                role,
                session: None,
            }));
        }
        let Some(cookie) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let key = accounts::session_key(cookie);
        let Some(session) = acs.store.web_session(&key).map_err(ApiError::internal)? else {
            return Ok(None);
        };
        let now = now_ms(SystemTime::now());
        if session.expires_ms <= now {
            let _ = acs.store.delete_web_sessions(&[key]);
            return Ok(None);
        }
        // A user disabled or demoted since logging in is so at once.
        let user = acs.store.user(&session.user).map_err(ApiError::internal)?;
        match user {
            Some(u) if !u.disabled => Ok(Some(Principal {
                actor: u.name,
                role: u.role,
                session: Some((key, session.csrf)),
            })),
            _ => Ok(None),
        }
    }
}

/// The value of cookie `name`, tolerating what clients do with cookies:
/// several Cookie headers, pairs split by `;` or `,`, the attributes sent
/// back (`session=k; Path=/`, as some CPEs do), quotes around the value.
/// The CWMP session cookie and the console's both go through here.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([';', ',']))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// Whether `principal` may call a route needing `role` with `method`:
/// 403 when the role is too low, or when a console session writes
/// without its CSRF token.
pub fn authorize(
    principal: &Principal,
    role: Role,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if principal.role < role {
        return Err(forbidden(role));
    }
    let write = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if let (true, Some((_, csrf))) = (write, &principal.session) {
        let sent = headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !constant_time_eq(sent, csrf.as_bytes()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "a write from the console must carry its CSRF token in X-CSRF-Token (reload the page)",
            ));
        }
    }
    Ok(())
}

/// 403 naming the role needed.
pub fn forbidden(role: Role) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("this needs the {role} role or above"),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

/// `POST /api/v1/login`.
pub fn login(acs: &Acs, access: &Access, remote: IpAddr, body: serde_json::Value) -> ApiResult {
    let now = now_ms(SystemTime::now());
    if !access.allow_attempt(remote, now) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many login attempts from this address: wait a minute",
        ));
    }
    let req: LoginRequest = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is {{\"username\", \"password\"}}: {}",
            super::json_error_without_values(&e)
        ))
    })?;
    let name = req.username.trim().to_ascii_lowercase();
    let mut user = match accounts::check_name(&name) {
        Ok(()) => acs.store.user(&name).map_err(ApiError::internal)?,
        Err(_) => None,
    };
    let before = user.clone();
    let outcome = accounts::login(
        user.as_mut(),
        |hash| accounts::verify_password(hash, &req.password),
        now,
    );
    // Written only when the attempt changed the failure count or lock.
    if let Some(u) = user.as_ref().filter(|u| Some(*u) != before.as_ref()) {
        acs.store.put_user(u).map_err(ApiError::internal)?;
    }
    let audit_as = |role: Role, status: StatusCode| {
        audit(acs, &name, role, "login", None, status.as_u16(), now);
    };
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong user name or password",
        )
    };
    match (outcome, user) {
        (Login::Accepted(role), Some(user)) => {
            let (cookie, session) = accounts::new_session(&user, now);
            acs.store
                .put_web_session(&accounts::session_key(&cookie), &session)
                .map_err(ApiError::internal)?;
            audit_as(role, StatusCode::OK);
            let mut r = json_response(
                StatusCode::OK,
                &me_view(&user.name, role, Some(&session.csrf)),
            );
            let secure = if access.secure_cookie { "; Secure" } else { "" };
            let max_age = accounts::SESSION_MS / 1000;
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{SESSION_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
            )) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(r)
        }
        (Login::Locked { until_ms }, _) => {
            audit_as(Role::Technician, StatusCode::FORBIDDEN);
            let minutes = until_ms.saturating_sub(now).div_ceil(60_000).max(1);
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "locked",
                format!(
                    "this account is locked after repeated failures: try again in {minutes} minute(s), or ask an admin (`gigafibre-acs user passwd`)"
                ),
            ))
        }
        (Login::Disabled, _) => {
            audit_as(Role::Technician, StatusCode::FORBIDDEN);
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "disabled",
                "this account is disabled: ask an admin",
            ))
        }
        _ => {
            audit_as(Role::Technician, StatusCode::UNAUTHORIZED);
            Err(refused())
        }
    }
}

/// `POST /api/v1/logout`.
pub fn logout(acs: &Acs, principal: &Principal) -> ApiResult {
    if let Some((key, _)) = &principal.session {
        acs.store
            .delete_web_sessions(std::slice::from_ref(key))
            .map_err(ApiError::internal)?;
    }
    let mut r = no_content();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("acs_console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(r)
}

/// `GET /api/v1/me`.
pub fn me(principal: &Principal) -> ApiResult {
    let csrf = principal.session.as_ref().map(|(_, c)| c.as_str());
    Ok(json_response(
        StatusCode::OK,
        &me_view(&principal.actor, principal.role, csrf),
    ))
}

fn me_view(actor: &str, role: Role, csrf: Option<&str>) -> serde_json::Value {
    serde_json::json!({"user": actor, "role": role, "csrf_token": csrf})
}

/// Records a write in the audit log (a failure to do so is logged, not
/// fatal: the write itself happened).
pub fn audit(
    acs: &Acs,
    actor: &str,
    role: Role,
    action: &str,
    device_id: Option<String>,
    status: u16,
    now_ms: u64,
) {
    let entry = AuditEntry {
        id: 0,
        at_ms: now_ms,
        actor: actor.to_owned(),
        role,
        action: action.to_owned(),
        device_id,
        status,
    };
    if let Err(e) = acs.store.append_audit(entry) {
        tracing::error!(error = %e, action, "writing the audit log failed");
    }
}

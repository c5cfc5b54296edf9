//! One CWMP session from the CPE's side, over HTTP: Inform, pending
//! TransferComplete, empty POST, then answering the ACS's requests until it
//! says 204.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gigafibre_acs::cwmp::{Body, Envelope};
use http::StatusCode;
use thiserror::Error;

use crate::device::{Device, SessionLog};
use crate::http::{AcsClient, ClientError};

/// Upper bound on exchanges in one session (a runaway ACS must not keep a
/// simulated CPE forever).
const MAX_EXCHANGES: u32 = 10_000;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the ACS is busy (503, retry after {retry_after:?} s)")]
    Busy { retry_after: Option<u64> },
    #[error("the ACS answered HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl SessionError {
    /// Short name for statistics.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionError::Client(ClientError::Timeout(_)) => "timeout",
            SessionError::Client(ClientError::Connect { .. }) => "connect",
            SessionError::Client(ClientError::Unauthorized) => "unauthorized",
            SessionError::Client(_) => "http",
            SessionError::Busy { .. } => "busy_503",
            SessionError::Rejected { .. } => "rejected",
            SessionError::Protocol(_) => "protocol",
        }
    }
}

#[derive(Debug)]
pub struct SessionReport {
    pub elapsed: Duration,
    /// ACS requests answered.
    pub rpcs: u32,
    /// Names of the ACS requests, in order.
    pub methods: Vec<String>,
}

fn text(b: &Bytes) -> String {
    let s = String::from_utf8_lossy(b);
    s.chars().take(300).collect()
}

fn expect_envelope(
    status: StatusCode,
    retry_after: Option<u64>,
    body: &Bytes,
) -> Result<Envelope, SessionError> {
    match status.as_u16() {
        200 => Envelope::decode(body)
            .map_err(|e| SessionError::Protocol(format!("undecodable answer: {e}"))),
        503 => Err(SessionError::Busy { retry_after }),
        s => Err(SessionError::Rejected {
            status: s,
            body: text(body),
        }),
    }
}

/// Runs one session. On success the device's events are delivered.
pub async fn run(dev: &mut Device, client: &mut AcsClient) -> Result<SessionReport, SessionError> {
    let started = Instant::now();
    client.new_session();
    client.send_cookies = dev.quirks.send_cookies;
    let inform = dev.inform();
    let version = inform.version;
    let events: Vec<String> = match &inform.body {
        Body::Inform(i) => i.events.iter().map(|e| e.event_code.clone()).collect(),
        _ => Vec::new(),
    };
    let reply = client
        .post(Bytes::from(dev.quirks.apply_text(inform.encode())))
        .await?;
    let answer = expect_envelope(reply.status, reply.retry_after, &reply.body)?;
    if !matches!(answer.body, Body::InformResponse(_)) {
        return Err(SessionError::Protocol(format!(
            "expected InformResponse, got {}",
            answer.body.name()
        )));
    }
    if answer.header.id != inform.header.id {
        return Err(SessionError::Protocol(
            "InformResponse does not echo our cwmp:ID".into(),
        ));
    }
    if answer.version != version {
        return Err(SessionError::Protocol(format!(
            "InformResponse in cwmp-{} but we spoke cwmp-{version}",
            answer.version
        )));
    }
    dev.inform_acknowledged();

    if let Some(tc) = dev.transfer_complete() {
        let env = Envelope::new(version, Some(format!("tc-{}", dev.sessions)), tc);
        let reply = client
            .post(Bytes::from(dev.quirks.apply_text(env.encode())))
            .await?;
        let answer = expect_envelope(reply.status, reply.retry_after, &reply.body)?;
        if !matches!(answer.body, Body::TransferCompleteResponse(_)) {
            return Err(SessionError::Protocol(format!(
                "expected TransferCompleteResponse, got {}",
                answer.body.name()
            )));
        }
        dev.transfer_complete_delivered();
    }

    let mut methods = Vec::new();
    let mut faults = Vec::new();
    let mut reply = client.post(Bytes::new()).await?;
    for _ in 0..MAX_EXCHANGES {
        if reply.status == StatusCode::NO_CONTENT {
            dev.record_session(SessionLog {
                events: events.clone(),
                methods: methods.clone(),
                faults,
            });
            return Ok(SessionReport {
                elapsed: started.elapsed(),
                rpcs: methods.len() as u32,
                methods,
            });
        }
        let request = expect_envelope(reply.status, reply.retry_after, &reply.body)?;
        if !request.body.is_acs_request() {
            return Err(SessionError::Protocol(format!(
                "the ACS sent {}, not a request",
                request.body.name()
            )));
        }
        methods.push(request.body.name().to_owned());
        let response = dev.handle(request.body);
        if let Body::Fault(f) = &response {
            faults.push(f.code);
        }
        let env = Envelope::new(version, request.header.id, response);
        reply = client
            .post(Bytes::from(dev.quirks.apply_text(env.encode())))
            .await?;
    }
    Err(SessionError::Protocol(format!(
        "more than {MAX_EXCHANGES} exchanges in one session"
    )))
}

//! `GET /api/v1/events`: the event bus as Server-Sent Events.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{broadcast, mpsc};

use super::{ApiError, ApiResult, Query};
use crate::app::Acs;
use crate::events::{Event, EventKind};

/// A comment line this often keeps proxies and load balancers from
/// closing an idle stream (and ends the stream soon after a client left).
const KEEPALIVE: Duration = Duration::from_secs(15);

/// A response body fed by a channel.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Which events a subscriber wants.
struct Filter {
    kinds: Option<Vec<EventKind>>,
    device: Option<String>,
}

impl Filter {
    fn parse(q: &Query) -> Result<Filter, ApiError> {
        let kinds = match q.get("types").map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(list) => {
                let mut kinds = Vec::new();
                for t in list.split(',').map(str::trim) {
                    let kind = EventKind::parse(t).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "types: unknown event type `{t}`; one of {}",
                            EventKind::ALL.map(EventKind::as_str).join(", ")
                        ))
                    })?;
                    kinds.push(kind);
                }
                Some(kinds)
            }
        };
        Ok(Filter {
            kinds,
            device: q.get("device").map(str::to_owned),
        })
    }

    fn wants(&self, e: &Event) -> bool {
        self.kinds.as_ref().is_none_or(|k| k.contains(&e.kind))
            && self.device.as_ref().is_none_or(|d| *d == e.device_id)
    }
}

/// One event in the SSE wire format.
pub fn sse_frame(e: &Event) -> Bytes {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        e.id,
        e.kind.as_str()
    ))
}

pub fn stream(acs: &Acs, q: &Query) -> ApiResult {
    let filter = Filter::parse(q)?;
    let mut events = acs.events.subscribe();
    let mut stopping = acs.stopping.clone();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        // Tells the client the stream is live and how soon to reconnect.
        if tx
            .send(Bytes::from_static(b"retry: 3000\n: connected\n\n"))
            .await
            .is_err()
        {
            return;
        }
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            let chunk = tokio::select! {
                e = events.recv() => match e {
                    Ok(e) if filter.wants(&e) => sse_frame(&e),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        Bytes::from(format!(": {n} events dropped (client too slow)\n\n"))
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
                // Shutdown: end the stream so the connection can drain.
                _ = stopping.changed() => return,
            };
            if tx.send(chunk).await.is_err() {
                return; // the client went away
            }
        }
    });
    let mut r = Response::new(ChannelBody { rx }.boxed());
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx: do not buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}

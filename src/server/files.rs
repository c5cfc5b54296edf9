//! `GET|HEAD /files/ID/NAME?d=&e=&s=` on the CWMP listener: devices fetch
//! the files they were sent a Download for. The link is the permission
//! ([`crate::firmware::link`]); the file is streamed from disk a chunk at a
//! time as the connection takes it (no file is ever whole in memory, and a
//! slow device slows only itself), with `Content-Length`, `ETag`,
//! `Accept-Ranges` and single `Range` requests (a CPE resuming).

use std::io::SeekFrom;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncSeekExt, ReadBuf};
use tracing::{info, warn};

use crate::app::Acs;
use crate::firmware::{files, link, range};
use crate::metrics::Metrics;

/// What the CWMP listener answers: a SOAP exchange's bytes, or a file.
pub enum CwmpBody {
    Full(Full<Bytes>),
    File(FileBody),
}

impl Body for CwmpBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            CwmpBody::Full(b) => Pin::new(b).poll_frame(cx),
            CwmpBody::File(f) => Pin::new(f).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            CwmpBody::Full(b) => b.is_end_stream(),
            CwmpBody::File(f) => f.remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            CwmpBody::Full(b) => b.size_hint(),
            CwmpBody::File(f) => SizeHint::with_exact(f.remaining),
        }
    }
}

/// Bytes read and sent per frame.
const CHUNK: usize = 64 << 10;

/// A file's bytes `remaining` from where the file is positioned.
pub struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: BytesMut,
    /// For the bytes-sent counter.
    acs: std::sync::Arc<Acs>,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = CHUNK.min(usize::try_from(this.remaining).unwrap_or(CHUNK));
        if this.buf.len() != want {
            this.buf.resize(want, 0);
        }
        let mut read = ReadBuf::new(&mut this.buf[..]);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                // The length was promised: ending early tells the client
                // the transfer failed (it retries, or reports 9010).
                warn!(error = %e, "reading a file being sent failed: transfer cut short");
                this.remaining = 0;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    warn!("a file being sent is shorter than its record: transfer cut short");
                    this.remaining = 0;
                    return Poll::Ready(None);
                }
                this.remaining -= n as u64;
                this.acs
                    .metrics
                    .file_bytes_sent
                    .fetch_add(n as u64, Ordering::Relaxed);
                Poll::Ready(Some(Ok(Frame::data(this.buf.split_to(n).freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

fn text(status: StatusCode, body: &str) -> Response<CwmpBody> {
    let mut r = Response::new(CwmpBody::Full(Full::new(Bytes::from(format!("{body}\n")))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Whether a request is a file fetch (rather than a CWMP exchange).
pub fn is_file_request<B>(req: &Request<B>) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD) && req.uri().path().starts_with("/files/")
}

/// Answers a file fetch.
pub async fn serve<B>(acs: std::sync::Arc<Acs>, req: Request<B>) -> Response<CwmpBody> {
    let r = answer(&acs, &req).await;
    let m = &acs.metrics;
    match r.status() {
        StatusCode::OK | StatusCode::PARTIAL_CONTENT => Metrics::inc(&m.files_served),
        _ => Metrics::inc(&m.files_refused),
    }
    r
}

async fn answer<B>(acs: &std::sync::Arc<Acs>, req: &Request<B>) -> Response<CwmpBody> {
    let path = req.uri().path();
    let mut parts = path.trim_start_matches("/files/").splitn(2, '/');
    let (Some(id), Some(name)) = (parts.next(), parts.next()) else {
        return text(
            StatusCode::NOT_FOUND,
            "no such file: the path is /files/ID/NAME",
        );
    };
    if !files::is_id(id) {
        return text(StatusCode::NOT_FOUND, "no such file");
    }
    let params: Vec<(String, String)> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), crate::percent::decode(v)?)))
        .collect();
    let now_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let device = match link::verify(acs.provisioning.file_link_key(), id, &params, now_s) {
        Ok(d) => d,
        Err(e) => {
            info!(file = id, error = %e, "file download refused");
            return text(
                StatusCode::FORBIDDEN,
                &format!("this download link is not valid: {e}"),
            );
        }
    };
    let record = match acs.store.file(id) {
        Ok(Some(r)) if r.name == name && r.url.is_none() => r,
        Ok(_) => return text(StatusCode::NOT_FOUND, "no such file"),
        Err(e) => {
            warn!(error = %e, "reading a file record failed");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store did not answer; retry",
            );
        }
    };
    let etag = format!("\"{}\"", record.sha256);
    let part = range::part(
        req.headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok()),
        record.size,
    );
    let (status, start, len) = match part {
        range::Part::Whole => (StatusCode::OK, 0, record.size),
        range::Part::Range { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        range::Part::Unsatisfiable => {
            let mut r = text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "the range is past the end of the file",
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", record.size)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let body = if *req.method() == Method::HEAD {
        CwmpBody::Full(Full::new(Bytes::new()))
    } else {
        let on_disk = files::path(&acs.config.data_dir, id);
        let mut file = match tokio::fs::File::open(&on_disk).await {
            Ok(f) => f,
            Err(e) => {
                // Several nodes: the bytes are on the node that took the
                // upload unless data_dir/files is shared (README).
                warn!(file = id, error = %e, "a file with a record is not on this node's disk (share data_dir/files between nodes, or give the file a CDN url)");
                return text(StatusCode::NOT_FOUND, "no such file");
            }
        };
        if start > 0 {
            if let Err(e) = file.seek(SeekFrom::Start(start)).await {
                warn!(file = id, error = %e, "seeking in a file failed");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the file could not be read",
                );
            }
        }
        CwmpBody::File(FileBody {
            file,
            remaining: len,
            buf: BytesMut::new(),
            acs: acs.clone(),
        })
    };
    info!(file = id, device = %device, status = status.as_u16(), from = start, bytes = len, "file download");
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {start}-{}/{}",
            start + len - 1,
            record.size
        )) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    r
}

//! Reading request bodies within size and time limits, and undoing
//! `Content-Encoding: gzip/deflate`.

use std::io::Read;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    #[error("reading request body failed: {0}")]
    Read(String),
    #[error("unsupported Content-Encoding `{0}` (identity, gzip and deflate are)")]
    UnsupportedEncoding(String),
    #[error("request body is not valid {encoding}: {reason}")]
    Decompress {
        encoding: &'static str,
        reason: String,
    },
}

/// Collects a body of at most `limit` bytes within `timeout`. A declared
/// Content-Length over the limit is refused before reading anything.
pub async fn read_limited(
    mut body: Incoming,
    declared: Option<u64>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let read = async {
        let mut buf = BytesMut::with_capacity(declared.map_or(4096, |n| n as usize));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(BodyError::TooLarge { limit });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| BodyError::Timeout(timeout))?
}

/// Undoes a Content-Encoding, never producing more than `limit` bytes (a
/// small gzip bomb must not become a huge allocation).
pub fn decode_content(
    encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(body),
        Some("gzip") | Some("x-gzip") => {
            inflate(flate2::read::GzDecoder::new(&body[..]), "gzip", limit)
        }
        Some("deflate") => {
            // RFC 9110's deflate is zlib-wrapped; some clients send raw
            // deflate. Try the former, fall back to the latter only if it
            // was not zlib (a zlib bomb stays a 413).
            match inflate(flate2::read::ZlibDecoder::new(&body[..]), "deflate", limit) {
                Err(BodyError::Decompress { .. }) => inflate(
                    flate2::read::DeflateDecoder::new(&body[..]),
                    "deflate",
                    limit,
                ),
                decoded => decoded,
            }
        }
        Some(other) => Err(BodyError::UnsupportedEncoding(
            other.chars().take(32).collect(),
        )),
    }
}

/// Inflates in fixed 64 KiB chunks and copies them once into a buffer of
/// the exact size: growing one buffer by doubling left ~8 MiB of freed
/// blocks behind per bomb in the allocator's caches (hardening tests).
fn inflate(
    mut reader: impl Read,
    encoding: &'static str,
    limit: usize,
) -> Result<Bytes, BodyError> {
    const CHUNK: usize = 64 * 1024;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match reader.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(BodyError::Decompress {
                        encoding,
                        reason: e.to_string(),
                    });
                }
            }
        }
        total += filled;
        if total > limit {
            return Err(BodyError::TooLarge { limit });
        }
        chunk.truncate(filled);
        let done = filled < CHUNK;
        chunks.push(chunk);
        if done {
            break;
        }
    }
    Ok(Bytes::from(chunks.concat()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::{GzEncoder, ZlibEncoder};
    use std::io::Write;

    #[test]
    fn gzip_and_deflate_are_undone_within_the_limit() {
        let text = b"<Envelope/>".repeat(10);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            decode_content(Some("gzip"), gz.clone().into(), 1000).unwrap(),
            &text[..]
        );
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&text).unwrap();
        assert_eq!(
            decode_content(Some("Deflate"), z.finish().unwrap().into(), 1000).unwrap(),
            &text[..]
        );
        assert_eq!(
            decode_content(Some("gzip"), gz.into(), 50),
            Err(BodyError::TooLarge { limit: 50 })
        );
        assert!(matches!(
            decode_content(Some("br"), Bytes::new(), 10),
            Err(BodyError::UnsupportedEncoding(_))
        ));
        assert!(matches!(
            decode_content(Some("gzip"), Bytes::from_static(b"not gzip"), 10),
            Err(BodyError::Decompress { .. })
        ));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 50 << 20];
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&zeros).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 100 << 10);
        assert_eq!(
            decode_content(Some("gzip"), bomb.into(), 1 << 20),
            Err(BodyError::TooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn deflate_bombs_are_too_large_whether_zlib_wrapped_or_raw() {
        let zeros = vec![0u8; 4 << 20];
        let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
        z.write_all(&zeros).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::best());
        raw.write_all(&zeros).unwrap();
        for bomb in [z.finish().unwrap(), raw.finish().unwrap()] {
            assert_eq!(
                decode_content(Some("deflate"), bomb.into(), 1 << 20),
                Err(BodyError::TooLarge { limit: 1 << 20 })
            );
        }
    }
}

//! Files devices download, on disk under `data_dir/files/ID` with their
//! records in the store. Uploads are streamed to a temporary file while
//! their SHA-256 is computed, then renamed into place: a file is never
//! whole in memory, and a half-written one never has a record.

use std::path::{Path, PathBuf};

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::AsyncWriteExt;

/// The directory under the data dir.
pub const DIR: &str = "files";

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    #[error("the file is larger than {max} bytes (file_max_mb)")]
    TooLarge { max: u64 },
    #[error("the file's SHA-256 is {got}, not the {expected} declared")]
    HashMismatch { expected: String, got: String },
    #[error("{0}")]
    Io(String),
}

/// Where file `id` lives.
pub fn path(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join(DIR).join(id)
}

/// A new file id: 16 hex digits.
pub fn new_id() -> Result<String, String> {
    let mut raw = [0u8; 8];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| "the system random generator failed".to_owned())?;
    Ok(crate::digest::hex(&raw))
}

/// Whether `id` is one [`new_id`] makes (so it is safe in a path).
pub fn is_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// A file name as devices see it in their URL: 1 to 128 of
/// `A-Z a-z 0-9 . _ -`, not starting with a dot.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "`{name}` is not a file name of 1-128 letters, digits, `.`, `_`, `-` (not starting with `.`)"
        )),
    }
}

/// Whether `s` is a SHA-256 in hex (either case).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The URL a device downloads `file` from: the file's own (a CDN), or
/// a link to the ACS signed for this device, valid [`super::link::TTL_S`],
/// relative to the ACS (`/files/ID/NAME?…`: completed with the address the
/// device reaches the ACS on when the Download is sent).
pub fn download_url(
    key: &ring::hmac::Key,
    file: &crate::store::FileRecord,
    device_id: &str,
    now_ms: u64,
) -> String {
    match &file.url {
        Some(u) => u.clone(),
        None => {
            let expires = now_ms / 1000 + super::link::TTL_S;
            let query = super::link::query(key, &file.id, device_id, expires);
            format!("/files/{}/{}?{query}", file.id, file.name)
        }
    }
}

/// A firmware Download of `file` for a device.
pub fn download(
    key: &ring::hmac::Key,
    file: &crate::store::FileRecord,
    device_id: &str,
    command_key: &str,
    now_ms: u64,
) -> crate::cwmp::rpc::Download {
    crate::cwmp::rpc::Download {
        command_key: command_key.to_owned(),
        file_type: "1 Firmware Upgrade Image".into(),
        url: download_url(key, file, device_id, now_ms),
        file_size: file.size,
        target_file_name: file.name.clone(),
        ..Default::default()
    }
}

/// The SHA-256 of a file on disk, read in chunks (blocking).
pub fn hash_on_disk(path: &Path) -> std::io::Result<(u64, String)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        ctx.update(&buf[..n]);
    }
    Ok((size, crate::digest::hex(ctx.finish().as_ref())))
}

/// An upload in progress.
pub struct Upload {
    file: tokio::fs::File,
    tmp: PathBuf,
    hash: digest::Context,
    size: u64,
    max: u64,
}

impl Upload {
    /// Starts writing file `id` (at most `max` bytes).
    pub async fn start(data_dir: &Path, id: &str, max: u64) -> Result<Upload, UploadError> {
        let dir = data_dir.join(DIR);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| UploadError::Io(format!("cannot create {}: {e}", dir.display())))?;
        let tmp = dir.join(format!(".upload-{id}"));
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| UploadError::Io(format!("cannot create {}: {e}", tmp.display())))?;
        Ok(Upload {
            file,
            tmp,
            hash: digest::Context::new(&digest::SHA256),
            size: 0,
            max,
        })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        self.size += chunk.len() as u64;
        if self.size > self.max {
            return Err(UploadError::TooLarge { max: self.max });
        }
        self.hash.update(chunk);
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| UploadError::Io(format!("writing {}: {e}", self.tmp.display())))
    }

    /// Checks the content against `expected` (a SHA-256, if declared),
    /// makes it durable and puts it in place as `final_path`: its size
    /// and SHA-256 (lower-case hex).
    pub async fn finish(
        mut self,
        final_path: &Path,
        expected: Option<&str>,
    ) -> Result<(u64, String), UploadError> {
        let got = crate::digest::hex(self.hash.clone().finish().as_ref());
        if let Some(want) = expected {
            if !want.eq_ignore_ascii_case(&got) {
                self.abort().await;
                return Err(UploadError::HashMismatch {
                    expected: want.to_ascii_lowercase(),
                    got,
                });
            }
        }
        let io = |e: std::io::Error| UploadError::Io(format!("saving the file: {e}"));
        self.file.flush().await.map_err(io)?;
        self.file.sync_all().await.map_err(io)?;
        tokio::fs::rename(&self.tmp, final_path).await.map_err(io)?;
        Ok((self.size, got))
    }

    /// Forgets the partial file.
    pub async fn abort(self) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_hashes() {
        assert!(check_name("XX230v_1.2.3-build.bin").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", "é.bin", &"x".repeat(129), ".."] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(is_id(&new_id().unwrap()));
        assert!(!is_id("../../etc/passwd"));
        assert!(!is_id("0123456789ABCDEF"));
        assert!(is_sha256(&"aB".repeat(32)));
        assert!(!is_sha256("ab"));
    }

    #[tokio::test]
    async fn an_upload_is_hashed_checked_and_put_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let target = path(dir.path(), "0123456789abcdef");
        let mut u = Upload::start(dir.path(), "0123456789abcdef", 10)
            .await
            .unwrap();
        u.write(b"hello ").await.unwrap();
        u.write(b"you").await.unwrap();
        let sha = "8b9a09d2d3d4a7c5c0e3b1e5f4a1b0f3a7c4a2a4c7e4d6f0b7d8f0d7c2a1e9f3";
        let (size, got) = u.finish(&target, None).await.unwrap();
        assert_eq!(size, 9);
        assert_eq!(std::fs::read(&target).unwrap(), b"hello you");
        assert_ne!(got, sha);
        assert_eq!(got.len(), 64);

        // Declared hash wrong: nothing left behind.
        let other = path(dir.path(), "1111111111111111");
        let mut u = Upload::start(dir.path(), "1111111111111111", 10)
            .await
            .unwrap();
        u.write(b"abc").await.unwrap();
        let e = u.finish(&other, Some(sha)).await.unwrap_err();
        assert!(matches!(e, UploadError::HashMismatch { .. }), "{e}");
        assert!(!other.exists());
        // Too large.
        let mut u = Upload::start(dir.path(), "2222222222222222", 4)
            .await
            .unwrap();
        assert!(matches!(
            u.write(b"12345").await,
            Err(UploadError::TooLarge { max: 4 })
        ));
        u.abort().await;
        let left: Vec<_> = std::fs::read_dir(dir.path().join(DIR)).unwrap().collect();
        assert_eq!(left.len(), 1, "only the finished file");
    }
}

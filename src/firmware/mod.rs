//! Firmware: the files devices download, the links that let one device
//! fetch one file, and (to come) campaigns that roll an image out in waves.
//!
//! - [`link`]: signed download links, pure. A link names the file and the
//!   device it was made for and expires; only the ACS (every node: the key
//!   derives from the installation's shared key) can make one, so a device
//!   may fetch what it was sent and nothing else.
//! - [`range`]: what part of a file a request asks for (`Range`), pure.
//! - [`campaign`]: waves, windows, how a device's rollout ends and what a
//!   campaign does next, pure.
//! - [`files`]: the files on disk under `data_dir/files/`, their records in
//!   the store, uploads streamed to disk with their SHA-256.

pub mod campaign;
pub mod files;
pub mod link;
pub mod range;

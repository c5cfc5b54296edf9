//! Zero-touch provisioning, the pure part: device profiles, identity
//! normalisation, and the planner that turns a device and its desired
//! configuration into RPCs. No I/O here: ERPNext is in [`crate::erpnext`],
//! the session glue in [`crate::server`].

pub mod flow;
pub mod identity;
pub mod plan;
pub mod policy;
pub mod profile;

//! Zero-touch provisioning, the pure part: the device's discovered data
//! model, what to read and write on it (worked out from that model, family
//! profiles for quirks), and the planner that turns a device and its
//! desired configuration into RPCs. No I/O here: ERPNext is in
//! [`crate::erpnext`], storage of data models in [`crate::catalog`], MAC and
//! GPON serial forms in [`crate::identity`], the session glue in
//! [`crate::session`] and [`crate::app`].

pub mod band;
pub mod datamodel;
pub mod export;
pub mod flow;
pub mod plan;
pub mod policy;
pub mod ppp;
pub mod profile;
pub mod targets;
pub mod values;

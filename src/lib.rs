//! gigafibre-acs: a TR-069/CWMP auto-configuration server.
//!
//! Layers, from the wire inwards: [`server`] (HTTP, TLS, auth, limits) feeds
//! request bodies to [`cwmp`] (pure codec) and the resulting messages to
//! [`session`] (pure state machine), whose effects are applied to the
//! [`store`]. [`api`] serves the Ops JSON API from the same store, and
//! [`nbi`] a GenieACS-compatible NBI over it (both through [`service`]).
#![forbid(unsafe_code)]

pub mod accounts;
pub mod alarms;
pub mod api;
pub mod app;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod connreq;
pub mod cwmp;
pub mod digest;
pub mod erpnext;
pub mod events;
pub mod firmware;
pub mod history;
pub mod http_client;
pub mod identity;
pub mod metrics;
pub mod migrate;
pub mod nbi;
pub mod percent;
pub mod provision;
pub mod server;
pub mod session;
pub mod store;
pub mod stun;
pub mod topology;

//! `gigafibre-acs migrate …`: one-off imports from the systems the ACS
//! replaces.
//!
//! - `legacy-wifi`, `legacy-voip`, `legacy-radius`: the old provisioning
//!   tables (CSV) into ERPNext's `Service Equipment` fields: [`legacy`]
//!   (pure) and [`legacy_run`] (ERPNext I/O).
//! - `genieacs-devices`: GenieACS's `devices` collection into the store:
//!   [`genieacs`] (pure), [`genieacs_run`] (the store) and
//!   [`genieacs_cli`] (the command, or through the running ACS).

pub mod genieacs;
pub mod genieacs_cli;
pub mod genieacs_run;
pub mod legacy;
pub mod legacy_run;
pub mod progress;

pub use legacy::{Kind, LegacyError, Report};
pub use legacy_run::{MigrateError, Options, PAGE_LENGTH, read_text, run_legacy};
pub use progress::Progress;

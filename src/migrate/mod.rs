//! Moving an ISP from its previous systems: GenieACS's devices into the
//! store.

pub mod genieacs;
pub mod genieacs_cli;
pub mod genieacs_run;

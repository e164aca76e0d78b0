//! One module per subcommand.

pub mod export;
pub mod fit;
pub mod forward;
pub mod info;
pub mod paper;
pub mod predict;
pub mod sweep;
pub mod sweep_analyze;
pub mod sweep_launch;
pub mod test;
pub mod time;
pub mod train;
pub mod zoo;

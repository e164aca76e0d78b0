//! One module per subcommand.

pub mod export;
pub mod forward;
pub mod info;
pub mod predict;
pub mod test;
pub mod time;
pub mod train;
pub mod zoo;

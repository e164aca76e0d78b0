//! # regnet-core
//!
//! The design-space core of regnet: network specs ([`spec`]), RegNet generation
//! ([`regnet`]), the layer plan ([`network`]), exact pycls complexity ([`complexity`]),
//! pycls configs ([`config`]) and the model zoo ([`zoo`]). No deep-learning dependency.
//!
//! ```
//! use regnet_core::{zoo, complexity::complexity, network::Network};
//! let spec = zoo::lookup("RegNetX-200MF").unwrap().spec();
//! let cx = complexity(&Network::from_spec(&spec).unwrap(), 224, 224);
//! assert_eq!(cx.params, 2_684_792);
//! ```

pub mod atomic_file;
pub mod augment;
pub mod choices;
pub mod complexity;
pub mod config;
pub mod error;
pub mod fast_complexity;
pub mod limits;
pub mod network;
pub mod recipe;
pub mod regnet;
pub mod spec;
pub mod zoo;

pub use error::{Error, Result};

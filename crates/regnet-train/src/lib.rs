//! # regnet-train
//!
//! Training and evaluation with pycls's recipe on burn: SGD with momentum, Nesterov and
//! per-kind weight decay ([`optimizer`]), Adam and AdamW ([`adam`]), soft-target
//! cross-entropy with label smoothing ([`loss`]), mixup and cutmix ([`mix`]), pycls's learning-rate policies with warm-up
//! ([`schedule`]), EMA of weights ([`ema`]), precise BN statistics ([`precise_bn`]),
//! checkpoints with resume ([`checkpoint`]), pycls-compatible `json_stats` logs
//! ([`meters`]), data from the config ([`data`]), `NUM_GPUS` as pycls's data-parallel step
//! on one device ([`data_parallel`]), and the loop itself ([`trainer`]).

pub mod adam;
pub mod checkpoint;
pub mod compiled_eval;
pub mod data;
pub mod data_parallel;
pub mod ema;
pub mod loss;
pub mod memory;
pub mod meters;
pub mod mix;
pub mod optimizer;
pub mod precise_bn;
pub mod schedule;
pub mod timing;
pub mod train_step;
pub mod trainer;

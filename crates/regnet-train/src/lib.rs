//! # regnet-train
//!
//! Training and evaluation with pycls's recipe on burn: SGD with momentum, Nesterov and
//! per-kind weight decay ([`optimizer`]), soft-target cross-entropy with label smoothing,
//! mixup and cutmix ([`loss`]), pycls's learning-rate policies with warm-up
//! ([`schedule`]), EMA of weights, precise BN statistics, checkpoints with resume, and
//! pycls-compatible `json_stats` logs.

pub mod loss;
pub mod optimizer;
pub mod timing;

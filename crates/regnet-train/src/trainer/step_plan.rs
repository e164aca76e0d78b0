//! [`StepPlan`]: the effective optimizer step of a config in pycls's terms, logged when
//! training starts so that an 8-GPU recipe says what one step does here.

use std::fmt;

use regnet_core::config::Config;
use regnet_core::error::Error;

use super::TrainError;
use crate::schedule::Schedule;

/// One optimizer step as pycls takes it: `TRAIN.BATCH_SIZE` images split over `NUM_GPUS`
/// replicas of `TRAIN.BATCH_SIZE / NUM_GPUS` images each (each with its own batch-norm
/// statistics; their gradients are averaged), at the learning rate of the schedule.
/// pycls applies `OPTIM.BASE_LR` as it is, never scaled by `NUM_GPUS` or the batch size:
/// the zoo recipes set it for their total batch (0.8 for 1024 images).
#[derive(Clone, Debug, PartialEq)]
pub struct StepPlan {
    /// Images per optimizer step (`TRAIN.BATCH_SIZE`).
    pub batch: usize,
    /// Replicas, pycls's processes (`NUM_GPUS`).
    pub replicas: usize,
    /// Images per replica (pycls's per-process loader batch).
    pub replica_batch: usize,
    /// `OPTIM.BASE_LR`, the rate after warm-up (before the policy decays it).
    pub base_lr: f64,
    /// The rate of the first epoch (`BASE_LR * WARMUP_FACTOR` with warm-up).
    pub first_lr: f64,
    /// `OPTIM.WARMUP_EPOCHS`.
    pub warmup_epochs: usize,
}

impl StepPlan {
    /// The step of `cfg`; refuses, as pycls does, a batch that `NUM_GPUS` does not divide.
    pub fn new(cfg: &Config) -> Result<Self, TrainError> {
        let (batch, replicas) = (cfg.train.batch_size, cfg.num_gpus);
        if replicas == 0 {
            let msg = "0: training needs at least one replica (pycls's process per GPU)";
            return Err(Error::config(&cfg.origin, "NUM_GPUS", msg).into());
        }
        if !batch.is_multiple_of(replicas) {
            let msg = format!(
                "{batch} is not a multiple of NUM_GPUS {replicas} (pycls splits the batch into \
                 NUM_GPUS equal parts)"
            );
            return Err(Error::config(&cfg.origin, "TRAIN.BATCH_SIZE", msg).into());
        }
        Ok(StepPlan {
            batch,
            replicas,
            replica_batch: batch / replicas,
            base_lr: cfg.optim.base_lr,
            first_lr: Schedule::new(&cfg.optim)?.lr(0),
            warmup_epochs: cfg.optim.warmup_epochs,
        })
    }
}

/// `x` with up to 6 decimals, trailing zeros dropped.
fn short(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_string()
}

impl fmt::Display for StepPlan {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Step: batch {} (TRAIN.BATCH_SIZE) = NUM_GPUS {} x {} images per replica, \
             gradients averaged; learning rate {} (OPTIM.BASE_LR, not scaled by NUM_GPUS, as \
             in pycls); epoch 1 at {}",
            self.batch,
            self.replicas,
            self.replica_batch,
            short(self.base_lr),
            short(self.first_lr)
        )?;
        if self.warmup_epochs > 0 {
            write!(f, " (warm-up over {} epochs)", self.warmup_epochs)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_recipe_step() {
        let mut cfg = Config::default();
        #[rustfmt::skip]
        let o = [
            "TRAIN.BATCH_SIZE", "1024", "NUM_GPUS", "8", "OPTIM.BASE_LR", "0.8",
            "OPTIM.WARMUP_EPOCHS", "5",
        ];
        cfg.merge_overrides(&o).unwrap();
        let p = StepPlan::new(&cfg).unwrap();
        assert_eq!((p.batch, p.replicas, p.replica_batch), (1024, 8, 128));
        assert!((p.first_lr - 0.08).abs() < 1e-12, "{p:?}");
        let line = p.to_string();
        assert!(
            line.contains("= NUM_GPUS 8 x 128 images per replica"),
            "{line}"
        );
        assert!(line.contains("learning rate 0.8 (") && line.contains("epoch 1 at 0.08 ("));
    }

    #[test]
    fn batch_not_divisible_by_num_gpus_is_refused() {
        let mut cfg = Config::default();
        cfg.merge_overrides(&["TRAIN.BATCH_SIZE", "100", "NUM_GPUS", "8"])
            .unwrap();
        let e = StepPlan::new(&cfg).unwrap_err().to_string();
        assert!(
            e.contains("TRAIN.BATCH_SIZE: 100 is not a multiple of NUM_GPUS 8"),
            "{e}"
        );
        cfg.merge_overrides(&["NUM_GPUS", "0"]).unwrap();
        let e = StepPlan::new(&cfg).unwrap_err().to_string();
        assert!(e.contains("NUM_GPUS: 0"), "{e}");
    }
}

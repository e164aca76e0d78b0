//! pycls's learning-rate policies, stepped once per epoch: `cos`, `exp`, `lin` and `steps`,
//! scaled by `OPTIM.BASE_LR`, with linear warm-up from `BASE_LR * WARMUP_FACTOR` over
//! `OPTIM.WARMUP_EPOCHS`.

use regnet_core::config::{LrPolicy, OptimCfg};

/// Why a schedule cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    /// `exp` needs a positive `OPTIM.MIN_LR`.
    #[error("OPTIM.MIN_LR: the exp policy needs MIN_LR > 0")]
    ExpNeedsMinLr,
    /// `steps` needs `OPTIM.STEPS` starting at 0.
    #[error("OPTIM.STEPS: the steps policy needs a list starting at 0, got {0:?}")]
    BadSteps(Vec<usize>),
    /// `OPTIM.MAX_EPOCH` is 0.
    #[error("OPTIM.MAX_EPOCH: must be at least 1")]
    NoEpochs,
}

/// The learning rate of every epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    cfg: OptimCfg,
}

impl Schedule {
    /// Checks the policy and its parameters.
    pub fn new(cfg: &OptimCfg) -> Result<Self, ScheduleError> {
        if cfg.max_epoch == 0 {
            return Err(ScheduleError::NoEpochs);
        }
        match cfg.lr_policy {
            LrPolicy::Cos | LrPolicy::Lin => {}
            LrPolicy::Exp if cfg.min_lr > 0.0 => {}
            LrPolicy::Exp => return Err(ScheduleError::ExpNeedsMinLr),
            LrPolicy::Steps if cfg.steps.first() == Some(&0) => {}
            LrPolicy::Steps => return Err(ScheduleError::BadSteps(cfg.steps.clone())),
        }
        Ok(Schedule { cfg: cfg.clone() })
    }

    /// The policy's multiplier of `BASE_LR` at `epoch` (0-based), before warm-up.
    pub fn policy(&self, epoch: usize) -> f64 {
        let c = &self.cfg;
        let t = epoch as f64 / c.max_epoch as f64;
        match c.lr_policy {
            LrPolicy::Cos => {
                let lr = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                (1.0 - c.min_lr) * lr + c.min_lr
            }
            LrPolicy::Lin => (1.0 - c.min_lr) * (1.0 - t) + c.min_lr,
            LrPolicy::Exp => c.min_lr.powf(t),
            LrPolicy::Steps => {
                let ind = c.steps.iter().rposition(|&s| epoch >= s).unwrap_or(0);
                c.lr_mult.powi(ind as i32)
            }
        }
    }

    /// The learning rate of `epoch` (0-based), warm-up included.
    pub fn lr(&self, epoch: usize) -> f64 {
        let c = &self.cfg;
        let mut lr = self.policy(epoch) * c.base_lr;
        if epoch < c.warmup_epochs {
            let alpha = epoch as f64 / c.warmup_epochs as f64;
            lr *= c.warmup_factor * (1.0 - alpha) + alpha;
        }
        lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(policy: LrPolicy) -> OptimCfg {
        OptimCfg {
            lr_policy: policy,
            base_lr: 0.8,
            max_epoch: 10,
            ..OptimCfg::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn cosine_by_hand() {
        let s = Schedule::new(&cfg(LrPolicy::Cos)).unwrap();
        assert!(close(s.lr(0), 0.8));
        assert!(close(s.lr(5), 0.4));
        assert!(close(s.lr(10), 0.0));
        // 0.8 * 0.5 * (1 + cos(pi * 2 / 10))
        assert!(close(
            s.lr(2),
            0.8 * 0.5 * (1.0 + (std::f64::consts::PI / 5.0).cos())
        ));
        let mut c = cfg(LrPolicy::Cos);
        c.min_lr = 0.1;
        let s = Schedule::new(&c).unwrap();
        assert!(close(s.lr(10), 0.08));
        assert!(close(s.lr(5), 0.8 * (0.9 * 0.5 + 0.1)));
    }

    #[test]
    fn linear_exponential_steps_by_hand() {
        let s = Schedule::new(&cfg(LrPolicy::Lin)).unwrap();
        assert!(close(s.lr(3), 0.8 * 0.7));
        let mut c = cfg(LrPolicy::Exp);
        c.min_lr = 0.01;
        let s = Schedule::new(&c).unwrap();
        assert!(close(s.lr(5), 0.8 * 0.1));
        assert!(close(s.lr(10), 0.8 * 0.01));
        let mut c = cfg(LrPolicy::Steps);
        c.steps = vec![0, 3, 6];
        c.lr_mult = 0.1;
        let s = Schedule::new(&c).unwrap();
        let lrs: Vec<f64> = (0..8).map(|e| s.lr(e)).collect();
        for (e, want) in [
            (0, 0.8),
            (2, 0.8),
            (3, 0.08),
            (5, 0.08),
            (6, 0.008),
            (7, 0.008),
        ] {
            assert!(close(lrs[e], want), "epoch {e}: {} vs {want}", lrs[e]);
        }
    }

    #[test]
    fn warmup_values() {
        for (warmup, factor) in [(1usize, 0.1), (5, 0.1), (3, 0.5), (2, 0.0)] {
            let mut c = cfg(LrPolicy::Cos);
            c.warmup_epochs = warmup;
            c.warmup_factor = factor;
            let s = Schedule::new(&c).unwrap();
            for e in 0..10 {
                let mut want = s.policy(e) * 0.8;
                if e < warmup {
                    let a = e as f64 / warmup as f64;
                    want *= factor * (1.0 - a) + a;
                }
                assert!(close(s.lr(e), want), "warmup {warmup} epoch {e}");
            }
            assert!(
                close(s.lr(0), 0.8 * factor),
                "starts at BASE_LR * WARMUP_FACTOR"
            );
            assert!(
                close(s.lr(warmup), s.policy(warmup) * 0.8),
                "ends after WARMUP_EPOCHS"
            );
        }
    }

    #[test]
    fn bad_policies_are_errors() {
        assert_eq!(
            Schedule::new(&cfg(LrPolicy::Exp)).unwrap_err(),
            ScheduleError::ExpNeedsMinLr
        );
        let mut c = cfg(LrPolicy::Steps);
        c.steps = vec![3, 6];
        assert!(matches!(
            Schedule::new(&c).unwrap_err(),
            ScheduleError::BadSteps(_)
        ));
        let mut c = cfg(LrPolicy::Cos);
        c.max_epoch = 0;
        assert_eq!(Schedule::new(&c).unwrap_err(), ScheduleError::NoEpochs);
    }
}

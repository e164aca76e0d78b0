//! Exponential moving average of the weights, as pycls's `update_model_ema`: every
//! `OPTIM.EMA_UPDATE_PERIOD` iterations, `ema = (1 - a) * ema + a * model` over the whole
//! state dict (BN statistics included), with `a = min(1, EMA_ALPHA * BATCH_SIZE / MAX_EPOCH
//! * period)`, and a plain copy during warm-up.

use regnet_core::config::Config;
use regnet_nn::StateDict;

/// The EMA update value for `cfg`, or `None` when EMA is off (period 0).
pub fn ema_alpha(cfg: &Config, epoch: usize, iter: usize) -> Option<f64> {
    let period = cfg.optim.ema_update_period;
    if period == 0 || !iter.is_multiple_of(period) {
        return None;
    }
    let adjust = cfg.train.batch_size as f64 / cfg.optim.max_epoch as f64 * period as f64;
    let alpha = (cfg.optim.ema_alpha * adjust).min(1.0);
    Some(if epoch < cfg.optim.warmup_epochs {
        1.0
    } else {
        alpha
    })
}

/// `ema = (1 - alpha) * ema + alpha * model`, tensor by tensor.
pub fn update(ema: &mut StateDict, model: &StateDict, alpha: f64) {
    for (name, e) in ema.tensors.iter_mut() {
        if let Some(m) = model.get(name) {
            for (a, b) in e.data.iter_mut().zip(&m.data) {
                *a = (*a as f64 * (1.0 - alpha) + *b as f64 * alpha) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regnet_nn::TensorF32;

    #[test]
    fn update_by_hand() {
        let mut ema = StateDict::default();
        ema.insert("w", TensorF32::new(vec![2], vec![1.0, 2.0]));
        let mut model = StateDict::default();
        model.insert("w", TensorF32::new(vec![2], vec![3.0, 6.0]));
        update(&mut ema, &model, 0.25);
        assert_eq!(ema.get("w").unwrap().data, vec![1.5, 3.0]);
        update(&mut ema, &model, 1.0);
        assert_eq!(ema.get("w").unwrap().data, vec![3.0, 6.0]);
    }

    #[test]
    fn alpha_follows_pycls() {
        let mut cfg = Config::default();
        cfg.train.batch_size = 128;
        cfg.optim.max_epoch = 200;
        cfg.optim.ema_alpha = 1e-5;
        cfg.optim.ema_update_period = 32;
        cfg.optim.warmup_epochs = 2;
        assert_eq!(ema_alpha(&cfg, 0, 1), None);
        assert_eq!(ema_alpha(&cfg, 0, 32), Some(1.0), "copy during warm-up");
        let a = ema_alpha(&cfg, 5, 64).unwrap();
        assert!((a - 1e-5 * 128.0 / 200.0 * 32.0).abs() < 1e-15);
        cfg.optim.ema_update_period = 0;
        assert_eq!(ema_alpha(&cfg, 5, 0), None);
    }
}

//! Times forward + loss + backward of a training step on flex (no optimizer), for
//! profiling the training kernels without the trainer.
//! `cargo run --release -p regnet-nn --example train_bench -- ITERS BATCH SIZE KEY VALUE...`

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Distribution, Tensor};
use regnet_core::config::Config;
use regnet_nn::{Model, device};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let (iters, batch, size): (usize, usize, usize) = (
        a[0].parse().unwrap(),
        a[1].parse().unwrap(),
        a[2].parse().unwrap(),
    );
    let mut cfg = Config::default();
    cfg.merge_overrides(&a[3..]).unwrap();
    let spec = cfg.spec().unwrap();
    let dev = device::cpu().autodiff();
    let model = Model::init(&spec, 0, false, &dev).unwrap();
    let x = Tensor::<4>::random(
        [batch, spec.in_channels, size, size],
        Distribution::Normal(0.0, 1.0),
        &dev,
    );
    let t = Tensor::<2>::random(
        [batch, spec.num_classes],
        Distribution::Uniform(0.0, 1.0),
        &dev,
    );
    // ON_WORKER=1 runs the steps on a worker of rayon's pool, so that the kernels' parallel
    // loops start from inside the pool instead of waking it from outside (a comparison aid).
    let on_worker = std::env::var("ON_WORKER").is_ok_and(|v| v == "1");
    let run = || {
        let mut times = Vec::new();
        for i in 0..iters + 3 {
            let s = Instant::now();
            let logits = model.forward(x.clone());
            let loss = (t.clone() * log_softmax(logits, 1)).sum().neg();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            std::hint::black_box(grads);
            if i >= 3 {
                times.push(s.elapsed().as_secs_f64() * 1e3);
            }
        }
        times
    };
    let mut times = if on_worker {
        let mut out = Vec::new();
        rayon::scope(|_| out = run());
        out
    } else {
        run()
    };
    times.sort_by(f64::total_cmp);
    println!(
        "fw+bw median {:.2} ms (min {:.2})",
        times[times.len() / 2],
        times[0]
    );
}

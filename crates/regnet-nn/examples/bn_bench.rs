//! Times regnet's batch-norm kernels (no burn) for one shape (a profiling aid); prints the
//! minimum over repetitions, which the load of a shared machine disturbs least.
//! `cargo run --release -p regnet-nn --example bn_bench -- N C HW` (`RELU=1`: with the ReLU fused)

use std::time::Instant;

use regnet_nn::kernels::batch_norm::{self as bn, BnAffine, BnGeom};

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let [n, c, hw] = a[..] else { panic!("N C HW") };
    let g = BnGeom { n, c, hw };
    let len = n * c * hw;
    let x: Vec<f32> = (0..len).map(|i| (i % 7) as f32 * 0.1).collect();
    let dy: Vec<f32> = (0..len).map(|i| (i % 3) as f32 * 0.1).collect();
    let (gamma, beta) = (vec![1.0f32; c], vec![0.0f32; c]);
    let min_ms = |f: &dyn Fn()| {
        (0..50)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min)
    };
    let relu = std::env::var_os("RELU").is_some();
    let p = BnAffine {
        gamma: &gamma,
        beta: &beta,
        eps: 1e-5,
        relu,
    };
    let (mean, var) = bn::stats(&x, &g);
    let fw = min_ms(&|| {
        std::hint::black_box(bn::train_forward(&x, &p, &g));
    });
    let bw = min_ms(&|| {
        std::hint::black_box(bn::backward_train((&x, &dy), &p, (&mean, &var), &g));
    });
    println!("{g:?} (ReLU fused: {relu}): forward {fw:.3} ms, backward {bw:.3} ms");
}

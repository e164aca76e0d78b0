//! Times regnet's raw conv kernels (no burn) for one shape (a profiling aid).
//! `cargo run --release -p regnet-nn --example kernel_bench -- N C_IN C_OUT H K STRIDE GROUPS`

use std::time::Instant;

use regnet_nn::kernels::conv::{self, ConvGeom};

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let [n, ci, co, h, k, s, g] = a[..] else {
        panic!("N C_IN C_OUT H K STRIDE GROUPS")
    };
    let geom = ConvGeom {
        n,
        ci,
        co,
        h,
        w: h,
        k,
        s,
        p: (k - 1) / 2,
        g,
    };
    let (xl, wl, yl) = geom.sizes();
    let x: Vec<f32> = (0..xl).map(|i| (i % 7) as f32 * 0.1).collect();
    let w: Vec<f32> = (0..wl).map(|i| (i % 5) as f32 * 0.1).collect();
    let dy: Vec<f32> = (0..yl).map(|i| (i % 3) as f32 * 0.1).collect();
    let time = |f: &dyn Fn()| {
        f();
        let mut v: Vec<f64> = (0..9)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v[4]
    };
    let macs = (n * co * geom.oh() * geom.ow() * (ci / g) * k * k) as f64;
    let fw = time(&|| {
        std::hint::black_box(conv::forward(&x, &w, &geom));
    });
    let bd = time(&|| {
        std::hint::black_box(conv::backward_data(&dy, &w, &geom));
    });
    let bw = time(&|| {
        std::hint::black_box(conv::backward_weight(&x, &dy, &geom));
    });
    println!(
        "{geom:?}: fw {fw:.2} ms ({:.1} GMAC/s), bwd-data {bd:.2} ms, bwd-weight {bw:.2} ms",
        macs / fw / 1e6
    );
}

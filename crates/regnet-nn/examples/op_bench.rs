//! Times burn conv2d forward and backward for given shapes (a profiling aid).
//! `cargo run --release -p regnet-nn --example op_bench -- N C_IN C_OUT H K STRIDE GROUPS`

use std::time::Instant;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let [n, ci, co, h, k, s, g] = a[..] else {
        panic!("N C_IN C_OUT H K STRIDE GROUPS")
    };
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let x = Tensor::<4>::random([n, ci, h, h], Distribution::Normal(0.0, 1.0), &dev);
    let w = Tensor::<4>::random([co, ci / g, k, k], Distribution::Normal(0.0, 1.0), &dev);
    let opt = ConvOptions::new([s, s], [(k - 1) / 2; 2], [1, 1], g);
    let time = |f: &dyn Fn()| {
        f();
        let mut v: Vec<f64> = (0..7)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v[3]
    };
    let fw = time(&|| {
        let _ = conv2d(x.clone(), w.clone(), None, opt.clone()).into_data();
    });
    let fwbw = time(&|| {
        let xa = Tensor::<4>::from_inner(x.clone()).require_grad();
        let wa = Tensor::<4>::from_inner(w.clone()).require_grad();
        let y = conv2d(xa.clone(), wa.clone(), None, opt.clone());
        let g = y.sum().backward();
        let _ = wa.grad(&g).unwrap().into_data();
        let _ = xa.grad(&g).unwrap().into_data();
    });
    let _ = ad;
    let p = (k - 1) / 2;
    let rfw = time(&|| {
        let _ = regnet_nn::conv_ext::conv2d(x.clone(), w.clone(), s, p, g).into_data();
    });
    let rfwbw = time(&|| {
        let xa = Tensor::<4>::from_inner(x.clone()).require_grad();
        let wa = Tensor::<4>::from_inner(w.clone()).require_grad();
        let y = regnet_nn::conv_ext::conv2d(xa.clone(), wa.clone(), s, p, g);
        let g = y.sum().backward();
        let _ = wa.grad(&g).unwrap().into_data();
        let _ = xa.grad(&g).unwrap().into_data();
    });
    println!(
        "n{n} ci{ci} co{co} h{h} k{k} s{s} g{g}: burn fw {fw:.2} ms, fw+bw {fwbw:.2} ms | regnet fw {rfw:.2} ms, fw+bw {rfwbw:.2} ms"
    );
}

//! What the kernels' unit tests share: deterministic values and the epilogues to try.

use crate::direct::DirectConv;
use crate::epilogue::{Act, Epilogue};

/// A deterministic pseudo-random value in [-1, 1).
pub(crate) fn val(i: usize, salt: usize) -> f32 {
    let x = (i * 2_654_435_761 + salt * 40_503) % 1_000_003;
    x as f32 / 500_001.5 - 1.0
}

/// None; ReLU; SiLU, then a residual, then ReLU.
pub(crate) fn epilogues() -> [Epilogue; 3] {
    [
        Epilogue::default(),
        Epilogue {
            act: Some(Act::Relu),
            ..Epilogue::default()
        },
        Epilogue {
            act: Some(Act::Silu),
            residual: true,
            act_after: Some(Act::Relu),
        },
    ]
}

/// `cv` by its definition, bias included, epilogue not: NHWC input `x` of `[n, h, w]` pixels,
/// PyTorch weight `w` (`[c_out, c_in / groups, k, k]`).
pub(crate) fn plain_conv(
    cv: &DirectConv,
    w: &[f32],
    x: &[f32],
    [n, h, wd]: [usize; 3],
) -> Vec<f32> {
    let (ho, wo) = cv.out_hw(h, wd);
    let (k, c) = (cv.k, cv.c_in);
    let (cin_g, cout_g) = (c / cv.groups, cv.c_out / cv.groups);
    let mut out = Vec::with_capacity(n * ho * wo * cv.c_out);
    for b in 0..n {
        for oy in 0..ho {
            for ox in 0..wo {
                for o in 0..cv.c_out {
                    let first = o / cout_g * cin_g;
                    let mut s = cv.bias[o];
                    for ky in 0..k {
                        for kx in 0..k {
                            let y = (oy * cv.stride + ky).wrapping_sub(cv.pad);
                            let xx = (ox * cv.stride + kx).wrapping_sub(cv.pad);
                            if y >= h || xx >= wd {
                                continue;
                            }
                            for ci in 0..cin_g {
                                s += x[((b * h + y) * wd + xx) * c + first + ci]
                                    * w[((o * cin_g + ci) * k + ky) * k + kx];
                            }
                        }
                    }
                    out.push(s);
                }
            }
        }
    }
    out
}

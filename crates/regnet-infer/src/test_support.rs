//! What the kernels' unit tests share: deterministic values and the epilogues to try.

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

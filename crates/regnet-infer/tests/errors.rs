//! Bad input to the compiled path is a clear error, never a panic.

mod common;

use common::random_state_dict;
use regnet_core::network::Network;
use regnet_infer::{CompiledNet, InferError, MAX_ACTIVATION_ELEMS, SimdLevel};

fn tiny() -> (Network, CompiledNet) {
    let spec = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().spec();
    let net = Network::from_spec(&spec).unwrap();
    let sd = random_state_dict(&net, 1);
    let compiled = CompiledNet::compile(&net, &sd, 1e-5).unwrap();
    (net, compiled)
}

fn input_error(r: Result<Vec<f32>, InferError>, needle: &str) {
    match r {
        Err(InferError::Input(msg)) => assert!(msg.contains(needle), "{msg:?} lacks {needle:?}"),
        other => panic!("expected an input error mentioning {needle:?}, got {other:?}"),
    }
}

#[test]
fn wrong_channel_count() {
    let (_, mut c) = tiny();
    input_error(c.forward(&vec![0.0; 4 * 8 * 8], [1, 4, 8, 8]), "4 channels");
}

#[test]
fn length_does_not_match_shape() {
    let (_, mut c) = tiny();
    input_error(
        c.forward(&vec![0.0; 3 * 8 * 8 - 1], [1, 3, 8, 8]),
        "191 values",
    );
}

#[test]
fn zero_dimensions() {
    let (_, mut c) = tiny();
    input_error(c.forward(&[], [0, 3, 8, 8]), "zero dimension");
    input_error(c.forward(&[], [1, 3, 0, 8]), "zero dimension");
}

#[test]
fn overflowing_and_oversized_shapes() {
    let (_, mut c) = tiny();
    input_error(c.forward(&[0.0; 3], [usize::MAX, 3, 2, 2]), "overflows");
    // The length check passes only for a real buffer, so an oversized batch is refused by
    // the activation bound before anything is allocated: ask with a matching length.
    let side = 4096;
    let n = MAX_ACTIVATION_ELEMS / (3 * side * side) + 1;
    let shape = [n, 3, side, side];
    let len: usize = shape.iter().product();
    assert!(len > MAX_ACTIVATION_ELEMS);
    let input = vec![0.0f32; len];
    input_error(c.forward(&input, shape), "at most");
}

#[test]
fn smallest_images_run() {
    // "Same" padding keeps every activation at least 1x1, so a 1x1 image is valid input.
    let (_, mut c) = tiny();
    let y = c.forward(&[0.5, -0.5, 0.25], [1, 3, 1, 1]).unwrap();
    assert_eq!(y.len(), 1000);
    assert!(y.iter().all(|v| v.is_finite()));
}

#[test]
fn weights_that_do_not_fit_the_plan() {
    let (net, _) = tiny();
    let mut sd = random_state_dict(&net, 2);
    sd.tensors.remove("s1.b1.f.b_bn.running_var");
    let e = CompiledNet::compile(&net, &sd, 1e-5).unwrap_err();
    assert!(e.to_string().contains("s1.b1.f.b_bn.running_var"), "{e}");
}

#[test]
fn simd_levels_parse_and_unsupported_ones_are_refused() {
    assert_eq!("avx512".parse::<SimdLevel>(), Ok(SimdLevel::Avx512));
    assert_eq!("AVX2".parse::<SimdLevel>(), Ok(SimdLevel::Avx2));
    assert_eq!("portable".parse::<SimdLevel>(), Ok(SimdLevel::Portable));
    assert!("sse9".parse::<SimdLevel>().unwrap_err().contains("sse9"));
    let (_, mut c) = tiny();
    for level in [SimdLevel::Portable, SimdLevel::Avx2, SimdLevel::Avx512] {
        let r = c.set_level(level);
        assert_eq!(r.is_ok(), level.supported(), "{level}: {r:?}");
    }
    assert!(SimdLevel::available().contains(&SimdLevel::Portable));
    assert_eq!(SimdLevel::detect(), *SimdLevel::available().last().unwrap());
}

//! `regnet predict` end to end on generated images and weights.

mod common;

use common::{fails, ok};
use regnet_core::network::Network;
use regnet_nn::init::init_state_dict;
use regnet_nn::weights::{ChannelOrder, write_safetensors};
use serde_json::Value;

#[test]
fn predict_top5_json_and_bgr_switch() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().spec();
    let net = Network::from_spec(&spec).unwrap();
    let mut sd = init_state_dict(&net, 3, false);
    let rgb = tmp.path().join("rgb.safetensors");
    write_safetensors(&rgb, &sd, &spec, ChannelOrder::Rgb).unwrap();
    // The same weights for BGR input: stem flipped, recorded as such.
    sd.flip_stem_channels().unwrap();
    let bgr = tmp.path().join("bgr.safetensors");
    write_safetensors(&bgr, &sd, &spec, ChannelOrder::Bgr).unwrap();

    let img = tmp.path().join("img.png");
    let pixels = image::RgbImage::from_fn(300, 200, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    });
    pixels.save(&img).unwrap();

    let run = |w: &std::path::Path| -> Value {
        serde_json::from_str(&ok(&[
            "predict",
            "--weights",
            w.to_str().unwrap(),
            "--json",
            "--",
            img.to_str().unwrap(),
        ]))
        .unwrap()
    };
    let a = run(&rgb);
    let top = a[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    let probs: Vec<f64> = top.iter().map(|t| t["prob"].as_f64().unwrap()).collect();
    assert!(probs.windows(2).all(|p| p[0] >= p[1]), "{probs:?}");
    assert!(probs.iter().sum::<f64>() <= 1.0 + 1e-6);
    let classes = regnet_data::imagenet_classes();
    for t in top {
        assert_eq!(
            t["name"].as_str().unwrap(),
            classes[t["class"].as_u64().unwrap() as usize]
        );
    }
    // BGR weights fed BGR images predict exactly what RGB weights fed RGB images do.
    let b = run(&bgr);
    for (x, y) in top.iter().zip(b[0]["top"].as_array().unwrap()) {
        assert_eq!(x["class"], y["class"]);
        assert!((x["prob"].as_f64().unwrap() - y["prob"].as_f64().unwrap()).abs() < 1e-6);
    }

    let err = fails(&[
        "predict",
        "--weights",
        rgb.to_str().unwrap(),
        "--",
        "/nonexistent.png",
    ]);
    assert!(err.contains("/nonexistent.png"), "{err}");
    let notimage = tmp.path().join("notimage.jpg");
    std::fs::write(&notimage, b"hello").unwrap();
    let err = fails(&[
        "predict",
        "--weights",
        rgb.to_str().unwrap(),
        "--",
        notimage.to_str().unwrap(),
    ]);
    assert!(err.contains("notimage.jpg"), "{err}");
}

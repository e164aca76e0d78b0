//! The model zoo: pycls's RegNetX/RegNetY, ResNet/ResNeXt and EfficientNet baselines with
//! their config values, the published ImageNet errors and pycls's V100 timings, looked up
//! by pycls name (`RegNetX-400MF`), timm name (`regnetx_004`, `regnety_008_tv`) or
//! torchvision name (`regnet_y_800mf`), case-insensitively.
//!
//! Like timm, the architecture of each entry is one typed config; where weights come from
//! (URLs, key names) is kept apart, in [`ZooModel::pycls_weights`] and the importers.

use crate::config::Config;
use crate::error::{Error, Result, closest};
use crate::spec::NetSpec;

/// Model families of the zoo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// RegNet without SE.
    RegNetX,
    /// RegNet with SE.
    RegNetY,
    /// ResNet (AnyNet, `res_stem_in`, bottleneck 1/4).
    ResNet,
    /// ResNeXt 32x4d.
    ResNeXt,
    /// EfficientNet.
    EfficientNet,
}

/// The architecture of a zoo entry, as its pycls config writes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ZooArch {
    /// `REGNET.{DEPTH, W0, WA, WM, GROUP_W, SE_ON}`.
    RegNet {
        /// Depth.
        depth: usize,
        /// Initial width.
        w0: usize,
        /// Slope.
        wa: f64,
        /// Multiplier.
        wm: f64,
        /// Group width.
        group_w: usize,
        /// SE on (RegNetY).
        se: bool,
    },
    /// ResNe(X)t as an AnyNet: widths 256..2048, strides 1,2,2,2.
    ResNe {
        /// Blocks per stage.
        depths: [usize; 4],
        /// Bottleneck multiplier of every stage.
        bot_mul: f64,
        /// Group width of the first stage (doubling per stage).
        group_w: usize,
    },
    /// EfficientNet: strides 1,2,2,2,1,2,1, expansion 1,6,..., kernels 3,3,5,3,5,5,3.
    EffNet {
        /// Stem width.
        stem_w: usize,
        /// Blocks per stage.
        depths: [usize; 7],
        /// Widths per stage.
        widths: [usize; 7],
        /// Head width.
        head_w: usize,
        /// Train and test image sizes.
        im_size: (usize, usize),
    },
}

/// pycls's training recipe for an entry (8 GPUs, 100 epochs, cosine schedule).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// `OPTIM.BASE_LR`.
    pub base_lr: f64,
    /// `TRAIN.BATCH_SIZE`.
    pub batch_size: usize,
    /// `TEST.BATCH_SIZE`.
    pub test_batch_size: usize,
    /// `OPTIM.WEIGHT_DECAY`.
    pub weight_decay: f64,
    /// `OPTIM.WARMUP_EPOCHS`.
    pub warmup_epochs: usize,
}

/// pycls's per-iteration timings on a V100 (seconds), from its `model_timing.json`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Test forward.
    pub test_fw: f64,
    /// Train forward.
    pub train_fw: f64,
    /// Train backward.
    pub train_bw: f64,
    /// Train forward and backward.
    pub train_fw_bw: f64,
}

/// One zoo model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZooModel {
    /// pycls name.
    pub name: &'static str,
    /// Family.
    pub family: Family,
    /// Architecture.
    pub arch: ZooArch,
    /// Training recipe.
    pub recipe: Recipe,
    /// Published top-1 error (%) of the pycls weights.
    pub top1_err: f64,
    /// Published top-5 error (%).
    pub top5_err: f64,
    /// pycls timings.
    pub timing: Timing,
    /// pycls config path under `configs/`.
    pub pycls_config: &'static str,
    /// pycls weights path under `https://dl.fbaipublicfiles.com/pycls/`.
    pub pycls_weights: &'static str,
    /// timm name (pycls rounding), if timm has the model.
    pub timm: Option<&'static str>,
    /// timm `*_tv` name and torchvision name (torchvision rounding), if they exist.
    pub tv: (Option<&'static str>, Option<&'static str>),
}

/// A zoo hit: the model and the rounding the name asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZooHit {
    /// The model.
    pub model: &'static ZooModel,
    /// Whether the name asked for torchvision rounding (`*_tv`, `regnet_y_800mf`).
    pub torchvision: bool,
}

const RX: Recipe = Recipe {
    base_lr: 0.8,
    batch_size: 1024,
    test_batch_size: 800,
    weight_decay: 5e-5,
    warmup_epochs: 5,
};
const RX4: Recipe = Recipe {
    base_lr: 0.4,
    batch_size: 512,
    test_batch_size: 400,
    weight_decay: 5e-5,
    warmup_epochs: 5,
};
const RX2: Recipe = Recipe {
    base_lr: 0.2,
    batch_size: 256,
    test_batch_size: 200,
    weight_decay: 5e-5,
    warmup_epochs: 5,
};
const RR: Recipe = Recipe {
    base_lr: 0.2,
    batch_size: 256,
    test_batch_size: 200,
    weight_decay: 5e-5,
    warmup_epochs: 0,
};
const fn ren(base_lr: f64, batch_size: usize, test_batch_size: usize) -> Recipe {
    Recipe {
        base_lr,
        batch_size,
        test_batch_size,
        weight_decay: 1e-5,
        warmup_epochs: 0,
    }
}
const fn t(test_fw: f64, train_fw: f64, train_bw: f64, train_fw_bw: f64) -> Timing {
    Timing {
        test_fw,
        train_fw,
        train_bw,
        train_fw_bw,
    }
}
const fn rg(depth: usize, w0: usize, wa: f64, wm: f64, group_w: usize, se: bool) -> ZooArch {
    ZooArch::RegNet {
        depth,
        w0,
        wa,
        wm,
        group_w,
        se,
    }
}
const fn en(
    stem_w: usize,
    depths: [usize; 7],
    widths: [usize; 7],
    head_w: usize,
    im_size: (usize, usize),
) -> ZooArch {
    ZooArch::EffNet {
        stem_w,
        depths,
        widths,
        head_w,
        im_size,
    }
}

macro_rules! m {
    ($name:literal, $fam:ident, $arch:expr, $recipe:expr, $e1:literal, $e5:literal, $t:expr, $cfg:literal, $w:literal, $timm:expr, $tv:expr) => {
        ZooModel {
            name: $name,
            family: Family::$fam,
            arch: $arch,
            recipe: $recipe,
            top1_err: $e1,
            top5_err: $e5,
            timing: $t,
            pycls_config: $cfg,
            pycls_weights: $w,
            timm: $timm,
            tv: $tv,
        }
    };
}

#[rustfmt::skip]
static ZOO: &[ZooModel] = &[
    m!("RegNetX-200MF", RegNetX, rg(13, 24, 36.44, 2.49, 8, false), RX, 31.088, 11.342, t(0.0165, 0.024, 0.0619, 0.0859), "dds_baselines/regnetx/RegNetX-200MF_dds_8gpu.yaml", "dds_baselines/160905981/RegNetX-200MF_dds_8gpu.pyth", Some("regnetx_002"), (None, None)),
    m!("RegNetX-400MF", RegNetX, rg(22, 24, 24.48, 2.54, 16, false), RX, 27.382, 9.076, t(0.0241, 0.0348, 0.0858, 0.1206), "dds_baselines/regnetx/RegNetX-400MF_dds_8gpu.yaml", "dds_baselines/160905967/RegNetX-400MF_dds_8gpu.pyth", Some("regnetx_004"), (Some("regnetx_004_tv"), Some("regnet_x_400mf"))),
    m!("RegNetX-600MF", RegNetX, rg(16, 48, 36.97, 2.24, 24, false), RX, 25.864, 8.198, t(0.0276, 0.0387, 0.092, 0.1307), "dds_baselines/regnetx/RegNetX-600MF_dds_8gpu.yaml", "dds_baselines/160906442/RegNetX-600MF_dds_8gpu.pyth", Some("regnetx_006"), (None, None)),
    m!("RegNetX-800MF", RegNetX, rg(16, 56, 35.73, 2.28, 16, false), RX, 24.846, 7.592, t(0.0359, 0.0484, 0.1213, 0.1698), "dds_baselines/regnetx/RegNetX-800MF_dds_8gpu.yaml", "dds_baselines/160906036/RegNetX-800MF_dds_8gpu.pyth", Some("regnetx_008"), (None, Some("regnet_x_800mf"))),
    m!("RegNetX-1.6GF", RegNetX, rg(18, 80, 34.01, 2.25, 24, false), RX, 23.038, 6.484, t(0.0543, 0.0779, 0.1786, 0.2565), "dds_baselines/regnetx/RegNetX-1.6GF_dds_8gpu.yaml", "dds_baselines/160990626/RegNetX-1.6GF_dds_8gpu.pyth", Some("regnetx_016"), (None, Some("regnet_x_1_6gf"))),
    m!("RegNetX-3.2GF", RegNetX, rg(25, 88, 26.31, 2.25, 48, false), RX4, 21.736, 5.862, t(0.0463, 0.0669, 0.1499, 0.2167), "dds_baselines/regnetx/RegNetX-3.2GF_dds_8gpu.yaml", "dds_baselines/160906139/RegNetX-3.2GF_dds_8gpu.pyth", Some("regnetx_032"), (None, Some("regnet_x_3_2gf"))),
    m!("RegNetX-4.0GF", RegNetX, rg(23, 96, 38.65, 2.43, 40, false), RX4, 21.356, 5.736, t(0.0577, 0.0789, 0.1781, 0.257), "dds_baselines/regnetx/RegNetX-4.0GF_dds_8gpu.yaml", "dds_baselines/160906383/RegNetX-4.0GF_dds_8gpu.pyth", Some("regnetx_040"), (None, None)),
    m!("RegNetX-6.4GF", RegNetX, rg(17, 184, 60.83, 2.07, 56, false), RX4, 20.844, 5.434, t(0.0743, 0.1034, 0.2455, 0.3489), "dds_baselines/regnetx/RegNetX-6.4GF_dds_8gpu.yaml", "dds_baselines/161116590/RegNetX-6.4GF_dds_8gpu.pyth", Some("regnetx_064"), (None, None)),
    m!("RegNetX-8.0GF", RegNetX, rg(23, 80, 49.56, 2.88, 120, false), RX4, 20.728, 5.42, t(0.0754, 0.1062, 0.2352, 0.3414), "dds_baselines/regnetx/RegNetX-8.0GF_dds_8gpu.yaml", "dds_baselines/161107726/RegNetX-8.0GF_dds_8gpu.pyth", Some("regnetx_080"), (None, Some("regnet_x_8gf"))),
    m!("RegNetX-12GF", RegNetX, rg(19, 168, 73.36, 2.37, 112, false), RX4, 20.288, 5.284, t(0.1107, 0.1531, 0.3454, 0.4985), "dds_baselines/regnetx/RegNetX-12GF_dds_8gpu.yaml", "dds_baselines/160906020/RegNetX-12GF_dds_8gpu.pyth", Some("regnetx_120"), (None, None)),
    m!("RegNetX-16GF", RegNetX, rg(22, 216, 55.59, 2.1, 128, false), RX4, 19.956, 5.022, t(0.1333, 0.1861, 0.4086, 0.5947), "dds_baselines/regnetx/RegNetX-16GF_dds_8gpu.yaml", "dds_baselines/158460855/RegNetX-16GF_dds_8gpu.pyth", Some("regnetx_160"), (None, Some("regnet_x_16gf"))),
    m!("RegNetX-32GF", RegNetX, rg(23, 320, 69.86, 2.0, 168, false), RX2, 19.498, 4.878, t(0.1316, 0.1765, 0.4117, 0.5883), "dds_baselines/regnetx/RegNetX-32GF_dds_8gpu.yaml", "dds_baselines/158188473/RegNetX-32GF_dds_8gpu.pyth", Some("regnetx_320"), (None, Some("regnet_x_32gf"))),
    m!("RegNetY-200MF", RegNetY, rg(13, 24, 36.44, 2.49, 8, true), RX, 29.658, 10.378, t(0.0194, 0.026, 0.0683, 0.0943), "dds_baselines/regnety/RegNetY-200MF_dds_8gpu.yaml", "dds_baselines/176245422/RegNetY-200MF_dds_8gpu.pyth", Some("regnety_002"), (None, None)),
    m!("RegNetY-400MF", RegNetY, rg(16, 48, 27.89, 2.09, 8, true), RX, 25.898, 8.07, t(0.0301, 0.0415, 0.1109, 0.1524), "dds_baselines/regnety/RegNetY-400MF_dds_8gpu.yaml", "dds_baselines/160906449/RegNetY-400MF_dds_8gpu.pyth", Some("regnety_004"), (None, Some("regnet_y_400mf"))),
    m!("RegNetY-600MF", RegNetY, rg(15, 48, 32.54, 2.32, 16, true), RX, 24.54, 7.28, t(0.0315, 0.0436, 0.1083, 0.1519), "dds_baselines/regnety/RegNetY-600MF_dds_8gpu.yaml", "dds_baselines/160981443/RegNetY-600MF_dds_8gpu.pyth", Some("regnety_006"), (None, None)),
    m!("RegNetY-800MF", RegNetY, rg(14, 56, 38.84, 2.4, 16, true), RX, 23.684, 6.846, t(0.0365, 0.0508, 0.1255, 0.1763), "dds_baselines/regnety/RegNetY-800MF_dds_8gpu.yaml", "dds_baselines/160906567/RegNetY-800MF_dds_8gpu.pyth", Some("regnety_008"), (Some("regnety_008_tv"), Some("regnet_y_800mf"))),
    m!("RegNetY-1.6GF", RegNetY, rg(27, 48, 20.71, 2.65, 24, true), RX, 22.066, 6.134, t(0.0641, 0.0905, 0.2058, 0.2963), "dds_baselines/regnety/RegNetY-1.6GF_dds_8gpu.yaml", "dds_baselines/160906681/RegNetY-1.6GF_dds_8gpu.pyth", Some("regnety_016"), (None, Some("regnet_y_1_6gf"))),
    m!("RegNetY-3.2GF", RegNetY, rg(21, 80, 42.63, 2.66, 24, true), RX4, 21.074, 5.454, t(0.0539, 0.073, 0.1713, 0.2443), "dds_baselines/regnety/RegNetY-3.2GF_dds_8gpu.yaml", "dds_baselines/160906834/RegNetY-3.2GF_dds_8gpu.pyth", Some("regnety_032"), (None, Some("regnet_y_3_2gf"))),
    m!("RegNetY-4.0GF", RegNetY, rg(22, 96, 31.41, 2.24, 64, true), RX4, 20.64, 5.336, t(0.0538, 0.0757, 0.1758, 0.2515), "dds_baselines/regnety/RegNetY-4.0GF_dds_8gpu.yaml", "dds_baselines/160906838/RegNetY-4.0GF_dds_8gpu.pyth", Some("regnety_040"), (None, None)),
    m!("RegNetY-6.4GF", RegNetY, rg(25, 112, 33.22, 2.27, 72, true), RX4, 20.11, 5.1, t(0.0845, 0.1141, 0.2774, 0.3915), "dds_baselines/regnety/RegNetY-6.4GF_dds_8gpu.yaml", "dds_baselines/160907112/RegNetY-6.4GF_dds_8gpu.pyth", Some("regnety_064"), (None, None)),
    m!("RegNetY-8.0GF", RegNetY, rg(17, 192, 76.82, 2.19, 56, true), RX4, 20.052, 5.06, t(0.0897, 0.126, 0.2956, 0.4216), "dds_baselines/regnety/RegNetY-8.0GF_dds_8gpu.yaml", "dds_baselines/161160905/RegNetY-8.0GF_dds_8gpu.pyth", Some("regnety_080"), (Some("regnety_080_tv"), Some("regnet_y_8gf"))),
    m!("RegNetY-12GF", RegNetY, rg(19, 168, 73.36, 2.37, 112, true), RX4, 19.67, 4.856, t(0.1186, 0.1614, 0.3697, 0.5311), "dds_baselines/regnety/RegNetY-12GF_dds_8gpu.yaml", "dds_baselines/160907100/RegNetY-12GF_dds_8gpu.pyth", Some("regnety_120"), (None, None)),
    m!("RegNetY-16GF", RegNetY, rg(18, 200, 106.23, 2.48, 112, true), RX2, 19.608, 4.944, t(0.0814, 0.107, 0.2582, 0.3652), "dds_baselines/regnety/RegNetY-16GF_dds_8gpu.yaml", "dds_baselines/161303400/RegNetY-16GF_dds_8gpu.pyth", Some("regnety_160"), (None, Some("regnet_y_16gf"))),
    m!("RegNetY-32GF", RegNetY, rg(20, 232, 115.89, 2.53, 232, true), RX2, 19.066, 4.568, t(0.1293, 0.1695, 0.402, 0.5715), "dds_baselines/regnety/RegNetY-32GF_dds_8gpu.yaml", "dds_baselines/161277763/RegNetY-32GF_dds_8gpu.pyth", Some("regnety_320"), (None, Some("regnet_y_32gf"))),
    m!("ResNet-50", ResNet, ZooArch::ResNe { depths: [3, 4, 6, 3], bot_mul: 0.25, group_w: 64 }, RR, 23.19, 6.63, t(0.0223, 0.0325, 0.0741, 0.1066), "dds_baselines/resnet/R-50-1x64d_dds_8gpu.yaml", "dds_baselines/161235311/R-50-1x64d_dds_8gpu.pyth", None, (None, None)),
    m!("ResNet-101", ResNet, ZooArch::ResNe { depths: [3, 4, 23, 3], bot_mul: 0.25, group_w: 64 }, RR, 21.414, 5.792, t(0.0378, 0.0537, 0.1187, 0.1724), "dds_baselines/resnet/R-101-1x64d_dds_8gpu.yaml", "dds_baselines/161167170/R-101-1x64d_dds_8gpu.pyth", None, (None, None)),
    m!("ResNet-152", ResNet, ZooArch::ResNe { depths: [3, 8, 36, 3], bot_mul: 0.25, group_w: 64 }, RR, 20.87, 5.44, t(0.0548, 0.0764, 0.1661, 0.2426), "dds_baselines/resnet/R-152-1x64d_dds_8gpu.yaml", "dds_baselines/161167467/R-152-1x64d_dds_8gpu.pyth", None, (None, None)),
    m!("ResNeXt-50", ResNeXt, ZooArch::ResNe { depths: [3, 4, 6, 3], bot_mul: 0.5, group_w: 4 }, RR, 21.884, 6.062, t(0.0331, 0.0485, 0.1107, 0.1592), "dds_baselines/resnext/X-50-32x4d_dds_8gpu.yaml", "dds_baselines/161167411/X-50-32x4d_dds_8gpu.pyth", None, (None, None)),
    m!("ResNeXt-101", ResNeXt, ZooArch::ResNe { depths: [3, 4, 23, 3], bot_mul: 0.5, group_w: 4 }, RR, 20.664, 5.392, t(0.059, 0.0882, 0.1986, 0.2867), "dds_baselines/resnext/X-101-32x4d_dds_8gpu.yaml", "dds_baselines/161167590/X-101-32x4d_dds_8gpu.pyth", None, (None, None)),
    m!("ResNeXt-152", ResNeXt, ZooArch::ResNe { depths: [3, 8, 36, 3], bot_mul: 0.5, group_w: 4 }, RR, 20.386, 5.318, t(0.0901, 0.1251, 0.2892, 0.4143), "dds_baselines/resnext/X-152-32x4d_dds_8gpu.yaml", "dds_baselines/162471172/X-152-32x4d_dds_8gpu.pyth", None, (None, None)),
    m!("EfficientNet-B0", EfficientNet, en(32, [1, 2, 2, 3, 3, 4, 1], [16, 24, 40, 80, 112, 192, 320], 1280, (224, 256)), ren(0.4, 256, 200), 24.92, 7.814, t(0.0121, 0.0192, 0.0442, 0.0633), "dds_baselines/effnet/EN-B0_dds_8gpu.yaml", "dds_baselines/161305613/EN-B0_dds_8gpu.pyth", None, (None, None)),
    m!("EfficientNet-B1", EfficientNet, en(32, [2, 3, 3, 4, 4, 5, 2], [16, 24, 40, 80, 112, 192, 320], 1280, (240, 274)), ren(0.4, 256, 200), 24.068, 7.228, t(0.0183, 0.0274, 0.0678, 0.0952), "dds_baselines/effnet/EN-B1_dds_8gpu.yaml", "dds_baselines/161304979/EN-B1_dds_8gpu.pyth", None, (None, None)),
    m!("EfficientNet-B2", EfficientNet, en(32, [2, 3, 3, 4, 4, 5, 2], [16, 24, 48, 88, 120, 208, 352], 1408, (260, 298)), ren(0.4, 256, 200), 23.518, 6.968, t(0.0226, 0.0345, 0.0833, 0.1178), "dds_baselines/effnet/EN-B2_dds_8gpu.yaml", "dds_baselines/161305015/EN-B2_dds_8gpu.pyth", None, (None, None)),
    m!("EfficientNet-B3", EfficientNet, en(40, [2, 3, 3, 5, 5, 6, 2], [24, 32, 48, 96, 136, 232, 384], 1536, (300, 342)), ren(0.4, 256, 200), 22.47, 6.514, t(0.0361, 0.054, 0.136, 0.19), "dds_baselines/effnet/EN-B3_dds_8gpu.yaml", "dds_baselines/161305060/EN-B3_dds_8gpu.pyth", None, (None, None)),
    m!("EfficientNet-B4", EfficientNet, en(48, [2, 4, 4, 6, 6, 8, 2], [24, 32, 56, 112, 160, 272, 448], 1792, (380, 434)), ren(0.2, 128, 104), 21.374, 5.808, t(0.0409, 0.058, 0.1473, 0.2053), "dds_baselines/effnet/EN-B4_dds_8gpu.yaml", "dds_baselines/161305098/EN-B4_dds_8gpu.pyth", None, (None, None)),
    m!("EfficientNet-B5", EfficientNet, en(48, [3, 5, 5, 7, 7, 9, 3], [24, 40, 64, 128, 176, 304, 512], 2048, (456, 522)), ren(0.1, 64, 48), 21.674, 6.238, t(0.0418, 0.0645, 0.1559, 0.2204), "dds_baselines/effnet/EN-B5_dds_8gpu.yaml", "dds_baselines/161305138/EN-B5_dds_8gpu.pyth", None, (None, None)),
];

/// Every zoo model, in pycls's order.
pub fn models() -> &'static [ZooModel] {
    ZOO
}

/// Every name a model can be looked up by, with whether it asks for torchvision rounding.
fn names(m: &ZooModel) -> impl Iterator<Item = (&'static str, bool)> {
    [
        Some((m.name, false)),
        m.timm.map(|n| (n, false)),
        m.tv.0.map(|n| (n, true)),
        m.tv.1.map(|n| (n, true)),
    ]
    .into_iter()
    .flatten()
}

/// Looks a model up by pycls, timm or torchvision name (case-insensitive).
pub fn lookup(name: &str) -> Result<ZooHit> {
    for m in ZOO {
        for (alias, torchvision) in names(m) {
            if alias.eq_ignore_ascii_case(name) {
                return Ok(ZooHit {
                    model: m,
                    torchvision,
                });
            }
        }
    }
    let all: Vec<&str> = ZOO.iter().flat_map(|m| names(m).map(|(n, _)| n)).collect();
    let hint = closest(name, all.iter().copied())
        .map(|c| format!(" (did you mean {c}?)"))
        .unwrap_or_else(|| " (see `regnet zoo`)".into());
    Err(Error::UnknownModel {
        name: name.to_string(),
        hint,
    })
}

impl ZooModel {
    /// The full pycls config of this model, as its `configs/` file gives it.
    pub fn config(&self) -> Config {
        let mut c = Config::default();
        c.model.num_classes = 1000;
        c.optim.lr_policy = crate::config::LrPolicy::Cos;
        c.optim.base_lr = self.recipe.base_lr;
        c.optim.max_epoch = 100;
        c.optim.momentum = 0.9;
        c.optim.weight_decay = self.recipe.weight_decay;
        c.optim.warmup_epochs = self.recipe.warmup_epochs;
        c.train.dataset = "imagenet".into();
        c.train.im_size = 224;
        c.train.batch_size = self.recipe.batch_size;
        c.test.dataset = "imagenet".into();
        c.test.im_size = 256;
        c.test.batch_size = self.recipe.test_batch_size;
        c.num_gpus = 8;
        c.out_dir = ".".into();
        match self.arch {
            ZooArch::RegNet {
                depth,
                w0,
                wa,
                wm,
                group_w,
                se,
            } => {
                c.model.ty = "regnet".into();
                c.regnet.depth = depth;
                c.regnet.w0 = w0;
                c.regnet.wa = wa;
                c.regnet.wm = wm;
                c.regnet.group_w = group_w;
                c.regnet.se_on = se;
            }
            ZooArch::ResNe {
                depths,
                bot_mul,
                group_w,
            } => {
                c.model.ty = "anynet".into();
                c.anynet.stem_type = "res_stem_in".into();
                c.anynet.stem_w = 64;
                c.anynet.block_type = "res_bottleneck_block".into();
                c.anynet.strides = vec![1, 2, 2, 2];
                c.anynet.depths = depths.to_vec();
                c.anynet.widths = vec![256, 512, 1024, 2048];
                c.anynet.bot_muls = vec![bot_mul; 4];
                c.anynet.group_ws = (0..4).map(|i| group_w << i).collect();
            }
            ZooArch::EffNet {
                stem_w,
                depths,
                widths,
                head_w,
                im_size,
            } => {
                c.model.ty = "effnet".into();
                c.model.activation_fun = "silu".into();
                c.en.stem_w = stem_w;
                c.en.strides = vec![1, 2, 2, 2, 1, 2, 1];
                c.en.depths = depths.to_vec();
                c.en.widths = widths.to_vec();
                c.en.exp_ratios = vec![1.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0];
                c.en.kernels = vec![3, 3, 5, 3, 5, 5, 3];
                c.en.head_w = head_w;
                (c.train.im_size, c.test.im_size) = im_size;
            }
        }
        c
    }

    /// The network spec (pycls rounding).
    pub fn spec(&self) -> NetSpec {
        self.config().spec().expect("zoo models are valid")
    }
}

impl ZooHit {
    /// The config, with torchvision rounding where the name asked for it.
    pub fn config(&self) -> Config {
        let mut c = self.model.config();
        if self.torchvision {
            c.ext.rounding = "torchvision".into();
        }
        c
    }

    /// The network spec.
    pub fn spec(&self) -> NetSpec {
        self.config().spec().expect("zoo models are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_case_insensitively() {
        assert_eq!(lookup("regnetx-400mf").unwrap().model.name, "RegNetX-400MF");
        let hit = lookup("REGNETY_008_TV").unwrap();
        assert!(hit.torchvision && hit.model.name == "RegNetY-800MF");
        let hit = lookup("regnet_y_800mf").unwrap();
        assert!(hit.torchvision && hit.model.name == "RegNetY-800MF");
        let hit = lookup("regnetx_002").unwrap();
        assert!(!hit.torchvision && hit.model.name == "RegNetX-200MF");
    }

    #[test]
    fn unknown_names_suggest() {
        let e = lookup("RegNetX-200M").unwrap_err().to_string();
        assert!(e.contains("did you mean RegNetX-200MF"), "{e}");
    }

    #[test]
    fn every_alias_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for m in models() {
            for (n, _) in names(m) {
                assert!(seen.insert(n.to_ascii_lowercase()), "{n} twice");
            }
        }
        assert_eq!(models().len(), 36);
    }
}

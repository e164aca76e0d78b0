//! pycls configuration: every key of pycls's `config.py` with its default, YAML files
//! (the `configs/` files and the full `config.yaml` dumps pycls writes, current and 2020
//! releases), `KEY VALUE` overrides, and the conversion to a [`NetSpec`].
//!
//! Loading follows yacs: start from the defaults, merge a file, then overrides. Unknown keys
//! are errors naming the key and the file (with a suggestion), keys pycls deprecated are
//! accepted and ignored, and a value of the wrong type is an error naming the key. As in
//! yacs, strings that read as numbers are numbers (`WEIGHT_DECAY: 5e-5` is a string to
//! YAML 1.1 readers).
//!
//! Keys that take one of a fixed set of names are typed ([`crate::choices`]): a name outside
//! the set is an error naming the key and the names allowed, when the config loads.
//!
//! Keys that pycls does not have live in the `EXT` section, which is left out of dumps
//! while it holds its defaults, so that dumps of plain pycls configs stay pycls configs.

use serde::{Deserialize, Serialize};
use serde_norway::{Mapping, Value};

pub use crate::augment::Augment;
pub use crate::choices::{ChannelOrder, LossFun, LrPolicy, OnCorrupt, Optimizer};
use crate::error::{Error, Origin, Result, closest};
use crate::limits::{
    MAX_BATCH, MAX_BLOCKS, MAX_CLASSES, MAX_CONFIG_BYTES, MAX_EPOCHS, MAX_IM_SIZE, MAX_LIST,
    MAX_LOADER_THREADS, MAX_WIDTH, check_yaml_nesting,
};
use crate::regnet::{RegNet, Rounding};
use crate::spec::{Activation, AnyNet, Arch, EffNet, EffStage, NetSpec, Stage, StemType};

/// Declares a config section: a struct whose fields are pycls keys, with their defaults.
macro_rules! section {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty = $default:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
        pub struct $name { $($(#[$fm])* pub $field: $ty,)* }
        impl Default for $name {
            fn default() -> Self {
                #[allow(clippy::useless_conversion)]
                Self { $($field: <$ty>::from($default),)* }
            }
        }
    };
}

section!(
    /// `MODEL`: model type and classifier.
    ModelCfg {
        /// Model type: `anynet`, `regnet`, `resnet` or `effnet`.
        #[serde(rename = "TYPE")]
        ty: String = "",
        /// Number of weight layers (`resnet` model type).
        depth: usize = 0usize,
        /// Number of classes.
        num_classes: usize = 10usize,
        /// Loss function (pycls has only `cross_entropy`).
        loss_fun: LossFun = LossFun::CrossEntropy,
        /// `relu` or `silu`/`swish`.
        activation_fun: String = "relu",
        /// In-place activations (no effect here).
        activation_inplace: bool = true,
        /// Model scaling type (pycls's scaler tool only).
        scaling_type: String = "",
        /// Model scaling factor (pycls's scaler tool only).
        scaling_factor: f64 = 1.0,
    }
);

section!(
    /// `RESNET`: pycls's classic ResNe(X)t model type.
    ResNetCfg {
        /// `basic_transform` or `bottleneck_transform`.
        trans_fun: String = "basic_transform",
        /// Groups (1: ResNet, > 1: ResNeXt).
        num_groups: usize = 1usize,
        /// Width of each group.
        width_per_group: usize = 64usize,
        /// Stride on the first 1x1 conv (MSRA) instead of the 3x3.
        stride_1x1: bool = true,
    }
);

section!(
    /// `ANYNET`: a hand-written AnyNet.
    AnyNetCfg {
        /// Stem type.
        stem_type: String = "simple_stem_in",
        /// Stem width.
        stem_w: usize = 32usize,
        /// Block type.
        block_type: String = "res_bottleneck_block",
        /// Blocks per stage.
        depths: Vec<usize> = Vec::<usize>::new(),
        /// Width per stage.
        widths: Vec<usize> = Vec::<usize>::new(),
        /// Stride per stage.
        strides: Vec<usize> = Vec::<usize>::new(),
        /// Bottleneck multiplier per stage.
        bot_muls: Vec<f64> = Vec::<f64>::new(),
        /// Group width per stage.
        group_ws: Vec<usize> = Vec::<usize>::new(),
        /// Head conv width (0: none).
        head_w: usize = 0usize,
        /// Squeeze-excitation on.
        se_on: bool = false,
        /// SE ratio.
        se_r: f64 = 0.25,
    }
);

section!(
    /// `REGNET`: the quantized linear parameters.
    RegNetCfg {
        /// Stem type.
        stem_type: String = "simple_stem_in",
        /// Stem width.
        stem_w: usize = 32usize,
        /// Block type.
        block_type: String = "res_bottleneck_block",
        /// Stride of each stage.
        stride: usize = 2usize,
        /// Squeeze-excitation on (RegNetY).
        se_on: bool = false,
        /// SE ratio.
        se_r: f64 = 0.25,
        /// Depth `d`.
        depth: usize = 10usize,
        /// Initial width `w0`.
        w0: usize = 32usize,
        /// Slope `wa`.
        wa: f64 = 5.0,
        /// Quantization `wm`.
        wm: f64 = 2.5,
        /// Group width `g`.
        group_w: usize = 16usize,
        /// Bottleneck multiplier `b`.
        bot_mul: f64 = 1.0,
        /// Head conv width (0: none).
        head_w: usize = 0usize,
    }
);

section!(
    /// `EN`: EfficientNet.
    EnCfg {
        /// Stem width.
        stem_w: usize = 32usize,
        /// Blocks per stage.
        depths: Vec<usize> = Vec::<usize>::new(),
        /// Width per stage.
        widths: Vec<usize> = Vec::<usize>::new(),
        /// Expansion ratio per stage.
        exp_ratios: Vec<f64> = Vec::<f64>::new(),
        /// SE ratio.
        se_r: f64 = 0.25,
        /// Stride per stage.
        strides: Vec<usize> = Vec::<usize>::new(),
        /// Depthwise kernel per stage.
        kernels: Vec<usize> = Vec::<usize>::new(),
        /// Head width.
        head_w: usize = 1280usize,
        /// Drop-connect ratio.
        dc_ratio: f64 = 0.0,
        /// Dropout ratio.
        dropout_ratio: f64 = 0.0,
    }
);

section!(
    /// `VIT`: accepted so that pycls dumps load; ViT models are not built here.
    VitCfg {
        /// Patch size.
        patch_size: usize = 16usize,
        /// Stem type.
        stem_type: String = "patchify",
        /// Conv-stem kernels.
        c_stem_kernels: Vec<usize> = Vec::<usize>::new(),
        /// Conv-stem strides.
        c_stem_strides: Vec<usize> = Vec::<usize>::new(),
        /// Conv-stem widths.
        c_stem_dims: Vec<usize> = Vec::<usize>::new(),
        /// Encoder layers.
        num_layers: usize = 12usize,
        /// Attention heads.
        num_heads: usize = 12usize,
        /// Hidden width.
        hidden_dim: usize = 768usize,
        /// MLP width.
        mlp_dim: usize = 3072usize,
        /// `token` or `pooled`.
        classifier_type: String = "token",
    }
);

section!(
    /// `BN`: batch normalisation.
    BnCfg {
        /// Epsilon.
        eps: f64 = 1e-5,
        /// Momentum (PyTorch convention).
        mom: f64 = 0.1,
        /// Recompute BN statistics after each epoch.
        use_precise_stats: bool = true,
        /// Samples for the precise statistics.
        num_samples_precise: usize = 8192usize,
        /// Zero-initialise the final BN gamma of each residual branch.
        zero_init_final_gamma: bool = false,
        /// Use `CUSTOM_WEIGHT_DECAY` for BN parameters.
        use_custom_weight_decay: bool = false,
        /// Weight decay of BN parameters.
        custom_weight_decay: f64 = 0.0,
    }
);

section!(
    /// `LN`: layer normalisation (ViT only).
    LnCfg {
        /// Epsilon.
        eps: f64 = 1e-5,
        /// Use a custom weight decay.
        use_custom_weight_decay: bool = false,
        /// Custom weight decay.
        custom_weight_decay: f64 = 0.0,
    }
);

section!(
    /// `OPTIM`: optimizer and learning-rate schedule.
    OptimCfg {
        /// `sgd`, `adam` or `adamw`.
        optimizer: Optimizer = Optimizer::Sgd,
        /// Base learning rate.
        base_lr: f64 = 0.1,
        /// Final learning rate, as a fraction of the base.
        min_lr: f64 = 0.0,
        /// `cos`, `exp`, `lin` or `steps`.
        lr_policy: LrPolicy = LrPolicy::Cos,
        /// Epochs at which the `steps` policy multiplies the rate by `LR_MULT`.
        steps: Vec<usize> = Vec::<usize>::new(),
        /// Multiplier of the `steps` policy.
        lr_mult: f64 = 0.1,
        /// Epochs.
        max_epoch: usize = 200usize,
        /// Momentum.
        momentum: f64 = 0.9,
        /// Momentum dampening.
        dampening: f64 = 0.0,
        /// Nesterov momentum.
        nesterov: bool = true,
        /// Adam beta1.
        beta1: f64 = 0.9,
        /// Adam beta2.
        beta2: f64 = 0.999,
        /// L2 weight decay.
        weight_decay: f64 = 5e-4,
        /// Use `BIAS_CUSTOM_WEIGHT_DECAY` for biases.
        bias_use_custom_weight_decay: bool = false,
        /// Weight decay of biases.
        bias_custom_weight_decay: f64 = 0.0,
        /// Warm-up starts at `BASE_LR * WARMUP_FACTOR`.
        warmup_factor: f64 = 0.1,
        /// Warm-up epochs.
        warmup_epochs: usize = 0usize,
        /// EMA update value.
        ema_alpha: f64 = 1e-5,
        /// Iterations between EMA updates.
        ema_update_period: usize = 32usize,
        /// Multi-tensor-apply optimizers (no effect here).
        mta: bool = false,
    }
);

section!(
    /// `TRAIN`: training data and regularisation.
    TrainCfg {
        /// Dataset name.
        dataset: String = "",
        /// Split.
        split: String = "train",
        /// Mini-batch size.
        batch_size: usize = 128usize,
        /// Image size.
        im_size: usize = 224usize,
        /// Resume from the last checkpoint in `OUT_DIR`.
        auto_resume: bool = true,
        /// Weights to start from.
        weights: String = "",
        /// Mixed precision (no effect here).
        mixed_precision: bool = false,
        /// Label smoothing.
        label_smoothing: f64 = 0.0,
        /// Mixup alpha (0: off).
        mixup_alpha: f64 = 0.0,
        /// Cutmix alpha (0: off).
        cutmix_alpha: f64 = 0.0,
        /// PCA lighting noise std.
        pca_std: f64 = 0.1,
        /// Augmentation policy: `AutoAugment`, `RandAugment_N2_M0.5`... (see
        /// [`crate::augment`]); image folders only.
        augment: Augment = Augment::None,
    }
);

section!(
    /// `TEST`: evaluation data.
    TestCfg {
        /// Dataset name.
        dataset: String = "",
        /// Split.
        split: String = "val",
        /// Mini-batch size.
        batch_size: usize = 200usize,
        /// Image size (short side before the centre crop).
        im_size: usize = 256usize,
        /// Weights to test.
        weights: String = "",
    }
);

section!(
    /// `DATA_LOADER`.
    DataLoaderCfg {
        /// Decoding workers.
        num_workers: usize = 8usize,
        /// Pinned memory (no effect here).
        pin_memory: bool = true,
        /// Loader mode.
        mode: String = "pytorch",
    }
);

section!(
    /// `CUDNN` (no effect here).
    CudnnCfg {
        /// Benchmark mode.
        benchmark: bool = true,
    }
);

section!(
    /// `PREC_TIME`: `regnet time` iterations.
    PrecTimeCfg {
        /// Warm-up iterations.
        warmup_iter: usize = 3usize,
        /// Timed iterations.
        num_iter: usize = 30usize,
    }
);

section!(
    /// `LAUNCH`: cluster launch options.
    LaunchCfg {
        /// `local`, `slurm` or `submitit_local`.
        mode: String = "local",
        /// Retries.
        max_retry: usize = 3usize,
        /// Job name.
        name: String = "pycls_job",
        /// Job comment.
        comment: String = "",
        /// CPUs per GPU.
        cpus_per_gpu: usize = 10usize,
        /// Memory per GPU (GB).
        mem_per_gpu: usize = 60usize,
        /// SLURM partition.
        partition: String = "devlab",
        /// GPU type.
        gpu_type: String = "volta",
        /// Time limit (minutes).
        time_limit: usize = 4200usize,
        /// E-mail for notifications.
        email: String = "",
    }
);

section!(
    /// `FSDP` (no effect here).
    FsdpCfg {
        /// Enabled.
        enabled: bool = false,
        /// Reshard after forward.
        reshard_after_fw: bool = true,
        /// Layer norm in fp32.
        layer_norm_fp32: bool = true,
    }
);

section!(
    /// `EXT`: regnet's own keys, which pycls does not have.
    ExtCfg {
        /// Width rounding of RegNets: `pycls` or `torchvision`.
        rounding: String = "pycls",
        /// Input channels (0: from the dataset, 3 without one).
        in_channels: usize = 0usize,
        /// Where the data set lives ("": its default place, e.g. Debian's Fashion-MNIST).
        data_path: String = "",
        /// Train on the first N training images only (0: all).
        train_subset: usize = 0usize,
        /// Test on the first N test images only (0: all).
        test_subset: usize = 0usize,
        /// A corrupt image: `fail` (stop with its path) or `skip` (count, log, go on).
        on_corrupt: OnCorrupt = OnCorrupt::Fail,
        /// `cpu`, or `gpu` in builds with the `gpu` feature.
        device: String = "cpu",
        /// Channel order fed to ImageNet-style models: `rgb`, or `bgr` as pycls does.
        channel_order: ChannelOrder = ChannelOrder::Rgb,
        /// Pad, crop and flip augmentation of gray (MNIST-style) training images.
        gray_augment: bool = true,
        /// Decoding threads of the data loader (0: as many as cores).
        loader_threads: usize = 0usize,
    }
);

impl ExtCfg {
    fn is_default(&self) -> bool {
        *self == ExtCfg::default()
    }
}

fn default_port_range() -> Vec<usize> {
    vec![10000, 65000]
}

/// A complete pycls configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Config {
    /// `MODEL`.
    pub model: ModelCfg,
    /// `RESNET`.
    pub resnet: ResNetCfg,
    /// `ANYNET`.
    pub anynet: AnyNetCfg,
    /// `REGNET`.
    pub regnet: RegNetCfg,
    /// `EN`.
    pub en: EnCfg,
    /// `VIT`.
    pub vit: VitCfg,
    /// `BN`.
    pub bn: BnCfg,
    /// `LN`.
    pub ln: LnCfg,
    /// `OPTIM`.
    pub optim: OptimCfg,
    /// `TRAIN`.
    pub train: TrainCfg,
    /// `TEST`.
    pub test: TestCfg,
    /// `DATA_LOADER`.
    pub data_loader: DataLoaderCfg,
    /// `CUDNN`.
    pub cudnn: CudnnCfg,
    /// `PREC_TIME`.
    pub prec_time: PrecTimeCfg,
    /// `LAUNCH`.
    pub launch: LaunchCfg,
    /// `FSDP`.
    pub fsdp: FsdpCfg,
    /// `EXT`: regnet's own keys.
    #[serde(skip_serializing_if = "ExtCfg::is_default")]
    pub ext: ExtCfg,
    /// Description.
    pub desc: String,
    /// Verbose logs.
    pub verbose: bool,
    /// Number of GPUs.
    pub num_gpus: usize,
    /// GPUs per node.
    pub max_gpus_per_node: usize,
    /// Output directory.
    pub out_dir: String,
    /// Config dump name in `OUT_DIR`.
    pub cfg_dest: String,
    /// Random seed.
    pub rng_seed: u64,
    /// `stdout` or `file`.
    pub log_dest: String,
    /// Iterations between log lines.
    pub log_period: usize,
    /// Distributed backend.
    pub dist_backend: String,
    /// Host for multi-process groups.
    pub host: String,
    /// Port range for multi-process groups.
    #[serde(default = "default_port_range")]
    pub port_range: Vec<usize>,
    /// Download cache.
    pub download_cache: String,
    /// Where the values came from, for error messages.
    #[serde(skip)]
    pub origin: Origin,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: ModelCfg::default(),
            resnet: ResNetCfg::default(),
            anynet: AnyNetCfg::default(),
            regnet: RegNetCfg::default(),
            en: EnCfg::default(),
            vit: VitCfg::default(),
            bn: BnCfg::default(),
            ln: LnCfg::default(),
            optim: OptimCfg::default(),
            train: TrainCfg::default(),
            test: TestCfg::default(),
            data_loader: DataLoaderCfg::default(),
            cudnn: CudnnCfg::default(),
            prec_time: PrecTimeCfg::default(),
            launch: LaunchCfg::default(),
            fsdp: FsdpCfg::default(),
            ext: ExtCfg::default(),
            desc: String::new(),
            verbose: true,
            num_gpus: 1,
            max_gpus_per_node: 8,
            out_dir: "/tmp".into(),
            cfg_dest: "config.yaml".into(),
            rng_seed: 1,
            log_dest: "stdout".into(),
            log_period: 10,
            dist_backend: "nccl".into(),
            host: "localhost".into(),
            port_range: default_port_range(),
            download_cache: "/tmp/pycls-download-cache".into(),
            origin: Origin::Builtin,
        }
    }
}

/// Keys pycls has deprecated or removed since its 2020 release; accepted and ignored.
pub const DEPRECATED_KEYS: &[&str] = &[
    "MEM",
    "MEM.RELU_INPLACE",
    "OPTIM.GAMMA",
    "PREC_TIME.BATCH_SIZE",
    "PREC_TIME.ENABLED",
    "PORT",
    "TRAIN.EVAL_PERIOD",
    "TRAIN.CHECKPOINT_PERIOD",
];

fn key_str(k: &Value) -> Option<&str> {
    k.as_str()
}

impl Config {
    /// Defaults, then the YAML file at `path`.
    pub fn load(path: &str) -> Result<Config> {
        let mut cfg = Config::default();
        cfg.merge_file(path)?;
        Ok(cfg)
    }

    /// Merges the YAML file at `path` into this config (at most
    /// [`MAX_CONFIG_BYTES`](crate::limits::MAX_CONFIG_BYTES) long).
    pub fn merge_file(&mut self, path: &str) -> Result<()> {
        let text = read_config_file(path)?;
        self.merge_yaml(&text, Origin::File(path.to_string()))
    }

    /// Merges YAML text into this config; errors name `origin`. A leading UTF-8 byte-order
    /// mark is skipped; collections nested deeper than
    /// [`MAX_YAML_NESTING`](crate::limits::MAX_YAML_NESTING) are refused before parsing.
    pub fn merge_yaml(&mut self, text: &str, origin: Origin) -> Result<()> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.len() as u64 > MAX_CONFIG_BYTES {
            let msg = format!("larger than {MAX_CONFIG_BYTES} bytes: not a config");
            return Err(Error::config(&origin, "<yaml>", msg));
        }
        check_yaml_nesting(text).map_err(|m| Error::config(&origin, "<yaml>", m))?;
        let input: Value = serde_norway::from_str(text)
            .map_err(|e| Error::config(&origin, "<yaml>", e.to_string()))?;
        let input = match input {
            Value::Null => Value::Mapping(Mapping::new()),
            Value::Mapping(m) => Value::Mapping(m),
            _ => {
                return Err(Error::config(
                    &origin,
                    "<yaml>",
                    "the top level must be a mapping of keys",
                ));
            }
        };
        let mut tree = self.tree();
        merge_into(&mut tree, input, "", &origin)?;
        self.origin = merged_origin(&self.origin, &origin);
        self.set_tree(tree, &origin)
    }

    /// Applies pycls-style `KEY VALUE` overrides (`REGNET.DEPTH 14 TRAIN.IM_SIZE 160`).
    pub fn merge_overrides<S: AsRef<str>>(&mut self, pairs: &[S]) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let origin = Origin::CommandLine;
        if !pairs.len().is_multiple_of(2) {
            let last = pairs[pairs.len() - 1].as_ref();
            return Err(Error::config(
                &origin,
                last,
                "override has no value (give KEY VALUE pairs)",
            ));
        }
        let mut tree = self.tree();
        for pair in pairs.chunks(2) {
            let (key, raw) = (pair[0].as_ref(), pair[1].as_ref());
            if key.split('.').any(str::is_empty) {
                let msg = "empty key or key part (give KEY VALUE pairs, keys like REGNET.DEPTH)";
                return Err(Error::config(&origin, format!("`{key}`"), msg));
            }
            check_yaml_nesting(raw).map_err(|m| Error::config(&origin, key, m))?;
            let value = parse_override_value(raw);
            // Build a nested mapping {A: {B: value}} and merge it like a file.
            let mut nested = value;
            for part in key.split('.').rev() {
                let mut m = Mapping::new();
                m.insert(Value::String(part.to_string()), nested);
                nested = Value::Mapping(m);
            }
            merge_into(&mut tree, nested, "", &origin)?;
        }
        self.origin = merged_origin(&self.origin, &origin);
        self.set_tree(tree, &origin)
    }

    /// The config as YAML, as pycls dumps it to `OUT_DIR/config.yaml`.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("configs always serialise")
    }

    /// The config as a YAML tree with every key, `EXT` included (dumps leave it out while
    /// it holds its defaults, but merging must know its keys).
    fn tree(&self) -> Value {
        let mut tree = serde_norway::to_value(self).expect("configs always serialise");
        if let Value::Mapping(m) = &mut tree {
            m.entry(Value::String("EXT".into()))
                .or_insert_with(|| serde_norway::to_value(&self.ext).expect("serialises"));
        }
        tree
    }

    fn set_tree(&mut self, tree: Value, origin: &Origin) -> Result<()> {
        let keep = self.origin.clone();
        let parsed: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let path = e.path().to_string();
            let msg = e.into_inner().to_string();
            Error::config(origin, path, msg)
        })?;
        parsed.check_limits(origin)?;
        parsed.check_names(origin)?;
        *self = Config {
            origin: keep,
            ..parsed
        };
        Ok(())
    }

    /// Checks the counts and sizes of the config against [`crate::limits`] (network counts
    /// are checked again, with the stage named, when the network is built).
    fn check_limits(&self, origin: &Origin) -> Result<()> {
        let r = &self.regnet;
        let checks = [
            ("MODEL.NUM_CLASSES", self.model.num_classes, MAX_CLASSES),
            ("MODEL.DEPTH", self.model.depth, 3 * MAX_BLOCKS),
            ("REGNET.DEPTH", r.depth, MAX_BLOCKS),
            ("REGNET.W0", r.w0, MAX_WIDTH),
            ("REGNET.GROUP_W", r.group_w, MAX_WIDTH),
            ("REGNET.STEM_W", r.stem_w, MAX_WIDTH),
            ("REGNET.HEAD_W", r.head_w, MAX_WIDTH),
            ("ANYNET.STEM_W", self.anynet.stem_w, MAX_WIDTH),
            ("ANYNET.HEAD_W", self.anynet.head_w, MAX_WIDTH),
            ("EN.STEM_W", self.en.stem_w, MAX_WIDTH),
            ("EN.HEAD_W", self.en.head_w, MAX_WIDTH),
            ("RESNET.NUM_GROUPS", self.resnet.num_groups, MAX_WIDTH),
            (
                "RESNET.WIDTH_PER_GROUP",
                self.resnet.width_per_group,
                MAX_WIDTH,
            ),
            ("EXT.IN_CHANNELS", self.ext.in_channels, MAX_WIDTH),
            ("TRAIN.IM_SIZE", self.train.im_size, MAX_IM_SIZE),
            ("TEST.IM_SIZE", self.test.im_size, MAX_IM_SIZE),
            ("TRAIN.BATCH_SIZE", self.train.batch_size, MAX_BATCH),
            ("TEST.BATCH_SIZE", self.test.batch_size, MAX_BATCH),
            ("OPTIM.MAX_EPOCH", self.optim.max_epoch, MAX_EPOCHS),
            ("OPTIM.WARMUP_EPOCHS", self.optim.warmup_epochs, MAX_EPOCHS),
            (
                "EXT.LOADER_THREADS",
                self.ext.loader_threads,
                MAX_LOADER_THREADS,
            ),
        ];
        for (key, value, max) in checks {
            if value > max {
                let msg = format!("{value} is above the limit of {max}");
                return Err(Error::config(origin, key, msg));
            }
        }
        // A batch or an image of size 0 has nothing in it: not a size pycls runs.
        let sizes = [
            ("TRAIN.IM_SIZE", self.train.im_size),
            ("TEST.IM_SIZE", self.test.im_size),
            ("TRAIN.BATCH_SIZE", self.train.batch_size),
            ("TEST.BATCH_SIZE", self.test.batch_size),
        ];
        if let Some((key, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(Error::config(origin, *key, "0: must be at least 1"));
        }
        Ok(())
    }

    /// The names pycls's `assert_and_infer_cfg` (and its launcher) accept, checked when
    /// the config loads: `TRAIN.SPLIT` and `TEST.SPLIT` (any other name once read as the
    /// test split), `LOG_DEST`, `LAUNCH.MODE`.
    fn check_names(&self, origin: &Origin) -> Result<()> {
        let checks: [(&str, &str, &[&str]); 4] = [
            ("TRAIN.SPLIT", &self.train.split, &["train", "val", "test"]),
            ("TEST.SPLIT", &self.test.split, &["train", "val", "test"]),
            ("LOG_DEST", &self.log_dest, &["stdout", "file"]),
            (
                "LAUNCH.MODE",
                &self.launch.mode,
                &["local", "submitit_local", "slurm"],
            ),
        ];
        for (key, value, allowed) in checks {
            if !allowed.contains(&value) {
                let msg = format!(
                    "`{}` is not one of `{}`",
                    value.escape_debug(),
                    allowed.join("`, `")
                );
                return Err(Error::config(origin, key, msg));
            }
        }
        Ok(())
    }

    /// Refuses the pycls keys that ask for another way of running than training in this
    /// process from the data set's files: `LAUNCH.MODE slurm` (pycls submits a job instead
    /// of training; regnet's SLURM path is `regnet sweep launch --slurm`) and a
    /// `DATA_LOADER.MODE` other than `pytorch` (FFCV's `.beton` files are not read here).
    fn check_runs_here(&self) -> Result<()> {
        if self.launch.mode == "slurm" {
            let msg = "`slurm` submits a job in pycls; `regnet train` trains in this process \
                       (submit it with sbatch, or use `regnet sweep launch --slurm`); set it to local";
            return Err(self.err("LAUNCH.MODE", msg));
        }
        if self.data_loader.mode != "pytorch" {
            let msg = format!(
                "`{}` is not supported: regnet reads data sets from their files (pytorch mode), \
                 not FFCV files; set it to pytorch",
                self.data_loader.mode.escape_debug()
            );
            return Err(self.err("DATA_LOADER.MODE", msg));
        }
        Ok(())
    }

    /// Refuses the keys training cannot act on, so that none is silently ignored:
    /// `TRAIN.MIXED_PRECISION True` (training runs in float32) and a `TRAIN.AUGMENT` policy
    /// for a data set other than an image folder (pycls applies it to ImageNet only); and,
    /// with Adam or AdamW, betas outside `[0, 1)`, which `torch.optim` refuses too.
    pub fn check_trainable(&self) -> Result<()> {
        self.check_runs_here()?;
        if self.optim.optimizer != Optimizer::Sgd {
            for (key, beta) in [
                ("OPTIM.BETA1", self.optim.beta1),
                ("OPTIM.BETA2", self.optim.beta2),
            ] {
                if !(0.0..1.0).contains(&beta) {
                    return Err(self.err(key, format!("{beta} is not in [0, 1)")));
                }
            }
        }
        if self.train.mixed_precision {
            return Err(self.err(
                "TRAIN.MIXED_PRECISION",
                "True is not supported: regnet trains in float32; set it to False",
            ));
        }
        let dataset = self.train.dataset.to_ascii_lowercase().replace('-', "_");
        let folder = matches!(dataset.as_str(), "imagenet" | "image_folder");
        if self.train.augment != Augment::None && !folder {
            let msg = format!(
                "`{}` applies to image folders only (imagenet, image_folder), as in pycls, \
                 not to TRAIN.DATASET `{}`; leave it empty",
                self.train.augment,
                self.train.dataset.escape_debug()
            );
            return Err(self.err("TRAIN.AUGMENT", msg));
        }
        Ok(())
    }

    fn err(&self, key: &str, message: impl Into<String>) -> Error {
        Error::config(&self.origin, key, message)
    }

    /// The image size complexity is counted at (pycls uses `TRAIN.IM_SIZE`).
    pub fn im_size(&self) -> usize {
        self.train.im_size
    }

    /// The network this config describes, checked.
    pub fn spec(&self) -> Result<NetSpec> {
        Ok(self.network()?.0)
    }

    /// The spec and its layer plan, built once (samplers count millions of candidates).
    pub fn network(&self) -> Result<(NetSpec, crate::network::Network)> {
        let (section, spec) = self.spec_unchecked()?;
        let net = crate::network::Network::from_spec(&spec)
            .map_err(|e| self.err(section, spec_msg(e)))?;
        Ok((spec, net))
    }

    /// The spec and the config section it came from, before the layer plan checks it.
    fn spec_unchecked(&self) -> Result<(&'static str, NetSpec)> {
        let activation: Activation = self
            .model
            .activation_fun
            .parse()
            .map_err(|e: Error| self.err("MODEL.ACTIVATION_FUN", spec_msg(e)))?;
        let (section, arch) = match self.model.ty.as_str() {
            "anynet" => ("ANYNET", self.anynet_arch()?),
            "regnet" => ("REGNET", self.regnet_arch()?),
            "resnet" => ("RESNET", self.resnet_arch()?),
            "effnet" => ("EN", self.effnet_arch()?),
            "" => {
                return Err(self.err(
                    "MODEL.TYPE",
                    "no model type set (anynet, regnet, resnet, effnet)",
                ));
            }
            other => {
                return Err(self.err(
                    "MODEL.TYPE",
                    format!(
                        "model type `{other}` is not supported (anynet, regnet, resnet, effnet)"
                    ),
                ));
            }
        };
        let spec = NetSpec {
            in_channels: if self.ext.in_channels > 0 {
                self.ext.in_channels
            } else {
                3
            },
            num_classes: self.model.num_classes,
            activation,
            arch,
        };
        Ok((section, spec))
    }

    fn parse_name<T: std::str::FromStr<Err = Error>>(&self, key: &str, value: &str) -> Result<T> {
        value.parse().map_err(|e: Error| self.err(key, spec_msg(e)))
    }

    fn anynet_arch(&self) -> Result<Arch> {
        let a = &self.anynet;
        let n = a.depths.len();
        for (key, len) in [
            ("ANYNET.WIDTHS", a.widths.len()),
            ("ANYNET.STRIDES", a.strides.len()),
        ] {
            if len != n {
                return Err(self.err(key, format!("has {len} entries but ANYNET.DEPTHS has {n}")));
            }
        }
        for (key, len) in [
            ("ANYNET.BOT_MULS", a.bot_muls.len()),
            ("ANYNET.GROUP_WS", a.group_ws.len()),
        ] {
            if len != 0 && len != n {
                return Err(self.err(key, format!("has {len} entries but ANYNET.DEPTHS has {n}")));
            }
        }
        let stages = (0..n)
            .map(|i| Stage {
                depth: a.depths[i],
                width: a.widths[i],
                stride: a.strides[i],
                bot_mul: a.bot_muls.get(i).copied(),
                group_w: a.group_ws.get(i).copied(),
            })
            .collect();
        Ok(Arch::AnyNet(AnyNet {
            stem_type: self.parse_name("ANYNET.STEM_TYPE", &a.stem_type)?,
            stem_w: a.stem_w,
            block_type: self.parse_name("ANYNET.BLOCK_TYPE", &a.block_type)?,
            stages,
            se_r: if a.se_on { a.se_r } else { 0.0 },
            head_w: a.head_w,
            stride_1x1: false,
        }))
    }

    fn regnet_arch(&self) -> Result<Arch> {
        let r = &self.regnet;
        let rounding = match self.ext.rounding.as_str() {
            "pycls" => Rounding::Pycls,
            "torchvision" => Rounding::Torchvision,
            other => {
                return Err(self.err(
                    "EXT.ROUNDING",
                    format!("`{other}` is not pycls or torchvision"),
                ));
            }
        };
        let regnet = RegNet {
            depth: r.depth,
            w0: r.w0,
            wa: r.wa,
            wm: r.wm,
            group_w: r.group_w,
            bot_mul: r.bot_mul,
            stride: r.stride,
            se_r: if r.se_on { r.se_r } else { 0.0 },
            stem_type: self.parse_name("REGNET.STEM_TYPE", &r.stem_type)?,
            stem_w: r.stem_w,
            block_type: self.parse_name("REGNET.BLOCK_TYPE", &r.block_type)?,
            head_w: r.head_w,
            rounding,
        };
        // Network::from_spec checks the generated widths (errors name REGNET).
        Ok(Arch::RegNet(regnet))
    }

    fn resnet_arch(&self) -> Result<Arch> {
        let basic = match self.resnet.trans_fun.as_str() {
            "basic_transform" => true,
            "bottleneck_transform" => false,
            other => {
                return Err(self.err(
                    "RESNET.TRANS_FUN",
                    format!("`{other}` is not basic_transform or bottleneck_transform"),
                ));
            }
        };
        // pycls picks the CIFAR or the ImageNet ResNet from the data set's name.
        if self.train.dataset.contains("cifar") {
            self.resnet_cifar_arch(basic)
        } else {
            self.resnet_imagenet_arch(basic)
        }
    }

    /// pycls's CIFAR ResNet: depth 6n + 2, three stages of n basic blocks.
    fn resnet_cifar_arch(&self, basic: bool) -> Result<Arch> {
        let d = self.model.depth;
        if d < 8 || !(d - 2).is_multiple_of(6) {
            return Err(self.err(
                "MODEL.DEPTH",
                format!("{d} is not of the form 6n + 2 (CIFAR ResNets)"),
            ));
        }
        if !basic {
            return Err(self.err("RESNET.TRANS_FUN", "CIFAR ResNets use basic_transform"));
        }
        let n = (d - 2) / 6;
        Ok(Arch::AnyNet(AnyNet {
            stem_type: StemType::ResStemCifar,
            stem_w: 16,
            block_type: crate::spec::BlockType::ResBasicBlock,
            stages: vec![
                resnet_stage(n, 16, 1, None, None),
                resnet_stage(n, 32, 2, None, None),
                resnet_stage(n, 64, 2, None, None),
            ],
            se_r: 0.0,
            head_w: 0,
            stride_1x1: false,
        }))
    }

    /// pycls's ImageNet ResNet/ResNeXt-50/101/152 (bottleneck blocks).
    fn resnet_imagenet_arch(&self, basic: bool) -> Result<Arch> {
        let (r, d) = (&self.resnet, self.model.depth);
        let ds = match d {
            50 => [3, 4, 6, 3],
            101 => [3, 4, 23, 3],
            152 => [3, 8, 36, 3],
            _ => {
                return Err(self.err(
                    "MODEL.DEPTH",
                    format!("{d} is not 50, 101 or 152 (ImageNet ResNets)"),
                ));
            }
        };
        if basic {
            return Err(self.err(
                "RESNET.TRANS_FUN",
                "ImageNet ResNets use bottleneck_transform",
            ));
        }
        if r.num_groups == 0 || r.width_per_group == 0 {
            return Err(self.err(
                "RESNET.NUM_GROUPS",
                "groups and width per group must be positive",
            ));
        }
        let w_b = r.num_groups * r.width_per_group;
        let stages = (0..4)
            .map(|i| {
                let width = 256 << i;
                // The bottleneck width w_b * 2^i as a multiplier of the stage width: exact in
                // binary floating point, as both are integers over a power of two.
                let bot_mul = (w_b << i) as f64 / width as f64;
                let stride = if i == 0 { 1 } else { 2 };
                let group_w = Some(r.width_per_group << i);
                resnet_stage(ds[i], width, stride, Some(bot_mul), group_w)
            })
            .collect();
        Ok(Arch::AnyNet(AnyNet {
            stem_type: StemType::ResStemIn,
            stem_w: 64,
            block_type: crate::spec::BlockType::ResBottleneckBlock,
            stages,
            se_r: 0.0,
            head_w: 0,
            stride_1x1: r.stride_1x1,
        }))
    }

    fn effnet_arch(&self) -> Result<Arch> {
        let e = &self.en;
        let n = e.depths.len();
        for (key, len) in [
            ("EN.WIDTHS", e.widths.len()),
            ("EN.EXP_RATIOS", e.exp_ratios.len()),
            ("EN.STRIDES", e.strides.len()),
            ("EN.KERNELS", e.kernels.len()),
        ] {
            if len != n {
                return Err(self.err(key, format!("has {len} entries but EN.DEPTHS has {n}")));
            }
        }
        Ok(Arch::EffNet(EffNet {
            stem_w: e.stem_w,
            stages: (0..n)
                .map(|i| EffStage {
                    depth: e.depths[i],
                    width: e.widths[i],
                    stride: e.strides[i],
                    exp_ratio: e.exp_ratios[i],
                    kernel: e.kernels[i],
                })
                .collect(),
            se_r: e.se_r,
            head_w: e.head_w,
            dropout_ratio: e.dropout_ratio,
            dc_ratio: e.dc_ratio,
        }))
    }
}

fn spec_msg(e: Error) -> String {
    match e {
        Error::Spec(m) => m,
        other => other.to_string(),
    }
}

/// Reads a config file of at most [`MAX_CONFIG_BYTES`], as UTF-8.
fn read_config_file(path: &str) -> Result<String> {
    use std::io::Read;
    let io = |error: std::io::Error| Error::Io {
        path: path.to_string(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        let msg = format!("larger than {MAX_CONFIG_BYTES} bytes: not a config file");
        return Err(Error::config(&Origin::File(path.into()), "<yaml>", msg));
    }
    String::from_utf8(bytes).map_err(|e| {
        let msg = format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to());
        Error::config(&Origin::File(path.into()), "<yaml>", msg)
    })
}

fn merged_origin(old: &Origin, new: &Origin) -> Origin {
    match (old, new) {
        (Origin::File(f), Origin::CommandLine) => {
            Origin::File(format!("{f} (with command-line overrides)"))
        }
        (_, new) => new.clone(),
    }
}

/// Parses an override value like yacs's `literal_eval`: numbers, booleans, lists; anything
/// else is a string.
fn parse_override_value(raw: &str) -> Value {
    match serde_norway::from_str::<Value>(raw) {
        Ok(Value::Null) | Err(_) => Value::String(raw.to_string()),
        Ok(v) => v,
    }
}

/// Merges `input` into the defaults `tree` at `prefix`, checking every key.
fn merge_into(tree: &mut Value, input: Value, prefix: &str, origin: &Origin) -> Result<()> {
    let Value::Mapping(input) = input else {
        unreachable!("callers pass mappings")
    };
    let Value::Mapping(tree_map) = tree else {
        unreachable!("sections are mappings")
    };
    for (k, v) in input {
        let Some(name) = key_str(&k) else {
            return Err(Error::config(
                origin,
                format!("{prefix}{k:?}"),
                "keys must be strings",
            ));
        };
        let full = format!("{prefix}{name}");
        if let Value::Sequence(items) = &v
            && items.len() > MAX_LIST
        {
            let msg = format!("has {} entries, above the limit of {MAX_LIST}", items.len());
            return Err(Error::config(origin, full, msg));
        }
        if DEPRECATED_KEYS.contains(&full.as_str()) {
            continue;
        }
        let Some(slot) = tree_map.get_mut(name) else {
            let known: Vec<String> = tree_map
                .keys()
                .filter_map(key_str)
                .map(|s| format!("{prefix}{s}"))
                .collect();
            let hint = closest(&full, known.iter().map(String::as_str))
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default();
            return Err(Error::config(origin, full, format!("unknown key{hint}")));
        };
        match slot {
            Value::Mapping(_) => {
                if !matches!(v, Value::Mapping(_)) {
                    return Err(Error::config(
                        origin,
                        full,
                        "is a section; give it a mapping of keys",
                    ));
                }
                merge_into(slot, v, &format!("{full}."), origin)?;
            }
            _ => {
                if matches!(v, Value::Null) {
                    return Err(Error::config(origin, full, "has no value"));
                }
                *slot = coerce(slot, v);
            }
        }
    }
    Ok(())
}

/// yacs's `_decode_cfg_value`: strings that read as numbers become numbers where the
/// default is a number (or a list of numbers).
fn coerce(default: &Value, v: Value) -> Value {
    let num = |s: &str| -> Option<Value> {
        let s = s.trim();
        if let Ok(i) = s.parse::<i64>() {
            return Some(Value::Number(i.into()));
        }
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| Value::Number(f.into()))
    };
    match (default, v) {
        (Value::Number(_), Value::String(s)) => num(&s).unwrap_or(Value::String(s)),
        (Value::Sequence(_), Value::Sequence(items)) => Value::Sequence(
            items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => num(&s).unwrap_or(Value::String(s)),
                    other => other,
                })
                .collect(),
        ),
        (_, v) => v,
    }
}

/// One ResNet stage as an AnyNet stage.
fn resnet_stage(
    depth: usize,
    width: usize,
    stride: usize,
    bot_mul: Option<f64>,
    group_w: Option<usize>,
) -> Stage {
    Stage {
        depth,
        width,
        stride,
        bot_mul,
        group_w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config> {
        let mut c = Config::default();
        c.merge_yaml(text, Origin::File("test.yaml".into()))?;
        Ok(c)
    }

    #[test]
    fn strings_that_are_numbers_are_numbers() {
        let c = load("OPTIM:\n  WEIGHT_DECAY: 5e-5\n  BASE_LR: '0.8'\n").unwrap();
        assert_eq!(c.optim.weight_decay, 5e-5);
        assert_eq!(c.optim.base_lr, 0.8);
    }

    #[test]
    fn unknown_keys_name_key_file_and_suggestion() {
        let e = load("REGNET:\n  DEPHT: 13\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "test.yaml: REGNET.DEPHT: unknown key (did you mean REGNET.DEPTH?)"
        );
        let e = load("REGNETT:\n  DEPTH: 13\n").unwrap_err().to_string();
        assert!(
            e.contains("REGNETT") && e.contains("did you mean REGNET?"),
            "{e}"
        );
    }

    #[test]
    fn wrong_types_name_the_key() {
        let e = load("REGNET:\n  DEPTH: 13.5\n").unwrap_err().to_string();
        assert!(
            e.starts_with("test.yaml: REGNET.DEPTH: invalid type"),
            "{e}"
        );
        let e = load("REGNET:\n  SE_ON: maybe\n").unwrap_err().to_string();
        assert!(e.starts_with("test.yaml: REGNET.SE_ON:"), "{e}");
        let e = load("REGNET: 3\n").unwrap_err().to_string();
        assert!(e.contains("REGNET: is a section"), "{e}");
        let e = load("MODEL: [1, 2\n").unwrap_err().to_string();
        assert!(e.starts_with("test.yaml: <yaml>:"), "{e}");
    }

    #[test]
    fn deprecated_keys_are_ignored() {
        let mut c =
            load("MEM:\n  RELU_INPLACE: true\nPORT: 10001\nTRAIN:\n  EVAL_PERIOD: 1\n").unwrap();
        assert_eq!(c.origin, Origin::File("test.yaml".into()));
        c.origin = Origin::Builtin;
        assert_eq!(c, Config::default());
    }

    #[test]
    fn overrides() {
        let mut c = Config::default();
        c.merge_overrides(&[
            "REGNET.DEPTH",
            "14",
            "TRAIN.IM_SIZE",
            "160",
            "ANYNET.DEPTHS",
            "[1, 2]",
        ])
        .unwrap();
        assert_eq!((c.regnet.depth, c.train.im_size), (14, 160));
        assert_eq!(c.anynet.depths, vec![1, 2]);
        let e = c
            .merge_overrides(&["REGNET.DEPTH"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("REGNET.DEPTH") && e.contains("no value"), "{e}");
        let e = c
            .merge_overrides(&["REGNET.W1", "8"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("command line: REGNET.W1: unknown key"), "{e}");
    }

    #[test]
    fn ext_keys_merge_into_defaults() {
        let mut c = Config::default();
        c.merge_overrides(&["EXT.IN_CHANNELS", "1"]).unwrap();
        assert_eq!(c.ext.in_channels, 1);
        let dumped = c.to_yaml();
        assert!(dumped.contains("EXT"), "non-default EXT is dumped");
        let back = load(&dumped).unwrap();
        assert_eq!(back.ext.in_channels, 1);
    }

    #[test]
    fn dump_round_trips() {
        let mut c = load("MODEL:\n  TYPE: regnet\nREGNET:\n  WA: 36.44\n").unwrap();
        c.origin = Origin::Builtin;
        let dumped = c.to_yaml();
        assert!(!dumped.contains("EXT"), "EXT is left out while default");
        let mut back = Config::default();
        back.merge_yaml(&dumped, Origin::Builtin).unwrap();
        assert_eq!(back, c);
    }
}

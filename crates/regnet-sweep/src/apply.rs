//! Setting sampled values on a [`Config`], fast.
//!
//! Rejection sampling evaluates up to millions of candidate configs. Merging each one as
//! YAML (`Config::merge_yaml`) rebuilds the whole config tree, tens of microseconds a
//! candidate; instead the keys that decide the network (and so its complexity) are set
//! field by field here, and the other keys (`OPTIM.BASE_LR`, ...) are left for the one
//! YAML merge of each accepted config. The accepted configs are then re-read from the
//! YAML written to disk and their complexity is checked against the fast path's.

use regnet_core::config::{Config, ExtCfg};

use serde_json::Value as Json;

/// Sets one config field from a JSON value.
pub type Setter = fn(&mut Config, &Json) -> serde_json::Result<()>;

/// Deserializes `v` into a field's type, also from a string that reads as a number (yacs
/// decodes `'5e-5'` as a number).
fn decode<T: serde::de::DeserializeOwned>(v: &Json) -> serde_json::Result<T> {
    match serde_json::from_value(v.clone()) {
        Ok(x) => Ok(x),
        Err(e) => {
            if let Json::String(s) = v {
                if let Ok(i) = s.trim().parse::<i64>() {
                    return serde_json::from_value(Json::from(i));
                }
                if let Some(n) = s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    return serde_json::from_value(Json::Number(n));
                }
            }
            Err(e)
        }
    }
}

macro_rules! setters {
    ($($key:literal => $($field:ident).+;)*) => {
        /// Every key that [`setter`] handles: those that change the network or the size its
        /// complexity is counted at.
        pub const MODEL_KEYS: &[&str] = &[$($key),*];

        /// The fast setter of a key that decides the network, `None` for other keys.
        pub fn setter(key: &str) -> Option<Setter> {
            match key {
                $($key => Some(|cfg: &mut Config, v: &Json| {
                    cfg.$($field).+ = decode(v)?;
                    Ok(())
                }),)*
                _ => None,
            }
        }
    };
}

setters! {
    "MODEL.TYPE" => model.ty;
    "MODEL.DEPTH" => model.depth;
    "MODEL.NUM_CLASSES" => model.num_classes;
    "MODEL.ACTIVATION_FUN" => model.activation_fun;
    "RESNET.TRANS_FUN" => resnet.trans_fun;
    "RESNET.NUM_GROUPS" => resnet.num_groups;
    "RESNET.WIDTH_PER_GROUP" => resnet.width_per_group;
    "RESNET.STRIDE_1X1" => resnet.stride_1x1;
    "ANYNET.STEM_TYPE" => anynet.stem_type;
    "ANYNET.STEM_W" => anynet.stem_w;
    "ANYNET.BLOCK_TYPE" => anynet.block_type;
    "ANYNET.DEPTHS" => anynet.depths;
    "ANYNET.WIDTHS" => anynet.widths;
    "ANYNET.STRIDES" => anynet.strides;
    "ANYNET.BOT_MULS" => anynet.bot_muls;
    "ANYNET.GROUP_WS" => anynet.group_ws;
    "ANYNET.HEAD_W" => anynet.head_w;
    "ANYNET.SE_ON" => anynet.se_on;
    "ANYNET.SE_R" => anynet.se_r;
    "REGNET.STEM_TYPE" => regnet.stem_type;
    "REGNET.STEM_W" => regnet.stem_w;
    "REGNET.BLOCK_TYPE" => regnet.block_type;
    "REGNET.STRIDE" => regnet.stride;
    "REGNET.SE_ON" => regnet.se_on;
    "REGNET.SE_R" => regnet.se_r;
    "REGNET.DEPTH" => regnet.depth;
    "REGNET.W0" => regnet.w0;
    "REGNET.WA" => regnet.wa;
    "REGNET.WM" => regnet.wm;
    "REGNET.GROUP_W" => regnet.group_w;
    "REGNET.BOT_MUL" => regnet.bot_mul;
    "REGNET.HEAD_W" => regnet.head_w;
    "EN.STEM_W" => en.stem_w;
    "EN.DEPTHS" => en.depths;
    "EN.WIDTHS" => en.widths;
    "EN.EXP_RATIOS" => en.exp_ratios;
    "EN.SE_R" => en.se_r;
    "EN.STRIDES" => en.strides;
    "EN.KERNELS" => en.kernels;
    "EN.HEAD_W" => en.head_w;
    "EN.DC_RATIO" => en.dc_ratio;
    "EN.DROPOUT_RATIO" => en.dropout_ratio;
    "TRAIN.IM_SIZE" => train.im_size;
    "TRAIN.DATASET" => train.dataset;
    "EXT.ROUNDING" => ext.rounding;
    "EXT.IN_CHANNELS" => ext.in_channels;
}

/// Every leaf key of a pycls config (`OPTIM.BASE_LR`, `RNG_SEED`, `EXT.IN_CHANNELS`).
pub fn config_keys() -> Vec<String> {
    fn walk(v: &serde_norway::Value, prefix: &str, out: &mut Vec<String>) {
        if let serde_norway::Value::Mapping(m) = v {
            for (k, v) in m {
                let Some(k) = k.as_str() else { continue };
                let full = format!("{prefix}{k}");
                match v {
                    serde_norway::Value::Mapping(_) => walk(v, &format!("{full}."), out),
                    _ => out.push(full),
                }
            }
        }
    }
    let mut out = Vec::new();
    let tree = serde_norway::to_value(Config::default()).expect("configs serialise");
    walk(&tree, "", &mut out);
    // EXT is left out of dumps while it holds its defaults.
    let ext = serde_norway::to_value(ExtCfg::default()).expect("configs serialise");
    walk(&ext, "EXT.", &mut out);
    out
}

/// Nested YAML `{A: {B: value}}` of dotted parameters, for `Config::merge_yaml`.
pub fn params_yaml(params: &[(String, Json)]) -> String {
    use serde_norway::{Mapping, Value};
    let mut root = Mapping::new();
    for (key, v) in params {
        let value: Value = serde_norway::to_value(v).expect("JSON values are YAML values");
        let parts: Vec<&str> = key.split('.').collect();
        let mut node = &mut root;
        for part in &parts[..parts.len() - 1] {
            let k = Value::String((*part).to_string());
            if !matches!(node.get(&k), Some(Value::Mapping(_))) {
                node.insert(k.clone(), Value::Mapping(Mapping::new()));
            }
            node = match node.get_mut(&k) {
                Some(Value::Mapping(m)) => m,
                _ => unreachable!("inserted above"),
            };
        }
        node.insert(Value::String(parts[parts.len() - 1].to_string()), value);
    }
    serde_norway::to_string(&Value::Mapping(root)).expect("YAML values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_key_is_a_config_key_and_sets_its_field() {
        let keys = config_keys();
        for k in MODEL_KEYS {
            assert!(keys.iter().any(|c| c == k), "{k}");
        }
        assert!(keys.iter().any(|c| c == "OPTIM.BASE_LR"));
        assert!(keys.iter().any(|c| c == "RNG_SEED"));
        let mut cfg = Config::default();
        setter("REGNET.WA").unwrap()(&mut cfg, &Json::from(36.4)).unwrap();
        setter("ANYNET.DEPTHS").unwrap()(&mut cfg, &serde_json::json!([1, 2])).unwrap();
        setter("REGNET.W0").unwrap()(&mut cfg, &Json::from("24")).unwrap();
        assert_eq!(
            (cfg.regnet.wa, cfg.anynet.depths.clone(), cfg.regnet.w0),
            (36.4, vec![1, 2], 24)
        );
        assert!(setter("REGNET.DEPTH").unwrap()(&mut cfg, &Json::from(2.5)).is_err());
        assert!(setter("OPTIM.BASE_LR").is_none());
    }

    #[test]
    fn params_become_nested_yaml() {
        let y = params_yaml(&[
            ("REGNET.DEPTH".into(), Json::from(13)),
            ("REGNET.WA".into(), Json::from(36.4)),
            ("RNG_SEED".into(), Json::from(2)),
        ]);
        let mut cfg = Config::default();
        cfg.merge_yaml(&y, regnet_core::error::Origin::Builtin)
            .unwrap();
        assert_eq!(
            (cfg.regnet.depth, cfg.regnet.wa, cfg.rng_seed),
            (13, 36.4, 2)
        );
    }
}

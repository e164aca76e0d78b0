//! Weight files in and out.
//!
//! Read: PyTorch pickles (`torch.save`: pycls `.pyth` checkpoints holding `model_state`,
//! optionally `ema_state`, `optimizer_state`, `epoch` and `cfg`; timm and torchvision state
//! dicts), read with `pytorch-reader`, which never executes pickle code; and safetensors
//! (regnet's own, timm's, or any state dict). timm and torchvision key names are mapped to
//! pycls's. Written: safetensors with the spec in the metadata, so that a saved model reloads
//! with no config.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use pytorch_reader::{DType as PtDType, PickleValue, PytorchReader};
use regnet_core::limits::MAX_TENSOR_RANK;
use regnet_core::spec::NetSpec;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::WeightsError;
use crate::state_dict::{StateDict, TensorF32};

/// Whose key names a state dict uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// pycls (`s1.b1.f.a_bn.weight`), also regnet's own.
    Pycls,
    /// timm (`s1.b1.conv1.bn.weight`).
    Timm,
    /// torchvision (`trunk_output.block1.block1-0.f.a.1.weight`).
    Torchvision,
}

/// The channel order a model's stem expects: the config's `EXT.CHANNEL_ORDER` type, so that
/// training writes into checkpoint metadata exactly what `test` and `predict` read back.
pub use regnet_core::choices::ChannelOrder;

/// Which weights of a pycls checkpoint to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Which {
    /// `model_state`.
    #[default]
    Model,
    /// `ema_state` (the exponential moving average of the weights).
    Ema,
}

/// A weight file, read and converted to pycls names.
#[derive(Clone, Debug)]
pub struct Weights {
    /// The tensors, with pycls names (integer buffers such as `num_batches_tracked` dropped).
    pub state: StateDict,
    /// The layout the file used.
    pub layout: Layout,
    /// The spec stored in regnet's safetensors metadata.
    pub spec: Option<NetSpec>,
    /// The pycls config (YAML) stored in a pycls checkpoint.
    pub pycls_cfg: Option<String>,
    /// The channel order stored in regnet's metadata.
    pub channel_order: Option<ChannelOrder>,
    /// The training epoch stored in a checkpoint.
    pub epoch: Option<i64>,
}

fn file_err(path: &Path, message: impl Into<String>) -> WeightsError {
    WeightsError::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

#[derive(PartialEq)]
enum Container {
    Safetensors,
    Pytorch,
}

fn sniff(path: &Path) -> Result<Container, WeightsError> {
    let mut head = [0u8; 512];
    let mut f = std::fs::File::open(path).map_err(|e| file_err(path, e.to_string()))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(file_err(path, e.to_string())),
        }
    }
    let head = &head[..n];
    // safetensors: little-endian u64 header length, then a JSON object. Checked first: the
    // length's low byte can be 0x80, a pickle's first byte.
    if n >= 9 && head[8] == b'{' {
        return Ok(Container::Safetensors);
    }
    if head.starts_with(b"PK\x03\x04")
        || head.first() == Some(&0x80)
        || head.get(257..262) == Some(b"ustar")
    {
        return Ok(Container::Pytorch);
    }
    if n == 0 {
        return Err(file_err(path, "empty file"));
    }
    Err(file_err(
        path,
        "not a safetensors file or a PyTorch checkpoint",
    ))
}

/// Reads a weight file of any supported format.
pub fn read(path: &Path, which: Which) -> Result<Weights, WeightsError> {
    let mut w = match sniff(path)? {
        Container::Safetensors => read_safetensors(path, which)?,
        Container::Pytorch => read_pytorch(path, which)?,
    };
    let layout = detect_layout(w.state.tensors.keys().map(String::as_str));
    w.state = to_pycls_names(w.state, layout);
    w.layout = layout;
    Ok(w)
}

fn f32_from(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Metadata key of the spec in regnet's safetensors.
pub const META_SPEC: &str = "regnet_spec";
/// Metadata key of the channel order.
pub const META_CHANNELS: &str = "channel_order";

/// Reads every float tensor of a safetensors file (other dtypes are skipped).
pub fn read_safetensors_tensors(
    path: &Path,
) -> Result<(StateDict, HashMap<String, String>), WeightsError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e.to_string()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| file_err(path, format!("bad safetensors: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| file_err(path, format!("bad safetensors: {e}")))?;
    let mut sd = StateDict::default();
    for (name, view) in st.tensors() {
        if let Some(data) = f32_from(view.dtype(), view.data()) {
            let t = checked_tensor(path, &name, view.shape().to_vec(), data)?;
            sd.insert(name, t);
        }
    }
    Ok((sd, meta.metadata().clone().unwrap_or_default()))
}

fn read_safetensors(path: &Path, which: Which) -> Result<Weights, WeightsError> {
    let (mut state, meta) = read_safetensors_tensors(path)?;
    if meta.get("format").map(String::as_str) == Some(CHECKPOINT_FORMAT) {
        // A training checkpoint: keep the model's (or the EMA's) tensors only.
        let keep = |prefix: &str| StateDict {
            tensors: state
                .tensors
                .iter()
                .filter_map(|(k, v)| {
                    let rest = if prefix.is_empty() {
                        (!k.starts_with("ema.") && !k.starts_with("momentum_buffer."))
                            .then_some(k.as_str())
                    } else {
                        k.strip_prefix(prefix)
                    };
                    rest.map(|r| (r.to_string(), v.clone()))
                })
                .collect(),
        };
        state = match which {
            Which::Model => keep(""),
            Which::Ema => keep("ema."),
        };
        if state.tensors.is_empty() {
            return Err(file_err(path, "the checkpoint holds no EMA weights"));
        }
    } else if which == Which::Ema {
        return Err(file_err(
            path,
            "not a training checkpoint, so it has no EMA weights",
        ));
    }
    let spec = match meta.get(META_SPEC) {
        Some(json) => Some(
            NetSpec::from_json(json)
                .map_err(|e| file_err(path, format!("metadata {META_SPEC}: {e}")))?,
        ),
        None => None,
    };
    let channel_order = match meta.get(META_CHANNELS).map(String::as_str) {
        Some("rgb") => Some(ChannelOrder::Rgb),
        Some("bgr") => Some(ChannelOrder::Bgr),
        Some(other) => {
            return Err(file_err(
                path,
                format!("metadata {META_CHANNELS}: `{other}` is not rgb or bgr"),
            ));
        }
        None => None,
    };
    let epoch = meta.get("epoch").and_then(|e| e.parse().ok());
    Ok(Weights {
        state,
        layout: Layout::Pycls,
        spec,
        pycls_cfg: meta.get("config").cloned(),
        channel_order,
        epoch,
    })
}

/// A tensor whose shape has at most [`MAX_TENSOR_RANK`] dimensions and as many elements as
/// its data, so that nothing later indexes past the data or loops over a claimed size.
fn checked_tensor(
    path: &Path,
    name: &str,
    shape: Vec<usize>,
    data: Vec<f32>,
) -> Result<TensorF32, WeightsError> {
    if shape.len() > MAX_TENSOR_RANK {
        let msg = format!(
            "tensor {name} has {} dimensions, above the limit of {MAX_TENSOR_RANK}",
            shape.len()
        );
        return Err(file_err(path, msg));
    }
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if numel != Some(data.len()) {
        let msg = format!(
            "tensor {name} has shape {shape:?} but {} elements",
            data.len()
        );
        return Err(file_err(path, msg));
    }
    Ok(TensorF32::new(shape, data))
}

/// Checks that a tensor of a PyTorch file claims no more bytes than the file holds, before
/// reading it: a strided view (stride 0) could otherwise expand a few bytes into terabytes.
fn check_claimed_size(
    path: &Path,
    name: &str,
    shape: &[usize],
    elem: usize,
    file_len: u64,
) -> Result<(), WeightsError> {
    if shape.len() > MAX_TENSOR_RANK {
        let msg = format!(
            "tensor {name} has {} dimensions, above the limit of {MAX_TENSOR_RANK}",
            shape.len()
        );
        return Err(file_err(path, msg));
    }
    let bytes = shape
        .iter()
        .try_fold(elem, |n, &d| n.checked_mul(d))
        .and_then(|b| u64::try_from(b).ok());
    match bytes {
        Some(b) if b <= file_len => Ok(()),
        _ => Err(file_err(
            path,
            format!("tensor {name} of shape {shape:?} is larger than the file ({file_len} bytes)"),
        )),
    }
}

fn pt_err(path: &Path, e: impl std::fmt::Display) -> WeightsError {
    file_err(path, format!("bad PyTorch checkpoint: {e}"))
}

fn read_pytorch(path: &Path, which: Which) -> Result<Weights, WeightsError> {
    let file_len = std::fs::metadata(path)
        .map_err(|e| file_err(path, e.to_string()))?
        .len();
    let reader = PytorchReader::new(path).map_err(|e| pt_err(path, e))?;
    let keys = reader.keys();
    // A pycls checkpoint nests the weights under model_state (and ema_state).
    let is_checkpoint = keys.iter().any(|k| k.starts_with("model_state."));
    let prefix = match (is_checkpoint, which) {
        (true, Which::Model) => "model_state.",
        (true, Which::Ema) => {
            if !keys.iter().any(|k| k.starts_with("ema_state.")) {
                return Err(file_err(path, "the checkpoint has no ema_state"));
            }
            "ema_state."
        }
        (false, Which::Ema) => {
            return Err(file_err(
                path,
                "not a pycls checkpoint, so it has no ema_state",
            ));
        }
        (false, Which::Model) => "",
    };
    let mut state = StateDict::default();
    for (name, t) in reader.into_tensors() {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let (dtype, elem) = match t.dtype() {
            PtDType::F32 => (Dtype::F32, 4),
            PtDType::F64 => (Dtype::F64, 8),
            PtDType::F16 => (Dtype::F16, 2),
            PtDType::BF16 => (Dtype::BF16, 2),
            _ => continue, // integer buffers (num_batches_tracked)
        };
        check_claimed_size(path, &name, t.shape(), elem, file_len)?;
        let bytes = t.read().map_err(|e| pt_err(path, e))?;
        let data = f32_from(dtype, &bytes).expect("float dtype");
        let rest = rest.strip_prefix("module.").unwrap_or(rest);
        let t = checked_tensor(path, &name, t.shape().to_vec(), data)?;
        state.insert(rest, t);
    }
    let (mut pycls_cfg, mut epoch) = (None, None);
    if is_checkpoint {
        if let Ok(PickleValue::String(s)) = PytorchReader::read_pickle_data(path, Some("cfg")) {
            pycls_cfg = Some(s);
        }
        if let Ok(PickleValue::Int(e)) = PytorchReader::read_pickle_data(path, Some("epoch")) {
            epoch = Some(e);
        }
    }
    Ok(Weights {
        state,
        layout: Layout::Pycls,
        spec: None,
        pycls_cfg,
        channel_order: None,
        epoch,
    })
}

/// Guesses whose names a state dict uses.
pub fn detect_layout<'a>(mut keys: impl Iterator<Item = &'a str>) -> Layout {
    let mut layout = Layout::Pycls;
    for k in keys.by_ref() {
        if k.starts_with("trunk_output.") || k.starts_with("stem.0.") {
            return Layout::Torchvision;
        }
        if k.contains(".conv1.conv.") || k.contains(".downsample.conv.") || k.contains(".se.fc1.") {
            layout = Layout::Timm;
        }
    }
    layout
}

fn timm_name(k: &str) -> String {
    // sS.bB.<part>.<rest>; stem and head are named as in pycls.
    let parts: Vec<&str> = k.splitn(4, '.').collect();
    if parts.len() == 4 && parts[0].starts_with('s') && parts[1].starts_with('b') {
        let (s, b) = (parts[0], parts[1]);
        let mapped = match (parts[2], parts[3]) {
            ("conv1", r) => r
                .strip_prefix("conv.")
                .map(|r| format!("f.a.{r}"))
                .or_else(|| r.strip_prefix("bn.").map(|r| format!("f.a_bn.{r}"))),
            ("conv2", r) => r
                .strip_prefix("conv.")
                .map(|r| format!("f.b.{r}"))
                .or_else(|| r.strip_prefix("bn.").map(|r| format!("f.b_bn.{r}"))),
            ("conv3", r) => r
                .strip_prefix("conv.")
                .map(|r| format!("f.c.{r}"))
                .or_else(|| r.strip_prefix("bn.").map(|r| format!("f.c_bn.{r}"))),
            ("downsample", r) => r
                .strip_prefix("conv.")
                .map(|r| format!("proj.{r}"))
                .or_else(|| r.strip_prefix("bn.").map(|r| format!("bn.{r}"))),
            ("se", r) => r
                .strip_prefix("fc1.")
                .map(|r| format!("f.se.f_ex.0.{r}"))
                .or_else(|| r.strip_prefix("fc2.").map(|r| format!("f.se.f_ex.2.{r}"))),
            _ => None,
        };
        if let Some(m) = mapped {
            return format!("{s}.{b}.{m}");
        }
    }
    k.to_string()
}

fn torchvision_name(k: &str) -> String {
    if let Some(r) = k.strip_prefix("stem.0.") {
        return format!("stem.conv.{r}");
    }
    if let Some(r) = k.strip_prefix("stem.1.") {
        return format!("stem.bn.{r}");
    }
    if let Some(r) = k.strip_prefix("fc.") {
        return format!("head.fc.{r}");
    }
    // trunk_output.blockS.blockS-K.<rest>
    if let Some(r) = k.strip_prefix("trunk_output.") {
        let mut it = r.splitn(3, '.');
        if let (Some(_stage), Some(block), Some(rest)) = (it.next(), it.next(), it.next())
            && let Some((s, b)) = block
                .strip_prefix("block")
                .and_then(|sb| sb.split_once('-'))
            && let (Ok(s), Ok(b)) = (s.parse::<usize>(), b.parse::<usize>())
        {
            let rest = rest
                .replacen("proj.0.", "proj.", 1)
                .replacen("proj.1.", "bn.", 1)
                .replacen("f.a.0.", "f.a.", 1)
                .replacen("f.a.1.", "f.a_bn.", 1)
                .replacen("f.b.0.", "f.b.", 1)
                .replacen("f.b.1.", "f.b_bn.", 1)
                .replacen("f.c.0.", "f.c.", 1)
                .replacen("f.c.1.", "f.c_bn.", 1)
                .replacen("f.se.fc1.", "f.se.f_ex.0.", 1)
                .replacen("f.se.fc2.", "f.se.f_ex.2.", 1);
            return format!("s{s}.b{}.{rest}", b + 1);
        }
    }
    k.to_string()
}

/// Renames a state dict from `layout` to pycls names.
pub fn to_pycls_names(sd: StateDict, layout: Layout) -> StateDict {
    let rename: fn(&str) -> String = match layout {
        Layout::Pycls => return sd,
        Layout::Timm => timm_name,
        Layout::Torchvision => torchvision_name,
    };
    StateDict {
        tensors: sd
            .tensors
            .into_iter()
            .map(|(k, v)| (rename(&k), v))
            .collect(),
    }
}

/// Writes `state` as safetensors with the spec and channel order in the metadata, atomically
/// (temporary file, then rename), so that an interrupted write never leaves a broken file.
pub fn write_safetensors(
    path: &Path,
    state: &StateDict,
    spec: &NetSpec,
    channel_order: ChannelOrder,
) -> Result<(), WeightsError> {
    let meta = HashMap::from([
        (META_SPEC.to_string(), spec.to_json()),
        (META_CHANNELS.to_string(), channel_order.name().to_string()),
        ("format".to_string(), "regnet".to_string()),
    ]);
    write_groups(path, &[("", state)], meta)
}

/// Writes groups of tensors, each name prefixed with its group's prefix, and `meta`, as
/// safetensors, atomically.
pub fn write_groups(
    path: &Path,
    groups: &[(&str, &StateDict)],
    meta: HashMap<String, String>,
) -> Result<(), WeightsError> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = groups
        .iter()
        .flat_map(|(prefix, sd)| {
            sd.tensors.iter().map(move |(n, t)| {
                let data: Vec<u8> = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
                (format!("{prefix}{n}"), data, t.shape.clone())
            })
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| Ok((n.as_str(), TensorView::new(Dtype::F32, s.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| file_err(path, e.to_string()))?;
    let out =
        safetensors::serialize(views, Some(meta)).map_err(|e| file_err(path, e.to_string()))?;
    write_atomic(path, &out)
}

/// Metadata `format` of regnet's training checkpoints, which hold the model's tensors
/// unprefixed, the EMA's under `ema.` and the optimizer's under `momentum_buffer.`.
pub const CHECKPOINT_FORMAT: &str = "regnet-checkpoint";

/// What marks regnet's temporary files: `.NAME.regnet-tmp.PID` next to `NAME`.
pub use regnet_core::atomic_file::TMP_MARKER;

/// A temporary file older than this is abandoned even if a process with its writer's pid
/// runs (writes take seconds).
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

fn fs_err(e: regnet_core::atomic_file::FileError) -> WeightsError {
    file_err(&e.path, e.source.to_string())
}

/// The temporary file [`write_atomic`] writes `path` through: `.NAME.regnet-tmp.PID` in the
/// same directory (see [`regnet_core::atomic_file::temp_path`]).
pub fn temp_path(path: &Path) -> Result<std::path::PathBuf, WeightsError> {
    if path.file_name().is_none() {
        return Err(file_err(path, "not a file path"));
    }
    Ok(regnet_core::atomic_file::temp_path(path))
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all of `bytes`,
/// even across a crash or a power cut ([`regnet_core::atomic_file::write_atomic`]). A
/// temporary file a killed process left behind is removed by [`remove_stale_temps`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WeightsError> {
    temp_path(path)?;
    regnet_core::atomic_file::write_atomic(path, bytes).map_err(fs_err)
}

/// Removes the temporary files that killed writers left in `dir` (see [`temp_path`]), and
/// returns their paths. Files of processes still running are kept; a missing `dir` is fine.
pub fn remove_stale_temps(dir: &Path) -> Result<Vec<std::path::PathBuf>, WeightsError> {
    regnet_core::atomic_file::remove_stale(dir, STALE_AFTER).map_err(fs_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timm_and_torchvision_names() {
        assert_eq!(timm_name("s1.b1.conv1.conv.weight"), "s1.b1.f.a.weight");
        assert_eq!(
            timm_name("s2.b3.conv2.bn.running_var"),
            "s2.b3.f.b_bn.running_var"
        );
        assert_eq!(timm_name("s1.b1.se.fc2.bias"), "s1.b1.f.se.f_ex.2.bias");
        assert_eq!(timm_name("s4.b1.downsample.bn.weight"), "s4.b1.bn.weight");
        assert_eq!(timm_name("stem.conv.weight"), "stem.conv.weight");
        assert_eq!(
            torchvision_name("trunk_output.block2.block2-0.proj.1.bias"),
            "s2.b1.bn.bias"
        );
        assert_eq!(
            torchvision_name("trunk_output.block3.block3-4.f.b.0.weight"),
            "s3.b5.f.b.weight"
        );
        assert_eq!(
            torchvision_name("trunk_output.block1.block1-0.f.se.fc1.weight"),
            "s1.b1.f.se.f_ex.0.weight"
        );
        assert_eq!(
            torchvision_name("stem.1.running_mean"),
            "stem.bn.running_mean"
        );
        assert_eq!(torchvision_name("fc.weight"), "head.fc.weight");
    }
}

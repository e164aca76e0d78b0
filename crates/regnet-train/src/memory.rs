//! The sizes a timing run or a training run allocates from, checked before anything is
//! allocated: a batch size or image size from a config or a flag can ask for more memory
//! than the machine has, which is a bad option (a one-line error naming it), not a reason
//! for an allocation failure to abort the process or for the kernel to kill it.

use burn::tensor::Device;
use regnet_core::complexity::complexity;
use regnet_core::limits::{MAX_BATCH, MAX_IM_SIZE};
use regnet_core::network::Network;
use regnet_core::spec::NetSpec;
use regnet_data::MAX_BATCH_BYTES;

use crate::trainer::TrainError;

/// Most iterations (warm-up and timed together) of one timing run.
pub const MAX_ITERS: usize = 1_000_000;

/// Bytes a training step keeps per activation value (pycls's `acts`, counted at batch 1):
/// the forward keeps the inputs of convolutions, batch norms and activations for the
/// backward pass. Measured on the CPU (`/usr/bin/time -f %M regnet time RegNetX-400MF
/// --batch 8|16 --im-size 224 --warmup 1 --iters 1`): the peak resident size grew from
/// 386720 to 606712 KiB, 26.9 MiB per image, 2.2 times its 3.14 M acts of `f32`; 3 leaves
/// room for other networks.
const TRAIN_BYTES_PER_ACT: u64 = 3 * 4;

/// Bytes an eval-mode forward keeps per activation value at most: every output once (it
/// frees them as it goes, so this is an upper bound).
const EVAL_BYTES_PER_ACT: u64 = 4;

/// Checks a batch of `batch` random `c`-channel images of `size` x `size`, as timing runs
/// allocate: each at least 1 and within the config limits, and the batch within the data
/// loader's [`MAX_BATCH_BYTES`].
pub fn check_input(batch: usize, c: usize, size: usize) -> Result<(), TrainError> {
    let bad = |m: String| Err(TrainError::Other(m));
    if batch == 0 {
        return bad("batch 0: must be at least 1".into());
    }
    if size == 0 {
        return bad("image size 0: must be at least 1".into());
    }
    if batch > MAX_BATCH {
        return bad(format!("batch {batch} is above the limit of {MAX_BATCH}"));
    }
    if size > MAX_IM_SIZE {
        return bad(format!(
            "image size {size} is above the limit of {MAX_IM_SIZE}"
        ));
    }
    // Within these limits the product cannot overflow a u64.
    let bytes = (batch * c) as u64 * (size * size) as u64 * 4;
    if bytes > MAX_BATCH_BYTES as u64 {
        return bad(format!(
            "a batch of {batch} images of {c}x{size}x{size} floats is larger than the \
             {MAX_BATCH_BYTES}-byte limit (lower the batch size or the image size)"
        ));
    }
    Ok(())
}

/// Checks the iteration counts of a timing run against [`MAX_ITERS`].
pub fn check_iters(warmup: usize, iters: usize) -> Result<(), TrainError> {
    if warmup.saturating_add(iters) > MAX_ITERS {
        return Err(TrainError::Other(format!(
            "{warmup} warm-up and {iters} timed iterations are above the limit of {MAX_ITERS}"
        )));
    }
    Ok(())
}

/// Checks that a training step (`training`) or an eval-mode forward of `spec` on batches
/// of `batch` images of `size` x `size` on `device` (`what` names where they come from:
/// `TRAIN.BATCH_SIZE 128 at TRAIN.IM_SIZE 224`) keeps its activations within the machine's
/// memory, estimated from pycls's activation count. Only the CPU is checked, and only where
/// the memory size can be read (Linux).
pub fn check_memory(
    spec: &NetSpec,
    [batch, size]: [usize; 2],
    training: bool,
    device: &Device,
    what: &str,
) -> Result<(), TrainError> {
    let Some(total) = physical_memory().filter(|_| *device == regnet_nn::device::cpu()) else {
        return Ok(());
    };
    let acts = complexity(&Network::from_spec(spec)?, size, size).acts;
    let (per_act, step) = if training {
        (TRAIN_BYTES_PER_ACT, "a training step needs about")
    } else {
        (EVAL_BYTES_PER_ACT, "a forward pass needs up to")
    };
    let need = acts.saturating_mul(batch as u64).saturating_mul(per_act);
    if need > total {
        return Err(TrainError::Other(format!(
            "{what}: {step} {} of activations ({acts} values per image), more \
             than this machine's {} of memory (lower the batch size or the image size)",
            gib(need),
            gib(total)
        )));
    }
    Ok(())
}

/// `bytes` in GiB, for messages.
fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// The machine's memory in bytes (`MemTotal` of `/proc/meminfo`), where it can be read.
fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sizes_are_bounded() {
        assert!(check_input(8, 3, 224).is_ok());
        let err = |b, c, s| check_input(b, c, s).unwrap_err().to_string();
        assert!(err(0, 3, 224).contains("at least 1"));
        assert!(err(8, 3, 0).contains("at least 1"));
        assert!(err(MAX_BATCH + 1, 3, 224).contains("batch 65537 is above the limit"));
        assert!(err(1, 3, MAX_IM_SIZE + 1).contains("image size 16385 is above"));
        // 4096 images of 3x1024x1024 are 48 GiB.
        assert!(err(4096, 3, 1024).contains("byte limit"));
        assert!(check_iters(5, 20).is_ok());
        assert!(check_iters(usize::MAX, 1).is_err());
    }

    #[test]
    fn memory_is_checked_on_the_cpu() {
        let spec = regnet_core::zoo::lookup("RegNetX-400MF").expect("a zoo model");
        let (spec, cpu) = (spec.model.spec(), regnet_nn::device::cpu());
        for training in [false, true] {
            assert!(check_memory(&spec, [8, 224], training, &cpu, "batch 8").is_ok());
            let r = check_memory(&spec, [MAX_BATCH, 4096], training, &cpu, "TRAIN.BATCH_SIZE");
            if physical_memory().is_some() {
                let e = r.unwrap_err().to_string();
                assert!(e.starts_with("TRAIN.BATCH_SIZE: a "), "{e}");
                assert!(e.contains("of activations"), "{e}");
            }
        }
    }
}

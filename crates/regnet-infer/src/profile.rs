//! Per-layer times of the compiled forward pass, when asked for (`regnet time --layers`):
//! each convolution, SE block and the head timed as it runs, summed by what it computes
//! (kind, channels, stride and input size), as ONNX Runtime's profiler sums by node. The
//! timer costs a clock read and a lock per layer, so it is off unless turned on.

use std::sync::Mutex;
use std::time::Instant;

/// One kind of layer's time, summed over its calls.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerTime {
    /// What the layer computes, such as `conv 3x3 32->32 g2 /2 at 112x112`.
    pub layer: String,
    /// Calls (layers of this kind times forward passes, or images where a batch's leading
    /// blocks run image by image).
    pub calls: usize,
    /// Seconds, all calls together.
    pub seconds: f64,
    /// Multiply-adds, all calls together (0 where the layer does no convolution).
    pub macs: u64,
}

/// The times collected since profiling was turned on.
#[derive(Debug, Default)]
pub(crate) struct Profile {
    layers: Mutex<Vec<LayerTime>>,
}

impl Profile {
    /// Runs `f`, adding its time (and `macs`) to the layer `label()` names.
    pub fn time<R>(&self, label: impl FnOnce() -> String, macs: u64, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        let seconds = t.elapsed().as_secs_f64();
        let layer = label();
        // A panic elsewhere while the lock was held leaves the times usable.
        let mut layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        match layers.iter_mut().find(|l| l.layer == layer) {
            Some(l) => {
                l.calls += 1;
                l.seconds += seconds;
                l.macs += macs;
            }
            None => layers.push(LayerTime {
                layer,
                calls: 1,
                seconds,
                macs,
            }),
        }
        r
    }

    /// The layers, slowest first.
    pub fn layers(&self) -> Vec<LayerTime> {
        let mut v = self
            .layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        v
    }
}

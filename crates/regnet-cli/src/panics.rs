//! A panic anywhere in a command (burn's GPU runtime panics when the device cannot run a
//! size, for example) ends as a one-line error, not a backtrace. With `RUST_BACKTRACE` set,
//! panics print as usual, for debugging.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use anyhow::anyhow;

/// The first panic's message and place: later panics are usually its consequences.
static FIRST: Mutex<Option<String>> = Mutex::new(None);

/// Runs `command`, turning a panic into an error that says what failed.
pub fn as_errors(command: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    *FIRST.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let verbose = std::env::var_os("RUST_BACKTRACE").is_some();
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let place = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(format!("{msg}{place}"));
        drop(first);
        if verbose {
            default_hook(info);
        }
    }));
    match panic::catch_unwind(AssertUnwindSafe(command)) {
        Ok(result) => result,
        Err(_) => {
            let first = FIRST.lock().unwrap_or_else(|e| e.into_inner()).take();
            Err(anyhow!(describe(&first.unwrap_or_default())))
        }
    }
}

/// One line for a panic message: the device's limits get a hint, anything else is a bug.
fn describe(msg: &str) -> String {
    let line = regnet_core::error::one_line(msg.to_string());
    let device_limit = [
        "Cube count too big",
        "out of memory",
        "OutOfMemory",
        "BufferTooBig",
    ]
    .iter()
    .any(|needle| msg.contains(needle));
    if device_limit {
        format!("the GPU cannot run this size (try a smaller batch or image): {line}")
    } else {
        format!("internal failure, please report it (RUST_BACKTRACE=1 for details): {line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_one_line_naming_it() {
        let e = as_errors(|| panic!("Cube count too big (6422528, 3, 1)\nmore")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("the GPU cannot run this size"), "{s}");
        assert!(s.contains("6422528") && !s.contains('\n'), "{s}");
        assert!(as_errors(|| Ok(())).is_ok());
    }
}

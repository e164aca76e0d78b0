//! TEMPORARY op profiler (not to be committed).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
static T: Mutex<Option<HashMap<String, (f64, u64)>>> = Mutex::new(None);
pub fn prof<R>(key: impl FnOnce() -> String, f: impl FnOnce() -> R) -> R {
    if std::env::var_os("OPPROF").is_none() { return f(); }
    let t = Instant::now();
    let r = f();
    let e = t.elapsed().as_secs_f64() * 1e3;
    let mut g = T.lock().unwrap();
    let m = g.get_or_insert_with(HashMap::new);
    let v = m.entry(key()).or_insert((0.0, 0));
    v.0 += e; v.1 += 1;
    r
}
pub fn dump() {
    let g = T.lock().unwrap();
    if let Some(m) = g.as_ref() {
        let mut v: Vec<_> = m.iter().collect();
        v.sort_by(|a, b| b.1.0.partial_cmp(&a.1.0).unwrap());
        let tot: f64 = v.iter().map(|x| x.1.0).sum();
        eprintln!("total {tot:.1} ms");
        for (k, (t, n)) in v { eprintln!("{:8.2} ms {:6} {:7.3} ms/call {k}", t, n, t / *n as f64); }
    }
}
pub fn reset() { *T.lock().unwrap() = None; }

//! Random scalars on a closed interval `[low, high]`, quantized to multiples of `q`, with the
//! semantics of pycls's `sweep/random.py`.
//!
//! Every distribution returns a multiple of `q` inside `[low, high]`, both ends included:
//!
//! | rand type | draw | quantization | resulting law |
//! |---|---|---|---|
//! | `uniform` | `f` uniform in `[low, high + q)` | `floor(f / q) * q` | every multiple of `q` equally likely |
//! | `log_uniform` | `log f` uniform in `(log(low - q*), log high]`, `q* = min(q, low / 2)` | `ceil(f / q) * q` | log-linear CDF; `low` gets the mass of `(low - q*, low]` |
//! | `power2_uniform` | exponent `e` uniform in `[log2 low, log2 high]` | `floor(2^e / q) * q` | every power of two equally likely |
//! | `power2_or_log_uniform` | a `power2_uniform` value `p` in `[low, high]`; if `p >= q`, it is replaced by `log_uniform(max(low, q), high)` quantized to `min(high, q)` | as the parts | powers of two below `q`, multiples of `q` above, log-linear CDF overall |
//! | `normal` | normal with `mu = (low + high) / 2`, `sigma = (high - low) / 6`, redrawn until in `[low, high]` | `round(f / q) * q` (half to even) | clipped normal |
//! | `log_normal` | the same on `log f` | `round(f / q) * q` | clipped log-normal |
//!
//! As in pycls, the product `k * q` is computed in decimal from the shortest representation
//! of `q` (Python's `Decimal(str(q))`), so that `q = 0.1` gives `0.3`, not
//! `0.30000000000000004`. Where floating-point error in `f / q` would put `k` one step
//! outside the interval (pycls does not guard against this, it happens with probability
//! ~1e-16), `k` is clamped to the interval.
//!
//! The checks of pycls's `validate_rand` apply: `q > 0`, `low <= high`, `low > 0` except for
//! `uniform` and `normal`, `low` and `high` multiples of `q` (except for
//! `power2_or_log_uniform`), and powers of two for the `power2_*` types.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};

/// The random distributions of pycls's sweep samplers (`RAND_TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RandType {
    /// Uniform over the multiples of `q` in `[low, high]`.
    Uniform,
    /// Log-uniform, quantized up to multiples of `q`.
    LogUniform,
    /// Uniform over the powers of two in `[low, high]`.
    Power2Uniform,
    /// Powers of two below `q`, log-uniform multiples of `q` above.
    Power2OrLogUniform,
    /// Clipped normal with 99.7% of its mass in `[low, high]`.
    Normal,
    /// Clipped log-normal with 99.7% of its mass in `[low, high]`.
    LogNormal,
}

impl RandType {
    /// All pycls names.
    pub const NAMES: &'static [&'static str] = &[
        "uniform",
        "log_uniform",
        "power2_uniform",
        "power2_or_log_uniform",
        "normal",
        "log_normal",
    ];

    /// The pycls name.
    pub fn name(self) -> &'static str {
        match self {
            RandType::Uniform => "uniform",
            RandType::LogUniform => "log_uniform",
            RandType::Power2Uniform => "power2_uniform",
            RandType::Power2OrLogUniform => "power2_or_log_uniform",
            RandType::Normal => "normal",
            RandType::LogNormal => "log_normal",
        }
    }

    /// Whether values are best shown on a log axis.
    pub fn is_log(self) -> bool {
        !matches!(self, RandType::Uniform | RandType::Normal)
    }
}

impl FromStr for RandType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "uniform" => RandType::Uniform,
            "log_uniform" => RandType::LogUniform,
            "power2_uniform" => RandType::Power2Uniform,
            "power2_or_log_uniform" => RandType::Power2OrLogUniform,
            "normal" => RandType::Normal,
            "log_normal" => RandType::LogNormal,
            _ => {
                return Err(format!(
                    "unknown RAND_TYPE `{s}` (expected one of: {})",
                    RandType::NAMES.join(", ")
                ));
            }
        })
    }
}

impl fmt::Display for RandType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Powers of ten that are exact in binary floating point.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A positive number as an exact decimal `mant * 10^exp`, read from its shortest
/// round-trip representation (what Python's `str(q)` prints).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantum {
    value: f64,
    mant: i64,
    exp: i32,
}

/// The shortest decimal `(mantissa, exponent)` of a finite float.
fn decimal_parts(x: f64) -> (i64, i32) {
    let s = format!("{x:e}");
    let (m, e) = s.split_once('e').expect("LowerExp always has an exponent");
    let e: i32 = e.parse().expect("LowerExp exponent is an integer");
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    let digits = format!("{int}{frac}");
    let mant: i64 = digits.parse().expect("at most 17 significant digits");
    (mant, e - frac.len() as i32)
}

impl Quantum {
    /// The quantum `q`, which must be positive and finite.
    pub fn new(q: f64) -> Option<Self> {
        if !(q > 0.0 && q.is_finite()) {
            return None;
        }
        let (mant, exp) = decimal_parts(q);
        Some(Quantum {
            value: q,
            mant,
            exp,
        })
    }

    /// `q` as a float.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// `k * q`, computed in decimal and rounded once to the nearest float.
    #[inline]
    pub fn times(&self, k: f64) -> f64 {
        // Sampling calls this millions of times: 64-bit integers suffice whenever the
        // product is exact in a float (an i128 product and its conversions cost more than
        // the rest of a draw).
        if let Some(n) = (k as i64).checked_mul(self.mant)
            && n.unsigned_abs() < 1 << 53
        {
            if (0..=22).contains(&self.exp) {
                // Both factors are exact; the product is rounded once.
                return n as f64 * POW10[self.exp as usize];
            }
            if (-22..0).contains(&self.exp) {
                // Both operands are exact, so IEEE division rounds the exact decimal once.
                return n as f64 / POW10[(-self.exp) as usize];
            }
        }
        self.times_by_parsing(k)
    }

    /// `k * q` for products beyond 2^53 or extreme exponents: the decimal literal, parsed
    /// (correctly rounded).
    #[cold]
    fn times_by_parsing(&self, k: f64) -> f64 {
        let n = (k as i128) * (self.mant as i128);
        format!("{n}e{}", self.exp)
            .parse()
            .expect("a decimal literal parses")
    }

    /// Whether `x` is an exact decimal multiple of `q` (pycls:
    /// `Decimal(str(x)) % Decimal(str(q)) == 0`).
    pub fn divides(&self, x: f64) -> bool {
        if x == 0.0 {
            return true;
        }
        if !x.is_finite() {
            return false;
        }
        let (xm, xe) = decimal_parts(x);
        let e = xe.min(self.exp);
        let scale = |m: i64, from: i32| -> Option<i128> {
            10i128
                .checked_pow((from - e) as u32)
                .and_then(|p| p.checked_mul(m as i128))
        };
        match (scale(xm, xe), scale(self.mant, self.exp)) {
            (Some(a), Some(b)) => a % b == 0,
            _ => false,
        }
    }
}

/// Rounding applied to `f / q`.
#[derive(Clone, Copy, Debug)]
enum Op {
    Floor,
    Ceil,
    /// numpy's `round`: half to even.
    Round,
}

/// `x.floor()`, without a libm call on CPUs without SSE4.1 (the baseline x86-64 target):
/// exact, as every float of magnitude below 2^52 truncates exactly to an `i64`.
fn floor(x: f64) -> f64 {
    if x.abs() < 4_503_599_627_370_496.0 {
        let t = x as i64 as f64;
        if t > x { t - 1.0 } else { t }
    } else {
        x.floor()
    }
}

/// `x.ceil()`, as [`floor`].
fn ceil(x: f64) -> f64 {
    if x.abs() < 4_503_599_627_370_496.0 {
        let t = x as i64 as f64;
        if t < x { t + 1.0 } else { t }
    } else {
        x.ceil()
    }
}

/// What a [`ScalarDist`] computes once rather than on every draw: the quantized range and
/// the affine map from a uniform draw (`uniform`: `f = low + span * u`; `log_uniform`:
/// `log f = top - span * u`). The draws use the same arithmetic as the free functions.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Law {
    k_low: f64,
    k_high: f64,
    span: f64,
    top: f64,
}

impl Law {
    fn new(rand_type: RandType, low: f64, high: f64, q: f64) -> Law {
        let k_low = (low / q).round();
        let k_high = (high / q).round().max(k_low);
        let (span, top) = match rand_type {
            RandType::LogUniform => {
                let (a, b) = ((low - q.min(low / 2.0)).ln(), high.ln());
                (b - a, b)
            }
            _ => ((high + q) - low, 0.0),
        };
        Law {
            k_low,
            k_high,
            span,
            top,
        }
    }
}

/// `op(f / q) * q`, clamped to the multiples of `q` inside `[low, high]`.
fn quantize(f: f64, q: &Quantum, op: Op, low: f64, high: f64) -> f64 {
    let x = f / q.value;
    let k = match op {
        Op::Floor => floor(x),
        Op::Ceil => ceil(x),
        Op::Round => x.round_ties_even(),
    };
    // `low` and `high` are multiples of q (validated), so the ratios are integers up to
    // floating-point error: round them rather than floor/ceil (0.3 / 0.1 = 2.9999...).
    let k_low = (low / q.value).round();
    let k_high = (high / q.value).round();
    q.times(k.clamp(k_low, k_high.max(k_low)))
}

/// A uniform draw in `[a, b)`, as numpy's `uniform(a, b)`.
fn uniform_f64<R: Rng + ?Sized>(rng: &mut R, a: f64, b: f64) -> f64 {
    a + (b - a) * rng.random::<f64>()
}

/// `uniform`: every multiple of `q` in `[low, high]` equally likely.
pub fn uniform<R: Rng + ?Sized>(rng: &mut R, low: f64, high: f64, q: &Quantum) -> f64 {
    // f in [low, high + q), then floor: each multiple owns a cell of width q.
    let f = uniform_f64(rng, low, high + q.value);
    quantize(f, q, Op::Floor, low, high)
}

/// `log_uniform`: log-linear CDF over the multiples of `q` in `[low, high]`.
pub fn log_uniform<R: Rng + ?Sized>(rng: &mut R, low: f64, high: f64, q: &Quantum) -> f64 {
    // log f in (log(low - q*), log(high)], then ceil. q* = min(q, low / 2) keeps the lower
    // end positive; it gives `low` the cell (low - q*, low].
    let q_star = q.value.min(low / 2.0);
    let (a, b) = ((low - q_star).ln(), high.ln());
    // 1 - u is in (0, 1], so the log is in (a, b].
    let f = (b - (b - a) * rng.random::<f64>()).exp();
    quantize(f, q, Op::Ceil, low, high)
}

/// `power2_uniform`: every power of two in `[low, high]` equally likely.
pub fn power2_uniform<R: Rng + ?Sized>(rng: &mut R, low: f64, high: f64, q: &Quantum) -> f64 {
    // pycls: floor(uniform(log2 low, log2 high + 1)) is a uniform integer exponent.
    let (e_low, e_high) = (low.log2().round() as i32, high.log2().round() as i32);
    let e = rng.random_range(e_low..=e_high);
    quantize(2f64.powi(e), q, Op::Floor, low, high)
}

/// `normal`: clipped normal, 99.7% of the unclipped mass inside `[low, high]`.
pub fn normal<R: Rng + ?Sized>(rng: &mut R, low: f64, high: f64, q: &Quantum) -> f64 {
    let (mu, sigma) = ((low + high) / 2.0, (high - low) / 6.0);
    let dist = Normal::new(mu, sigma).expect("validated: sigma >= 0 and finite");
    let f = loop {
        let f = dist.sample(rng);
        if (low..=high).contains(&f) {
            break f;
        }
    };
    quantize(f, q, Op::Round, low, high)
}

/// `log_normal`: clipped log-normal, 99.7% of the unclipped mass inside `[low, high]`.
pub fn log_normal<R: Rng + ?Sized>(rng: &mut R, low: f64, high: f64, q: &Quantum) -> f64 {
    let (a, b) = (low.ln(), high.ln());
    let (mu, sigma) = ((a + b) / 2.0, (b - a) / 6.0);
    let dist = LogNormal::new(mu, sigma).expect("validated: low > 0");
    let f = loop {
        let f = dist.sample(rng);
        if (low..=high).contains(&f) {
            break f;
        }
    };
    quantize(f, q, Op::Round, low, high)
}

/// A validated scalar distribution: `RAND_TYPE` over `RANGE = [low, high]` quantized to
/// `QUANTIZE = q`, producing integers (`int_sampler`) or floats (`float_sampler`).
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarDist {
    /// The distribution.
    pub rand_type: RandType,
    /// Lower end (included).
    pub low: f64,
    /// Upper end (included).
    pub high: f64,
    /// Quantum.
    pub q: f64,
    /// Integer values (`int_sampler`).
    pub int: bool,
    quantum: Quantum,
    /// `power2_or_log_uniform`: `low` as a quantum (its power-of-two part), and the lower
    /// end and quantum of its log-uniform part.
    p2_or_log: (Quantum, f64, Quantum),
    law: Law,
}

fn is_power_of_two(x: f64) -> bool {
    x > 0.0 && x.is_finite() && x.log2().fract() == 0.0 && 2f64.powi(x.log2() as i32) == x
}

/// Formats a value as its sampler type prints it (integers without a decimal point).
pub fn fmt_num(x: f64, int: bool) -> String {
    if int {
        format!("{}", x as i64)
    } else {
        format!("{x:?}")
    }
}

impl ScalarDist {
    /// Validates the parameters as pycls's `validate_rand` does; the error says why.
    pub fn new(
        rand_type: RandType,
        low: f64,
        high: f64,
        q: f64,
        int: bool,
    ) -> Result<Self, String> {
        let n = |x: f64| fmt_num(x, int);
        let what = format!("{rand_type}(low={}, high={}, q={})", n(low), n(high), n(q));
        let bad = |why: &str| Err(format!("{what} is invalid: {why}"));
        if ![low, high, q].iter().all(|x| x.is_finite()) {
            return bad("values must be finite");
        }
        if int && [low, high, q].iter().any(|x| x.fract() != 0.0) {
            return bad("int_sampler values must be integers");
        }
        let Some(quantum) = Quantum::new(q) else {
            return bad("q must be > 0");
        };
        if low > high {
            return bad("low must be <= high");
        }
        if low <= 0.0 && !matches!(rand_type, RandType::Uniform | RandType::Normal) {
            return bad(&format!("low must be > 0 for {rand_type}"));
        }
        if rand_type != RandType::Power2OrLogUniform
            && !(quantum.divides(low) && quantum.divides(high))
        {
            return bad("low and high must be multiples of q");
        }
        if matches!(
            rand_type,
            RandType::Power2Uniform | RandType::Power2OrLogUniform
        ) && ![low, high, q].iter().all(|&x| is_power_of_two(x))
        {
            return bad("low, high and q must be powers of 2");
        }
        // Only used by power2_or_log_uniform, where low > 0 is validated; other types may
        // have low <= 0, where these quanta are placeholders.
        let positive = |x: f64| Quantum::new(x).unwrap_or(quantum);
        let p2_or_log = (positive(low), low.max(q), positive(high.min(q)));
        Ok(ScalarDist {
            rand_type,
            low,
            high,
            q,
            int,
            quantum,
            p2_or_log,
            law: Law::new(rand_type, low, high, q),
        })
    }

    /// One draw: a multiple of `q` in `[low, high]`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let (low, high, q) = (self.low, self.high, &self.quantum);
        let law = &self.law;
        match self.rand_type {
            // As `uniform` and `log_uniform`, with the range's constants computed once.
            RandType::Uniform => {
                let f = low + law.span * rng.random::<f64>();
                q.times(floor(f / q.value).clamp(law.k_low, law.k_high))
            }
            RandType::LogUniform => {
                let f = (law.top - law.span * rng.random::<f64>()).exp();
                q.times(ceil(f / q.value).clamp(law.k_low, law.k_high))
            }
            RandType::Power2Uniform => power2_uniform(rng, low, high, q),
            RandType::Power2OrLogUniform => {
                // pycls: a power of two quantized to `low` (so, itself); kept if below q.
                let (low_q, log_low, log_q) = &self.p2_or_log;
                let p = power2_uniform(rng, low, high, low_q);
                if p >= self.q {
                    log_uniform(rng, *log_low, high, log_q)
                } else {
                    p
                }
            }
            RandType::Normal => normal(rng, low, high, q),
            RandType::LogNormal => log_normal(rng, low, high, q),
        }
    }

    /// Consumes from `rng` exactly what [`ScalarDist::sample`] would, computing no more
    /// than needed: rejection loops that already know they will redraw skip the `ln`,
    /// `exp` and quantization of the rest of an attempt, and stay on the same stream.
    pub fn skip<R: Rng + ?Sized>(&self, rng: &mut R) {
        match self.rand_type {
            // Both take one uniform f64 from the stream.
            RandType::Uniform | RandType::LogUniform => {
                rng.random::<f64>();
            }
            _ => {
                self.sample(rng);
            }
        }
    }

    /// A one-line description, e.g. `log_uniform [0.1, 1.0] q=0.001`.
    pub fn describe(&self) -> String {
        let n = |x: f64| fmt_num(x, self.int);
        format!(
            "{} [{}, {}] q={}",
            self.rand_type,
            n(self.low),
            n(self.high),
            n(self.q)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantum_products_are_decimal() {
        let q = Quantum::new(0.1).unwrap();
        assert_eq!(q.times(3.0), 0.3);
        assert_eq!(Quantum::new(1e-3).unwrap().times(2491.0), 2.491);
        assert_eq!(Quantum::new(1.0 / 128.0).unwrap().times(64.0), 0.5);
        assert_eq!(Quantum::new(8.0).unwrap().times(3.0), 24.0);
        assert_eq!(Quantum::new(1e-10).unwrap().times(12345.0), 1.2345e-6);
    }

    #[test]
    fn precomputed_draws_equal_the_free_functions() {
        use rand::SeedableRng;
        let laws = [
            (RandType::Uniform, 1.0, 16.0, 1.0),
            (RandType::Uniform, -3.0, 0.3, 0.1),
            (RandType::LogUniform, 8.0, 1024.0, 8.0),
            (RandType::LogUniform, 2.0, 3.0, 0.001),
            (RandType::LogUniform, 0.1, 256.0, 0.1),
        ];
        for (rt, low, high, q) in laws {
            let d = ScalarDist::new(rt, low, high, q, false).unwrap();
            let free = |rng: &mut rand_chacha::ChaCha8Rng| match rt {
                RandType::Uniform => uniform(rng, low, high, &d.quantum),
                _ => log_uniform(rng, low, high, &d.quantum),
            };
            let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(7);
            let mut b = a.clone();
            for _ in 0..20_000 {
                assert_eq!(d.sample(&mut a).to_bits(), free(&mut b).to_bits(), "{rt}");
            }
            d.skip(&mut a);
            free(&mut b);
            assert_eq!(
                d.sample(&mut a),
                free(&mut b),
                "skip consumes a draw of {rt}"
            );
        }
        for x in [
            -2.5,
            -2.0,
            -0.5,
            -0.0,
            0.0,
            0.3,
            1.0,
            2.7,
            1e300,
            -1e300,
            4.5e15 + 0.5,
        ] {
            assert_eq!((floor(x), ceil(x)), (x.floor(), x.ceil()), "{x}");
        }
    }

    #[test]
    fn divisibility_is_decimal() {
        let q = Quantum::new(0.1).unwrap();
        assert!(q.divides(0.3) && q.divides(256.0) && q.divides(0.0));
        assert!(!q.divides(0.35));
        let q = Quantum::new(8.0).unwrap();
        assert!(q.divides(256.0) && !q.divides(12.0));
        assert!(Quantum::new(1e-3).unwrap().divides(2.0));
    }
}

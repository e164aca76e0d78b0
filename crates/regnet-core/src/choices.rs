//! Typed values of the config keys that take one of a fixed set of names
//! (`OPTIM.OPTIMIZER`, `OPTIM.LR_POLICY`, `MODEL.LOSS_FUN`, `EXT.CHANNEL_ORDER`,
//! `EXT.ON_CORRUPT`).
//!
//! They are parsed once, when the config is loaded: a name outside the set is an error naming
//! the key and the names allowed (serde's "unknown variant `x`, expected one of ..."), so no
//! reader can fall back silently to a default. They serialise as the very strings pycls
//! writes, so `config.yaml` dumps stay byte-compatible with pycls's.

use serde::{Deserialize, Serialize};

/// Declares a closed set of names: a unit enum serialised as its snake_case name, with
/// `name()`, `ALL` and `Display`.
macro_rules! choice {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant,)+
        }
        impl $name {
            /// Every value, in the order the key's documentation lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name as written in configs.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }
        // By hand rather than derived: a value that is not a string (`1`) then reads
        // "expected a string" instead of serde_norway's "expected a Value::Tagged enum".
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(NameVisitor {
                    names: &[$($text),+],
                    values: $name::ALL,
                })
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

/// Reads one of `values` by its name in `names` (same order); anything else (another name,
/// a number) is an error that lists the names, as serde words it for unknown variants.
struct NameVisitor<T: 'static> {
    names: &'static [&'static str],
    values: &'static [T],
}

impl<T: Copy> serde::de::Visitor<'_> for NameVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.names {
            [one] => write!(f, "`{one}`"),
            [a, b] => write!(f, "`{a}` or `{b}`"),
            _ => write!(f, "one of `{}`", self.names.join("`, `")),
        }
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        let i = self.names.iter().position(|n| *n == text);
        i.map(|i| self.values[i])
            .ok_or_else(|| E::unknown_variant(text, self.names))
    }
}

choice!(
    /// `OPTIM.OPTIMIZER`: the optimizers pycls's `construct_optimizer` builds.
    Optimizer {
        /// `torch.optim.SGD` with momentum, dampening and Nesterov.
        Sgd = "sgd",
        /// `torch.optim.Adam`: weight decay added to the gradient (L2).
        Adam = "adam",
        /// `torch.optim.AdamW`: decoupled weight decay.
        AdamW = "adamw",
    }
);

choice!(
    /// `OPTIM.LR_POLICY`: pycls's learning-rate policies (`lr_fun_*`).
    LrPolicy {
        /// Cosine from `BASE_LR` to `BASE_LR * MIN_LR`.
        Cos = "cos",
        /// Exponential to `BASE_LR * MIN_LR`.
        Exp = "exp",
        /// Linear to `BASE_LR * MIN_LR`.
        Lin = "lin",
        /// Multiplied by `LR_MULT` at each of `STEPS`.
        Steps = "steps",
    }
);

choice!(
    /// `MODEL.LOSS_FUN`: the losses pycls registers (`_loss_funs`).
    LossFun {
        /// Soft-target cross-entropy (pycls's `SoftCrossEntropyLoss`).
        CrossEntropy = "cross_entropy",
    }
);

choice!(
    /// `EXT.CHANNEL_ORDER`: the channel order a model's stem expects.
    ChannelOrder {
        /// Red, green, blue (timm, torchvision, regnet's training).
        Rgb = "rgb",
        /// Blue, green, red (pycls's original ImageNet weights, read with OpenCV).
        Bgr = "bgr",
    }
);

choice!(
    /// `EXT.ON_CORRUPT`: what to do with an image that cannot be read.
    OnCorrupt {
        /// Stop with the file's path.
        Fail = "fail",
        /// Count, log and go on.
        Skip = "skip",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_yaml() {
        for &o in Optimizer::ALL {
            let text = serde_norway::to_string(&o).unwrap();
            assert_eq!(text.trim(), o.name());
            assert_eq!(serde_norway::from_str::<Optimizer>(&text).unwrap(), o);
        }
        assert_eq!(LossFun::CrossEntropy.to_string(), "cross_entropy");
        assert_eq!(Optimizer::AdamW.name(), "adamw");
    }

    #[test]
    fn unknown_names_list_the_allowed_ones() {
        let e = serde_norway::from_str::<LrPolicy>("cosine")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`cosine`") && e.contains("`cos`, `exp`, `lin`, `steps`"),
            "{e}"
        );
    }
}

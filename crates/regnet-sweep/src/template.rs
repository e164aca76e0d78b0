//! Command templates: how each sweep job is run.
//!
//! A template is a command line split into words as a POSIX shell would (`'...'`, `"..."`
//! and `\` quote; nothing is expanded), with placeholders in the words:
//!
//! | placeholder | value |
//! |---|---|
//! | `{cfg}` | the job's config file, `SWEEP/cfgs/000003.yaml` |
//! | `{out_dir}` | the job's output folder, `SWEEP/logs/000003` |
//! | `{index}` | the job's six-digit index, `000003` |
//! | `{sweep_dir}` | the sweep folder |
//! | `{name}` | the sweep name |
//!
//! `{{` and `}}` are literal braces. The default is `<regnet> train --quiet --cfg {cfg} OUT_DIR
//! {out_dir}`, the command `regnet train` takes, pycls style.

use crate::error::{Error, Result};

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &["cfg", "out_dir", "index", "sweep_dir", "name"];

/// One piece of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A placeholder name.
    Var(String),
}

/// A parsed command template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The template as given.
    pub source: String,
    /// Words, each a sequence of pieces.
    pub words: Vec<Vec<Piece>>,
}

/// Splits a command line into words as a POSIX shell does (quotes and backslashes only).
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => cur.push(x),
                    None => return Err("trailing backslash".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Quotes a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn pieces(word: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(x) => name.push(x),
                        None => return Err(format!("unclosed placeholder `{{{name}`")),
                    }
                }
                if !PLACEHOLDERS.contains(&name.as_str()) {
                    return Err(format!(
                        "unknown placeholder `{{{name}}}` (known: {})",
                        PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(Piece::Var(name));
            }
            '}' => return Err("unmatched `}` (write `}}` for a brace)".into()),
            c => text.push(c),
        }
    }
    if !text.is_empty() || out.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

impl Template {
    /// Parses a template; it must name the config (`{cfg}`).
    pub fn parse(source: &str) -> Result<Template> {
        let bad = |m: String| Error::other(format!("command template `{source}`: {m}"));
        let words = split_words(source)
            .map_err(bad)?
            .iter()
            .map(|w| pieces(w))
            .collect::<Result<Vec<_>, String>>()
            .map_err(bad)?;
        if words.is_empty() {
            return Err(bad("is empty".into()));
        }
        if !words
            .iter()
            .flatten()
            .any(|p| *p == Piece::Var("cfg".into()))
        {
            return Err(bad(
                "does not use {cfg}, so every job would run the same".into()
            ));
        }
        Ok(Template {
            source: source.to_string(),
            words,
        })
    }

    /// The default: `<regnet> train --quiet --cfg {cfg} OUT_DIR {out_dir}`. `--quiet`
    /// because `regnet train` writes `OUT_DIR/stdout.log` itself, the file the launcher
    /// appends the job's output to: its log lines must not land there twice.
    pub fn default_for(regnet: &str) -> Template {
        Template::parse(&format!(
            "{} train --quiet --cfg {{cfg}} OUT_DIR {{out_dir}}",
            shell_quote(&regnet.replace('{', "{{").replace('}', "}}"))
        ))
        .expect("the default template is valid")
    }

    /// The argv for one job, `var` giving each placeholder's value.
    pub fn argv(&self, var: impl Fn(&str) -> String) -> Vec<String> {
        self.words
            .iter()
            .map(|w| {
                w.iter()
                    .map(|p| match p {
                        Piece::Text(t) => t.clone(),
                        Piece::Var(v) => var(v),
                    })
                    .collect()
            })
            .collect()
    }

    /// The command as shell text, each placeholder replaced by `"$<var(name)>"` (for
    /// scripts, where the values are shell variables).
    pub fn shell(&self, var: impl Fn(&str) -> String) -> String {
        self.words
            .iter()
            .map(|w| {
                w.iter()
                    .map(|p| match p {
                        Piece::Text(t) => shell_quote(t),
                        Piece::Var(v) => format!("\"${{{}}}\"", var(v)),
                    })
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"a 'b c' "d \"e\"" f\ g"#).unwrap(),
            vec!["a", "b c", "d \"e\"", "f g"]
        );
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert!(split_words("'open").is_err());
    }

    #[test]
    fn placeholders() {
        let t = Template::parse("run --cfg={cfg} {out_dir}/x {{lit}}").unwrap();
        let argv = t.argv(|v| format!("<{v}>"));
        assert_eq!(argv, vec!["run", "--cfg=<cfg>", "<out_dir>/x", "{lit}"]);
        assert_eq!(
            t.shell(|v| v.to_uppercase()),
            r#"run --cfg="${CFG}" "${OUT_DIR}"/x '{lit}'"#
        );
        let e = Template::parse("run {cgf}").unwrap_err().to_string();
        assert!(e.contains("unknown placeholder `{cgf}`"), "{e}");
        assert!(Template::parse("run {out_dir}").is_err());
        let d = Template::default_for("/opt/my regnet/regnet");
        assert_eq!(
            d.argv(|v| v.to_string()),
            vec![
                "/opt/my regnet/regnet",
                "train",
                "--quiet",
                "--cfg",
                "cfg",
                "OUT_DIR",
                "out_dir"
            ]
        );
    }
}

//! A minimal, safe reader for the pickles CIFAR-10 ships (`data_batch_*`, `test_batch`,
//! `batches.meta`): a dict of byte strings, lists of ints and numpy `uint8` arrays.
//!
//! Pickle is a small stack machine whose programs may call any Python function. This reader
//! runs the stack machine but never calls anything: `GLOBAL` pushes a name, `REDUCE` and
//! `BUILD` push a node that records the call, and the CIFAR code then recognises the two
//! shapes numpy gives an array (`_reconstruct` + `BUILD` state, or `_frombuffer`). Only the
//! globals those shapes use are accepted at all, so a pickle that names anything else (say
//! `os.system`) is refused before it is even looked at.
//!
//! Opcodes of protocols 2 to 5 (and the few text ones Python 2 wrote into protocol-2 files)
//! are read; objects live in an arena so that the memo and in-place opcodes (`APPENDS`,
//! `SETITEMS`, `BUILD`) act on shared objects the way Python's do.

use std::borrow::Cow;
use std::collections::HashMap;

/// Index of an object in [`Pickle::arena`].
pub(crate) type Id = usize;

/// A pickled object, with calls left as records.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Python 3 `bytes`, Python 2 `str`.
    Bytes(Vec<u8>),
    /// Python 3 `str`, Python 2 `unicode`.
    Str(String),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// A reference to `module.name`, never resolved.
    Global {
        module: String,
        name: String,
    },
    /// The call `func(*args)`, never made.
    Reduce {
        func: Id,
        args: Id,
    },
    /// `obj.__setstate__(state)`, never made.
    Build {
        obj: Id,
        state: Id,
    },
}

/// The globals that numpy arrays and Python 3's protocol-2 `bytes` refer to; any other is
/// refused.
const ALLOWED_GLOBALS: &[(&str, &str)] = &[
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("__builtin__", "bytes"),
    ("builtins", "bytes"),
];

/// A decoded pickle: every object it built, and the one it returned.
#[derive(Debug)]
pub(crate) struct Pickle {
    arena: Vec<Value>,
    root: Id,
}

enum Item {
    Mark,
    Obj(Id),
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() - self.pos < n {
            return Err(format!(
                "truncated pickle: {n} bytes needed at offset {}, {} left",
                self.pos,
                self.bytes.len() - self.pos
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A length that must fit in what is left of the input (so a corrupt length never
    /// triggers a huge allocation).
    fn len(&mut self, n: u64) -> Result<usize, String> {
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left {
            return Err(format!(
                "truncated pickle: a {n}-byte string at offset {}, {left} bytes left",
                self.pos
            ));
        }
        Ok(n as usize)
    }

    /// A newline-terminated text argument (Python 2's text opcodes).
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.bytes[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("truncated pickle: unterminated line at offset {}", self.pos))?;
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).map_err(|_| "non-UTF-8 text argument".to_string())
    }
}

impl Pickle {
    /// Runs the pickle program in `bytes` without calling anything; the error is a message
    /// (the caller adds the file name).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Pickle, String> {
        let mut arena: Vec<Value> = Vec::new();
        let mut stack: Vec<Item> = Vec::new();
        let mut memo: HashMap<u64, Id> = HashMap::new();
        let mut r = Reader { bytes, pos: 0 };

        fn push(arena: &mut Vec<Value>, stack: &mut Vec<Item>, v: Value) {
            arena.push(v);
            stack.push(Item::Obj(arena.len() - 1));
        }
        fn pop(stack: &mut Vec<Item>, at: usize) -> Result<Id, String> {
            match stack.pop() {
                Some(Item::Obj(id)) => Ok(id),
                Some(Item::Mark) => Err(format!("unexpected mark on the stack at offset {at}")),
                None => Err(format!("stack underflow at offset {at}")),
            }
        }
        fn top(stack: &[Item], at: usize) -> Result<Id, String> {
            match stack.last() {
                Some(Item::Obj(id)) => Ok(*id),
                _ => Err(format!("no object on the stack at offset {at}")),
            }
        }
        /// Pops everything down to the last mark (and the mark).
        fn pop_mark(stack: &mut Vec<Item>, at: usize) -> Result<Vec<Id>, String> {
            let m = stack
                .iter()
                .rposition(|i| matches!(i, Item::Mark))
                .ok_or_else(|| format!("no mark on the stack at offset {at}"))?;
            let items = stack
                .drain(m..)
                .skip(1)
                .map(|i| match i {
                    Item::Obj(id) => id,
                    Item::Mark => unreachable!("the last mark was at {m}"),
                })
                .collect();
            Ok(items)
        }
        fn pairs(items: Vec<Id>, at: usize) -> Result<Vec<(Id, Id)>, String> {
            if !items.len().is_multiple_of(2) {
                return Err(format!("odd number of dict items at offset {at}"));
            }
            Ok(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
        }
        fn global(module: &str, name: &str) -> Result<Value, String> {
            if ALLOWED_GLOBALS.contains(&(module, name)) {
                Ok(Value::Global {
                    module: module.to_string(),
                    name: name.to_string(),
                })
            } else {
                Err(format!(
                    "refusing pickle global {module}.{name}: only numpy uint8 arrays, lists, \
                     ints and strings are read"
                ))
            }
        }
        fn utf8(b: &[u8]) -> Result<String, String> {
            String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in a pickled str".into())
        }

        loop {
            let at = r.pos;
            let op = r
                .u8()
                .map_err(|_| "truncated pickle: no STOP opcode".to_string())?;
            match op {
                0x80 => {
                    let proto = r.u8()?;
                    if proto > 5 {
                        return Err(format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    r.u64()?; // FRAME: a length hint only
                }
                b'.' => {
                    let root = pop(&mut stack, at)?;
                    return Ok(Pickle { arena, root });
                }
                b'(' => stack.push(Item::Mark),
                b'}' => push(&mut arena, &mut stack, Value::Dict(Vec::new())),
                b']' => push(&mut arena, &mut stack, Value::List(Vec::new())),
                b')' => push(&mut arena, &mut stack, Value::Tuple(Vec::new())),
                b'd' => {
                    let items = pairs(pop_mark(&mut stack, at)?, at)?;
                    push(&mut arena, &mut stack, Value::Dict(items));
                }
                b'l' => {
                    let items = pop_mark(&mut stack, at)?;
                    push(&mut arena, &mut stack, Value::List(items));
                }
                b't' => {
                    let items = pop_mark(&mut stack, at)?;
                    push(&mut arena, &mut stack, Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(pop(&mut stack, at)?);
                    }
                    items.reverse();
                    push(&mut arena, &mut stack, Value::Tuple(items));
                }
                b'a' | b'e' => {
                    let items = if op == b'a' {
                        vec![pop(&mut stack, at)?]
                    } else {
                        pop_mark(&mut stack, at)?
                    };
                    let list = top(&stack, at)?;
                    match &mut arena[list] {
                        Value::List(v) => v.extend(items),
                        _ => return Err(format!("APPEND to a non-list at offset {at}")),
                    }
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let v = pop(&mut stack, at)?;
                        let k = pop(&mut stack, at)?;
                        vec![(k, v)]
                    } else {
                        pairs(pop_mark(&mut stack, at)?, at)?
                    };
                    let dict = top(&stack, at)?;
                    match &mut arena[dict] {
                        Value::Dict(v) => v.extend(items),
                        _ => return Err(format!("SETITEM on a non-dict at offset {at}")),
                    }
                }
                b'q' | b'r' | 0x94 | b'p' => {
                    let key = match op {
                        b'q' => u64::from(r.u8()?),
                        b'r' => u64::from(r.u32()?),
                        b'p' => r.line()?.parse().map_err(|_| "bad PUT index".to_string())?,
                        _ => memo.len() as u64,
                    };
                    memo.insert(key, top(&stack, at)?);
                }
                b'h' | b'j' | b'g' => {
                    let key = match op {
                        b'h' => u64::from(r.u8()?),
                        b'j' => u64::from(r.u32()?),
                        _ => r.line()?.parse().map_err(|_| "bad GET index".to_string())?,
                    };
                    let id = *memo
                        .get(&key)
                        .ok_or_else(|| format!("memo key {key} not found at offset {at}"))?;
                    stack.push(Item::Obj(id));
                }
                b'J' => {
                    let v = r.u32()? as i32;
                    push(&mut arena, &mut stack, Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = r.u8()?;
                    push(&mut arena, &mut stack, Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = r.u16()?;
                    push(&mut arena, &mut stack, Value::Int(i64::from(v)));
                }
                0x8a => {
                    let n = usize::from(r.u8()?);
                    if n > 8 {
                        return Err(format!("integer of {n} bytes at offset {at}"));
                    }
                    let b = r.take(n)?;
                    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xff; 8]
                    } else {
                        [0; 8]
                    };
                    buf[..n].copy_from_slice(b);
                    push(&mut arena, &mut stack, Value::Int(i64::from_le_bytes(buf)));
                }
                b'I' | b'L' => {
                    let text = r.line()?;
                    let v = match text {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        t => Value::Int(
                            t.trim_end_matches('L')
                                .parse()
                                .map_err(|_| format!("bad integer {t:?} at offset {at}"))?,
                        ),
                    };
                    push(&mut arena, &mut stack, v);
                }
                b'N' => push(&mut arena, &mut stack, Value::None),
                0x88 => push(&mut arena, &mut stack, Value::Bool(true)),
                0x89 => push(&mut arena, &mut stack, Value::Bool(false)),
                b'G' => {
                    let b = r.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    push(&mut arena, &mut stack, Value::Float(v));
                }
                b'U' | b'C' => {
                    let n = r.u8()?;
                    let n = r.len(u64::from(n))?;
                    let b = r.take(n)?.to_vec();
                    push(&mut arena, &mut stack, Value::Bytes(b));
                }
                b'T' | b'B' => {
                    let n = r.u32()?;
                    if op == b'T' && n > i32::MAX as u32 {
                        return Err(format!("negative string length at offset {at}"));
                    }
                    let n = r.len(u64::from(n))?;
                    let b = r.take(n)?.to_vec();
                    push(&mut arena, &mut stack, Value::Bytes(b));
                }
                0x8e | 0x96 => {
                    let n = r.u64()?;
                    let n = r.len(n)?;
                    let b = r.take(n)?.to_vec();
                    push(&mut arena, &mut stack, Value::Bytes(b));
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => u64::from(r.u32()?),
                        0x8c => u64::from(r.u8()?),
                        _ => r.u64()?,
                    };
                    let n = r.len(n)?;
                    let s = utf8(r.take(n)?)?;
                    push(&mut arena, &mut stack, Value::Str(s));
                }
                b'c' => {
                    let module = r.line()?;
                    let name = r.line()?;
                    let g = global(module, name)?;
                    push(&mut arena, &mut stack, g);
                }
                0x93 => {
                    let name = pop(&mut stack, at)?;
                    let module = pop(&mut stack, at)?;
                    let (Value::Str(m), Value::Str(n)) = (&arena[module], &arena[name]) else {
                        return Err(format!("STACK_GLOBAL without two strings at offset {at}"));
                    };
                    let g = global(m, n)?;
                    push(&mut arena, &mut stack, g);
                }
                b'R' | 0x81 => {
                    let args = pop(&mut stack, at)?;
                    let func = pop(&mut stack, at)?;
                    push(&mut arena, &mut stack, Value::Reduce { func, args });
                }
                b'b' => {
                    // BUILD changes the object in place: anything that refers to it (the memo)
                    // must see the built object, so the old value moves to a new slot and
                    // the object's own slot becomes the Build record.
                    let state = pop(&mut stack, at)?;
                    let obj = top(&stack, at)?;
                    let old = std::mem::replace(&mut arena[obj], Value::None);
                    arena.push(old);
                    let inner = arena.len() - 1;
                    arena[obj] = Value::Build { obj: inner, state };
                }
                b'0' => {
                    stack
                        .pop()
                        .ok_or_else(|| format!("stack underflow at offset {at}"))?;
                }
                b'1' => {
                    pop_mark(&mut stack, at)?;
                }
                b'2' => {
                    let id = top(&stack, at)?;
                    stack.push(Item::Obj(id));
                }
                other => {
                    return Err(format!(
                        "unsupported pickle opcode 0x{other:02x} at offset {at}"
                    ));
                }
            }
        }
    }

    /// The object the pickle returned.
    pub(crate) fn root(&self) -> Id {
        self.root
    }

    /// The object `id`.
    pub(crate) fn get(&self, id: Id) -> &Value {
        &self.arena[id]
    }

    /// The value of `key` in dict `dict`; keys may be `bytes` (Python 2 `str`) or `str`.
    pub(crate) fn dict_get(&self, dict: Id, key: &str) -> Option<Id> {
        let Value::Dict(items) = self.get(dict) else {
            return None;
        };
        items
            .iter()
            .find(|&&(k, _)| self.text(k).is_some_and(|t| *t == *key.as_bytes()))
            .map(|&(_, v)| v)
    }

    /// A `bytes` or `str` object as bytes (`str` as UTF-8). Python 3's protocol 2 writes
    /// even short `bytes` (dict keys included) as `_codecs.encode` calls, read here too.
    pub(crate) fn text(&self, id: Id) -> Option<Cow<'_, [u8]>> {
        match self.get(id) {
            Value::Str(s) => Some(Cow::Borrowed(s.as_bytes())),
            _ => self.bytes(id).ok(),
        }
    }

    /// A list (or tuple) of ints.
    pub(crate) fn int_list(&self, id: Id) -> Result<Vec<i64>, String> {
        let (Value::List(items) | Value::Tuple(items)) = self.get(id) else {
            return Err("expected a list of ints".into());
        };
        items
            .iter()
            .map(|&i| match self.get(i) {
                Value::Int(v) => Ok(*v),
                Value::Bool(b) => Ok(i64::from(*b)),
                other => Err(format!("expected an int in the list, found {other:?}")),
            })
            .collect()
    }

    /// A list of `bytes` or `str`, as strings.
    pub(crate) fn string_list(&self, id: Id) -> Result<Vec<String>, String> {
        let Value::List(items) = self.get(id) else {
            return Err("expected a list of strings".into());
        };
        items
            .iter()
            .map(|&i| {
                self.text(i)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .ok_or_else(|| "expected a string in the list".to_string())
            })
            .collect()
    }

    fn is_global(&self, id: Id, modules: &[&str], name: &str) -> bool {
        matches!(self.get(id), Value::Global { module, name: n }
            if modules.contains(&module.as_str()) && n == name)
    }

    fn tuple(&self, id: Id) -> Option<&[Id]> {
        match self.get(id) {
            Value::Tuple(t) => Some(t),
            _ => None,
        }
    }

    /// The bytes of a `bytes` object, including Python 3's protocol-2 spelling
    /// `_codecs.encode(<latin-1 str>, 'latin1')` and `bytes()` for the empty one.
    fn bytes(&self, id: Id) -> Result<Cow<'_, [u8]>, String> {
        match self.get(id) {
            Value::Bytes(b) => Ok(Cow::Borrowed(b)),
            Value::Reduce { func, args } if self.is_global(*func, &["_codecs"], "encode") => {
                let args = self.tuple(*args).unwrap_or_default();
                let (Some(Value::Str(s)), Some(Value::Str(enc))) = (
                    args.first().map(|&a| self.get(a)),
                    args.get(1).map(|&a| self.get(a)),
                ) else {
                    return Err("malformed _codecs.encode call".into());
                };
                if enc != "latin1" && enc != "latin-1" {
                    return Err("_codecs.encode with an encoding other than latin1".into());
                }
                s.chars()
                    .map(|c| u8::try_from(u32::from(c)).map_err(|_| "non-latin1 char".into()))
                    .collect::<Result<Vec<u8>, String>>()
                    .map(Cow::Owned)
            }
            Value::Reduce { func, .. }
                if self.is_global(*func, &["__builtin__", "builtins"], "bytes") =>
            {
                Ok(Cow::Owned(Vec::new()))
            }
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }

    /// The type string of a numpy dtype object (`"u1"` for uint8).
    fn dtype(&self, id: Id) -> Result<String, String> {
        let id = match self.get(id) {
            Value::Build { obj, .. } => *obj,
            _ => id,
        };
        if let Value::Reduce { func, args } = self.get(id)
            && self.is_global(*func, &["numpy"], "dtype")
            && let Some(&first) = self.tuple(*args).and_then(|t| t.first())
            && let Some(t) = self.text(first)
        {
            return Ok(String::from_utf8_lossy(&t).into_owned());
        }
        Err("expected a numpy dtype".into())
    }

    /// A C-ordered numpy `uint8` array: its shape and its bytes.
    pub(crate) fn u8_array(&self, id: Id) -> Result<(Vec<usize>, Cow<'_, [u8]>), String> {
        const MULTIARRAY: &[&str] = &["numpy.core.multiarray", "numpy._core.multiarray"];
        const NUMERIC: &[&str] = &["numpy.core.numeric", "numpy._core.numeric"];
        let shape_of = |id: Id| -> Result<Vec<usize>, String> {
            self.int_list(id)?
                .into_iter()
                .map(|d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
                .collect()
        };
        let check_dtype = |id: Id| -> Result<(), String> {
            let t = self.dtype(id)?;
            if t == "u1" || t == "|u1" || t == "uint8" {
                Ok(())
            } else {
                Err(format!("expected a uint8 array, found dtype '{t}'"))
            }
        };
        let (shape, data) = match self.get(id) {
            // ndarray.__reduce__: _reconstruct(ndarray, (0,), b'b') then
            // __setstate__((version, shape, dtype, is_fortran, raw)) (no version before numpy 1.?)
            Value::Build { obj, state } => {
                let Value::Reduce { func, .. } = self.get(*obj) else {
                    return Err("expected a numpy array".into());
                };
                if !self.is_global(*func, MULTIARRAY, "_reconstruct") {
                    return Err("expected a numpy array".into());
                }
                let st = self.tuple(*state).ok_or("bad numpy array state")?;
                let st = match st.len() {
                    5 => &st[1..],
                    4 => st,
                    n => return Err(format!("numpy array state of {n} items")),
                };
                check_dtype(st[1])?;
                if matches!(self.get(st[2]), Value::Bool(true) | Value::Int(1)) {
                    return Err("Fortran-ordered array".into());
                }
                (shape_of(st[0])?, self.bytes(st[3])?)
            }
            // Protocol 5: _frombuffer(buffer, dtype, shape, order)
            Value::Reduce { func, args } if self.is_global(*func, NUMERIC, "_frombuffer") => {
                let a = self.tuple(*args).ok_or("bad _frombuffer arguments")?;
                if a.len() != 4 {
                    return Err("bad _frombuffer arguments".into());
                }
                check_dtype(a[1])?;
                if self.text(a[3]).as_deref() != Some(&b"C"[..]) {
                    return Err("array not in C order".into());
                }
                (shape_of(a[2])?, self.bytes(a[0])?)
            }
            _ => return Err("expected a numpy array".into()),
        };
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or("array shape overflows")?;
        if n != data.len() {
            return Err(format!(
                "array of shape {shape:?} with {} bytes of data (truncated?)",
                data.len()
            ));
        }
        Ok((shape, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_protocol_2_dict_with_memo_and_appends() {
        // {b'a': [1, 300, -2], 'b': b'xy'}, with the list memoized and appended after.
        let mut p = vec![
            0x80, 2, b'}', b'q', 0, b'(', b'U', 1, b'a', b']', b'q', 1, b'(',
        ];
        p.extend_from_slice(&[
            b'K', 1, b'M', 0x2c, 0x01, b'J', 0xfe, 0xff, 0xff, 0xff, b'e',
        ]);
        p.extend_from_slice(&[0x8c, 1, b'b', b'C', 2, b'x', b'y', b'u', b'.']);
        let pk = Pickle::parse(&p).unwrap();
        let list = pk.dict_get(pk.root(), "a").unwrap();
        assert_eq!(pk.int_list(list).unwrap(), vec![1, 300, -2]);
        let b = pk.dict_get(pk.root(), "b").unwrap();
        assert_eq!(pk.text(b).as_deref(), Some(&b"xy"[..]));
        assert!(pk.dict_get(pk.root(), "c").is_none());
    }

    #[test]
    fn refuses_unknown_globals_and_truncation() {
        let e = Pickle::parse(b"\x80\x02cos\nsystem\nq\x00.").unwrap_err();
        assert!(e.contains("refusing pickle global os.system"), "{e}");
        let e = Pickle::parse(b"\x80\x02U\x05ab").unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let e = Pickle::parse(b"\x80\x02]").unwrap_err();
        assert!(e.contains("no STOP"), "{e}");
        let e = Pickle::parse(b"\x80\x02\xff").unwrap_err();
        assert!(e.contains("opcode 0xff"), "{e}");
    }

    #[test]
    fn long1_is_twos_complement() {
        let pk = Pickle::parse(b"\x8a\x02\x00\xff.").unwrap();
        assert_eq!(pk.get(pk.root()), &Value::Int(-256));
    }
}

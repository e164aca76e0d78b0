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

impl Value {
    /// What kind of object this is, for messages (never its contents, which may be huge).
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Bytes(_) => "bytes",
            Value::Str(_) => "a str",
            Value::List(_) => "a list",
            Value::Tuple(_) => "a tuple",
            Value::Dict(_) => "a dict",
            Value::Global { .. } => "a global",
            Value::Reduce { .. } => "a call",
            Value::Build { .. } => "a built object",
        }
    }
}

/// The most dimensions of a numpy array (numpy's own limit), checked before a shape is shown
/// in a message.
const MAX_ARRAY_DIMS: usize = 64;

/// The most bytes a list of strings may hold in all (class names: CIFAR-10's are 60 bytes).
pub(crate) const MAX_STRING_LIST_BYTES: usize = 1 << 20;

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

/// The most objects, stack entries or memo entries one pickle may create. A CIFAR batch
/// makes about 20 000 (10 000 labels, 10 000 file names; CIFAR-100's 50 000-image batch
/// 150 000), so 2^21 leaves a wide margin while keeping the reader's own memory under about
/// 200 MB whatever the input: every opcode is a byte or more, so without this limit a large
/// file of one-byte `DUP`s or `MEMOIZE`s would cost tens of bytes of memory per byte read.
pub(crate) const MAX_OBJECTS: usize = 1 << 21;

/// The pickle stack machine, run without calling anything.
struct Machine<'a> {
    r: Reader<'a>,
    arena: Vec<Value>,
    stack: Vec<Item>,
    memo: HashMap<u64, Id>,
    /// Offset of the opcode being run, for messages.
    at: usize,
}

fn too_many(what: &str, at: usize) -> String {
    format!("pickle has more than {MAX_OBJECTS} {what} at offset {at} (the reader's limit)")
}

fn global(module: &str, name: &str) -> Result<Value, String> {
    if ALLOWED_GLOBALS.contains(&(module, name)) {
        Ok(Value::Global {
            module: module.to_string(),
            name: name.to_string(),
        })
    } else {
        Err(format!(
            "refusing pickle global {}.{}: only numpy uint8 arrays, lists, ints and strings \
             are read",
            module.escape_debug(),
            name.escape_debug()
        ))
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in a pickled str".into())
}

impl<'a> Machine<'a> {
    /// Adds `v` to the arena; its id.
    fn alloc(&mut self, v: Value) -> Result<Id, String> {
        if self.arena.len() >= MAX_OBJECTS {
            return Err(too_many("objects", self.at));
        }
        self.arena.push(v);
        Ok(self.arena.len() - 1)
    }

    fn push_item(&mut self, item: Item) -> Result<(), String> {
        if self.stack.len() >= MAX_OBJECTS {
            return Err(too_many("stack entries", self.at));
        }
        self.stack.push(item);
        Ok(())
    }

    /// Adds `v` to the arena and pushes it.
    fn push(&mut self, v: Value) -> Result<(), String> {
        let id = self.alloc(v)?;
        self.push_item(Item::Obj(id))
    }

    fn pop(&mut self) -> Result<Id, String> {
        match self.stack.pop() {
            Some(Item::Obj(id)) => Ok(id),
            Some(Item::Mark) => Err(format!(
                "unexpected mark on the stack at offset {}",
                self.at
            )),
            None => Err(format!("stack underflow at offset {}", self.at)),
        }
    }

    fn top(&self) -> Result<Id, String> {
        match self.stack.last() {
            Some(Item::Obj(id)) => Ok(*id),
            _ => Err(format!("no object on the stack at offset {}", self.at)),
        }
    }

    /// Pops everything down to the last mark (and the mark).
    fn pop_mark(&mut self) -> Result<Vec<Id>, String> {
        let m = self
            .stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| format!("no mark on the stack at offset {}", self.at))?;
        let items = self
            .stack
            .drain(m..)
            .skip(1)
            .map(|i| match i {
                Item::Obj(id) => id,
                Item::Mark => unreachable!("the last mark was at {m}"),
            })
            .collect();
        Ok(items)
    }

    fn pairs(&self, items: Vec<Id>) -> Result<Vec<(Id, Id)>, String> {
        if !items.len().is_multiple_of(2) {
            return Err(format!("odd number of dict items at offset {}", self.at));
        }
        Ok(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
    }

    /// Runs opcodes up to `STOP`; the object it returns is the root.
    fn run(mut self) -> Result<Pickle, String> {
        loop {
            self.at = self.r.pos;
            let op = self
                .r
                .u8()
                .map_err(|_| "truncated pickle: no STOP opcode".to_string())?;
            match op {
                b'.' => {
                    let root = self.pop()?;
                    return Ok(Pickle {
                        arena: self.arena,
                        root,
                    });
                }
                0x80 => {
                    let proto = self.r.u8()?;
                    if proto > 5 {
                        return Err(format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.r.u64()?; // FRAME: a length hint only
                }
                b'(' => self.push_item(Item::Mark)?,
                b'}' | b']' | b')' | b'd' | b'l' | b't' | 0x85..=0x87 => self.build(op)?,
                b'a' | b'e' | b's' | b'u' => self.extend(op)?,
                b'q' | b'r' | 0x94 | b'p' | b'h' | b'j' | b'g' => self.memo_op(op)?,
                b'J' | b'K' | b'M' | 0x8a | b'I' | b'L' | b'N' | 0x88 | 0x89 | b'G' => {
                    self.scalar(op)?
                }
                b'U' | b'C' | b'T' | b'B' | 0x8e | 0x96 | b'X' | 0x8c | 0x8d => self.string(op)?,
                b'c' | 0x93 | b'R' | 0x81 | b'b' => self.call(op)?,
                b'0' | b'1' | b'2' => self.stack_op(op)?,
                other => {
                    return Err(format!(
                        "unsupported pickle opcode 0x{other:02x} at offset {}",
                        self.at
                    ));
                }
            }
        }
    }

    /// New containers: empty ones, and lists, tuples and dicts of the items on the stack.
    fn build(&mut self, op: u8) -> Result<(), String> {
        let v = match op {
            b'}' => Value::Dict(Vec::new()),
            b']' => Value::List(Vec::new()),
            b')' => Value::Tuple(Vec::new()),
            b'd' => {
                let items = self.pop_mark()?;
                Value::Dict(self.pairs(items)?)
            }
            b'l' => Value::List(self.pop_mark()?),
            b't' => Value::Tuple(self.pop_mark()?),
            _ => {
                // TUPLE1..TUPLE3
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                Value::Tuple(items)
            }
        };
        self.push(v)
    }

    /// `APPEND(S)` and `SETITEM(S)`: items added in place to the list or dict on the stack.
    fn extend(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'a' | b'e' => {
                let items = if op == b'a' {
                    vec![self.pop()?]
                } else {
                    self.pop_mark()?
                };
                let list = self.top()?;
                match &mut self.arena[list] {
                    Value::List(v) => v.extend(items),
                    _ => return Err(format!("APPEND to a non-list at offset {}", self.at)),
                }
            }
            _ => {
                let items = if op == b's' {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    vec![(k, v)]
                } else {
                    let items = self.pop_mark()?;
                    self.pairs(items)?
                };
                let dict = self.top()?;
                match &mut self.arena[dict] {
                    Value::Dict(v) => v.extend(items),
                    _ => return Err(format!("SETITEM on a non-dict at offset {}", self.at)),
                }
            }
        }
        Ok(())
    }

    /// `PUT`s (`MEMOIZE`) and `GET`s.
    fn memo_op(&mut self, op: u8) -> Result<(), String> {
        let key = match op {
            b'q' | b'h' => u64::from(self.r.u8()?),
            b'r' | b'j' => u64::from(self.r.u32()?),
            b'p' | b'g' => self
                .r
                .line()?
                .parse()
                .map_err(|_| format!("bad memo index at offset {}", self.at))?,
            _ => self.memo.len() as u64,
        };
        if matches!(op, b'h' | b'j' | b'g') {
            let id = *self
                .memo
                .get(&key)
                .ok_or_else(|| format!("memo key {key} not found at offset {}", self.at))?;
            return self.push_item(Item::Obj(id));
        }
        if self.memo.len() >= MAX_OBJECTS && !self.memo.contains_key(&key) {
            return Err(too_many("memo entries", self.at));
        }
        let top = self.top()?;
        self.memo.insert(key, top);
        Ok(())
    }

    /// Ints, floats, booleans and `None`.
    fn scalar(&mut self, op: u8) -> Result<(), String> {
        let v =
            match op {
                b'J' => Value::Int(i64::from(self.r.u32()? as i32)),
                b'K' => Value::Int(i64::from(self.r.u8()?)),
                b'M' => Value::Int(i64::from(self.r.u16()?)),
                0x8a => {
                    let n = usize::from(self.r.u8()?);
                    if n > 8 {
                        return Err(format!("integer of {n} bytes at offset {}", self.at));
                    }
                    let b = self.r.take(n)?;
                    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xff; 8]
                    } else {
                        [0; 8]
                    };
                    buf[..n].copy_from_slice(b);
                    Value::Int(i64::from_le_bytes(buf))
                }
                b'I' | b'L' => match self.r.line()? {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    t => Value::Int(t.trim_end_matches('L').parse().map_err(|_| {
                        format!("bad integer {:?} at offset {}", truncate(t), self.at)
                    })?),
                },
                b'N' => Value::None,
                0x88 => Value::Bool(true),
                0x89 => Value::Bool(false),
                _ => {
                    let b = self.r.take(8)?;
                    Value::Float(f64::from_be_bytes(b.try_into().expect("8 bytes")))
                }
            };
        self.push(v)
    }

    /// Byte strings and text strings; every length is checked against what is left of the
    /// input before anything is copied.
    fn string(&mut self, op: u8) -> Result<(), String> {
        let n = match op {
            b'U' | b'C' | 0x8c => u64::from(self.r.u8()?),
            b'T' | b'B' | b'X' => {
                let n = self.r.u32()?;
                if op == b'T' && n > i32::MAX as u32 {
                    return Err(format!("negative string length at offset {}", self.at));
                }
                u64::from(n)
            }
            _ => self.r.u64()?,
        };
        let n = self.r.len(n)?;
        let b = self.r.take(n)?;
        let v = if matches!(op, b'X' | 0x8c | 0x8d) {
            Value::Str(utf8(b)?)
        } else {
            Value::Bytes(b.to_vec())
        };
        self.push(v)
    }

    /// Globals (only the allowed ones) and calls, which are recorded, never made.
    fn call(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'c' => {
                let module = self.r.line()?;
                let name = self.r.line()?;
                let g = global(module, name)?;
                self.push(g)
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Value::Str(m), Value::Str(n)) = (&self.arena[module], &self.arena[name])
                else {
                    return Err(format!(
                        "STACK_GLOBAL without two strings at offset {}",
                        self.at
                    ));
                };
                let g = global(m, n)?;
                self.push(g)
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let func = self.pop()?;
                self.push(Value::Reduce { func, args })
            }
            _ => {
                // BUILD changes the object in place: anything that refers to it (the memo)
                // must see the built object, so the old value moves to a new slot and the
                // object's own slot becomes the Build record.
                let state = self.pop()?;
                let obj = self.top()?;
                let inner = self.alloc(Value::None)?;
                self.arena.swap(obj, inner);
                self.arena[obj] = Value::Build { obj: inner, state };
                Ok(())
            }
        }
    }

    /// `POP`, `POP_MARK` and `DUP`.
    fn stack_op(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'0' => {
                self.stack
                    .pop()
                    .ok_or_else(|| format!("stack underflow at offset {}", self.at))?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            _ => {
                let id = self.top()?;
                self.push_item(Item::Obj(id))?;
            }
        }
        Ok(())
    }
}

/// At most the first 40 characters of `text`, for messages.
fn truncate(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

impl Pickle {
    /// Runs the pickle program in `bytes` without calling anything; the error is a message
    /// (the caller adds the file name).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Pickle, String> {
        Machine {
            r: Reader { bytes, pos: 0 },
            arena: Vec::new(),
            stack: Vec::new(),
            memo: HashMap::new(),
            at: 0,
        }
        .run()
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
            .find(|&&(k, _)| self.text_eq(k, key.as_bytes()))
            .map(|&(_, v)| v)
    }

    /// Whether object `id` is the text `key`, compared without copying it: a dict may hold
    /// many keys that are the same long string (through the memo), and converting each of
    /// them would take time proportional to their total length.
    fn text_eq(&self, id: Id, key: &[u8]) -> bool {
        match self.get(id) {
            Value::Str(s) => s.as_bytes() == key,
            Value::Bytes(b) => b[..] == *key,
            Value::Reduce { .. } => match self.latin1_str(id) {
                Some(s) => {
                    let mut chars = s.chars();
                    key.iter().all(|&k| chars.next() == Some(char::from(k)))
                        && chars.next().is_none()
                }
                None => self.bytes(id).is_ok_and(|b| b.is_empty() && key.is_empty()),
            },
            _ => false,
        }
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
            return Err(format!(
                "expected a list of ints, found {}",
                self.get(id).kind()
            ));
        };
        items
            .iter()
            .map(|&i| match self.get(i) {
                Value::Int(v) => Ok(*v),
                Value::Bool(b) => Ok(i64::from(*b)),
                other => Err(format!(
                    "expected an int in the list, found {}",
                    other.kind()
                )),
            })
            .collect()
    }

    /// A list of at most `max_items` `bytes` or `str` of at most [`MAX_STRING_LIST_BYTES`]
    /// in all, as strings. (The memo lets a small pickle list one long string many times:
    /// the limits are checked before anything is copied.)
    pub(crate) fn string_list(&self, id: Id, max_items: usize) -> Result<Vec<String>, String> {
        let Value::List(items) = self.get(id) else {
            return Err(format!(
                "expected a list of strings, found {}",
                self.get(id).kind()
            ));
        };
        if items.len() > max_items {
            return Err(format!(
                "a list of {} strings, expected at most {max_items}",
                items.len()
            ));
        }
        let mut total = 0usize;
        let mut out = Vec::with_capacity(items.len());
        for &i in items {
            total += self.text_len(i).ok_or("expected a string in the list")?;
            if total > MAX_STRING_LIST_BYTES {
                return Err(format!(
                    "strings longer than {MAX_STRING_LIST_BYTES} bytes in all"
                ));
            }
            let b = self.text(i).ok_or("expected a string in the list")?;
            out.push(String::from_utf8_lossy(&b).into_owned());
        }
        Ok(out)
    }

    /// The length in bytes of a text object (an upper bound for `_codecs.encode`'s, which is
    /// counted in UTF-8 bytes), without copying it.
    fn text_len(&self, id: Id) -> Option<usize> {
        match self.get(id) {
            Value::Str(s) => Some(s.len()),
            Value::Bytes(b) => Some(b.len()),
            Value::Reduce { .. } => match self.latin1_str(id) {
                Some(s) => Some(s.len()),
                None => self.bytes(id).ok().map(|b| b.len()),
            },
            _ => None,
        }
    }

    /// The latin-1 text of a `_codecs.encode(text, 'latin1')` call, unconverted.
    fn latin1_str(&self, id: Id) -> Option<&str> {
        let Value::Reduce { func, args } = self.get(id) else {
            return None;
        };
        if !self.is_global(*func, &["_codecs"], "encode") {
            return None;
        }
        let args = self.tuple(*args)?;
        match (
            args.first().map(|&a| self.get(a)),
            args.get(1).map(|&a| self.get(a)),
        ) {
            (Some(Value::Str(s)), Some(Value::Str(enc))) if enc == "latin1" || enc == "latin-1" => {
                Some(s)
            }
            _ => None,
        }
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
            Value::Reduce { func, .. } if self.is_global(*func, &["_codecs"], "encode") => {
                let s = self
                    .latin1_str(id)
                    .ok_or("malformed _codecs.encode call (only latin1 text is read)")?;
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
            other => Err(format!("expected bytes, found {}", other.kind())),
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

    /// The shape of a numpy array, at most [`MAX_ARRAY_DIMS`] non-negative dimensions.
    fn array_shape(&self, id: Id) -> Result<Vec<usize>, String> {
        let dims = self.int_list(id)?;
        if dims.len() > MAX_ARRAY_DIMS {
            return Err(format!(
                "array of {} dimensions (numpy has at most {MAX_ARRAY_DIMS})",
                dims.len()
            ));
        }
        dims.into_iter()
            .map(|d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
            .collect()
    }

    fn check_u8_dtype(&self, id: Id) -> Result<(), String> {
        let t = self.dtype(id)?;
        if t == "u1" || t == "|u1" || t == "uint8" {
            Ok(())
        } else {
            Err(format!(
                "expected a uint8 array, found dtype {:?}",
                truncate(&t)
            ))
        }
    }

    /// The shape and data objects of a C-ordered numpy `uint8` array, in either of the two
    /// forms numpy pickles one.
    fn array_parts(&self, id: Id) -> Result<(Id, Id), String> {
        const MULTIARRAY: &[&str] = &["numpy.core.multiarray", "numpy._core.multiarray"];
        const NUMERIC: &[&str] = &["numpy.core.numeric", "numpy._core.numeric"];
        match self.get(id) {
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
                self.check_u8_dtype(st[1])?;
                if matches!(self.get(st[2]), Value::Bool(true) | Value::Int(1)) {
                    return Err("Fortran-ordered array".into());
                }
                Ok((st[0], st[3]))
            }
            // Protocol 5: _frombuffer(buffer, dtype, shape, order)
            Value::Reduce { func, args } if self.is_global(*func, NUMERIC, "_frombuffer") => {
                let a = self.tuple(*args).ok_or("bad _frombuffer arguments")?;
                if a.len() != 4 {
                    return Err("bad _frombuffer arguments".into());
                }
                self.check_u8_dtype(a[1])?;
                if !self.text_eq(a[3], b"C") {
                    return Err("array not in C order".into());
                }
                Ok((a[2], a[0]))
            }
            other => Err(format!("expected a numpy array, found {}", other.kind())),
        }
    }

    /// A C-ordered numpy `uint8` array: its shape and its bytes.
    pub(crate) fn u8_array(&self, id: Id) -> Result<(Vec<usize>, Cow<'_, [u8]>), String> {
        let (shape, data) = self.array_parts(id)?;
        let shape = self.array_shape(shape)?;
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or("array shape overflows")?;
        // The length is known without converting `_codecs.encode` text: check it first.
        let len = self.text_len(data).unwrap_or(0);
        if n > len {
            return Err(format!(
                "array of shape {shape:?} with {len} bytes of data (truncated?)"
            ));
        }
        let data = self.bytes(data)?;
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

//! A minimal JSON reader for the plugin configuration.
//!
//! The filter ships as a small `.wasm` and its configuration is a handful of fields, so
//! this replaces a general JSON library (and its float parsing and formatting code) with
//! about two hundred lines: RFC 8259 syntax, nesting limited to 16 levels, numbers kept
//! as their source text and converted on demand without floating-point parsing.

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, members in document order (a repeated key is kept twice).
    Object(Vec<(String, Value)>),
}

/// A syntax error at a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset of the problem.
    pub at: usize,
    /// What was expected there.
    pub expected: &'static str,
}

const MAX_DEPTH: u32 = 16;

impl Value {
    /// Parses a complete JSON document.
    ///
    /// # Errors
    /// A [`SyntaxError`] with the offset of the first problem.
    pub fn parse(input: &[u8]) -> Result<Value, SyntaxError> {
        let mut p = Parser { input, at: 0 };
        let v = p.value(0)?;
        p.ws();
        if p.at != input.len() {
            return Err(p.err("end of document"));
        }
        Ok(v)
    }

    /// The string, if this is one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The members, if this is an object.
    #[must_use]
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    #[must_use]
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A non-negative integer written without fraction or exponent.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        let Value::Number(n) = self else { return None };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.bytes().try_fold(0u64, |acc, b| {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        })
    }

    /// A number in plain decimal notation (`1`, `0.25`, `-3.5`; no exponent), as f32.
    #[must_use]
    pub fn as_decimal(&self) -> Option<f32> {
        let Value::Number(n) = self else { return None };
        let (negative, digits) = match n.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, n.as_str()),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() || int.len() > 9 || frac.len() > 9 {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut value = int
            .bytes()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0')) as f32;
        let mut scale = 1.0f32;
        for b in frac.bytes() {
            scale /= 10.0;
            value += f32::from(b - b'0') * scale;
        }
        Some(if negative { -value } else { value })
    }

    /// A short description for error messages: scalars as written, containers by kind.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut s = match self {
            Value::Null => "null".to_string(),
            Value::Bool(b) => if *b { "true" } else { "false" }.to_string(),
            Value::Number(n) => n.clone(),
            Value::String(s) => crate::names::concat(&["\"", s, "\""]),
            Value::Array(_) => "an array".to_string(),
            Value::Object(_) => "an object".to_string(),
        };
        if s.len() > 40 {
            let mut cut = 40;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("...");
        }
        s
    }
}

struct Parser<'a> {
    input: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn err(&self, expected: &'static str) -> SyntaxError {
        SyntaxError {
            at: self.at,
            expected,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &'static [u8], v: Value) -> Result<Value, SyntaxError> {
        if self.input.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(v)
        } else {
            Err(self.err("a value"))
        }
    }

    fn value(&mut self, depth: u32) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.err("less nesting"));
        }
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                if self.eat(b'}') {
                    return Ok(Value::Object(members));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("a member name"));
                    }
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return Err(self.err("':'"));
                    }
                    members.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Ok(Value::Object(members));
                    }
                    if !self.eat(b',') {
                        return Err(self.err("',' or '}'"));
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Ok(Value::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.err("',' or ']'"));
                    }
                }
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("a value")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let first = self.peek();
        let n = self.digits();
        if n == 0 || (first == Some(b'0') && n > 1) {
            return Err(self.err("a number"));
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.err("fraction digits"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("exponent digits"));
            }
        }
        let text = self.input.get(start..self.at).unwrap_or_default();
        // ASCII only (sign, digits, '.', 'e'): a byte-to-char copy, without the UTF-8
        // validation code of `from_utf8_lossy` in the `.wasm`.
        Ok(Value::Number(
            text.iter().copied().map(char::from).collect(),
        ))
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or(self.err("4 hex digits"))?;
            v = v * 16 + d;
            self.at += 1;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.at += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("closing '\"'"));
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.err("an escape"));
                    };
                    self.at += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.input.get(self.at..self.at + 2) != Some(b"\\u") {
                                    return Err(self.err("a low surrogate"));
                                }
                                self.at += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("a low surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or(self.err("a valid code point"))?
                        }
                        _ => return Err(self.err("a valid escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1F => return Err(self.err("no control character in a string")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("UTF-8 text"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(members: &[(&str, Value)]) -> Value {
        Value::Object(
            members
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn parses_documents() {
        let v = Value::parse(
            br#" {"a": [1, -2.5e3, true, null], "b": {"c": "x\"\u00e9\ud83d\ude00"}} "#,
        )
        .expect("valid");
        assert_eq!(
            v,
            obj(&[
                (
                    "a",
                    Value::Array(vec![
                        Value::Number("1".into()),
                        Value::Number("-2.5e3".into()),
                        Value::Bool(true),
                        Value::Null
                    ])
                ),
                ("b", obj(&[("c", Value::String("x\"é😀".into()))])),
            ])
        );
        assert_eq!(Value::parse(b"[]"), Ok(Value::Array(vec![])));
        assert_eq!(Value::parse(b"{}"), Ok(Value::Object(vec![])));
    }

    #[test]
    fn rejects_bad_syntax_with_offset() {
        let cases: &[(&[u8], usize)] = &[
            (b"", 0),
            (b"{", 1),
            (b"{\"a\" 1}", 5),
            (b"{\"a\":1,}", 7),
            (b"[1 2]", 3),
            (b"01", 2),
            (b"1.", 2),
            (b"\"\\x\"", 3),
            (b"\"\x01\"", 2),
            (b"\"\\ud800\"", 7),
            (b"tru", 0),
            (b"1 2", 2),
            (b"\"\xff\"", 3),
        ];
        for (input, at) in cases {
            let e = Value::parse(input).expect_err(&String::from_utf8_lossy(input));
            assert_eq!(e.at, *at, "{}", String::from_utf8_lossy(input));
        }
        let deep = "[".repeat(100);
        assert!(Value::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn numbers_convert_without_float_parsing() {
        let n = |s: &str| Value::Number(s.into());
        assert_eq!(n("42").as_u64(), Some(42));
        assert_eq!(n("-1").as_u64(), None);
        assert_eq!(n("1.5").as_u64(), None);
        assert_eq!(n("99999999999999999999999").as_u64(), None);
        assert_eq!(n("0.25").as_decimal(), Some(0.25));
        assert_eq!(n("-3.5").as_decimal(), Some(-3.5));
        assert_eq!(n("2").as_decimal(), Some(2.0));
        assert_eq!(n("1e3").as_decimal(), None);
        assert_eq!(Value::Bool(true).as_decimal(), None);
    }

    #[test]
    fn describe_is_short() {
        assert_eq!(Value::String("x".repeat(100)).describe().len(), 43);
        assert_eq!(Value::Array(vec![]).describe(), "an array");
        assert_eq!(Value::String("é".repeat(30)).describe().chars().count(), 23);
    }
}

//! Step conditions (`if:`): a small expression language.
//!
//! ```text
//! expr    := or
//! or      := and ("||" and)*
//! and     := cmp ("&&" cmp)*
//! cmp     := unary (("==" | "!=" | "<" | "<=" | ">" | ">=") unary)?
//! unary   := "!" unary | primary
//! primary := "(" expr ")" | "contains" "(" expr "," expr ")"
//!          | string | number | "true" | "false" | "null" | path
//! ```
//!
//! A path that is not set evaluates to `null`, so `steps.probe.output.error == null` works
//! whatever the step returned. `&&`, `||` and `!` take booleans only, and `<`-style
//! comparisons numbers or strings only: an error beats a guess about what `"5" < 10` means.

use crate::path::{Path, kind_of, quoted};
use serde_json::Value;
use std::cmp::Ordering;

/// Why a condition could not be parsed or evaluated. `column` is 1-based, in the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The condition is not an expression medic reads.
    #[error("syntax error at column {column}: {message}")]
    Syntax {
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The values compared have types that cannot be compared (`"5" < 10`).
    #[error("at column {column}: {message}")]
    Type {
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl ExprError {
    /// 1-based column of the problem in the expression.
    pub fn column(&self) -> usize {
        match self {
            ExprError::Syntax { column, .. } | ExprError::Type { column, .. } => *column,
        }
    }

    /// What is wrong, without the position.
    pub fn message(&self) -> &str {
        match self {
            ExprError::Syntax { message, .. } | ExprError::Type { message, .. } => message,
        }
    }
}

fn syntax(offset: usize, message: impl Into<String>) -> ExprError {
    ExprError::Syntax {
        column: offset + 1,
        message: message.into(),
    }
}

/// A binary operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinOp {
    fn as_str(self) -> &'static str {
        match self {
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

/// A parsed condition. `offset` fields are 0-based char offsets into the source, for errors.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal: string, number, boolean or null.
    Lit(Value),
    /// `incident.severity`, `steps.probe.output.status`.
    Path {
        /// The path.
        path: Path,
        /// Where it starts.
        offset: usize,
    },
    /// `!expr`.
    Not {
        /// The negated expression.
        expr: Box<Expr>,
        /// Where the `!` is.
        offset: usize,
    },
    /// `lhs op rhs`.
    Bin {
        /// The operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
        /// Where the operator is.
        offset: usize,
    },
    /// `hay contains needle`: a substring, or a list member.
    Contains {
        /// The string or list searched.
        hay: Box<Expr>,
        /// What is searched for.
        needle: Box<Expr>,
        /// Where `contains` is.
        offset: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(Value),
    Path(Path),
    Contains,
    Op(BinOp),
    Not,
    LParen,
    RParen,
    Comma,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let start = i;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '"' | '\'' => {
                let (s, end) = quoted(&chars, i).map_err(|(at, m)| syntax(at, m))?;
                i = end;
                toks.push((Tok::Lit(Value::String(s)), start));
                continue;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let mut end = i + 1;
                while chars
                    .get(end)
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E'))
                {
                    end += 1;
                }
                let text: String = chars[i..end].iter().collect();
                let n: f64 = text
                    .parse()
                    .map_err(|_| syntax(i, format!("`{text}` is not a number")))?;
                let lit = if text.contains(['.', 'e', 'E']) {
                    serde_json::Number::from_f64(n).map(Value::Number)
                } else {
                    text.parse::<i64>().ok().map(Value::from)
                };
                i = end;
                toks.push((
                    Tok::Lit(
                        lit.ok_or_else(|| syntax(start, format!("`{text}` is out of range")))?,
                    ),
                    start,
                ));
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let (path, end) = Path::parse_at(&chars, i).map_err(|(at, m)| syntax(at, m))?;
                i = end;
                let word = path.segments.len() == 1;
                let tok = match path.key(0) {
                    Some("true") if word => Tok::Lit(Value::Bool(true)),
                    Some("false") if word => Tok::Lit(Value::Bool(false)),
                    Some("null") if word => Tok::Lit(Value::Null),
                    Some("contains") if word => Tok::Contains,
                    _ => Tok::Path(path),
                };
                toks.push((tok, start));
                continue;
            }
            _ => match two.as_str() {
                "==" | "!=" | "<=" | ">=" | "&&" | "||" => {
                    i += 1;
                    Tok::Op(match two.as_str() {
                        "==" => BinOp::Eq,
                        "!=" => BinOp::Ne,
                        "<=" => BinOp::Le,
                        ">=" => BinOp::Ge,
                        "&&" => BinOp::And,
                        _ => BinOp::Or,
                    })
                }
                _ => match c {
                    '<' => Tok::Op(BinOp::Lt),
                    '>' => Tok::Op(BinOp::Gt),
                    '!' => Tok::Not,
                    '=' => return Err(syntax(i, "`=` is not an operator; use `==` to compare")),
                    '&' => return Err(syntax(i, "use `&&` for \"and\"")),
                    '|' => return Err(syntax(i, "use `||` for \"or\"")),
                    other => return Err(syntax(i, format!("unexpected `{other}`"))),
                },
            },
        };
        i += 1;
        toks.push((tok, start));
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(_, o)| *o)
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), ExprError> {
        if self.peek() == Some(tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(syntax(self.offset(), format!("expected {what}")))
        }
    }

    fn binary(
        &mut self,
        op: BinOp,
        next: fn(&mut Parser) -> Result<Expr, ExprError>,
    ) -> Result<Expr, ExprError> {
        let mut lhs = next(self)?;
        while self.peek() == Some(&Tok::Op(op)) {
            let offset = self.offset();
            self.pos += 1;
            let rhs = next(self)?;
            lhs = Expr::Bin {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                offset,
            };
        }
        Ok(lhs)
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        self.binary(BinOp::Or, Parser::and)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        self.binary(BinOp::And, Parser::cmp)
    }

    fn cmp(&mut self) -> Result<Expr, ExprError> {
        let lhs = self.unary()?;
        let Some(Tok::Op(op)) = self.peek().cloned() else {
            return Ok(lhs);
        };
        if matches!(op, BinOp::And | BinOp::Or) {
            return Ok(lhs);
        }
        let offset = self.offset();
        self.pos += 1;
        let rhs = self.unary()?;
        if let Some(Tok::Op(next)) = self.peek()
            && !matches!(next, BinOp::And | BinOp::Or)
        {
            return Err(syntax(
                self.offset(),
                format!(
                    "comparisons do not chain; use parentheses or `&&` before `{}`",
                    next.as_str()
                ),
            ));
        }
        Ok(Expr::Bin {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            offset,
        })
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some(&Tok::Not) {
            let offset = self.offset();
            self.pos += 1;
            return Ok(Expr::Not {
                expr: Box::new(self.unary()?),
                offset,
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let offset = self.offset();
        let Some((tok, _)) = self.toks.get(self.pos).cloned() else {
            return Err(syntax(
                offset,
                "unexpected end of condition: expected a value",
            ));
        };
        self.pos += 1;
        match tok {
            Tok::Lit(v) => Ok(Expr::Lit(v)),
            Tok::Path(path) => Ok(Expr::Path { path, offset }),
            Tok::LParen => {
                let e = self.or()?;
                self.expect(&Tok::RParen, "`)`")?;
                Ok(e)
            }
            Tok::Contains => {
                self.expect(&Tok::LParen, "`(` after `contains`")?;
                let hay = self.or()?;
                self.expect(&Tok::Comma, "`,` between the two arguments of `contains`")?;
                let needle = self.or()?;
                self.expect(&Tok::RParen, "`)` after the two arguments of `contains`")?;
                Ok(Expr::Contains {
                    hay: Box::new(hay),
                    needle: Box::new(needle),
                    offset,
                })
            }
            Tok::Op(op) => Err(syntax(
                offset,
                format!("expected a value before `{}`", op.as_str()),
            )),
            Tok::RParen => Err(syntax(offset, "unexpected `)`: expected a value")),
            Tok::Comma => Err(syntax(offset, "unexpected `,`: expected a value")),
            Tok::Not => unreachable!("handled by unary"),
        }
    }
}

/// Parses a condition.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let toks = lex(src)?;
    let end = src.chars().count();
    if toks.is_empty() {
        return Err(syntax(0, "empty condition"));
    }
    let mut p = Parser { toks, pos: 0, end };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return Err(syntax(
            p.offset(),
            "expected `&&`, `||` or the end of the condition",
        ));
    }
    Ok(e)
}

impl Expr {
    /// Every path in the expression with its offset, for reference checks.
    pub fn paths(&self) -> Vec<(&Path, usize)> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'e>(&'e self, out: &mut Vec<(&'e Path, usize)>) {
        match self {
            Expr::Lit(_) => {}
            Expr::Path { path, offset } => out.push((path, *offset)),
            Expr::Not { expr, .. } => expr.collect_paths(out),
            Expr::Bin { lhs, rhs, .. } => {
                lhs.collect_paths(out);
                rhs.collect_paths(out);
            }
            Expr::Contains { hay, needle, .. } => {
                hay.collect_paths(out);
                needle.collect_paths(out);
            }
        }
    }

    /// Evaluates to a JSON value.
    pub fn eval(&self, ctx: &Value) -> Result<Value, ExprError> {
        let type_err = |offset: usize, message: String| ExprError::Type {
            column: offset + 1,
            message,
        };
        let boolean = |e: &Expr, what: &str, offset: usize| -> Result<bool, ExprError> {
            match e.eval(ctx)? {
                Value::Bool(b) => Ok(b),
                other => Err(type_err(
                    offset,
                    format!("{what} needs true or false, found {}", describe(&other)),
                )),
            }
        };
        Ok(match self {
            Expr::Lit(v) => v.clone(),
            Expr::Path { path, .. } => path.lookup(ctx).cloned().unwrap_or(Value::Null),
            Expr::Not { expr, offset } => Value::Bool(!boolean(expr, "`!`", *offset)?),
            Expr::Bin {
                op: BinOp::And,
                lhs,
                rhs,
                offset,
            } => Value::Bool(boolean(lhs, "`&&`", *offset)? && boolean(rhs, "`&&`", *offset)?),
            Expr::Bin {
                op: BinOp::Or,
                lhs,
                rhs,
                offset,
            } => Value::Bool(boolean(lhs, "`||`", *offset)? || boolean(rhs, "`||`", *offset)?),
            Expr::Bin {
                op,
                lhs,
                rhs,
                offset,
            } => {
                let (l, r) = (lhs.eval(ctx)?, rhs.eval(ctx)?);
                Value::Bool(match op {
                    BinOp::Eq => json_eq(&l, &r),
                    BinOp::Ne => !json_eq(&l, &r),
                    _ => {
                        let ord = order(&l, &r).ok_or_else(|| {
                            type_err(
                                *offset,
                                format!(
                                    "cannot compare {} {} {}: `{}` needs two numbers or two strings",
                                    describe(&l),
                                    op.as_str(),
                                    describe(&r),
                                    op.as_str()
                                ),
                            )
                        })?;
                        match op {
                            BinOp::Lt => ord == Ordering::Less,
                            BinOp::Le => ord != Ordering::Greater,
                            BinOp::Gt => ord == Ordering::Greater,
                            _ => ord != Ordering::Less,
                        }
                    }
                })
            }
            Expr::Contains {
                hay,
                needle,
                offset,
            } => {
                let (h, n) = (hay.eval(ctx)?, needle.eval(ctx)?);
                Value::Bool(match (&h, &n) {
                    (Value::String(h), Value::String(n)) => h.contains(n.as_str()),
                    (Value::Array(items), n) => items.iter().any(|i| json_eq(i, n)),
                    (Value::Object(map), Value::String(k)) => map.contains_key(k),
                    // A label or output that is not set contains nothing.
                    (Value::Null, _) => false,
                    _ => {
                        return Err(type_err(
                            *offset,
                            format!(
                                "contains(a, b) needs a string, list or object as `a` (and a string `b` for strings and objects), found {} and {}",
                                describe(&h),
                                describe(&n)
                            ),
                        ));
                    }
                })
            }
        })
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
            format!("{} ({v})", kind_of(v))
        }
        other => kind_of(other).to_string(),
    }
    .replace("null (null)", "null")
}

/// Equality with `1 == 1.0`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Parses and evaluates a condition; it must evaluate to `true` or `false`.
pub fn eval_condition(src: &str, ctx: &Value) -> Result<bool, ExprError> {
    match parse(src)?.eval(ctx)? {
        Value::Bool(b) => Ok(b),
        other => Err(ExprError::Type {
            column: 1,
            message: format!(
                "the condition must be true or false, but it is {}",
                describe(&other)
            ),
        }),
    }
}

#[cfg(test)]
#[path = "expr_tests.rs"]
mod tests;

//! Diagnostics: errors written for the person who has to fix the file, usually on call.

use std::fmt;

/// A position in a source file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Pos {
    /// The position at `line`, `column` (both 1-based).
    pub fn new(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One error, for a person.
///
/// Displays as `{file}:{line}:{column}: {field}: {message}`; the position is left out when
/// unknown, and the field when the error is about the file as a whole (a YAML syntax error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the caller named it.
    pub file: String,
    /// Where in it, when known.
    pub pos: Option<Pos>,
    /// Dotted path of the field, e.g. `steps[1].retry.attempts`; empty for the whole file.
    pub field: String,
    /// What is wrong, and what to do.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic for `field` of `file` at `pos`.
    pub fn new(
        file: &str,
        pos: Option<Pos>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.to_string(),
            pos,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(pos) = self.pos {
            write!(f, ":{pos}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// Sorts diagnostics by position, keeping the order they were found in for equal positions
/// (the first found is usually the cause of the later ones).
pub(crate) fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| d.pos.map(|p| (p.line, p.column)).unwrap_or((0, 0)));
}

/// Edit distance, for "did you mean" hints.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (levenshtein(&lower, &c.to_ascii_lowercase()), c))
        // Half the length keeps `retires`→`retry` and `continue_on_error`→`continue-on-error`;
        // the distance must also be below the candidate's length, or `x` would suggest `id`.
        .filter(|(d, c)| {
            let len = c.chars().count();
            *d <= (len.max(word.chars().count()) / 2).max(1) && *d < len
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean `x`?` or nothing.
pub(crate) fn hint<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match did_you_mean(word, candidates) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_position() {
        let d = Diagnostic::new("w.yaml", Some(Pos::new(3, 5)), "steps[0].id", "bad");
        assert_eq!(d.to_string(), "w.yaml:3:5: steps[0].id: bad");
        let d = Diagnostic::new("w.yaml", None, "name", "bad");
        assert_eq!(d.to_string(), "w.yaml: name: bad");
        let d = Diagnostic::new("w.yaml", Some(Pos::new(1, 1)), "", "syntax");
        assert_eq!(d.to_string(), "w.yaml:1:1: syntax");
    }

    #[test]
    fn suggestions() {
        let fields = ["id", "phase", "uses", "with", "retry", "timeout"];
        assert_eq!(did_you_mean("retires", fields), Some("retry"));
        assert_eq!(did_you_mean("use", fields), Some("uses"));
        assert_eq!(did_you_mean("Phase", fields), Some("phase"));
        assert_eq!(did_you_mean("banana", fields), None);
        assert_eq!(did_you_mean("x", fields), None);
        assert_eq!(
            did_you_mean("continue_on_error", ["continue-on-error", "secrets"]),
            Some("continue-on-error")
        );
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}

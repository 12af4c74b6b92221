//! Code patterns of the treatment-category table and their matching rules.
//!
//! Codes are text (`01`, `13b`, `Ä925a`, `1040`): leading zeros and letters
//! matter, so `01` never matches `1`. A pattern is written as the practice
//! writes it in the CSV: exact (`1040`), prefix (`13*`), range (`2050-2120`,
//! `13a-13h`, `Ä925-Ä935`, `IP1-IP5`), list (`IP1,IP2,IP3`) or `*` for every
//! code. Letters are compared case-insensitively.

use serde::{Deserialize, Serialize};

/// Which fee schedule a category row applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CataloguePattern {
    /// `*`: every catalogue, also lines without one.
    Any,
    /// One catalogue by name (`BEMA`, `GOZ`, `GOÄ`, `BEL`, `BEB`, `Material`, …).
    Named(String),
}

impl CataloguePattern {
    /// Parses the CSV cell; `None` when empty.
    pub fn parse(text: &str) -> Option<CataloguePattern> {
        match text.trim() {
            "" => None,
            "*" => Some(CataloguePattern::Any),
            name => Some(CataloguePattern::Named(name.to_owned())),
        }
    }

    /// Whether a line's catalogue is covered.
    pub fn matches(&self, catalogue: Option<&str>) -> bool {
        match self {
            CataloguePattern::Any => true,
            CataloguePattern::Named(name) => catalogue.is_some_and(|c| eq_fold(c.trim(), name)),
        }
    }

    /// Whether every line this pattern matches is also matched by `self`.
    fn covers(&self, other: &CataloguePattern) -> bool {
        match (self, other) {
            (CataloguePattern::Any, _) => true,
            (CataloguePattern::Named(a), CataloguePattern::Named(b)) => {
                a.to_lowercase() == b.to_lowercase()
            }
            (CataloguePattern::Named(_), CataloguePattern::Any) => false,
        }
    }
}

impl std::fmt::Display for CataloguePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CataloguePattern::Any => f.write_str("*"),
            CataloguePattern::Named(name) => f.write_str(name),
        }
    }
}

impl From<CataloguePattern> for String {
    fn from(pattern: CataloguePattern) -> String {
        pattern.to_string()
    }
}

impl TryFrom<String> for CataloguePattern {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        CataloguePattern::parse(&text).ok_or_else(|| "empty catalogue".to_owned())
    }
}

/// One bound of a range: letters before the number, the digits as written
/// (their width decides whether leading zeros are expected), letters after.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeParts {
    /// The bound as the practice wrote it, shown back unchanged.
    pub written: String,
    /// Letters before the number (`Ä`, `IP`), lower-cased.
    pub prefix: String,
    /// The digits as written (`0010`).
    pub digits: String,
    /// The number they spell.
    pub number: u64,
    /// Letters after the number (`a` of `13a`), lower-cased.
    pub suffix: String,
}

impl CodeParts {
    /// Splits a code into letters, digits, letters; `None` when it has no
    /// digits or another shape (`2.1`, `A1B2`).
    pub fn split(code: &str) -> Option<CodeParts> {
        let written = code.trim();
        let code = written.to_lowercase();
        let start = code.find(|c: char| c.is_ascii_digit())?;
        let (prefix, rest) = code.split_at(start);
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, suffix) = rest.split_at(end);
        let letters = |s: &str| s.chars().all(char::is_alphabetic);
        if !letters(prefix) || !letters(suffix) || digits.len() > 18 {
            return None;
        }
        Some(CodeParts {
            written: written.to_owned(),
            prefix: prefix.to_owned(),
            digits: digits.to_owned(),
            number: digits.parse().ok()?,
            suffix: suffix.to_owned(),
        })
    }

    /// Leading zeros are part of a code: `0010` and `10` differ. A padded
    /// bound expects codes of its width, an unpadded one codes without
    /// leading zeros.
    fn same_notation(&self, bound: &CodeParts) -> bool {
        if bound.digits.starts_with('0') {
            self.digits.len() == bound.digits.len()
        } else {
            !self.digits.starts_with('0') || self.digits == "0"
        }
    }
}

/// Which codes a category row matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CodePattern {
    /// `*`: every code.
    Any,
    /// One code (`1040`).
    Exact(String),
    /// Codes starting with the text (`13*`).
    Prefix(String),
    /// Codes between two bounds, inclusive. A bound without letters after
    /// the number includes them (`43-48` matches `47a`).
    Range {
        /// Lower bound.
        low: CodeParts,
        /// Upper bound.
        high: CodeParts,
    },
    /// Any of several codes (`IP1,IP2,IP3`).
    List(Vec<String>),
}

/// Why a pattern cell cannot be read, in German and English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// German reason.
    pub de: String,
    /// English reason.
    pub en: String,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.de, self.en)
    }
}

fn pattern_error(text: &str, de: &str, en: &str) -> PatternError {
    PatternError {
        de: format!("Muster „{text}“: {de}"),
        en: format!("pattern \"{text}\": {en}"),
    }
}

impl CodePattern {
    /// Parses the CSV cell.
    pub fn parse(text: &str) -> Result<CodePattern, PatternError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(pattern_error(text, "leer", "empty"));
        }
        if trimmed == "*" {
            return Ok(CodePattern::Any);
        }
        if trimmed.contains(',') {
            let items: Vec<String> = trimmed.split(',').map(|s| s.trim().to_owned()).collect();
            if items
                .iter()
                .any(|item| item.is_empty() || item.contains(['*', '-']))
            {
                return Err(pattern_error(
                    text,
                    "Listen enthalten nur einzelne Codes",
                    "lists hold single codes only",
                ));
            }
            return Ok(CodePattern::List(items));
        }
        if let Some(prefix) = trimmed.strip_suffix('*') {
            if prefix.contains(['*', '-']) {
                return Err(pattern_error(
                    text,
                    "„*“ nur am Ende",
                    "\"*\" only at the end",
                ));
            }
            return Ok(CodePattern::Prefix(prefix.to_owned()));
        }
        if let Some((low, high)) = trimmed.split_once('-') {
            let (Some(low), Some(high)) = (CodeParts::split(low), CodeParts::split(high)) else {
                return Err(pattern_error(
                    text,
                    "Bereichsgrenzen müssen Codes mit Ziffern sein",
                    "range bounds must be codes with digits",
                ));
            };
            if low.prefix != high.prefix {
                return Err(pattern_error(
                    text,
                    "beide Grenzen brauchen dieselben Buchstaben vor der Zahl",
                    "both bounds need the same letters before the number",
                ));
            }
            if (low.number, &low.suffix) > (high.number, &high.suffix) {
                return Err(pattern_error(
                    text,
                    "untere Grenze ist größer als die obere",
                    "lower bound is above the upper bound",
                ));
            }
            return Ok(CodePattern::Range { low, high });
        }
        if trimmed.contains('*') {
            return Err(pattern_error(
                text,
                "„*“ nur am Ende",
                "\"*\" only at the end",
            ));
        }
        Ok(CodePattern::Exact(trimmed.to_owned()))
    }

    /// Whether a billing code matches.
    pub fn matches(&self, code: &str) -> bool {
        let code = code.trim();
        match self {
            CodePattern::Any => true,
            CodePattern::Exact(exact) => eq_fold(exact, code),
            CodePattern::Prefix(prefix) => starts_with_fold(code, prefix),
            CodePattern::List(items) => items.iter().any(|item| eq_fold(item, code)),
            CodePattern::Range { low, high } => CodeParts::split(code).is_some_and(|parts| {
                parts.prefix == low.prefix
                    && parts.same_notation(low)
                    && above(&parts, low)
                    && below(&parts, high)
            }),
        }
    }

    /// Whether every code `other` matches is matched by `self` too (so a
    /// later row with `other` can never win). Conservative: `false` when
    /// unsure.
    pub fn covers(&self, other: &CodePattern) -> bool {
        match (self, other) {
            (CodePattern::Any, _) => true,
            (_, CodePattern::Exact(code)) => self.matches(code),
            (_, CodePattern::List(items)) => items.iter().all(|item| self.matches(item)),
            (CodePattern::Prefix(a), CodePattern::Prefix(b)) => {
                b.to_lowercase().starts_with(&a.to_lowercase())
            }
            (
                CodePattern::Range { low, high },
                CodePattern::Range {
                    low: other_low,
                    high: other_high,
                },
            ) => {
                low.prefix == other_low.prefix
                    && low.digits.starts_with('0') == other_low.digits.starts_with('0')
                    && (!low.digits.starts_with('0') || low.digits.len() == other_low.digits.len())
                    && above(other_low, low)
                    && (other_high.number < high.number
                        || (other_high.number == high.number
                            && (high.suffix.is_empty()
                                || (!other_high.suffix.is_empty()
                                    && other_high.suffix <= high.suffix))))
            }
            _ => false,
        }
    }
}

/// `parts` is at or above the lower bound.
fn above(parts: &CodeParts, low: &CodeParts) -> bool {
    (parts.number, &parts.suffix) >= (low.number, &low.suffix)
}

/// `parts` is at or below the upper bound; a bound without letters after the
/// number takes every letter suffix of its number.
fn below(parts: &CodeParts, high: &CodeParts) -> bool {
    parts.number < high.number
        || (parts.number == high.number && (high.suffix.is_empty() || parts.suffix <= high.suffix))
}

impl std::fmt::Display for CodePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodePattern::Any => f.write_str("*"),
            CodePattern::Exact(code) => f.write_str(code),
            CodePattern::Prefix(prefix) => write!(f, "{prefix}*"),
            CodePattern::Range { low, high } => write!(f, "{}-{}", low.written, high.written),
            CodePattern::List(items) => f.write_str(&items.join(",")),
        }
    }
}

impl From<CodePattern> for String {
    fn from(pattern: CodePattern) -> String {
        pattern.to_string()
    }
}

impl TryFrom<String> for CodePattern {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        CodePattern::parse(&text).map_err(|e| e.to_string())
    }
}

/// Whether an earlier row (`catalogue`, `pattern`) takes every line a later
/// row would match.
pub fn shadows(
    earlier: (&CataloguePattern, &CodePattern),
    later: (&CataloguePattern, &CodePattern),
) -> bool {
    earlier.0.covers(later.0) && earlier.1.covers(later.1)
}

/// Case-insensitive equality (Unicode lower case, so `Ä1` = `ä1`) without
/// allocating: lookups run for every billing line.
pub(crate) fn eq_fold(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// Case-insensitive `starts_with`, without allocating.
fn starts_with_fold(text: &str, prefix: &str) -> bool {
    let mut text = text.chars().flat_map(char::to_lowercase);
    prefix
        .chars()
        .flat_map(char::to_lowercase)
        .all(|p| text.next() == Some(p))
}

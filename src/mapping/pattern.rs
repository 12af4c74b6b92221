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

    /// Whether some line is matched by both patterns.
    pub fn intersects(&self, other: &CataloguePattern) -> bool {
        match (self, other) {
            (CataloguePattern::Any, _) | (_, CataloguePattern::Any) => true,
            (CataloguePattern::Named(a), CataloguePattern::Named(b)) => eq_fold(a, b),
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

    /// The characters a matched code can start with (lower-cased), as a
    /// bit set: digits, letters a–z, one bit for every other character.
    /// Two patterns whose sets are disjoint have no code in common, so the
    /// editor's check compares only rows that may meet.
    pub fn first_chars(&self) -> u64 {
        match self {
            CodePattern::Any => u64::MAX,
            CodePattern::Exact(code) => first_char_bit(code),
            CodePattern::Prefix(prefix) => first_char_bit(prefix),
            CodePattern::List(items) => items
                .iter()
                .fold(0, |bits, item| bits | first_char_bit(item)),
            // Letters before the number must be the bound's; without them a
            // matched code starts with a digit.
            CodePattern::Range { low, .. } if low.prefix.is_empty() => DIGIT_BITS,
            CodePattern::Range { low, .. } => first_char_bit(&low.prefix),
        }
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
            (CodePattern::Prefix(prefix), CodePattern::Range { low, high }) => {
                prefix_covers_range(prefix, low, high)
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

    /// Whether some code matches both patterns. Conservative: `false` when
    /// unsure, so an overlap warning is never a false alarm.
    pub fn intersects(&self, other: &CodePattern) -> bool {
        match (self, other) {
            (CodePattern::Any, _) | (_, CodePattern::Any) => true,
            (CodePattern::Exact(code), pattern) | (pattern, CodePattern::Exact(code)) => {
                pattern.matches(code)
            }
            (CodePattern::List(items), pattern) | (pattern, CodePattern::List(items)) => {
                items.iter().any(|item| pattern.matches(item))
            }
            (CodePattern::Prefix(a), CodePattern::Prefix(b)) => {
                let (a, b) = (a.to_lowercase(), b.to_lowercase());
                a.starts_with(&b) || b.starts_with(&a)
            }
            (CodePattern::Prefix(prefix), CodePattern::Range { low, high })
            | (CodePattern::Range { low, high }, CodePattern::Prefix(prefix)) => {
                prefix_meets_range(prefix, low, high)
            }
            (
                CodePattern::Range { low, high },
                CodePattern::Range {
                    low: other_low,
                    high: other_high,
                },
            ) => {
                if low.prefix != other_low.prefix {
                    return false;
                }
                let Some((least, most)) = common_numbers(low, other_low) else {
                    return false;
                };
                meets(
                    &[
                        (low.number, low.suffix.as_str()),
                        (other_low.number, other_low.suffix.as_str()),
                        (least, ""),
                    ],
                    &[upper(high), upper(other_high), (most, None)],
                )
            }
        }
    }

    /// A code both patterns match, to show in a message: one of the codes
    /// the patterns name (list items, bounds, the longer prefix). `None`
    /// when none of those is matched by both, even if the patterns meet.
    pub fn common_example(&self, other: &CodePattern) -> Option<String> {
        let mut candidates = self.named_codes();
        candidates.extend(other.named_codes());
        candidates
            .into_iter()
            .find(|code| self.matches(code) && other.matches(code))
    }

    /// The codes written in the pattern itself.
    fn named_codes(&self) -> Vec<String> {
        match self {
            CodePattern::Any => Vec::new(),
            CodePattern::Exact(code) => vec![code.clone()],
            CodePattern::Prefix(prefix) if prefix.is_empty() => Vec::new(),
            CodePattern::Prefix(prefix) => vec![prefix.clone()],
            CodePattern::Range { low, high } => vec![low.written.clone(), high.written.clone()],
            CodePattern::List(items) => items.clone(),
        }
    }
}

/// The lower end of a range in `(number, suffix)` order is `(low.number,
/// low.suffix)`; the upper end is `(high.number, high.suffix)`, or every
/// suffix of `high.number` (`None`) when the bound has no letters after it.
fn upper(high: &CodeParts) -> (u64, Option<&str>) {
    let suffix = (!high.suffix.is_empty()).then_some(high.suffix.as_str());
    (high.number, suffix)
}

/// Whether some `(number, suffix)` lies at or above every lower end and at
/// or below every upper end. In lexicographic order the sets are intervals,
/// so they meet exactly when the greatest lower end is below every upper
/// end — and that lower end is itself a code.
fn meets(lowers: &[(u64, &str)], uppers: &[(u64, Option<&str>)]) -> bool {
    let Some(&(number, suffix)) = lowers.iter().max() else {
        return false;
    };
    uppers.iter().all(|&(top, top_suffix)| {
        number < top || (number == top && top_suffix.is_none_or(|t| suffix <= t))
    })
}

/// `10^exponent`, `None` beyond the 18 digits a code may have.
fn power_of_ten(exponent: usize) -> Option<u64> {
    10u64.checked_pow(u32::try_from(exponent).ok()?)
}

/// The numbers a code can have and still be written as both lower bounds
/// expect (see [`CodeParts::same_notation`]); `None` when no code can.
fn common_numbers(a: &CodeParts, b: &CodeParts) -> Option<(u64, u64)> {
    let width = |bound: &CodeParts| bound.digits.starts_with('0').then_some(bound.digits.len());
    match (width(a), width(b)) {
        (None, None) => Some((0, u64::MAX)),
        (Some(w), Some(v)) if w != v => None,
        // Padded bounds: codes of that width, leading zeros or not.
        (Some(w), Some(_)) => Some((0, power_of_ten(w)? - 1)),
        // One padded, one not: codes of that width without a leading zero.
        (Some(w), None) | (None, Some(w)) => {
            Some((power_of_ten(w.saturating_sub(1))?, power_of_ten(w)? - 1))
        }
    }
}

/// Whether every code of the range `low`-`high` starts with `prefix`
/// (`2*` takes all of `2050-2120`). Conservative: a prefix that reaches
/// into the letters after the number is never said to cover.
fn prefix_covers_range(prefix: &str, low: &CodeParts, high: &CodeParts) -> bool {
    let prefix = prefix.to_lowercase();
    if low.prefix.starts_with(&prefix) {
        return true;
    }
    let Some(digits) = prefix.strip_prefix(&low.prefix) else {
        return false;
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    // The numbers of the range as written are in one block of consecutive
    // texts of equal width; all start with `digits` when the first and the
    // last one do.
    let (first, last) = if low.digits.starts_with('0') {
        let width = low.digits.len();
        let top = power_of_ten(width).map_or(high.number, |p| high.number.min(p - 1));
        (format!("{:0width$}", low.number), format!("{top:0width$}"))
    } else {
        (low.number.to_string(), high.number.to_string())
    };
    first.len() == last.len() && first.starts_with(digits) && last.starts_with(digits)
}

/// Whether some code of the range `low`-`high` starts with `prefix`. A code
/// of a range is the bounds' letters, digits, then letters; the prefix ends
/// in one of those parts.
fn prefix_meets_range(prefix: &str, low: &CodeParts, high: &CodeParts) -> bool {
    let prefix = prefix.to_lowercase();
    if low.prefix.starts_with(&prefix) {
        // It ends within the letters every code of the range starts with.
        return true;
    }
    let Some(rest) = prefix.strip_prefix(&low.prefix) else {
        return false;
    };
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, letters) = rest.split_at(end);
    if digits.is_empty() || digits.len() > 18 || !letters.chars().all(char::is_alphabetic) {
        return false;
    }
    let range = CodePattern::Range {
        low: low.clone(),
        high: high.clone(),
    };
    if !letters.is_empty() {
        // The number is complete; the letters after it start with `letters`.
        // The least such suffix is `letters` itself; if that is below the
        // lower bound, the least one at or above it is the bound's suffix
        // (when it starts with `letters`) or there is none.
        let code = |suffix: &str| format!("{}{digits}{suffix}", low.prefix);
        return range.matches(&code(letters))
            || (low.suffix.starts_with(letters) && range.matches(&code(&low.suffix)));
    }
    // The digits start the number: more digits may follow, then any letters.
    let Ok(start) = digits.parse::<u64>() else {
        return false;
    };
    let padded = low.digits.starts_with('0');
    if !padded && digits.starts_with('0') {
        // Unpadded codes have no leading zero (and no range of them holds 0).
        return false;
    }
    (0..=18usize.saturating_sub(digits.len()))
        .filter(|more| !padded || digits.len() + more == low.digits.len())
        .any(|more| {
            let Some(scale) = power_of_ten(more) else {
                return false;
            };
            let Some(least) = start.checked_mul(scale) else {
                return false;
            };
            meets(
                &[(low.number, low.suffix.as_str()), (least, "")],
                &[upper(high), (least + (scale - 1), None)],
            )
        })
}

/// The bits of `0`–`9` in [`CodePattern::first_chars`].
const DIGIT_BITS: u64 = (1 << 10) - 1;

/// The bit of the first character of `text` as a code starts (trimmed,
/// lower-cased); every bit when it is empty (it says nothing then).
fn first_char_bit(text: &str) -> u64 {
    match text
        .trim()
        .chars()
        .next()
        .and_then(|c| c.to_lowercase().next())
    {
        None => u64::MAX,
        Some(c @ '0'..='9') => 1 << (u32::from(c) - u32::from('0')),
        Some(c @ 'a'..='z') => 1 << (10 + u32::from(c) - u32::from('a')),
        Some(_) => 1 << 63,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> CodePattern {
        CodePattern::parse(text).expect("pattern")
    }

    /// Codes to try both patterns on: numbers in several notations, with
    /// and without letters before and after.
    fn sample_codes() -> Vec<String> {
        let mut codes = Vec::new();
        for number in (0..=130).chain([1000, 1040, 2050, 2100, 2120, 2121, 2199, 2200, 9999]) {
            for digits in [
                number.to_string(),
                format!("{number:02}"),
                format!("{number:03}"),
                format!("{number:04}"),
            ] {
                for prefix in ["", "IP", "Ä"] {
                    for suffix in ["", "a", "c", "h", "k", "z"] {
                        codes.push(format!("{prefix}{digits}{suffix}"));
                    }
                }
            }
        }
        codes.sort();
        codes.dedup();
        codes
    }

    /// `a` and `b` meet (or not), in both orders; when they meet and a code
    /// is given, both match it; a sampled code matching both means they meet.
    fn check(a: &str, b: &str, expected: bool) {
        let (a, b) = (pattern(a), pattern(b));
        assert_eq!(a.intersects(&b), expected, "{a} ∩ {b}");
        assert_eq!(b.intersects(&a), expected, "{b} ∩ {a}");
        if let Some(code) = a.common_example(&b) {
            assert!(expected, "{a} and {b} both match {code}");
            assert!(a.matches(&code) && b.matches(&code), "{a} {b} {code}");
        }
        let both = sample_codes()
            .into_iter()
            .find(|code| a.matches(code) && b.matches(code));
        if let Some(code) = both {
            assert!(expected, "{a} and {b} both match {code}");
        }
    }

    #[test]
    fn exact_and_lists() {
        check("1040", "1040", true);
        check("Ä1", "ä1", true);
        check("01", "1", false);
        check("1040", "1041", false);
        check("IP2", "IP1,IP2,IP3", true);
        check("IP4", "IP1,IP2,IP3", false);
        check("28,29,31", "31,32", true);
        check("28,29,31", "32,34", false);
        check("*", "1040", true);
        check("*", "13*", true);
    }

    #[test]
    fn exact_against_ranges_and_prefixes() {
        check("2100", "2050-2120", true);
        check("2121", "2050-2120", false);
        check("47a", "43-48", true);
        check("0050", "0010-0090", true);
        check("50", "0010-0090", false);
        check("IP3", "IP1-IP5", true);
        check("131", "13*", true);
        check("31", "13*", false);
        check("IP2,1040", "1000-1040", true);
    }

    #[test]
    fn prefixes() {
        check("13*", "1*", true);
        check("13*", "13*", true);
        check("13*", "14*", false);
        check("ip*", "IP1*", true);
        check("2*", "3*", false);
    }

    #[test]
    fn prefixes_against_ranges() {
        check("01*", "010-019", true);
        check("01*", "020-029", false);
        check("01*", "10-19", false);
        check("1*", "010-019", false);
        check("01*", "0010-0020", false);
        check("001*", "0010-0020", true);
        check("21*", "2050-2120", true);
        check("22*", "2050-2120", false);
        check("2*", "300-400", false);
        check("3*", "300-400", true);
        check("2*", "10-300", true);
        check("4*", "300-400", true);
        check("40*", "300-400", true);
        check("41*", "300-400", false);
        check("4*", "43-48", true);
        check("5*", "43-48", false);
        check("43a*", "43-48", true);
        check("48z*", "43-48", true);
        check("43a*", "43b-48", false);
        check("13c*", "13a-13h", true);
        check("13k*", "13a-13h", false);
        check("13*", "13a-13h", true);
        check("I*", "IP1-IP5", true);
        check("IP*", "IP1-IP5", true);
        check("IP3*", "IP1-IP5", true);
        check("IP6*", "IP1-IP5", false);
        check("IQ*", "IP1-IP5", false);
        check("Ä9*", "Ä925-Ä935", true);
        check("Ä93*", "Ä925-Ä935", true);
        check("Ä94*", "Ä925-Ä935", false);
        check("Ä8*", "Ä925-Ä935", false);
        check("0*", "43-48", false);
        check("13 *", "130-139", false);
    }

    #[test]
    fn ranges() {
        check("2000-2100", "2050-2120", true);
        check("2050-2120", "2120-2200", true);
        check("2050-2120", "2121-2200", false);
        check("13a-13c", "13c-13h", true);
        check("13a-13c", "13d-13h", false);
        check("43-48", "48a-50", true);
        check("43-48a", "48b-50", false);
        check("0010-0090", "10-90", false);
        check("0010-0090", "0050-0100", true);
        check("0010-0090", "010-090", false);
        check("010-150", "100-120", true);
        check("010-099", "100-120", false);
        check("IP1-IP5", "IP5-IP9", true);
        check("IP1-IP5", "1-5", false);
    }

    /// `general` takes every code of `specific`, or not.
    fn check_covers(general: &str, specific: &str, expected: bool) {
        let (general, specific) = (pattern(general), pattern(specific));
        assert_eq!(
            general.covers(&specific),
            expected,
            "{general} ⊇ {specific}"
        );
        if let Some(code) = sample_codes()
            .into_iter()
            .find(|code| specific.matches(code) && !general.matches(code))
        {
            assert!(!expected, "{specific} matches {code}, {general} does not");
        }
    }

    #[test]
    fn prefixes_covering_ranges() {
        check_covers("2*", "2050-2120", true);
        check_covers("21*", "2050-2120", false);
        check_covers("1*", "10-19", true);
        check_covers("1*", "9-12", false);
        check_covers("1*", "10-120", false);
        check_covers("01*", "010-019", true);
        check_covers("01*", "010-020", false);
        check_covers("0*", "010-150", false);
        check_covers("0*", "01-150", false);
        check_covers("0*", "01-09", true);
        check_covers("IP*", "IP1-IP5", true);
        check_covers("I*", "IP1-IP5", true);
        check_covers("IP1*", "IP1-IP5", false);
        check_covers("13*", "13a-13h", true);
        check_covers("13a*", "13a-13a", false);
        check_covers("2050-2120", "2*", false);
    }

    #[test]
    fn catalogues() {
        let any = CataloguePattern::Any;
        let bema = CataloguePattern::parse("BEMA").expect("named");
        let goz = CataloguePattern::parse("GOZ").expect("named");
        let lower = CataloguePattern::parse("bema").expect("named");
        assert!(any.intersects(&bema) && bema.intersects(&any));
        assert!(any.intersects(&any));
        assert!(bema.intersects(&lower));
        assert!(!bema.intersects(&goz));
    }

    /// Every sampled code a pattern matches starts with a character of the
    /// pattern's `first_chars`, so the check may pass over rows whose sets
    /// are disjoint.
    #[test]
    fn first_chars_hold_the_start_of_every_matched_code() {
        let codes = sample_codes();
        for text in [
            "*",
            "1040",
            "13*",
            "ä*",
            "Ä1*",
            "IP*",
            "ip1,IP2,Ä3",
            "43-48",
            "0010-0020",
            "IP1-IP9",
            "Ä1-Ä20",
            "2050-2120",
            "0*",
            " 7 ",
            "a1",
        ] {
            let pattern = pattern(text);
            let bits = pattern.first_chars();
            for code in codes.iter().filter(|code| pattern.matches(code)) {
                assert_ne!(
                    bits & first_char_bit(code),
                    0,
                    "{pattern} matches {code} but its first characters say no"
                );
            }
        }
        // Disjoint starts: digits against letters, one letter against another.
        assert_eq!(
            pattern("13*").first_chars() & pattern("IP1").first_chars(),
            0
        );
        assert_eq!(
            pattern("IP1-IP9").first_chars() & pattern("Ä1").first_chars(),
            0
        );
        assert_ne!(
            pattern("43-48").first_chars() & pattern("4711").first_chars(),
            0
        );
    }
}

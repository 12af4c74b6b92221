//! German and English texts of the desktop app.
//!
//! Every visible text is written as a German / English pair at the place it
//! is shown, and [`Lang::pick`] chooses one; German is the default because
//! the practices work in German. Keeping the pair in one call means a label
//! can never exist in one language only.

use serde::{Deserialize, Serialize};

/// Language of the user interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Lang {
    /// Deutsch.
    #[default]
    De,
    /// English.
    En,
}

impl Lang {
    /// The text in this language.
    pub fn pick(self, de: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::De => de,
            Lang::En => en,
        }
    }

    /// The half of a „Deutsch / English“ engine message in this language;
    /// the whole text when it has no such split.
    pub fn half(self, message: &str) -> String {
        match message.split_once(" / ") {
            Some((de, en)) => match self {
                Lang::De => de.trim().to_owned(),
                Lang::En => en.trim().to_owned(),
            },
            None => message.to_owned(),
        }
    }

    /// A count with German or English digit grouping (1.234 / 1,234).
    pub fn number(self, value: u64) -> String {
        let digits = value.to_string();
        let separator = self.pick(".", ",");
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(separator);
            }
            out.push(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_per_language() {
        assert_eq!(Lang::De.number(1_234_567), "1.234.567");
        assert_eq!(Lang::En.number(1_234), "1,234");
        assert_eq!(Lang::De.number(999), "999");
    }

    #[test]
    fn engine_messages_are_split_by_language() {
        assert_eq!(Lang::En.half("Fehler / Error"), "Error");
        assert_eq!(Lang::De.half("Fehler / Error"), "Fehler");
        assert_eq!(Lang::De.half("ohne"), "ohne");
    }
}

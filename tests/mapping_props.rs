//! Properties of the code patterns: shadowing is never reported wrongly,
//! and a pattern reads back from its own text.

use ivoris_hubspot_sync::mapping::CodePattern;
use proptest::prelude::*;

/// Codes as fee schedules write them: letters, digits (maybe with leading
/// zeros), letters.
fn code() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "Ä", "IP", "ä"]),
        0u32..120,
        any::<bool>(),
        prop::sample::select(vec!["", "a", "c", "h", "K"]),
    )
        .prop_map(|(prefix, number, padded, suffix)| {
            if padded {
                format!("{prefix}{number:04}{suffix}")
            } else {
                format!("{prefix}{number}{suffix}")
            }
        })
}

/// Pattern texts of every shape; some do not parse and are skipped.
fn pattern_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        code(),
        code().prop_map(|c| {
            let cut = c
                .char_indices()
                .nth(c.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            format!("{}*", &c[..cut])
        }),
        (code(), code()).prop_map(|(a, b)| format!("{a}-{b}")),
        prop::collection::vec(code(), 1..4).prop_map(|items| items.join(",")),
    ]
}

/// Every code the generator can produce, so a covering claim is checked
/// against all of them.
fn universe() -> Vec<String> {
    let mut codes = Vec::new();
    for prefix in ["", "Ä", "IP"] {
        for number in 0u32..120 {
            for suffix in ["", "a", "c", "h", "K"] {
                codes.push(format!("{prefix}{number}{suffix}"));
                codes.push(format!("{prefix}{number:04}{suffix}"));
            }
        }
    }
    codes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_pattern_reported_as_covering_another_matches_all_its_codes(
        first in pattern_text(),
        second in pattern_text(),
    ) {
        let (Ok(first), Ok(second)) = (CodePattern::parse(&first), CodePattern::parse(&second))
        else {
            return Ok(());
        };
        if first.covers(&second) {
            for code in &universe() {
                prop_assert!(
                    !second.matches(code) || first.matches(code),
                    "{first} covers {second} but not {code}"
                );
            }
        }
    }

    #[test]
    fn a_pattern_reads_back_from_its_text(text in pattern_text(), codes in prop::collection::vec(code(), 1..20)) {
        let Ok(pattern) = CodePattern::parse(&text) else {
            return Ok(());
        };
        let again = CodePattern::parse(&pattern.to_string());
        prop_assert_eq!(again.as_ref(), Ok(&pattern));
        for code in &codes {
            prop_assert_eq!(pattern.matches(code), pattern.matches(&code.to_lowercase()));
        }
    }
}

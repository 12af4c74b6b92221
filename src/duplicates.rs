//! Finding patients recorded twice (DESIGN.md §6) as a pure function over
//! the mirrored patients. Prevention is the sync's job (unique keys);
//! this finds what already exists in the practices' data:
//!
//! - **in one practice**: two records of one Ivoris with the same
//!   normalised name and birthday — for the practice to merge in Ivoris
//!   (the app never writes to Ivoris);
//! - **across locations**: the same person as a patient of two locations
//!   of the chain — same normalised name and birthday, or the same e-mail
//!   address together with the same birthday or first name. An e-mail
//!   alone is not enough: families share one address.
//!
//! Names are compared normalised: case, accents and umlaut spellings
//! (`Müller` = `Mueller` = `MULLER`), `ß` = `ss`, and punctuation and
//! spaces do not count. Records are linked transitively into groups; each
//! group has a stable key (its members' keys, sorted), so a decision like
//! „kein Duplikat“ holds for exactly that group and a new member shows it
//! again.

pub mod drift;
pub mod portal;
pub mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::plan::PatientFacts;
use crate::plan::properties::patient_key;

/// Where the records of a group are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// At least two records in the same Ivoris: to be merged there.
    SamePractice,
    /// One person at several locations of the chain.
    AcrossLocations,
}

impl Scope {
    /// German / English label.
    pub fn label(self, german: bool) -> &'static str {
        match (self, german) {
            (Scope::SamePractice, true) => "In einer Praxis doppelt",
            (Scope::SamePractice, false) => "Twice in one practice",
            (Scope::AcrossLocations, true) => "An mehreren Standorten",
            (Scope::AcrossLocations, false) => "At several locations",
        }
    }
}

/// Why records were linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Same normalised first and last name and the same birthday.
    NameAndBirthday,
    /// Same e-mail address and the same birthday or first name.
    Email,
}

impl Reason {
    /// German / English label.
    pub fn label(self, german: bool) -> &'static str {
        match (self, german) {
            (Reason::NameAndBirthday, true) => "Name und Geburtstag gleich",
            (Reason::NameAndBirthday, false) => "same name and birthday",
            (Reason::Email, true) => "E-Mail gleich",
            (Reason::Email, false) => "same e-mail",
        }
    }
}

/// The fields compared side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Location,
    Number,
    Firstname,
    Lastname,
    Birthday,
    Email,
    Phone,
    Mobile,
    Street,
    Zip,
    City,
}

impl Field {
    /// In the order of the review.
    pub const ALL: [Field; 11] = [
        Field::Location,
        Field::Number,
        Field::Firstname,
        Field::Lastname,
        Field::Birthday,
        Field::Email,
        Field::Phone,
        Field::Mobile,
        Field::Street,
        Field::Zip,
        Field::City,
    ];

    /// German / English label.
    pub fn label(self, german: bool) -> &'static str {
        let (de, en) = match self {
            Field::Location => ("Standort", "Location"),
            Field::Number => ("Patientennr.", "Patient no."),
            Field::Firstname => ("Vorname", "First name"),
            Field::Lastname => ("Nachname", "Last name"),
            Field::Birthday => ("Geburtstag", "Birthday"),
            Field::Email => ("E-Mail", "E-mail"),
            Field::Phone => ("Telefon", "Phone"),
            Field::Mobile => ("Mobil", "Mobile"),
            Field::Street => ("Straße", "Street"),
            Field::Zip => ("PLZ", "Postcode"),
            Field::City => ("Ort", "City"),
        };
        if german { de } else { en }
    }

    /// The record's value, as shown (empty when missing).
    pub fn value(self, patient: &PatientFacts) -> String {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        match self {
            Field::Location => patient.location.clone(),
            Field::Number => text(&patient.human_readable_id),
            Field::Firstname => text(&patient.firstname),
            Field::Lastname => text(&patient.lastname),
            Field::Birthday => patient
                .birthday
                .map(|d| d.format("%d.%m.%Y").to_string())
                .unwrap_or_default(),
            Field::Email => text(&patient.email),
            Field::Phone => text(&patient.phone),
            Field::Mobile => text(&patient.mobile),
            Field::Street => text(&patient.street),
            Field::Zip => text(&patient.zip),
            Field::City => text(&patient.city),
        }
    }
}

/// Records that belong to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateGroup {
    /// The members' patient keys, sorted and joined: stable for a decision.
    pub key: String,
    /// Same practice or across locations.
    pub scope: Scope,
    /// Why the members were linked.
    pub reasons: BTreeSet<Reason>,
    /// The records, primary suggestion first, then by location and number.
    pub members: Vec<PatientFacts>,
}

impl DuplicateGroup {
    /// The fields whose values differ between members (compared as shown,
    /// names normalised).
    pub fn differing(&self) -> BTreeSet<Field> {
        Field::ALL
            .into_iter()
            .filter(|field| {
                let values: HashSet<String> = self
                    .members
                    .iter()
                    .map(|m| match field {
                        Field::Firstname | Field::Lastname | Field::City => {
                            normalise_name(&field.value(m))
                        }
                        Field::Email => field.value(m).trim().to_lowercase(),
                        _ => field.value(m).trim().to_owned(),
                    })
                    .collect();
                values.len() > 1
            })
            .collect()
    }
}

/// A name for comparing: lower case, umlauts and `ß` spelled out, accents
/// dropped, only letters and digits kept.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        match c {
            'ä' | 'æ' => out.push_str("ae"),
            'ö' | 'ø' | 'œ' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'à' | 'á' | 'â' | 'ã' | 'å' => out.push('a'),
            'ç' | 'č' | 'ć' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ñ' | 'ń' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' => out.push('o'),
            'ù' | 'ú' | 'û' => out.push('u'),
            'š' | 'ś' => out.push('s'),
            'ž' | 'ź' | 'ż' => out.push('z'),
            'ý' | 'ÿ' => out.push('y'),
            'ł' => out.push('l'),
            c if c.is_alphanumeric() => out.push(c),
            _ => {}
        }
    }
    out
}

/// How many fields a record fills: the fuller one is suggested as primary.
fn filled(patient: &PatientFacts) -> usize {
    Field::ALL
        .into_iter()
        .filter(|f| !f.value(patient).trim().is_empty())
        .count()
}

/// Finds the groups among `patients` (of every location), leaving out the
/// groups whose key is in `dismissed`. Groups come ordered by scope, then
/// by their first member.
pub fn find_groups(patients: &[PatientFacts], dismissed: &HashSet<String>) -> Vec<DuplicateGroup> {
    // Union-find over record indices.
    let mut parent: Vec<usize> = (0..patients.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut reasons: HashMap<(usize, usize), BTreeSet<Reason>> = HashMap::new();
    let mut link = |parent: &mut Vec<usize>, a: usize, b: usize, reason: Reason| {
        let (ra, rb) = (root(parent, a), root(parent, b));
        if ra != rb {
            parent[rb] = ra;
        }
        reasons
            .entry((a.min(b), a.max(b)))
            .or_default()
            .insert(reason);
    };

    // Same name and birthday: anywhere.
    let mut by_name: HashMap<(String, String, chrono::NaiveDate), Vec<usize>> = HashMap::new();
    for (i, p) in patients.iter().enumerate() {
        let (Some(first), Some(last), Some(birthday)) = (&p.firstname, &p.lastname, p.birthday)
        else {
            continue;
        };
        let (first, last) = (normalise_name(first), normalise_name(last));
        if first.is_empty() || last.is_empty() {
            continue;
        }
        by_name.entry((first, last, birthday)).or_default().push(i);
    }
    for members in by_name.values() {
        for pair in members.windows(2) {
            link(&mut parent, pair[0], pair[1], Reason::NameAndBirthday);
        }
    }

    // Same e-mail across locations, with the same birthday or first name.
    let mut by_email: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, p) in patients.iter().enumerate() {
        if let Some(email) = p.email.as_deref().map(|e| e.trim().to_lowercase())
            && email.contains('@')
        {
            by_email.entry(email).or_default().push(i);
        }
    }
    for members in by_email.values() {
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                let (pa, pb) = (&patients[a], &patients[b]);
                if pa.location == pb.location {
                    continue;
                }
                let same_birthday = pa.birthday.is_some() && pa.birthday == pb.birthday;
                let first = |p: &PatientFacts| {
                    p.firstname
                        .as_deref()
                        .map(normalise_name)
                        .filter(|n| !n.is_empty())
                };
                let same_first = first(pa).is_some() && first(pa) == first(pb);
                if same_birthday || same_first {
                    link(&mut parent, a, b, Reason::Email);
                }
            }
        }
    }

    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..patients.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut found: Vec<DuplicateGroup> = groups
        .into_values()
        .filter(|members| members.len() > 1)
        .map(|members| {
            let mut group_reasons = BTreeSet::new();
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    if let Some(r) = reasons.get(&(a.min(b), a.max(b))) {
                        group_reasons.extend(r.iter().copied());
                    }
                }
            }
            let locations: BTreeSet<&str> = members
                .iter()
                .map(|&i| patients[i].location.as_str())
                .collect();
            let scope = if locations.len() < members.len() {
                Scope::SamePractice
            } else {
                Scope::AcrossLocations
            };
            let mut records: Vec<PatientFacts> =
                members.iter().map(|&i| patients[i].clone()).collect();
            records.sort_by(|a, b| {
                filled(b)
                    .cmp(&filled(a))
                    .then_with(|| a.location.cmp(&b.location))
                    .then_with(|| number_order(a).cmp(&number_order(b)))
            });
            let mut keys: Vec<String> = records
                .iter()
                .map(|p| patient_key(&p.location, &p.id))
                .collect();
            keys.sort();
            DuplicateGroup {
                key: keys.join(" "),
                scope,
                reasons: group_reasons,
                members: records,
            }
        })
        .filter(|group| !dismissed.contains(&group.key))
        .collect();
    found.sort_by(|a, b| (a.scope, &a.key).cmp(&(b.scope, &b.key)));
    found
}

/// Patient numbers in numeric order where they are numbers.
fn number_order(patient: &PatientFacts) -> (u64, String) {
    let number = patient.human_readable_id.clone().unwrap_or_default();
    (number.trim().parse().unwrap_or(u64::MAX), number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn patient(
        location: &str,
        id: &str,
        first: &str,
        last: &str,
        born: &str,
        email: &str,
    ) -> PatientFacts {
        PatientFacts {
            location: location.to_owned(),
            id: id.to_owned(),
            human_readable_id: Some(id.to_owned()),
            firstname: Some(first.to_owned()).filter(|s| !s.is_empty()),
            lastname: Some(last.to_owned()).filter(|s| !s.is_empty()),
            birthday: NaiveDate::parse_from_str(born, "%Y-%m-%d").ok(),
            email: Some(email.to_owned()).filter(|s| !s.is_empty()),
            ..PatientFacts::default()
        }
    }

    /// The groups' member keys and scopes.
    fn check(patients: &[PatientFacts], expected: &[(&str, Scope)]) {
        let groups = find_groups(patients, &HashSet::new());
        let actual: Vec<(String, Scope)> =
            groups.iter().map(|g| (g.key.clone(), g.scope)).collect();
        let expected: Vec<(String, Scope)> = expected
            .iter()
            .map(|(k, s)| ((*k).to_owned(), *s))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn names_compare_without_case_accents_and_umlaut_spellings() {
        for (a, b) in [
            ("Müller", "Mueller"),
            ("MÜLLER", "müller"),
            ("Strauß", "Strauss"),
            ("José-María", "jose maria"),
            ("  Özdemir ", "Oezdemir"),
        ] {
            assert_eq!(normalise_name(a), normalise_name(b), "{a} ~ {b}");
        }
        assert_ne!(normalise_name("Müller"), normalise_name("Muller"));
    }

    #[test]
    fn twice_in_one_practice_by_name_and_birthday() {
        check(
            &[
                patient("mag", "1", "Jürgen", "Müller", "1970-03-01", "j@x.de"),
                patient("mag", "2", "Juergen", "Mueller", "1970-03-01", ""),
                // Same name, other birthday: another person.
                patient("mag", "3", "Jürgen", "Müller", "1971-03-01", ""),
                // No birthday: never linked by name.
                patient("mag", "4", "Jürgen", "Müller", "", ""),
            ],
            &[("mag:1 mag:2", Scope::SamePractice)],
        );
    }

    #[test]
    fn a_family_sharing_an_address_is_not_a_duplicate() {
        check(
            &[
                patient("mag", "1", "Anna", "Schulz", "1980-01-01", "familie@x.de"),
                patient("mag", "2", "Ben", "Schulz", "2010-05-05", "familie@x.de"),
                patient("lei", "7", "Carl", "Schulz", "2012-06-06", "familie@x.de"),
                // Neither first name nor birthday known: not enough.
                patient("hal", "8", "", "Schulz", "", "familie@x.de"),
                patient("lei", "9", "", "Schulz", "", "familie@x.de"),
            ],
            &[],
        );
    }

    #[test]
    fn one_person_at_two_locations_by_email_or_name() {
        check(
            &[
                patient("mag", "1", "Anna", "Schulz", "1980-01-01", "Anna@X.de"),
                // Married since: other last name, same address and birthday.
                patient("lei", "9", "Anna", "Becker", "1980-01-01", "anna@x.de "),
                patient("hal", "3", "Max", "Groß", "1990-02-02", ""),
                patient("lei", "4", "max", "Gross", "1990-02-02", ""),
            ],
            &[
                ("hal:3 lei:4", Scope::AcrossLocations),
                ("lei:9 mag:1", Scope::AcrossLocations),
            ],
        );
    }

    #[test]
    fn groups_are_transitive_and_the_fullest_record_is_suggested() {
        let mut full = patient("lei", "5", "Eva", "Lang", "1960-07-07", "eva@x.de");
        full.phone = Some("0341 1".into());
        let groups = find_groups(
            &[
                patient("mag", "2", "Eva", "Lang", "1960-07-07", ""),
                full,
                patient("mag", "8", "Eva", "Lang", "1960-07-07", ""),
            ],
            &HashSet::new(),
        );
        assert_eq!(groups.len(), 1);
        let group = &groups[0];
        assert_eq!(group.key, "lei:5 mag:2 mag:8");
        assert_eq!(group.scope, Scope::SamePractice, "two records in Magdeburg");
        assert_eq!(group.members[0].id, "5", "the fullest record first");
        let differing = group.differing();
        assert!(differing.contains(&Field::Location));
        assert!(differing.contains(&Field::Email));
        assert!(!differing.contains(&Field::Lastname));
        // Dismissed: gone.
        let dismissed: HashSet<String> = [group.key.clone()].into();
        let patients: Vec<PatientFacts> = group.members.clone();
        assert!(find_groups(&patients, &dismissed).is_empty());
    }
}

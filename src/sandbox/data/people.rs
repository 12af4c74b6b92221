//! Synthetic people: German names (with umlauts, ß and names of families
//! that came from Turkey, Poland or Russia), birthdays, phone numbers,
//! addresses around each practice and e-mail addresses derived from names.
//!
//! Everything here is pure and driven by the caller's rng, so a world is
//! reproducible from its seed.

use chrono::NaiveDate;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

const FEMALE: &[&str] = &[
    "Anna",
    "Jana",
    "Katrin",
    "Sabine",
    "Dörte",
    "Ute",
    "Maike",
    "Özlem",
    "Ayşe",
    "Sophie",
    "Marie",
    "Lea",
    "Hannah",
    "Käthe",
    "Bärbel",
    "Grete",
    "Lena",
    "Emilia",
    "Franziska",
    "Agnieszka",
    "Małgorzata",
    "Tatjana",
    "Swetlana",
    "Heike",
    "Birgit",
    "Doreen",
    "Mandy",
    "Claudia",
    "Susanne",
    "Jördis",
    "Annegret",
    "Renée",
    "Zoë",
    "Chantal",
    "Lilly",
    "Mia",
    "Elif",
    "Merve",
    "Petra",
    "Gudrun",
];

const MALE: &[&str] = &[
    "Jürgen",
    "Björn",
    "Jörg",
    "Günter",
    "Uwe",
    "Hans-Jürgen",
    "Klaus",
    "Thomas",
    "Michael",
    "Stefan",
    "Sören",
    "Mehmet",
    "Emre",
    "Can",
    "Paweł",
    "Krzysztof",
    "Dmitri",
    "Sergej",
    "André",
    "René",
    "Matthias",
    "Lukas",
    "Finn",
    "Jonas",
    "Maximilian",
    "Ole",
    "Till",
    "Torsten",
    "Ronny",
    "Maik",
    "Enrico",
    "Frank",
    "Holger",
    "Rüdiger",
    "Gerd",
    "Jürgen",
    "Noah",
    "Elias",
    "Yusuf",
    "Björn",
];

const LAST: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Schmitz",
    "Krause",
    "Meier",
    "Lehmann",
    "Schmid",
    "Schulze",
    "Maier",
    "Köhler",
    "Herrmann",
    "König",
    "Walter",
    "Mayer",
    "Huber",
    "Kaiser",
    "Fuchs",
    "Peters",
    "Lang",
    "Scholz",
    "Möller",
    "Weiß",
    "Jung",
    "Hahn",
    "Schubert",
    "Vogel",
    "Friedrich",
    "Keller",
    "Günther",
    "Frank",
    "Berger",
    "Winkler",
    "Roth",
    "Beck",
    "Lorenz",
    "Baumann",
    "Franke",
    "Albrecht",
    "Schuster",
    "Simon",
    "Ludwig",
    "Böhm",
    "Winter",
    "Kraus",
    "Martin",
    "Schumacher",
    "Krämer",
    "Vogt",
    "Stein",
    "Jäger",
    "Otto",
    "Sommer",
    "Groß",
    "Seidel",
    "Heinrich",
    "Brandt",
    "Haas",
    "Schreiber",
    "Graf",
    "Schulte",
    "Dietrich",
    "Ziegler",
    "Kuhn",
    "Kühn",
    "Pohl",
    "Engel",
    "Horn",
    "Busch",
    "Bergmann",
    "Thomas",
    "Voigt",
    "Sauer",
    "Arnold",
    "Wolff",
    "Pfeiffer",
    "Größer",
    "Strauß",
    "Weißenborn",
    "Çelik",
    "Yılmaz",
    "Öztürk",
    "Kaya",
    "Demir",
    "Şahin",
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Lewandowski",
    "Iwanow",
    "Petrow",
    "Schäfer-Lübke",
    "von Bülow",
    "Nguyen",
    "Tran",
    "Böttcher",
    "Fröhlich",
    "Gößling",
    "Jürgens",
    "Löffler",
    "Nüßlein",
    "Rößler",
    "Thürmer",
];

/// A city in the catchment area of a practice.
struct Town {
    /// Town name as written in addresses.
    name: &'static str,
    /// Its postcodes (text: leading zeros matter).
    zips: &'static [&'static str],
    /// Telephone area code for landlines.
    area_code: &'static str,
    /// Real street names of the town.
    streets: &'static [&'static str],
}

const MAGDEBURG: &[Town] = &[
    Town {
        name: "Magdeburg",
        zips: &[
            "39104", "39106", "39108", "39110", "39112", "39114", "39116", "39118", "39120",
            "39122", "39124", "39126", "39128", "39130",
        ],
        area_code: "0391",
        streets: &[
            "Breiter Weg",
            "Otto-von-Guericke-Straße",
            "Große Diesdorfer Straße",
            "Halberstädter Straße",
            "Lübecker Straße",
            "Olvenstedter Straße",
            "Leipziger Straße",
            "Jakobstraße",
            "Schönebecker Straße",
            "Hegelstraße",
            "Editharing",
            "Am Krökentor",
            "Große Münzstraße",
            "Liebknechtstraße",
        ],
    },
    Town {
        name: "Schönebeck (Elbe)",
        zips: &["39218"],
        area_code: "03928",
        streets: &[
            "Salzer Straße",
            "Friedrichstraße",
            "Magdeburger Straße",
            "Söker Straße",
        ],
    },
    Town {
        name: "Wolmirstedt",
        zips: &["39326"],
        area_code: "039201",
        streets: &["August-Bebel-Straße", "Glindenberger Weg", "Bahnhofstraße"],
    },
    Town {
        name: "Barleben",
        zips: &["39179"],
        area_code: "039203",
        streets: &["Breiteweg", "Ebendorfer Straße", "Meitzendorfer Straße"],
    },
];

const LEIPZIG: &[Town] = &[
    Town {
        name: "Leipzig",
        zips: &[
            "04103", "04105", "04107", "04109", "04155", "04177", "04229", "04275", "04277",
            "04299", "04315", "04317", "04347", "04357",
        ],
        area_code: "0341",
        streets: &[
            "Karl-Liebknecht-Straße",
            "Grimmaische Straße",
            "Eisenbahnstraße",
            "Georg-Schwarz-Straße",
            "Karl-Heine-Straße",
            "Gohliser Straße",
            "Prager Straße",
            "Kochstraße",
            "Könneritzstraße",
            "Zschochersche Straße",
            "Holbeinstraße",
            "Dösner Weg",
            "Straße des 18. Oktober",
            "Jahnallee",
        ],
    },
    Town {
        name: "Markkleeberg",
        zips: &["04416"],
        area_code: "0341",
        streets: &["Hauptstraße", "Koburger Straße", "Rathausstraße"],
    },
    Town {
        name: "Taucha",
        zips: &["04425"],
        area_code: "034298",
        streets: &["Leipziger Straße", "Schloßstraße", "Portitzer Straße"],
    },
    Town {
        name: "Schkeuditz",
        zips: &["04435"],
        area_code: "034204",
        streets: &["Rathausplatz", "Leipziger Straße", "Bahnhofstraße"],
    },
];

const HALLE: &[Town] = &[
    Town {
        name: "Halle (Saale)",
        zips: &[
            "06108", "06110", "06112", "06114", "06116", "06118", "06120", "06122", "06124",
            "06126", "06128", "06130", "06132",
        ],
        area_code: "0345",
        streets: &[
            "Große Ulrichstraße",
            "Leipziger Straße",
            "Reilstraße",
            "Merseburger Straße",
            "Große Steinstraße",
            "Ludwig-Wucherer-Straße",
            "Bernburger Straße",
            "Torstraße",
            "Böllberger Weg",
            "Magdeburger Straße",
            "Geiststraße",
            "Paracelsusstraße",
        ],
    },
    Town {
        name: "Merseburg",
        zips: &["06217"],
        area_code: "03461",
        streets: &[
            "Gotthardstraße",
            "König-Heinrich-Straße",
            "Weißenfelser Straße",
        ],
    },
    Town {
        name: "Landsberg",
        zips: &["06188"],
        area_code: "034602",
        streets: &["Köthener Straße", "Hallesche Straße", "Markt"],
    },
];

/// The catchment area of a practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Magdeburg,
    Leipzig,
    Halle,
}

impl Region {
    fn towns(self) -> &'static [Town] {
        match self {
            Region::Magdeburg => MAGDEBURG,
            Region::Leipzig => LEIPZIG,
            Region::Halle => HALLE,
        }
    }
}

/// One human being, before an Ivoris installation gives them an Id.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Given name as the practice typed it (umlauts kept).
    pub firstname: String,
    /// Family name, shared within a household.
    pub lastname: String,
    /// Date of birth; with the names it identifies a person across practices.
    pub birthday: NaiveDate,
    /// `Male`, `Female` or `Diverse`, as Ivoris stores it.
    pub gender: &'static str,
    /// Missing for about one in seven people; shared within some families.
    pub email: Option<String>,
    /// Landline with the town's area code.
    pub phone: Option<String>,
    /// Mobile number, written in either of the usual German formats.
    pub mobile: Option<String>,
    /// Street and house number.
    pub street: String,
    /// Five digits, leading zeros kept (`04277`).
    pub zip: String,
    /// Town in the practice's catchment area.
    pub city: String,
    /// `Statutory`, `Private` or `SelfPay`.
    pub health_insurance: &'static str,
    /// Membership status (`Mitglied`, `Familienversichert`, `Rentner`, `Privat`).
    pub insurance_status: Option<&'static str>,
    /// Own insurance number (statutory: letter and nine digits).
    pub insurance_number: Option<String>,
}

/// Picks one element of a non-empty constant table.
pub fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Lower-case ASCII form of a name for e-mail local parts (ä → ae, ß → ss …).
pub fn ascii_fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'ç' => out.push('c'),
            'ş' => out.push('s'),
            'ğ' => out.push('g'),
            'ı' => out.push('i'),
            'ł' => out.push('l'),
            'ś' => out.push('s'),
            'é' | 'ë' => out.push('e'),
            'a'..='z' | '0'..='9' | '-' => out.push(c),
            _ => {}
        }
    }
    out
}

/// An e-mail address derived from the name at one of the example domains.
pub fn email_for(
    rng: &mut ChaCha8Rng,
    firstname: &str,
    lastname: &str,
    birthday: NaiveDate,
) -> String {
    let first = ascii_fold(firstname);
    let last = ascii_fold(lastname);
    let domain = match rng.random_range(0..10) {
        0..=5 => "example.de",
        6..=7 => "example.com",
        _ => "example.org",
    };
    let initial = first.chars().next().unwrap_or('x');
    let local = match rng.random_range(0..6) {
        0 | 1 => format!("{first}.{last}"),
        2 => format!("{initial}.{last}"),
        3 => format!("{first}.{last}{}", chrono::Datelike::year(&birthday) % 100),
        4 => format!("{last}.{first}"),
        _ => format!("{first}{}", rng.random_range(1..999)),
    };
    format!("{local}@{domain}")
}

fn digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|i| {
            let low = if i == 0 { 1 } else { 0 };
            char::from(b'0' + rng.random_range(low..10u8))
        })
        .collect()
}

fn mobile(rng: &mut ChaCha8Rng) -> String {
    let prefix = *pick(
        rng,
        &[
            "151", "152", "160", "170", "171", "172", "175", "176", "177", "178", "179", "157",
            "162",
        ],
    );
    let length = 7 + rng.random_range(0..2);
    let number = digits(rng, length);
    if rng.random_bool(0.5) {
        format!("+49 {prefix} {number}")
    } else {
        format!("0{prefix} {number}")
    }
}

fn insurance(
    rng: &mut ChaCha8Rng,
    age: i32,
) -> (&'static str, Option<&'static str>, Option<String>) {
    let roll = rng.random_range(0..100);
    if roll < 86 {
        let status = if age < 18 {
            "Familienversichert"
        } else if age >= 67 {
            "Rentner"
        } else if rng.random_bool(0.15) {
            "Familienversichert"
        } else {
            "Mitglied"
        };
        let letter = char::from(b'A' + rng.random_range(0..26u8));
        (
            "Statutory",
            Some(status),
            Some(format!("{letter}{}", digits(rng, 9))),
        )
    } else if roll < 97 {
        (
            "Private",
            Some("Privat"),
            Some(format!("{}-{}", digits(rng, 6), digits(rng, 2))),
        )
    } else {
        ("SelfPay", None, None)
    }
}

/// A random person living near the practice, alive and born between 1936
/// and 2023 (children come mostly with their families).
pub fn person(rng: &mut ChaCha8Rng, region: Region, today: NaiveDate) -> Person {
    let female = rng.random_bool(0.52);
    let gender = if rng.random_range(0..400) == 0 {
        "Diverse"
    } else if female {
        "Female"
    } else {
        "Male"
    };
    let firstname = if female {
        pick(rng, FEMALE)
    } else {
        pick(rng, MALE)
    }
    .to_string();
    let lastname = pick(rng, LAST).to_string();
    let age = match rng.random_range(0..100) {
        0..=7 => rng.random_range(3..18),
        8..=70 => rng.random_range(18..60),
        _ => rng.random_range(60..90),
    };
    let birthday = birthday_for_age(rng, today, age);
    let email = if rng.random_bool(0.85) {
        Some(email_for(rng, &firstname, &lastname, birthday))
    } else {
        None
    };
    let town = if rng.random_bool(0.75) {
        &region.towns()[0]
    } else {
        pick(rng, region.towns())
    };
    let phone = if rng.random_bool(0.6) {
        let length = 6 + rng.random_range(0..2);
        Some(format!("{} {}", town.area_code, digits(rng, length)))
    } else {
        None
    };
    let mobile = rng.random_bool(0.8).then(|| mobile(rng));
    let street = format!("{} {}", pick(rng, town.streets), house_number(rng));
    let zip = pick(rng, town.zips).to_string();
    let (health_insurance, insurance_status, insurance_number) = insurance(rng, age);
    Person {
        firstname,
        lastname,
        birthday,
        gender,
        email,
        phone,
        mobile,
        street,
        zip,
        city: town.name.to_string(),
        health_insurance,
        insurance_status,
        insurance_number,
    }
}

fn house_number(rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(1..120);
    if rng.random_range(0..8) == 0 {
        format!("{n}{}", pick(rng, &["a", "b", "c"]))
    } else {
        n.to_string()
    }
}

fn birthday_for_age(rng: &mut ChaCha8Rng, today: NaiveDate, age: i32) -> NaiveDate {
    let days = age * 365 + rng.random_range(0..365);
    today - chrono::Duration::days(i64::from(days))
}

/// A relative sharing the household (address, landline and usually the
/// parent's e-mail address): a child or a partner.
pub fn relative(rng: &mut ChaCha8Rng, head: &Person, today: NaiveDate) -> Person {
    let child = rng.random_bool(0.7);
    let female = rng.random_bool(0.5);
    let firstname = if female {
        pick(rng, FEMALE)
    } else {
        pick(rng, MALE)
    }
    .to_string();
    let age = if child {
        rng.random_range(4..17)
    } else {
        rng.random_range(25..70)
    };
    let mut relative = head.clone();
    relative.firstname = firstname;
    relative.gender = if female { "Female" } else { "Male" };
    relative.birthday = birthday_for_age(rng, today, age);
    relative.mobile = (!child && rng.random_bool(0.8)).then(|| mobile(rng));
    // Everyone has their own insurance number; children are insured with
    // the parent (statutory) or under the parent's private tariff.
    let (status, number) = match head.health_insurance {
        "Statutory" => {
            let status = if child {
                "Familienversichert"
            } else {
                "Mitglied"
            };
            let letter = char::from(b'A' + rng.random_range(0..26u8));
            (Some(status), Some(format!("{letter}{}", digits(rng, 9))))
        }
        "Private" => (
            Some("Privat"),
            Some(format!("{}-{}", digits(rng, 6), digits(rng, 2))),
        ),
        _ => (None, None),
    };
    relative.insurance_status = status;
    relative.insurance_number = number;
    relative
}

/// A changed e-mail address for a person (new provider or new name format).
pub fn changed_email(
    rng: &mut ChaCha8Rng,
    firstname: &str,
    lastname: &str,
    birthday: NaiveDate,
) -> String {
    let base = email_for(rng, firstname, lastname, birthday);
    let (local, domain) = base
        .split_once('@')
        .unwrap_or((base.as_str(), "example.org"));
    format!("{local}.neu{}@{domain}", rng.random_range(1..99))
}

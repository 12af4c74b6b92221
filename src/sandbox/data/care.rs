//! What happens in the chair: appointment types with their durations, the
//! outcome of an appointment once its time has passed, and the billing lines
//! (BEMA, GOZ, GOÄ, lab, material) a completed appointment produces.
//!
//! Amounts are computed in integer cents from points, point values and the
//! GOZ/GOÄ factor, as `reference/domain.md` describes the fee schedules.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::people::pick;

/// The appointment types (AppointmentTemplates) every simulated practice uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisitKind {
    Erstberatung,
    Kontrolle,
    Prophylaxe,
    Fuellung,
    Endo,
    Par,
    Chirurgie,
    ImplantatBeratung,
    Implantation,
    ZePraeparation,
    ZeEingliederung,
    KfoBeratung,
    AlignerScan,
    Bleaching,
    Schmerz,
    Recall,
}

impl VisitKind {
    pub const ALL: [VisitKind; 16] = [
        VisitKind::Erstberatung,
        VisitKind::Kontrolle,
        VisitKind::Prophylaxe,
        VisitKind::Fuellung,
        VisitKind::Endo,
        VisitKind::Par,
        VisitKind::Chirurgie,
        VisitKind::ImplantatBeratung,
        VisitKind::Implantation,
        VisitKind::ZePraeparation,
        VisitKind::ZeEingliederung,
        VisitKind::KfoBeratung,
        VisitKind::AlignerScan,
        VisitKind::Bleaching,
        VisitKind::Schmerz,
        VisitKind::Recall,
    ];

    /// The template name staff see; the second brand names two types
    /// differently, as practices do (the mapping table absorbs that).
    pub fn label(self, second_brand: bool) -> &'static str {
        match self {
            VisitKind::Erstberatung if second_brand => "Neupatient",
            VisitKind::Erstberatung => "Erstberatung",
            VisitKind::Kontrolle => "Kontrolle",
            VisitKind::Prophylaxe if second_brand => "Prophylaxe",
            VisitKind::Prophylaxe => "PZR",
            VisitKind::Fuellung => "Füllungstherapie",
            VisitKind::Endo => "Endo",
            VisitKind::Par => "PAR",
            VisitKind::Chirurgie => "Chirurgie/Extraktion",
            VisitKind::ImplantatBeratung => "Implantat-Beratung",
            VisitKind::Implantation => "Implantation",
            VisitKind::ZePraeparation => "ZE-Präparation",
            VisitKind::ZeEingliederung => "ZE-Eingliederung",
            VisitKind::KfoBeratung => "KFO-Beratung",
            VisitKind::AlignerScan => "Aligner-Scan",
            VisitKind::Bleaching => "Bleaching",
            VisitKind::Schmerz => "Schmerz/Notfall",
            VisitKind::Recall => "Recall",
        }
    }

    pub fn duration_minutes(self) -> u32 {
        match self {
            VisitKind::Erstberatung => 30,
            VisitKind::Kontrolle => 20,
            VisitKind::Prophylaxe => 60,
            VisitKind::Fuellung => 45,
            VisitKind::Endo => 60,
            VisitKind::Par => 60,
            VisitKind::Chirurgie => 45,
            VisitKind::ImplantatBeratung => 30,
            VisitKind::Implantation => 90,
            VisitKind::ZePraeparation => 90,
            VisitKind::ZeEingliederung => 45,
            VisitKind::KfoBeratung => 30,
            VisitKind::AlignerScan => 30,
            VisitKind::Bleaching => 60,
            VisitKind::Schmerz => 15,
            VisitKind::Recall => 15,
        }
    }

    /// Consultations may end „geklärt“ (the patient decided against treatment).
    pub fn is_consultation(self) -> bool {
        matches!(
            self,
            VisitKind::Erstberatung | VisitKind::ImplantatBeratung | VisitKind::KfoBeratung
        )
    }

    /// Prophylaxis appointments are run by the prophylaxis assistant.
    pub fn by_hygienist(self) -> bool {
        matches!(self, VisitKind::Prophylaxe | VisitKind::Recall)
    }
}

/// How a passed appointment ended.
pub fn outcome(rng: &mut ChaCha8Rng, kind: VisitKind) -> &'static str {
    let roll = rng.random_range(0..1000);
    if kind.is_consultation() {
        match roll {
            0..=79 => "Cancelled",
            80..=119 => "NoShow",
            120..=379 => "Clarified",
            _ => "Completed",
        }
    } else {
        match roll {
            0..=79 => "Cancelled",
            80..=119 => "NoShow",
            _ => "Completed",
        }
    }
}

/// One billing line before it gets Ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `lst`, `mat`, `lab`, `pabg`, `text` or `note`.
    pub entry_type: &'static str,
    /// `BEMA`, `GOZ`, `GOÄ`, `BEL`, `BEB`, `Material`, …; none for remarks.
    pub catalogue: Option<&'static str>,
    /// Fee code as text (`01`, `13b`, `Ä1`, `1040`).
    pub code: Option<&'static str>,
    /// Times the service was rendered (teeth, canals); 0 for remarks.
    pub quantity: f64,
    /// GOZ/GOÄ multiplier; BEMA and costs have none.
    pub factor: Option<f64>,
    /// Amount in integer cents; the wire shows euros.
    pub cents: i64,
    /// FDI tooth number where the service concerns one tooth.
    pub tooth: Option<String>,
    /// Short text as staff document it.
    pub text: &'static str,
}

/// Euro cents per BEMA point, in thousandths of a cent (1.1953 €).
const BEMA_POINT_MILLICENTS: i64 = 119_530;
/// GOZ point value 0.0562421 € in units of 10⁻⁵ cent.
const GOZ_POINT: i64 = 562_421;
/// GOÄ point value 0.0582873 € in units of 10⁻⁵ cent.
const GOAE_POINT: i64 = 582_873;

fn div_round(numerator: i64, denominator: i64) -> i64 {
    (numerator + denominator / 2) / denominator
}

/// Who pays decides the catalogue: BEMA for statutory patients, GOZ/GOÄ for
/// private and self-paying ones (and for private extras of statutory ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer {
    Statutory,
    Private,
}

impl Payer {
    pub fn from_insurance(health_insurance: &str) -> Payer {
        if health_insurance == "Statutory" {
            Payer::Statutory
        } else {
            Payer::Private
        }
    }
}

/// Builds the lines of one appointment.
struct Bill<'a> {
    /// The world's rng: factors, quantities and optional lines are drawn from it.
    rng: &'a mut ChaCha8Rng,
    /// Lines written so far, in the order staff would enter them.
    lines: Vec<Line>,
}

impl Bill<'_> {
    fn bema(
        &mut self,
        code: &'static str,
        points: i64,
        quantity: i64,
        tooth: Option<String>,
        text: &'static str,
    ) {
        self.lines.push(Line {
            entry_type: "lst",
            catalogue: Some("BEMA"),
            code: Some(code),
            quantity: quantity as f64,
            factor: None,
            cents: div_round(points * quantity * BEMA_POINT_MILLICENTS, 1000),
            tooth,
            text,
        });
    }

    fn factor(&mut self) -> i64 {
        match self.rng.random_range(0..20) {
            0 => 100,
            1 | 2 => 180,
            3..=15 => 230,
            16 | 17 => 300,
            _ => 350,
        }
    }

    fn fee(
        &mut self,
        catalogue: &'static str,
        code: &'static str,
        points: i64,
        quantity: i64,
        tooth: Option<String>,
        text: &'static str,
    ) {
        let factor = self.factor();
        let point = if catalogue == "GOÄ" {
            GOAE_POINT
        } else {
            GOZ_POINT
        };
        self.lines.push(Line {
            entry_type: "lst",
            catalogue: Some(catalogue),
            code: Some(code),
            quantity: quantity as f64,
            factor: Some(factor as f64 / 100.0),
            cents: div_round(points * quantity * point * factor, 10_000_000),
            tooth,
            text,
        });
    }

    fn goz(
        &mut self,
        code: &'static str,
        points: i64,
        quantity: i64,
        tooth: Option<String>,
        text: &'static str,
    ) {
        self.fee("GOZ", code, points, quantity, tooth, text);
    }

    fn goae(&mut self, code: &'static str, points: i64, text: &'static str) {
        self.fee("GOÄ", code, points, 1, None, text);
    }

    fn cost(
        &mut self,
        entry_type: &'static str,
        catalogue: &'static str,
        code: &'static str,
        cents: std::ops::Range<i64>,
        tooth: Option<String>,
        text: &'static str,
    ) {
        let cents = self.rng.random_range(cents);
        self.lines.push(Line {
            entry_type,
            catalogue: Some(catalogue),
            code: Some(code),
            quantity: 1.0,
            factor: None,
            cents,
            tooth,
            text,
        });
    }

    fn remark(&mut self, entry_type: &'static str, text: &'static str) {
        self.lines.push(Line {
            entry_type,
            catalogue: None,
            code: None,
            quantity: 0.0,
            factor: None,
            cents: 0,
            tooth: None,
            text,
        });
    }

    fn anaesthesia(&mut self, payer: Payer, tooth: &str) {
        if payer == Payer::Statutory {
            self.bema(
                "40",
                8,
                1,
                Some(tooth.to_string()),
                "Infiltrationsanästhesie",
            );
        } else {
            self.goz(
                "0090",
                60,
                1,
                Some(tooth.to_string()),
                "Infiltrationsanästhesie",
            );
        }
        if self.rng.random_bool(0.5) {
            self.cost(
                "mat",
                "Material",
                "ANAE",
                180..420,
                None,
                "Anästhetikum Ultracain",
            );
        }
    }
}

/// A tooth in FDI notation; permanent teeth only (children's treatments are
/// rare enough here not to need primary teeth).
pub fn tooth(rng: &mut ChaCha8Rng) -> String {
    format!("{}{}", rng.random_range(1..5), rng.random_range(1..9))
}

/// A molar or premolar, where most fillings, root canals and implants go.
pub fn back_tooth(rng: &mut ChaCha8Rng) -> String {
    format!("{}{}", rng.random_range(1..5), rng.random_range(4..8))
}

/// The billing lines of a completed appointment. `tooth` is the tooth the
/// treatment series is about (kept across the series' appointments).
pub fn lines(rng: &mut ChaCha8Rng, kind: VisitKind, payer: Payer, tooth_hint: &str) -> Vec<Line> {
    let tooth_hint = if tooth_hint.is_empty() {
        back_tooth(rng)
    } else {
        tooth_hint.to_string()
    };
    let tooth_hint = tooth_hint.as_str();
    let mut bill = Bill {
        rng,
        lines: Vec::with_capacity(8),
    };
    let t = || Some(tooth_hint.to_string());
    let statutory = payer == Payer::Statutory;
    match kind {
        VisitKind::Erstberatung | VisitKind::Kontrolle => {
            if statutory {
                bill.bema("01", 18, 1, None, "Eingehende Untersuchung");
                if bill.rng.random_bool(0.3) {
                    bill.bema("Ä1", 9, 1, None, "Beratung");
                }
                if bill.rng.random_bool(0.3) {
                    bill.bema("04", 10, 1, None, "Parodontaler Screening-Index");
                }
                if bill.rng.random_bool(0.35) {
                    bill.bema("Ä925a", 12, 1, t(), "Röntgen Zahnfilm");
                }
                if kind == VisitKind::Erstberatung && bill.rng.random_bool(0.4) {
                    bill.bema("Ä935d", 36, 1, None, "Orthopantomogramm");
                }
            } else {
                bill.goz("0010", 100, 1, None, "Eingehende Untersuchung");
                bill.goae("1", 80, "Beratung");
                if bill.rng.random_bool(0.35) {
                    bill.goae("5000", 50, "Röntgen Zahnfilm");
                }
                if kind == VisitKind::Erstberatung && bill.rng.random_bool(0.4) {
                    bill.goae("5004", 400, "Panoramaschichtaufnahme");
                }
            }
            bill.remark("note", "Befund erhoben, Pat. aufgeklärt");
        }
        VisitKind::Prophylaxe | VisitKind::Recall => {
            if kind == VisitKind::Prophylaxe {
                let teeth = bill.rng.random_range(22..29);
                bill.goz("1040", 28, teeth, None, "Professionelle Zahnreinigung");
                bill.goz("1000", 200, 1, None, "Mundhygienestatus");
                if bill.rng.random_bool(0.3) {
                    let quantity = bill.rng.random_range(4..12);
                    bill.goz("4050", 10, quantity, None, "Entfernung harter Beläge");
                }
                bill.cost(
                    "mat",
                    "Material",
                    "PROPH",
                    250..900,
                    None,
                    "Polierpaste, Fluoridlack",
                );
            } else if statutory {
                bill.bema("01", 18, 1, None, "Eingehende Untersuchung");
                bill.bema("107", 16, 1, None, "Zahnsteinentfernung");
            } else {
                bill.goz("0010", 100, 1, None, "Eingehende Untersuchung");
                let quantity = bill.rng.random_range(6..20);
                bill.goz("4050", 10, quantity, None, "Entfernung harter Beläge");
            }
            bill.remark("note", "Recall in 6 Monaten");
        }
        VisitKind::Fuellung => {
            let teeth = bill.rng.random_range(1..3);
            for i in 0..teeth {
                let tooth = if i == 0 {
                    tooth_hint.to_string()
                } else {
                    back_tooth(bill.rng)
                };
                bill.anaesthesia(payer, &tooth);
                if statutory {
                    let (code, points, text) = *pick(
                        bill.rng,
                        &[
                            ("13a", 32, "Füllung einflächig"),
                            ("13b", 39, "Füllung zweiflächig"),
                            ("13c", 49, "Füllung dreiflächig"),
                            ("13d", 58, "Füllung mehr als dreiflächig"),
                            ("13e", 51, "Kompositfüllung einflächig Seitenzahn"),
                            ("13f", 62, "Kompositfüllung zweiflächig Seitenzahn"),
                            ("13g", 77, "Kompositfüllung dreiflächig Seitenzahn"),
                            ("13h", 92, "Kompositfüllung mehrflächig Seitenzahn"),
                        ],
                    );
                    bill.bema(code, points, 1, Some(tooth.clone()), text);
                } else {
                    let (code, points, text) = *pick(
                        bill.rng,
                        &[
                            ("2060", 533, "Kompositfüllung einflächig"),
                            ("2080", 556, "Kompositfüllung zweiflächig"),
                            ("2100", 832, "Kompositfüllung dreiflächig"),
                            ("2120", 1003, "Kompositfüllung mehr als dreiflächig"),
                        ],
                    );
                    bill.goz(code, points, 1, Some(tooth.clone()), text);
                    bill.goz("2197", 130, 1, Some(tooth.clone()), "Adhäsive Befestigung");
                }
                bill.cost("mat", "Material", "KOMP", 150..600, Some(tooth), "Komposit");
            }
        }
        VisitKind::Endo => {
            bill.anaesthesia(payer, tooth_hint);
            let canals = bill.rng.random_range(1..4);
            if statutory {
                bill.bema("28", 20, 1, t(), "Exstirpation der vitalen Pulpa");
                bill.bema("32", 29, canals, t(), "Aufbereitung Wurzelkanal");
                bill.bema("34", 15, 1, t(), "Medikamentöse Einlage");
                if bill.rng.random_bool(0.5) {
                    bill.bema("35", 17, canals, t(), "Wurzelkanalfüllung");
                }
            } else {
                bill.goz("2360", 112, 1, t(), "Exstirpation der vitalen Pulpa");
                bill.goz("2410", 392, canals, t(), "Aufbereitung Wurzelkanal");
                bill.goz("2420", 70, canals, t(), "Elektrometrische Längenbestimmung");
                if bill.rng.random_bool(0.5) {
                    bill.goz("2440", 258, canals, t(), "Wurzelkanalfüllung");
                }
            }
            bill.cost(
                "mat",
                "Material",
                "ENDO",
                400..1800,
                t(),
                "Feilen, Spüllösung",
            );
        }
        VisitKind::Par => {
            let teeth = bill.rng.random_range(6..20);
            if statutory {
                let (code, points, text) = *pick(
                    bill.rng,
                    &[
                        ("ATG", 14, "Parodontologisches Aufklärungsgespräch"),
                        ("MHU", 44, "Mundhygieneunterweisung"),
                        ("BEV", 12, "Befundevaluation"),
                        ("UPT", 18, "Unterstützende Parodontitistherapie"),
                    ],
                );
                bill.bema(code, points, 1, None, text);
                bill.bema("AIT", 14, teeth, None, "Antiinfektiöse Therapie");
                if bill.rng.random_bool(0.2) {
                    let quantity = bill.rng.random_range(2..6);
                    bill.bema("CPT", 22, quantity, None, "Chirurgische Therapie");
                }
            } else {
                bill.goz("4000", 160, 1, None, "Parodontalstatus");
                bill.goz(
                    "4070",
                    100,
                    teeth,
                    None,
                    "Parodontalchirurgische Therapie geschlossen",
                );
                let quantity = bill.rng.random_range(1..4);
                bill.goz("4150", 45, quantity, None, "Kontrolle nach PAR");
            }
            bill.cost(
                "mat",
                "Material",
                "PAR",
                300..1200,
                None,
                "Antiseptikum, Küretten",
            );
        }
        VisitKind::Chirurgie => {
            bill.anaesthesia(payer, tooth_hint);
            if statutory {
                let (code, points, text) = *pick(
                    bill.rng,
                    &[
                        ("43", 10, "Entfernung einwurzeliger Zahn"),
                        ("44", 15, "Entfernung mehrwurzeliger Zahn"),
                        ("45", 40, "Entfernung tief frakturierter Zahn"),
                        ("47a", 58, "Osteotomie"),
                    ],
                );
                bill.bema(code, points, 1, t(), text);
                bill.bema("38", 10, 1, t(), "Nachbehandlung");
            } else {
                let (code, points, text) = *pick(
                    bill.rng,
                    &[
                        ("3000", 70, "Entfernung einwurzeliger Zahn"),
                        ("3010", 110, "Entfernung mehrwurzeliger Zahn"),
                        ("3020", 270, "Entfernung tief frakturierter Zahn"),
                        ("3030", 405, "Entfernung durch Osteotomie"),
                    ],
                );
                bill.goz(code, points, 1, t(), text);
                bill.goz("3290", 60, 1, t(), "Kontrolle nach chirurgischem Eingriff");
            }
            bill.remark("text", "Pat. über Verhalten nach OP aufgeklärt");
        }
        VisitKind::ImplantatBeratung | VisitKind::KfoBeratung => {
            if statutory {
                bill.bema("Ä1", 9, 1, None, "Beratung");
            } else {
                bill.goae("1", 80, "Beratung");
            }
            if kind == VisitKind::ImplantatBeratung {
                bill.goz(
                    "9000",
                    1000,
                    1,
                    t(),
                    "Implantatbezogene Analyse und Vermessung",
                );
                bill.goae("5004", 400, "Panoramaschichtaufnahme");
            } else {
                bill.goz("6000", 180, 1, None, "Profilanalyse");
                if statutory {
                    bill.bema("01K", 28, 1, None, "Kieferorthopädische Untersuchung");
                }
            }
            bill.remark("note", "HKP erstellt, Bedenkzeit vereinbart");
        }
        VisitKind::Implantation => {
            bill.anaesthesia(payer, tooth_hint);
            bill.goz("9010", 1545, 1, t(), "Implantatinsertion");
            bill.goz(
                "9003",
                390,
                1,
                t(),
                "Verwendung einer Orientierungsschablone",
            );
            if bill.rng.random_bool(0.4) {
                bill.goz("9100", 2694, 1, t(), "Augmentation");
                bill.cost(
                    "mat",
                    "Material",
                    "KNEX",
                    8_000..25_000,
                    t(),
                    "Knochenersatzmaterial",
                );
            }
            bill.cost("mat", "Material", "IMPL", 22_000..38_000, t(), "Implantat");
            bill.cost("lab", "BEB", "0710", 9_000..18_000, t(), "Bohrschablone");
        }
        VisitKind::ZePraeparation => {
            bill.anaesthesia(payer, tooth_hint);
            if statutory {
                bill.bema("20a", 148, 1, t(), "Metallische Vollkrone");
                bill.bema("19", 19, 1, t(), "Provisorische Krone");
                bill.bema("98a", 19, 1, None, "Abformung");
            } else {
                bill.goz("2210", 1678, 1, t(), "Vollkeramikkrone");
                bill.goz("2270", 270, 1, t(), "Provisorium");
                bill.goz("5170", 100, 1, None, "Anatomische Abformung");
            }
            bill.cost("mat", "Material", "ABF", 400..1_200, None, "Abformmaterial");
        }
        VisitKind::ZeEingliederung => {
            if statutory {
                bill.bema("24a", 37, 1, t(), "Eingliederung Krone");
                bill.cost(
                    "lab",
                    "BEL",
                    "1022",
                    18_000..42_000,
                    t(),
                    "Vollkrone Metall",
                );
            } else {
                bill.goz("2197", 130, 1, t(), "Adhäsive Befestigung");
                bill.cost(
                    "lab",
                    "BEB",
                    "1102",
                    35_000..85_000,
                    t(),
                    "Vollkeramikkrone",
                );
            }
            bill.cost(
                "lab",
                "BEL",
                "9330",
                800..2_500,
                None,
                "Versandkosten Labor",
            );
            if bill.rng.random_bool(0.25) {
                bill.cost(
                    "pabg",
                    "Eigenanteil",
                    "EA",
                    20_000..90_000,
                    t(),
                    "Eigenanteil Zahnersatz",
                );
            }
        }
        VisitKind::AlignerScan => {
            bill.goz(
                "6030",
                1300,
                1,
                None,
                "Kieferorthopädische Maßnahmen Umformung",
            );
            bill.goz("0065", 80, 1, None, "Optisch-elektronische Abformung");
            bill.cost("lab", "BEB", "ALN", 120_000..280_000, None, "Aligner-Set");
        }
        VisitKind::Bleaching => {
            let quantity = bill.rng.random_range(6..13);
            bill.goz(
                "2290a",
                200,
                quantity,
                None,
                "Bleaching analog § 6 Abs. 1 GOZ",
            );
            bill.cost(
                "mat",
                "Material",
                "BLCH",
                2_500..6_000,
                None,
                "Bleaching-Gel",
            );
        }
        VisitKind::Schmerz => {
            if statutory {
                bill.bema("01", 18, 1, None, "Eingehende Untersuchung");
                bill.bema("Ä925a", 12, 1, t(), "Röntgen Zahnfilm");
                bill.bema("31", 11, 1, t(), "Trepanation");
            } else {
                bill.goae("1", 80, "Beratung");
                bill.goae("5000", 50, "Röntgen Zahnfilm");
                bill.goz("2390", 89, 1, t(), "Trepanation");
            }
            bill.remark("text", "Akute Beschwerden, Schmerzbehandlung");
        }
    }
    if bill.rng.random_bool(0.95) {
        let text = *pick(
            bill.rng,
            &[
                "Aufklärung erfolgt, Einverständnis liegt vor",
                "Anamnese aktualisiert",
                "Pat. beschwerdefrei",
                "Mundhygiene besprochen",
                "Nächster Termin vereinbart",
            ],
        );
        bill.remark("text", text);
    }
    bill.lines
}

/// The private fee a practice bills for a missed appointment.
pub fn no_show_fee(rng: &mut ChaCha8Rng) -> Line {
    Line {
        entry_type: "pabg",
        catalogue: Some("Ausfall"),
        code: Some("AUSF"),
        quantity: 1.0,
        factor: None,
        cents: *pick(rng, &[3_000, 5_000, 7_500]),
        tooth: None,
        text: "Ausfallhonorar",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn check_fee(kind: VisitKind, payer: Payer, code: &str, expected_cents: impl Fn(&Line) -> i64) {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let found = (0..200)
            .flat_map(|_| lines(&mut rng, kind, payer, "36"))
            .find(|l| l.code == Some(code))
            .unwrap_or_else(|| panic!("{code} never billed"));
        assert_eq!(found.cents, expected_cents(&found), "{found:?}");
    }

    #[test]
    fn amounts_follow_points_point_values_and_factors() {
        check_fee(VisitKind::Kontrolle, Payer::Statutory, "01", |_| 2152);
        check_fee(VisitKind::Prophylaxe, Payer::Statutory, "1040", |l| {
            (l.quantity * 28.0 * 5.62421 * l.factor.unwrap_or(0.0)).round() as i64
        });
        check_fee(VisitKind::Kontrolle, Payer::Private, "1", |l| {
            (80.0 * 5.82873 * l.factor.unwrap_or(0.0)).round() as i64
        });
    }

    #[test]
    fn remarks_cost_nothing_and_teeth_are_fdi_numbers() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for kind in VisitKind::ALL {
            for payer in [Payer::Statutory, Payer::Private] {
                for line in lines(&mut rng, kind, payer, "") {
                    if matches!(line.entry_type, "text" | "note") {
                        assert_eq!((line.cents, line.code), (0, None));
                    } else {
                        assert!(line.cents > 0, "{kind:?} {line:?}");
                    }
                    if let Some(tooth) = &line.tooth {
                        assert_eq!(tooth.len(), 2, "{tooth}");
                    }
                }
            }
        }
    }
}

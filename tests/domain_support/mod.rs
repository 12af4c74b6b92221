//! The treatment categories of `reference/domain.md`, written out code by
//! code for the codes the synthetic practices bill. Tests compare the
//! product's classification and revenue with this table, which shares no
//! code with the product.

#![allow(dead_code)]

/// The category of a synthetic billing line according to the table of
/// `reference/domain.md`, written out independently of the CSV defaults.
/// `None` for codes the table does not list (anaesthesia, aftercare,
/// optical impression): they stay „unklassifiziert“.
pub fn domain_category(entry_type: &str, catalogue: &str, code: &str) -> Option<&'static str> {
    if matches!(entry_type, "mat" | "lab") {
        return Some("Material/Labor");
    }
    let category = match (catalogue, code) {
        ("BEMA", "01" | "Ä1" | "04" | "Ä925a" | "Ä935d") => "Diagnostik",
        ("GOZ", "0010") | ("GOÄ", "1" | "5000" | "5004") => "Diagnostik",
        ("BEMA", "107") | ("GOZ", "1000" | "1040" | "4050") => "Prophylaxe",
        ("BEMA", "13a" | "13b" | "13c" | "13d" | "13e" | "13f" | "13g" | "13h") => "Füllung",
        ("GOZ", "2060" | "2080" | "2100" | "2120" | "2197") => "Füllung",
        ("BEMA", "28" | "31" | "32" | "34" | "35") => "Endodontie",
        ("GOZ", "2360" | "2390" | "2410" | "2420" | "2440") => "Endodontie",
        ("BEMA", "ATG" | "MHU" | "BEV" | "UPT" | "AIT" | "CPT") => "Parodontologie",
        ("GOZ", "4000" | "4070" | "4150") => "Parodontologie",
        ("BEMA", "43" | "44" | "45" | "47a") => "Chirurgie",
        ("GOZ", "3000" | "3010" | "3020" | "3030" | "3290") => "Chirurgie",
        ("GOZ", "9000" | "9003" | "9010" | "9100") => "Implantologie",
        ("BEMA", "19" | "20a" | "24a" | "98a") => "Prothetik",
        ("GOZ", "2210" | "2270" | "5170") => "Prothetik",
        ("BEMA", "01K") | ("GOZ", "6000" | "6030") => "Kieferorthopädie",
        ("GOZ", "2290a") => "Ästhetik",
        ("BEMA", "38" | "40") | ("GOZ", "0090" | "0065") => return None,
        _ => panic!("code {catalogue} {code} is not in the expected table; add it"),
    };
    Some(category)
}

/// The deal property slug of a category label.
pub fn slug(label: &str) -> &'static str {
    match label {
        "Diagnostik" => "diagnostik",
        "Prophylaxe" => "prophylaxe",
        "Füllung" => "fuellung",
        "Endodontie" => "endodontie",
        "Parodontologie" => "parodontologie",
        "Chirurgie" => "chirurgie",
        "Implantologie" => "implantologie",
        "Prothetik" => "prothetik",
        "Kieferorthopädie" => "kieferorthopaedie",
        "Ästhetik" => "aesthetik",
        "Material/Labor" => "material_labor",
        _ => "unklassifiziert",
    }
}

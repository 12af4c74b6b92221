//! „Über“: the dialog that says which version runs, where its ledger, logs
//! and settings are, and under which licences the bundled fonts and crates
//! are shipped.
//!
//! The crate list is `assets/licenses/crates.tsv`, written by
//! `packaging/licenses.sh` from `cargo metadata` and checked against
//! `Cargo.lock` by `tests/licenses.rs`; the font licence texts beside it are
//! installed with the program (`/usr/share/doc/…`, `licenses\` on Windows).

use std::collections::BTreeMap;
use std::path::Path;

use super::i18n::Lang;
use super::state::Model;

/// The program's version, as `--version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every crate built into the program: `crate`, `version`, `license` per
/// line after a header.
const CRATES_TSV: &str = include_str!("../../assets/licenses/crates.tsv");

/// A font egui bundles into the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FontLicence {
    /// The font's name.
    pub font: &'static str,
    /// What it is used for on screen.
    pub used_for: (&'static str, &'static str),
    /// Its licence.
    pub licence: &'static str,
    /// The licence text's file under `licenses/fonts/`.
    pub file: &'static str,
}

/// The fonts of `epaint_default_fonts` (egui's default fonts).
pub const FONTS: [FontLicence; 4] = [
    FontLicence {
        font: "Ubuntu Light",
        used_for: ("Text", "text"),
        licence: "Ubuntu Font Licence 1.0",
        file: "UFL.txt",
    },
    FontLicence {
        font: "Hack",
        used_for: ("Festbreitenschrift", "monospace"),
        licence: "MIT, Bitstream Vera License",
        file: "Hack-Regular.txt",
    },
    FontLicence {
        font: "Noto Emoji",
        used_for: ("Symbole", "symbols"),
        licence: "SIL Open Font License 1.1",
        file: "OFL.txt",
    },
    FontLicence {
        font: "emoji-icon-font",
        used_for: ("Symbole", "symbols"),
        licence: "MIT",
        file: "emoji-icon-font-mit-license.txt",
    },
];

/// One crate built into the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrateLicence {
    /// The crate's name.
    pub name: &'static str,
    /// Its version.
    pub version: &'static str,
    /// Its SPDX licence expression.
    pub licence: &'static str,
}

/// Every crate built into the program, by name.
pub fn crate_licences() -> Vec<CrateLicence> {
    CRATES_TSV
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cells = line.split('\t');
            Some(CrateLicence {
                name: cells.next()?,
                version: cells.next()?,
                licence: cells.next()?,
            })
        })
        .collect()
}

/// How many crates each licence expression covers, the most common first.
pub fn licence_counts(crates: &[CrateLicence]) -> Vec<(&'static str, usize)> {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for krate in crates {
        *counts.entry(krate.licence).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
}

/// Whether the dialog is open (drawing state; Esc closes it).
#[derive(Debug, Default)]
pub struct AboutView {
    /// Whether „Über“ is shown.
    pub open: bool,
}

/// Draws the dialog while it is open.
pub fn about_ui(ui: &mut egui::Ui, model: &Model, view: &mut AboutView) {
    if !view.open {
        return;
    }
    let lang = model.lang();
    let modal = egui::Modal::new(egui::Id::unique("about")).show(ui.ctx(), |ui| {
        ui.set_max_width(620.0);
        // The bundled fonts have no arrow; the top bar writes the name so too.
        ui.heading("Ivoris-HubSpot-Sync");
        ui.label(format!("{} {VERSION}", lang.pick("Version", "Version")));
        ui.add_space(8.0);
        paths_ui(ui, model);
        ui.add_space(8.0);
        ui.label(format!(
            "{} {}",
            lang.pick("Lizenz des Programms:", "Licence of the program:"),
            env!("CARGO_PKG_LICENSE")
        ));
        ui.add_space(8.0);
        fonts_ui(ui, lang);
        ui.add_space(8.0);
        crates_ui(ui, lang);
        ui.add_space(8.0);
        ui.weak(lang.pick(
            "Die Lizenztexte liegen bei der Installation im Ordner „licenses“ \
             (Linux: /usr/share/doc/ivoris-hubspot-sync).",
            "The licence texts are installed in the folder \"licenses\" \
             (Linux: /usr/share/doc/ivoris-hubspot-sync).",
        ));
        ui.add_space(8.0);
        if ui.button(lang.pick("Schließen", "Close")).clicked() {
            view.open = false;
        }
    });
    if modal.should_close() {
        view.open = false;
    }
}

/// Ledger, logs and settings: where support and backups look.
fn paths_ui(ui: &mut egui::Ui, model: &Model) {
    let lang = model.lang();
    let shown = |path: Option<&Path>| {
        path.map_or_else(|| "–".to_owned(), |path| path.display().to_string())
    };
    egui::Grid::new("about_paths")
        .num_columns(2)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            ui.label(lang.pick("Ledger", "Ledger"));
            match &model.info {
                Some(info) => ui.label(info.ledger_path.display().to_string()),
                None => ui.weak(lang.pick("wird ermittelt …", "being determined …")),
            };
            ui.end_row();
            ui.label(lang.pick("Protokolldateien", "Log files"));
            ui.label(shown(model.logs_dir.as_deref()));
            ui.end_row();
            ui.label(lang.pick("Einstellungen", "Settings"));
            ui.label(shown(model.settings_path.as_deref()));
            ui.end_row();
        });
}

/// The bundled fonts and their licences.
fn fonts_ui(ui: &mut egui::Ui, lang: Lang) {
    ui.strong(lang.pick("Mitgelieferte Schriften", "Bundled fonts"));
    egui::Grid::new("about_fonts")
        .num_columns(3)
        .spacing([12.0, 2.0])
        .show(ui, |ui| {
            for font in FONTS {
                ui.label(font.font);
                ui.weak(lang.pick(font.used_for.0, font.used_for.1));
                ui.label(font.licence);
                ui.end_row();
            }
        });
}

/// The crates by licence, and the whole list on demand.
fn crates_ui(ui: &mut egui::Ui, lang: Lang) {
    let crates = crate_licences();
    ui.strong(format!(
        "{} ({})",
        lang.pick("Verwendete Bibliotheken", "Libraries used"),
        lang.number(crates.len() as u64)
    ));
    let summary = licence_counts(&crates)
        .into_iter()
        .take(4)
        .map(|(licence, count)| format!("{licence}: {}", lang.number(count as u64)))
        .collect::<Vec<_>>()
        .join(" · ");
    ui.weak(summary);
    egui::CollapsingHeader::new(lang.pick("Alle Bibliotheken", "All libraries"))
        .id_salt("about_crates")
        .show(ui, |ui| {
            let row_height = ui.text_style_height(&egui::TextStyle::Body);
            egui::ScrollArea::vertical()
                .max_height(220.0)
                .auto_shrink([false, true])
                .show_rows(ui, row_height, crates.len(), |ui, rows| {
                    for krate in &crates[rows] {
                        ui.label(format!(
                            "{} {} — {}",
                            krate.name, krate.version, krate.licence
                        ));
                    }
                });
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_crate_line_has_a_name_version_and_licence() {
        let crates = crate_licences();
        assert!(crates.len() > 100, "the list is read");
        assert!(
            crates
                .iter()
                .all(|c| !c.name.is_empty() && !c.version.is_empty() && !c.licence.is_empty())
        );
        assert!(crates.iter().any(|c| c.name == "egui"));
    }

    #[test]
    fn licence_counts_put_the_most_common_first() {
        let crates = [
            CrateLicence {
                name: "a",
                version: "1",
                licence: "MIT",
            },
            CrateLicence {
                name: "b",
                version: "1",
                licence: "Zlib",
            },
            CrateLicence {
                name: "c",
                version: "1",
                licence: "Zlib",
            },
        ];
        assert_eq!(licence_counts(&crates), vec![("Zlib", 2), ("MIT", 1)]);
    }
}

//! The left navigation: one entry per view, the chosen one highlighted.
//! At the bottom: „Über“ (version, paths, licences).

use super::state::{Intent, Model, Panel};

/// Draws the navigation.
pub fn nav_ui(ui: &mut egui::Ui, model: &Model) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    ui.add_space(8.0);
    for panel in Panel::ALL {
        let text = egui::RichText::new(panel.title(lang)).size(15.0);
        let selected = model.ui.panel == panel;
        let response = ui.add_sized(
            [ui.available_width(), 30.0],
            egui::Button::selectable(selected, text),
        );
        if response.clicked() && !selected {
            intents.push(Intent::Navigate(panel));
        }
        if panel == Panel::Queue || panel == Panel::Dashboard {
            ui.separator();
        }
    }
    ui.with_layout(egui::Layout::bottom_up(egui::Align::Min), |ui| {
        ui.add_space(6.0);
        let about = ui
            .add_sized(
                [ui.available_width(), 26.0],
                egui::Button::new(format!(
                    "{} · {}",
                    lang.pick("Über", "About"),
                    super::about::VERSION
                ))
                .frame(false),
            )
            .on_hover_text(lang.pick(
                "Version, Ablageorte und Lizenzen",
                "Version, locations and licences",
            ));
        if about.clicked() {
            intents.push(Intent::ShowAbout);
        }
    });
    intents
}

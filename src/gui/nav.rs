//! The left navigation: one entry per view, the chosen one highlighted.
//! The view that a later version fills (Import) is marked as such.

use super::app::{Intent, Model, Panel};

/// Draws the navigation.
pub fn nav_ui(ui: &mut egui::Ui, model: &Model) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    ui.add_space(8.0);
    for panel in Panel::ALL {
        let later = panel == Panel::Import;
        let mut text = egui::RichText::new(panel.title(lang)).size(15.0);
        if later {
            text = text.weak();
        }
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
    intents
}

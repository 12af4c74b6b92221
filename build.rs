//! Build script: for Windows targets, embeds the icon (`assets/icon.ico`)
//! and the version info as the exe's resources, with MinGW's `windres` when
//! cross-compiling from Linux. For every other target it does nothing.

use std::io;

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=assets/icon.ico");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return Ok(());
    }
    let mut resource = winresource::WindowsResource::new();
    resource
        .set_icon("assets/icon.ico")
        .set("ProductName", "Ivoris → HubSpot Sync")
        .set(
            "FileDescription",
            "Ivoris → HubSpot Sync: Praxisdaten nach HubSpot / practice data to HubSpot",
        )
        .set("InternalName", "ivoris-hubspot-sync")
        .set("OriginalFilename", "ivoris-hubspot-sync.exe");
    // Only the app itself carries the resources, not test and bench binaries.
    resource.compile_for("ivoris-hubspot-sync")
}

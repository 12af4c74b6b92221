//! Windows only: the exe is a GUI-subsystem program (no console window
//! opens when the app is started from the start menu), so a command typed
//! in `cmd` or PowerShell would print nowhere. Attaching to the console of
//! the parent process, when there is one, makes `--version`, `sync`,
//! `status` and the logs on stderr appear there. Output already redirected
//! to a file or pipe keeps its handles.

use windows_sys::Win32::System::Console::{ATTACH_PARENT_PROCESS, AttachConsole};

/// Attaches to the parent's console; without one (Explorer, start menu,
/// task scheduler) nothing happens.
pub fn attach_parent() {
    // SAFETY: AttachConsole has no preconditions; it fails harmlessly when
    // there is no parent console or one is attached already.
    unsafe {
        AttachConsole(ATTACH_PARENT_PROCESS);
    }
}

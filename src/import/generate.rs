//! Test exports (written later in this change).

//! drainit's own failures before the child runs, each with the exit code the contract fixes
//! (point 6): 127 command not found, 126 not executable, 2 usage, 1 anything else. After the
//! spawn there are no fatal errors: the event loop logs and carries on.

use std::fmt;

#[derive(Debug)]
pub struct Fatal {
    pub code: u8,
    pub message: String,
}

impl Fatal {
    pub const USAGE: u8 = 2;
    pub const OTHER: u8 = 1;
    pub const NOT_EXECUTABLE: u8 = 126;
    pub const NOT_FOUND: u8 = 127;

    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Fatal {
            code,
            message: message.into(),
        }
    }

    pub fn other(message: impl Into<String>) -> Self {
        Fatal::new(Fatal::OTHER, message)
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

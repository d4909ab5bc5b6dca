//! The child's wait status turned into drainit's exit status: the exit code, or 128+N when
//! signal N killed it (the shell's convention, which orchestrators read), then `--remap-exit`.
//! Pure, so every corner is unit-tested.

/// What waitpid(2) told us about a process that ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ended {
    Exited(u8),
    Signaled(i32),
}

impl Ended {
    /// Decode a raw wait status (`WIFEXITED`/`WIFSIGNALED`); `None` for stop/continue reports.
    pub fn from_raw(status: i32) -> Option<Ended> {
        if libc::WIFEXITED(status) {
            Some(Ended::Exited((libc::WEXITSTATUS(status) & 0xff) as u8))
        } else if libc::WIFSIGNALED(status) {
            Some(Ended::Signaled(libc::WTERMSIG(status)))
        } else {
            None
        }
    }

    /// 0..=255: the exit code, or 128+N for signal N (capped at 255: RT signals over 127 fold).
    pub fn code(self) -> u8 {
        match self {
            Ended::Exited(c) => c,
            Ended::Signaled(n) => u8::try_from(128 + n.clamp(0, 127)).unwrap_or(255),
        }
    }
}

/// Apply `--remap-exit`: the last pair whose FROM matches wins; others pass through.
pub fn remap(code: u8, table: &[(u8, u8)]) -> u8 {
    table
        .iter()
        .rev()
        .find(|(from, _)| *from == code)
        .map_or(code, |(_, to)| *to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_pass_through_unchanged() {
        for c in 0..=255u8 {
            assert_eq!(Ended::Exited(c).code(), c);
        }
    }

    #[test]
    fn signals_fold_to_128_plus_n() {
        assert_eq!(Ended::Signaled(15).code(), 143);
        assert_eq!(Ended::Signaled(9).code(), 137);
        assert_eq!(Ended::Signaled(64).code(), 192);
    }

    #[test]
    fn raw_statuses_decode_like_the_macros_say() {
        assert_eq!(Ended::from_raw(3 << 8), Some(Ended::Exited(3)));
        assert_eq!(Ended::from_raw(15), Some(Ended::Signaled(15)));
        assert_eq!(Ended::from_raw(9 | 0x80), Some(Ended::Signaled(9)));
        // A stopped report (WIFSTOPPED: 0x7f in the low byte) is not an ending.
        assert_eq!(Ended::from_raw((19 << 8) | 0x7f), None);
    }

    #[test]
    fn remap_applies_the_last_matching_pair_only() {
        let t = [(143, 0), (1, 2), (143, 7)];
        assert_eq!(remap(143, &t), 7);
        assert_eq!(remap(1, &t), 2);
        assert_eq!(remap(0, &t), 0);
        assert_eq!(remap(5, &[]), 5);
    }
}

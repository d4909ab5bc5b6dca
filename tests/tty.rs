//! The terminal (contract, point 1): with a controlling terminal on stdin (`docker run -it`),
//! the child's process group is the terminal's foreground group, so Ctrl-C and Ctrl-Z reach
//! the app straight from the terminal, without drainit forwarding anything.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

#[test]
fn ctrl_c_and_ctrl_z_on_the_terminal_reach_the_child_directly() {
    for pid1 in [true, false] {
        let mut d = drainit(["-v"])
            .pid1(pid1)
            .tty()
            .arg(example("print-signals"))
            .args(["--exit-on", "INT:0"])
            .start();
        d.wait_stdout("ready");
        let child = d.child();
        let st = stat(child).unwrap();
        assert_eq!(
            st.tpgid, child,
            "the child's group is the terminal's foreground group"
        );
        // The terminal echoes the key (`^C`) just before the line print-signals writes.
        d.type_keys(b"\x1a");
        d.wait_for_stdout_line(|l| l.ends_with("SIGTSTP"), DEADLINE);
        d.type_keys(b"\x03");
        d.wait_for_stdout_line(|l| l.ends_with("SIGINT"), DEADLINE);
        assert_eq!(d.wait_exit(), 0, "pid1={pid1}\n{}", d.stdout());
        let log = d.stdout();
        assert!(
            !log.contains("forwarding SIGINT") && !log.contains("forwarding SIGTSTP"),
            "drainit got the terminal's signals itself:\n{log}"
        );
    }
}

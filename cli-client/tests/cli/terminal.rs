//! The live view in a pseudo-terminal: drawing, widths, Ctrl-C and re-attach.

use std::time::Duration;

use moai_tests::fake_llm::Script;
use moai_tests::server::TestServer;

use crate::support::{Moai, Pty, ShowsCursor, headers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_draws_and_finishes_cleanly_on_wide_and_narrow_terminals() {
    let ts = TestServer::spawn().await;
    let slow = Script::new()
        .first_token_delay(Duration::from_millis(200))
        .token_pace(Duration::from_millis(20))
        .text("## Plan\n\n- first step\n- second step\n\n```rust\nfn main() {}\n```\n");
    ts.llm.script("v/slow", slow);
    ts.llm
        .script("v/quick", Script::new().text("Quick **answer**."));
    ts.llm.script("v/broken", Script::new().fail(503));
    let moai = Moai::for_server(&ts);
    moai.ok(&["project", "create", "live", "-m", "v/slow,v/quick,v/broken"])
        .await;

    for cols in [120u16, 40] {
        let args = ["open", "Plan it"];
        let (code, drawn) = {
            let moai = &moai;
            tokio::task::block_in_place(|| Pty::spawn(moai, &args, cols).finish())
        };
        if std::env::var_os("MOAI_TEST_SHOW").is_some() {
            eprintln!("{drawn}");
        }
        assert_eq!(code, 0, "{cols} cols: {drawn}");
        assert!(
            drawn.contains("\x1b[?25l") && drawn.shows_cursor_at_the_end(),
            "{drawn}"
        );
        let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
        let shown = frames.iter().filter(|f| drawn.contains(*f)).count();
        assert!(shown >= 2, "{cols} cols: the spinner animates: {drawn}");
        assert!(
            drawn.contains("first step") && drawn.contains("fn main() {}"),
            "{drawn}"
        );
        assert!(drawn.contains("✓") && drawn.contains("✗"), "{drawn}");
        assert!(drawn.contains("v/broken"), "{drawn}");
        assert!(drawn.contains("2 of 3 models answered"), "{drawn}");
        assert!(!drawn.contains("panicked"), "{drawn}");
        let plain = console::strip_ansi_codes(&drawn);
        let too_wide = plain
            .lines()
            // A carriage return starts the line again: what follows the last one shows.
            .filter_map(|l| l.trim_end_matches('\r').rsplit('\r').next())
            .find(|l| unicode_width::UnicodeWidthStr::width(*l) > usize::from(cols));
        assert_eq!(
            too_wide, None,
            "{cols} cols: a line is wider than the terminal"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_detaches_and_watch_re_attaches_to_the_same_run() {
    let ts = TestServer::spawn().await;
    let slow = Script::new()
        .first_token_delay(Duration::from_millis(3_000))
        .text("Worth the wait.");
    ts.llm.script("v/slow", slow);
    let moai = Moai::for_server(&ts);
    moai.ok(&["project", "create", "patience", "-m", "v/slow"])
        .await;

    let (code, drawn) = tokio::task::block_in_place(|| {
        let mut pty = Pty::spawn(&moai, &["open", "Take your time"], 100);
        pty.wait_for("v/slow", Duration::from_secs(10));
        pty.send(b"\x03");
        pty.finish()
    });

    assert_eq!(code, 130, "{drawn}");
    assert!(
        drawn.contains("Detached; the run goes on on the server"),
        "{drawn}"
    );
    assert!(drawn.shows_cursor_at_the_end(), "{drawn}");
    let too_wide = console::strip_ansi_codes(&drawn)
        .lines()
        .filter(|l| l.contains("Detached") || l.contains("moai "))
        .find(|l| unicode_width::UnicodeWidthStr::width(l.trim_end_matches('\r')) > 100)
        .map(str::to_string);
    assert_eq!(too_wide, None, "the detach hint fits the terminal");
    let hint = console::strip_ansi_codes(&drawn).into_owned();
    let watch = hint
        .split("Re-attach: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("a watch command")
        .to_string();
    let args: Vec<&str> = watch.split_whitespace().skip(1).collect();
    assert_eq!(args.first(), Some(&"watch"), "{watch}");

    let run = moai.ok(&args).await;
    assert_eq!(headers(&run.stdout), ["v/slow"], "{run:?}");
    assert!(run.stdout.contains("Worth the wait."), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_pages_a_long_discussion_through_the_pager() {
    let long: String = (1..=40).map(|i| format!("- point {i}\n")).collect();
    let ts = TestServer::spawn().await;
    ts.llm.script("v/long", Script::new().text(long));
    let moai = Moai::for_server(&ts);
    moai.ok(&["project", "create", "long", "-m", "v/long"])
        .await;
    moai.ok(&["open", "Tell me everything"]).await;

    let (code, drawn) = tokio::task::block_in_place(|| {
        let env = [("MOAI_PAGER", "sed s/^/paged:/")];
        Pty::spawn_with_env(&moai, &["show"], 80, &env).finish()
    });

    assert_eq!(code, 0, "{drawn}");
    assert!(
        drawn.contains("paged:") && drawn.contains("point 40"),
        "{drawn}"
    );
}

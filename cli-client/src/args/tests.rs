//! Parsing examples: aliases, global flags, `ask @model`, bounds.

use std::path::PathBuf;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("moai").chain(args.iter().copied()))
}

fn ask(args: &[&str]) -> (String, String) {
    match parse(args).expect("parses").command {
        Command::Ask(a) => a.target(),
        other => panic!("not ask: {other:?}"),
    }
}

#[test]
fn the_command_tree_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

#[test]
fn ask_accepts_at_model_and_bare_model() {
    assert_eq!(
        ask(&["ask", "@gpt", "hello", "there"]),
        ("gpt".into(), "hello there".into())
    );
    assert_eq!(
        ask(&["ask", "openai/gpt-4o", "hi"]),
        ("openai/gpt-4o".into(), "hi".into())
    );
    assert_eq!(
        ask(&["ask", "@claude what now?"]),
        ("claude".into(), "what now?".into())
    );
}

#[test]
fn ask_takes_dashes_after_a_double_dash() {
    assert_eq!(
        ask(&["ask", "@m", "--", "is", "-1", "--odd?"]).1,
        "is -1 --odd?"
    );
}

#[test]
fn global_flags_go_anywhere() {
    let cli = parse(&["open", "why?", "--json", "--project", "p1"]).expect("parses");
    assert!(cli.global.json);
    assert_eq!(cli.global.project.as_deref(), Some("p1"));
}

#[test]
fn create_takes_repeated_and_comma_separated_models() {
    let cli =
        parse(&["project", "create", "x", "-m", "a/b,c/d", "--model", "e/f"]).expect("parses");
    match cli.command {
        Command::Project(ProjectCommand::Create(c)) => {
            assert_eq!(c.models, ["a/b", "c/d", "e/f"])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn create_requires_a_model() {
    assert!(parse(&["project", "create", "x"]).is_err());
}

#[test]
fn rounds_are_bounded() {
    assert!(parse(&["discuss", "--rounds", "0", "t"]).is_err());
    assert!(parse(&["discuss", "--rounds", "11", "t"]).is_err());
    let cli = parse(&["discuss", "--rounds", "2", "a", "topic"]).expect("parses");
    match cli.command {
        Command::Discuss(d) => {
            assert_eq!(d.rounds, Some(2));
            assert_eq!(join_words(&d.topic), "a topic");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn export_formats_and_output() {
    let cli = parse(&["export", "-f", "json", "-o", "x.json"]).expect("parses");
    match cli.command {
        Command::Export(e) => {
            assert_eq!(e.format, ExportFormatArg::Json);
            assert_eq!(e.output, Some(PathBuf::from("x.json")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn aliases_work() {
    assert!(matches!(
        parse(&["project", "ls"]).expect("ls").command,
        Command::Project(ProjectCommand::List)
    ));
    assert!(matches!(
        parse(&["o", "q"]).expect("o").command,
        Command::Open(_)
    ));
}

#[test]
fn typo_tips_name_real_commands_not_one_letter_aliases() {
    let tip = |typed: &str| {
        let err = Cli::try_parse_from(["moai", typed]).expect_err("unknown");
        super::tidy_suggestions(err).to_string()
    };
    let far = tip("frobnicate");
    assert!(!far.contains("similar"), "{far}");
    let near = tip("projct");
    assert!(near.contains("'project'"), "{near}");
    assert!(!near.contains("'o'"), "{near}");
}

//! `leaklab`: run the task-leak patterns and see leakfree's verdict on each.
//!
//! ```text
//! leaklab [MODE] [-n N] [--linger DURATION]
//! ```
//!
//! Without a MODE it runs `demo`: every leak followed by its fix. See
//! [`leakfree_examples::leaklab`] for what each mode does.

use std::process::ExitCode;
use std::time::Duration;

use leakfree_examples::leaklab::{self, Counts, Mode, ModeOutcome};

const USAGE: &str = "\
usage: leaklab [MODE] [-n N] [--linger DURATION]

Runs tokio's classic task-leak patterns inside a leakfree scope and prints the
live task counts and leakfree's verdict.

MODE (default: demo)
  demo          leak-recv, fix-recv, leak-send, fix-send, leak-ticker, fix-ticker in turn
  leak-recv     workers wait for jobs on queues they keep open themselves
  fix-recv      ... and also watch the caller's stop token
  leak-send     workers block reporting progress that nobody reads
  fix-send      ... and give up when the caller stops them
  leak-ticker   ticker loops with no way out
  fix-ticker    ticker loops that stop on the caller's signal

OPTIONS
  -n N                   workers per mode (default 3)
  --linger DURATION      how long the caller works before returning (default 80ms);
                         units ns, us, ms, s, m: 80ms, 1s, 500us
  -h, --help             this text

Exit status: demo 0; a single mode 1 when leakfree found a leak, 0 when clean;
2 for bad arguments.";

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selection {
    Demo,
    One(Mode),
}

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Run {
        selection: Selection,
        tasks: usize,
        linger: Duration,
    },
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut selection = None;
    let mut tasks = leaklab::DEFAULT_TASKS;
    let mut linger = leaklab::DEFAULT_LINGER;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg.starts_with('-') && arg.len() > 1 {
            // `-n 3`, `-n=3`, `--linger 80ms`, `--linger=80ms`; one or two
            // dashes, as Go's flag package also takes them.
            let flag = arg.trim_start_matches('-');
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (flag, None),
            };
            let mut value = |what: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("`{arg}` needs a value: {what}"))
            };
            match name {
                "h" | "help" => return Ok(Command::Help),
                "n" | "tasks" => {
                    let text = value("-n N, a number of workers, at least 1")?;
                    tasks = match text.parse::<usize>() {
                        Ok(n) if n > 0 => n,
                        _ => {
                            return Err(format!(
                                "bad -n `{text}`: expected a number of workers, at least 1"
                            ));
                        }
                    };
                }
                "linger" => {
                    let text = value("--linger DURATION, like 80ms, 1s, 500us")?;
                    linger =
                        leaklab::parse_duration(&text).map_err(|e| format!("--linger: {e}"))?;
                }
                "mode" => {
                    let text = value("--mode MODE")?;
                    selection = Some(parse_selection(&text)?);
                }
                _ => {
                    return Err(format!(
                        "unknown flag `{arg}`: valid flags are -n N, --linger DURATION, --help"
                    ));
                }
            }
        } else {
            if selection.is_some() {
                return Err(format!("unexpected `{arg}`: give one MODE at most"));
            }
            selection = Some(parse_selection(&arg)?);
        }
    }
    Ok(Command::Run {
        selection: selection.unwrap_or(Selection::Demo),
        tasks,
        linger,
    })
}

fn parse_selection(text: &str) -> Result<Selection, String> {
    if text == "demo" {
        return Ok(Selection::Demo);
    }
    text.parse::<Mode>()
        .map(Selection::One)
        .map_err(|e| format!("{e}, or demo"))
}

fn human(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{}s", duration.as_secs_f64())
    } else if duration >= Duration::from_millis(1) && duration.subsec_micros() % 1000 == 0 {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}us", duration.as_micros())
    }
}

fn counts_line(label: &str, counts: Counts) -> String {
    format!(
        "   {label:<7} {} tracked, {} alive on the runtime",
        counts.tracked, counts.runtime
    )
}

fn print_outcome(outcome: &ModeOutcome) {
    let mode = outcome.mode;
    println!(
        "== {mode} (-n {}, linger {}): {}",
        outcome.tasks,
        human(outcome.linger),
        mode.summary()
    );
    println!("{}", counts_line("before:", outcome.before));
    println!(
        "{}   (the caller's work is done; it returns next)",
        counts_line("during:", outcome.during)
    );
    let aborted = outcome.report.aborted();
    let note = if aborted > 0 {
        format!("   (leakfree aborted {aborted})")
    } else {
        String::new()
    };
    println!("{}{note}", counts_line("after:", outcome.after));
    println!("{}", outcome.report);
    println!();
}

async fn run(selection: Selection, tasks: usize, linger: Duration) -> ExitCode {
    match selection {
        Selection::One(mode) => {
            let outcome = leaklab::run_mode(mode, tasks, linger).await;
            print_outcome(&outcome);
            if outcome.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Selection::Demo => {
            let mut leaks = 0;
            let mut clean_fixes = 0;
            for mode in Mode::ALL {
                let outcome = leaklab::run_mode(mode, tasks, linger).await;
                print_outcome(&outcome);
                if !mode.is_fix() && !outcome.is_clean() {
                    leaks += 1;
                }
                if mode.is_fix() && outcome.is_clean() {
                    clean_fixes += 1;
                }
            }
            println!(
                "demo: leakfree caught and stopped {leaks} of 3 leaking modes; {clean_fixes} of 3 fixed modes clean"
            );
            // The demo leaks on purpose: that is a success.
            ExitCode::SUCCESS
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Run {
            selection,
            tasks,
            linger,
        }) => run(selection, tasks, linger).await,
        Err(message) => {
            eprintln!("leaklab: {message}\n(run `leaklab --help` for usage)");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_to_demo() {
        assert_eq!(
            parse(&[]),
            Ok(Command::Run {
                selection: Selection::Demo,
                tasks: 3,
                linger: Duration::from_millis(80),
            })
        );
    }

    #[test]
    fn takes_go_and_gnu_style_flags() {
        let expected = Ok(Command::Run {
            selection: Selection::One(Mode::FixSend),
            tasks: 2000,
            linger: Duration::from_millis(60),
        });
        assert_eq!(
            parse(&["fix-send", "-n", "2000", "--linger", "60ms"]),
            expected
        );
        assert_eq!(
            parse(&["-mode=fix-send", "-n=2000", "-linger=60ms"]),
            expected
        );
    }

    #[test]
    fn rejects_bad_input_naming_the_choices() {
        assert!(
            parse(&["leak-foo"])
                .unwrap_err()
                .contains("leak-recv, fix-recv")
        );
        assert!(parse(&["-n", "0"]).unwrap_err().contains("at least 1"));
        assert!(parse(&["-n"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--linger", "80"]).unwrap_err().contains("80ms"));
        assert!(parse(&["--bogus"]).unwrap_err().contains("--linger"));
        assert!(parse(&["leak-recv", "fix-recv"]).is_err());
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
    }
}

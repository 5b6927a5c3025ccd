//! `eventbus`: a pub/sub bus closed leakily and correctly, and leakfree's
//! verdict on each, taken after the close.
//!
//! ```text
//! eventbus [--topics N] [--subscribers N] [--close leaky|correct|both]
//! ```
//!
//! See [`leakfree_examples::eventbus`] for the bus and its two closes.

use std::process::ExitCode;

use leakfree_examples::eventbus::{self, Checked, Close};

const USAGE: &str = "\
usage: eventbus [--topics N] [--subscribers N] [--close leaky|correct|both]

Runs a pub/sub bus inside a leakfree scope: subscribes N workers to each
topic, publishes one event per topic, waits until every worker handled it,
closes the bus, and only then lets leakfree judge what is left.

OPTIONS
  --topics N        topics (default 5)
  --subscribers N   subscriptions per topic (default 1026, the Go story's count)
  --close WHICH     leaky: close_leaky() only; correct: close() only;
                    both (default): the leaky close, then the correct one
  -h, --help        this text

Exit status: both 0 when the leaky close leaked and the correct one was
clean; a single close 1 when leakfree found a leak, 0 when clean; 2 for bad
arguments.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Options {
    topics: usize,
    subscribers: usize,
    closes: &'static [Close],
}

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Run(Options),
}

fn parse_count(flag: &str, value: Option<String>) -> Result<usize, String> {
    let value = value.ok_or_else(|| format!("`{flag}` needs a value: a number, at least 1"))?;
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "bad value `{value}` for `{flag}`: a number, at least 1"
        )),
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        topics: 5,
        subscribers: 1026,
        closes: &[Close::Leaky, Close::Correct],
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match flag.trim_start_matches('-') {
            "h" | "help" => return Ok(Command::Help),
            "topics" => options.topics = parse_count(&flag, value())?,
            "subscribers" => options.subscribers = parse_count(&flag, value())?,
            "close" => {
                options.closes = match value().as_deref() {
                    Some("leaky") => &[Close::Leaky],
                    Some("correct") => &[Close::Correct],
                    Some("both") => &[Close::Leaky, Close::Correct],
                    Some(other) => {
                        return Err(format!(
                            "bad value `{other}` for `--close`: leaky, correct or both"
                        ));
                    }
                    None => return Err("`--close` needs a value: leaky, correct or both".into()),
                }
            }
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    Ok(Command::Run(options))
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("eventbus: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut as_expected = true;
    let mut leaked = false;
    for (i, &close) in options.closes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let checked = eventbus::scenario(close, options.topics, options.subscribers).await;
        print_run(close, &options, &checked);
        let clean = checked.report.is_clean();
        leaked |= !clean;
        as_expected &= clean == (close == Close::Correct);
    }
    let ok = if options.closes.len() > 1 {
        as_expected
    } else {
        !leaked
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_run(close: Close, options: &Options, checked: &Checked<u64>) {
    println!(
        "== {}: {} topics x {} subscribers, one event per topic",
        close.name(),
        options.topics,
        options.subscribers
    );
    println!("   handled {} events", checked.value);
    println!(
        "   running right before the close: {} tasks (either close looks the same here)",
        checked.running_before_close
    );
    println!("{}", checked.report);
    if !checked.report.is_clean() {
        let by_topic = eventbus::leaks_by_topic(&checked.report)
            .into_iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!("   leaked per topic (from the tasks' names): {by_topic}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn arguments() {
        let Ok(Command::Run(defaults)) = parse(&[]) else {
            panic!("no arguments run the default")
        };
        assert_eq!((defaults.topics, defaults.subscribers), (5, 1026));
        assert_eq!(defaults.closes, &[Close::Leaky, Close::Correct]);
        let Ok(Command::Run(options)) =
            parse(&["--topics", "2", "-subscribers=3", "--close=correct"])
        else {
            panic!("valid arguments")
        };
        assert_eq!((options.topics, options.subscribers), (2, 3));
        assert_eq!(options.closes, &[Close::Correct]);
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert!(
            parse(&["--topics", "0"])
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(parse(&["--topics"]).unwrap_err().contains("needs a value"));
        assert!(
            parse(&["--close", "x"])
                .unwrap_err()
                .contains("leaky, correct or both")
        );
        assert!(parse(&["--what"]).unwrap_err().contains("`--what`"));
    }
}

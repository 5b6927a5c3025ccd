//! The one duration grammar leakfree accepts: the attribute's `grace` (checked
//! at compile time, by evaluating [`parse`] in a constant the macro emits) and
//! the `LEAKFREE_GRACE` variable (checked when the first scope starts) read
//! the same strings, because both call this function.
//!
//! A duration is `<digits>[.<digits>]<unit>` with the unit `us`, `ms` or `s`,
//! a whole number of nanoseconds, at most `u64::MAX` nanoseconds: `500us`,
//! `250ms`, `2s`, `1.5s`, `0.25ms`. Nothing else: no sign, no spaces, no
//! exponent, no `µs`, no `.5s` or `1.s`.
//!
//! It is a `const fn` so that the macro's check and the run-time check are not
//! two parsers that can drift apart.

use std::time::Duration;

/// The accepted forms, as error messages list them.
macro_rules! accepted {
    () => {
        "a number and a unit: `500us`, `250ms`, `2s`, `1.5s`"
    };
}
pub(crate) const ACCEPTED: &str = accepted!();

/// Why a text is not a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationError {
    /// No `us`, `ms` or `s` at the end.
    NoUnit,
    /// Not `<digits>[.<digits>]` before the unit.
    NotANumber,
    /// More than `u64::MAX` nanoseconds (about 584 years).
    TooLarge,
    /// A fraction finer than a nanosecond.
    FinerThanNanosecond,
}

/// One error text per reason, whole at compile time (a constant's panic
/// message cannot be formatted).
macro_rules! reasons {
    ($($variant:ident => $reason:literal,)*) => {
        impl DurationError {
            /// What is wrong, in a few words.
            pub(crate) const fn reason(self) -> &'static str {
                match self {
                    $(DurationError::$variant => $reason,)*
                }
            }

            /// The message of the compile error a bad duration in the
            /// attribute gets.
            pub(crate) const fn compile_error(self) -> &'static str {
                match self {
                    $(DurationError::$variant => concat!(
                        "leakfree: not a duration: ", $reason, "; write ", accepted!()
                    ),)*
                }
            }
        }
    };
}

reasons! {
    NoUnit => "the unit (`us`, `ms` or `s`) is missing",
    NotANumber => "the number is not digits with an optional `.` fraction",
    TooLarge => "too large (at most about 584 years)",
    FinerThanNanosecond => "finer than a nanosecond",
}

/// Parses a duration of the grammar above.
pub(crate) const fn parse(text: &str) -> Result<Duration, DurationError> {
    let bytes = text.as_bytes();
    let len = bytes.len();
    let (number_len, unit_nanos) = if len >= 2 && bytes[len - 2] == b'u' && bytes[len - 1] == b's' {
        (len - 2, 1_000)
    } else if len >= 2 && bytes[len - 2] == b'm' && bytes[len - 1] == b's' {
        (len - 2, 1_000_000)
    } else if len >= 1 && bytes[len - 1] == b's' {
        (len - 1, 1_000_000_000)
    } else {
        return Err(DurationError::NoUnit);
    };
    let mut nanos: u64 = 0;
    let mut index = 0;
    // The whole part: at least one digit.
    while index < number_len && bytes[index].is_ascii_digit() {
        let digit = (bytes[index] - b'0') as u64;
        nanos = match nanos.checked_mul(10) {
            Some(n) => n,
            None => return Err(DurationError::TooLarge),
        };
        nanos = match nanos.checked_add(digit) {
            Some(n) => n,
            None => return Err(DurationError::TooLarge),
        };
        index += 1;
    }
    if index == 0 {
        return Err(DurationError::NotANumber);
    }
    nanos = match nanos.checked_mul(unit_nanos) {
        Some(n) => n,
        None => return Err(DurationError::TooLarge),
    };
    if index == number_len {
        return Ok(Duration::from_nanos(nanos));
    }
    // The fraction: a `.` and at least one digit, each worth a tenth of the
    // one before; the result stays whole nanoseconds.
    if bytes[index] != b'.' || index + 1 == number_len {
        return Err(DurationError::NotANumber);
    }
    index += 1;
    let mut place = unit_nanos;
    while index < number_len {
        if !bytes[index].is_ascii_digit() {
            return Err(DurationError::NotANumber);
        }
        if place % 10 != 0 {
            return Err(DurationError::FinerThanNanosecond);
        }
        place /= 10;
        let digit = (bytes[index] - b'0') as u64;
        nanos = match nanos.checked_add(digit * place) {
            Some(n) => n,
            None => return Err(DurationError::TooLarge),
        };
        index += 1;
    }
    Ok(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one table of cases: the attribute and `LEAKFREE_GRACE` both call
    /// [`parse`], so what holds here holds for both (the attribute's use of
    /// it is checked by the trybuild cases in `tests/ui`, the variable's by
    /// the policy's own tests).
    pub(crate) const CASES: &[(&str, Result<u64, DurationError>)] = &[
        ("500us", Ok(500_000)),
        ("250ms", Ok(250_000_000)),
        ("2s", Ok(2_000_000_000)),
        ("1.5s", Ok(1_500_000_000)),
        ("0.25ms", Ok(250_000)),
        ("0ms", Ok(0)),
        ("1.001us", Ok(1_001)),
        ("18446744073709551615us", Err(DurationError::TooLarge)),
        ("18446744073s", Ok(18_446_744_073_000_000_000)),
        ("1.0001us", Err(DurationError::FinerThanNanosecond)),
        ("", Err(DurationError::NoUnit)),
        ("100", Err(DurationError::NoUnit)),
        ("1m", Err(DurationError::NoUnit)),
        ("1h", Err(DurationError::NoUnit)),
        ("ms", Err(DurationError::NotANumber)),
        ("s", Err(DurationError::NotANumber)),
        ("1.s", Err(DurationError::NotANumber)),
        (".5s", Err(DurationError::NotANumber)),
        ("-1s", Err(DurationError::NotANumber)),
        ("1 s", Err(DurationError::NotANumber)),
        (" 1s", Err(DurationError::NotANumber)),
        ("1e3ms", Err(DurationError::NotANumber)),
        ("1.2.3s", Err(DurationError::NotANumber)),
        ("5µs", Err(DurationError::NotANumber)),
        ("99999999999999999999s", Err(DurationError::TooLarge)),
    ];

    #[test]
    fn the_table_of_cases() {
        for (text, expected) in CASES {
            let parsed = parse(text).map(|d| d.as_nanos() as u64);
            assert_eq!(parsed, *expected, "{text:?}");
        }
    }
}

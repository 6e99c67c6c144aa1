//! A JSON array of users, read as a stream: each element is cut out at its closing brace
//! and decoded like a line, so memory holds one user at a time.

use std::io::BufRead;

use super::batches::{Rows, read_error};
use crate::error::{Error, Result};

/// Where the reader stands between two bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// After `[` (first) or `,`: a user must come (or `]` right after `[`).
    Value { first: bool },
    /// Inside a user object.
    User {
        depth: u32,
        in_string: bool,
        escaped: bool,
    },
    /// After a user: `,` or `]`.
    Next,
    /// After the closing `]`.
    Done,
}

/// Reads the array of `reader` (whose first byte is `start` bytes into the input) into
/// `users`, refusing a user longer than `max_user` bytes; `false` when the consumer left.
pub fn read_array(
    users: &mut Rows<'_>,
    reader: &mut dyn BufRead,
    start: u64,
    max_user: usize,
) -> Result<bool> {
    let mut state = State::Start;
    let (mut line, mut column) = (1u64, 0u64);
    let mut position = start;
    let mut user = Vec::new();
    let (mut user_line, mut user_column, mut user_position) = (0u64, 0u64, 0u64);
    loop {
        let chunk = reader.fill_buf().map_err(read_error(users.name))?;
        if chunk.is_empty() {
            break;
        }
        for &b in chunk {
            position += 1;
            if b == b'\n' {
                line += 1;
                column = 0;
            } else if b & 0xC0 != 0x80 {
                column += 1;
            }
            if let State::User {
                depth,
                in_string,
                escaped,
            } = &mut state
            {
                user.push(b);
                if user.len() > max_user {
                    return Err(users.input_error(
                        user_line,
                        user_column,
                        &format!(
                            "the user is longer than {max_user} bytes (the limit of one user): \
                             a corrupt file?; --max-line-bytes raises the limit"
                        ),
                    ));
                }
                if *in_string {
                    if *escaped {
                        *escaped = false;
                    } else if b == b'\\' {
                        *escaped = true;
                    } else if b == b'"' {
                        *in_string = false;
                    }
                } else {
                    match b {
                        b'"' => *in_string = true,
                        b'{' | b'[' => *depth += 1,
                        b'}' | b']' => *depth -= 1,
                        _ => {}
                    }
                    if *depth == 0 {
                        if !users.push(&user, user_line, user_column, user_position)? {
                            return Ok(false);
                        }
                        state = State::Next;
                    }
                }
                continue;
            }
            if b.is_ascii_whitespace() {
                continue;
            }
            state = match (state, b) {
                (State::Start, b'[') => State::Value { first: true },
                (State::Start, _) => {
                    return Err(users.input_error(line, column, "expected a JSON array of users"));
                }
                (State::Value { first: true }, b']') => State::Done,
                (State::Value { first: false }, b']') => {
                    return Err(users.input_error(
                        line,
                        column,
                        "invalid JSON: trailing comma before the closing ]",
                    ));
                }
                (State::Value { .. }, b'{') => {
                    user.clear();
                    user.push(b);
                    (user_line, user_column, user_position) = (line, column, position - 1);
                    State::User {
                        depth: 1,
                        in_string: false,
                        escaped: false,
                    }
                }
                (State::Value { .. }, _) => {
                    return Err(users.input_error(
                        line,
                        column,
                        "expected a JSON object (one user) in the array",
                    ));
                }
                (State::Next, b',') => State::Value { first: false },
                (State::Next, b']') => State::Done,
                (State::Next, _) => {
                    return Err(users.input_error(
                        line,
                        column,
                        "invalid JSON: expected , or ] after a user",
                    ));
                }
                (State::Done, _) => {
                    return Err(users.input_error(
                        line,
                        column,
                        "invalid JSON: unexpected text after the closing ]",
                    ));
                }
                // Bytes inside a user were taken above.
                (State::User { .. }, _) => {
                    return Err(Error::Internal("the array reader lost its place".into()));
                }
            };
        }
        let consumed = chunk.len();
        reader.consume(consumed);
    }
    if state != State::Done {
        return Err(users.input_error(
            line,
            column.max(1),
            "invalid JSON: the array of users ends before its closing ]",
        ));
    }
    Ok(true)
}

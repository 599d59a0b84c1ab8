//! A server outside this project, given as a command (`run --server
//! NAME=COMMAND`, a profile's `[[servers]]`): its name, checked against
//! the built-in variants, and its command line, split into words here (no
//! shell: the process started is the server itself, so its pid, CPU time
//! and memory are the server's) with `{addr}`, `{port}` and `{protocol}`
//! filled in for each start.

use std::net::SocketAddr;

use crate::protocol::Protocol;
use crate::server::Variant;

/// Longest accepted server name: it heads columns and file names.
const MAX_NAME_CHARS: usize = 64;

/// The placeholders a command may use.
pub const PLACEHOLDERS: [&str; 3] = ["{addr}", "{port}", "{protocol}"];

/// An external server as given: its name in results and its command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalServer {
    pub name: String,
    /// The command as given, placeholders unfilled.
    pub command: String,
    /// Leading `NAME=VALUE` words: the program's extra environment.
    env: Vec<(String, String)>,
    /// The program and its arguments, placeholders unfilled.
    words: Vec<String>,
}

/// Why a server given on the command line or in a profile is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExternalServerError {
    #[error("`{0}` is not NAME=COMMAND")]
    NotNameEqualsCommand(String),
    #[error("server name is empty")]
    EmptyName,
    #[error(
        "server name `{0}` may only have letters, digits, `-`, `_` and `.`, start with a letter or digit, and be at most {MAX_NAME_CHARS} characters"
    )]
    BadName(String),
    #[error("server name `{0}` is a built-in variant; give the external server another name")]
    BuiltinName(String),
    #[error("server `{0}` is given twice")]
    Duplicate(String),
    #[error("server `{name}`: the command is empty")]
    EmptyCommand { name: String },
    #[error("server `{name}`: {problem} in `{command}`")]
    BadCommand {
        name: String,
        command: String,
        problem: String,
    },
}

impl ExternalServer {
    /// `NAME=COMMAND`, as `--server` takes it.
    pub fn parse(text: &str) -> Result<ExternalServer, ExternalServerError> {
        let (name, command) = text
            .split_once('=')
            .ok_or_else(|| ExternalServerError::NotNameEqualsCommand(text.to_string()))?;
        ExternalServer::new(name, command)
    }

    /// Checks the name and the command (words, placeholders).
    pub fn new(name: &str, command: &str) -> Result<ExternalServer, ExternalServerError> {
        let name = name.trim();
        check_name(name)?;
        let bad = |problem: String| ExternalServerError::BadCommand {
            name: name.to_string(),
            command: command.to_string(),
            problem,
        };
        let mut words = split_words(command).map_err(bad)?;
        let program_at = words
            .iter()
            .position(|w| !is_assignment(w))
            .ok_or_else(|| ExternalServerError::EmptyCommand {
                name: name.to_string(),
            })?;
        let env = words
            .drain(..program_at)
            .map(|w| {
                let (key, value) = w.split_once('=').expect("an assignment");
                (key.to_string(), value.to_string())
            })
            .collect();
        for word in &words {
            if let Some(unknown) = unknown_placeholder(word) {
                return Err(bad(format!(
                    "unknown placeholder `{unknown}` (known: {})",
                    PLACEHOLDERS.join(", ")
                )));
            }
        }
        if !words
            .iter()
            .any(|w| w.contains("{addr}") || w.contains("{port}"))
        {
            return Err(bad(
                "no `{addr}` or `{port}`: the server must listen where it is told".into(),
            ));
        }
        Ok(ExternalServer {
            name: name.to_string(),
            command: command.trim().to_string(),
            env,
            words,
        })
    }

    /// The program and its arguments for one start.
    pub fn argv(&self, addr: SocketAddr, protocol: Protocol) -> Vec<String> {
        self.words
            .iter()
            .map(|w| {
                w.replace("{addr}", &addr.to_string())
                    .replace("{port}", &addr.port().to_string())
                    .replace("{protocol}", protocol.name())
            })
            .collect()
    }

    /// Extra environment of the program.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }
}

/// Refuses duplicate names among `servers`.
pub fn check_unique(servers: &[ExternalServer]) -> Result<(), ExternalServerError> {
    for (i, server) in servers.iter().enumerate() {
        if servers[..i].iter().any(|s| s.name == server.name) {
            return Err(ExternalServerError::Duplicate(server.name.clone()));
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ExternalServerError> {
    if name.is_empty() {
        return Err(ExternalServerError::EmptyName);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let starts_well = name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !starts_well || !name.chars().all(allowed) || name.chars().count() > MAX_NAME_CHARS {
        return Err(ExternalServerError::BadName(name.to_string()));
    }
    if name.parse::<Variant>().is_ok() {
        return Err(ExternalServerError::BuiltinName(name.to_string()));
    }
    Ok(())
}

/// `KEY=VALUE` with a shell-style variable name.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(key, _)| {
        key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A `{...}` in `word` that is not one of [`PLACEHOLDERS`].
fn unknown_placeholder(word: &str) -> Option<String> {
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map(|c| open + c + 1);
        let candidate = &rest[open..close.unwrap_or(rest.len())];
        if !PLACEHOLDERS.contains(&candidate) {
            return Some(candidate.to_string());
        }
        rest = &rest[close.unwrap_or(rest.len())..];
    }
    None
}

/// Splits a command into words the way a shell would for plain words:
/// whitespace separates, `'...'` is literal, `"..."` keeps spaces and
/// takes `\"` and `\\`, a backslash outside quotes escapes the next
/// character. No expansion, no pipes or redirections.
pub fn split_words(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unterminated `'`".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("unterminated `\"`".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("unterminated `\"`".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a `\\` ends the command".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell_without_expansion() {
        assert_eq!(
            split_words(r#"  a 'b c' "d \"e\"" f\ g ''  "#).unwrap(),
            ["a", "b c", "d \"e\"", "f g", ""]
        );
        assert!(split_words("a 'b").unwrap_err().contains('\''));
        assert!(split_words("a \"b").is_err());
    }

    #[test]
    fn placeholders_are_filled_and_environment_split_off() {
        let server = ExternalServer::parse(
            "tokio=GOMAXPROCS=1 ./peer --addr {addr} --port={port} --protocol {protocol}",
        )
        .unwrap();
        assert_eq!(server.name, "tokio");
        assert_eq!(server.env(), [("GOMAXPROCS".into(), "1".into())]);
        let addr: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        assert_eq!(
            server.argv(addr, Protocol::Echo),
            [
                "./peer",
                "--addr",
                "127.0.0.1:4567",
                "--port=4567",
                "--protocol",
                "echo"
            ]
        );
    }

    #[test]
    fn bad_names_and_commands_are_refused_with_the_reason() {
        use ExternalServerError::*;
        let err = |text: &str| ExternalServer::parse(text).unwrap_err();
        assert_eq!(err("tokio"), NotNameEqualsCommand("tokio".into()));
        assert_eq!(err("=x {addr}"), EmptyName);
        assert_eq!(err("a b=x {addr}"), BadName("a b".into()));
        assert_eq!(err("-x=x {addr}"), BadName("-x".into()));
        assert_eq!(err("a/b=x {addr}"), BadName("a/b".into()));
        let builtin = err("lt-writev=x {addr}");
        assert_eq!(builtin, BuiltinName("lt-writev".into()));
        assert!(
            builtin.to_string().contains("built-in variant"),
            "{builtin}"
        );
        assert_eq!(err("go=  "), EmptyCommand { name: "go".into() });
        assert_eq!(err("go=A=1"), EmptyCommand { name: "go".into() });
        let text = err("go=./go --addr {adr}").to_string();
        assert!(text.contains("unknown placeholder `{adr}`"), "{text}");
        let text = err("go=./go --addr 127.0.0.1:80").to_string();
        assert!(text.contains("no `{addr}` or `{port}`"), "{text}");
        let text = err("go=./go '{addr}").to_string();
        assert!(text.starts_with("server `go`: unterminated"), "{text}");
        let twice = [
            ExternalServer::parse("go=x {addr}").unwrap(),
            ExternalServer::parse("go=y {port}").unwrap(),
        ];
        assert_eq!(check_unique(&twice), Err(Duplicate("go".into())));
    }
}

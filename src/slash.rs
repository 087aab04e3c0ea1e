//! Slash commands of other agents as MCP prompts: filling their arguments, and their inline
//! commands and files.
//!
//! **Claude Code and Codex** (`Syntax::Slash`): the prompt takes one `arguments` string (or
//! the named arguments its frontmatter lists). `$ARGUMENTS` is the whole string;
//! `$ARGUMENTS[N]` is word N counted from 0; named `$name` is the named argument. Words are
//! split shell-style (quotes group, `\` escapes). `\$` is a literal `$`; a `$N` with no such
//! word stays as written; when the text has no placeholder at all, given arguments are
//! appended as `ARGUMENTS: …`, as Claude Code does.
//!
//! **The indexing rule for `$N`**: Claude Code's current docs count from `$0`, while its
//! older docs, Codex and most published commands count from `$1` (`Review PR #$1 with
//! priority $2`). capmux reads a command that uses `$0` anywhere as 0-based and every other
//! one as 1-based, so both kinds mean what their authors meant. Codex prompts are always
//! 1-based.
//!
//! **Gemini CLI** (`Syntax::Gemini`): one `args` string fills `{{args}}`, shell-quoted
//! inside `!{…}`; with no `{{args}}`, given arguments are appended after a blank line.
//!
//! **Inline commands and files**: `` !`cmd` `` and ```` ```! ```` blocks (Claude Code) and
//! `!{cmd}` (Gemini CLI) run with `sh -c` in the workspace when the prompt is got, and their
//! output replaces them; `@{path}` (Gemini CLI) inlines a workspace file. Commands run only
//! for a package granted `shell:execute`, files only with `fs:read`; otherwise the text
//! stays as written (the loader and the pool say so).

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The one argument of a slash command without named arguments.
pub const ARGUMENTS: &str = "arguments";

/// The one argument of a Gemini CLI command.
pub const ARGS: &str = "args";

/// How long an inline command may run, and how much of its output is kept.
const INLINE_TIMEOUT: Duration = Duration::from_secs(30);
const INLINE_OUTPUT: usize = 64 * 1024;

/// Whether `$N` counts from 1 in `template`: yes unless it uses `$0`.
pub fn one_based(template: &str) -> bool {
    let bytes = template.as_bytes();
    !bytes.windows(2).enumerate().any(|(i, w)| {
        w == b"$0"
            && (i == 0 || bytes[i - 1] != b'\\')
            && !bytes.get(i + 2).is_some_and(u8::is_ascii_digit)
    })
}

/// Whether `text` has inline commands or file references.
pub fn has_inline_shell(text: &str) -> bool {
    text.contains("!`") || text.contains("```!") || text.contains("!{") || text.contains("@{")
}

/// Splits `text` into words as a shell would: quotes group, `\` escapes.
pub fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Fills a slash command. `all` is the whole argument string, `words` its words, `named`
/// the named arguments (name, value).
pub fn fill_slash(
    template: &str,
    all: &str,
    words: &[String],
    named: &[(String, String)],
    one_based: bool,
) -> String {
    let mut out = String::with_capacity(template.len() + all.len());
    let mut used = false;
    let mut rest = template;
    while let Some(i) = rest.find(['$', '\\']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("\\$") {
            out.push('$');
            rest = after;
            continue;
        }
        if let Some(after) = tail.strip_prefix('\\') {
            out.push('\\');
            rest = after;
            continue;
        }
        let after = &tail[1..];
        if let Some(after_args) = after.strip_prefix("ARGUMENTS") {
            used = true;
            if let Some((n, len)) = after_args
                .strip_prefix('[')
                .and_then(|s| s.split_once(']'))
                .and_then(|(n, _)| Some((n.parse::<usize>().ok()?, n.len() + 2)))
            {
                match words.get(n) {
                    Some(word) => out.push_str(word),
                    None => out.push_str(&tail[..1 + "ARGUMENTS".len() + len]),
                }
                rest = &after_args[len..];
            } else {
                out.push_str(all);
                rest = after_args;
            }
            continue;
        }
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            used = true;
            let n: usize = after[..digits].parse().unwrap_or(usize::MAX);
            let index = if one_based { n.checked_sub(1) } else { Some(n) };
            match index.and_then(|i| words.get(i)) {
                Some(word) => out.push_str(word),
                None => out.push_str(&tail[..1 + digits]),
            }
            rest = &after[digits..];
            continue;
        }
        let ident = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if let Some((_, value)) = named.iter().find(|(n, _)| *n == after[..ident]) {
            used = true;
            out.push_str(value);
            rest = &after[ident..];
            continue;
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    if !used && !all.trim().is_empty() {
        out.push_str("\n\nARGUMENTS: ");
        out.push_str(all);
    }
    out
}

/// Fills a Gemini CLI command's `{{args}}`; inside `!{…}` the value is shell-quoted.
pub fn fill_gemini(template: &str, args: &str) -> String {
    let quoted = shell_quote(args);
    let mut out = String::with_capacity(template.len() + args.len());
    let mut depth = 0usize;
    let mut used = false;
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{args}}") {
            out.push_str(if depth > 0 { &quoted } else { args });
            used = true;
            rest = after;
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        if rest.starts_with("!{") {
            depth += 1;
            out.push_str("!{");
            rest = &rest[2..];
            continue;
        }
        if depth > 0 && c == '{' {
            depth += 1;
        } else if depth > 0 && c == '}' {
            depth -= 1;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !used && !args.trim().is_empty() {
        out.push_str("\n\n");
        out.push_str(args);
    }
    out
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What an inline segment is.
enum Segment<'a> {
    Text(&'a str),
    /// The command, and the text as written.
    Command(&'a str, &'a str),
    /// The path, and the text as written.
    File(&'a str, &'a str),
}

/// Splits `text` at its inline commands and file references.
fn segments(text: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let next = ["!`", "```!", "!{", "@{"]
            .iter()
            .filter_map(|m| rest.find(m).map(|i| (i, *m)))
            .min();
        let Some((i, marker)) = next else { break };
        let body_start = i + marker.len();
        let end = match marker {
            "!`" => rest[body_start..].find('`').map(|e| (body_start + e, 1)),
            "```!" => rest[body_start..].find("```").map(|e| (body_start + e, 3)),
            _ => balanced_end(&rest[body_start..]).map(|e| (body_start + e, 1)),
        };
        let Some((end, close)) = end else { break };
        out.push(Segment::Text(&rest[..i]));
        let body = rest[body_start..end].trim();
        let raw = &rest[i..end + close];
        out.push(if marker == "@{" {
            Segment::File(body, raw)
        } else {
            Segment::Command(body, raw)
        });
        rest = &rest[end + close..];
    }
    out.push(Segment::Text(rest));
    out
}

/// The index of the `}` closing an already opened `{`.
fn balanced_end(text: &str) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// What inline parts may do.
pub struct Inline<'a> {
    pub shell: bool,
    pub files: bool,
    pub workspace: &'a Path,
    pub env: Vec<(String, String)>,
    pub cancel: CancellationToken,
}

/// Runs the inline commands and reads the inline files of `text`, as far as `inline`
/// allows; the rest stays as written.
pub async fn expand_inline(text: &str, inline: &Inline<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    for segment in segments(text) {
        match segment {
            Segment::Text(t) => out.push_str(t),
            Segment::Command(cmd, _) if inline.shell => out.push_str(&run(cmd, inline).await),
            Segment::File(rel, _) if inline.files => out.push_str(&read(rel, inline.workspace)),
            Segment::Command(_, raw) | Segment::File(_, raw) => out.push_str(raw),
        }
    }
    out
}

async fn run(command: &str, inline: &Inline<'_>) -> String {
    let args = vec!["-c".to_owned(), command.to_owned()];
    let spec = crate::process::Spec {
        program: Path::new("/bin/sh"),
        args: &args,
        cwd: inline.workspace,
        env: inline.env.clone(),
        stdin: Vec::new(),
        timeout: INLINE_TIMEOUT,
        output_limit: INLINE_OUTPUT,
    };
    match crate::process::run(spec, inline.cancel.clone()).await {
        Ok(output) => {
            let mut text = String::from_utf8_lossy(&output.stdout)
                .trim_end()
                .to_owned();
            match output.ended {
                crate::process::Ended::Exited(status) if status.success() => {}
                crate::process::Ended::Exited(status) => {
                    text.push_str(&format!("\n[`{command}` exited with {status}]"));
                }
                crate::process::Ended::TimedOut => {
                    text.push_str(&format!("\n[`{command}` timed out]"));
                }
                crate::process::Ended::Cancelled => {}
            }
            text
        }
        Err(err) => format!("[`{command}` could not run: {err}]"),
    }
}

fn read(rel: &str, workspace: &Path) -> String {
    match crate::package::read_workspace_file(workspace, rel) {
        Ok(text) => text,
        Err(err) => format!("[@{{{rel}}}: {err}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_words(s)
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            words(r#"12 "high prio" it\'s 'a b'"#),
            ["12", "high prio", "it's", "a b"]
        );
        assert!(words("  ").is_empty());
    }

    #[test]
    fn positional_arguments_follow_the_indexing_rule() {
        let w = words("12 high");
        assert!(one_based("Review #$1 with $2"));
        assert!(!one_based("First $0 then $1"));
        assert!(one_based(r"cost \$0 then $1"));
        assert_eq!(
            fill_slash("PR #$1 prio $2 $3", "12 high", &w, &[], true),
            "PR #12 prio high $3"
        );
        assert_eq!(
            fill_slash(
                "$0/$1 [$ARGUMENTS[1]] $ARGUMENTS",
                "12 high",
                &w,
                &[],
                false
            ),
            "12/high [high] 12 high"
        );
        assert_eq!(
            fill_slash(r"\$1 costs $1", "5", &words("5"), &[], true),
            "$1 costs 5"
        );
        assert_eq!(
            fill_slash("Just do it.", "now", &words("now"), &[], true),
            "Just do it.\n\nARGUMENTS: now"
        );
        assert_eq!(fill_slash("Just do it.", "", &[], &[], true), "Just do it.");
        let named = [("file".to_owned(), "a.rs".to_owned())];
        assert_eq!(
            fill_slash("Check $file, $$ $filex", "", &[], &named, true),
            "Check a.rs, $$ $filex"
        );
    }

    #[test]
    fn gemini_args_are_quoted_inside_commands() {
        assert_eq!(
            fill_gemini("Find {{args}}: !{grep -rn {{args}} .}", "a b'c"),
            r"Find a b'c: !{grep -rn 'a b'\''c' .}"
        );
        assert_eq!(fill_gemini("Explain.", "x"), "Explain.\n\nx");
        assert_eq!(fill_gemini("Explain.", ""), "Explain.");
    }

    #[tokio::test]
    async fn inline_commands_run_only_when_allowed() {
        let dir = tempfile::tempdir().expect("test step");
        std::fs::write(dir.path().join("n.txt"), "noted").expect("test step");
        let text = "a !`echo hi` b !{echo {x}} c @{n.txt} d";
        let mut inline = Inline {
            shell: false,
            files: false,
            workspace: dir.path(),
            env: crate::process::host_env(),
            cancel: CancellationToken::new(),
        };
        assert_eq!(expand_inline(text, &inline).await, text);
        inline.shell = true;
        inline.files = true;
        assert_eq!(expand_inline(text, &inline).await, "a hi b {x} c noted d");
        assert!(read("../etc/passwd", dir.path()).contains("leaves"));
    }
}

//! The MCP server over an in-memory duplex pair, driven by rmcp's client: every method a
//! client uses, pagination, and the errors a client sees for unknown or bad requests.

use rmcp::ServiceError;
use rmcp::model::{
    CallToolRequestParams, ClientRequest, ErrorCode, GetPromptRequestParams,
    PaginatedRequestParams, ReadResourceRequestParams, ResourceContents,
};
use serde_json::json;

use crate::support::{self, Client, connect, text_of};

async fn bundled_client(client_name: &str) -> (Client, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("tempdir");
    let server = support::bundled_server(home.path());
    (connect(server, client_name).await, home)
}

fn mcp_error(err: ServiceError) -> rmcp::model::ErrorData {
    match err {
        ServiceError::McpError(e) => e,
        other => panic!("expected an MCP error, got {other}"),
    }
}

#[tokio::test]
async fn initialize_says_who_we_are_and_what_we_serve() {
    let (client, _home) = bundled_client("some-client").await;
    let info = client.peer_info().expect("server info");
    let server_info = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server_info.name, "capmux");
    assert_eq!(server_info.version, env!("CARGO_PKG_VERSION"));
    let caps = &info.capabilities;
    assert!(caps.tools.is_some() && caps.prompts.is_some() && caps.resources.is_some());
    // Lists change with a reload (an install while a client is connected) and a child's
    // log messages are forwarded: both are declared from the start.
    assert!(caps.logging.is_some());
    for changes in [
        caps.tools.as_ref().and_then(|t| t.list_changed),
        caps.prompts.as_ref().and_then(|p| p.list_changed),
        caps.resources.as_ref().and_then(|r| r.list_changed),
    ] {
        assert_eq!(changes, Some(true));
    }
    let instructions = info.instructions.as_deref().expect("instructions");
    assert!(
        instructions.starts_with("# House Rules\n\nHouse rules:"),
        "{instructions}"
    );
    assert!(instructions.len() <= capmux::config::DEFAULT_INSTRUCTIONS_BUDGET);
}

#[tokio::test]
async fn instructions_follow_the_client_provider() {
    let (claude, _h1) = bundled_client("claude-code").await;
    let (generic, _h2) = bundled_client("some-client").await;
    let claude_text = client_prompt_text(&claude).await;
    let generic_text = client_prompt_text(&generic).await;
    let claude_only =
        std::fs::read_to_string(support::repo().join("plugins/house-rules/prompts/claude.md"))
            .expect("claude.md");
    let first_line = claude_only
        .lines()
        .find(|l| !l.trim().is_empty())
        .expect("text");
    assert!(claude_text.contains(first_line.trim()));
    assert!(!generic_text.contains(first_line.trim()));
}

async fn client_prompt_text(client: &Client) -> String {
    let result = client
        .get_prompt(GetPromptRequestParams::new("system"))
        .await
        .expect("system prompt");
    prompt_text(&result)
}

fn prompt_text(result: &rmcp::model::GetPromptResult) -> String {
    result.messages[0]
        .content
        .as_text()
        .map(|t| t.text.clone())
        .expect("a text message")
}

#[tokio::test]
async fn tools_list_is_paginated_sorted_and_complete() {
    let home = tempfile::tempdir().expect("tempdir");
    let tools: Vec<_> = (0..250)
        .map(|i| support::python_tool(&format!("t{i:03}"), "t.py", json!({"type": "object"})))
        .collect();
    let root = support::package(
        home.path(),
        "capmux-plugin-many",
        json!({ "manifestVersion": 1, "permissions": ["shell:execute"], "tools": tools }),
        &[("t.py", "print('x')")],
    );
    let server = support::server(&[root], "page_size = 100\n", home.path());
    let client = connect(server, "test").await;

    let mut names = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_tools(Some(PaginatedRequestParams::default().with_cursor(cursor)))
            .await
            .expect("page");
        pages += 1;
        names.extend(page.tools.iter().map(|t| t.name.to_string()));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 250);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "sorted, no duplicates");
    assert_eq!(names[0], "many__t000");
    let all = client.list_all_tools().await.expect("all tools");
    assert_eq!(all.len(), 250);
}

#[tokio::test]
async fn a_command_tool_is_called_through_mcp() {
    let (client, _home) = bundled_client("test").await;
    let mut arguments = serde_json::Map::new();
    arguments.insert("text".into(), json!("abc"));
    let result = client
        .call_tool(CallToolRequestParams::new("text-tools__sha256").with_arguments(arguments))
        .await
        .expect("call");
    assert_ne!(result.is_error, Some(true));
    assert!(
        text_of(&result)
            .contains("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    let data = result.structured_content.expect("data object");
    assert_eq!(data["bytes"], json!(3));
}

#[tokio::test]
async fn bad_arguments_are_a_tool_error_naming_the_argument() {
    let (client, _home) = bundled_client("test").await;
    let mut arguments = serde_json::Map::new();
    arguments.insert("text".into(), json!(5));
    let result = client
        .call_tool(CallToolRequestParams::new("text-tools__word_count").with_arguments(arguments))
        .await
        .expect("call");
    assert_eq!(result.is_error, Some(true));
    let text = text_of(&result);
    assert!(
        text.contains("argument `text`") && text.contains("string"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unknown_tool_is_an_invalid_params_error_naming_it() {
    let (client, _home) = bundled_client("test").await;
    let err = client
        .call_tool(CallToolRequestParams::new("nope__nothing"))
        .await
        .expect_err("unknown tool");
    let err = mcp_error(err);
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS);
    assert!(err.message.contains("nope__nothing"));
}

#[tokio::test]
async fn prompts_are_listed_with_arguments_and_filled_in() {
    let (client, _home) = bundled_client("test").await;
    let prompts = client.list_all_prompts().await.expect("prompts");
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"house-rules__review") && names.contains(&"system"),
        "{names:?}"
    );
    let review = prompts
        .iter()
        .find(|p| p.name == "house-rules__review")
        .expect("review");
    let args = review.arguments.as_ref().expect("arguments");
    assert_eq!(args[0].name, "diff");
    assert_eq!(args[0].required, Some(true));

    let mut arguments = serde_json::Map::new();
    arguments.insert("diff".into(), json!("-old\n+new {{focus}}"));
    arguments.insert("focus".into(), json!("naming"));
    let result = client
        .get_prompt(GetPromptRequestParams::new("house-rules__review").with_arguments(arguments))
        .await
        .expect("prompt");
    let text = prompt_text(&result);
    assert!(
        text.contains("-old\n+new {{focus}}"),
        "an argument's value is not expanded again"
    );
    assert!(text.contains("naming"));
    assert!(!text.contains("{{diff}}"));
}

#[tokio::test]
async fn a_missing_required_argument_is_an_error_naming_it() {
    let (client, _home) = bundled_client("test").await;
    let err = client
        .get_prompt(GetPromptRequestParams::new("house-rules__review"))
        .await
        .expect_err("missing argument");
    let err = mcp_error(err);
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS);
    assert!(err.message.contains("`diff`"), "{}", err.message);

    let mut arguments = serde_json::Map::new();
    arguments.insert("diff".into(), json!("x"));
    arguments.insert("colour".into(), json!("x"));
    let err = mcp_error(
        client
            .get_prompt(
                GetPromptRequestParams::new("house-rules__review").with_arguments(arguments),
            )
            .await
            .expect_err("unknown argument"),
    );
    assert!(err.message.contains("no argument `colour`") && err.message.contains("diff, focus"));

    let err = mcp_error(
        client
            .get_prompt(GetPromptRequestParams::new("house-rules__nope"))
            .await
            .expect_err("unknown prompt"),
    );
    assert!(err.message.contains("house-rules__nope"));
}

#[tokio::test]
async fn the_system_prompt_is_a_resource_and_unknown_uris_are_not_found() {
    let (client, _home) = bundled_client("test").await;
    let resources = client.list_all_resources().await.expect("resources");
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].uri, "capmux://system-prompt");
    let read = client
        .read_resource(ReadResourceRequestParams::new("capmux://system-prompt"))
        .await
        .expect("read");
    let ResourceContents::TextResourceContents {
        text, mime_type, ..
    } = &read.contents[0]
    else {
        panic!("expected text");
    };
    assert!(text.contains("House rules:"));
    assert_eq!(mime_type.as_deref(), Some("text/markdown"));
    let err = mcp_error(
        client
            .read_resource(ReadResourceRequestParams::new("capmux://nope"))
            .await
            .expect_err("unknown resource"),
    );
    assert_eq!(err.code, ErrorCode::RESOURCE_NOT_FOUND);
    assert!(err.message.contains("capmux://nope"));
}

#[tokio::test]
async fn long_instructions_are_cut_but_the_system_prompt_stays_whole() {
    let home = tempfile::tempdir().expect("tempdir");
    let long: String = (0..400)
        .map(|i| format!("Rule number {i}: be precise.\n"))
        .collect();
    let root = support::package(
        home.path(),
        "capmux-plugin-long",
        json!({ "manifestVersion": 1, "systemPrompts": [{ "content": long }] }),
        &[],
    );
    let server = support::server(&[root], "instructions_budget = 500\n", home.path());
    let client = connect(server, "test").await;
    let instructions = client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .expect("instructions");
    assert!(instructions.len() <= 500, "{}", instructions.len());
    assert!(
        instructions.contains("the MCP prompt `system` and the resource capmux://system-prompt")
    );
    let whole = client_prompt_text(&client).await;
    assert!(whole.contains("Rule number 399"));
}

#[tokio::test]
async fn ping_is_answered() {
    let (client, _home) = bundled_client("test").await;
    let result = client
        .send_request(ClientRequest::PingRequest(Default::default()))
        .await
        .expect("ping");
    assert!(
        matches!(result, rmcp::model::ServerResult::EmptyResult(_)),
        "{result:?}"
    );
}

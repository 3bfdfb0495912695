//! How `/v1/responses` keeps conversations (#15): each stored response holds its own turn
//! and a link to the one it continued (storage grows with a conversation's length, not its
//! square), the conversation is rebuilt by walking the links, rows stored whole before
//! migration 0024 still continue, `GET /v1/responses/{id}/input_items` lists a response's
//! items to its owner only, and a client that disconnects mid-stream leaves an
//! `incomplete` response it can continue.

use std::time::Duration;

use crate::harness::*;
use mock_upstream::REPLY_PREFIX;
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokenhub::accounts::KeyOptions;
use tokenhub::ledger::money::Nanos;

use crate::responses_native::{NATIVE, start};

/// Creates a response and returns its id.
async fn respond(h: &Harness, key: &str, body: Value) -> String {
    let response = h.post(key, "/v1/responses", &body).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

async fn input_items(h: &Harness, key: &str, id: &str, query: &str) -> reqwest::Response {
    h.get(key, &format!("/v1/responses/{id}/input_items{query}"))
        .await
}

fn texts(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["content"][0]["text"].as_str().unwrap().to_string())
        .collect()
}

fn reply(text: &str) -> String {
    format!("{REPLY_PREFIX}{text}")
}

#[tokio::test]
async fn each_stored_turn_holds_its_own_input_and_a_link_to_the_one_before() {
    for backend in backends() {
        let h = start(backend).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let first = respond(&h, &key, json!({"model": "mock-gpt", "input": "one"})).await;
        let second = respond(
            &h,
            &key,
            json!({"model": "mock-gpt", "input": "two", "previous_response_id": first}),
        )
        .await;
        let third = respond(
            &h,
            &key,
            json!({"model": "mock-gpt", "input": "three", "previous_response_id": second}),
        )
        .await;
        let replayed = &h.mock.journal()[2].body["messages"];
        assert_eq!(
            replayed,
            &json!([
                {"role": "user", "content": "one"}, {"role": "assistant", "content": reply("one")},
                {"role": "user", "content": "two"}, {"role": "assistant", "content": reply("two")},
                {"role": "user", "content": "three"},
            ])
        );

        let store = &h.gateway().store;
        let chain = store
            .response_chain(user.id, &third, 1_000, false)
            .await
            .unwrap();
        let ids: Vec<&str> = chain.iter().map(|row| row.id.as_str()).collect();
        assert_eq!(ids, [&third, &second, &first]);
        for (row, said) in chain.iter().zip(["three", "two", "one"]) {
            assert_eq!(row.conversation, "", "no copy of the conversation");
            let items: Value = serde_json::from_str(row.input_items.as_deref().unwrap()).unwrap();
            assert_eq!(items.as_array().unwrap().len(), 1, "its own input only");
            assert_eq!(items[0]["content"][0]["text"], said);
        }
        assert_eq!(chain[0].previous_id.as_deref(), Some(second.as_str()));
        assert_eq!(chain[2].previous_id, None);
        let others = store
            .response_chain(user.id + 1, &third, 1_000, false)
            .await
            .unwrap();
        assert!(others.is_empty(), "another user walks nothing");

        // A deleted link breaks the chain: continuing the third names the missing one.
        assert_eq!(
            h.http
                .delete(format!("{}/v1/responses/{second}", h.base))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let before = h.mock.journal().len();
        let broken = h
            .post(
                &key,
                "/v1/responses",
                &json!({"model": "mock-gpt", "input": "four", "previous_response_id": third}),
            )
            .await;
        assert_eq!(broken.status(), 404);
        let broken: Value = broken.json().await.unwrap();
        assert_eq!(
            broken["error"],
            json!({"message": format!("Previous response with id '{second}' not found."),
                "type": "invalid_request_error", "param": "previous_response_id",
                "code": "previous_response_not_found"})
        );
        assert_eq!(
            h.mock.journal().len(),
            before,
            "nothing reached the upstream"
        );
        assert_eq!(
            h.get(&key, &format!("/v1/responses/{third}"))
                .await
                .status(),
            200
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn rows_stored_whole_before_migration_0024_still_continue_and_list() {
    for backend in backends() {
        let h = start(backend).await;
        let (user, key) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        // A row as 0015 wrote it: the whole conversation, no input items, no link.
        let conversation = json!([
            {"role": "user", "content": "old question"},
            {"role": "assistant", "content": "old answer"},
        ]);
        let response = json!({"id": "resp_legacy", "object": "response", "status": "completed",
            "output": [{"id": "msg_legacy", "type": "message", "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "old answer"}]}]});
        let pool = AnyPool::connect(&h.database_url).await.unwrap();
        sqlx::query(
            "INSERT INTO stored_responses \
             (id, user_id, key_id, response, conversation, created_at, expires_at) \
             VALUES ('resp_legacy', $1, 0, $2, $3, 0, $4)",
        )
        .bind(user.id)
        .bind(response.to_string())
        .bind(conversation.to_string())
        .bind(i64::MAX)
        .execute(&pool)
        .await
        .unwrap();

        let next = respond(
            &h,
            &key,
            json!({"model": "mock-gpt", "input": "new question",
                "previous_response_id": "resp_legacy"}),
        )
        .await;
        assert_eq!(
            h.mock.journal()[0].body["messages"],
            json!([
                {"role": "user", "content": "old question"},
                {"role": "assistant", "content": "old answer"},
                {"role": "user", "content": "new question"},
            ])
        );
        let listed: Value = input_items(&h, &key, &next, "?order=asc")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            texts(&listed),
            ["old question", "old answer", "new question"]
        );
        let own: Value = input_items(&h, &key, "resp_legacy", "")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(texts(&own), ["old question"]);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn input_items_lists_a_conversation_in_openai_shape_to_its_owner_only() {
    for backend in backends() {
        let h = start(backend).await;
        let (_, ada) = h
            .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let (_, bob) = h
            .user_with_key("bob", Nanos::from_usd(1), KeyOptions::default())
            .await;
        let first = respond(&h, &ada, json!({"model": "mock-gpt", "input": "one"})).await;
        let second = respond(
            &h,
            &ada,
            json!({"model": "mock-gpt", "previous_response_id": first, "input": [
                {"role": "user", "content": "two"},
                {"type": "message", "id": "msg_mine", "role": "user",
                    "content": [{"type": "input_text", "text": "three"}]}]}),
        )
        .await;

        let listed = input_items(&h, &ada, &second, "").await;
        assert_eq!(listed.status(), 200);
        let listed: Value = listed.json().await.unwrap();
        assert_eq!(listed["object"], "list");
        assert_eq!(
            texts(&listed),
            ["three", "two", reply("one").as_str(), "one"]
        );
        let data = listed["data"].as_array().unwrap();
        assert_eq!(
            (&listed["first_id"], &listed["last_id"], &listed["has_more"]),
            (&json!("msg_mine"), &data[3]["id"], &json!(false))
        );
        assert_eq!(
            data[1],
            json!({"id": data[1]["id"], "type": "message", "role": "user",
                "status": "completed", "content": [{"type": "input_text", "text": "two"}]})
        );
        assert_eq!(data[2]["role"], "assistant");

        // Paged oldest first, two at a time.
        let page: Value = input_items(&h, &ada, &second, "?order=asc&limit=2")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(texts(&page), ["one", reply("one").as_str()]);
        assert_eq!(page["has_more"], true);
        let after = page["last_id"].as_str().unwrap();
        let rest: Value = input_items(
            &h,
            &ada,
            &second,
            &format!("?order=asc&limit=2&after={after}"),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(texts(&rest), ["two", "three"]);
        assert_eq!(rest["has_more"], false);

        // Bad parameters are OpenAI errors; another user's id is unknown.
        let bad = input_items(&h, &ada, &second, "?limit=0").await;
        assert_eq!(bad.status(), 400);
        let bad: Value = bad.json().await.unwrap();
        assert_eq!(bad["error"]["param"], "limit");
        for (key, id) in [(&bob, second.as_str()), (&ada, "resp_nope")] {
            let missing = input_items(&h, key, id, "").await;
            assert_eq!(missing.status(), 404);
            let missing: Value = missing.json().await.unwrap();
            assert_eq!(missing["error"]["type"], "invalid_request_error");
            assert!(!missing.to_string().contains("three"));
        }

        // A native response lists what its owner sent it.
        let native = respond(&h, &ada, json!({"model": NATIVE, "input": "natively"})).await;
        let listed: Value = input_items(&h, &ada, &native, "")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(texts(&listed), ["natively"]);
        assert_eq!(input_items(&h, &bob, &native, "").await.status(), 404);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_leaves_an_incomplete_response_it_can_continue() {
    let h = start(Backend::Sqlite).await;
    let (_, key) = h
        .user_with_key("ada", Nanos::from_usd(1), KeyOptions::default())
        .await;
    let mut response = h
        .post(
            &key,
            "/v1/responses",
            &json!({"model": "mock-gpt", "input": "tell me a long story", "stream": true,
                "mock": {"chunks": 8, "chunk_delay_ms": 300}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let request = request_id(&response);
    let mut seen = String::new();
    while !seen.contains("response.output_text.delta") {
        let chunk = response.chunk().await.unwrap().expect("more events");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let created: Value = serde_json::from_str(&sse_data(&seen)[0]).unwrap();
    let id = created["response"]["id"].as_str().unwrap().to_string();
    drop(response);

    let mut stored = None;
    for _ in 0..100 {
        let read = h.get(&key, &format!("/v1/responses/{id}")).await;
        if read.status() == 200 {
            stored = Some(read.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = stored.expect("the interrupted response is stored");
    assert_eq!(stored["status"], "incomplete");
    assert_eq!(
        stored["incomplete_details"]["reason"],
        "client_disconnected"
    );
    let partial = stored["output"][0]["content"][0]["text"].as_str().unwrap();
    let whole = reply("tell me a long story");
    assert!(
        !partial.is_empty() && whole.starts_with(partial) && partial != whole,
        "{partial:?}"
    );
    let record = h.record_eventually(&request).await;
    assert!(record.completion_tokens > 0, "billed for what was produced");

    let next = h
        .post(
            &key,
            "/v1/responses",
            &json!({"model": "mock-gpt", "input": "go on", "previous_response_id": id}),
        )
        .await;
    assert_eq!(next.status(), 200);
    assert_eq!(
        h.mock.journal().last().unwrap().body["messages"],
        json!([
            {"role": "user", "content": "tell me a long story"},
            {"role": "assistant", "content": partial},
            {"role": "user", "content": "go on"},
        ])
    );
    h.shutdown().await;
}

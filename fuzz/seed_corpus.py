#!/usr/bin/env python3
"""Writes fuzz/corpus/<target>/ from the golden fixtures (crates/tokenhub/tests/fixtures/)
and a few hand-written inputs, and fuzz/json.dict: every member name and `type` value of
those fixtures, plus the integer edges. Rerun after adding fixtures. scripts/fuzz.sh
keeps what the fuzzer finds in fuzz/target/corpus/, not here."""

import glob
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "crates", "tokenhub", "tests", "fixtures")
CORPUS = os.path.join(HERE, "corpus")
# Stream targets read their first byte as the seed of the read sizes (fuzz/src/lib.rs).
SPLIT_SEED = b"\x07"


def fixtures(pattern):
    for path in sorted(glob.glob(os.path.join(FIXTURES, pattern))):
        with open(path, "rb") as f:
            yield os.path.basename(path), f.read()


def error_cases(pattern):
    for path in sorted(glob.glob(os.path.join(FIXTURES, pattern))):
        with open(path) as f:
            for case in json.load(f):
                name = re.sub(r"[^a-z0-9]+", "_", case["case"].lower()).strip("_")
                yield f"{os.path.basename(os.path.dirname(os.path.dirname(path)))}_err_{name}", json.dumps(case["request"]).encode()


def sse_data(pattern):
    for name, raw in fixtures(pattern):
        for i, line in enumerate(raw.decode().splitlines()):
            if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
                yield f"{name}.{i}", line[5:].strip().encode()


HAND = {
    "openai_request": {
        "completions.json": b'{"model":"m","prompt":["Hello","world"],"max_tokens":5}',
        "embeddings.json": b'{"model":"e","input":[[1,2,3],"text"]}',
        "stream_options.json": b'{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":false,"x":1},"n":2,"max_completion_tokens":9}',
        "duplicates.json": b'{"model":"a","model":"b","messages":[{"role":"user","content":"x"}],"stream":null}',
    },
    "openai_usage": {
        "deepseek.json": b'{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_cache_hit_tokens":4}}',
        "moonshot.json": b'{"choices":[{"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":9,"completion_tokens":1,"cached_tokens":3}}]}',
        "cache_write.json": b'{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":2,"cache_write_tokens":5}}}',
        "legacy_text.json": b'{"choices":[{"text":"hi","index":0}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
    },
    "upstream_error": {
        "openai.json": b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}',
        "flat.json": b'{"message":"rate limited"}',
        "text.json": b'{"error":"model overloaded"}',
        "msg.json": b'{"error":{"msg":"quota"}}',
        "html.txt": b"<html><body>502 Bad Gateway</body></html>",
        "plain.txt": b"upstream connect error",
        "gemini.json": b'{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}',
    },
    "responses_native": {
        "response.json": b'{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"Hi"}]},{"type":"function_call","name":"f","arguments":"{}"}],"usage":{"input_tokens":120,"input_tokens_details":{"cached_tokens":100},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":150},"service_tier":"default"}',
        "failed.json": b'{"id":"r","status":"failed","output":[],"error":{"code":"server_error","message":"boom"}}',
        "completed_event.json": b'{"type":"response.completed","sequence_number":9,"response":{"id":"r","status":"completed","output":[],"usage":{"input_tokens":5,"output_tokens":2}}}',
        "failed_event.json": b'{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"overloaded"},"usage":{"input_tokens":"x"}}}',
        "delta_event.json": b'{"type":"response.output_text.delta","delta":"Hi","sequence_number":3}',
        "error_event.json": b'{"type":"error","message":"rate limited","sequence_number":4}',
    },
    "config": {
        "empty.toml": b"",
        "settings.toml": b'listen = "127.0.0.1:3000"\nmax_body_bytes = 1024\ntrusted_proxies = ["10.0.0.0/8"]\nlog_format = "json"\npublic_url = "https://gw.example.com"\n\n[accounts]\nsignup = "open"\n',
    },
}


def readme_toml():
    with open(os.path.join(HERE, "..", "README.md")) as f:
        blocks = re.findall(r"```toml\n(.*?)```", f.read(), re.S)
    for i, block in enumerate(blocks):
        yield f"readme_{i}.toml", "\n".join(l.strip() for l in block.splitlines()).encode()


USAGE_COUNT = re.compile(r'("\w*(?:[Tt]okens?|TokenCount)\w*"\s*:\s*)\d+')


def with_usage_at_u64_max(items):
    """Each seed, and a copy whose token counts and limits (`*tokens*`, `*TokenCount*`) are
    all u64::MAX: an upstream or a client is free to send any number, and blind mutation
    seldom writes a 20-digit one in the right place."""
    for name, raw in items:
        yield name, raw
        edged = USAGE_COUNT.sub(r"\g<1>18446744073709551615", raw.decode())
        if edged != raw.decode():
            yield name + ".u64max", edged.encode()


def seeds():
    openai_requests = list(with_usage_at_u64_max(list(fixtures("*/request/*.openai.json")) + list(error_cases("anthropic/request/errors.json")) + list(error_cases("gemini/request/errors.json"))))
    yield "openai_request", openai_requests
    yield "tokens", openai_requests
    yield "anthropic_request", with_usage_at_u64_max(list(fixtures("anthropic/request/*.openai.json")) + list(error_cases("anthropic/request/errors.json")))
    yield "gemini_request", with_usage_at_u64_max(list(fixtures("gemini/request/*.openai.json")) + list(error_cases("gemini/request/errors.json")))
    yield "anthropic_response", with_usage_at_u64_max(fixtures("anthropic/response/*.anthropic.json"))
    yield "gemini_response", with_usage_at_u64_max(fixtures("gemini/response/*.gemini.json"))
    yield "anthropic_inbound_request", with_usage_at_u64_max(list(fixtures("anthropic_inbound/request/*.anthropic.json")) + list(error_cases("anthropic_inbound/request/errors.json")))
    yield "anthropic_inbound_response", with_usage_at_u64_max(fixtures("anthropic_inbound/response/*.openai.json"))
    split = lambda items: [(n, SPLIT_SEED + raw) for n, raw in items]
    yield "anthropic_stream", split(with_usage_at_u64_max(fixtures("anthropic/stream/*.anthropic.sse")))
    yield "gemini_stream", split(with_usage_at_u64_max(fixtures("gemini/stream/*.gemini.sse")))
    yield "anthropic_inbound_stream", split(with_usage_at_u64_max(fixtures("anthropic_inbound/stream/*.openai.sse")))
    yield "sse_decoder", split(fixtures("*/stream/*.sse"))
    yield "openai_usage", with_usage_at_u64_max(list(fixtures("*/response/*.openai.json")) + list(sse_data("anthropic_inbound/stream/*.openai.sse")))
    yield "config", readme_toml()
    for target, hand in HAND.items():
        yield target, hand.items()


EDGES = ["0", "-1", "1e400", "-0", "4294967295", "4294967296", "9007199254740993",
         "9223372036854775807", "9223372036854775808", "-9223372036854775808",
         "18446744073709551615", "18446744073709551616", "1.5", "null", "true", "[]", "{}"]


def libfuzzer_entry(word):
    """A dictionary line: printable ASCII as is, but for `\\` and `"`; other bytes as \\xNN."""
    out = []
    for byte in word.encode():
        if 0x20 <= byte < 0x7F and byte not in (0x22, 0x5C):
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02X}")
    return '"' + "".join(out) + '"'


def dictionary():
    words = set()

    def walk(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                words.add(json.dumps(key))
                if key in ("type", "role", "finish_reason", "stop_reason", "finishReason", "event"):
                    if isinstance(inner, str):
                        words.add(json.dumps(inner))
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for name, raw in fixtures("*/*/*.json"):
        walk(json.loads(raw))
    for name, raw in fixtures("*/stream/*.sse"):
        for line in raw.decode().splitlines():
            field = line.split(":", 1)[0]
            words.add(field + ":")
            if line.startswith("data:"):
                try:
                    walk(json.loads(line[5:]))
                except ValueError:
                    pass
    words.update(EDGES)
    words.update(["data: ", "event: ", "\n\n", "\r\n", ": ping", "[DONE]"])
    with open(os.path.join(HERE, "json.dict"), "w") as f:
        f.write("# Generated by seed_corpus.py: member names and type values of the golden\n")
        f.write("# fixtures (quoted, as in JSON), SSE field names, and the integer edges.\n")
        for word in sorted(words):
            f.write(libfuzzer_entry(word) + "\n")
    print(f"json.dict: {len(words)} entries")


def main():
    dictionary()
    for target, items in seeds():
        folder = os.path.join(CORPUS, target)
        os.makedirs(folder, exist_ok=True)
        for name, raw in items:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(raw)
    for folder in sorted(glob.glob(os.path.join(CORPUS, "*"))):
        print(f"{os.path.basename(folder)}: {len(os.listdir(folder))} seeds")


if __name__ == "__main__":
    main()

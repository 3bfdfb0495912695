#!/usr/bin/env python3
"""Writes fuzz/corpus/<target>/ from the golden fixtures (crates/tokenhub/tests/fixtures/)
and a few hand-written inputs. Rerun after adding fixtures; libFuzzer adds what it finds
to the same folders, and `cargo fuzz cmin` can shrink them again."""

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


def seeds():
    openai_requests = list(fixtures("*/request/*.openai.json")) + list(error_cases("anthropic/request/errors.json")) + list(error_cases("gemini/request/errors.json"))
    yield "openai_request", openai_requests
    yield "tokens", openai_requests
    yield "anthropic_request", list(fixtures("anthropic/request/*.openai.json")) + list(error_cases("anthropic/request/errors.json"))
    yield "gemini_request", list(fixtures("gemini/request/*.openai.json")) + list(error_cases("gemini/request/errors.json"))
    yield "anthropic_response", fixtures("anthropic/response/*.anthropic.json")
    yield "gemini_response", fixtures("gemini/response/*.gemini.json")
    yield "anthropic_inbound_request", list(fixtures("anthropic_inbound/request/*.anthropic.json")) + list(error_cases("anthropic_inbound/request/errors.json"))
    yield "anthropic_inbound_response", fixtures("anthropic_inbound/response/*.openai.json")
    split = lambda items: [(n, SPLIT_SEED + raw) for n, raw in items]
    yield "anthropic_stream", split(fixtures("anthropic/stream/*.anthropic.sse"))
    yield "gemini_stream", split(fixtures("gemini/stream/*.gemini.sse"))
    yield "anthropic_inbound_stream", split(fixtures("anthropic_inbound/stream/*.openai.sse"))
    yield "sse_decoder", split(fixtures("*/stream/*.sse"))
    yield "openai_usage", list(fixtures("*/response/*.openai.json")) + list(sse_data("anthropic_inbound/stream/*.openai.sse"))
    yield "config", readme_toml()
    for target, hand in HAND.items():
        yield target, hand.items()


def main():
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

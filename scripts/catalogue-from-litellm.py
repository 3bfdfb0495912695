#!/usr/bin/env python3
"""Regenerates crates/tokenhub/catalog/models.json from LiteLLM's price data.

Usage: pip download litellm --no-deps -d /tmp/litellm && unzip the wheel, then
  python3 scripts/catalogue-from-litellm.py litellm/model_prices_and_context_window_backup.json VERSION

The seed page's 12 models (and the demo model) come from SEED below, never from LiteLLM.
Kept: current models (no deprecation date, or one after TODAY) of first-party vendors and
four hosts, in the modes the gateway relays (chat, completion, embedding), with a token
price. Prices are exact decimals: LiteLLM's per-token figure times 1e6, as written in
its JSON text (no float arithmetic).
"""
import json
import sys
from decimal import Decimal

TODAY = "2026-12-05"
VENDORS = {  # LiteLLM provider -> (display name, strip the "provider/" prefix)
    "openai": "OpenAI", "anthropic": "Anthropic", "gemini": "Google Gemini",
    "deepseek": "DeepSeek", "mistral": "Mistral", "xai": "xAI",
    "dashscope": "Alibaba Qwen", "moonshot": "Moonshot AI", "zai": "Zhipu GLM",
    "volcengine": "ByteDance", "cohere": "Cohere", "perplexity": "Perplexity",
    "minimax": "MiniMax", "groq": "Groq", "together_ai": "Together AI",
    "deepinfra": "DeepInfra", "fireworks_ai": "Fireworks AI",
}
SEED_SOURCE = "TokenHub seed page (input price); "
SEED = [
    # id, provider, context, input, output, cache_read, cache_write, modalities in, note
    ("deepseek-chat", "DeepSeek", 65536, "0.27", "1.10", "0.07", None, ["text"],
     "output and cache hit as DeepSeek V3's published $0.27/$1.10/$0.07"),
    ("deepseek-v3.2", "DeepSeek", 128000, "0.27", "0.405", "0.027", None, ["text"],
     "output 1.5x and cache hit 0.1x input, DeepSeek V3.2's published ratio ($0.28/$0.42/$0.028)"),
    ("deepseek-r1", "DeepSeek (Reasoning)", 65536, "0.55", "2.19", "0.14", None, ["text"],
     "output and cache hit as DeepSeek R1's published $0.55/$2.19/$0.14"),
    ("qwen-plus", "Alibaba Qwen", 131072, "0.11", "0.33", None, None, ["text"],
     "output 3x input, Model Studio's published ratio ($0.40/$1.20); cache prices by the DashScope rule in presets.rs"),
    ("qwen-max", "Alibaba Qwen", 32768, "0.28", "1.12", None, None, ["text"],
     "output 4x input, Model Studio's published ratio ($1.60/$6.40); cache prices by the DashScope rule in presets.rs"),
    ("glm-4-flash", "Zhipu GLM", 128000, "0", "0", None, None, ["text"],
     "free at Zhipu (docs.bigmodel.cn)"),
    ("glm-5", "Zhipu GLM", 128000, "0.14", "0.448", "0.028", None, ["text"],
     "output 3.2x and cache hit 0.2x input, Z.ai's published ratio ($1.00/$3.20/$0.20)"),
    ("doubao-pro", "ByteDance", 128000, "0.14", "0.35", None, None, ["text"],
     "output 2.5x input, Volcano Ark's published ratio (CNY 0.8/2 per 1M)"),
    ("doubao-lite", "ByteDance", 128000, "0.01", "0.02", None, None, ["text"],
     "output 2x input, Volcano Ark's published ratio (CNY 0.3/0.6 per 1M)"),
    ("kimi-k2.5", "Moonshot AI", 128000, "0.14", "0.70", "0.023333334", None, ["text", "image"],
     "output 5x and cache hit 1/6 input (rounded up to 1e-9), Moonshot's published ratio ($0.60/$3.00/$0.10)"),
    ("gpt-4o", "OpenAI (via proxy)", 128000, "2.50", "10.00", "1.25", None, ["text", "image"],
     "output and cache as OpenAI's published $2.50/$10.00/$1.25 (developers.openai.com/api/docs/pricing)"),
    ("claude-sonnet-4", "Anthropic (via proxy)", 200000, "3.00", "15.00", "0.30", "3.75", ["text", "image"],
     "output, cache read 0.1x and 5-minute cache write 1.25x as Anthropic's published $3/$15"),
]


def per_million(value):
    """LiteLLM's per-token price (a JSON number) as an exact decimal USD per 1M tokens."""
    d = (Decimal(repr(value)) * 1_000_000).normalize()
    text = format(d, "f")
    if "." in text:
        whole, frac = text.split(".")
        assert len(frac) <= 9, (value, text)
    return text


def modalities(entry):
    mode = entry.get("mode")
    inputs = ["text"]
    if entry.get("supports_vision"):
        inputs.append("image")
    if entry.get("supports_audio_input"):
        inputs.append("audio")
    if entry.get("supports_pdf_input"):
        inputs.append("pdf")
    if mode == "embedding":
        return {"input": inputs, "output": ["embedding"]}
    outputs = ["text"] + (["audio"] if entry.get("supports_audio_output") else [])
    return {"input": inputs, "output": outputs}


def main(path, version):
    data = json.load(open(path))
    models, seen = [], set()
    for (mid, provider, ctx, inp, out, read, write, ins, note) in SEED:
        models.append({
            "id": mid, "provider": provider, "context": ctx,
            "input_usd_per_mtok": inp, "output_usd_per_mtok": out,
            "cached_input_usd_per_mtok": read, "cache_write_usd_per_mtok": write,
            "modalities": {"input": ins, "output": ["text"]},
            "source": SEED_SOURCE + note,
        })
        seen.add(mid)
    models.append({
        "id": "tokenhub-demo", "provider": "TokenHub", "context": 8192,
        "input_usd_per_mtok": "0", "output_usd_per_mtok": "0",
        "cached_input_usd_per_mtok": None, "cache_write_usd_per_mtok": None,
        "modalities": {"input": ["text"], "output": ["text"]},
        "source": "TokenHub: the free offline demo model",
    })
    seen.add("tokenhub-demo")
    picked = []
    for key, entry in sorted(data.items()):
        if not isinstance(entry, dict):
            continue
        provider = entry.get("litellm_provider")
        if provider not in VENDORS:
            continue
        if entry.get("mode") not in ("chat", "completion", "embedding"):
            continue
        if (entry.get("deprecation_date") or "9999") <= TODAY:
            continue
        if "input_cost_per_token" not in entry or "output_cost_per_token" not in entry and entry.get("mode") != "embedding":
            continue
        mid = key[len(provider) + 1:] if key.startswith(provider + "/") else key
        mid = mid.replace("accounts/fireworks/models/", "")
        if "/" in mid and provider in ("openai", "anthropic", "gemini", "deepseek", "mistral", "xai", "dashscope", "moonshot", "zai", "volcengine", "cohere", "perplexity", "minimax"):
            continue  # regional or fine-tune variants
        if mid in seen or any(c.isspace() for c in mid) or ":" in mid and provider == "openai":
            continue
        seen.add(mid)
        vendor_page = entry.get("source")
        source = f"LiteLLM {version} model_prices_and_context_window.json, entry '{key}'"
        if vendor_page:
            source += f" (its source: {vendor_page})"
        picked.append({
            "id": mid, "provider": VENDORS[provider],
            "context": int(entry.get("max_input_tokens") or entry.get("max_tokens") or 0),
            "input_usd_per_mtok": per_million(entry["input_cost_per_token"]),
            "output_usd_per_mtok": per_million(entry.get("output_cost_per_token", 0)),
            "cached_input_usd_per_mtok": per_million(entry["cache_read_input_token_cost"]) if "cache_read_input_token_cost" in entry else None,
            "cache_write_usd_per_mtok": per_million(entry["cache_creation_input_token_cost"]) if "cache_creation_input_token_cost" in entry else None,
            "modalities": modalities(entry),
            "source": source,
        })
    models += picked
    out = {
        "format": "tokenhub-catalogue/1",
        "checked": TODAY,
        "attribution": f"Prices and context windows of the non-seed entries are from LiteLLM {version} "
                       "(model_prices_and_context_window.json), Copyright (c) 2023 Berri AI, MIT License.",
        "models": models,
    }
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    print(f"{len(models)} models", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

// The chat demo (/chat): streams replies from POST /chat/completions token by token,
// renders them as markdown built from DOM nodes (never parsed as HTML), and shows the
// tokens and cost of each reply.
"use strict";

(() => {
  const { el, t } = TH;
  const root = document.getElementById("chat");
  const log = document.getElementById("chat-log");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const picker = document.getElementById("chat-model");
  const send = document.getElementById("chat-send");
  const stop = document.getElementById("chat-stop");
  const meter = document.getElementById("chat-meter");
  const status = document.getElementById("chat-status");
  const account = document.getElementById("chat-account");
  const signedIn = root.dataset.signedIn === "true";
  let history = [];
  let controller = null;
  /** Bumped by "New chat": a reply still streaming for an older conversation is dropped. */
  let conversation = 0;

  if (!picker.options.length || [...picker.options].every((o) => o.disabled)) {
    send.disabled = true;
    input.disabled = true;
  } else if (picker.selectedOptions[0]?.disabled) {
    picker.value = [...picker.options].find((o) => !o.disabled).value;
  }

  // ---------------------------------------------------------------- markdown
  // Emphasis only at word edges: `DEEPSEEK_API_KEY` and `2*3*4` stay as they are.
  const EM_STAR = String.raw`(?<![\p{L}\p{N}_*])\*(?![\s*])[^*\n]+?(?<![\s*])\*(?![\p{L}\p{N}_*])`;
  const EM_UNDERSCORE = String.raw`(?<![\p{L}\p{N}_])_(?![\s_])[^_\n]+?(?<![\s_])_(?![\p{L}\p{N}_])`;
  const INLINE = new RegExp(
    String.raw`(\x60[^\x60\n]+\x60)|(\*\*[^*\n]+\*\*)|(${EM_STAR}|${EM_UNDERSCORE})|\[([^\]\n]+)\]\((https?:\/\/[^)\s]+)\)`,
    "gu",
  );

  function inline(text) {
    const nodes = [];
    let last = 0;
    for (const match of text.matchAll(INLINE)) {
      if (match.index > last) nodes.push(text.slice(last, match.index));
      const [whole, code, strong, em, label, href] = match;
      if (code) nodes.push(el("code", {}, code.slice(1, -1)));
      else if (strong) nodes.push(el("strong", {}, strong.slice(2, -2)));
      else if (em) nodes.push(el("em", {}, em.slice(1, -1)));
      else if (label) nodes.push(el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, label));
      else nodes.push(whole);
      last = match.index + whole.length;
    }
    if (last < text.length) nodes.push(text.slice(last));
    return nodes;
  }

  /** Markdown subset: fenced code, headings, lists, paragraphs, inline code/bold/italic/links. */
  function markdown(source) {
    const out = document.createDocumentFragment();
    const lines = source.split("\n");
    let paragraph = [];
    let list = null;
    const flush = () => {
      if (paragraph.length) out.append(el("p", {}, inline(paragraph.join("\n"))));
      paragraph = [];
      list = null;
    };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const fence = line.match(/^```\s*([\w+-]*)\s*$/);
      if (fence) {
        flush();
        const code = [];
        while (++i < lines.length && !/^```\s*$/.test(lines[i])) code.push(lines[i]);
        out.append(el("pre", {}, el("code", { dataset: fence[1] ? { lang: fence[1] } : undefined }, code.join("\n"))));
        continue;
      }
      const heading = line.match(/^(#{1,4})\s+(.*)$/);
      const item = line.match(/^\s*(?:[-*+]|(\d+)[.)])\s+(.*)$/);
      if (heading) {
        flush();
        out.append(el(`h${Math.min(heading[1].length + 2, 6)}`, {}, inline(heading[2])));
      } else if (item) {
        if (paragraph.length) flush();
        const ordered = item[1] !== undefined;
        if (!list || (list.tagName === "OL") !== ordered) {
          list = el(ordered ? "ol" : "ul");
          out.append(list);
        }
        list.append(el("li", {}, inline(item[2])));
      } else if (!line.trim()) {
        flush();
      } else {
        list = null;
        paragraph.push(line);
      }
    }
    flush();
    return out;
  }

  // ---------------------------------------------------------------- streaming
  function message(role, text) {
    const item = el("li", { class: role });
    if (role === "assistant") item.append(markdown(text));
    else item.textContent = text;
    log.append(item);
    item.scrollIntoView({ block: "end" });
    return item;
  }

  function cost(usage, option) {
    const cached = BigInt(usage.prompt_tokens_details?.cached_tokens || 0);
    const prompt = BigInt(usage.prompt_tokens || 0);
    const completion = BigInt(usage.completion_tokens || 0);
    const numerator =
      (prompt - cached) * BigInt(option.dataset.in) + cached * BigInt(option.dataset.cached) + completion * BigInt(option.dataset.out);
    // The gateway rounds each request up to the next nano-dollar once.
    const nanos = (numerator + 999999n) / 1000000n;
    return TH.nanosToUsd(nanos);
  }

  /** Reads an SSE body, calling `onEvent` with each parsed `data:` JSON. */
  async function readEvents(body, onEvent) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        const data = block
          .split(/\r?\n/)
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trimStart())
          .join("\n");
        if (!data) continue;
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }

  function busy(on) {
    send.hidden = on;
    stop.hidden = !on;
    // The input stays editable: the next message can be written while this one streams.
    picker.disabled = on;
  }

  /** Prices of the chosen model and, signed in, the balance (refreshed after each reply). */
  let accountRequests = 0;
  async function showAccount() {
    if (!signedIn) return;
    // Calls overlap (start-up, a model change, a reply's end): only the latest may write,
    // and it reads the model as chosen when its answer arrives, not when it asked.
    const request = ++accountRequests;
    let balance = "";
    try {
      const me = await TH.api("GET", "/api/me");
      balance = t("chat.balance", { amount: TH.usd(me.live_balance_usd) });
    } catch {
      // The prices still show; the balance comes back with the next reply.
    }
    if (request !== accountRequests) return;
    const option = picker.selectedOptions[0];
    const price = (nanos) => TH.usd(TH.nanosToUsd(nanos));
    const prices = option ? t("chat.prices", { model: option.value, input: price(option.dataset.in), output: price(option.dataset.out) }) : "";
    account.textContent = prices + balance;
    account.hidden = false;
  }

  /** The billed cost of request `id`, once its usage record is written (signed in only). */
  async function billedCost(id) {
    for (let attempt = 0; attempt < 10 && id; attempt++) {
      const recent = await TH.api("GET", "/api/me/usage?limit=20").catch(() => null);
      const record = recent?.data.find((r) => r.request_id === id);
      if (record) return record;
      await new Promise((r) => setTimeout(r, 300));
    }
    return null;
  }

  async function ask(text) {
    const mine = conversation;
    const current = () => mine === conversation;
    const option = picker.selectedOptions[0];
    history.push({ role: "user", content: text });
    // What this request sends: later edits of `history` (New chat) cannot reach it.
    const messages = history.slice();
    message("user", text);
    const reply = message("assistant", "");
    reply.setAttribute("aria-busy", "true");
    let answer = "";
    let usage = null;
    let requestId = null;
    controller = new AbortController();
    busy(true);
    meter.textContent = "";
    status.textContent = t("chat.waiting");
    try {
      const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
      if (signedIn && TH.csrfToken()) headers["X-CSRF-Token"] = TH.csrfToken();
      const response = await fetch("/chat/completions", {
        method: "POST",
        headers,
        credentials: "same-origin",
        signal: controller.signal,
        body: JSON.stringify({ model: option.value, messages, stream: true, stream_options: { include_usage: true } }),
      });
      requestId = response.headers.get("x-request-id");
      if (!response.ok) {
        const failure = await response.json().catch(() => ({}));
        throw new Error(failure.error?.message || `HTTP ${response.status}`);
      }
      await readEvents(response.body, (event) => {
        if (event.error) throw new Error(event.error.message || t("chat.upstream_failed"));
        const delta = event.choices?.[0]?.delta?.content;
        if (delta) {
          answer += delta;
          reply.replaceChildren(markdown(answer));
          reply.scrollIntoView({ block: "end" });
        }
        if (event.usage) usage = event.usage;
      });
      if (!current()) return;
      history.push({ role: "assistant", content: answer });
      status.textContent = t("chat.reply", { text: answer });
      if (usage) {
        meter.textContent = t("chat.meter", { prompt: usage.prompt_tokens, completion: usage.completion_tokens, cost: TH.usd(cost(usage, option)) });
      }
    } catch (error) {
      if (!current()) return;
      if (error.name === "AbortError") {
        if (answer) history.push({ role: "assistant", content: answer });
        status.textContent = t("chat.stopped");
        meter.textContent = t("chat.stopped_billing");
        if (signedIn) {
          const record = await billedCost(requestId);
          if (record && current()) {
            meter.textContent = t("chat.stopped_billed", { prompt: record.prompt_tokens, completion: record.completion_tokens, cost: TH.usd(record.cost_usd) });
          }
        }
      } else {
        history.pop();
        if (!answer) reply.remove();
        message("error", error.message).setAttribute("role", "alert");
        status.textContent = "";
      }
    } finally {
      reply.removeAttribute("aria-busy");
      if (current()) {
        controller = null;
        busy(false);
        input.focus();
        showAccount();
      }
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = "";
    ask(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener("click", () => controller?.abort());
  picker.addEventListener("change", showAccount);
  document.getElementById("chat-clear").addEventListener("click", () => {
    // The streaming reply belongs to the old conversation: stop it and forget it.
    conversation++;
    controller?.abort();
    controller = null;
    busy(false);
    history = [];
    log.replaceChildren();
    meter.textContent = "";
    status.textContent = t("chat.new_chat_started");
    input.focus();
  });

  if (signedIn) TH.session().then(showAccount);
})();

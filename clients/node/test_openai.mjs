// The official `openai` npm package against a TokenHub gateway relaying to mock-upstream.
// Run by scripts/client-tests.sh with `node --test`; it exports TOKENHUB_BASE_URL,
// TOKENHUB_API_KEY, TOKENHUB_BIN, TOKENHUB_CONFIG and TOKENHUB_DATABASE_URL.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import OpenAI from 'openai';

for (const name of ['TOKENHUB_BASE_URL', 'TOKENHUB_API_KEY', 'TOKENHUB_BIN', 'TOKENHUB_CONFIG', 'TOKENHUB_DATABASE_URL']) {
  if (!process.env[name]) {
    throw new Error(`missing environment ${name}: run these tests through scripts/client-tests.sh`);
  }
}

const MESSAGES = [{ role: 'user', content: 'Hello there' }];
const MOCK_REPLY = 'Hello from mock-upstream! You said: Hello there';
const PROMPT_TOKENS = 5; // 2 words + 3 for the message
const COMPLETION_TOKENS = 7; // words in MOCK_REPLY
const COST_NANO = PROMPT_TOKENS * 1000 + COMPLETION_TOKENS * 2000; // $1 / $2 per 1M tokens

const client = new OpenAI({
  baseURL: process.env.TOKENHUB_BASE_URL,
  apiKey: process.env.TOKENHUB_API_KEY,
  maxRetries: 0,
  timeout: 30_000,
});

// Polls `tokenhub usage get` (the ledger writer batches within ~100 ms).
async function usageRecord(requestId, timeoutMs = 5000) {
  assert.match(requestId ?? '', /^req_/, `bad x-request-id ${requestId}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const out = execFileSync(process.env.TOKENHUB_BIN, ['usage', 'get', requestId], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 30_000,
      });
      return JSON.parse(out);
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`no usage record for ${requestId} after ${timeoutMs} ms: ${err.stderr ?? err}`);
      }
    }
    await sleep(100);
  }
}

function assertBilled(record, { stream }) {
  assert.equal(record.status, 200);
  assert.equal(record.model, 'mock-gpt');
  assert.equal(record.prompt_tokens, PROMPT_TOKENS);
  assert.equal(record.completion_tokens, COMPLETION_TOKENS);
  assert.equal(record.cost, COST_NANO);
  assert.equal(record.stream, stream);
  assert.equal(record.estimated, false);
}

test('streaming mock-gpt yields the exact text', async () => {
  const { data: stream, response } = await client.chat.completions
    .create({ model: 'mock-gpt', messages: MESSAGES, stream: true })
    .withResponse();
  assert.ok(response.headers.get('x-request-id'), 'x-request-id header missing');
  let text = '';
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    assert.ok(chunk.choices.length > 0, `client saw a chunk with empty choices: ${JSON.stringify(chunk)}`);
    text += chunk.choices[0].delta?.content ?? '';
  }
  assert.ok(chunks >= 2, `expected several chunks, got ${chunks}`);
  assert.equal(text, MOCK_REPLY);
  assertBilled(await usageRecord(response.headers.get('x-request-id')), { stream: true });
});

test('streaming with include_usage ends with a usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'mock-gpt',
    messages: MESSAGES,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.prompt_tokens, PROMPT_TOKENS);
  assert.equal(last.usage.completion_tokens, COMPLETION_TOKENS);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, MOCK_REPLY);
});

test('non-streaming mock-gpt returns text and usage, and is billed exactly', async () => {
  const { data: completion, response } = await client.chat.completions
    .create({ model: 'mock-gpt', messages: MESSAGES })
    .withResponse();
  assert.equal(completion.choices[0].message.content, MOCK_REPLY);
  assert.equal(completion.usage.prompt_tokens, PROMPT_TOKENS);
  assert.equal(completion.usage.completion_tokens, COMPLETION_TOKENS);
  assert.equal(completion.usage.total_tokens, PROMPT_TOKENS + COMPLETION_TOKENS);

  const requestId = response.headers.get('x-request-id');
  const record = await usageRecord(requestId);
  assert.equal(record.request_id, requestId);
  assertBilled(record, { stream: false });
  assert.equal(record.cost_usd, '0.000019');
});

test('a bad key is an AuthenticationError (401)', async () => {
  const bad = new OpenAI({ baseURL: process.env.TOKENHUB_BASE_URL, apiKey: 'sk-nope', maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'mock-gpt', messages: MESSAGES }), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err}`);
    assert.equal(err.status, 401);
    assert.equal(err.code, 'invalid_api_key');
    return true;
  });
});

test('the README snippet streams the demo model', async () => {
  const readme = new OpenAI({ apiKey: process.env.TOKENHUB_API_KEY, baseURL: process.env.TOKENHUB_BASE_URL, maxRetries: 0 });
  const stream = await readme.chat.completions.create({ model: 'tokenhub-demo', stream: true,
    messages: [{ role: 'user', content: 'Hello!' }] });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(
    text,
    'Hello! I am TokenHub\'s built-in demo model, running offline inside the gateway. You said: "Hello!". ' +
      'Add a provider key (for example DEEPSEEK_API_KEY) to talk to a real model.',
  );
});

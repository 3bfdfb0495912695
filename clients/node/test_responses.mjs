// The Responses API from Node: the official `openai` package's `client.responses`, and the
// Vercel AI SDK's default OpenAI provider (`createOpenAI(...)("model")` uses
// /v1/responses) with `streamText` and `generateText`. Run by scripts/client-tests.sh.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';

for (const name of ['TOKENHUB_BASE_URL', 'TOKENHUB_API_KEY']) {
  if (!process.env[name]) {
    throw new Error(`missing environment ${name}: run these tests through scripts/client-tests.sh`);
  }
}

const MOCK_REPLY = 'Hello from mock-upstream! You said: Hello there';

const client = new OpenAI({
  baseURL: process.env.TOKENHUB_BASE_URL,
  apiKey: process.env.TOKENHUB_API_KEY,
  maxRetries: 0,
  timeout: 30_000,
});

test('responses.create, stream and previous_response_id', async () => {
  const response = await client.responses.create({ model: 'mock-gpt', input: 'Hello there' });
  assert.equal(response.output_text, MOCK_REPLY);
  assert.equal(response.usage.input_tokens, 5);
  assert.equal(response.usage.output_tokens, 7);

  const stream = await client.responses.create({
    model: 'mock-gpt',
    input: 'And again',
    previous_response_id: response.id,
    stream: true,
  });
  let text = '';
  let completed;
  for await (const event of stream) {
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') completed = event.response;
  }
  assert.equal(text, 'Hello from mock-upstream! You said: And again');
  assert.equal(completed.previous_response_id, response.id);
  // Two user turns and one assistant turn replayed: (2+3) + (7+3) + (2+3) tokens.
  assert.equal(completed.usage.input_tokens, 20);

  const fetched = await client.responses.retrieve(completed.id);
  assert.equal(fetched.output_text, text);
});

test('AI SDK default provider: streamText and generateText over /v1/responses', async () => {
  const openai = createOpenAI({
    baseURL: process.env.TOKENHUB_BASE_URL,
    apiKey: process.env.TOKENHUB_API_KEY,
  });
  const result = streamText({ model: openai('mock-gpt'), prompt: 'Hello there', maxRetries: 0 });
  let text = '';
  for await (const piece of result.textStream) text += piece;
  assert.equal(text, MOCK_REPLY);
  const usage = await result.usage;
  assert.equal(usage.inputTokens, 5);
  assert.equal(usage.outputTokens, 7);
  assert.equal(await result.finishReason, 'stop');

  const generated = await generateText({ model: openai('mock-gpt'), prompt: 'Hello there', maxRetries: 0 });
  assert.equal(generated.text, MOCK_REPLY);
  assert.match(generated.response.id, /^resp_/);
});

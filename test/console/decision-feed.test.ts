import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { openAuditLog, type AuditLog } from '../../src/audit/writer.js';
import { DecisionFeed, type FeedItem } from '../../src/console/decision-feed.js';
import { createLogger } from '../../src/proxy/log.js';
import { tempDir } from '../helpers.js';
import { eventually } from './helpers.js';

const log = createLogger({ write: () => undefined });
const feeds: DecisionFeed[] = [];
const audits: AuditLog[] = [];
afterEach(async () => {
  for (const f of feeds.splice(0)) f.close();
  for (const a of audits.splice(0)) await a.close();
});

async function setup(history: number, lingerMs = 50) {
  const path = join(tempDir('capframe-feed-'), 'audit.log');
  const audit = await openAuditLog(path);
  audits.push(audit);
  const feed = new DecisionFeed(path, { history, lingerMs, pollIntervalMs: 50, log });
  feeds.push(feed);
  const append = async (tool: string) => {
    audit.append({ agent: 'bot', tool, decision: 'allow', code: 'ok', tokenId: null, latencyUs: 1, reason: 'r' });
    await audit.flush();
  };
  return { feed, append };
}

const tools = (items: FeedItem[]) => items.map((i) => i?.tool ?? null);

describe('DecisionFeed', () => {
  it('follows only while subscribed: recent history first, then every new line once, to every subscriber', async () => {
    const { feed, append } = await setup(2);
    for (const t of ['a', 'b', 'c']) await append(t);
    expect(feed.running).toBe(false);

    const first: FeedItem[] = [];
    const stopFirst = feed.subscribe((i) => first.push(i));
    expect(feed.running).toBe(true);
    await eventually(() => (first.length >= 2 ? true : undefined), 'the history');
    expect(tools(first)).toEqual(['b', 'c']);

    const second: FeedItem[] = [];
    const stopSecond = feed.subscribe((i) => second.push(i));
    expect(tools(second)).toEqual(['b', 'c']); // replayed at once from memory
    await append('d');
    await eventually(() => (first.length === 3 && second.length === 3 ? true : undefined), 'the new line on both');
    expect(tools(first)).toEqual(['b', 'c', 'd']);
    expect(tools(second)).toEqual(['b', 'c', 'd']);

    stopFirst();
    stopSecond();
    await eventually(() => (feed.running ? undefined : true), 'the follower to stop after the linger');
    await append('e');
    await new Promise((r) => setTimeout(r, 200));
    expect(tools(first)).toEqual(['b', 'c', 'd']);
  });

  it('a subscriber that comes back within the linger keeps the same follower', async () => {
    const { feed } = await setup(5, 5_000);
    const stop = feed.subscribe(() => undefined);
    stop();
    expect(feed.running).toBe(true);
    feed.subscribe(() => undefined);
    expect(feed.running).toBe(true);
    feed.close();
    expect(feed.running).toBe(false);
    expect(feed.subscribe(() => undefined)).toBeTypeOf('function');
    expect(feed.running).toBe(false);
  });
});

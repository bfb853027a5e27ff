import { describe, expect, it } from 'vitest';

import { ConsoleSessions } from '../../src/console/sessions.js';

const limits = { idleMs: 1000, absoluteMs: 5000, max: 3 };

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('ConsoleSessions', () => {
  it('a session is found by its id only; ids and CSRF tokens are 256-bit random and distinct', () => {
    const sessions = new ConsoleSessions(limits);
    const a = sessions.create();
    const b = sessions.create();
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(new Set([a.id, b.id, a.session.csrf, b.session.csrf]).size).toBe(4);
    expect(sessions.get(a.id)).toBe(a.session);
    expect(sessions.get(a.id.slice(0, -1))).toBeUndefined();
    expect(sessions.get('')).toBeUndefined();
    expect(sessions.get(undefined)).toBeUndefined();
    expect(sessions.get('x'.repeat(10_000))).toBeUndefined();
  });

  it('CSRF tokens match only their own session', () => {
    const sessions = new ConsoleSessions(limits);
    const a = sessions.create().session;
    const b = sessions.create().session;
    expect(sessions.csrfMatches(a, a.csrf)).toBe(true);
    expect(sessions.csrfMatches(a, b.csrf)).toBe(false);
    expect(sessions.csrfMatches(a, undefined)).toBe(false);
    expect(sessions.csrfMatches(a, '')).toBe(false);
  });

  it('ends a session idle too long, and any session at its absolute lifetime however busy', () => {
    const c = clock();
    const sessions = new ConsoleSessions(limits, c.now);
    const idle = sessions.create();
    const busy = sessions.create();
    for (let i = 0; i < 4; i++) {
      c.advance(900);
      expect(sessions.get(busy.id)).toBeDefined();
    }
    expect(sessions.get(idle.id)).toBeUndefined();
    expect(sessions.alive(idle.session)).toBe(false);
    c.advance(900); // 4500 ms after login: still under the absolute limit
    expect(sessions.get(busy.id)).toBeDefined();
    c.advance(600);
    expect(sessions.get(busy.id)).toBeUndefined();
  });

  it('a full table evicts the least recently used session and closes its streams; destroy and clear do too', () => {
    const sessions = new ConsoleSessions(limits);
    const made = [sessions.create(), sessions.create(), sessions.create()];
    const closed: string[] = [];
    made.forEach((m, i) => m.session.closers.add(() => closed.push(`s${i}`)));
    sessions.get(made[0]!.id); // s0 used: s1 is now the least recent
    sessions.create();
    expect(closed).toEqual(['s1']);
    expect(sessions.get(made[1]!.id)).toBeUndefined();
    expect(sessions.size).toBe(3);
    sessions.destroy(made[0]!.id);
    expect(closed).toEqual(['s1', 's0']);
    expect(sessions.alive(made[0]!.session)).toBe(false);
    sessions.clear();
    expect(closed).toEqual(['s1', 's0', 's2']);
    expect(sessions.size).toBe(0);
  });
});

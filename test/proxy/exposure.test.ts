/**
 * The names clients see: qualified names always work; own names (`names: upstream`) are
 * shown only when no one else claims them; resource URIs without a server prefix go to
 * the one server that may own them.
 */
import { describe, expect, it } from 'vitest';

import { Exposure, type ServedNames } from '../../src/proxy/exposure.js';

function served(server: string, mode: 'qualified' | 'upstream', lists: Partial<Omit<ServedNames, 'server' | 'mode'>> = {}): ServedNames {
  return { server, mode, tools: [], prompts: [], servesResources: false, resources: [], templates: [], ...lists };
}

describe('tools and prompts', () => {
  it('qualified servers show <server>.<name>; own-name servers show their names, and both resolve', () => {
    const ex = new Exposure([served('db', 'qualified', { tools: ['query'] }), served('conf', 'upstream', { tools: ['test_simple_text'], prompts: ['simple'] })]);
    expect(ex.shown('tool', 'db', 'query')).toBe('db.query');
    expect(ex.shown('tool', 'conf', 'test_simple_text')).toBe('test_simple_text');
    expect(ex.tool('test_simple_text')).toEqual({ server: 'conf', name: 'test_simple_text' });
    expect(ex.tool('conf.test_simple_text')).toEqual({ server: 'conf', name: 'test_simple_text' });
    expect(ex.tool('db.query')).toEqual({ server: 'db', name: 'query' });
    expect(ex.tool('query')).toBeUndefined();
    expect(ex.prompt('simple')).toEqual({ server: 'conf', name: 'simple' });
    expect(ex.collisions).toEqual([]);
  });

  it('withholds an own name two servers claim, from both, and logs the collision', () => {
    const ex = new Exposure([served('a', 'upstream', { tools: ['search', 'only_a'] }), served('b', 'upstream', { tools: ['search'] })]);
    expect(ex.shown('tool', 'a', 'search')).toBeUndefined();
    expect(ex.shown('tool', 'b', 'search')).toBeUndefined();
    expect(ex.tool('search')).toBeUndefined();
    expect(ex.shown('tool', 'a', 'only_a')).toBe('only_a');
    // The qualified names stay usable.
    expect(ex.tool('a.search')).toEqual({ server: 'a', name: 'search' });
    expect(ex.collisions).toEqual([{ kind: 'tool', name: 'search', servers: ['a', 'b'] }]);
  });

  it("withholds an own name equal to a qualified name or to the proxy's request_token", () => {
    const ex = new Exposure([served('db', 'qualified', { tools: ['query'] }), served('x', 'upstream', { tools: ['db.query', 'capframe.request_token'] })]);
    expect(ex.tool('db.query')).toEqual({ server: 'db', name: 'query' });
    expect(ex.shown('tool', 'x', 'db.query')).toBeUndefined();
    expect(ex.shown('tool', 'x', 'capframe.request_token')).toBeUndefined();
    expect(ex.tool('capframe.request_token')).toBeUndefined();
    expect(ex.collisions.map((c) => c.name).sort()).toEqual(['capframe.request_token', 'db.query']);
  });

  it('keeps tools and prompts apart: a tool and a prompt may share a name', () => {
    const ex = new Exposure([served('a', 'upstream', { tools: ['summarize'] }), served('b', 'upstream', { prompts: ['summarize'] })]);
    expect(ex.tool('summarize')).toEqual({ server: 'a', name: 'summarize' });
    expect(ex.prompt('summarize')).toEqual({ server: 'b', name: 'summarize' });
  });
});

describe('resources', () => {
  it('routes <server>:<uri> to that server, whatever the URI says after the first colon', () => {
    const ex = new Exposure([served('docs', 'qualified', { servesResources: true }), served('other', 'qualified', { servesResources: true })]);
    expect(ex.resource('docs:file:///srv/a.md')).toEqual({ server: 'docs', name: 'file:///srv/a.md' });
    expect(ex.resource('docs:other:secret://x')).toEqual({ server: 'docs', name: 'other:secret://x' });
    expect(ex.shownUri('resource', 'docs', 'file:///a')).toBe('docs:file:///a');
    expect(ex.resource('file:///srv/a.md')).toBeUndefined();
    expect(ex.resource('nope:x://y')).toBeUndefined();
  });

  it('gives URIs without a prefix to the one own-name server that serves resources', () => {
    const ex = new Exposure([served('conf', 'upstream', { servesResources: true, resources: ['test://static-text'], templates: ['test://template/{id}/data'] }), served('db', 'qualified', { servesResources: true })]);
    expect(ex.resourceOwner).toBe('conf');
    expect(ex.resource('test://static-text')).toEqual({ server: 'conf', name: 'test://static-text' });
    expect(ex.resource('test://template/42/data')).toEqual({ server: 'conf', name: 'test://template/42/data' });
    expect(ex.shownUri('resource', 'conf', 'test://static-text')).toBe('test://static-text');
    expect(ex.shownUri('template', 'conf', 'test://template/{id}/data')).toBe('test://template/{id}/data');
    // Its qualified form works too.
    expect(ex.resource('conf:test://static-text')).toEqual({ server: 'conf', name: 'test://static-text' });
  });

  it('withholds an own URI that reads as another server prefix, and everything without a prefix when two servers could own it', () => {
    const ex = new Exposure([served('conf', 'upstream', { servesResources: true, resources: ['db:rows/1', 'test://a'] }), served('db', 'qualified', { servesResources: true })]);
    expect(ex.shownUri('resource', 'conf', 'db:rows/1')).toBeUndefined();
    expect(ex.resource('db:rows/1')).toEqual({ server: 'db', name: 'rows/1' });
    expect(ex.collisions).toEqual([{ kind: 'resource', name: 'db:rows/1', servers: ['conf', 'db'] }]);

    const two = new Exposure([served('a', 'upstream', { servesResources: true, resources: ['x://1'] }), served('b', 'upstream', { servesResources: true, resources: ['y://1'] })]);
    expect(two.resourceOwner).toBeUndefined();
    expect(two.resource('x://1')).toBeUndefined();
    expect(two.shownUri('resource', 'a', 'x://1')).toBeUndefined();
    expect(two.resource('a:x://1')).toEqual({ server: 'a', name: 'x://1' });
    expect(two.collisions).toEqual([{ kind: 'resource', name: '(URIs without a server prefix)', servers: ['a', 'b'] }]);
  });
});

/**
 * The names clients see (SPEC §6). A server served under qualified names (the default)
 * shows its tools and prompts as `<server>.<name>` and its resources as `<server>:<uri>`,
 * the names rules, tokens and the audit log use. A server with `names: upstream` shows
 * them under the upstream's own names, for clients that expect a transparent proxy; they
 * are still decided under their qualified names, which keep working too.
 *
 * Own names can collide: with another server's own name, with a qualified name, with the
 * proxy's `capframe.request_token`, or (for resources) with a server prefix. A name two
 * parties claim is served to neither: each claimant is withheld and logged, and the call
 * or read by that name fails. Collisions are judged on the last list every server
 * returned, up or down, so a server going away never hands its names to another.
 *
 * Resource URIs of `names: upstream` servers need an owner when they are read without a
 * list entry (a template's expansion): that is the one such server that serves resources.
 * With two, neither's resources are exposed under own names.
 */
import { splitResourceName } from '../policy/resource-name.js';

/** The proxy's own tool, which no upstream name may take. */
const RESERVED_TOOL = 'capframe.request_token';

/** What the exposure is built from: each server's names, as last listed. */
export interface ServedNames {
  server: string;
  mode: 'qualified' | 'upstream';
  tools: Iterable<string>;
  prompts: Iterable<string>;
  /** The server declared the resources capability. */
  servesResources: boolean;
  resources: Iterable<string>;
  templates: Iterable<string>;
}

/** A name a client can use, and what it stands for. */
export interface Exposed {
  server: string;
  /** The upstream's own name (tool, prompt) or URI (resource, template). */
  name: string;
}

/** A collision, for the log: the contested name and who claimed it. */
export interface Collision {
  kind: 'tool' | 'prompt' | 'resource' | 'template';
  name: string;
  servers: string[];
}

/**
 * The exposure of every server's names.
 *
 * @example
 * const ex = new Exposure([{ server: 'conformance', mode: 'upstream', tools: ['test_simple_text'], prompts: [], servesResources: false, resources: [], templates: [] }]);
 * ex.tool('test_simple_text'); // 'conformance.test_simple_text'
 */
export class Exposure {
  private readonly tools = new Map<string, Exposed>();
  private readonly prompts = new Map<string, Exposed>();
  /** Own names withheld because they collide, per kind (server → names), for listing. */
  private readonly withheld = { tool: new Map<string, Set<string>>(), prompt: new Map<string, Set<string>>(), resource: new Map<string, Set<string>>(), template: new Map<string, Set<string>>() };
  private readonly modes = new Map<string, 'qualified' | 'upstream'>();
  /** The server that owns URIs without a server prefix, if exactly one may. */
  readonly resourceOwner: string | undefined;
  readonly collisions: Collision[] = [];

  constructor(servers: readonly ServedNames[]) {
    for (const s of servers) this.modes.set(s.server, s.mode);
    this.expose('tool', servers, (s) => s.tools, [RESERVED_TOOL]);
    this.expose('prompt', servers, (s) => s.prompts, []);

    const owners = servers.filter((s) => s.mode === 'upstream' && s.servesResources);
    this.resourceOwner = owners.length === 1 ? owners[0]!.server : undefined;
    if (owners.length > 1) {
      this.collisions.push({ kind: 'resource', name: '(URIs without a server prefix)', servers: owners.map((s) => s.server) });
    }
    const owner = owners.length === 1 ? owners[0]! : undefined;
    if (owner !== undefined) {
      for (const [kind, names] of [
        ['resource', owner.resources],
        ['template', owner.templates],
      ] as const) {
        for (const uri of names) {
          // A URI that reads as `<server>:…` would be routed to that server, not to its owner.
          const prefix = splitResourceName(uri)?.server;
          if (prefix !== undefined && this.modes.has(prefix)) {
            this.withhold(kind, owner.server, uri);
            this.collisions.push({ kind, name: uri, servers: [owner.server, prefix] });
          }
        }
      }
    }
  }

  private withhold(kind: keyof Exposure['withheld'], server: string, name: string): void {
    let set = this.withheld[kind].get(server);
    if (set === undefined) this.withheld[kind].set(server, (set = new Set()));
    set.add(name);
  }

  /** Builds the table of one kind: every qualified name, plus own names no one else claims. */
  private expose(kind: 'tool' | 'prompt', servers: readonly ServedNames[], names: (s: ServedNames) => Iterable<string>, reserved: string[]): void {
    const table = kind === 'tool' ? this.tools : this.prompts;
    const claims = new Map<string, Exposed[]>();
    for (const s of servers) {
      for (const name of names(s)) {
        const qualified = `${s.server}.${name}`;
        table.set(qualified, { server: s.server, name });
        if (s.mode === 'upstream') {
          const list = claims.get(name);
          if (list === undefined) claims.set(name, [{ server: s.server, name }]);
          else list.push({ server: s.server, name });
        }
      }
    }
    for (const [own, claimants] of claims) {
      if (claimants.length === 1 && !table.has(own) && !reserved.includes(own)) {
        table.set(own, claimants[0]!);
        continue;
      }
      const servers = claimants.map((c) => c.server);
      const other = table.get(own);
      if (other !== undefined) servers.push(other.server);
      this.collisions.push({ kind, name: own, servers: [...new Set(servers)] });
      for (const c of claimants) this.withhold(kind, c.server, own);
    }
  }

  /** Whether `server` is served under its own names. */
  ownNames(server: string): boolean {
    return this.modes.get(server) === 'upstream';
  }

  /** The name a client sees for a server's tool or prompt, or undefined when it is withheld. */
  shown(kind: 'tool' | 'prompt', server: string, name: string): string | undefined {
    if (this.modes.get(server) !== 'upstream') return `${server}.${name}`;
    return this.withheld[kind].get(server)?.has(name) === true ? undefined : name;
  }

  /** The URI a client sees for a server's resource or template, or undefined when it is withheld. */
  shownUri(kind: 'resource' | 'template', server: string, uri: string): string | undefined {
    if (this.modes.get(server) !== 'upstream') return `${server}:${uri}`;
    return this.withheld[kind].get(server)?.has(uri) === true || this.resourceOwner !== server ? undefined : uri;
  }

  /** What a tool name a client used stands for: a qualified name, or an own name no one else claims. */
  tool(name: string): Exposed | undefined {
    return this.tools.get(name);
  }

  /** What a prompt name a client used stands for. */
  prompt(name: string): Exposed | undefined {
    return this.prompts.get(name);
  }

  /**
   * Where a URI a client used goes: `<server>:<uri>` for a configured server (whatever its
   * names mode), else the resource owner, if there is one and the URI is not withheld.
   */
  resource(wire: string): Exposed | undefined {
    const parts = splitResourceName(wire);
    if (parts !== undefined && this.modes.has(parts.server)) return { server: parts.server, name: parts.uri };
    const owner = this.resourceOwner;
    if (owner === undefined) return undefined;
    if (this.withheld.resource.get(owner)?.has(wire) === true || this.withheld.template.get(owner)?.has(wire) === true) return undefined;
    return { server: owner, name: wire };
  }
}

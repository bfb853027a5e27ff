/** A store's up/down state as `/healthz` shows it: since when, why, how many reconnects. */
import type { StoreHealth, StoreKind } from './types.js';

export class HealthState {
  private up = true;
  private since = new Date().toISOString();
  private reason: string | undefined;
  reconnects = 0;

  constructor(
    private readonly kind: StoreKind,
    private readonly location: string,
    initiallyUp = true,
  ) {
    this.up = initiallyUp;
  }

  /** Records the state; `since` only moves when `up` changes. */
  mark(up: boolean, reason?: string): void {
    if (up !== this.up) this.since = new Date().toISOString();
    this.up = up;
    this.reason = up ? undefined : reason;
  }

  get isUp(): boolean {
    return this.up;
  }

  snapshot(): StoreHealth {
    return {
      kind: this.kind,
      location: this.location,
      up: this.up,
      since: this.since,
      ...(this.reason !== undefined && { reason: this.reason }),
      reconnects: this.reconnects,
    };
  }
}

/**
 * A clock for the global setTimeout/clearTimeout that moves only when a test
 * says so: a timeout's effect is asserted at the tick that crosses it, never
 * against the wall clock (a loaded CI machine stretches every wall-clock
 * bound). setImmediate and process.nextTick stay real, so streams still flow.
 */
interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/** What code under test gets back from setTimeout: enough of NodeJS.Timeout for ref/unref/clear. */
class FakeTimeout {
  constructor(readonly id: number) {}
  ref(): this { return this; }
  unref(): this { return this; }
  hasRef(): boolean { return false; }
  [Symbol.toPrimitive](): number { return this.id; }
}

export class FakeClock {
  private now = 0;
  private nextId = 1;
  private readonly timers = new Map<number, FakeTimer>();
  private readonly saved = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };

  /** Replaces the global setTimeout/clearTimeout until uninstall(). */
  install(): this {
    const g = globalThis as unknown as Record<string, unknown>;
    g.setTimeout = (fn: (...args: unknown[]) => void, ms = 0, ...args: unknown[]) => {
      const id = this.nextId++;
      this.timers.set(id, { id, at: this.now + Math.max(0, Number(ms) || 0), fn: () => fn(...args) });
      return new FakeTimeout(id);
    };
    g.clearTimeout = (t: unknown) => {
      if (t instanceof FakeTimeout) this.timers.delete(t.id);
      else if (typeof t === 'number') this.timers.delete(t);
    };
    return this;
  }

  uninstall(): void {
    Object.assign(globalThis, this.saved);
    this.timers.clear();
  }

  /** Timers armed and not yet fired or cleared. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Moves the clock `ms` forward, firing each timer that comes due in
   * order. Real I/O callbacks run first (what was written arms its timers
   * at the present time) and after each timer (what it did is seen).
   */
  async tick(ms: number): Promise<void> {
    await settle();
    const until = this.now + ms;
    for (;;) {
      const due = [...this.timers.values()].filter((t) => t.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers.delete(due.id);
      this.now = due.at;
      due.fn();
      await settle();
    }
    this.now = until;
    await settle();
  }
}

/** Lets pending I/O and promise callbacks run: a few real event-loop turns. */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

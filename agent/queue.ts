// A bounded queue with an explicit drop policy: when a camera produces faster than the device can
// embed, its frames are dropped (oldest or newest first) so memory stays flat. Promised items (an
// upload answered 201, an inbox file, a labelled sample) are never dropped; they may push the queue
// over its limit instead, and patient sources wait for room before they add one.

export interface QueueItem {
  /** Someone was told this item is kept: it is never dropped. */
  promised: boolean;
}

export class BoundedQueue<T extends QueueItem> {
  private items: T[] = [];
  dropped = 0;

  constructor(
    readonly limit: number,
    readonly drop: 'oldest' | 'newest',
    private readonly onDrop: (item: T) => void = () => {},
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** Adds an item; returns false when the item itself was dropped. */
  push(item: T): boolean {
    if (this.items.length < this.limit || item.promised) {
      this.items.push(item);
      return true;
    }
    if (this.drop === 'oldest') {
      const index = this.items.findIndex((i) => !i.promised);
      if (index >= 0) {
        const [victim] = this.items.splice(index, 1);
        this.dropped++;
        this.onDrop(victim!);
        this.items.push(item);
        return true;
      }
    }
    this.dropped++;
    this.onDrop(item);
    return false;
  }

  /** True when `push` would keep this item. */
  wouldKeep(item: T): boolean {
    return this.items.length < this.limit || item.promised || (this.drop === 'oldest' && this.items.some((i) => !i.promised));
  }

  has(match: (item: T) => boolean): boolean {
    return this.items.some(match);
  }

  /** Removes the items matching `match` (a deleted sample's job). */
  remove(match: (item: T) => boolean): number {
    const before = this.items.length;
    this.items = this.items.filter((i) => !match(i));
    return before - this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  clear(): T[] {
    const all = this.items;
    this.items = [];
    return all;
  }
}

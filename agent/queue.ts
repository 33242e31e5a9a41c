// A bounded queue with an explicit drop policy: when a camera produces faster than the device can
// embed, unlabelled items are dropped (oldest or newest first) so memory stays flat. Labelled items
// carry a person's work and are never dropped; they may push the queue over its limit instead.

export interface QueueItem {
  labelled: boolean;
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
    if (this.items.length < this.limit || item.labelled) {
      this.items.push(item);
      return true;
    }
    if (this.drop === 'oldest') {
      const index = this.items.findIndex((i) => !i.labelled);
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

  shift(): T | undefined {
    return this.items.shift();
  }

  clear(): T[] {
    const all = this.items;
    this.items = [];
    return all;
  }
}

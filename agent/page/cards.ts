// The grid of sample cards. A card is made once per sample and then only updated in place: new
// samples are appended below or wait behind the "N new" bar, a deleted one leaves a tombstone in its
// place, so the card under the pointer never moves.

import type { SampleJson } from '../api-types.js';
import { child, el, setText } from '../../web/dom.js';

export interface CardActions {
  label(ids: string[], label: string | null): void;
  remove(id: string): void;
  focus(id: string): void;
}

interface Card {
  root: HTMLElement;
  sample: SampleJson;
  deleted: boolean;
}

const predictionText = (s: SampleJson) =>
  s.prediction
    ? `predicted: ${s.prediction} (${Math.round((s.predictionScore ?? 0) * 100)} %)${s.predictionHead == null ? '' : ` · head v${s.predictionHead}`}`
    : 'no prediction yet';

export class CardGrid {
  private readonly cards = new Map<string, Card>();
  readonly selected = new Set<string>();
  focusedId: string | null = null;
  private classes: string[] = [];

  constructor(
    private readonly container: HTMLElement,
    private readonly actions: CardActions,
    private readonly onSelection: () => void,
  ) {}

  get ids(): string[] {
    return [...this.cards.keys()];
  }

  get size(): number {
    return this.cards.size;
  }

  has(id: string): boolean {
    return this.cards.has(id);
  }

  sample(id: string): SampleJson | undefined {
    return this.cards.get(id)?.sample;
  }

  clear(): void {
    this.cards.clear();
    this.selected.clear();
    this.focusedId = null;
    this.container.replaceChildren();
    this.onSelection();
  }

  /** Adds cards below the ones shown; samples already shown are updated where they are. */
  append(samples: SampleJson[]): void {
    const fresh: HTMLElement[] = [];
    for (const s of samples) {
      if (this.cards.has(s.id)) this.update(s);
      else {
        const card = this.make(s);
        this.cards.set(s.id, card);
        fresh.push(card.root);
      }
    }
    this.container.append(...fresh);
  }

  /** The class buttons on every card follow the list of classes (added classes, the head's labels). */
  setClasses(classes: string[]): void {
    if (classes.join('\n') === this.classes.join('\n')) return;
    this.classes = classes;
    for (const card of this.cards.values()) this.renderLabels(card);
  }

  get classList(): string[] {
    return this.classes;
  }

  update(s: SampleJson): void {
    const card = this.cards.get(s.id);
    if (!card) return;
    const labelChanged = card.sample.label !== s.label;
    card.sample = s;
    card.root.dataset.label = s.label ?? '';
    setText(child(card.root, '.label'), `label: ${s.label ?? '–'}`);
    setText(child(card.root, '.prediction'), predictionText(s));
    if (labelChanged) this.renderLabels(card);
  }

  setLabel(ids: string[], label: string | null): void {
    for (const id of ids) {
      const card = this.cards.get(id);
      if (card) this.update({ ...card.sample, label });
    }
  }

  /** The card stays as a tombstone (with an undo button while the delete waits) until the page reloads its list. */
  markDeleted(id: string, undo?: () => void): void {
    const card = this.cards.get(id);
    if (!card || card.deleted) return;
    card.deleted = true;
    card.root.classList.add('deleted');
    card.root.dataset.deleted = 'true';
    card.root.append(
      el('div', { className: 'tombstone' }, ['deleted', ...(undo ? [el('button', { textContent: 'undo', onclick: undo })] : [])]),
    );
    this.selected.delete(id);
    this.onSelection();
  }

  /** Once the delete has gone to the device there is nothing to undo: the tombstone loses its button. */
  seal(id: string): void {
    const card = this.cards.get(id);
    if (!card?.deleted) return;
    card.root.dataset.deleted = 'sent';
    card.root.querySelector('.tombstone button')?.remove();
  }

  restore(id: string): void {
    const card = this.cards.get(id);
    if (!card?.deleted || card.root.dataset.deleted === 'sent') return;
    card.deleted = false;
    card.root.classList.remove('deleted');
    delete card.root.dataset.deleted;
    card.root.querySelector('.tombstone')?.remove();
  }

  /** The samples of the cards shown whose sample the device still holds (pending deletes included). */
  get held(): SampleJson[] {
    return [...this.cards.values()].filter((c) => c.root.dataset.deleted !== 'sent').map((c) => c.sample);
  }

  isDeleted(id: string): boolean {
    return this.cards.get(id)?.deleted ?? false;
  }

  toggleSelected(id: string, on = !this.selected.has(id)): void {
    const card = this.cards.get(id);
    if (!card || card.deleted) return;
    if (on) this.selected.add(id);
    else this.selected.delete(id);
    card.root.classList.toggle('selected', on);
    child<HTMLInputElement>(card.root, '.pick').checked = on;
    this.onSelection();
  }

  clearSelection(): void {
    for (const id of [...this.selected]) this.toggleSelected(id, false);
  }

  focus(id: string): void {
    const card = this.cards.get(id);
    if (!card) return;
    if (this.focusedId) this.cards.get(this.focusedId)?.root.classList.remove('focused');
    this.focusedId = id;
    card.root.classList.add('focused');
    if (document.activeElement !== card.root && !card.root.contains(document.activeElement)) card.root.focus({ preventScroll: false });
  }

  /** The card next to the focused one: left/right in reading order, up/down in the same column. */
  neighbour(direction: 'left' | 'right' | 'up' | 'down'): string | undefined {
    const ids = this.ids.filter((id) => !this.isDeleted(id));
    const at = this.focusedId ? ids.indexOf(this.focusedId) : -1;
    if (at < 0) return ids[0];
    if (direction === 'left') return ids[Math.max(0, at - 1)];
    if (direction === 'right') return ids[Math.min(ids.length - 1, at + 1)];
    const columns = getComputedStyle(this.container).gridTemplateColumns.split(' ').length || 1;
    return ids[Math.min(ids.length - 1, Math.max(0, at + (direction === 'down' ? columns : -columns)))];
  }

  private make(s: SampleJson): Card {
    const pick = el('input', { type: 'checkbox', className: 'pick', title: 'select' });
    pick.setAttribute('aria-label', `select sample ${s.id.slice(0, 8)}`);
    // The label around the box is the part a finger hits: 44 px square, larger than the box it ticks.
    const root = el('div', { className: 'card', tabIndex: 0, dataset: { id: s.id, label: s.label ?? '' } }, [
      el('label', { className: 'pick-area', title: 'select' }, [pick]),
      s.hasImage
        ? el('img', { src: `/api/samples/${s.id}/image`, alt: s.label ?? 'sample', loading: 'lazy', width: 160, height: 160 })
        : el('div', { className: 'noimage', textContent: s.status === 'quarantined' ? 'quarantined' : '(image not kept)' }),
      el('div', { className: 'meta' }, [
        el('div', { className: 'label' }),
        el('div', { className: 'prediction' }),
        ...(s.error ? [el('div', { className: 'err', textContent: s.error })] : []),
      ]),
      el('div', { className: 'labels' }),
      el('div', { className: 'tools' }, [el('button', { className: 'delete', textContent: 'delete', title: 'delete (Del)' })]),
    ]);
    root.setAttribute('role', 'listitem');
    const card: Card = { root, sample: s, deleted: false };
    pick.onchange = () => this.toggleSelected(s.id, pick.checked);
    child<HTMLButtonElement>(root, '.delete').onclick = () => this.actions.remove(s.id);
    root.addEventListener('focusin', () => this.actions.focus(s.id));
    root.addEventListener('click', () => this.actions.focus(s.id));
    setText(child(root, '.label'), `label: ${s.label ?? '–'}`);
    setText(child(root, '.prediction'), predictionText(s));
    this.renderLabels(card);
    return card;
  }

  private renderLabels(card: Card): void {
    const s = card.sample;
    child(card.root, '.labels').replaceChildren(
      ...this.classes.map((c, i) => {
        const button = el('button', {
          textContent: c,
          className: s.label === c ? 'on' : '',
          title: i < 9 ? `label as ${c} (${i + 1})` : `label as ${c}`,
          onclick: () => this.actions.label([s.id], card.sample.label === c ? null : c),
        });
        button.setAttribute('aria-pressed', String(s.label === c));
        return button;
      }),
    );
  }
}
